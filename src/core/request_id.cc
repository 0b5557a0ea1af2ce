#include "core/request_id.h"

#include <array>
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

}  // namespace

void WriteNewRequestId(char* out) {
  thread_local IdGenerator gen;
  uint64_t hi = gen.Next(), lo = gen.Next();
  hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // RFC 4122 variant
  // Two hex digits per byte from a table, the dashes at fixed places: a monitored request
  // takes one id and each of its payload events another, so this runs several times a
  // request (a digit at a time with a dash test per digit cost ~600 instructions an id).
  static constexpr char kHex[] = "0123456789abcdef";
  static constexpr auto kPairs = [] {
    std::array<char, 512> t{};
    for (int b = 0; b < 256; ++b) {
      t[2 * b] = kHex[b >> 4];
      t[2 * b + 1] = kHex[b & 15];
    }
    return t;
  }();
  // Byte i of the 16 (hi's, then lo's, most significant first) goes to kAt[i].
  static constexpr int kAt[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
  for (int i = 0; i < 16; ++i) {
    const uint64_t word = i < 8 ? hi : lo;
    const unsigned byte = static_cast<unsigned>(word >> (56 - 8 * (i & 7))) & 0xFF;
    std::memcpy(out + kAt[i], &kPairs[2 * byte], 2);
  }
  out[8] = out[13] = out[18] = out[23] = '-';
}

std::string NewRequestId() {
  std::string s(kRequestIdLength, '-');
  WriteNewRequestId(s.data());
  return s;
}

}  // namespace ferry
