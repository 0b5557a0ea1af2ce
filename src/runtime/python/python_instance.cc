#include "runtime/python/python_instance.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "core/clock.h"
#include "core/log.h"

namespace ferry::runtime::python {

namespace {
constexpr uint64_t kInitialRegionBytes = 1 << 20;
}  // namespace

Result<std::unique_ptr<PythonInstance>> PythonInstance::Create(PythonInstanceOptions options) {
  FERRY_ASSIGN_OR_RETURN(ShmRegion region, ShmRegion::Create("ferry-" + options.model, kInitialRegionBytes));
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) return Internal(std::string("eventfd: ") + std::strerror(errno));
  std::unique_ptr<PythonInstance> instance(new PythonInstance(std::move(options), std::move(region), wake));
  FERRY_RETURN_IF_ERROR(instance->StartWorker());
  return instance;
}

PythonInstance::PythonInstance(PythonInstanceOptions options, ShmRegion region, int wake_fd)
    : options_(std::move(options)), region_(std::move(region)), wake_fd_(wake_fd) {
  options_.spawn.shm_fd = region_.fd();
}

PythonInstance::~PythonInstance() {
  worker_.reset();  // kills and reaps the worker before the region goes
  close(wake_fd_);
}

void PythonInstance::Terminate() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
}

Status PythonInstance::StartWorker() {
  const std::string& model = options_.model;
  FERRY_ASSIGN_OR_RETURN(worker_, WorkerProcess::Spawn(options_.spawn));
  const std::string who = "model '" + model + "': the Python worker (pid " + std::to_string(worker_->pid()) + ")";
  if (Status s = worker_->Send(EncodeLoad(options_.load)); !s.ok()) {
    std::string how = worker_->Reap(1000);
    worker_.reset();
    return Unavailable(who + " " + how + " before loading (its output is in the server log)");
  }
  std::string msg;
  switch (worker_->Receive(options_.load_timeout_ms, -1, &msg)) {
    case WorkerProcess::Wait::kMessage: break;
    case WorkerProcess::Wait::kTimeout:
    case WorkerProcess::Wait::kInterrupted:
      worker_.reset();
      return Unavailable(who + " did not load the model within " + std::to_string(options_.load_timeout_ms) +
                         " ms (parameter load_timeout_ms)");
    case WorkerProcess::Wait::kClosed: {
      std::string how = worker_->Reap(1000);
      worker_.reset();
      return Unavailable(who + " " + how +
                         " while loading (its output is in the server log; is ferry_sdk importable by " +
                         options_.spawn.executable + "? see --python-sdk-path)");
    }
  }
  auto reply = DecodeReply(msg);
  if (!reply.ok() || !reply->ok) {
    worker_.reset();
    return Unavailable("model '" + model + "': loading failed: " +
                       (reply.ok() ? reply->error : reply.status().message()));
  }
  if (reply->wire_version != kWireVersion) {
    worker_.reset();
    return Unavailable("model '" + model + "': the worker's ferry_sdk speaks worker protocol " +
                       std::to_string(reply->wire_version) + ", this server " + std::to_string(kWireVersion) +
                       ": serve the SDK that came with this server (--python-sdk-path) or install it (pip install ./python)");
  }
  if (described_.empty()) described_ = std::move(reply->described_outputs);
  FERRY_LOG(kInfo, "python worker ready", ("model", model)("pid", worker_->pid()));
  return Status::Ok();
}

Status PythonInstance::RefineConfig(inference::ModelConfig* config) const {
  if (!options_.load.describe_outputs) return Status::Ok();
  if (described_.empty())
    return Unavailable("model '" + options_.model + "': the model described no outputs; declare them in config.pbtxt");
  const bool batching = config->max_batch_size() > 0;
  config->clear_output();
  for (const auto& d : described_) {
    auto* out = config->add_output();
    out->set_name(d.name);
    out->set_data_type(static_cast<inference::DataType>(d.datatype));
    for (size_t i = batching && !d.shape.empty() ? 1 : 0; i < d.shape.size(); ++i) out->add_dims(d.shape[i]);
  }
  return Status::Ok();
}

Status PythonInstance::EndWorker(StatusCode code, const std::string& why, bool kill) {
  const pid_t pid = worker_->pid();
  std::string how = kill ? worker_->KillAndReap() : worker_->Reap(1000);
  worker_.reset();
  std::string message = "model '" + options_.model + "': the Python worker (pid " + std::to_string(pid) + ") " + why +
                        (kill ? "; it was killed" : "") + " (" + how + "); a new worker serves the next request";
  FERRY_LOG(kWarning, "python worker ended", ("model", options_.model)("pid", pid)("reason", why)("exit", how));
  return Status(code, std::move(message));
}

Result<std::vector<Tensor>> PythonInstance::Execute(const std::vector<Tensor>& inputs,
                                                    const std::vector<std::string>& outputs, ExecTimings* timings) {
  const uint64_t t0 = NowNanos();
  uint64_t drained;
  while (read(wake_fd_, &drained, sizeof drained) > 0) {
  }  // a Terminate aimed at an earlier run
  if (worker_ && worker_->Exited()) {
    FERRY_LOG(kWarning, "python worker ended while idle; restarting",
              ("model", options_.model)("pid", worker_->pid())("exit", worker_->KillAndReap()));
    worker_.reset();
  }
  if (!worker_) FERRY_RETURN_IF_ERROR(StartWorker());

  InputLayout layout = LayoutInputs(inputs);
  FERRY_RETURN_IF_ERROR(region_.Reserve(std::max<uint64_t>(layout.end, 1)));
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].byte_size() > 0) std::memcpy(region_.data() + layout.slots[i].offset, inputs[i].data(), inputs[i].byte_size());
  const uint64_t id = ++next_id_;
  const uint64_t t1 = NowNanos();
  EncodeInfer(id, region_.size(), layout, outputs, &packet_);
  if (Status s = worker_->Send(packet_); !s.ok())
    return EndWorker(StatusCode::kUnavailable, "could not be sent the request: " + s.message(), false);

  switch (worker_->Receive(options_.execution_timeout_ms > 0 ? options_.execution_timeout_ms : -1, wake_fd_, &received_)) {
    case WorkerProcess::Wait::kMessage: break;
    case WorkerProcess::Wait::kInterrupted:
      return EndWorker(StatusCode::kCancelled, "was stopped: the request is no longer wanted", true);
    case WorkerProcess::Wait::kTimeout:
      return EndWorker(StatusCode::kDeadlineExceeded,
                       "did not answer within " + std::to_string(options_.execution_timeout_ms) +
                           " ms (parameter execution_timeout_ms)",
                       true);
    case WorkerProcess::Wait::kClosed:
      return EndWorker(StatusCode::kInternal, "died while running this request", false);
  }
  const uint64_t t2 = NowNanos();
  WorkerReply& reply = reply_;
  if (Status s = DecodeInferReply(received_, &reply); !s.ok())
    return EndWorker(StatusCode::kInternal, "sent a broken reply: " + s.message(), true);
  if (!reply.ok) {
    std::string message = "model '" + options_.model + "': " + reply.error;
    if (reply.unsupported) return Unimplemented(std::move(message));
    return reply.user_error ? InvalidArgument(std::move(message)) : Internal(std::move(message));
  }
  Status checked = region_.MapPeerSize(reply.shm_size);
  if (checked.ok()) checked = CheckOutputs(reply, id, outputs, region_.size(), region_.data());
  if (!checked.ok()) return EndWorker(StatusCode::kInternal, "sent a broken reply: " + checked.message(), true);

  // One buffer holds every output (the region is reused by the next request, so the
  // bytes are copied out once); each tensor borrows its slice of it.
  size_t total = 0;
  for (const TensorSlot& slot : reply.outputs) total += slot.size;
  auto bytes = std::make_shared<std::string>();
  bytes->resize(total);
  std::vector<Tensor> result;
  result.reserve(reply.outputs.size());
  size_t at = 0;
  for (const TensorSlot& slot : reply.outputs) {
    if (slot.size > 0) std::memcpy(bytes->data() + at, region_.data() + slot.offset, slot.size);
    Tensor t;
    t.name = slot.name;
    t.datatype = slot.datatype;
    t.shape = slot.shape;
    t.Borrow(bytes->data() + at, slot.size, bytes);
    at += slot.size;
    result.push_back(std::move(t));
  }
  if (timings) {
    const uint64_t t3 = NowNanos();
    timings->compute_input_ns = t1 - t0;
    timings->compute_infer_ns = t2 - t1;
    timings->compute_output_ns = t3 - t2;
  }
  return result;
}

Result<std::vector<Tensor>> PythonInstance::Explain(const std::vector<Tensor>& inputs, ExecTimings* timings) {
  FERRY_ASSIGN_OR_RETURN(std::vector<Tensor> out, Execute(inputs, {kExplainOutput}, timings));
  for (Tensor& t : out) t.name = "attributions";
  return out;
}

}  // namespace ferry::runtime::python
