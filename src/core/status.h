#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace ferry {

// Canonical error codes. protocol/error_map.h is the one place that turns them into
// HTTP status codes (and gRPC codes).
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // malformed or inconsistent request: HTTP 400
  kNotFound,           // unknown model or version: HTTP 404
  kUnavailable,        // not ready, shutting down: HTTP 503
  kOverloaded,         // a full queue: HTTP 503 with Retry-After, gRPC RESOURCE_EXHAUSTED
  kResourceExhausted,  // over a size limit: HTTP 413
  kUnimplemented,      // feature or encoding not supported: HTTP 501
  kFailedPrecondition, // operation not allowed in this state/mode: HTTP 400
  kAlreadyExists,
  kCancelled,
  kDeadlineExceeded,
  kInternal,           // a bug or a runtime failure: HTTP 500
};

std::string_view StatusCodeName(StatusCode code);

// Status is an error code plus a message naming the thing that went wrong.
// The OK status holds no allocation, so returning it costs one pointer.
// Thread-safety: immutable after construction; safe to copy across threads.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return state_ == nullptr; }
  StatusCode code() const { return state_ ? state_->code : StatusCode::kOk; }
  const std::string& message() const;
  std::string ToString() const;

 private:
  struct State {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const State> state_;
};

inline Status InvalidArgument(std::string m) { return Status(StatusCode::kInvalidArgument, std::move(m)); }
inline Status NotFound(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status Unavailable(std::string m) { return Status(StatusCode::kUnavailable, std::move(m)); }
inline Status Overloaded(std::string m) { return Status(StatusCode::kOverloaded, std::move(m)); }
inline Status DeadlineExceeded(std::string m) { return Status(StatusCode::kDeadlineExceeded, std::move(m)); }
inline Status Cancelled(std::string m) { return Status(StatusCode::kCancelled, std::move(m)); }
inline Status ResourceExhausted(std::string m) { return Status(StatusCode::kResourceExhausted, std::move(m)); }
inline Status Unimplemented(std::string m) { return Status(StatusCode::kUnimplemented, std::move(m)); }
inline Status FailedPrecondition(std::string m) { return Status(StatusCode::kFailedPrecondition, std::move(m)); }
inline Status Internal(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }

}  // namespace ferry

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define FERRY_RETURN_IF_ERROR(expr)              \
  do {                                           \
    ::ferry::Status _ferry_status = (expr);      \
    if (!_ferry_status.ok()) return _ferry_status; \
  } while (0)
