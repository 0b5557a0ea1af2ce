#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::frontend::http::http1 {

// HTTP/1.1 message framing (RFC 9112) for the REST gateway, which forwards bytes: it
// parses a message's head (start line and fields) only far enough to route it and to
// find where its body ends, and decodes chunked bodies; it never interprets a body.
// Everything returned is a view into the caller's buffer, valid while that buffer is.
// Strict where leniency lets a proxy and a server disagree about framing (RFC 9112
// 11.2): a field with whitespace before its colon, obsolete line folding, a
// Content-Length that is not a number or appears twice with different values, a
// request with both Content-Length and Transfer-Encoding, a transfer coding other than
// chunked, and a bare LF as a line end are errors.
// Thread-safety: pure functions; a ChunkedDecoder is owned by one thread.

struct Field {
  std::string_view name, value;  // value without leading or trailing whitespace
};

enum class State { kIncomplete, kDone, kError };

struct Head {
  // Request line (requests only).
  std::string_view method, target;
  // Status line (responses only).
  int status = 0;
  std::string_view reason;
  int minor_version = 1;  // HTTP/1.<minor_version>
  std::vector<Field> fields;  // as they came, in order
  size_t size = 0;            // bytes from the start of the buffer through the blank line
  // Framing and connection, from the fields.
  bool chunked = false;
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool keep_alive = true;        // HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive
  bool expect_continue = false;  // "Expect: 100-continue"

  // The first field named `name` (case-insensitive), or empty.
  std::string_view Find(std::string_view name) const;
};

struct ParseResult {
  State state = State::kIncomplete;
  std::string error;  // kError: what is wrong, naming the field
  bool too_large = false;  // kError because the head is longer than the limit (431)
};

// Parses the head of a request at the start of `in` into *head (cleared first; its
// vectors keep their capacity, so a connection reuses one Head). Empty lines before
// the request line are skipped (RFC 9112 2.2). kIncomplete: no blank line yet, and `in`
// is within max_head_bytes. REQUIRES: head != nullptr.
ParseResult ParseRequestHead(std::string_view in, size_t max_head_bytes, Head* head);
// The same for the head of a response.
ParseResult ParseResponseHead(std::string_view in, size_t max_head_bytes, Head* head);

// The case-insensitive comparison field names need.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Decodes a chunked body (RFC 9112 7.1) incrementally: Feed it the bytes after the
// head as they arrive; it appends the chunks' data to *body and consumes whole lines
// only, so the caller keeps what was not consumed and feeds it again with more. Chunk
// extensions and trailer fields are read and dropped.
class ChunkedDecoder {
 public:
  // max_body: decoded bytes allowed; more is an error (too_large set).
  explicit ChunkedDecoder(uint64_t max_body) : max_body_(max_body) {}

  struct Step {
    size_t consumed = 0;  // bytes of `in` used
    ParseResult result;   // kDone once the last chunk and the trailer are read
  };
  Step Feed(std::string_view in, std::string* body);

 private:
  enum class Phase { kSize, kData, kDataEnd, kTrailer, kDone };
  Phase phase_ = Phase::kSize;
  uint64_t remaining_ = 0;  // of the current chunk's data
  uint64_t max_body_;
  uint64_t decoded_ = 0;
  size_t trailer_bytes_ = 0;
};

}  // namespace ferry::frontend::http::http1
