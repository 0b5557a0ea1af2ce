#include "core/request_id.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <random>

namespace ferry {
namespace {

// splitmix64, to spread the OS's seed over a thread's prefix and counter start.
uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void WriteHex(uint64_t hi, uint64_t lo, char* out) {
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

// A thread's last id as text. A monitored request takes one id and each of its payload
// events another, so this runs several times a request: two random words and their 32
// digits per id cost ~400 instructions; the next id is the last one's text plus one,
// usually one digit changed.
class IdSequence {
 public:
  IdSequence() {
    std::random_device rd;
    uint64_t seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    uint64_t hi = SplitMix(seed), lo = SplitMix(seed);
    hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // the version 4 digit
    // The variant bits (10), then a 62-bit counter started below 2^61, so that it never
    // carries into them.
    lo = (lo & 0x1FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;
    WriteHex(hi, lo, text_);
  }
  void Next(char* out) {
    for (int i = static_cast<int>(kRequestIdLength) - 1;; --i) {
      if (i == 23) continue;  // the dash
      char& c = text_[i];
      if (c == 'f') {  // and carry
        c = '0';
        continue;
      }
      c = c == '9' ? 'a' : static_cast<char>(c + 1);
      break;
    }
    std::memcpy(out, text_, kRequestIdLength);
  }

 private:
  char text_[kRequestIdLength];
};

}  // namespace

void WriteNewRequestId(char* out) {
  thread_local IdSequence ids;
  ids.Next(out);
}

std::string NewRequestId() {
  std::string s(kRequestIdLength, '-');
  WriteNewRequestId(s.data());
  return s;
}

}  // namespace ferry
