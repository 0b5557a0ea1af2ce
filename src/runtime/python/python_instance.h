#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/python/shm_region.h"
#include "runtime/python/worker_messages.h"
#include "runtime/python/worker_process.h"
#include "runtime/runtime.h"

namespace ferry::runtime::python {

struct PythonInstanceOptions {
  std::string model;   // for messages and logs
  WorkerSpawn spawn;   // shm_fd is filled in by the instance
  LoadRequest load;
  int load_timeout_ms = 120000;
  int execution_timeout_ms = 60000;  // 0: none
};

// One model instance served by one Python worker process (WorkerProcess).
//
// Execute copies the inputs into the instance's shared memory, sends a binary infer
// packet (worker_messages.h) and waits for the reply, then copies the outputs out of
// shared memory into one buffer its tensors share (the region is reused by the next
// request, so nothing borrows it).
// Failures stay with the request in flight:
//   - the worker dies (os._exit, a segfault): INTERNAL naming the model, the pid and
//     the exit status or signal;
//   - no reply within execution_timeout_ms: the worker is killed, DEADLINE_EXCEEDED;
//   - Terminate (a request's deadline passed, or its client left): the worker is
//     killed and Execute returns CANCELLED;
//   - predict raised: INVALID_ARGUMENT for ValueError/TypeError, INTERNAL for anything
//     else, with the exception's message; the worker keeps serving.
// After a kill or a death, the next Execute starts a new worker first (and fails
// UNAVAILABLE if that worker cannot load the model).
// Thread-safety: Execute from one thread at a time; Terminate from any thread.
class PythonInstance : public ModelInstance {
 public:
  // Starts the worker and loads the model; UNAVAILABLE with the Python error's last
  // line when load() raises.
  static Result<std::unique_ptr<PythonInstance>> Create(PythonInstanceOptions options);
  ~PythonInstance() override;

  Result<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs, const std::vector<std::string>& outputs,
                                      ExecTimings* timings) override;
  // Model.explain() in the worker (LightGBM's pred_contrib); UNIMPLEMENTED when the
  // model has none.
  Result<std::vector<Tensor>> Explain(const std::vector<Tensor>& inputs, ExecTimings* timings) override;
  void Terminate() override;
  // With load.describe_outputs: the config's outputs become what the loaded model
  // described (names, datatypes, shapes).
  Status RefineConfig(inference::ModelConfig* config) const override;

 private:
  PythonInstance(PythonInstanceOptions options, ShmRegion region, int wake_fd);
  Status StartWorker();
  // Ends the worker after a failed request and returns `code` with `why` and how it ended.
  Status EndWorker(StatusCode code, const std::string& why, bool kill);

  PythonInstanceOptions options_;
  ShmRegion region_;
  int wake_fd_;  // eventfd Terminate writes; Execute polls it
  std::unique_ptr<WorkerProcess> worker_;
  uint64_t next_id_ = 0;
  // Kept across calls so a request allocates nothing for the messages themselves.
  std::string packet_;
  std::string received_;
  WorkerReply reply_;
  std::vector<WorkerReply::Described> described_;  // from the first load
};

}  // namespace ferry::runtime::python
