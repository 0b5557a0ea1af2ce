#pragma once

#include "core/status.h"

namespace ferry::protocol {

// The one table from ferry status codes to HTTP status codes and gRPC codes.
inline int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kOverloaded: return 503;
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

// gRPC status codes (numbers as the gRPC spec fixes them), from the same table.
inline int GrpcCodeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 0;                   // OK
    case StatusCode::kCancelled: return 1;            // CANCELLED
    case StatusCode::kInvalidArgument: return 3;      // INVALID_ARGUMENT
    case StatusCode::kDeadlineExceeded: return 4;     // DEADLINE_EXCEEDED
    case StatusCode::kNotFound: return 5;             // NOT_FOUND
    case StatusCode::kAlreadyExists: return 6;        // ALREADY_EXISTS
    case StatusCode::kResourceExhausted: return 8;    // RESOURCE_EXHAUSTED
    case StatusCode::kOverloaded: return 8;           // RESOURCE_EXHAUSTED
    case StatusCode::kFailedPrecondition: return 9;   // FAILED_PRECONDITION
    case StatusCode::kUnimplemented: return 12;       // UNIMPLEMENTED
    case StatusCode::kInternal: return 13;            // INTERNAL
    case StatusCode::kUnavailable: return 14;         // UNAVAILABLE
  }
  return 2;  // UNKNOWN
}

}  // namespace ferry::protocol
