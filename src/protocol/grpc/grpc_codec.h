#pragma once

#include <memory>

#include "core/infer_request.h"
#include "core/result.h"
#include "protocol/grpc/grpc_service.pb.h"

// The Open Inference Protocol's gRPC message codec: ModelInferRequest/Response to and
// from ferry's protocol-neutral types. Pure functions; no gRPC runtime.
namespace ferry::protocol {

// Decodes a request. `raw_input_contents` tensors borrow `message` (no copy), typed
// `contents` are converted into owned buffers. Errors are INVALID_ARGUMENT naming the
// tensor: unknown datatype, both raw and typed contents, wrong content field for the
// datatype, a size that disagrees with the shape, raw entries not matching the inputs.
Result<InferRequest> DecodeModelInferRequest(std::shared_ptr<const inference::ModelInferRequest> message);

// Encodes a response; every output goes in raw_output_contents (the only form
// tritonclient reads).
void EncodeModelInferResponse(const InferResponse& response, inference::ModelInferResponse* out);

// One answer of a ModelStreamInfer stream: the response, or the error in band
// (error_message, with the request's `id` echoed).
void EncodeModelStreamInferResponse(const Result<InferResponse>& result, const std::string& id,
                                    inference::ModelStreamInferResponse* out);

// Parameter conversions (uint64 parameters above INT64_MAX become doubles).
Parameters FromGrpcParameters(const google::protobuf::Map<std::string, inference::InferParameter>& in);
void ToGrpcParameters(const Parameters& in, google::protobuf::Map<std::string, inference::InferParameter>* out);

}  // namespace ferry::protocol
