#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ferry::stream {

// One partition's consumer lag as librdkafka's statistics report it: the high watermark
// (or, under read_committed, the last stable offset) minus the committed offset.
struct PartitionLag {
  std::string topic;
  int32_t partition = 0;
  int64_t lag = 0;
  bool operator==(const PartitionLag& o) const {
    return topic == o.topic && partition == o.partition && lag == o.lag;
  }
};

// Reads the per-partition lag of a librdkafka statistics JSON (what
// `statistics.interval.ms` emits to the stats callback: topics.<name>.partitions.<id>):
// `consumer_lag`, or `consumer_lag_stored` when that is lower. (Offsets committed in a
// transaction go through the producer, so the consumer's own committed offset goes
// stale; ferry stores each committed offset on the consumer too, which keeps
// consumer_lag_stored right.) Skips the internal partition -1 and partitions whose lag
// is unknown (-1: not assigned to this consumer, or nothing committed or stored yet).
// Sorted by topic, partition.
// INVALID_ARGUMENT when the text is not such a JSON object.
Result<std::vector<PartitionLag>> ParseConsumerLag(std::string_view stats_json);

}  // namespace ferry::stream
