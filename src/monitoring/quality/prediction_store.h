#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ferry::monitoring::quality {

// What a request answered, as the feedback join keeps it: `rows` rows of `width`
// values of the prediction output (probabilities, regression outputs, or labels, whose
// text is in `labels` instead).
struct StoredPrediction {
  uint32_t rows = 0, width = 0;
  std::vector<double> values;       // rows x width (numeric outputs)
  std::vector<std::string> labels;  // rows x width (BYTES label outputs)
};

// How a lookup by request id ended.
enum class JoinResult { kJoined, kUnknown, kExpired, kEvicted, kDuplicate };
std::string_view JoinResultName(JoinResult r);  // "joined", "unknown", ...

// The predictions of one model version waiting for their true values, by request id:
// at most `max_pending` of them, each for at most `ttl_ns`. A full store evicts its
// oldest entry; an entry past its TTL expires. Ids that left the store (joined, expired
// or evicted) are remembered, up to `max_pending` of them, so that a second feedback
// for an id is told "duplicate" and a late one "expired" or "evicted" rather than
// "unknown".
// Time is passed in (monotonic nanoseconds), so tests need no clock.
// Thread-safety: a value; the caller serialises access.
class PredictionStore {
 public:
  PredictionStore(uint64_t max_pending, uint64_t ttl_ns);

  // Keeps a request's prediction. A request id already pending is replaced (a client
  // that reuses ids joins its latest answer).
  void Put(std::string id, StoredPrediction prediction, uint64_t now_ns);
  // The pending prediction of `id` that has not expired by `now_ns`, without taking it.
  const StoredPrediction* Peek(std::string_view id, uint64_t now_ns) const;
  // Takes `id`'s prediction (kJoined, with it), or says why there is none.
  JoinResult Take(std::string_view id, uint64_t now_ns, StoredPrediction* out);
  // Expires what is past its TTL (the store also does so on Put and Take).
  void Expire(uint64_t now_ns);

  size_t pending() const { return entries_.size(); }
  uint64_t evicted() const { return evicted_; }
  uint64_t expired() const { return expired_; }

 private:
  struct Entry {
    StoredPrediction prediction;
    uint64_t stored_ns = 0;
    uint64_t seq = 0;
  };
  void Forget(std::string id, JoinResult why);
  void DropOldest(JoinResult why);
  void Compact();

  const uint64_t max_pending_, ttl_ns_;
  uint64_t next_seq_ = 0;
  std::unordered_map<std::string, Entry> entries_;
  // Insertion order; an element whose seq no longer matches its entry's is stale.
  std::deque<std::pair<std::string, uint64_t>> order_;
  std::unordered_map<std::string, JoinResult> gone_;  // why an id left
  std::deque<std::string> gone_order_;
  uint64_t evicted_ = 0, expired_ = 0;
};

}  // namespace ferry::monitoring::quality
