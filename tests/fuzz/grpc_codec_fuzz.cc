// libFuzzer target: ModelInferRequest bytes off the wire -> protobuf parse -> ferry's
// gRPC decoder -> response encoder.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "protocol/grpc/grpc_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto message = std::make_shared<inference::ModelInferRequest>();
  if (!message->ParseFromArray(data, static_cast<int>(size))) return 0;
  auto request = ferry::protocol::DecodeModelInferRequest(message);
  if (!request.ok()) return 0;
  ferry::InferResponse response;
  response.outputs = request->inputs;
  inference::ModelInferResponse out;
  ferry::protocol::EncodeModelInferResponse(response, &out);
  return 0;
}
