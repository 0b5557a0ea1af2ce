#include "monitoring/monitoring_hub.h"

#include <algorithm>

#include "core/log.h"

namespace ferry::monitoring {
namespace {

size_t RecordBytes(const InferenceRecord& r) {
  size_t n = r.error.size();
  for (const auto& t : r.inputs) n += t.byte_size();
  for (const auto& t : r.outputs) n += t.byte_size();
  return n;
}

// Lets go of what a consumed record holds of the request (tensor bytes, which keep a
// request body or a runtime's output alive) and keeps its storage. false: not worth
// keeping (a record of unusually many tensors).
bool Scrub(InferenceRecord& r) {
  constexpr size_t kMaxTensors = 16;
  if (r.inputs.size() > kMaxTensors || r.outputs.size() > kMaxTensors) return false;
  for (auto* tensors : {&r.inputs, &r.outputs})
    for (Tensor& t : *tensors) t.Borrow(nullptr, 0, nullptr);
  r.parameters.clear();
  r.error.clear();
  r.trace_parent.reset();
  return true;
}

uint64_t NextHubId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

MonitoringHub::MonitoringHub(MonitoringHubOptions options, prometheus::Registry* registry)
    : options_(options), registry_(registry), id_(NextHubId()) {
  snapshot_.store(std::make_shared<const Snapshot>());
  if (!registry_) return;
  consumed_family_ = &prometheus::BuildCounter()
                          .Name("ferry_monitoring_records_total")
                          .Help("Answered requests handed to the monitoring consumers (payload log, drift, feedback)")
                          .Register(*registry_);
  dropped_family_ = &prometheus::BuildCounter()
                         .Name("ferry_monitoring_records_dropped_total")
                         .Help("Answered requests of monitored models that monitoring dropped, by reason")
                         .Register(*registry_);
  queue_records_ = &prometheus::BuildGauge()
                        .Name("ferry_monitoring_queue_records")
                        .Help("Records waiting for (or being handled by) the monitoring consumers")
                        .Register(*registry_)
                        .Add({});
  queue_bytes_ = &prometheus::BuildGauge()
                      .Name("ferry_monitoring_queue_bytes")
                      .Help("Tensor bytes held by the records waiting for the monitoring consumers")
                      .Register(*registry_)
                      .Add({});
}

MonitoringHub::~MonitoringHub() { Stop(); }

void MonitoringHub::AddConsumer(std::unique_ptr<RecordConsumer> consumer, std::string settings_prefix) {
  consumers_.push_back({std::move(consumer), std::move(settings_prefix)});
}

void MonitoringHub::Start() {
  {
    std::lock_guard lock(mu_);
    running_ = true;
  }
  thread_ = std::thread([this] { Run(); });
}

void MonitoringHub::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  stopping_rows_.store(true, std::memory_order_relaxed);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  else Run();  // never started: drain and flush here
}

std::shared_ptr<MonitoringHub::VersionCounters> MonitoringHub::CountersFor(const std::string& model,
                                                                           const std::string& version) {
  auto c = std::make_shared<VersionCounters>();
  c->model = model;
  c->version = version;
  if (registry_) {
    c->consumed = &consumed_family_->Add({{"model", model}, {"version", version}});
    c->dropped_full = &dropped_family_->Add({{"model", model}, {"version", version}, {"reason", "queue_full"}});
    c->dropped_stopped = &dropped_family_->Add({{"model", model}, {"version", version}, {"reason", "stopped"}});
  }
  return c;
}

void MonitoringHub::Republish(const std::string& model, const std::string& version) {
  TapDemand demand;
  demand.sample_rate = 0;
  std::vector<RecordConsumer*> wanting;
  std::vector<RowConsumer> rows;
  if (attached_.count({model, version})) {
    for (const auto& c : consumers_) {
      if (auto extractor = c.consumer->RowsFor(model, version)) {
        rows.push_back({c.consumer.get(), std::move(extractor)});
        demand.wanted = true;
        demand.rows = true;
        continue;
      }
      const TapDemand d = c.consumer->Demand(model, version);
      if (!d.wanted) continue;
      wanting.push_back(c.consumer.get());
      demand.wanted = true;
      demand.inputs = demand.inputs || d.inputs;
      demand.outputs = demand.outputs || d.outputs;
      demand.sample_rate = std::max(demand.sample_rate, d.sample_rate);
    }
  }
  auto prev = snapshot_.load();
  auto next = std::make_shared<Snapshot>(*prev);
  if (demand.wanted) {
    auto& versions = (*next)[model];
    auto it = versions.find(version);
    if (it == versions.end()) it = versions.emplace(version, CountersFor(model, version)).first;
    else it->second = std::make_shared<VersionCounters>(*it->second);  // the published one is read unlocked
    it->second->demand = demand;
    it->second->consumers = std::move(wanting);
    it->second->row_consumers = std::move(rows);
  } else if (auto it = next->find(model); it != next->end()) {
    it->second.erase(version);
    if (it->second.empty()) next->erase(it);
  }
  snapshot_.store(std::move(next));
}

Status MonitoringHub::VersionReady(const MonitoredModel& model) {
  std::lock_guard lock(lifecycle_mu_);
  std::string errors;
  auto add_error = [&errors](const std::string& e) { errors += (errors.empty() ? "" : "; ") + e; };
  for (const auto& [key, value] : model.settings) {
    const std::string_view head = std::string_view(key).substr(0, key.find('.'));
    bool owned = false;
    for (const auto& c : consumers_) owned = owned || c.prefix == head;
    for (const auto& p : accepted_prefixes_) owned = owned || p == head;
    if (owned) continue;
    std::string known;
    for (const auto& c : consumers_) known += (known.empty() ? "" : ", ") + c.prefix + ".*";
    for (const auto& p : accepted_prefixes_) known += (known.empty() ? "" : ", ") + p + ".*";
    add_error("unknown setting 'monitoring." + key + "' (known: " + (known.empty() ? "none" : known) + ")");
  }
  const bool reload = attached_.count({model.model, model.version}) > 0;
  for (const auto& c : consumers_) {
    if (reload) c.consumer->Detach(model.model, model.version);
    Status s = c.consumer->Attach(model);
    if (!s.ok()) add_error(s.message());
  }
  attached_.insert({model.model, model.version});
  Republish(model.model, model.version);
  if (errors.empty()) return Status::Ok();
  return InvalidArgument("model '" + model.model + "' version " + model.version + ": monitoring: " + errors);
}

void MonitoringHub::VersionGone(std::string_view model, std::string_view version) {
  std::lock_guard lock(lifecycle_mu_);
  const std::pair<std::string, std::string> key{std::string(model), std::string(version)};
  if (!attached_.erase(key)) return;
  Republish(key.first, key.second);  // Offer takes no more of its records
  {
    std::unique_lock lock(mu_);
    const uint64_t target = enqueued_;
    // Rows staged before the snapshot changed are taken by the pass after the one that
    // may be running now.
    const uint64_t passes = passes_ + 2;
    if (running_)
      delivered_cv_.wait_for(lock, std::chrono::seconds(10),
                             [&] { return (delivered_ >= target && passes_ >= passes) || !running_; });
  }
  for (const auto& c : consumers_) c.consumer->Detach(model, version);
}

bool MonitoringHub::Wants(std::string_view model, std::string_view version) const {
  return Demand(model, version).wanted;
}

TapDemand MonitoringHub::Demand(std::string_view model, std::string_view version) const {
  auto snap = snapshot_.load();
  auto m = snap->find(model);
  if (m == snap->end()) return {};
  auto v = m->second.find(version);
  if (v == m->second.end()) return {};
  TapDemand d = v->second->demand;
  if (d.rows) d.rows_handle = v->second;
  return d;
}

void MonitoringHub::Offer(InferenceRecord record) { OfferRecord(std::make_unique<InferenceRecord>(std::move(record))); }

void MonitoringHub::OfferRecord(std::unique_ptr<InferenceRecord> record) {
  std::shared_ptr<VersionCounters> counters;
  {
    auto snap = snapshot_.load();
    auto m = snap->find(record->model);
    if (m == snap->end()) return;  // no longer monitored (unloaded meanwhile)
    auto v = m->second.find(record->version);
    if (v == m->second.end()) return;
    counters = v->second;
  }
  const size_t bytes = RecordBytes(*record);
  bool notify = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      if (counters->dropped_stopped) counters->dropped_stopped->Increment();
      return;
    }
    // One record larger than the byte bound is still taken when the queue is empty, so
    // a model whose requests are all big is not silently never monitored.
    if (records_ >= options_.max_records || (bytes_ + bytes > options_.max_bytes && records_ > 0)) {
      if (counters->dropped_full) counters->dropped_full->Increment();
      return;
    }
    ++records_;
    ++enqueued_;
    bytes_ += bytes;
    queue_.push_back({std::move(record), bytes, std::move(counters)});
    if (queue_records_) {
      queue_records_->Set(static_cast<double>(records_));
      queue_bytes_->Set(static_cast<double>(bytes_));
    }
    notify = sleeping_ && queue_.size() >= options_.max_batch;
  }
  if (notify) cv_.notify_one();
}

MonitoringHub::ThreadStage& MonitoringHub::StageOfThisThread() {
  // The hub this thread last staged for: one compare on the usual path.
  thread_local uint64_t cached_hub = 0;
  thread_local ThreadStage* cached_stage = nullptr;
  if (cached_hub == id_) return *cached_stage;
  std::lock_guard lock(stages_mu_);
  std::unique_ptr<ThreadStage>& stage = stages_[std::this_thread::get_id()];
  if (!stage) stage = std::make_unique<ThreadStage>();
  cached_hub = id_;
  cached_stage = stage.get();
  return *stage;
}

void MonitoringHub::OfferRows(const TapDemand& demand, const std::vector<Tensor>& inputs,
                              const std::vector<Tensor>& outputs) {
  // The version as Demand found it for this request (republished since, its rows go to
  // the extractors of then, which a consumer that re-attached ignores).
  const auto* counters = static_cast<const VersionCounters*>(demand.rows_handle.get());
  if (!counters || counters->row_consumers.empty()) return;
  if (stopping_rows_.load(std::memory_order_relaxed)) {
    if (counters->dropped_stopped) counters->dropped_stopped->Increment();
    return;
  }
  ThreadStage& stage = StageOfThisThread();
  bool dropped = false;
  {
    std::lock_guard lock(stage.mu);
    for (size_t c = 0; c < counters->row_consumers.size(); ++c) {
      StageEntry* entry = nullptr;
      for (StageEntry& e : stage.entries)
        if (e.counters.get() == counters && e.consumer == c) entry = &e;
      if (!entry) {
        StageEntry& e = stage.entries.emplace_back();
        e.counters = std::const_pointer_cast<VersionCounters>(
            std::static_pointer_cast<const VersionCounters>(demand.rows_handle));
        e.consumer = c;
        e.cache = counters->row_consumers[c].extractor->NewCache();
        entry = &e;
      }
      if (entry->block.requests >= options_.max_records) {
        dropped = true;
        continue;
      }
      counters->row_consumers[c].extractor->Append(inputs, outputs, entry->cache.get(), &entry->block);
      // Counted once, as a record is, whatever the number of row consumers.
      if (c == 0) ++entry->uncounted;
    }
  }
  if (dropped && counters->dropped_full) counters->dropped_full->Increment();
}

void MonitoringHub::DeliverStages() {
  std::vector<ThreadStage*>& stages = stage_list_;  // only the hub's thread delivers
  stages.clear();
  {
    std::lock_guard lock(stages_mu_);
    for (auto& [thread, stage] : stages_) stages.push_back(stage.get());
  }
  std::vector<TakenBlock>& taken = taken_;  // only the hub's thread delivers
  taken.clear();
  auto published = snapshot_.load();
  auto current = [&](const VersionCounters& c) {
    auto m = published->find(c.model);
    if (m == published->end()) return false;
    auto v = m->second.find(c.version);
    return v != m->second.end() && v->second.get() == &c;
  };
  for (ThreadStage* stage : stages) {
    std::lock_guard lock(stage->mu);
    for (size_t i = 0; i < stage->entries.size();) {
      StageEntry& e = stage->entries[i];
      if (e.block.requests == 0) {
        // A version republished or gone since: its entry goes once it is empty.
        if (!current(*e.counters)) {
          stage->entries.erase(stage->entries.begin() + static_cast<std::ptrdiff_t>(i));
          continue;
        }
        ++i;
        continue;
      }
      TakenBlock& t = taken.emplace_back();
      t.counters = e.counters;
      t.consumer = e.consumer;
      t.uncounted = e.uncounted;
      e.uncounted = 0;
      // The stage keeps an emptied block with its capacity: no allocation on either side.
      if (!spare_blocks_.empty()) {
        t.block = std::move(spare_blocks_.back());
        spare_blocks_.pop_back();
      }
      std::swap(t.block, e.block);
      ++i;
    }
  }
  for (TakenBlock& t : taken) {
    const RowConsumer& rc = t.counters->row_consumers[t.consumer];
    rc.consumer->ConsumeRows(t.counters->model, t.counters->version, *rc.extractor, t.block);
    if (t.counters->consumed && t.uncounted > 0) t.counters->consumed->Increment(static_cast<double>(t.uncounted));
    t.block.clear();
    spare_blocks_.push_back(std::move(t.block));
  }
  taken.clear();  // lets go of the counters
}

std::unique_ptr<InferenceRecord> MonitoringHub::NewRecord() {
  {
    std::lock_guard lock(pool_mu_);
    if (!pool_.empty()) {
      std::unique_ptr<InferenceRecord> r = std::move(pool_.back());
      pool_.pop_back();
      return r;
    }
  }
  return std::make_unique<InferenceRecord>();
}

size_t MonitoringHub::pending() const {
  std::lock_guard lock(mu_);
  return records_;
}

void MonitoringHub::Deliver(std::vector<Item>& batch) {
  // The consumers that wanted the version when the record was offered (asking each one
  // per record would take its lock and search its versions every time), handed each run
  // of one version's records at once. One that has detached the version since finds no
  // state for it and ignores the run.
  std::vector<const InferenceRecord*>& run = run_;  // only the hub's thread delivers
  for (size_t i = 0; i < batch.size();) {
    const VersionCounters* counters = batch[i].counters.get();
    run.clear();
    for (; i < batch.size() && batch[i].counters.get() == counters; ++i) run.push_back(batch[i].record.get());
    for (RecordConsumer* c : counters->consumers) c->ConsumeBatch(run);
    // A successful request of a version taken as rows is counted with its rows.
    size_t counted = run.size();
    if (!counters->row_consumers.empty())
      for (const InferenceRecord* r : run) counted -= r->code == StatusCode::kOk ? 1 : 0;
    if (counters->consumed && counted > 0) counters->consumed->Increment(static_cast<double>(counted));
  }
}

void MonitoringHub::Run() {
  std::vector<Item> batch;
  auto next_tick = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (;;) {
    if (const auto now = std::chrono::steady_clock::now(); now >= next_tick) {
      for (const auto& c : consumers_) c.consumer->Tick();
      next_tick = now + std::chrono::seconds(1);
    }
    size_t batch_bytes = 0;
    {
      std::unique_lock lock(mu_);
      if (!stopping_ && queue_.size() < options_.max_batch) {
        sleeping_ = true;
        cv_.wait_for(lock, options_.max_delay, [this] { return stopping_ || queue_.size() >= options_.max_batch; });
        sleeping_ = false;
      }
      if (queue_.empty()) {
        const bool last = stopping_;
        lock.unlock();
        DeliverStages();
        lock.lock();
        ++passes_;
        delivered_cv_.notify_all();
        if (last) break;  // and everything is consumed
        continue;
      }
      batch.swap(queue_);  // batch is empty: the queue keeps the batch's capacity
      for (const Item& item : batch) batch_bytes += item.bytes;
    }
    Deliver(batch);
    DeliverStages();
    const size_t n = batch.size();
    // The tensors are let go before the bound frees up; the records' storage goes back
    // to the pool (one lock a batch).
    if (options_.pooled_records > 0) {
      for (Item& item : batch)  // outside the pool's lock
        if (!Scrub(*item.record)) item.record.reset();
      std::lock_guard lock(pool_mu_);
      for (Item& item : batch) {
        if (pool_.size() >= options_.pooled_records) break;
        if (item.record) pool_.push_back(std::move(item.record));
      }
    }
    batch.clear();
    std::lock_guard lock(mu_);
    records_ -= n;
    bytes_ -= batch_bytes;
    delivered_ += n;
    ++passes_;
    delivered_cv_.notify_all();
    if (queue_records_) {
      queue_records_->Set(static_cast<double>(records_));
      queue_bytes_->Set(static_cast<double>(bytes_));
    }
  }
  for (const auto& c : consumers_) c.consumer->Flush();
  std::lock_guard lock(mu_);
  running_ = false;
  delivered_cv_.notify_all();
}

}  // namespace ferry::monitoring
