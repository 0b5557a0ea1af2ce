#pragma once

#include <cstdint>
#include <cstring>

namespace ferry {

// IEEE binary16 to float, exact for every value including subnormals, inf and NaN.
inline float HalfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// bfloat16 (the high half of an FP32) to float.
inline float Bf16ToFloat(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// `d` rounded to the nearest value of a binary float format with `exp_bits` exponent
// and `mant_bits` mantissa bits (ties to even), as its bits: overflow gives infinity,
// underflow zero or a subnormal, NaN a quiet NaN; the sign is kept. Rounds from the
// double directly, so no value is rounded twice.
inline uint16_t RoundToSmallFloat(double d, int exp_bits, int mant_bits) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  const uint64_t sign = (bits >> 63) << (exp_bits + mant_bits);
  const int exp = static_cast<int>((bits >> 52) & 0x7ff);
  const uint64_t mant = bits & ((uint64_t{1} << 52) - 1);
  const int max_exp = (1 << exp_bits) - 1;
  const int bias = (1 << (exp_bits - 1)) - 1;
  if (exp == 0x7ff)
    return static_cast<uint16_t>(sign | (uint64_t(max_exp) << mant_bits) | (mant ? uint64_t{1} << (mant_bits - 1) : 0));
  if (exp == 0) return static_cast<uint16_t>(sign);  // double subnormals are far below any 16-bit range
  const int e = exp - 1023 + bias;
  if (e >= max_exp) return static_cast<uint16_t>(sign | (uint64_t(max_exp) << mant_bits));
  const uint64_t m53 = mant | (uint64_t{1} << 52);
  const int shift = 52 - mant_bits + (e <= 0 ? 1 - e : 0);
  if (shift > 53) return static_cast<uint16_t>(sign);  // below half the smallest subnormal
  const uint64_t q = m53 >> shift;
  const uint64_t rem = m53 & ((uint64_t{1} << shift) - 1);
  const uint64_t halfway = uint64_t{1} << (shift - 1);
  uint64_t out = e <= 0 ? q : (uint64_t(e) << mant_bits) | (q & ((uint64_t{1} << mant_bits) - 1));
  if (rem > halfway || (rem == halfway && (out & 1))) ++out;  // a carry moves into the exponent, as it should
  return static_cast<uint16_t>(sign | out);
}

// IEEE binary16 and bfloat16 nearest to `d` (ties to even).
inline uint16_t DoubleToHalf(double d) { return RoundToSmallFloat(d, 5, 10); }
inline uint16_t DoubleToBf16(double d) { return RoundToSmallFloat(d, 8, 7); }

}  // namespace ferry
