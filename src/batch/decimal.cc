#include "batch/decimal.h"

#include <cstdint>
#include <cstring>
#include <limits>

namespace ferry::batch {
namespace {

constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// Whether the 8 bytes (little-endian in v) are all ASCII digits: each byte's high
// nibble is 3 and adding 6 does not carry it past 9.
bool EightDigits(uint64_t v) {
  return ((v & 0xF0F0F0F0F0F0F0F0) | (((v + 0x0606060606060606) & 0xF0F0F0F0F0F0F0F0) >> 4)) == 0x3333333333333333;
}

// The value of 8 ASCII digits (the first one in the lowest byte of v): pairs, then
// quadruples, then the two halves, combined with multiplies.
uint32_t EightDigitsValue(uint64_t v) {
  v -= 0x3030303030303030;
  v = v * 10 + (v >> 8);  // byte 2k holds digits 2k, 2k+1 as a number below 100
  v = (((v & 0x000000FF000000FF) * (100 + (1000000ULL << 32))) +
       (((v >> 16) & 0x000000FF000000FF) * (1 + (10000ULL << 32)))) >> 32;
  return static_cast<uint32_t>(v);
}

// Reads digits at p into *mantissa, 8 at a time where it can; returns how many.
[[gnu::always_inline]] inline int ReadDigits(const char*& p, const char* end, uint64_t* mantissa) {
  int n = 0;
  while (end - p >= 8) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    if (!EightDigits(v)) break;
    *mantissa = *mantissa * 100000000 + EightDigitsValue(v);
    p += 8;
    n += 8;
  }
  while (p < end && static_cast<unsigned>(*p - '0') < 10) {
    *mantissa = *mantissa * 10 + static_cast<unsigned>(*p - '0');
    ++p;
    ++n;
  }
  return n;
}

// The correctly rounded double of the number at p, or nullptr (see ParseDecimal).
const char* ParseExactDouble(const char* p, const char* end, double* out) {
  if (end - p >= 17)
    if (const char* q = ParseShortDecimal(p, out)) return q;
  bool negative = false;
  if (p < end && *p == '-') {
    negative = true;
    ++p;
  }
  // Past 19 digits the mantissa may wrap (unsigned, so harmless): it is refused below.
  uint64_t mantissa = 0;
  int digits = ReadDigits(p, end, &mantissa);  // leading zeros included
  int fraction = 0;                            // digits after the '.'
  if (p < end && *p == '.') {
    ++p;
    fraction = ReadDigits(p, end, &mantissa);
    digits += fraction;
  }
  if (digits == 0 || digits > 19) return nullptr;
  int exponent = 0;
  if (p < end && (*p == 'e' || *p == 'E')) {
    const char* q = p + 1;
    bool minus = false;
    if (q < end && (*q == '-' || *q == '+')) minus = *q++ == '-';
    if (q >= end || static_cast<unsigned>(*q - '0') >= 10) return nullptr;  // "1e": from_chars stops before the 'e'
    while (q < end && static_cast<unsigned>(*q - '0') < 10) {
      if (exponent > 1000) return nullptr;
      exponent = exponent * 10 + (*q - '0');
      ++q;
    }
    if (minus) exponent = -exponent;
    p = q;
  }
  const int e10 = exponent - fraction;
  if (mantissa > (uint64_t{1} << 53) || e10 < -22 || e10 > 22) return nullptr;
  double d = static_cast<double>(mantissa);  // exact
  if (e10 >= 0) d *= kPow10[e10];
  else d /= kPow10[-e10];
  *out = negative ? -d : d;
  return p;
}

}  // namespace

const char* ParseDecimal(const char* p, const char* end, double* out) { return ParseExactDouble(p, end, out); }

const char* ParseDecimal(const char* p, const char* end, float* out) {
  if (end - p >= 17)
    if (const char* q = ParseShortDecimal(p, out)) return q;
  double d;
  const char* q = ParseExactDouble(p, end, &d);
  if (q == nullptr) return nullptr;
  if (d == 0) {
    *out = static_cast<float>(d);  // keeps the sign of "-0"
    return q;
  }
  const double a = d < 0 ? -d : d;
  if (a < static_cast<double>(std::numeric_limits<float>::min()) ||
      a > static_cast<double>(std::numeric_limits<float>::max()))
    return nullptr;
  // d is the value rounded once; rounding d to float again gives the value's own
  // float unless d lies exactly halfway between two floats (the 29 bits a float drops
  // are 1000...0), where the true value may sit on either side.
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  if ((bits & ((uint64_t{1} << 29) - 1)) == (uint64_t{1} << 28)) return nullptr;
  *out = static_cast<float>(d);
  return q;
}

}  // namespace ferry::batch
