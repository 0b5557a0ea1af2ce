#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace ferry {

// Whether every byte of `s` is printable ASCII (0x20..0x7e), and, with `json_plain`,
// neither '"' nor '\\' either: a string that reads the same inside a JSON string as it
// is (no escape needed), or that can stand in an HTTP header. Eight bytes at a time
// (request ids are checked on every monitored request's answer, a character at a time
// cost ~9 instructions each).
// Thread-safety: pure.
inline bool PrintableAscii(std::string_view s, bool json_plain) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  // A byte of x is zero: exact (no false positives) for the whole word.
  auto has_zero = [](uint64_t x) { return ((x - kOnes) & ~x & kHigh) != 0; };
  auto bad = [&](uint64_t w) {
    bool b = (w & kHigh) != 0                      // >= 0x80
             || ((w - kOnes * 0x20) & ~w & kHigh)  // < 0x20 (w has no byte >= 0x80 here)
             || has_zero(w ^ (kOnes * 0x7f));      // DEL
    if (json_plain) b = b || has_zero(w ^ (kOnes * '"')) || has_zero(w ^ (kOnes * '\\'));
    return b;
  };
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (bad(w)) return false;
  }
  if (i < s.size()) {
    // The tail, padded with spaces (plain in both senses).
    uint64_t w = kOnes * ' ';
    std::memcpy(&w, s.data() + i, s.size() - i);
    if (bad(w)) return false;
  }
  return true;
}

}  // namespace ferry
