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
  full_rows_ = preferred_.empty() ? max_batch_ : preferred_.back();
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
  if (auto it = config.parameters().find("latency_target_microseconds"); it != config.parameters().end()) {
    try {
      latency_target_ns_ = std::stoull(it->second.string_value()) * 1000;
    } catch (...) {
      latency_target_ns_ = 0;  // validated at load (ModelManager); ignore here
    }
  }
  exec_ns_.assign(static_cast<size_t>(max_batch_) + 1, 0.0);
}

void BatchQueue::ObserveExecution(int64_t rows, uint64_t ns) {
  if (rows < 1 || rows > max_batch_) return;
  double& e = exec_ns_[static_cast<size_t>(rows)];
  e = e == 0 ? static_cast<double>(ns) : 0.8 * e + 0.2 * static_cast<double>(ns);
}

double BatchQueue::ExecNs(int64_t rows) const {
  int64_t r1 = 0, r0 = 0;
  for (int64_t r = std::min(rows, max_batch_); r >= 1; --r) {
    if (exec_ns_[static_cast<size_t>(r)] <= 0) continue;
    if (r1 == 0) {
      r1 = r;
      if (r1 == rows) return exec_ns_[static_cast<size_t>(r)];
    } else {
      r0 = r;
      break;
    }
  }
  if (r1 == 0) return 0;
  const double t1 = exec_ns_[static_cast<size_t>(r1)];
  if (r0 == 0) return t1;
  const double slope = (t1 - exec_ns_[static_cast<size_t>(r0)]) / static_cast<double>(r1 - r0);
  return t1 + std::max(0.0, slope) * static_cast<double>(rows - r1);
}

bool BatchQueue::ShouldWaitForMore(int64_t rows, uint64_t oldest, uint64_t now, uint64_t* wake_at) const {
  if (ns_per_arrival_row_ <= 0) return false;  // no arrival rate yet: run
  const double t_now = ExecNs(rows), t_next = ExecNs(rows + 1);
  if (t_now <= 0) return false;  // nothing measured yet: run, and learn
  // Company is worth waiting for only when requests arrive faster than a batch runs.
  // (In a closed loop with few clients, waiting would also slow the arrivals it waits for.)
  if (ns_per_arrival_row_ >= t_now) return false;
  // The arrivals stopped: nothing came within twice the usual gap since the last one (a
  // closed loop whose clients all wait in this batch, the end of a burst). Waiting longer
  // only idles the instance until the target forces the batch out.
  if (static_cast<double>(now) >= static_cast<double>(last_arrival_) + 2 * ns_per_arrival_row_) return false;
  // A measured bigger batch that costs as much per row is no reason to wait.
  if (t_now > 0 && t_next > 0 && t_next / static_cast<double>(rows + 1) >= t_now / static_cast<double>(rows))
    return false;
  const double next_arrival = static_cast<double>(now) + ns_per_arrival_row_;
  if (next_arrival + t_next > static_cast<double>(oldest + latency_target_ns_)) return false;
  // Decide again when the next request is due, and never later than the last moment the
  // current batch can still leave and meet the target.
  double latest = static_cast<double>(oldest + latency_target_ns_) - t_now;
  *wake_at = static_cast<uint64_t>(std::min(next_arrival, latest));
  return *wake_at > now;
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
  const bool own_timeout = job.timeout_us > 0 && policy.allow_override;
  if (own_timeout) timeout_us = timeout_us == 0 ? job.timeout_us : std::min(timeout_us, job.timeout_us);
  Pending p;
  p.job = std::move(job);
  p.job.enqueue_ns = now;
  p.signature = Signature(p.job);
  p.deadline = timeout_us > 0 ? now + timeout_us * 1000 : 0;
  p.delay_on_timeout = policy.delay_on_timeout;
  // The model's queue timeout bounds the wait in the queue only (as Triton's); a request's
  // own timeout is its deadline and holds during execution too. DELAY means "serve it
  // anyway, later": no deadline holds then.
  p.job.deadline_ns = own_timeout && !p.delay_on_timeout ? p.deadline : 0;
  if (latency_target_ns_ > 0) {
    if (have_arrival_ && now > last_arrival_) {
      double per_row = static_cast<double>(now - last_arrival_) / static_cast<double>(std::max<int64_t>(1, p.job.batch_size));
      ns_per_arrival_row_ = ns_per_arrival_row_ == 0 ? per_row : 0.8 * ns_per_arrival_row_ + 0.2 * per_row;
    }
    last_arrival_ = now;
    have_arrival_ = true;
  }
  last_deadline_ = p.deadline;
  rows_ += p.job.batch_size;
  levels_[level - 1].push_back(std::move(p));
  ++size_;
  return Status::Ok();
}

bool BatchQueue::ArrivalNeedsDecision(uint64_t wake_at) const {
  if (latency_target_ns_ > 0) return true;
  // Compatible rows beyond the largest size also make a batch full: rows_ counts them all.
  if (rows_ >= full_rows_) return true;
  return last_deadline_ != 0 && last_deadline_ < wake_at;
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
          rows_ -= it->job.batch_size;
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
  bool waited = flush || now >= oldest + max_delay_ns_;
  uint64_t target_wake = 0;
  if (latency_target_ns_ > 0 && !flush) waited = !ShouldWaitForMore(rows, oldest, now, &target_wake);
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
    d.wake_at = std::min(latency_target_ns_ > 0 ? target_wake : oldest + max_delay_ns_, next_deadline);
    return d;
  }
  // Remove the picked requests, back to front per queue so indices stay valid.
  picks.resize(take);
  for (const Pick& p : picks) {
    rows_ -= p.rows;
    d.batch.push_back(std::move((*p.queue)[p.index].job));
  }
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
  rows_ = 0;
  return all;
}

}  // namespace ferry::scheduler
