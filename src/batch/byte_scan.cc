#include "batch/byte_scan.h"

#include <emmintrin.h>

#include <cstdint>

namespace ferry::batch {

size_t FindByte(const char* begin, const char* end, char byte, const char** out, size_t cap) {
  const __m128i wanted = _mm_set1_epi8(byte);
  auto mask16 = [wanted](const char* p) {
    return static_cast<uint64_t>(static_cast<uint32_t>(
        _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), wanted))));
  };
  size_t n = 0;
  const char* p = begin;
  for (; end - p >= 64 && n <= cap; p += 64) {
    uint64_t m = mask16(p) | mask16(p + 16) << 16 | mask16(p + 32) << 32 | mask16(p + 48) << 48;
    const auto count = static_cast<size_t>(__builtin_popcountll(m));
    // Eight positions whatever the count (a block of numeric cells holds about five),
    // so the loop does not branch on it; slots past `count` are overwritten next block.
    for (size_t k = 0; k < 8; ++k) {
      out[n + k] = p + __builtin_ctzll(m | (uint64_t{1} << 63));
      m &= m - 1;
    }
    for (size_t k = 8; k < count; ++k) {
      out[n + k] = p + __builtin_ctzll(m);
      m &= m - 1;
    }
    n += count;
  }
  for (; p < end && n <= cap; ++p)
    if (*p == byte) out[n++] = p;
  return n;
}

}  // namespace ferry::batch
