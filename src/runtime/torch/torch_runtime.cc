// The only translation unit that includes libtorch's headers (they cost seconds of
// compile time each); everything torch-free sits in torch_binding.
#include "runtime/torch/torch_runtime.h"

#include <ATen/Config.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/jit/runtime/jit_exception.h>
#include <torch/script.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "core/clock.h"
#include "core/shape.h"
#include "runtime/parameters.h"
#include "runtime/torch/torch_binding.h"

namespace ferry::runtime {
namespace {

using torchrt::TorchScalar;

static_assert(static_cast<int>(TorchScalar::kUInt8) == static_cast<int>(c10::ScalarType::Byte));
static_assert(static_cast<int>(TorchScalar::kInt8) == static_cast<int>(c10::ScalarType::Char));
static_assert(static_cast<int>(TorchScalar::kInt16) == static_cast<int>(c10::ScalarType::Short));
static_assert(static_cast<int>(TorchScalar::kInt32) == static_cast<int>(c10::ScalarType::Int));
static_assert(static_cast<int>(TorchScalar::kInt64) == static_cast<int>(c10::ScalarType::Long));
static_assert(static_cast<int>(TorchScalar::kHalf) == static_cast<int>(c10::ScalarType::Half));
static_assert(static_cast<int>(TorchScalar::kFloat) == static_cast<int>(c10::ScalarType::Float));
static_assert(static_cast<int>(TorchScalar::kDouble) == static_cast<int>(c10::ScalarType::Double));
static_assert(static_cast<int>(TorchScalar::kBool) == static_cast<int>(c10::ScalarType::Bool));
static_assert(static_cast<int>(TorchScalar::kBFloat16) == static_cast<int>(c10::ScalarType::BFloat16));

constexpr const char* kPlatform = "pytorch_libtorch";

// Sets the intra-op threads of the forward() about to run on this thread (0: leave
// libtorch's default). Libtorch's OpenMP backend (Debian's build) keeps the team size
// per calling thread: reading it first makes libtorch initialise this thread (which
// would otherwise overwrite the value at its first parallel region), then setting it
// changes this thread's team only. The process-wide value at::set_num_threads also
// stores merely seeds threads libtorch has not yet seen, so instances with different
// budgets do not fight. Other backends have one process-wide pool that can be sized
// once: the first instance's budget then holds for all.
void SetThreads(int threads) {
  if (threads <= 0) return;
#if AT_PARALLEL_OPENMP
  if (at::get_num_threads() != threads) at::set_num_threads(threads);
#else
  static std::once_flag once;
  std::call_once(once, [threads] { at::set_num_threads(threads); });
#endif
}

// Runs `body`, turning whatever libtorch throws into a Status with torch's message and
// `torch_code`, except running out of memory (INTERNAL). The TorchScript interpreter
// rethrows most errors raised inside a model as std::runtime_error carrying the
// TorchScript traceback, hence the catch-all.
template <typename F>
Status Guard(const std::string& what, StatusCode torch_code, F&& body) {
  try {
    body();
    return Status::Ok();
  } catch (const c10::OutOfMemoryError& e) {
    return Internal(what + ": " + torchrt::CleanTorchError(e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    return Status(torch_code, what + ": " + torchrt::CleanTorchError(e.what_without_backtrace()));
  } catch (const torch::jit::JITException& e) {
    auto cls = e.getPythonClassName();
    auto msg = e.getOriginalMsg();
    if (cls && msg) {
      std::string_view name = *cls;
      if (name.starts_with("builtins.")) name.remove_prefix(9);
      return Status(torch_code, what + ": " + std::string(name) + ": " + torchrt::CleanTorchError(*msg));
    }
    return Status(torch_code, what + ": " + torchrt::CleanTorchError(e.what()));
  } catch (const std::bad_alloc&) {
    return Internal(what + ": out of memory");
  } catch (const std::exception& e) {
    return Status(torch_code, what + ": " + torchrt::CleanTorchError(e.what()));
  }
}

struct LoadedModule {
  torch::jit::Module module;
  std::vector<torchrt::ForwardArg> args;
  std::vector<c10::IValue> defaults;  // per argument: its default value, else None
  c10::TypePtr returns;
};

Result<LoadedModule> Load(const std::filesystem::path& file) {
  LoadedModule m;
  FERRY_RETURN_IF_ERROR(Guard("loading " + file.string(), StatusCode::kUnavailable, [&] {
    m.module = torch::jit::load(file.string(), torch::Device(torch::kCPU));
    m.module.eval();
  }));
  auto forward = m.module.find_method("forward");
  if (!forward) return Unavailable("loading " + file.string() + ": the TorchScript module has no forward() method");
  const c10::FunctionSchema& schema = forward->function().getSchema();
  const auto& arguments = schema.arguments();
  for (size_t i = 1; i < arguments.size(); ++i) {  // arguments[0] is self
    const c10::Argument& a = arguments[i];
    torchrt::ForwardArg arg;
    arg.name = a.name();
    arg.is_tensor = c10::TensorType::get()->isSubtypeOf(*a.type());
    arg.has_default = a.default_value().has_value();
    m.args.push_back(std::move(arg));
    m.defaults.push_back(a.default_value().value_or(c10::IValue()));
  }
  if (schema.returns().size() == 1) m.returns = schema.returns()[0].type();
  return m;
}

// Values a returned tuple or tensor has (nullopt: only known at run time, a list or dict).
std::optional<size_t> ReturnedCount(const c10::TypePtr& type) {
  if (!type) return std::nullopt;
  if (auto tuple = type->cast<c10::TupleType>()) return tuple->elements().size();
  if (type->isSubtypeOf(*c10::TensorType::get())) return 1;
  return std::nullopt;
}

std::string TypeName(int scalar_type) {
  auto t = torchrt::FromTorchScalar(scalar_type);
  if (t) return std::string(DataTypeName(*t));
  return c10::toString(static_cast<c10::ScalarType>(scalar_type));
}

// One instance: its own copy of the module. Execute runs on one thread at a time (the
// instance's worker), as ModelInstance requires; nothing else touches the module.
class TorchInstance : public ModelInstance {
 public:
  TorchInstance(const inference::ModelConfig& config, LoadedModule loaded, torchrt::InputPlan inputs,
                torchrt::OutputPlan outputs, int threads)
      : model_(config.name()), module_(std::move(loaded.module)), defaults_(std::move(loaded.defaults)),
        outputs_(std::move(outputs)), threads_(threads) {
    for (int i = 0; i < config.input_size(); ++i) argument_of_[config.input(i).name()] = inputs.argument_of[i];
    for (int i = 0; i < config.output_size(); ++i) {
      const auto& o = config.output(i);
      output_index_[o.name()] = {i, static_cast<DataType>(o.data_type())};
    }
  }

  Result<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs, const std::vector<std::string>& outputs,
                                      ExecTimings* timings) override {
    const uint64_t t0 = NowNanos();
    SetThreads(threads_);
    c10::InferenceMode inference;

    std::vector<c10::IValue> stack = defaults_;
    std::vector<at::Tensor> wrapped;  // the request buffers as torch sees them
    c10::IValue returned;
    Status bound;
    FERRY_RETURN_IF_ERROR(Guard("model '" + model_ + "'", StatusCode::kInternal, [&] {
      for (const Tensor& t : inputs) {
        auto it = argument_of_.find(t.name);
        if (it == argument_of_.end()) {
          bound = Internal("model '" + model_ + "': input '" + t.name + "' is not in the config");
          return;
        }
        wrapped.push_back(Wrap(t));
        stack[it->second] = wrapped.back();
      }
    }));
    FERRY_RETURN_IF_ERROR(bound);
    const uint64_t t1 = NowNanos();
    FERRY_RETURN_IF_ERROR(Guard("model '" + model_ + "'", StatusCode::kInvalidArgument,
                                [&] { returned = module_.forward(std::move(stack)); }));
    const uint64_t t2 = NowNanos();

    std::vector<Tensor> result;
    Status unwrapped;
    FERRY_RETURN_IF_ERROR(Guard("model '" + model_ + "'", StatusCode::kInternal, [&] {
      for (const auto& name : outputs) {
        unwrapped = Unwrap(returned, name, wrapped, &result);
        if (!unwrapped.ok()) return;
      }
    }));
    if (!unwrapped.ok()) return Status(unwrapped.code(), "model '" + model_ + "': " + unwrapped.message());
    const uint64_t t3 = NowNanos();
    RecordTimings(timings, t0, t1, t2, t3);
    return result;
  }

 private:
  // The request tensor as a torch tensor over the same bytes (copied only when
  // misaligned for its element type).
  static at::Tensor Wrap(const Tensor& t) {
    const auto scalar = static_cast<c10::ScalarType>(*torchrt::ToTorchScalar(t.datatype));
    const auto options = at::TensorOptions().dtype(scalar).device(at::kCPU);
    std::vector<int64_t> sizes(t.shape.begin(), t.shape.end());
    const size_t es = DataTypeSize(t.datatype);
    if (reinterpret_cast<uintptr_t>(t.data()) % es != 0) {
      at::Tensor copy = at::empty(sizes, options);
      std::memcpy(copy.data_ptr(), t.data(), t.byte_size());
      return copy;
    }
    return at::from_blob(const_cast<std::byte*>(t.data()), sizes, options);
  }

  Status Unwrap(const c10::IValue& returned, const std::string& name, const std::vector<at::Tensor>& wrapped,
                std::vector<Tensor>* result) {
    auto idx = output_index_.find(name);
    if (idx == output_index_.end()) return Internal("output '" + name + "' is not in the config");
    const auto [config_index, declared] = idx->second;
    const int position = outputs_.position_of[config_index];
    c10::IValue value;
    if (returned.isGenericDict()) {
      auto dict = returned.toGenericDict();
      auto it = dict.find(c10::IValue(name));
      if (it == dict.end()) return Internal("output '" + name + "': the dict forward() returned has no key '" + name + "'");
      value = it->value();
    } else if (returned.isTuple() || returned.isList()) {
      const size_t count = returned.isTuple() ? returned.toTupleRef().elements().size() : returned.toListRef().size();
      if (position >= static_cast<int>(count))
        return Internal("output '" + name + "' is value " + std::to_string(position) +
                        " of what forward() returns, but it returned " + std::to_string(count) + " values");
      value = returned.isTuple() ? returned.toTupleRef().elements()[position] : returned.toListRef()[position];
    } else {
      if (position != 0)
        return Internal("output '" + name + "' is value " + std::to_string(position) +
                        " of what forward() returns, but it returned a single " + returned.tagKind());
      value = returned;
    }
    if (!value.isTensor()) return Internal("output '" + name + "': forward() returned a " + value.tagKind() + ", not a Tensor");
    at::Tensor t = value.toTensor();
    auto type = torchrt::FromTorchScalar(static_cast<int>(t.scalar_type()));
    if (!type || *type != declared)
      return Internal("output '" + name + "': the model returned " + TypeName(static_cast<int>(t.scalar_type())) +
                      " but the config declares " + std::string(DataTypeConfigName(declared)));
    if (!t.device().is_cpu()) t = t.to(at::kCPU);
    // An output that shares memory with an input points into the request, which is
    // released before the response is sent: copy it out.
    bool aliased = std::any_of(wrapped.begin(), wrapped.end(), [&](const at::Tensor& in) { return t.is_alias_of(in); });
    t = aliased ? t.clone(at::MemoryFormat::Contiguous) : t.contiguous();
    Tensor out;
    out.name = name;
    out.datatype = declared;
    out.shape.assign(t.sizes().begin(), t.sizes().end());
    auto keep = std::make_shared<at::Tensor>(std::move(t));
    out.Borrow(keep->data_ptr(), keep->nbytes(), keep);
    result->push_back(std::move(out));
    return Status::Ok();
  }

  const std::string model_;
  torch::jit::Module module_;
  const std::vector<c10::IValue> defaults_;
  const torchrt::OutputPlan outputs_;
  const int threads_;
  std::unordered_map<std::string, int> argument_of_;                        // input name -> argument
  std::unordered_map<std::string, std::pair<int, DataType>> output_index_;  // output name -> config index, type
};

template <typename List>
std::vector<std::string> Names(const List& list) {
  std::vector<std::string> names;
  for (const auto& t : list) names.push_back(t.name());
  return names;
}

// Each declared tensor's datatype must be one torch has.
template <typename List>
Status CheckTypes(const List& list, const char* kind) {
  for (const auto& t : list)
    if (!torchrt::ToTorchScalar(static_cast<DataType>(t.data_type())))
      return InvalidArgument(std::string(kind) + " '" + t.name() + "': " +
                             std::string(DataTypeConfigName(static_cast<DataType>(t.data_type()))) +
                             " is not a tensor type libtorch " TORCH_VERSION
                             " has (it has BOOL, UINT8, INT8, INT16, INT32, INT64, FP16, BF16, FP32, FP64)");
  return Status::Ok();
}

std::string ArgList(const std::vector<torchrt::ForwardArg>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : ", ") + a.name;
  return s;
}

// The plans, checked against the module's schema.
Result<std::pair<torchrt::InputPlan, torchrt::OutputPlan>> Plan(const LoadedModule& m,
                                                                const inference::ModelConfig& config) {
  FERRY_ASSIGN_OR_RETURN(torchrt::InputPlan inputs, torchrt::PlanInputs(Names(config.input()), m.args));
  FERRY_ASSIGN_OR_RETURN(torchrt::OutputPlan outputs, torchrt::PlanOutputs(Names(config.output())));
  if (auto count = ReturnedCount(m.returns)) {
    for (int i = 0; i < config.output_size(); ++i)
      if (outputs.position_of[i] >= static_cast<int>(*count))
        return InvalidArgument("output '" + config.output(i).name() + "' is value " +
                               std::to_string(outputs.position_of[i]) + " of what forward() returns, but it returns " +
                               m.returns->annotation_str() + " (" + std::to_string(*count) + " value(s))");
  }
  return std::make_pair(std::move(inputs), std::move(outputs));
}

class TorchRuntime : public Runtime {
 public:
  std::string_view name() const override { return "pytorch"; }
  std::string_view platform() const override { return kPlatform; }
  std::string_view default_filename() const override { return "model.pt"; }
  std::string version() const override { return TORCH_VERSION; }

  Status AutoComplete(const std::filesystem::path& file, inference::ModelConfig* config) override {
    FERRY_ASSIGN_OR_RETURN(LoadedModule m, Load(file));
    if (config->input().empty() || config->output().empty()) {
      const char* missing = config->input().empty() && config->output().empty() ? "inputs and outputs"
                            : config->input().empty()                           ? "inputs"
                                                                                : "outputs";
      return Unavailable(std::string("a TorchScript file carries no tensor names, datatypes or shapes, so the model ") +
                         "config must declare them: add the " + missing + " (name, data_type, dims) to config.pbtxt; " +
                         "the model's forward(" + ArgList(m.args) + ") takes " + std::to_string(m.args.size()) +
                         " tensor(s)");
    }
    FERRY_RETURN_IF_ERROR(CheckTypes(config->input(), "input"));
    FERRY_RETURN_IF_ERROR(CheckTypes(config->output(), "output"));
    FERRY_RETURN_IF_ERROR(Plan(m, *config).status());
    if (config->platform().empty() && config->backend().empty()) config->set_platform(kPlatform);
    return Status::Ok();
  }

  Result<std::unique_ptr<ModelInstance>> CreateInstance(const std::filesystem::path& file,
                                                        const inference::ModelConfig& config,
                                                        const InstanceOptions& options) override {
    FERRY_ASSIGN_OR_RETURN(LoadedModule m, Load(file));
    FERRY_ASSIGN_OR_RETURN(auto plans, Plan(m, config));
    const int threads = IntParameter(config, "intra_op_thread_count", options.intra_op_threads);
    return std::unique_ptr<ModelInstance>(
        std::make_unique<TorchInstance>(config, std::move(m), std::move(plans.first), std::move(plans.second), threads));
  }
};

}  // namespace

Result<std::unique_ptr<Runtime>> CreateTorchRuntime() { return std::unique_ptr<Runtime>(std::make_unique<TorchRuntime>()); }

}  // namespace ferry::runtime
