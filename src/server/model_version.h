#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "core/gate.h"
#include "monitoring/metrics.h"
#include "repository/model_config.pb.h"
#include "scheduler/scheduler.h"
#include "server/statistics.h"

namespace ferry::server {

struct ExplainSetup;  // server/explain_setup.h

// One loaded, ready model version: its completed config and its scheduler, which owns
// the execution instances.
// Shared (shared_ptr) by the model manager's snapshot and by in-flight requests; the
// gate counts those requests so a retired version finishes them before it stops.
// Thread-safety: immutable after construction except the pool and gate, which are
// thread-safe.
class ModelVersion {
 public:
  ModelVersion(std::string name, int64_t version, inference::ModelConfig config, std::string platform,
               std::unique_ptr<scheduler::Scheduler> scheduler,
               std::shared_ptr<monitoring::ModelVersionMetrics> metrics, std::filesystem::path model_dir = {})
      : name_(std::move(name)),
        version_(version),
        version_string_(std::to_string(version)),
        config_(std::move(config)),
        platform_(std::move(platform)),
        scheduler_(std::move(scheduler)),
        metrics_(std::move(metrics)),
        model_dir_(std::move(model_dir)),
        load_id_(NextLoadId()) {}

  const std::string& name() const { return name_; }
  int64_t version() const { return version_; }
  const std::string& version_string() const { return version_string_; }
  const inference::ModelConfig& config() const { return config_; }
  const std::string& platform() const { return platform_; }
  // Unique per load in this process: a reloaded version has a new id (cache keys).
  uint64_t load_id() const { return load_id_; }
  scheduler::Scheduler& scheduler() { return *scheduler_; }
  const scheduler::Scheduler& scheduler() const { return *scheduler_; }
  // The model's folder (where its profile.json lies); empty when not known.
  const std::filesystem::path& model_dir() const { return model_dir_; }
  Gate& gate() { return gate_; }
  // What explanations keep for this version, built by the first explain request
  // (null until then). Thread-safe.
  std::shared_ptr<const ExplainSetup> explain_setup() const {
    std::lock_guard lock(explain_mu_);
    return explain_setup_;
  }
  void set_explain_setup(std::shared_ptr<const ExplainSetup> setup) {
    std::lock_guard lock(explain_mu_);
    explain_setup_ = std::move(setup);
  }
  monitoring::ModelVersionMetrics& metrics() { return *metrics_; }
  VersionStatistics& statistics() { return statistics_; }
  const VersionStatistics& statistics() const { return statistics_; }

  // Refuses new requests, waits for the in-flight ones, stops the instances.
  void Retire() {
    gate_.CloseAndDrain();
    scheduler_->Stop();
  }

 private:
  const std::string name_;
  const int64_t version_;
  const std::string version_string_;
  const inference::ModelConfig config_;
  const std::string platform_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  std::shared_ptr<monitoring::ModelVersionMetrics> metrics_;
  VersionStatistics statistics_;
  const std::filesystem::path model_dir_;
  const uint64_t load_id_;
  mutable std::mutex explain_mu_;
  std::shared_ptr<const ExplainSetup> explain_setup_;  // guarded by explain_mu_
  Gate gate_;

  static uint64_t NextLoadId() {
    static std::atomic<uint64_t> next{1};
    return next.fetch_add(1);
  }
};

// A request's hold on a model version: keeps it alive and inside its gate.
// Movable, not copyable; leaving the gate happens on destruction.
class VersionHandle {
 public:
  explicit VersionHandle(std::shared_ptr<ModelVersion> v) : v_(std::move(v)) {}
  VersionHandle(VersionHandle&& o) noexcept = default;
  VersionHandle& operator=(VersionHandle&&) = delete;
  ~VersionHandle() {
    if (v_) v_->gate().Leave();
  }
  ModelVersion* operator->() const { return v_.get(); }
  ModelVersion& operator*() const { return *v_; }

 private:
  std::shared_ptr<ModelVersion> v_;
};

}  // namespace ferry::server
