#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "monitoring/metrics.h"
#include "runtime/registry.h"
#include "server/model_version.h"

namespace ferry::server {

// How the set of loaded models may change, as Triton names the modes.
enum class ControlMode {
  kNone,      // load everything at start; the load/unload API is refused
  kPoll,      // load everything at start, then follow changes in the repository
  kExplicit,  // load --load-model names (or everything) at start; load/unload API allowed
};

enum class ModelState { kUnknown, kReady, kUnavailable, kLoading, kUnloading };
std::string_view ModelStateName(ModelState s);

// One row of the repository index.
struct IndexEntry {
  std::string name;
  std::string version;  // empty for a model known only by name
  ModelState state = ModelState::kUnknown;
  std::string reason;
};

struct ModelManagerOptions {
  std::vector<std::filesystem::path> repositories;
  ControlMode mode = ControlMode::kNone;
  std::vector<std::string> startup_models;  // explicit mode; empty or "*" loads all
  int poll_seconds = 15;
  // Threads per instance; 0 divides the machine's cores among a model's instances.
  int intra_op_threads = 0;
  size_t max_queue_size = 0;
  // max_batch_size of a model loaded without a config (no max_batch_size, inputs or
  // outputs) that its runtime found to batch; 0 keeps the runtime's own choice.
  int default_max_batch_size = 1024;
  // Versions without dynamic batching whose executions average at most this long per
  // row run on the IO thread that received the request, when an instance is free
  // (scheduler::InstancePoolOptions::inline_execution_ns); 0 disables it.
  uint64_t inline_execution_us = 50;
};

// Owns the loaded model versions and their lifecycle: scan, load, reload, unload,
// polling. Requests find versions through an immutable snapshot swapped atomically,
// so lookups take no lock. A reload loads the new version first, publishes it, and
// only then retires the old one, which finishes its in-flight requests.
// Thread-safety: all public methods are thread-safe. Load/Unload/Poll are serialised
// among themselves and may block for the length of a load; never call them on an IO
// thread.
class ModelManager {
 public:
  ModelManager(ModelManagerOptions options, const runtime::RuntimeRegistry* runtimes, monitoring::Metrics* metrics);
  ~ModelManager();  // Stop()

  // Loads the models the control mode asks for at start and starts polling in poll
  // mode. A model that fails is recorded in the index, never fatal; only an unreadable
  // repository is an error.
  Status Start();

  // Finds a ready version and enters its gate. `version` empty means the latest ready
  // version. NOT_FOUND for unknown models or versions, UNAVAILABLE for a known model
  // that is not ready, INVALID_ARGUMENT for a malformed version string.
  Result<VersionHandle> Acquire(std::string_view model, std::string_view version) const;

  // Ready versions of a model, ascending; empty when none.
  std::vector<std::shared_ptr<ModelVersion>> ReadyVersions(std::string_view model) const;

  // The model repository API. FAILED_PRECONDITION outside explicit mode.
  Status Load(const std::string& model);
  Status Unload(const std::string& model);

  std::vector<IndexEntry> Index(bool ready_only) const;

  // Rescans the repository once, as the poll loop does (exposed for tests).
  void PollOnce();

  // Stops polling and retires every version (in-flight requests finish first).
  void Stop();

  // Called (under the lifecycle lock, so keep it quick) whenever a model gains its
  // first ready version or loses its last one. Replaces any earlier listener.
  using ReadyListener = std::function<void(const std::string& model, bool ready)>;
  void SetReadyListener(ReadyListener listener);

  // Called on the load thread, under the lifecycle lock, for each version that has
  // loaded and is about to serve (`config` its completed config; also for a reload of
  // a version already serving) and for each version that stopped serving (unloaded, or
  // no longer selected; `config` null). A non-OK answer for a loaded version is shown
  // as the version's reason in the repository index (it serves all the same).
  // Replaces any earlier listener; set it before Start.
  using VersionListener = std::function<Status(const std::string& model, int64_t version,
                                               const std::filesystem::path& model_dir,
                                               const inference::ModelConfig* config)>;
  void SetVersionListener(VersionListener listener) { version_listener_ = std::move(listener); }

 private:
  using VersionMap = std::map<int64_t, std::shared_ptr<ModelVersion>>;
  using Snapshot = std::unordered_map<std::string, VersionMap>;

  struct VersionRecord {
    ModelState state = ModelState::kUnknown;
    std::string reason;
  };
  struct ModelRecord {
    std::map<int64_t, VersionRecord> versions;
    std::string reason;  // a model-level failure (config, no versions)
    std::string fingerprint;
    bool loaded = false;  // the operator wants it loaded (affects poll)
  };

  Status LoadLocked(const std::string& model);
  Status UnloadLocked(const std::string& model);
  // Loads `version` of `model` from its files in `version_dir` (inside `model_dir`, or
  // `model_dir` itself for an MLServer-layout model).
  Result<std::shared_ptr<ModelVersion>> LoadVersion(const std::string& model, const std::filesystem::path& model_dir,
                                                    int64_t version, const std::filesystem::path& version_dir,
                                                    const inference::ModelConfig& config);
  Result<std::map<std::string, std::filesystem::path>> Scan() const;
  void Publish(const std::string& model, VersionMap versions);
  void SetState(const std::string& model, int64_t version, ModelState s, std::string reason);
  void PollLoop();

  const ModelManagerOptions options_;
  const runtime::RuntimeRegistry* runtimes_;  // not owned
  monitoring::Metrics* metrics_;              // not owned

  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
  std::mutex lifecycle_mu_;  // serialises Load/Unload/Poll

  mutable std::mutex records_mu_;
  std::map<std::string, ModelRecord> records_;  // guarded by records_mu_

  std::mutex listener_mu_;
  ReadyListener listener_;  // guarded by listener_mu_
  VersionListener version_listener_;  // set before Start; called under lifecycle_mu_

  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool stopping_ = false;  // guarded by poll_mu_
  std::thread poll_thread_;
};

}  // namespace ferry::server
