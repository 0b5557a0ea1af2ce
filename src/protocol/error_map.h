#pragma once

#include "core/status.h"

namespace ferry::protocol {

// The one table from ferry status codes to HTTP status codes. gRPC codes join here
// when the gRPC frontend lands.
inline int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kResourceExhausted: return 413;
    case StatusCode::kUnimplemented: return 501;
    case StatusCode::kInternal: return 500;
    case StatusCode::kDeadlineExceeded: return 504;
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists:
    case StatusCode::kCancelled:
      return 400;
  }
  return 500;
}

}  // namespace ferry::protocol
