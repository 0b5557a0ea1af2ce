// The native gRPC transport's decoders of untrusted bytes outside nghttp2: the message
// deframer (fed in pieces cut where the input says), grpc-timeout and grpc-message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/grpc/grpc_framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace wire = ferry::protocol::grpc_wire;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)wire::ParseTimeout(in.substr(0, 12));
  (void)wire::PercentDecode(in.substr(0, 64));
  if (in.empty()) return 0;
  // The first byte picks the piece size, the rest is the stream.
  const size_t step = 1 + static_cast<uint8_t>(in[0]) % 32;
  in.remove_prefix(1);
  wire::MessageDeframer deframer(1 << 16);
  size_t total = 0;
  for (size_t i = 0; i < in.size(); i += step) {
    ferry::Status s = deframer.Feed(in.substr(i, step), [&](const wire::Message& m) {
      total += m.bytes.size();
      return true;
    });
    if (!s.ok()) break;
  }
  return total > in.size() ? 1 : 0;
}
