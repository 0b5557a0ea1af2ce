#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "monitoring/feature_rows.h"
#include "monitoring/inference_tap.h"
#include "monitoring/record_consumer.h"

namespace ferry::monitoring {

struct MonitoringHubOptions {
  // Consumed records whose storage is kept for NewRecord (their tensor bytes are let go
  // at once); 0 keeps none.
  size_t pooled_records = 1024;
  // Records waiting for the consumers (queued or being consumed); beyond, new records
  // are dropped and counted. 0 drops every record.
  size_t max_records = 10000;
  // Tensor bytes those records hold (inputs + outputs; a binary request's tensors keep
  // the whole request body alive, so this is a lower bound of the memory they pin).
  size_t max_bytes = 256u << 20;
  // The background thread is woken when this many records wait, else it looks every
  // `max_delay` (waking it for every record would cost a context switch per request on
  // a busy core); it takes every record waiting then.
  size_t max_batch = 256;
  std::chrono::milliseconds max_delay{10};
};

// The monitoring hub: the InferenceTap the server feeds, and the one background thread
// that feeds the RecordConsumers (payload log, drift, feedback).
//
// The request path calls Demand or Wants (one atomic snapshot load and two map lookups, no lock)
// and Offer (one short lock; a full queue drops the record and counts it, never waits);
// NewRecord takes a pooled record under a lock of its own.
// A consumer that takes a version as feature rows (RecordConsumer::RowsFor, drift) gets
// no records: OfferRows copies the request's values into the calling thread's own
// staging block (its lock is shared with no other request thread; the hub's thread takes
// it once per pass), and every pass of the hub's thread (at least every `max_delay`)
// takes the blocks of every thread and hands them to ConsumeRows. No wake-up, no queue
// entry and no shared lock per request.
// The model lifecycle calls VersionReady / VersionGone, which Attach / Detach the
// consumers and republish the snapshot of wanted versions. Stop drains the queue and
// Flushes every consumer.
//
// Settings: a consumer added with prefix "payload_log" owns the settings
// "payload_log.*"; VersionReady refuses (names) a setting no consumer owns, so a typo
// cannot silently switch monitoring off.
//
// Metrics (with a registry): ferry_monitoring_records_total{model,version},
// ferry_monitoring_records_dropped_total{model,version,reason} (reason "queue_full" or
// "stopped"), ferry_monitoring_queue_records and ferry_monitoring_queue_bytes.
//
// Thread-safety: Wants, Demand, NewRecord, Offer, OfferRecord, VersionReady and
// VersionGone are thread-safe; AddConsumer and Start before any of them, Stop once, by
// the owner.
class MonitoringHub final : public InferenceTap {
 public:
  // `registry` (not owned; may be null) receives the hub's metrics and must outlive it.
  MonitoringHub(MonitoringHubOptions options, prometheus::Registry* registry);
  ~MonitoringHub() override;  // Stop()
  MonitoringHub(const MonitoringHub&) = delete;
  MonitoringHub& operator=(const MonitoringHub&) = delete;

  // REQUIRES: before Start. `settings_prefix` names the consumer's settings (no dot).
  void AddConsumer(std::unique_ptr<RecordConsumer> consumer, std::string settings_prefix);
  // Settings "<prefix>.*" that a part other than a consumer reads and checks (the
  // server's explanations, "explain"): VersionReady lets them pass. REQUIRES: before Start.
  void AcceptSettings(std::string prefix) { accepted_prefixes_.push_back(std::move(prefix)); }
  // Starts the background thread.
  void Start();
  // Drains what is queued into the consumers, then Flushes them and joins the thread;
  // records offered from now on are dropped (reason "stopped"). Idempotent.
  void Stop();

  // A version became ready, or was reloaded (an attached version is Detached first).
  // Attaches it to every consumer; errors (unknown settings, a consumer's refusal) are
  // joined into one INVALID_ARGUMENT naming the model, version and settings, and the
  // version is then monitored by the consumers that did accept it.
  Status VersionReady(const MonitoredModel& model);
  // A version was unloaded: no more of its records are taken, the ones already queued
  // are delivered (waiting up to 10 s for the thread), then it is Detached from every
  // consumer, so the requests it answered before it went are not lost.
  void VersionGone(std::string_view model, std::string_view version);

  bool Wants(std::string_view model, std::string_view version) const override;
  // The union of what the consumers that want the version read (their Demand when it
  // was attached); sample_rate 1 unless every one of them samples.
  TapDemand Demand(std::string_view model, std::string_view version) const override;
  void Offer(InferenceRecord record) override;
  // A consumed record's storage when one is pooled (MonitoringHubOptions::pooled_records):
  // a request of a monitored model then fills its record without an allocation, and
  // the monitoring thread frees none (both showed in profiles: a record was about seven
  // allocations made on the request thread and freed on the hub's).
  std::unique_ptr<InferenceRecord> NewRecord() override;
  void OfferRecord(std::unique_ptr<InferenceRecord> record) override;
  // A staging block holds at most max_records requests per consumer (a hub thread that
  // falls behind); beyond, the request's rows are dropped and counted as queue_full.
  void OfferRows(const TapDemand& demand, const std::vector<Tensor>& inputs,
                 const std::vector<Tensor>& outputs) override;

  // Records queued or being consumed now (for tests and gauges).
  size_t pending() const;

 private:
  struct RowConsumer {
    RecordConsumer* consumer = nullptr;  // of consumers_
    std::shared_ptr<const FeatureRowExtractor> extractor;
  };
  struct VersionCounters {
    std::string model, version;
    TapDemand demand;
    std::vector<RecordConsumer*> consumers;  // of consumers_, the ones that want the version's records
    std::vector<RowConsumer> row_consumers;  // the ones that take its rows
    prometheus::Counter* consumed = nullptr;
    prometheus::Counter* dropped_full = nullptr;
    prometheus::Counter* dropped_stopped = nullptr;
  };
  // Model -> version -> counters, for the versions some consumer wants.
  using Snapshot = std::map<std::string, std::map<std::string, std::shared_ptr<VersionCounters>, std::less<>>, std::less<>>;
  struct Item {
    std::unique_ptr<InferenceRecord> record;
    size_t bytes = 0;
    std::shared_ptr<VersionCounters> counters;
  };
  struct Consumer {
    std::unique_ptr<RecordConsumer> consumer;
    std::string prefix;
  };
  // One thread's rows of one version for one row consumer, waiting for the hub's pass.
  struct StageEntry {
    std::shared_ptr<VersionCounters> counters;  // keeps the extractor alive
    size_t consumer = 0;                        // index in counters->row_consumers
    std::unique_ptr<FeatureRowExtractor::Cache> cache;
    FeatureRowBlock block;
    uint64_t uncounted = 0;  // of block.requests, those ferry_monitoring_records_total has yet to count
  };
  // A request thread's staging area: its lock is taken by that thread per request and
  // by the hub's thread once per pass, so it is never contended by other requests.
  struct ThreadStage {
    std::mutex mu;
    std::vector<StageEntry> entries;  // guarded by mu
  };
  struct TakenBlock {
    std::shared_ptr<VersionCounters> counters;
    size_t consumer = 0;
    FeatureRowBlock block;
    uint64_t uncounted = 0;
  };

  std::shared_ptr<VersionCounters> CountersFor(const std::string& model, const std::string& version);
  void Republish(const std::string& model, const std::string& version);
  void Run();
  void Deliver(std::vector<Item>& batch);
  ThreadStage& StageOfThisThread();
  // Takes every thread's staged blocks and hands them to the row consumers (the hub's
  // thread, or Stop's caller when it never started).
  void DeliverStages();

  const MonitoringHubOptions options_;
  prometheus::Registry* registry_;  // not owned; may be null
  std::vector<Consumer> consumers_;  // fixed after Start
  std::vector<std::string> accepted_prefixes_;  // fixed after Start

  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
  std::mutex lifecycle_mu_;  // serialises VersionReady / VersionGone and Republish
  std::set<std::pair<std::string, std::string>> attached_;  // guarded by lifecycle_mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Offered records in order. A vector that the thread swaps with its (empty) batch, so
  // both keep their capacity and an Offer allocates nothing for its place in the queue
  // (a deque of records this size allocated a block per record). Guarded by mu_.
  std::vector<Item> queue_;
  size_t records_ = 0;      // queued + being consumed; guarded by mu_
  size_t bytes_ = 0;        // their tensor bytes; guarded by mu_
  bool sleeping_ = false;   // the thread waits on cv_; guarded by mu_
  bool running_ = false;    // the thread runs; guarded by mu_
  uint64_t enqueued_ = 0;   // records ever queued; guarded by mu_
  uint64_t delivered_ = 0;  // of those, delivered to the consumers (in queue order); guarded by mu_
  std::condition_variable delivered_cv_;
  bool stopping_ = false;   // guarded by mu_
  std::atomic<bool> stopping_rows_{false};  // stopping_, for OfferRows (which takes no mu_)
  uint64_t passes_ = 0;     // DeliverStages passes completed; guarded by mu_
  std::thread thread_;
  std::vector<const InferenceRecord*> run_;  // Deliver's scratch (the hub's thread only)
  // Staging areas of the threads that offered rows, by thread; created on a thread's
  // first OfferRows (found again through a thread_local cache keyed by id_), kept until
  // the hub goes.
  const uint64_t id_;  // unique per hub in the process (the thread_local caches' key)
  std::mutex stages_mu_;
  std::map<std::thread::id, std::unique_ptr<ThreadStage>> stages_;  // guarded by stages_mu_
  std::vector<ThreadStage*> stage_list_;   // DeliverStages' scratch (the hub's thread only)
  std::vector<TakenBlock> taken_;          // DeliverStages' scratch (the hub's thread only)
  std::vector<FeatureRowBlock> spare_blocks_;  // emptied blocks with their capacity (the hub's thread only)
  // Consumed records kept for NewRecord: tensors without bytes, strings and vectors with
  // their capacity. Its own lock, so that taking one never waits for the queue's.
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<InferenceRecord>> pool_;  // guarded by pool_mu_

  prometheus::Family<prometheus::Counter>* consumed_family_ = nullptr;
  prometheus::Family<prometheus::Counter>* dropped_family_ = nullptr;
  prometheus::Gauge* queue_records_ = nullptr;
  prometheus::Gauge* queue_bytes_ = nullptr;
};

}  // namespace ferry::monitoring
