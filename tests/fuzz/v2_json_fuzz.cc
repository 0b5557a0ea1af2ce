// libFuzzer target: the REST body decoder (JSON + binary tensor tail) and the response
// encoder fed with whatever decodes. Input byte 0 selects the
// Inference-Header-Content-Length (none, or a split point); the rest is the body.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "protocol/v2_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto body = std::make_shared<const std::string>(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::optional<size_t> header_length;
  if (data[0] < 128) header_length = body->empty() ? 0 : (static_cast<size_t>(data[0]) * body->size()) / 127;
  auto request = ferry::protocol::DecodeInferRequest(body, header_length);
  if (!request.ok()) return 0;
  ferry::InferResponse response;
  response.model_name = "m";
  response.model_version = "1";
  response.id = request->id;
  response.outputs = request->inputs;  // echo: exercises every datatype's encoder
  for (auto& o : request->outputs) o.parameters["binary_data"] = (o.name.size() % 2) == 0;
  auto encoded = ferry::protocol::EncodeInferResponse(response, *request);
  (void)encoded;
  return 0;
}
