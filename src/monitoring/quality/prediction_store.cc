#include "monitoring/quality/prediction_store.h"

#include <algorithm>

namespace ferry::monitoring::quality {

std::string_view JoinResultName(JoinResult r) {
  switch (r) {
    case JoinResult::kJoined: return "joined";
    case JoinResult::kUnknown: return "unknown";
    case JoinResult::kExpired: return "expired";
    case JoinResult::kEvicted: return "evicted";
    case JoinResult::kDuplicate: return "duplicate";
  }
  return "unknown";
}

PredictionStore::PredictionStore(uint64_t max_pending, uint64_t ttl_ns)
    : max_pending_(std::max<uint64_t>(1, max_pending)), ttl_ns_(ttl_ns) {}

void PredictionStore::Put(std::string id, StoredPrediction prediction, uint64_t now_ns) {
  Expire(now_ns);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    while (entries_.size() >= max_pending_) DropOldest(JoinResult::kEvicted);
    gone_.erase(id);  // the id is pending again
    it = entries_.emplace(id, Entry{}).first;
  }
  it->second.prediction = std::move(prediction);
  it->second.stored_ns = now_ns;
  it->second.seq = next_seq_++;
  order_.emplace_back(std::move(id), it->second.seq);
  if (order_.size() > 2 * max_pending_ + 64) Compact();
}

const StoredPrediction* PredictionStore::Peek(std::string_view id, uint64_t now_ns) const {
  auto it = entries_.find(std::string(id));
  if (it == entries_.end() || now_ns - it->second.stored_ns > ttl_ns_) return nullptr;
  return &it->second.prediction;
}

JoinResult PredictionStore::Take(std::string_view id, uint64_t now_ns, StoredPrediction* out) {
  Expire(now_ns);
  std::string key(id);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    *out = std::move(it->second.prediction);
    entries_.erase(it);
    Forget(std::move(key), JoinResult::kDuplicate);
    return JoinResult::kJoined;
  }
  auto gone = gone_.find(key);
  return gone == gone_.end() ? JoinResult::kUnknown : gone->second;
}

void PredictionStore::Expire(uint64_t now_ns) {
  while (!order_.empty()) {
    auto& [id, seq] = order_.front();
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.seq != seq) {
      order_.pop_front();  // stale: joined or replaced since
      continue;
    }
    if (now_ns - it->second.stored_ns <= ttl_ns_) return;
    DropOldest(JoinResult::kExpired);
  }
}

void PredictionStore::DropOldest(JoinResult why) {
  while (!order_.empty()) {
    auto [id, seq] = std::move(order_.front());
    order_.pop_front();
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.seq != seq) continue;
    entries_.erase(it);
    if (why == JoinResult::kEvicted) ++evicted_;
    if (why == JoinResult::kExpired) ++expired_;
    Forget(std::move(id), why);
    return;
  }
}

// Remembers why an id left (what feedback naming it later is told), bounded FIFO.
void PredictionStore::Forget(std::string id, JoinResult why) {
  auto [it, inserted] = gone_.insert_or_assign(id, why);
  if (!inserted) return;
  gone_order_.push_back(std::move(id));
  while (gone_order_.size() > max_pending_) {
    gone_.erase(gone_order_.front());
    gone_order_.pop_front();
  }
}

void PredictionStore::Compact() {
  std::deque<std::pair<std::string, uint64_t>> live;
  for (auto& e : order_) {
    auto it = entries_.find(e.first);
    if (it != entries_.end() && it->second.seq == e.second) live.push_back(std::move(e));
  }
  order_.swap(live);
}

}  // namespace ferry::monitoring::quality
