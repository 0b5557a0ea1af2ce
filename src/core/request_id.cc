#include "core/request_id.h"

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <random>

namespace ferry {
namespace {

// splitmix64: a fast generator with a full 2^64 period whose outputs pass BigCrush;
// one seed per thread from the OS keeps threads' sequences apart.
class IdGenerator {
 public:
  IdGenerator() {
    std::random_device rd;
    state_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// The 8 bytes of `x`, most significant first, as 16 lower-case hex digits in `out`:
// every nibble spread to a byte of its own and turned into its digit a word at a time.
// This runs for every monitored request and every payload event: an id costs ~65
// instructions so (callgrind), a table lookup per byte cost ~300.
inline void WriteHex64(uint64_t x, char* out) {
  auto digits = [](uint32_t half) {
    uint64_t v = half;  // nibble k ends up in byte k (k = 0 the least significant)
    v = (v | (v << 16)) & 0x0000FFFF0000FFFFull;
    v = (v | (v << 8)) & 0x00FF00FF00FF00FFull;
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0Full;
    // 0..9 -> '0'..'9', 10..15 -> 'a'..'f' ('a' - '0' - 10 = 39); no byte carries.
    const uint64_t letters = ((v + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;
    v += 0x3030303030303030ull + letters * 39;
    // In memory most significant nibble (byte 7) first.
    static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
    std::array<char, 8> bytes;
    std::memcpy(bytes.data(), &v, 8);
    return bytes;
  };
  const auto hi = digits(static_cast<uint32_t>(x >> 32)), lo = digits(static_cast<uint32_t>(x));
  std::memcpy(out, hi.data(), 8);
  std::memcpy(out + 8, lo.data(), 8);
}

}  // namespace

void WriteNewRequestId(char* out) {
  thread_local IdGenerator gen;
  uint64_t hi = gen.Next(), lo = gen.Next();
  hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // RFC 4122 variant
  // hi's digits, then lo's, with the dashes at 8, 13, 18 and 23.
  char h[16], l[16];
  WriteHex64(hi, h);
  WriteHex64(lo, l);
  std::memcpy(out, h, 8);
  out[8] = '-';
  std::memcpy(out + 9, h + 8, 4);
  out[13] = '-';
  std::memcpy(out + 14, h + 12, 4);
  out[18] = '-';
  std::memcpy(out + 19, l, 4);
  out[23] = '-';
  std::memcpy(out + 24, l + 4, 12);
}

std::string NewRequestId() {
  std::string s(kRequestIdLength, '-');
  WriteNewRequestId(s.data());
  return s;
}

}  // namespace ferry
