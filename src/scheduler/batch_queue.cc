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

bool BatchQueue::Compatible(const Job& a, const Job& b) {
  if (a.inputs.size() != b.inputs.size() || a.outputs != b.outputs) return false;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const Tensor& x = a.inputs[i];
    const Tensor& y = b.inputs[i];
    if (x.name != y.name || x.shape.size() != y.shape.size() ||
        !std::equal(x.shape.begin() + (x.shape.empty() ? 0 : 1), x.shape.end(), y.shape.begin() + (y.shape.empty() ? 0 : 1)))
      return false;
  }
  return true;
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
  const size_t n_queues = levels_.size() + 1;
  auto queue_at = [this](size_t k) -> std::deque<Pending>& { return k < levels_.size() ? levels_[k] : delayed_; };
  const Pending* head = nullptr;
  for (size_t k = 0; k < n_queues && head == nullptr; ++k)
    if (!queue_at(k).empty()) head = &queue_at(k).front();
  if (head == nullptr) return d;

  // Picks are collected in service order, so the indices ascend within each queue.
  picks_.clear();
  int64_t rows = 0;
  uint64_t oldest = head->job.enqueue_ns;
  const Job& head_job = head->job;  // the queues do not change until the removal below
  bool more_compatible = false;  // a compatible request did not fit: the batch cannot grow
  for (size_t k = 0; k < n_queues; ++k) {
    std::deque<Pending>& q = queue_at(k);
    for (size_t i = 0; i < q.size(); ++i) {
      const Pending& p = q[i];
      if (&p.job != &head_job && !Compatible(p.job, head_job)) continue;
      if (rows + p.job.batch_size > max_batch_) {
        more_compatible = true;
        continue;
      }
      picks_.push_back({k, i, p.job.batch_size});
      rows += p.job.batch_size;
      oldest = std::min(oldest, p.job.enqueue_ns);
    }
  }

  size_t take = picks_.size();
  const bool full = rows >= max_batch_ || more_compatible || (!preferred_.empty() && rows >= preferred_.back());
  bool waited = flush || now >= oldest + max_delay_ns_;
  uint64_t target_wake = 0;
  if (latency_target_ns_ > 0 && !flush) waited = !ShouldWaitForMore(rows, oldest, now, &target_wake);
  const bool dispatch = full || waited;
  if (full && !waited && !preferred_.empty() && rows < max_batch_) {
    // Prefer the longest prefix whose rows are a preferred size; else take them all.
    int64_t sum = 0;
    for (size_t i = 0; i < picks_.size(); ++i) {
      sum += picks_[i].rows;
      if (std::binary_search(preferred_.begin(), preferred_.end(), sum)) take = i + 1;
    }
  }
  if (!dispatch) {
    d.wake_at = std::min(latency_target_ns_ > 0 ? target_wake : oldest + max_delay_ns_, next_deadline);
    return d;
  }
  // Move the picked jobs out, then close the gaps: per queue, the picks that start at its
  // front (the usual case: the whole queue, or its oldest requests) go in one range
  // erase; the rest one by one, back to front so indices stay valid.
  picks_.resize(take);
  d.batch.reserve(take);
  for (const Pick& p : picks_) {
    rows_ -= p.rows;
    d.batch.push_back(std::move(queue_at(p.queue)[p.index].job));
  }
  for (size_t first = 0; first < picks_.size();) {
    const size_t k = picks_[first].queue;
    size_t last = first;
    while (last < picks_.size() && picks_[last].queue == k) ++last;
    std::deque<Pending>& q = queue_at(k);
    size_t prefix = 0;  // picks first..first+prefix-1 are q[0..prefix-1]
    while (first + prefix < last && picks_[first + prefix].index == prefix) ++prefix;
    for (size_t j = last; j > first + prefix; --j) q.erase(q.begin() + static_cast<long>(picks_[j - 1].index));
    q.erase(q.begin(), q.begin() + static_cast<long>(prefix));
    first = last;
  }
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
