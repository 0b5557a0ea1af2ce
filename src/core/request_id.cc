#include "core/request_id.h"

#include <cstdint>
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
  static constexpr char kHex[] = "0123456789abcdef";
  int pos = 0;
  auto put = [&](uint64_t v, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) out[pos++] = '-';
      out[pos++] = kHex[(v >> (4 * i)) & 0xF];
    }
  };
  put(hi, 16);
  put(lo, 16);
}

std::string NewRequestId() {
  std::string s(kRequestIdLength, '-');
  WriteNewRequestId(s.data());
  return s;
}

}  // namespace ferry
