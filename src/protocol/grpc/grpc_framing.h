#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

// gRPC over HTTP/2 below the protobuf layer, as the gRPC wire spec (PROTOCOL-HTTP2)
// defines it: length-prefixed messages, the grpc-timeout header, and grpc-message's
// percent-encoding. Pure codecs on bytes; no sockets, no HTTP/2.
namespace ferry::protocol::grpc_wire {

// The prefix of every message: a compressed flag byte, then the length, big-endian.
inline constexpr size_t kPrefixBytes = 5;

// Appends the 5-byte prefix of a message of `length` bytes to `out`.
void AppendMessagePrefix(std::string* out, bool compressed, uint32_t length);

// One complete message as the deframer hands it out: the bytes after the prefix.
struct Message {
  bool compressed = false;
  std::string_view bytes;  // valid only during the callback that receives it
};

// Cuts a stream's DATA bytes, delivered in arbitrary pieces, into messages. A message
// that lies whole inside one piece is handed out as a view into that piece (no copy);
// one split across pieces is gathered in an internal buffer first.
// Thread-safety: not thread-safe; one per stream.
class MessageDeframer {
 public:
  // Messages longer than `max_message_bytes` fail with ResourceExhausted.
  explicit MessageDeframer(size_t max_message_bytes) : max_(max_message_bytes) {}

  // Feeds the next piece; calls `on_message(const Message&)` for each message it
  // completes, in order; on_message returns false to stop (nothing more is read, the
  // deframer is then unusable). Fails, and stops, with ResourceExhausted naming both
  // sizes when a prefix announces a message over the limit, or InvalidArgument when a
  // prefix's flag byte is neither 0 nor 1.
  template <typename OnMessage>
  Status Feed(std::string_view piece, OnMessage&& on_message);

  // True while the bytes fed so far end inside a message (an end of stream now would
  // cut it).
  bool mid_message() const { return have_ > 0; }

 private:
  // Reads the prefix in buffer_[0..5); sets need_ and compressed_.
  Status TakePrefix(const char* prefix);

  const size_t max_;
  std::string buffer_;  // a message being gathered: its prefix, then its bytes
  size_t have_ = 0;     // bytes of the current message (prefix included) gathered so far
  size_t need_ = 0;     // its total size, prefix included, once the prefix is known
  bool compressed_ = false;
};

// Parses a grpc-timeout value ("1S", "100m", "2500000u": at most 8 ASCII digits and one
// unit of H, M, S, m, u, n). Fails with InvalidArgument quoting the value otherwise.
Result<std::chrono::nanoseconds> ParseTimeout(std::string_view value);

// grpc-message's encoding: bytes outside 0x20..0x7E, and '%' itself, become %XX.
std::string PercentEncode(std::string_view message);
// The inverse; malformed escapes are kept as they are, as the spec asks of receivers.
std::string PercentDecode(std::string_view encoded);

// ---------------------------------------------------------------- implementation

template <typename OnMessage>
Status MessageDeframer::Feed(std::string_view piece, OnMessage&& on_message) {
  while (!piece.empty()) {
    if (have_ == 0 && piece.size() >= kPrefixBytes) {
      // The fast path: the prefix, and maybe the whole message, are inside this piece.
      if (Status s = TakePrefix(piece.data()); !s.ok()) return s;
      if (piece.size() >= need_) {
        if (!on_message(Message{compressed_, piece.substr(kPrefixBytes, need_ - kPrefixBytes)})) return Status::Ok();
        piece.remove_prefix(need_);
        need_ = 0;
        continue;
      }
    }
    // Gather: first the prefix, then the rest of the message.
    const size_t target = have_ < kPrefixBytes ? kPrefixBytes : need_;
    if (buffer_.size() < target) buffer_.resize(target);
    const size_t n = std::min(piece.size(), target - have_);
    buffer_.replace(have_, n, piece.data(), n);
    have_ += n;
    piece.remove_prefix(n);
    if (have_ == kPrefixBytes && need_ == 0) {
      if (Status s = TakePrefix(buffer_.data()); !s.ok()) return s;
      if (buffer_.size() < need_) buffer_.resize(need_);
    }
    if (have_ >= kPrefixBytes && have_ == need_) {
      const std::string_view bytes = std::string_view(buffer_).substr(kPrefixBytes, need_ - kPrefixBytes);
      have_ = need_ = 0;
      if (!on_message(Message{compressed_, bytes})) return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace ferry::protocol::grpc_wire
