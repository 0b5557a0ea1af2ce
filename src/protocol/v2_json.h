#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/infer_request.h"
#include "core/result.h"

// The Open Inference Protocol's REST body codec, with Triton's binary tensor data
// extension. Pure functions over bytes: no sockets, no models.
namespace ferry::protocol {

// Decodes an inference request body.
// `header_length` is the Inference-Header-Content-Length value when present: the JSON
// is the first `*header_length` bytes and the binary tensor chunks follow it in input
// order. Binary tensors borrow `body` (no copy); JSON tensors are decoded into owned
// buffers. Model name/version are not touched (they come from the URL).
// Errors are INVALID_ARGUMENT and name the offending field or tensor.
Result<InferRequest> DecodeInferRequest(std::shared_ptr<const std::string> body,
                                        std::optional<size_t> header_length);

struct EncodedBody {
  std::string body;
  // Set when at least one output is binary: the length of the JSON part, to send as
  // Inference-Header-Content-Length with Content-Type application/octet-stream.
  std::optional<size_t> json_length;
};

// Encodes `response`. An output is sent as binary when the request listed it with
// parameters.binary_data=true, or did not set binary_data for it and the request set
// parameters.binary_data_output=true. FP16/BF16 outputs are always binary-capable and
// are written to JSON as numbers when JSON is asked for.
EncodedBody EncodeInferResponse(const InferResponse& response, const InferRequest& request);

// A tensor's elements as the V2 JSON "data" array (flattened, row-major; NaN and
// infinities as NaN / Infinity / -Infinity), stopping before the first element that
// would take the raw bytes written past `max_bytes` (a BYTES element counts its length):
// what a payload log writes of a large tensor.
struct TensorDataJson {
  std::string json;
  size_t elements_written = 0;
  size_t elements_total = 0;
};
TensorDataJson EncodeTensorDataJson(const Tensor& tensor, size_t max_bytes);

// EncodeTensorDataJson for a writer that encodes many tensors one after another (the
// payload log): the same text, into buffers kept between calls, so that a call
// allocates nothing once they have grown (a writer and a string buffer per tensor showed
// in the payload log's profile).
// Thread-safety: one thread at a time.
class TensorDataJsonEncoder {
 public:
  struct Encoded {
    std::string_view json;  // valid until the next Encode or the encoder's end
    size_t elements_written = 0;
    size_t elements_total = 0;
  };
  TensorDataJsonEncoder();
  ~TensorDataJsonEncoder();
  TensorDataJsonEncoder(TensorDataJsonEncoder&&) noexcept;
  TensorDataJsonEncoder& operator=(TensorDataJsonEncoder&&) noexcept;
  Encoded Encode(const Tensor& tensor, size_t max_bytes);

 private:
  struct Buffers;
  std::unique_ptr<Buffers> buffers_;
};

// Parameters as a V2 JSON "parameters" object.
std::string EncodeParametersJson(const Parameters& parameters);

// {"error":"<message>"} with proper escaping.
std::string ErrorBody(std::string_view message);

}  // namespace ferry::protocol
