#include "scheduler/batch_queue.h"

#include <algorithm>

namespace ferry::scheduler {

BatchQueue::BatchQueue(const inference::ModelConfig& config)
    : max_batch_(std::max(1, config.max_batch_size())),
      max_delay_ns_(config.dynamic_batching().max_queue_delay_microseconds() * 1000) {
  const auto& db = config.dynamic_batching();
  for (int32_t p : db.preferred_batch_size())
    if (p > 0 && p <= max_batch_) preferred_.push_back(p);
  std::sort(preferred_.begin(), preferred_.end());
  uint32_t n = static_cast<uint32_t>(std::max<uint64_t>(1, db.priority_levels()));
  default_level_ = db.default_priority_level() >= 1 && db.default_priority_level() <= n
                       ? static_cast<uint32_t>(db.default_priority_level())
                       : n;  // Triton's default level is the lowest when unset
  if (db.priority_levels() == 0) default_level_ = 1;
  auto to_policy = [](const inference::ModelQueuePolicy& q) {
    return LevelPolicy{q.max_queue_size(), q.default_timeout_microseconds(),
                       q.timeout_action() == inference::ModelQueuePolicy::DELAY, q.allow_timeout_override()};
  };
  policies_.assign(n, to_policy(db.default_queue_policy()));
  for (const auto& [level, policy] : db.priority_queue_policy())
    if (level >= 1 && level <= n) policies_[level - 1] = to_policy(policy);
  levels_.resize(n);
}

std::string BatchQueue::Signature(const Job& job) {
  std::string s;
  for (const auto& t : job.inputs) {
    s += t.name;
    s += ':';
    for (size_t i = 1; i < t.shape.size(); ++i) s += std::to_string(t.shape[i]) + ',';
    s += ';';
  }
  s += '>';
  for (const auto& o : job.outputs) s += o + ';';
  return s;
}

Status BatchQueue::Enqueue(Job job, uint64_t now) {
  uint32_t level = job.priority == 0 ? default_level_ : job.priority;
  if (level > levels_.size())
    return InvalidArgument("parameter 'priority': " + std::to_string(job.priority) + " is outside the model's levels 1.." +
                           std::to_string(levels_.size()));
  const LevelPolicy& policy = policies_[level - 1];
  if (policy.max_size > 0 && levels_[level - 1].size() >= policy.max_size)
    return Overloaded("the request queue (priority level " + std::to_string(level) + ") is full: max_queue_size " +
                      std::to_string(policy.max_size));
  uint64_t timeout_us = policy.default_timeout_us;
  if (job.timeout_us > 0 && policy.allow_override)
    timeout_us = timeout_us == 0 ? job.timeout_us : std::min(timeout_us, job.timeout_us);
  Pending p;
  p.job = std::move(job);
  p.job.enqueue_ns = now;
  p.signature = Signature(p.job);
  p.deadline = timeout_us > 0 ? now + timeout_us * 1000 : 0;
  p.delay_on_timeout = policy.delay_on_timeout;
  // DELAY means "serve it anyway, later": no deadline holds during execution then.
  p.job.deadline_ns = p.delay_on_timeout ? 0 : p.deadline;
  levels_[level - 1].push_back(std::move(p));
  ++size_;
  return Status::Ok();
}

BatchQueue::Decision BatchQueue::Next(uint64_t now, bool flush) {
  Decision d;
  // Expire first, so an expired request never runs and never holds a batch open.
  uint64_t next_deadline = UINT64_MAX;
  for (auto& level : levels_) {
    for (auto it = level.begin(); it != level.end();) {
      if (it->deadline != 0 && it->deadline <= now) {
        if (it->delay_on_timeout) {
          it->deadline = 0;
          delayed_.push_back(std::move(*it));
        } else {
          d.expired.push_back(std::move(it->job));
          --size_;
        }
        it = level.erase(it);
        continue;
      }
      if (it->deadline != 0) next_deadline = std::min(next_deadline, it->deadline);
      ++it;
    }
  }

  // Candidates in service order: levels by priority, then delayed requests.
  std::vector<std::deque<Pending>*> order;
  for (auto& level : levels_) order.push_back(&level);
  order.push_back(&delayed_);
  const Pending* head = nullptr;
  for (auto* q : order)
    if (!q->empty()) {
      head = &q->front();
      break;
    }
  if (head == nullptr) return d;

  struct Pick {
    std::deque<Pending>* queue;
    size_t index;
    int64_t rows;
  };
  std::vector<Pick> picks;
  int64_t rows = 0;
  uint64_t oldest = head->job.enqueue_ns;
  const std::string signature = head->signature;
  bool more_compatible = false;  // a compatible request did not fit: the batch cannot grow
  for (auto* q : order) {
    for (size_t i = 0; i < q->size(); ++i) {
      const Pending& p = (*q)[i];
      if (p.signature != signature) continue;
      if (rows + p.job.batch_size > max_batch_) {
        more_compatible = true;
        continue;
      }
      picks.push_back({q, i, p.job.batch_size});
      rows += p.job.batch_size;
      oldest = std::min(oldest, p.job.enqueue_ns);
    }
  }

  size_t take = picks.size();
  const bool full = rows >= max_batch_ || more_compatible || (!preferred_.empty() && rows >= preferred_.back());
  const bool waited = flush || now >= oldest + max_delay_ns_;
  const bool dispatch = full || waited;
  if (full && !waited && !preferred_.empty() && rows < max_batch_) {
    // Prefer the longest prefix whose rows are a preferred size; else take them all.
    int64_t sum = 0;
    for (size_t i = 0; i < picks.size(); ++i) {
      sum += picks[i].rows;
      if (std::binary_search(preferred_.begin(), preferred_.end(), sum)) take = i + 1;
    }
  }
  if (!dispatch) {
    d.wake_at = std::min(oldest + max_delay_ns_, next_deadline);
    return d;
  }
  // Remove the picked requests, back to front per queue so indices stay valid.
  picks.resize(take);
  for (const Pick& p : picks) d.batch.push_back(std::move((*p.queue)[p.index].job));
  std::sort(picks.begin(), picks.end(), [](const Pick& a, const Pick& b) {
    return a.queue != b.queue ? a.queue < b.queue : a.index > b.index;
  });
  for (const Pick& p : picks) p.queue->erase(p.queue->begin() + static_cast<long>(p.index));
  size_ -= take;
  if (next_deadline != UINT64_MAX) d.wake_at = next_deadline;
  return d;
}

std::vector<Job> BatchQueue::TakeAll() {
  std::vector<Job> all;
  for (auto& level : levels_)
    for (auto& p : level) all.push_back(std::move(p.job));
  for (auto& p : delayed_) all.push_back(std::move(p.job));
  for (auto& level : levels_) level.clear();
  delayed_.clear();
  size_ = 0;
  return all;
}

}  // namespace ferry::scheduler
