#pragma once

#include <grpcpp/support/status.h>

namespace ferry::frontend::grpc {

// Where a served call reports the status it finished with, e.g. a per-method counter
// (MethodCounter). The services here take one as an optional, non-owned pointer: null
// means the calls are not counted (`ferry engine`'s gateway).
// Thread-safety: implementations are called from any polling or worker thread.
class CallCountSink {
 public:
  virtual ~CallCountSink() = default;
  virtual void Count(::grpc::StatusCode code) = 0;
};

}  // namespace ferry::frontend::grpc
