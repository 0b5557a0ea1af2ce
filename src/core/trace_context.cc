#include "core/trace_context.h"

#include <random>

namespace ferry {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid in traceparent
}

template <size_t N>
bool ReadHex(std::string_view s, std::array<uint8_t, N>* out) {
  if (s.size() != 2 * N) return false;
  bool nonzero = false;
  for (size_t i = 0; i < N; ++i) {
    const int hi = HexDigit(s[2 * i]), lo = HexDigit(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
    nonzero = nonzero || (*out)[i] != 0;
  }
  return nonzero;
}

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}

}  // namespace

std::string Hex(const uint8_t* bytes, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = digits[bytes[i] >> 4];
    s[2 * i + 1] = digits[bytes[i] & 15];
  }
  return s;
}

std::optional<TraceContext> TraceContext::Parse(std::string_view h) {
  while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  // version "-" trace-id "-" parent-id "-" flags; later versions may append "-..." fields.
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  const int v0 = HexDigit(h[0]), v1 = HexDigit(h[1]);
  if (v0 < 0 || v1 < 0 || (v0 == 15 && v1 == 15)) return std::nullopt;  // ff is invalid
  if (v0 == 0 && v1 == 0 && h.size() != 55) return std::nullopt;
  if (h.size() > 55 && h[55] != '-') return std::nullopt;
  TraceContext c;
  if (!ReadHex(h.substr(3, 32), &c.trace_id) || !ReadHex(h.substr(36, 16), &c.span_id)) return std::nullopt;
  const int f0 = HexDigit(h[53]), f1 = HexDigit(h[54]);
  if (f0 < 0 || f1 < 0) return std::nullopt;
  c.sampled = (f1 & 1) != 0;
  return c;
}

std::string TraceContext::Format() const {
  return "00-" + Hex(trace_id.data(), trace_id.size()) + "-" + Hex(span_id.data(), span_id.size()) +
         (sampled ? "-01" : "-00");
}

std::array<uint8_t, 16> TraceContext::NewTraceId() {
  std::array<uint8_t, 16> id{};
  do {
    const uint64_t a = Rng()(), b = Rng()();
    for (int i = 0; i < 8; ++i) {
      id[i] = static_cast<uint8_t>(a >> (8 * i));
      id[8 + i] = static_cast<uint8_t>(b >> (8 * i));
    }
  } while (id == std::array<uint8_t, 16>{});
  return id;
}

std::array<uint8_t, 8> TraceContext::NewSpanId() {
  std::array<uint8_t, 8> id{};
  do {
    const uint64_t a = Rng()();
    for (int i = 0; i < 8; ++i) id[i] = static_cast<uint8_t>(a >> (8 * i));
  } while (id == std::array<uint8_t, 8>{});
  return id;
}

}  // namespace ferry
