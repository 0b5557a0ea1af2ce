#include "runtime/python/python_runtime.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "repository/model_config.h"
#include "runtime/python/python_instance.h"

extern char** environ;

namespace ferry::runtime {

namespace {
namespace fs = std::filesystem;
using python::PythonInstance;
using python::PythonInstanceOptions;

constexpr const char* kSdkVersion = "ferry_sdk 0.1.0";

std::string Param(const inference::ModelConfig& c, const std::string& key) {
  auto it = c.parameters().find(key);
  return it == c.parameters().end() ? "" : it->second.string_value();
}

Result<int> ParamMillis(const inference::ModelConfig& c, const std::string& key, int fallback) {
  std::string v = Param(c, key);
  if (v.empty()) return fallback;
  try {
    size_t used = 0;
    long long n = std::stoll(v, &used);
    if (used == v.size() && n >= 0 && n <= INT32_MAX) return static_cast<int>(n);
  } catch (...) {
  }
  return InvalidArgument("parameter " + key + ": '" + v + "' is not a number of milliseconds");
}

// What differs between the three runtimes.
struct Flavor {
  std::string name;
  std::vector<std::string> files;
  std::string model_class;  // empty: the user's model.py
  std::string package;      // the framework's Python distribution, e.g. "scikit-learn"
  std::string version = kSdkVersion;
};

// Runs `argv` (no shell) and returns what it printed on stdout, or "" when it could not
// run or failed. For short, trusted probes only: it waits for the process to exit.
std::string Capture(const std::vector<std::string>& argv) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return "";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  std::string text;
  if (rc == 0) {
    char buf[1024];
    ssize_t n;
    while ((n = read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
      if (n > 0) text.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  if (rc != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return "";
  return text;
}

// "scikit-learn 1.7.2" for each flavor's package installed in `python` (or "not installed").
void ProbeVersions(const std::string& python, std::vector<Flavor>* flavors) {
  std::string script = "import importlib.metadata as m\nfor p in [";
  for (const Flavor& f : *flavors)
    if (!f.package.empty()) script += "'" + f.package + "',";
  script +=
      "]:\n  try: print(p, m.version(p))\n  except m.PackageNotFoundError: print(p, 'not installed')\n";
  std::istringstream lines(Capture({python, "-c", script}));
  std::string package, version;
  std::map<std::string, std::string> found;
  while (lines >> package && std::getline(lines >> std::ws, version)) found[package] = version;
  for (Flavor& f : *flavors) {
    if (f.package.empty()) continue;
    auto it = found.find(f.package);
    f.version += ", " + f.package + " " +
                 (it == found.end() ? "unknown (" + python + " did not run)" : it->second + " in " + python);
  }
}

// LightGBM's text model header, read to size the tensors a config leaves out.
struct BoosterShape {
  int64_t features = -1;
  int64_t classes = 1;
};

BoosterShape ReadLightgbmHeader(const fs::path& file) {
  BoosterShape shape;
  std::ifstream in(file);
  std::string line;
  for (int i = 0; i < 64 && std::getline(in, line); ++i) {
    auto value = [&](const char* key) -> int64_t {
      try {
        return std::stoll(line.substr(std::strlen(key)));
      } catch (...) {
        return -1;
      }
    };
    if (line.rfind("max_feature_idx=", 0) == 0) shape.features = value("max_feature_idx=") + 1;
    if (line.rfind("num_class=", 0) == 0) shape.classes = std::max<int64_t>(1, value("num_class="));
    if (line.rfind("Tree=", 0) == 0) break;
  }
  return shape;
}

class PythonRuntime : public Runtime {
 public:
  PythonRuntime(Flavor flavor, PythonRuntimeOptions options) : flavor_(std::move(flavor)), options_(std::move(options)) {}

  std::string_view name() const override { return flavor_.name; }
  std::string_view platform() const override { return flavor_.name; }
  std::string_view default_filename() const override { return flavor_.files.front(); }
  std::vector<std::string> accepted_filenames() const override { return flavor_.files; }
  std::string version() const override { return flavor_.version; }

  Status AutoComplete(const fs::path& file, inference::ModelConfig* config) override {
    if (config->platform().empty() && config->backend().empty()) config->set_backend(flavor_.name);
    FERRY_RETURN_IF_ERROR(Interpreter(file, *config).status());
    for (const char* key : {"execution_timeout_ms", "load_timeout_ms"})
      FERRY_RETURN_IF_ERROR(ParamMillis(*config, key, 0).status());
    if (flavor_.model_class.empty()) {
      if (config->input().empty() || config->output().empty())
        return InvalidArgument(std::string("a model.py model declares its ") +
                               (config->input().empty() ? "inputs" : "outputs") +
                               " in its config (ferry cannot read them from Python code)");
      return Status::Ok();
    }
    // sklearn and LightGBM: one FP64 feature matrix in, the method's result out, as
    // MLServer names them. Only a LightGBM text header tells widths ahead of loading.
    const bool batching = config->max_batch_size() > 0;
    BoosterShape shape;
    if (flavor_.name == "lightgbm") shape = ReadLightgbmHeader(file);
    if (config->input().empty()) {
      auto* in = config->add_input();
      in->set_name("input-0");
      in->set_data_type(inference::TYPE_FP64);
      if (!batching) in->add_dims(-1);
      in->add_dims(shape.features);
    }
    {
      std::lock_guard<std::mutex> lock(described_mu_);
      // The loaded estimator tells its outputs better than this guess: ask for them.
      if (config->output().empty() && flavor_.name == "sklearn") guessed_outputs_.insert(file.string());
      else guessed_outputs_.erase(file.string());
    }
    if (config->output().empty()) {
      std::string method = flavor_.name == "sklearn" ? Param(*config, "method") : "";
      if (method.empty()) method = "predict";
      auto* out = config->add_output();
      out->set_name(method);
      out->set_data_type(inference::TYPE_FP64);
      if (!batching) out->add_dims(-1);
      const bool per_class = method != "predict" || shape.classes > 1;
      if (per_class) out->add_dims(shape.classes > 1 ? shape.classes : -1);
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<ModelInstance>> CreateInstance(const fs::path& file, const inference::ModelConfig& config,
                                                        const InstanceOptions& options) override {
    PythonInstanceOptions o;
    o.model = config.name();
    FERRY_ASSIGN_OR_RETURN(o.spawn.executable, Interpreter(file, config));
    o.spawn.args = {"-u", "-m", "ferry_sdk.worker", "--sock-fd", "3", "--shm-fd", "4", "--parent-pid",
                    std::to_string(getpid())};
    o.spawn.env = WorkerEnvironment(options);
    o.spawn.log_name = config.name();
    o.load.model = config.name();
    const fs::path vdir = file.parent_path();
    try {
      o.load.version = std::stoll(vdir.filename().string());
    } catch (...) {
      o.load.version = 0;
    }
    o.load.version_dir = vdir.string();
    o.load.model_file = file.string();
    o.load.model_class = flavor_.model_class;
    o.load.instance = next_instance_++;
    o.load.config_json = repository::ModelConfigToJson(config);
    {
      std::lock_guard<std::mutex> lock(described_mu_);
      o.load.describe_outputs = guessed_outputs_.count(file.string()) > 0;
    }
    FERRY_ASSIGN_OR_RETURN(o.load_timeout_ms, ParamMillis(config, "load_timeout_ms", 120000));
    FERRY_ASSIGN_OR_RETURN(o.execution_timeout_ms, ParamMillis(config, "execution_timeout_ms", 60000));
    FERRY_ASSIGN_OR_RETURN(auto instance, PythonInstance::Create(std::move(o)));
    return std::unique_ptr<ModelInstance>(std::move(instance));
  }

 private:
  // The interpreter this model runs under: parameter python_env (a virtualenv),
  // python_executable, or the server's default.
  Result<std::string> Interpreter(const fs::path& file, const inference::ModelConfig& config) const {
    std::string env = Param(config, "python_env");
    if (!env.empty()) {
      fs::path dir = env;
      if (dir.is_relative()) dir = file.parent_path().parent_path() / dir;  // the model folder
      std::error_code ec;
      for (const char* name : {"bin/python3", "bin/python"})
        if (fs::exists(dir / name, ec)) return (dir / name).string();
      return InvalidArgument("parameter python_env: " + dir.string() + " holds no bin/python3 (is it a virtualenv?)");
    }
    std::string exe = Param(config, "python_executable");
    return exe.empty() ? options_.python_executable : exe;
  }

  std::mutex described_mu_;
  std::set<std::string> guessed_outputs_;  // model files whose outputs AutoComplete guessed; guarded by described_mu_

  std::vector<std::string> WorkerEnvironment(const InstanceOptions& options) const {
    std::vector<std::string> env;
    std::string pythonpath;
    bool omp = false;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view kv(*e);
      if (kv.rfind("PYTHONPATH=", 0) == 0) {
        pythonpath = std::string(kv.substr(11));
        continue;
      }
      if (kv.rfind("PYTHONUNBUFFERED=", 0) == 0) continue;
      if (kv.rfind("OMP_NUM_THREADS=", 0) == 0) omp = true;
      env.emplace_back(kv);
    }
    if (!options_.sdk_path.empty())
      pythonpath = options_.sdk_path.string() + (pythonpath.empty() ? "" : ":" + pythonpath);
    if (!pythonpath.empty()) env.push_back("PYTHONPATH=" + pythonpath);
    env.push_back("PYTHONUNBUFFERED=1");
    // Each worker gets the instance's share of cores for OpenMP (LightGBM,
    // scikit-learn), unless the operator decided.
    if (!omp && options.intra_op_threads > 0) env.push_back("OMP_NUM_THREADS=" + std::to_string(options.intra_op_threads));
    return env;
  }

  const Flavor flavor_;
  const PythonRuntimeOptions options_;
  std::atomic<int> next_instance_{0};
};

bool HoldsSdk(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "ferry_sdk" / "__init__.py", ec);
}

}  // namespace

fs::path DefaultPythonSdkPath() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const fs::path bin = exe.parent_path();
  for (const fs::path& dir : {bin / "python", bin.parent_path().parent_path() / "python",
                              bin.parent_path() / "share" / "ferry" / "python"})
    if (HoldsSdk(dir)) return fs::weakly_canonical(dir, ec);
  return {};
}

std::vector<std::unique_ptr<Runtime>> CreatePythonRuntimes(const PythonRuntimeOptions& options) {
  std::vector<Flavor> flavors = {
      {"python", {"model.py"}, "", ""},
      {"sklearn", {"model.joblib", "model.pkl", "model.pickle"}, "ferry_sdk.runtimes.sklearn:SKLearnModel",
       "scikit-learn"},
      {"lightgbm", {"model.bst", "model.txt"}, "ferry_sdk.runtimes.lightgbm:LightGBMModel", "lightgbm"},
  };
  if (options.probe_versions) ProbeVersions(options.python_executable, &flavors);
  std::vector<std::unique_ptr<Runtime>> runtimes;
  for (Flavor& f : flavors) runtimes.push_back(std::make_unique<PythonRuntime>(std::move(f), options));
  return runtimes;
}

}  // namespace ferry::runtime
