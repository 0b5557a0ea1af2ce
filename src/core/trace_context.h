#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

// A W3C Trace Context (the `traceparent` header: "00-<32 hex trace id>-<16 hex parent
// span id>-<2 hex flags>"), as received from a client or made for a new trace.
struct TraceContext {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};  // the caller's span: the parent of ours
  bool sampled = false;              // flags bit 0

  // Parses a traceparent value; nullopt when it is not one (a version other than 00 is
  // read by its first four fields, as the spec asks; all-zero ids are invalid).
  static std::optional<TraceContext> Parse(std::string_view header);
  // "00-...-...-01" with this context's span id as the parent.
  std::string Format() const;

  static std::array<uint8_t, 16> NewTraceId();
  static std::array<uint8_t, 8> NewSpanId();
};

std::string Hex(const uint8_t* bytes, size_t n);

}  // namespace ferry
