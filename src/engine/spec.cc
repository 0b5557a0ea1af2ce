#include "engine/spec.h"

#include "core/yaml_reader.h"

#include <sched.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace ferry::engine {
namespace fs = std::filesystem;
namespace {

// Flags of `ferry serve` that the engine owns: a spec may not set them.
const std::set<std::string> kEngineOwnedFlags = {"http-address", "http-port", "grpc-port", "metrics-port",
                                                  "model-repository", "help"};

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || (c >= 'A' && c <= 'Z');
  });
}

// The shared YAML field reader (core/yaml_reader.h: "file:line:col: path: message"
// errors) plus what only specs need: folders resolved against the spec file's folder.
class Reader : public YamlReader {
 public:
  Reader(std::string file, fs::path base) : YamlReader(std::move(file)), base_(std::move(base)) {}

  // Resolves a path against the spec file's folder and checks that it is a folder.
  Result<std::string> Folder(const YAML::Node& at, const std::string& path, const std::string& value) const {
    if (value.empty()) return Error(at, path, "must not be empty");
    if (!fs::path(value).is_absolute() && base_.empty())
      return Error(at, path,
                   "relative path '" + value + "' needs a base folder to resolve it (an absolute path, or the " +
                       "spec's folder: query parameter 'base' of the admin API)");
    fs::path p = fs::path(value).is_absolute() ? fs::path(value) : base_ / value;
    std::error_code ec;
    if (!fs::is_directory(p, ec)) return Error(at, path, "folder '" + p.string() + "' does not exist");
    return fs::weakly_canonical(p, ec).string();
  }

 private:
  fs::path base_;
};

// The names of the model folders inside a repository (hidden entries skipped).
std::vector<std::string> RepositoryModels(const std::string& repo) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(repo, ec)) {
    std::string n = e.path().filename().string();
    if (!n.empty() && n[0] != '.' && e.is_directory(ec)) names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status ParseRevision(const Reader& r, const YAML::Node& n, const std::string& path, RevisionSpec* rev) {
  FERRY_RETURN_IF_ERROR(r.ExpectMap(n, path));
  FERRY_RETURN_IF_ERROR(r.CheckKeys(n, path, {"name", "model_repository", "models", "serve", "env"}));
  if (!n["name"]) return r.Error(n, Reader::Join(path, "name"), "is required");
  FERRY_ASSIGN_OR_RETURN(rev->name, r.Scalar(n["name"], Reader::Join(path, "name")));
  if (!ValidName(rev->name))
    return r.Error(n["name"], Reader::Join(path, "name"), "'" + rev->name + "' must be 1-63 letters, digits, '-' or '_'");
  if (YAML::Node m = n["model_repository"]) {
    FERRY_ASSIGN_OR_RETURN(auto list, r.Strings(m, Reader::Join(path, "model_repository")));
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node at = m.IsSequence() ? m[i] : m;
      FERRY_ASSIGN_OR_RETURN(std::string dir, r.Folder(at, Reader::Join(path, "model_repository"), list[i]));
      for (auto& name : RepositoryModels(dir)) rev->model_names.push_back(std::move(name));
      rev->model_repositories.push_back(std::move(dir));
    }
  }
  if (YAML::Node m = n["models"]) {
    FERRY_ASSIGN_OR_RETURN(auto list, r.Strings(m, Reader::Join(path, "models")));
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node at = m.IsSequence() ? m[i] : m;
      FERRY_ASSIGN_OR_RETURN(std::string dir, r.Folder(at, Reader::Index(Reader::Join(path, "models"), i), list[i]));
      rev->model_names.push_back(fs::path(dir).filename().string());
      rev->model_folders.push_back(std::move(dir));
    }
  }
  if (rev->model_repositories.empty() && rev->model_folders.empty())
    return r.Error(n, path, "needs model_repository or models");
  std::vector<std::string> sorted = rev->model_names;
  std::sort(sorted.begin(), sorted.end());
  if (auto d = std::adjacent_find(sorted.begin(), sorted.end()); d != sorted.end())
    return r.Error(n, path, "model '" + *d + "' is found twice in this revision's folders");
  if (rev->model_names.empty()) return r.Error(n, path, "its folders hold no model folder");
  for (const char* key : {"serve", "env"}) {
    YAML::Node m = n[key];
    if (!m) continue;
    const std::string p = Reader::Join(path, key);
    FERRY_RETURN_IF_ERROR(r.ExpectMap(m, p));
    for (auto it = m.begin(); it != m.end(); ++it) {
      FERRY_ASSIGN_OR_RETURN(std::string k, r.Scalar(it->first, p));
      FERRY_ASSIGN_OR_RETURN(std::string v, r.Scalar(it->second, Reader::Join(p, k)));
      if (std::string(key) == "serve") {
        if (k.rfind("--", 0) == 0) k = k.substr(2);
        if (kEngineOwnedFlags.count(k))
          return r.Error(it->first, Reader::Join(p, k), "is set by the engine for every replica");
        if (!ValidName(k)) return r.Error(it->first, Reader::Join(p, k), "is not a flag name");
        rev->serve_options.emplace_back(k, v);
      } else {
        if (k.empty() || k.find('=') != std::string::npos)
          return r.Error(it->first, Reader::Join(p, k), "is not an environment variable name");
        rev->env.emplace_back(k, v);
      }
    }
  }
  return Status::Ok();
}

Status ParseDeployment(const Reader& r, const YAML::Node& n, const std::string& path, DeploymentSpec* d) {
  FERRY_RETURN_IF_ERROR(r.ExpectMap(n, path));
  FERRY_RETURN_IF_ERROR(r.CheckKeys(n, path,
                                    {"name", "revisions", "traffic", "replicas", "autoscaling", "cpusets", "health",
                                     "drain", "restart", "gateway", "rollout"}));
  if (!n["name"]) return r.Error(n, Reader::Join(path, "name"), "is required");
  FERRY_ASSIGN_OR_RETURN(d->name, r.Scalar(n["name"], Reader::Join(path, "name")));
  if (!ValidName(d->name))
    return r.Error(n["name"], Reader::Join(path, "name"), "'" + d->name + "' must be 1-63 letters, digits, '-' or '_'");

  YAML::Node revs = n["revisions"];
  if (!revs) return r.Error(n, Reader::Join(path, "revisions"), "is required");
  if (!revs.IsSequence() || revs.size() == 0) return r.Error(revs, Reader::Join(path, "revisions"), "must be a non-empty list");
  for (size_t i = 0; i < revs.size(); ++i) {
    RevisionSpec rev;
    FERRY_RETURN_IF_ERROR(ParseRevision(r, revs[i], Reader::Index(Reader::Join(path, "revisions"), i), &rev));
    for (const auto& other : d->revisions)
      if (other.name == rev.name)
        return r.Error(revs[i]["name"], Reader::Index(Reader::Join(path, "revisions"), i) + ".name",
                       "revision '" + rev.name + "' is named twice");
    d->revisions.push_back(std::move(rev));
  }

  if (YAML::Node t = n["traffic"]) {
    const std::string p = Reader::Join(path, "traffic");
    FERRY_RETURN_IF_ERROR(r.ExpectMap(t, p));
    int sum = 0;
    for (auto it = t.begin(); it != t.end(); ++it) {
      FERRY_ASSIGN_OR_RETURN(std::string name, r.Scalar(it->first, p));
      bool known = std::any_of(d->revisions.begin(), d->revisions.end(),
                               [&](const RevisionSpec& rev) { return rev.name == name; });
      if (!known) return r.Error(it->first, Reader::Join(p, name), "names no revision of this deployment");
      int w = 0;
      FERRY_RETURN_IF_ERROR(r.Int(t, name, p, 0, &w));
      d->traffic[name] = w;
      sum += w;
    }
    if (sum == 0) return r.Error(t, p, "the weights sum to 0: no revision would get traffic");
  } else if (d->revisions.size() == 1) {
    d->traffic[d->revisions[0].name] = 100;
  } else {
    return r.Error(n, Reader::Join(path, "traffic"), "is required when a deployment has several revisions");
  }

  if (YAML::Node rep = n["replicas"]) {
    const std::string p = Reader::Join(path, "replicas");
    if (rep.IsScalar()) {  // "replicas: 3" is a fixed count
      int v = 0;
      FERRY_RETURN_IF_ERROR(r.Int(n, "replicas", path, 0, &v));
      d->replicas = {v, v, v};
    } else {
      FERRY_RETURN_IF_ERROR(r.ExpectMap(rep, p));
      FERRY_RETURN_IF_ERROR(r.CheckKeys(rep, p, {"min", "max", "initial"}));
      d->replicas.min = 1;
      FERRY_RETURN_IF_ERROR(r.Int(rep, "min", p, 0, &d->replicas.min));
      d->replicas.max = std::max(d->replicas.min, 1);
      FERRY_RETURN_IF_ERROR(r.Int(rep, "max", p, 1, &d->replicas.max));
      if (d->replicas.max < d->replicas.min)
        return r.Error(rep["max"], p + ".max",
                       "must be at least min (" + std::to_string(d->replicas.min) + "), got " +
                           std::to_string(d->replicas.max));
      d->replicas.initial = std::max(d->replicas.min, 1);
      FERRY_RETURN_IF_ERROR(r.Int(rep, "initial", p, 0, &d->replicas.initial));
      if (d->replicas.initial < d->replicas.min || d->replicas.initial > d->replicas.max)
        return r.Error(rep["initial"] ? rep["initial"] : rep, p + ".initial",
                       "must lie within [min, max] = [" + std::to_string(d->replicas.min) + ", " +
                           std::to_string(d->replicas.max) + "], got " + std::to_string(d->replicas.initial));
    }
  }

  if (YAML::Node a = n["autoscaling"]) {
    const std::string p = Reader::Join(path, "autoscaling");
    FERRY_RETURN_IF_ERROR(r.ExpectMap(a, p));
    FERRY_RETURN_IF_ERROR(r.CheckKeys(a, p,
                                      {"enabled", "target_in_flight", "stable_window", "panic_window",
                                       "panic_threshold", "scale_up_delay", "scale_down_delay",
                                       "scale_to_zero_after", "target_p95", "latency_window"}));
    AutoscalingPolicy& as = d->autoscaling;
    FERRY_RETURN_IF_ERROR(r.Bool(a, "enabled", p, &as.enabled));
    FERRY_RETURN_IF_ERROR(r.Double(a, "target_in_flight", p, 0, &as.target_in_flight));
    FERRY_RETURN_IF_ERROR(r.Duration(a, "stable_window", p, &as.stable_window));
    FERRY_RETURN_IF_ERROR(r.Duration(a, "panic_window", p, &as.panic_window));
    FERRY_RETURN_IF_ERROR(r.Double(a, "panic_threshold", p, 1.0 - 1e-9, &as.panic_threshold));
    FERRY_RETURN_IF_ERROR(r.Duration(a, "scale_up_delay", p, &as.scale_up_delay));
    FERRY_RETURN_IF_ERROR(r.Duration(a, "scale_down_delay", p, &as.scale_down_delay));
    FERRY_RETURN_IF_ERROR(r.Duration(a, "scale_to_zero_after", p, &as.scale_to_zero_after));
    FERRY_RETURN_IF_ERROR(r.Duration(a, "target_p95", p, &as.target_p95));
    FERRY_RETURN_IF_ERROR(r.Duration(a, "latency_window", p, &as.latency_window));
    if (as.latency_window.count() <= 0)
      return r.Error(a["latency_window"], p + ".latency_window", "must be positive");
    if (as.stable_window.count() <= 0) return r.Error(a["stable_window"], p + ".stable_window", "must be positive");
    if (as.panic_window.count() <= 0 || as.panic_window > as.stable_window)
      return r.Error(a["panic_window"] ? a["panic_window"] : a, p + ".panic_window",
                     "must be positive and no longer than stable_window");
  }

  if (YAML::Node c = n["cpusets"]) {
    const std::string p = Reader::Join(path, "cpusets");
    if (!c.IsSequence()) return r.Error(c, p, "must be a list of CPU lists such as \"0-3\"");
    for (size_t i = 0; i < c.size(); ++i) {
      FERRY_ASSIGN_OR_RETURN(std::string s, r.Scalar(c[i], Reader::Index(p, i)));
      auto cpus = ParseCpuList(s);
      if (!cpus.ok()) return r.Error(c[i], Reader::Index(p, i), cpus.status().message());
      // A CPU this process may not run on would fail every replica's start (a crash loop
      // whose reason is far from the typo): refuse it here.
      cpu_set_t allowed;
      CPU_ZERO(&allowed);
      if (::sched_getaffinity(0, sizeof allowed, &allowed) == 0)
        for (int cpu : *cpus)
          if (!CPU_ISSET(cpu, &allowed))
            return r.Error(c[i], Reader::Index(p, i),
                           "CPU " + std::to_string(cpu) + " is not one this engine may use (" +
                               std::to_string(CPU_COUNT(&allowed)) + " CPUs allowed)");
      d->cpusets.push_back(std::move(cpus).value());
    }
  }

  if (YAML::Node h = n["health"]) {
    const std::string p = Reader::Join(path, "health");
    FERRY_RETURN_IF_ERROR(r.ExpectMap(h, p));
    FERRY_RETURN_IF_ERROR(r.CheckKeys(h, p, {"ready_timeout", "probe_interval"}));
    FERRY_RETURN_IF_ERROR(r.Duration(h, "ready_timeout", p, &d->health.ready_timeout));
    FERRY_RETURN_IF_ERROR(r.Duration(h, "probe_interval", p, &d->health.probe_interval));
    if (d->health.probe_interval.count() <= 0) return r.Error(h["probe_interval"], p + ".probe_interval", "must be positive");
  }
  if (YAML::Node dr = n["drain"]) {
    const std::string p = Reader::Join(path, "drain");
    FERRY_RETURN_IF_ERROR(r.ExpectMap(dr, p));
    FERRY_RETURN_IF_ERROR(r.CheckKeys(dr, p, {"grace", "kill_after"}));
    FERRY_RETURN_IF_ERROR(r.Duration(dr, "grace", p, &d->drain.grace));
    FERRY_RETURN_IF_ERROR(r.Duration(dr, "kill_after", p, &d->drain.kill_after));
  }
  if (YAML::Node rs = n["restart"]) {
    const std::string p = Reader::Join(path, "restart");
    FERRY_RETURN_IF_ERROR(r.ExpectMap(rs, p));
    FERRY_RETURN_IF_ERROR(r.CheckKeys(rs, p, {"initial_backoff", "max_backoff", "crash_loop_failures", "crash_loop_window"}));
    FERRY_RETURN_IF_ERROR(r.Duration(rs, "initial_backoff", p, &d->restart.initial_backoff));
    FERRY_RETURN_IF_ERROR(r.Duration(rs, "max_backoff", p, &d->restart.max_backoff));
    FERRY_RETURN_IF_ERROR(r.Int(rs, "crash_loop_failures", p, 1, &d->restart.crash_loop_failures));
    FERRY_RETURN_IF_ERROR(r.Duration(rs, "crash_loop_window", p, &d->restart.crash_loop_window));
    if (d->restart.max_backoff < d->restart.initial_backoff)
      return r.Error(rs["max_backoff"] ? rs["max_backoff"] : rs, p + ".max_backoff", "must be at least initial_backoff");
  }
  if (YAML::Node g = n["gateway"]) {
    const std::string p = Reader::Join(path, "gateway");
    FERRY_RETURN_IF_ERROR(r.ExpectMap(g, p));
    FERRY_RETURN_IF_ERROR(r.CheckKeys(g, p, {"max_in_flight", "request_timeout", "cold_start_timeout",
                                             "max_concurrency", "max_queue", "queue_timeout"}));
    FERRY_RETURN_IF_ERROR(r.Duration(g, "cold_start_timeout", p, &d->gateway.cold_start_timeout));
    FERRY_RETURN_IF_ERROR(r.Int(g, "max_in_flight", p, 1, &d->gateway.max_in_flight));
    FERRY_RETURN_IF_ERROR(r.Duration(g, "request_timeout", p, &d->gateway.request_timeout));
    if (d->gateway.request_timeout.count() <= 0)
      return r.Error(g["request_timeout"], p + ".request_timeout", "must be positive");
    FERRY_RETURN_IF_ERROR(r.Int(g, "max_concurrency", p, 0, &d->gateway.max_concurrency));
    FERRY_RETURN_IF_ERROR(r.Int(g, "max_queue", p, 0, &d->gateway.max_queue));
    FERRY_RETURN_IF_ERROR(r.Duration(g, "queue_timeout", p, &d->gateway.queue_timeout));
    if (d->gateway.queue_timeout.count() <= 0)
      return r.Error(g["queue_timeout"], p + ".queue_timeout", "must be positive");
    // A queue or its timeout without a limit would never be used: say so rather than
    // let the user believe requests are bounded.
    if (d->gateway.max_concurrency == 0)
      for (const char* k : {"max_queue", "queue_timeout"})
        if (g[k]) return r.Error(g[k], p + "." + k, "has no effect without gateway.max_concurrency (0 or unset: no limit)");
  }

  if (YAML::Node ro = n["rollout"]) {
    const std::string p = Reader::Join(path, "rollout");
    FERRY_RETURN_IF_ERROR(r.ExpectMap(ro, p));
    FERRY_RETURN_IF_ERROR(r.CheckKeys(ro, p, {"progress_deadline", "max_surge"}));
    FERRY_RETURN_IF_ERROR(r.Duration(ro, "progress_deadline", p, &d->rollout.progress_deadline));
    if (d->rollout.progress_deadline.count() <= 0)
      return r.Error(ro["progress_deadline"], p + ".progress_deadline", "must be positive");
    if (YAML::Node ms = ro["max_surge"]) {
      const std::string mp = p + ".max_surge";
      FERRY_ASSIGN_OR_RETURN(std::string s, r.Scalar(ms, mp));
      const bool percent = !s.empty() && s.back() == '%';
      const std::string digits = percent ? s.substr(0, s.size() - 1) : s;
      long v = 0;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
      if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || v < 1 ||
          v > (percent ? 100 : 1000))
        return r.Error(ms, mp,
                       "must be a count of replicas from 1 to 1000 or a percentage from 1% to 100%, got '" + s + "'");
      d->rollout.max_surge = percent ? 0 : static_cast<int>(v);
      d->rollout.max_surge_percent = percent ? static_cast<int>(v) : 100;
    }
  }

  YAML::Emitter out;
  out << n;
  d->source_yaml = out.c_str();
  return Status::Ok();
}

}  // namespace

int RolloutPolicy::SurgeFor(int replicas) const {
  if (max_surge > 0) return max_surge;
  return std::max(1, (replicas * max_surge_percent + 99) / 100);
}

Result<std::vector<int>> ParseCpuList(const std::string& text) {
  std::vector<int> cpus;
  std::stringstream ss(text);
  std::string part;
  auto bad = [&] { return InvalidArgument("'" + text + "' is not a CPU list (such as \"0-3,8\")"); };
  while (std::getline(ss, part, ',')) {
    int lo = 0, hi = 0;
    size_t dash = part.find('-');
    auto num = [](std::string_view v, int* out) {
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
      return ec == std::errc() && p == v.data() + v.size() && *out >= 0 && *out < 4096;
    };
    std::string_view pv(part);
    if (dash == std::string::npos) {
      if (!num(pv, &lo)) return bad();
      hi = lo;
    } else if (!num(pv.substr(0, dash), &lo) || !num(pv.substr(dash + 1), &hi) || hi < lo) {
      return bad();
    }
    for (int c = lo; c <= hi; ++c) cpus.push_back(c);
  }
  if (cpus.empty()) return bad();
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

namespace {

Result<YAML::Node> LoadYaml(const std::string& text, const std::string& file) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                           ": invalid YAML: " + e.msg);
  }
}

}  // namespace

Result<EngineSpec> ParseSpec(const std::string& text, const std::string& file) {
  std::error_code ec;
  return ParseSpecIn(text, file, fs::absolute(file, ec).parent_path().string());
}

Result<DeploymentSpec> ParseDeploymentDocument(const std::string& text, const std::string& file,
                                               const std::string& base) {
  Reader r(file, base);
  FERRY_ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(text, file));
  DeploymentSpec d;
  try {
    if (!root || root.IsNull()) return r.Error(root, "(document)", "is empty: expected one deployment");
    if (!root.IsMap()) return r.Error(root, "(document)", "must be a mapping: one deployment");
    FERRY_RETURN_IF_ERROR(ParseDeployment(r, root, "", &d));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return d;
}

Result<EngineSpec> ParseSpecIn(const std::string& text, const std::string& file, const std::string& base) {
  Reader r(file, base);
  FERRY_ASSIGN_OR_RETURN(YAML::Node root, LoadYaml(text, file));
  EngineSpec spec;
  try {
    if (!root || root.IsNull()) return r.Error(root, "deployments", "the spec is empty");
    FERRY_RETURN_IF_ERROR(r.ExpectMap(root, "(top level)"));
    FERRY_RETURN_IF_ERROR(r.CheckKeys(root, "", {"deployments"}));
    YAML::Node deps = root["deployments"];
    if (!deps) return r.Error(root, "deployments", "is required");
    if (!deps.IsSequence()) return r.Error(deps, "deployments", "must be a list");
    std::map<std::string, std::pair<std::string, YAML::Node>> model_owner;  // model -> (deployment, node)
    for (size_t i = 0; i < deps.size(); ++i) {
      DeploymentSpec d;
      const std::string path = Reader::Index("deployments", i);
      FERRY_RETURN_IF_ERROR(ParseDeployment(r, deps[i], path, &d));
      for (const auto& other : spec.deployments)
        if (other.name == d.name)
          return r.Error(deps[i]["name"], Reader::Join(path, "name"), "deployment '" + d.name + "' is named twice");
      for (const auto& rev : d.revisions)
        for (const auto& m : rev.model_names) {
          auto [it, fresh] = model_owner.try_emplace(m, d.name, deps[i]);
          if (!fresh && it->second.first != d.name)
            return r.Error(deps[i], path,
                           "model '" + m + "' is also served by deployment '" + it->second.first + "' (line " +
                               std::to_string(it->second.second.Mark().line + 1) +
                               "); the gateway routes a model name to one deployment");
        }
      spec.deployments.push_back(std::move(d));
    }
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws on conversions we did not guard; keep it inside this module.
    return InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return spec;
}

Result<EngineSpec> LoadSpecFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read the spec file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseSpec(ss.str(), path);
}

}  // namespace ferry::engine
