#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace ferry::runtime {

// Server-wide settings of the Python runtimes (flags of `ferry serve`).
struct PythonRuntimeOptions {
  // Interpreter for models whose config names none: a path, or a name looked up on
  // PATH. Default "python3".
  std::string python_executable = "python3";
  // Folder holding the ferry_sdk package, put first on the workers' PYTHONPATH. Empty:
  // none is added (the interpreter must have ferry_sdk installed, e.g. by pip).
  std::filesystem::path sdk_path;
  // Run python_executable once at creation to read the installed framework versions
  // (scikit-learn, lightgbm) into version(), as `ferry runtimes` shows them. Off for
  // `serve`: importing nothing at start keeps start-up fast, and each model may use
  // another interpreter anyway.
  bool probe_versions = false;
};

// The folder holding ferry_sdk that a server finds by itself: beside the binary
// (<bin>/python), in a source checkout (<repo>/python for <repo>/build/<preset>/ferry)
// or an install prefix (<prefix>/share/ferry/python). Empty when none holds it.
std::filesystem::path DefaultPythonSdkPath();

// The runtimes that run Python code in worker processes (see python_instance.h):
//   "python"   model.py, a user class deriving from ferry_sdk.Model
//   "sklearn"  model.joblib, model.pkl, model.pickle (ferry_sdk.runtimes.sklearn)
//   "lightgbm" model.bst, model.txt (ferry_sdk.runtimes.lightgbm)
// Backend and platform names are those above. Config parameters (all optional):
//   python_executable     the interpreter for this model (default: the server's)
//   python_env            a virtualenv folder (absolute or relative to the model
//                         folder); its bin/python3 runs the model
//   execution_timeout_ms  a worker that takes longer on one request is killed and
//                         restarted, the request fails DEADLINE_EXCEEDED; default
//                         60000, 0 = no limit (a request's own timeout still holds)
//   load_timeout_ms       how long load() may take; default 120000
//   model_class           (python) which ferry_sdk.Model subclass of model.py to serve
//   method                (sklearn) predict (default), predict_proba, ...
//   raw_score, num_threads (lightgbm)
// Thread-safety: as Runtime.
std::vector<std::unique_ptr<Runtime>> CreatePythonRuntimes(const PythonRuntimeOptions& options);

}  // namespace ferry::runtime
