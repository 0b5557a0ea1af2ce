#pragma once

#include <memory>

#include "frontend/grpc/health_service.h"
#include "frontend/grpc/reflection_service.h"
#include "frontend/grpc_native/native_call.h"

// grpc.health.v1.Health/Watch, server reflection and unknown methods on the native
// transport, answered by the same service objects the grpc++ transport uses.
namespace ferry::frontend::grpc_native {

// One Watch stream: a HealthService subscriber from the client's half-close (its one
// request read) until the stream closes; writes the status, then each change.
std::unique_ptr<CallHandler> NewHealthWatch(grpc::HealthService* health);

// One ServerReflectionInfo stream: each request answered in order; OK at half-close.
std::unique_ptr<CallHandler> NewReflection(const grpc::ReflectionService* reflection);

// Any other path: UNIMPLEMENTED naming the method, before reading anything.
std::unique_ptr<CallHandler> NewUnknownMethod(std::string_view path);

}  // namespace ferry::frontend::grpc_native
