#pragma once

// gRPC status codes, as the gRPC spec numbers them, for code that speaks the wire
// protocol without grpc++'s ::grpc::StatusCode (the native transport and the engine's
// native gateway).
namespace ferry::protocol::grpc_code {

inline constexpr int kOk = 0;
inline constexpr int kCancelled = 1;
inline constexpr int kUnknown = 2;
inline constexpr int kInvalidArgument = 3;
inline constexpr int kDeadlineExceeded = 4;
inline constexpr int kNotFound = 5;
inline constexpr int kResourceExhausted = 8;
inline constexpr int kUnimplemented = 12;
inline constexpr int kInternal = 13;
inline constexpr int kUnavailable = 14;

}  // namespace ferry::protocol::grpc_code
