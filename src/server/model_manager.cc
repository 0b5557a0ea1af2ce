#include "server/model_manager.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/clock.h"
#include "core/cpu.h"
#include "core/log.h"
#include "repository/model_config.h"
#include "repository/repository.h"
#include "scheduler/dynamic_batcher.h"
#include "scheduler/instance_pool.h"

namespace ferry::server {
namespace fs = std::filesystem;

std::string_view ModelStateName(ModelState s) {
  switch (s) {
    case ModelState::kUnknown: return "UNKNOWN";
    case ModelState::kReady: return "READY";
    case ModelState::kUnavailable: return "UNAVAILABLE";
    case ModelState::kLoading: return "LOADING";
    case ModelState::kUnloading: return "UNLOADING";
  }
  return "UNKNOWN";
}

ModelManager::ModelManager(ModelManagerOptions options, const runtime::RuntimeRegistry* runtimes,
                           monitoring::Metrics* metrics)
    : options_(std::move(options)), runtimes_(runtimes), metrics_(metrics) {
  snapshot_.store(std::make_shared<const Snapshot>());
}

ModelManager::~ModelManager() { Stop(); }

Result<std::map<std::string, fs::path>> ModelManager::Scan() const {
  return repository::ScanRepositories(options_.repositories);
}

Status ModelManager::Start() {
  FERRY_ASSIGN_OR_RETURN(auto models, Scan());
  std::vector<std::string> wanted;
  bool all = options_.mode != ControlMode::kExplicit || options_.startup_models.empty() ||
             std::find(options_.startup_models.begin(), options_.startup_models.end(), "*") !=
                 options_.startup_models.end();
  if (all) {
    for (const auto& [name, dir] : models) wanted.push_back(name);
  } else {
    wanted = options_.startup_models;
  }
  {
    std::lock_guard lock(records_mu_);
    for (const auto& [name, dir] : models) records_[name];  // known by name
  }
  std::lock_guard lock(lifecycle_mu_);
  for (const auto& name : wanted) {
    Status s = LoadLocked(name);
    if (!s.ok()) FERRY_LOG(kError, "model failed to load", ("model", name)("error", s.message()));
  }
  if (options_.mode == ControlMode::kPoll) poll_thread_ = std::thread([this] { PollLoop(); });
  return Status::Ok();
}

void ModelManager::Stop() {
  {
    std::lock_guard lock(poll_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  poll_cv_.notify_all();
  if (poll_thread_.joinable()) poll_thread_.join();
  std::lock_guard lock(lifecycle_mu_);
  auto snap = snapshot_.load();
  snapshot_.store(std::make_shared<const Snapshot>());
  for (const auto& [name, versions] : *snap)
    for (const auto& [v, mv] : versions) mv->Retire();
}

Result<VersionHandle> ModelManager::Acquire(std::string_view model, std::string_view version) const {
  int64_t wanted = -1;
  if (!version.empty()) {
    // As the REST path and Triton's version folders: digits, no leading zero, not 0.
    if (version.size() > 18 || version[0] == '0' ||
        !std::all_of(version.begin(), version.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return InvalidArgument("model '" + std::string(model) + "': version '" + std::string(version) +
                             "' is not a positive integer");
    wanted = std::stoll(std::string(version));
  }
  // A reload publishes the new version before closing the old one's gate, so a failed
  // TryEnter means a newer snapshot is already visible: look again.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    auto snap = snapshot_.load();
    auto it = snap->find(std::string(model));
    std::shared_ptr<ModelVersion> mv;
    if (it != snap->end() && !it->second.empty()) {
      if (wanted < 0) {
        mv = it->second.rbegin()->second;
      } else if (auto vit = it->second.find(wanted); vit != it->second.end()) {
        mv = vit->second;
      }
    }
    if (!mv) {
      std::lock_guard lock(records_mu_);
      auto rec = records_.find(std::string(model));
      if (rec == records_.end())
        return NotFound("Request for unknown model: '" + std::string(model) + "' is not found");
      if (wanted >= 0) {
        auto vr = rec->second.versions.find(wanted);
        if (vr == rec->second.versions.end())
          return NotFound("Request for unknown model: '" + std::string(model) + "' version " + std::string(version) +
                          " is not found");
        return Unavailable("model '" + std::string(model) + "' version " + std::string(version) + " is not ready (" +
                           std::string(ModelStateName(vr->second.state)) +
                           (vr->second.reason.empty() ? "" : ": " + vr->second.reason) + ")");
      }
      return Unavailable("model '" + std::string(model) + "' has no ready version" +
                         (rec->second.reason.empty() ? "" : ": " + rec->second.reason));
    }
    if (mv->gate().TryEnter()) return VersionHandle(std::move(mv));
    std::this_thread::yield();
  }
  return Unavailable("model '" + std::string(model) + "' is being unloaded");
}

std::vector<std::shared_ptr<ModelVersion>> ModelManager::ReadyVersions(std::string_view model) const {
  auto snap = snapshot_.load();
  std::vector<std::shared_ptr<ModelVersion>> out;
  auto it = snap->find(std::string(model));
  if (it != snap->end())
    for (const auto& [v, mv] : it->second) out.push_back(mv);
  return out;
}

Status ModelManager::Load(const std::string& model) {
  if (options_.mode == ControlMode::kNone)
    return FailedPrecondition("explicit model load / unload is not allowed: start the server with --model-control-mode=explicit");
  if (options_.mode == ControlMode::kPoll)
    return FailedPrecondition("explicit model load / unload is not allowed if polling is enabled");
  std::lock_guard lock(lifecycle_mu_);
  return LoadLocked(model);
}

Status ModelManager::Unload(const std::string& model) {
  if (options_.mode == ControlMode::kNone)
    return FailedPrecondition("explicit model load / unload is not allowed: start the server with --model-control-mode=explicit");
  if (options_.mode == ControlMode::kPoll)
    return FailedPrecondition("explicit model load / unload is not allowed if polling is enabled");
  std::lock_guard lock(lifecycle_mu_);
  return UnloadLocked(model);
}

void ModelManager::SetState(const std::string& model, int64_t version, ModelState s, std::string reason) {
  std::lock_guard lock(records_mu_);
  auto& r = records_[model].versions[version];
  r.state = s;
  r.reason = std::move(reason);
}

void ModelManager::Publish(const std::string& model, VersionMap versions) {
  auto prev = snapshot_.load();
  bool was_ready = prev->count(model) > 0;
  bool ready = !versions.empty();
  auto next = std::make_shared<Snapshot>(*prev);
  if (versions.empty()) next->erase(model);
  else (*next)[model] = std::move(versions);
  snapshot_.store(std::move(next));
  if (was_ready != ready) {
    std::lock_guard lock(listener_mu_);
    if (listener_) listener_(model, ready);
  }
}

void ModelManager::SetReadyListener(ReadyListener listener) {
  std::lock_guard lock(listener_mu_);
  listener_ = std::move(listener);
}

Result<std::shared_ptr<ModelVersion>> ModelManager::LoadVersion(const std::string& model, const fs::path& model_dir,
                                                                 int64_t version, const fs::path& vdir,
                                                                 const inference::ModelConfig& base) {
  inference::ModelConfig config = base;
  FERRY_ASSIGN_OR_RETURN(runtime::Runtime * rt, runtimes_->Find(config, vdir, model_dir));
  fs::path file = runtime::RuntimeRegistry::ModelFile(*rt, config, vdir);
  std::error_code ec;
  if (!fs::exists(file, ec)) return NotFound("model file " + file.string() + " does not exist");
  const bool configless = base.max_batch_size() == 0 && base.input().empty() && base.output().empty();
  FERRY_RETURN_IF_ERROR(rt->AutoComplete(file, &config));
  // Users of a plain model file expect any batch size, not the runtime's guess (ONNX
  // Runtime's 4, copied from Triton); one server-wide bound serves every runtime alike.
  if (configless && config.max_batch_size() > 0 && options_.default_max_batch_size > 0)
    config.set_max_batch_size(options_.default_max_batch_size);
  FERRY_RETURN_IF_ERROR(repository::ValidateModelConfig(config));

  int count = 0;
  for (const auto& g : config.instance_group()) count += g.count() > 0 ? g.count() : 1;  // proto3: 0 means unset
  if (config.instance_group().empty()) {
    count = 1;
    auto* g = config.add_instance_group();
    g->set_name(model);
    g->set_kind(inference::ModelInstanceGroup::KIND_CPU);
    g->set_count(1);
  }
  count = std::max(count, 1);
  runtime::InstanceOptions io;
  const int cores = AvailableCores();
  io.intra_op_threads = options_.intra_op_threads > 0 ? options_.intra_op_threads : std::max(1, cores / count);
  io.inter_op_threads = 1;
  io.threads_explicit = options_.intra_op_threads > 0;
  std::vector<std::unique_ptr<runtime::ModelInstance>> instances;
  for (int i = 0; i < count; ++i) {
    FERRY_ASSIGN_OR_RETURN(auto inst, rt->CreateInstance(file, config, io));
    if (i == 0) {
      // What only the loaded model can tell (a pickled estimator's outputs).
      FERRY_RETURN_IF_ERROR(inst->RefineConfig(&config));
      FERRY_RETURN_IF_ERROR(repository::ValidateModelConfig(config));
    }
    instances.push_back(std::move(inst));
  }
  std::unique_ptr<scheduler::Scheduler> sched;
  if (config.has_dynamic_batching() && config.max_batch_size() > 0) {
    sched = std::make_unique<scheduler::DynamicBatcher>(std::move(instances), config, SystemClock::Get());
  } else {
    scheduler::InstancePoolOptions po;
    po.max_queue_size = options_.max_queue_size;
    po.inline_execution_ns = options_.inline_execution_us * 1000;
    if (config.dynamic_batching().default_queue_policy().max_queue_size() > 0)
      po.max_queue_size = config.dynamic_batching().default_queue_policy().max_queue_size();
    sched = std::make_unique<scheduler::InstancePool>(std::move(instances), po, model);
  }
  std::string platform = config.platform().empty() ? std::string(rt->platform()) : config.platform();
  return std::make_shared<ModelVersion>(model, version, std::move(config), std::move(platform), std::move(sched),
                                        metrics_->ForVersion(model, std::to_string(version)), model_dir);
}

Status ModelManager::LoadLocked(const std::string& model) {
  uint64_t start = NowNanos();
  auto fail_model = [&](Status s) {
    std::lock_guard lock(records_mu_);
    records_[model].reason = s.message();
    metrics_->ModelLoaded(model, false, 0);
    return s;
  };
  FERRY_ASSIGN_OR_RETURN(auto models, Scan());
  auto dir_it = models.find(model);
  if (dir_it == models.end()) {
    Status s = NotFound("model '" + model + "' is not in any model repository");
    std::lock_guard lock(records_mu_);
    if (records_.count(model)) records_[model].reason = s.message();
    return s;
  }
  const fs::path& dir = dir_it->second;
  std::string fingerprint = repository::Fingerprint(dir);
  {
    std::lock_guard lock(records_mu_);
    records_[model].loaded = true;
    records_[model].fingerprint = fingerprint;
    records_[model].reason.clear();
  }
  auto config = repository::ReadModelConfig(dir);
  if (!config.ok()) return fail_model(config.status());
  const auto folders = repository::VersionFolders(dir, *config);
  std::vector<int64_t> available;
  for (const auto& [v, folder] : folders) available.push_back(v);
  std::vector<int64_t> selected = repository::SelectVersions(config->version_policy(), available);
  if (selected.empty()) return fail_model(NotFound("model '" + model + "' has no version folder that its version policy selects"));

  auto snap = snapshot_.load();
  VersionMap old;
  if (auto it = snap->find(model); it != snap->end()) old = it->second;
  VersionMap next;
  Status first_error;
  for (int64_t v : selected) {
    SetState(model, v, ModelState::kLoading, "");
    auto loaded = LoadVersion(model, dir, v, folders.at(v), *config);
    if (loaded.ok()) {
      next[v] = std::move(loaded).value();
      std::string note;
      if (version_listener_) {
        Status s = version_listener_(model, v, dir, &next[v]->config());
        if (!s.ok()) {
          note = s.message();
          FERRY_LOG(kError, "model version serves with a problem", ("model", model)("version", v)("error", note));
        }
      }
      SetState(model, v, ModelState::kReady, note);
      FERRY_LOG(kInfo, "model version ready", ("model", model)("version", v));
    } else {
      if (first_error.ok()) first_error = loaded.status();
      FERRY_LOG(kError, "model version failed to load", ("model", model)("version", v)("error", loaded.status().message()));
      // Keep serving the version that was already loaded rather than drop it.
      if (auto o = old.find(v); o != old.end()) {
        next[v] = o->second;
        SetState(model, v, ModelState::kReady, "reload failed, previous load still serving: " + loaded.status().message());
      } else {
        SetState(model, v, ModelState::kUnavailable, loaded.status().message());
      }
    }
  }
  Publish(model, next);
  // Retire what the new snapshot no longer holds: in-flight requests finish first.
  for (auto& [v, mv] : old) {
    auto n = next.find(v);
    if (n != next.end() && n->second == mv) continue;
    mv->Retire();
    if (n == next.end()) {
      SetState(model, v, ModelState::kUnavailable, "unloaded");
      if (version_listener_) (void)version_listener_(model, v, dir, nullptr);
    }
  }
  double secs = static_cast<double>(NowNanos() - start) / 1e9;
  if (next.empty()) {
    metrics_->ModelLoaded(model, false, secs);
    return first_error.ok() ? Unavailable("model '" + model + "' has no loadable version") : first_error;
  }
  metrics_->ModelLoaded(model, true, secs);
  return first_error;
}

Status ModelManager::UnloadLocked(const std::string& model) {
  auto snap = snapshot_.load();
  auto it = snap->find(model);
  {
    std::lock_guard lock(records_mu_);
    auto rec = records_.find(model);
    if (rec == records_.end() && it == snap->end()) return NotFound("model '" + model + "' is not known");
    records_[model].loaded = false;
  }
  if (it == snap->end()) return Status::Ok();
  VersionMap old = it->second;
  for (auto& [v, mv] : old) SetState(model, v, ModelState::kUnloading, "");
  Publish(model, {});
  for (auto& [v, mv] : old) {
    mv->Retire();
    SetState(model, v, ModelState::kUnavailable, "unloaded");
    if (version_listener_) (void)version_listener_(model, v, {}, nullptr);
  }
  metrics_->ModelUnloaded(model);
  FERRY_LOG(kInfo, "model unloaded", ("model", model));
  return Status::Ok();
}

std::vector<IndexEntry> ModelManager::Index(bool ready_only) const {
  std::vector<IndexEntry> out;
  std::lock_guard lock(records_mu_);
  for (const auto& [name, rec] : records_) {
    if (rec.versions.empty()) {
      if (!ready_only) out.push_back({name, "", rec.reason.empty() ? ModelState::kUnknown : ModelState::kUnavailable, rec.reason});
      continue;
    }
    for (const auto& [v, vr] : rec.versions) {
      if (ready_only && vr.state != ModelState::kReady) continue;
      out.push_back({name, std::to_string(v), vr.state, vr.state == ModelState::kUnavailable && vr.reason.empty() ? rec.reason : vr.reason});
    }
  }
  return out;
}

void ModelManager::PollOnce() {
  std::lock_guard lock(lifecycle_mu_);
  auto models = Scan();
  if (!models.ok()) {
    FERRY_LOG(kWarning, "repository poll failed", ("error", models.status().message()));
    return;
  }
  std::vector<std::string> gone, changed;
  {
    std::lock_guard rl(records_mu_);
    for (auto& [name, rec] : records_)
      if (rec.loaded && !models->count(name)) gone.push_back(name);
    for (const auto& [name, dir] : *models) {
      auto it = records_.find(name);
      if (it == records_.end() || !it->second.loaded || it->second.fingerprint != repository::Fingerprint(dir))
        changed.push_back(name);
    }
  }
  for (const auto& name : gone) {
    (void)UnloadLocked(name);
    std::lock_guard rl(records_mu_);
    records_.erase(name);
  }
  for (const auto& name : changed) {
    FERRY_LOG(kInfo, "repository change detected, loading", ("model", name));
    Status s = LoadLocked(name);
    if (!s.ok()) FERRY_LOG(kError, "model failed to load", ("model", name)("error", s.message()));
  }
}

void ModelManager::PollLoop() {
  std::unique_lock lock(poll_mu_);
  while (!stopping_) {
    poll_cv_.wait_for(lock, std::chrono::seconds(std::max(1, options_.poll_seconds)));
    if (stopping_) break;
    lock.unlock();
    PollOnce();
    lock.lock();
  }
}

}  // namespace ferry::server
