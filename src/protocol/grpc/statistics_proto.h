#pragma once

#include <vector>

#include "protocol/grpc/grpc_service.pb.h"
#include "protocol/model_statistics.h"

// The statistics extension's gRPC messages (ModelStatisticsResponse) to and from ferry's
// StatisticsSnapshot: what `ferry serve` answers and what the engine's gRPC gateway reads
// from each replica, sums (MergeStatistics) and answers. Pure functions.
namespace ferry::protocol {

void StatisticsToProto(const std::vector<StatisticsSnapshot>& stats, inference::ModelStatisticsResponse* out);
std::vector<StatisticsSnapshot> StatisticsFromProto(const inference::ModelStatisticsResponse& in);

}  // namespace ferry::protocol
