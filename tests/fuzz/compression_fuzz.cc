// libFuzzer target: gzip/deflate request bodies, inflated under a size limit.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/compression.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto inflated = ferry::protocol::Decompress(std::string_view(reinterpret_cast<const char*>(data), size), 1 << 20);
  (void)inflated;
  return 0;
}
