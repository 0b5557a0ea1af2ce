#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include <emmintrin.h>

namespace ferry::batch {

// Reads a plain decimal number at the start of [p, end): "-12.5", "3", ".5", "1.25e-7"
// (an optional '-', digits with an optional '.', an optional exponent). Returns the
// position just past it with the value in *out, giving exactly what std::from_chars
// gives (the correctly rounded value) -- or nullptr when this fast path does not decide:
// no such number at p, more than 19 digits, a decimal exponent past +-22, a float
// result outside the normal range, or a value whose rounding it cannot prove. The
// caller then uses std::from_chars, which takes every case.
// Why: libstdc++'s from_chars spends most of a CSV job's parse time on a float32
// column; this is Clinger's exact fast path (an integer mantissa below 2^53 times or
// divided by an exact power of ten rounds once, correctly), which covers the numbers
// that writers like "%.9g" and to_chars produce.
// Thread-safety: a pure function.
const char* ParseDecimal(const char* p, const char* end, float* out);
const char* ParseDecimal(const char* p, const char* end, double* out);

// The same, for the common case only, and inline: an optional '-', then at most 15
// digits with at most one '.', no exponent, the whole text ending within the 16 bytes
// after the sign. REQUIRES: 17 bytes readable at p (it reads them whatever the number's
// length). nullptr for anything else, where ParseDecimal decides as above; a value it
// gives is ParseDecimal's (std::from_chars's), bit for bit.
// Why: a CSV cell of a feature table is this case, and the per-digit loop of
// ParseDecimal, and the call, cost a third of the time per cell. Here the 16 bytes are
// classified at once (a bit per byte: digit, '.'), the '.' is cut out, the digits are
// right-aligned into a 16-digit integer and multiplied out 8 at a time; a float is
// scaled with a multiply instead of a divide.
// Thread-safety: a pure function.
inline const char* ParseShortDecimal(const char* p, double* out);
inline const char* ParseShortDecimal(const char* p, float* out);

// ParseShortDecimal with SSE2 (the x86-64 baseline): the same numbers taken, the same
// values and ends, bit for bit. REQUIRES: besides the 17 bytes at p, the 16 bytes before
// p are readable (in a CSV line: p is at least 16 bytes into it).
// Why: the byte classes come from two compares and a movemask instead of 64-bit tricks
// on two halves; the digits are right-aligned (and the '.' cut out) by loading the 16
// bytes that end at the number's end, where ParseShortDecimal shifts 128-bit integers;
// and they are multiplied out 16 at a time by pmullw/pmaddwd.
// Thread-safety: a pure function.
inline const char* ParseShortDecimalSse2(const char* p, double* out);
inline const char* ParseShortDecimalSse2(const char* p, float* out);

// ---- implementation ----

namespace decimal_internal {

using U128 = unsigned __int128;
constexpr uint64_t kOnes = 0x0101010101010101;
constexpr double kExactPow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
// 10^-k rounded to double (each within half an ulp of the exact value).
constexpr double kInversePow10[] = {1e-0, 1e-1, 1e-2,  1e-3,  1e-4,  1e-5,  1e-6,  1e-7,
                                    1e-8, 1e-9, 1e-10, 1e-11, 1e-12, 1e-13, 1e-14, 1e-15};

// Per byte of v, the high bit (0x80) set where the byte is not zero. No carry crosses a
// byte: (b & 0x7F) + 0x7F is at most 0xFE.
inline uint64_t NonZeroBytes(uint64_t v) { return (((v & (0x7F * kOnes)) + 0x7F * kOnes) | v) & (0x80 * kOnes); }
// Per byte of t (a text byte XOR '0'), the high bit set where the byte is not a digit.
inline uint64_t NonDigitBytes(uint64_t t) { return (((t & (0x7F * kOnes)) + 0x76 * kOnes) | t) & (0x80 * kOnes); }
// Byte index of the lowest byte whose high bit is set in m (m != 0).
inline int FirstByte(U128 m) {
  const auto lo = static_cast<uint64_t>(m);
  return (lo != 0 ? __builtin_ctzll(lo) : 64 + __builtin_ctzll(static_cast<uint64_t>(m >> 64))) / 8;
}
// The value of 8 digit values 0..9, the most significant in the lowest byte: pairs,
// then quadruples, then the two halves, combined with multiplies.
inline uint32_t EightDigitValues(uint64_t v) {
  v = v * 10 + (v >> 8);  // byte 2k holds digits 2k, 2k+1 as a number below 100
  v = (((v & 0x000000FF000000FF) * (100 + (1000000ULL << 32))) +
       (((v >> 16) & 0x000000FF000000FF) * (1 + (10000ULL << 32)))) >> 32;
  return static_cast<uint32_t>(v);
}

// The unsigned text at p (16 bytes read) as mantissa * 10^-fraction; its end, or
// nullptr past the case.
[[gnu::always_inline]] inline const char* ShortUnsigned(const char* p, uint64_t* mantissa_out, int* fraction_out) {
  uint64_t w[2];
  std::memcpy(w, p, sizeof w);
  const uint64_t t0 = w[0] ^ ('0' * kOnes), t1 = w[1] ^ ('0' * kOnes);
  const uint64_t dot0 = NonZeroBytes(t0 ^ (('.' ^ '0') * kOnes)) ^ (0x80 * kOnes);
  const uint64_t dot1 = NonZeroBytes(t1 ^ (('.' ^ '0') * kOnes)) ^ (0x80 * kOnes);
  const U128 stop = (static_cast<U128>(NonDigitBytes(t1) & ~dot1) << 64) | (NonDigitBytes(t0) & ~dot0);
  if (stop == 0) return nullptr;  // 16 bytes of digits and dots
  const int n = FirstByte(stop);  // the text's length
  if ((p[n] | 0x20) == 'e') return nullptr;  // an exponent follows
  const U128 in_text = (U128{1} << (8 * n)) - 1;
  const U128 dots = ((static_cast<U128>(dot1) << 64) | dot0) & in_text;
  if ((dots & (dots - 1)) != 0) return nullptr;  // two '.'
  const int digits = n - (dots != 0);
  if (digits == 0) return nullptr;
  U128 v = ((static_cast<U128>(t1) << 64) | t0) & in_text;
  int fraction = 0;
  if (dots != 0) {
    const int k = FirstByte(dots);
    const U128 before = (U128{1} << (8 * k)) - 1;
    v = (v & before) | ((v >> 8) & ~before);  // the digits after the '.' move down over it
    fraction = n - k - 1;
  }
  v <<= 8 * (16 - digits);  // right-aligned: leading zero digits
  *mantissa_out = uint64_t{EightDigitValues(static_cast<uint64_t>(v))} * 100000000 +
                  EightDigitValues(static_cast<uint64_t>(v >> 64));  // below 10^15
  *fraction_out = fraction;
  return p + n;
}

// 32 bytes: 16 of 0x00 then 16 of 0xFF; the 16 at kTailMask + k keep the last k bytes
// of a vector.
alignas(64) inline constexpr unsigned char kTailMask[32] = {
    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
inline __m128i LastBytes(int k) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(kTailMask + k));
}

// ShortUnsigned's contract, with SSE2, the mantissa given as a double (exactly); REQUIRES
// the 16 bytes before p readable as well.
[[gnu::always_inline]] inline const char* ShortUnsignedSse2(const char* p, double* mantissa_out, int* fraction_out) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i t = _mm_sub_epi8(v, _mm_set1_epi8('0'));
  const __m128i digit = _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(9)), t);
  const auto dots = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('.'))));
  const auto digits_mask = static_cast<unsigned>(_mm_movemask_epi8(digit));
  const unsigned stop = ~(digits_mask | dots) & 0xFFFF;
  if (stop == 0) return nullptr;  // 16 bytes of digits and dots
  const int n = __builtin_ctz(stop);  // the text's length
  if ((p[n] | 0x20) == 'e') return nullptr;  // an exponent follows
  const unsigned dot = dots & ((1u << n) - 1);
  if ((dot & (dot - 1)) != 0) return nullptr;  // two '.'
  const int digits = n - (dot != 0);
  if (digits == 0) return nullptr;
  // The 16 bytes ending at the text's end; with a '.', the part before it from the 16
  // bytes ending one earlier, which moves it up over the '.'.
  __m128i r = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + n - 16));
  int fraction = 0;
  if (dot != 0) {
    fraction = n - __builtin_ctz(dot) - 1;
    const __m128i after = LastBytes(fraction);
    const __m128i before = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + n - 17));
    r = _mm_or_si128(_mm_and_si128(after, r), _mm_andnot_si128(after, before));
  }
  // Digit values, the most significant in byte 0, zeros ahead of the number.
  const __m128i d = _mm_and_si128(_mm_sub_epi8(r, _mm_set1_epi8('0')), LastBytes(digits));
  // Pairs (byte 2k is the more significant), then groups of 4, then of 8.
  const __m128i pairs = _mm_add_epi16(_mm_mullo_epi16(_mm_and_si128(d, _mm_set1_epi16(0xFF)), _mm_set1_epi16(10)),
                                      _mm_srli_epi16(d, 8));
  const __m128i quads = _mm_madd_epi16(pairs, _mm_set1_epi32(100 | (1 << 16)));
  const __m128i octs = _mm_madd_epi16(_mm_packs_epi32(quads, quads), _mm_set1_epi32(10000 | (1 << 16)));
  // As doubles, exact: the high half times 10^8 is below 2^53 (and so is the sum).
  const __m128d halves = _mm_cvtepi32_pd(octs);
  *mantissa_out = _mm_cvtsd_f64(_mm_add_sd(_mm_mul_sd(halves, _mm_set_sd(1e8)), _mm_unpackhi_pd(halves, halves)));
  *fraction_out = fraction;
  return p + n;
}

// mantissa * 10^-fraction (ShortUnsigned's result), negated when `negative`, as a double.
// `mantissa` is an integer below 2^53, as a uint64 or (exactly) a double.
template <typename M>
[[gnu::always_inline]] inline void ShortToDouble(bool negative, M mantissa, int fraction, double* out) {
  // An integer below 2^53 divided by an exact power of ten: one rounding (Clinger).
  const double d = static_cast<double>(mantissa) / kExactPow10[fraction];
  // The sign goes in without a branch: in most data it is a coin toss.
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  bits |= uint64_t{negative} << 63;
  std::memcpy(out, &bits, sizeof bits);
}

// The same as a float; false (nothing stored) when it cannot prove the rounding.
template <typename M>
[[gnu::always_inline]] inline bool ShortToFloat(bool negative, M mantissa, int fraction, float* out) {
  // A multiply, not a divide (whose latency the per-cell loop waits on): d is within
  // 2 ulps (of double) of the exact value x, two roundings of 2^-53 each. x is 0 or
  // between 1e-15 and 1e15, in float's normal range, so d's float is x's float unless a
  // point halfway between two floats lies between them: d's 29 bits that a float drops
  // are then within 2 of 1000...0 (the halfway point; 3 is checked). Those few go to
  // ParseDecimal.
  const double d = static_cast<double>(mantissa) * kInversePow10[fraction];
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  const uint64_t dropped = bits & ((uint64_t{1} << 29) - 1);
  if (dropped - ((uint64_t{1} << 28) - 3) <= 6) return false;
  const float f = static_cast<float>(d);
  uint32_t fbits;
  std::memcpy(&fbits, &f, sizeof fbits);
  fbits |= uint32_t{negative} << 31;
  std::memcpy(out, &fbits, sizeof fbits);
  return true;
}

// A short decimal at p: its sign, then Unsigned's mantissa (of type M) and fraction.
template <typename M, auto Unsigned, typename T>
[[gnu::always_inline]] inline const char* ShortDecimal(const char* p, T* out) {
  const bool negative = *p == '-';
  M mantissa;
  int fraction;
  const char* q = Unsigned(p + negative, &mantissa, &fraction);
  if (q == nullptr) return nullptr;
  if constexpr (std::is_same_v<T, float>) {
    if (!ShortToFloat(negative, mantissa, fraction, out)) return nullptr;
  } else {
    ShortToDouble(negative, mantissa, fraction, out);
  }
  return q;
}

}  // namespace decimal_internal

[[gnu::always_inline]] inline const char* ParseShortDecimal(const char* p, double* out) {
  return decimal_internal::ShortDecimal<uint64_t, decimal_internal::ShortUnsigned>(p, out);
}
[[gnu::always_inline]] inline const char* ParseShortDecimal(const char* p, float* out) {
  return decimal_internal::ShortDecimal<uint64_t, decimal_internal::ShortUnsigned>(p, out);
}
[[gnu::always_inline]] inline const char* ParseShortDecimalSse2(const char* p, double* out) {
  return decimal_internal::ShortDecimal<double, decimal_internal::ShortUnsignedSse2>(p, out);
}
[[gnu::always_inline]] inline const char* ParseShortDecimalSse2(const char* p, float* out) {
  return decimal_internal::ShortDecimal<double, decimal_internal::ShortUnsignedSse2>(p, out);
}

}  // namespace ferry::batch
