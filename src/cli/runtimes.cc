#include "cli/runtimes.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/program_options.hpp>
#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/builtin_runtimes.h"
#include "runtime/module_runtime.h"
#include "runtime/plugin/plugin_finder.h"

namespace ferry::cli {
namespace po = boost::program_options;

namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// How a runtime stands in this process: built in (nothing to load), a module loaded,
// one that looks loadable, or one that cannot load and why.
struct RuntimeState {
  std::string status;  // "built in", "loaded", "available", "unavailable"
  std::string detail;  // the module file, or why it cannot load
  double load_ms = -1;  // when loaded by this command
};

RuntimeState StateOf(runtime::Runtime& rt, bool load) {
  auto* module = dynamic_cast<runtime::ModuleRuntime*>(&rt);
  if (module == nullptr) return {"built in", "", -1};
  if (load) {
    auto loaded = module->Load();
    if (!loaded.ok()) return {"unavailable", loaded.status().message(), -1};
    return {"loaded", module->FindModule().string(), module->load_time().count() / 1e6};
  }
  auto a = module->Check();
  if (!a.problem.empty()) return {"unavailable", a.problem, -1};
  return {"available", a.module.string(), -1};
}

void PrintTable(const runtime::RuntimeRegistry& registry, const std::vector<RuntimeState>& states,
                const std::string& plugin_dir, const std::vector<runtime::plugin::PluginFinder::Found>& plugins) {
  std::vector<std::vector<std::string>> rows = {{"RUNTIME", "VERSION", "BACKEND / PLATFORM", "MODEL FILES", "STATUS"}};
  for (size_t i = 0; i < registry.runtimes().size(); ++i) {
    const auto& rt = registry.runtimes()[i];
    const RuntimeState& st = states[i];
    std::string status = st.status;
    if (st.load_ms >= 0) {
      std::ostringstream ms;
      ms << std::fixed << std::setprecision(1) << st.load_ms;
      status += " in " + ms.str() + " ms";
    }
    if (!st.detail.empty()) status += (st.status == "unavailable" ? ": " : " (") + st.detail + (st.status == "unavailable" ? "" : ")");
    rows.push_back({std::string(rt->name()), rt->version(), std::string(rt->name()) + " / " + std::string(rt->platform()),
                    Join(rt->accepted_filenames()), status});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (const auto& row : rows) {
    for (size_t c = 0; c + 1 < row.size(); ++c) std::cout << std::left << std::setw(static_cast<int>(width[c] + 2)) << row[c];
    std::cout << row.back() << "\n";
  }
  std::cout << "\nmodules are loaded when a model needs them; 'ferry runtimes --check' loads each now\n";
  std::cout << "\nplugins (backend \"<name>\" -> libferry_<name>.so in the version folder, the model folder, "
               "then the plugins folder)\n";
  if (plugin_dir.empty()) {
    std::cout << "  no plugins folder: set --plugin-dir or FERRY_PLUGIN_DIR\n";
    return;
  }
  std::cout << "  plugins folder " << plugin_dir << (plugins.empty() ? ": none found\n" : "\n");
  size_t name_width = 0;
  for (const auto& p : plugins) name_width = std::max(name_width, p.backend.size());
  for (const auto& p : plugins) {
    std::cout << "  " << std::left << std::setw(static_cast<int>(name_width + 2)) << p.backend;
    if (p.error.empty()) std::cout << "plugin ABI " << p.abi_version << "  " << p.path.filename().string() << "\n";
    else std::cout << "cannot load: " << p.error << "\n";
  }
}

void PrintJson(const runtime::RuntimeRegistry& registry, const std::vector<RuntimeState>& states,
               const std::string& plugin_dir, const std::vector<runtime::plugin::PluginFinder::Found>& plugins) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&w](std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); };
  w.StartObject();
  w.Key("runtimes");
  w.StartArray();
  for (size_t i = 0; i < registry.runtimes().size(); ++i) {
    const auto& rt = registry.runtimes()[i];
    const RuntimeState& st = states[i];
    w.StartObject();
    w.Key("name");
    str(rt->name());
    w.Key("version");
    str(rt->version());
    w.Key("backend");
    str(rt->name());
    w.Key("platform");
    str(rt->platform());
    w.Key("files");
    w.StartArray();
    for (const auto& f : rt->accepted_filenames()) str(f);
    w.EndArray();
    w.Key("status");
    str(st.status);
    const bool failed = st.status == "unavailable";
    w.Key("module");
    str(failed ? "" : st.detail);
    w.Key("error");
    str(failed ? st.detail : "");
    if (st.load_ms >= 0) {
      w.Key("load_ms");
      w.Double(st.load_ms);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("plugin_dir");
  str(plugin_dir);
  w.Key("plugins");
  w.StartArray();
  for (const auto& p : plugins) {
    w.StartObject();
    w.Key("backend");
    str(p.backend);
    w.Key("path");
    str(p.path.string());
    w.Key("abi_version");
    str(p.abi_version);
    w.Key("error");
    str(p.error);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::cout << sb.GetString() << "\n";
}

}  // namespace

int Runtimes(int argc, char** argv) {
  po::options_description desc(
      "usage: ferry runtimes [--check] [--runtime-dir DIR] [--plugin-dir DIR] [--python-executable PYTHON] [--json]\n\n"
      "Lists the runtimes of this build: version, backend/platform names a model config may use, the\n"
      "model file names each recognises, and whether it can run here (a module whose framework library\n"
      "is missing says which, and where it comes from); then the plugins in the plugins folder. Loads\n"
      "nothing unless --check is given.\n\n"
      "options",
      /*line_length=*/120, /*min_description_length=*/70);
  // clang-format off
  desc.add_options()
    ("help,h", "print this help")
    ("check", "load every runtime module now (reporting its load time) and show the scikit-learn / LightGBM versions of the interpreter")
    ("runtime-dir", po::value<std::string>(), "folder of the runtime modules; default: <bin>/runtimes, then <bin>/../lib/ferry/runtimes [FERRY_RUNTIME_DIR]")
    ("plugin-dir", po::value<std::string>(), "plugins folder to list [FERRY_PLUGIN_DIR]")
    ("python-executable", po::value<std::string>(), "interpreter whose scikit-learn / LightGBM versions to show (default python3; naming one shows them without --check) [FERRY_PYTHON_EXECUTABLE]")
    ("json", "print JSON instead of a table");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "ferry runtimes: " << e.what() << "\n\n" << desc << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  std::string plugin_dir;
  if (vm.count("plugin-dir")) plugin_dir = vm["plugin-dir"].as<std::string>();
  else if (const char* env = std::getenv("FERRY_PLUGIN_DIR")) plugin_dir = env;

  const bool check = vm.count("check") > 0;
  BuiltinRuntimeOptions options;
  if (vm.count("runtime-dir")) options.module_dirs = {vm["runtime-dir"].as<std::string>()};
  else if (const char* env = std::getenv("FERRY_RUNTIME_DIR")) options.module_dirs = {env};
#if FERRY_WITH_PYTHON
  // Starting an interpreter takes longer than the rest of this command: only when asked.
  options.python.probe_versions = check;
  if (vm.count("python-executable")) {
    options.python.python_executable = vm["python-executable"].as<std::string>();
    options.python.probe_versions = true;
  } else if (const char* env = std::getenv("FERRY_PYTHON_EXECUTABLE")) {
    options.python.python_executable = env;
    options.python.probe_versions = true;
  }
#endif
  auto registry = BuiltinRuntimes(options);
  if (!registry.ok()) {
    std::cerr << "ferry runtimes: " << registry.status().message() << "\n";
    return 1;
  }
  std::error_code ec;
  if (!plugin_dir.empty() && !std::filesystem::is_directory(plugin_dir, ec)) {
    std::cerr << "ferry runtimes: plugins folder " << plugin_dir << " is not a directory\n";
    return 2;
  }
  const auto plugins = plugin_dir.empty() ? std::vector<runtime::plugin::PluginFinder::Found>()
                                          : runtime::plugin::PluginFinder::List(plugin_dir);
  std::vector<RuntimeState> states;
  for (const auto& rt : (*registry)->runtimes()) states.push_back(StateOf(*rt, check));
  if (vm.count("json")) PrintJson(**registry, states, plugin_dir, plugins);
  else PrintTable(**registry, states, plugin_dir, plugins);
  return 0;
}

}  // namespace ferry::cli
