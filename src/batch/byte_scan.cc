#include "batch/byte_scan.h"

#include <immintrin.h>

#include <cstdint>

namespace ferry::batch {

namespace {

// Writes the positions of the `count` bits set in m (block p's matches) to out; returns
// count. Eight positions whatever the count (a block of numeric cells holds about five),
// so the loop does not branch on it; slots past `count` are overwritten by the next block.
[[gnu::always_inline]] inline size_t Positions(const char* p, uint64_t m, size_t count, const char** out) {
  for (size_t k = 0; k < 8; ++k) {
    out[k] = p + __builtin_ctzll(m | (uint64_t{1} << 63));
    m &= m - 1;
  }
  for (size_t k = 8; k < count; ++k) {
    out[k] = p + __builtin_ctzll(m);
    m &= m - 1;
  }
  return count;
}

// The bytes after the last whole block, one at a time.
size_t Rest(const char* p, const char* end, char byte, size_t n, const char** out, size_t cap) {
  for (; p < end && n <= cap; ++p)
    if (*p == byte) out[n++] = p;
  return n;
}

}  // namespace

namespace byte_scan_internal {

size_t FindByteSse2(const char* begin, const char* end, char byte, const char** out, size_t cap) {
  const __m128i wanted = _mm_set1_epi8(byte);
  size_t n = 0;
  const char* p = begin;
  for (; end - p >= 64 && n <= cap; p += 64) {
    __m128i eq[4];
    for (int k = 0; k < 4; ++k)
      eq[k] = _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k)), wanted);
    uint64_t m = 0;
    for (int k = 0; k < 4; ++k) m |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(eq[k]))} << (16 * k);
    // The count by psadbw (a sum of bytes), not __builtin_popcountll: that is a library
    // call where the x86-64 baseline has no POPCNT. A match is a byte of -1.
    const __m128i matches = _mm_sub_epi8(_mm_setzero_si128(),
                                         _mm_add_epi8(_mm_add_epi8(eq[0], eq[1]), _mm_add_epi8(eq[2], eq[3])));
    const __m128i sums = _mm_sad_epu8(matches, _mm_setzero_si128());
    const auto count = static_cast<size_t>(_mm_cvtsi128_si32(sums) + _mm_cvtsi128_si32(_mm_unpackhi_epi64(sums, sums)));
    n += Positions(p, m, count, out + n);
  }
  return Rest(p, end, byte, n, out, cap);
}


// The same with AVX2, BMI1 and POPCNT, where the CPU has them (x86-64-v3): two 32-byte
// compares per block, and the positions taken off the mask with tzcnt/blsr.
[[gnu::target("avx2,bmi,popcnt")]] size_t FindByteAvx2(const char* begin, const char* end, char byte,
                                                        const char** out, size_t cap) {
  const __m256i wanted = _mm256_set1_epi8(byte);
  size_t n = 0;
  const char* p = begin;
  for (; end - p >= 64 && n <= cap; p += 64) {
    const auto lo = static_cast<uint32_t>(_mm256_movemask_epi8(
        _mm256_cmpeq_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), wanted)));
    const auto hi = static_cast<uint32_t>(_mm256_movemask_epi8(
        _mm256_cmpeq_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)), wanted)));
    uint64_t m = uint64_t{hi} << 32 | lo;
    const auto count = static_cast<size_t>(__builtin_popcountll(m));
    n += Positions(p, m, count, out + n);
  }
  return Rest(p, end, byte, n, out, cap);
}

bool HasAvx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
                           __builtin_cpu_supports("popcnt");
  return avx2;
}

}  // namespace byte_scan_internal

size_t FindByte(const char* begin, const char* end, char byte, const char** out, size_t cap) {
  using namespace byte_scan_internal;
  return HasAvx2() ? FindByteAvx2(begin, end, byte, out, cap) : FindByteSse2(begin, end, byte, out, cap);
}

}  // namespace ferry::batch
