#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/tensor.h"
#include "repository/model_config.pb.h"

// The one interface every framework runtime implements. Runtimes know one framework,
// not protocols: they get validated tensors and return tensors.
namespace ferry::runtime {

// Nanoseconds spent in each phase of one execution, for statistics and metrics.
struct ExecTimings {
  uint64_t compute_input_ns = 0;
  uint64_t compute_infer_ns = 0;
  uint64_t compute_output_ns = 0;
};

// Fills `timings` (when not null) from four instants of one execution: its start, inputs
// ready, inference done, outputs ready.
inline void RecordTimings(ExecTimings* timings, uint64_t start, uint64_t inputs_ready, uint64_t infer_done,
                          uint64_t outputs_ready) {
  if (timings == nullptr) return;
  timings->compute_input_ns = inputs_ready - start;
  timings->compute_infer_ns = infer_done - inputs_ready;
  timings->compute_output_ns = outputs_ready - infer_done;
}

// One execution instance of a loaded model version.
// Thread-safety: Execute is called by one worker thread at a time (the instance's
// owner); different instances run concurrently.
class ModelInstance {
 public:
  virtual ~ModelInstance() = default;

  // Runs the model. `inputs` hold every model input, already checked against the
  // config (names, datatypes, shapes). Returns the outputs named in `outputs`, in that
  // order, each keeping its own buffer alive. Framework exceptions become a Status.
  virtual Result<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs,
                                              const std::vector<std::string>& outputs,
                                              ExecTimings* timings) = 0;

  // Per-feature attributions of the model's prediction for each row of `inputs` (which
  // hold every model input, checked as for Execute), computed by the framework itself
  // (exact TreeSHAP for tree ensembles). Returns one tensor named "attributions" of
  // shape [rows, n_features + 1] ([rows, groups, n_features + 1] for a model of several
  // classes or targets): the last column is the bias, the expected value, so that a
  // row's columns sum to the model's raw (margin) prediction. Called like Execute, by
  // the instance's worker thread. Default: UNIMPLEMENTED, and the server falls back to
  // a model-agnostic method that only needs Execute.
  virtual Result<std::vector<Tensor>> Explain(const std::vector<Tensor>& inputs, ExecTimings* timings) {
    (void)inputs;
    (void)timings;
    return Unimplemented("the runtime has no explanations of its own");
  }

  // Asks the Execute in progress to stop early (it then returns CANCELLED). Called from
  // another thread, only while an Execute runs (the scheduler guarantees it); the next
  // Execute is unaffected. Runtimes that cannot stop a run leave this a no-op.
  virtual void Terminate() {}

  // True when every Execute of this instance must run on the same thread (the plugin
  // ABI promises plugins that). Otherwise the direct scheduler runs the instance on
  // threads it shares with other models, so an idle model holds no thread.
  virtual bool needs_own_thread() const { return false; }

  // True when Execute computes on the calling thread, in this process, with nothing
  // else to wait for (ONNX Runtime, XGBoost). Only such an instance may run an
  // execution that its scheduler measured as tiny on the thread that submitted it, an
  // IO thread (InstancePoolOptions::inline_execution_ns). False (the default) for
  // runtimes that wait on another process (Python workers) or promise a thread of
  // their own (plugins), and for libtorch, which sizes the calling thread's OpenMP team
  // on every call (an IO thread would keep that state): they always run on workers.
  virtual bool computes_on_caller() const { return false; }

  // Called on a model's first instance once it has loaded: a runtime that can only
  // learn some of the config by loading the model (a pickled estimator's outputs and
  // their datatypes) completes `config` here. The server validates the result again.
  virtual Status RefineConfig(inference::ModelConfig* config) const {
    (void)config;
    return Status::Ok();
  }
};

// Per-load settings the server decides (thread budget), not the model config.
struct InstanceOptions {
  int intra_op_threads = 1;  // 0: the runtime's default
  int inter_op_threads = 1;
  // False when intra_op_threads is the server's even share of the cores rather than a
  // number the operator asked for (--intra-op-threads): a runtime with a process-wide
  // thread pool may then use that pool instead of starting threads per instance.
  bool threads_explicit = true;
};

// A framework runtime: knows its model files and builds instances.
// Thread-safety: all methods may be called concurrently (loads run off the IO threads).
class Runtime {
 public:
  virtual ~Runtime() = default;

  // Backend name as in Triton configs ("onnxruntime").
  virtual std::string_view name() const = 0;
  // Platform name reported in model metadata ("onnxruntime_onnx").
  virtual std::string_view platform() const = 0;
  // The model file looked for in a version folder ("model.onnx").
  virtual std::string_view default_filename() const = 0;
  // Every model file name this runtime loads, in order of preference; a version folder
  // holding any of them is this runtime's (the first one found is loaded). Default:
  // default_filename() alone.
  virtual std::vector<std::string> accepted_filenames() const { return {std::string(default_filename())}; }
  // Framework version, for logs and `ferry runtimes`.
  virtual std::string version() const = 0;

  // Completes `config` from the model file: fills inputs, outputs and max_batch_size
  // when absent, and checks declared tensors against the file (names, datatypes,
  // dims), naming the tensor on a mismatch.
  virtual Status AutoComplete(const std::filesystem::path& model_file, inference::ModelConfig* config) = 0;

  // Loads one instance of the model. REQUIRES: config was auto-completed.
  virtual Result<std::unique_ptr<ModelInstance>> CreateInstance(const std::filesystem::path& model_file,
                                                                const inference::ModelConfig& config,
                                                                const InstanceOptions& options) = 0;
};

}  // namespace ferry::runtime
