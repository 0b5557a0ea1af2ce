#include "runtime/onnx/onnx_runtime.h"

#include <onnxruntime_c_api.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "core/cpu.h"
#include "core/shape.h"
#include "runtime/parameters.h"

namespace ferry::runtime {
namespace {

const OrtApi* g_api = nullptr;

// Turns an OrtStatus into a Status, releasing it.
Status Check(OrtStatus* s, std::string_view what) {
  if (s == nullptr) return Status::Ok();
  std::string msg = std::string(what) + ": " + g_api->GetErrorMessage(s);
  OrtErrorCode code = g_api->GetErrorCode(s);
  g_api->ReleaseStatus(s);
  if (code == ORT_INVALID_ARGUMENT || code == ORT_INVALID_GRAPH || code == ORT_NO_SUCHFILE ||
      code == ORT_INVALID_PROTOBUF || code == ORT_NO_MODEL)
    return InvalidArgument(std::move(msg));
  return Internal(std::move(msg));
}

#define ORT_CHECK(expr, what) FERRY_RETURN_IF_ERROR(Check((expr), (what)))

template <typename T>
struct Releaser;
template <> struct Releaser<OrtSession> { void operator()(OrtSession* p) const { g_api->ReleaseSession(p); } };
template <> struct Releaser<OrtSessionOptions> { void operator()(OrtSessionOptions* p) const { g_api->ReleaseSessionOptions(p); } };
template <> struct Releaser<OrtValue> { void operator()(OrtValue* p) const { g_api->ReleaseValue(p); } };
template <> struct Releaser<OrtTypeInfo> { void operator()(OrtTypeInfo* p) const { g_api->ReleaseTypeInfo(p); } };
template <> struct Releaser<OrtTensorTypeAndShapeInfo> { void operator()(OrtTensorTypeAndShapeInfo* p) const { g_api->ReleaseTensorTypeAndShapeInfo(p); } };
template <> struct Releaser<OrtMemoryInfo> { void operator()(OrtMemoryInfo* p) const { g_api->ReleaseMemoryInfo(p); } };
template <> struct Releaser<OrtRunOptions> { void operator()(OrtRunOptions* p) const { g_api->ReleaseRunOptions(p); } };
template <typename T>
using OrtPtr = std::unique_ptr<T, Releaser<T>>;

std::optional<DataType> FromOnnx(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return DataType::kFp32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return DataType::kUint8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return DataType::kInt8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return DataType::kUint16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return DataType::kInt16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return DataType::kInt32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return DataType::kInt64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return DataType::kBytes;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return DataType::kBool;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return DataType::kFp16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return DataType::kFp64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return DataType::kUint32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return DataType::kUint64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return DataType::kBf16;
    default: return std::nullopt;
  }
}

ONNXTensorElementDataType ToOnnx(DataType t) {
  switch (t) {
    case DataType::kFp32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case DataType::kUint8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    case DataType::kInt8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    case DataType::kUint16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16;
    case DataType::kInt16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16;
    case DataType::kInt32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case DataType::kInt64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case DataType::kBytes: return ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING;
    case DataType::kBool: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    case DataType::kFp16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case DataType::kFp64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
    case DataType::kUint32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32;
    case DataType::kUint64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64;
    case DataType::kBf16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16;
    case DataType::kInvalid: break;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

struct TensorInfo {
  std::string name;
  DataType type;
  Shape dims;  // -1 for symbolic or unknown dimensions
};

// Process-wide ORT environment, created on first use and never destroyed (ORT's
// own advice: tearing the env down at exit races its thread pools). It owns one
// intra-op thread pool sized to the cores, shared by every session that was not given
// a thread count of its own: a hundred models then share cores - 1 threads instead of
// starting a pool each.
OrtEnv* Env() {
  static OrtEnv* env = [] {
    OrtEnv* e = nullptr;
    OrtThreadingOptions* threading = nullptr;
    if (OrtStatus* s = g_api->CreateThreadingOptions(&threading)) {
      g_api->ReleaseStatus(s);
      threading = nullptr;
    }
    OrtStatus* s = nullptr;
    if (threading != nullptr) {
      if (OrtStatus* t = g_api->SetGlobalIntraOpNumThreads(threading, AvailableCores())) g_api->ReleaseStatus(t);
      if (OrtStatus* t = g_api->SetGlobalInterOpNumThreads(threading, 1)) g_api->ReleaseStatus(t);
      s = g_api->CreateEnvWithGlobalThreadPools(ORT_LOGGING_LEVEL_WARNING, "ferry", threading, &e);
      g_api->ReleaseThreadingOptions(threading);
    } else {
      s = g_api->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "ferry", &e);
    }
    if (s) g_api->ReleaseStatus(s);
    return e;
  }();
  return env;
}

Result<OrtPtr<OrtSession>> OpenSession(const std::filesystem::path& file, const inference::ModelConfig& config,
                                       const InstanceOptions& options) {
  OrtSessionOptions* raw_opts = nullptr;
  ORT_CHECK(g_api->CreateSessionOptions(&raw_opts), "CreateSessionOptions");
  OrtPtr<OrtSessionOptions> opts(raw_opts);
  const bool own_threads = options.threads_explicit || config.parameters().count("intra_op_thread_count") > 0 ||
                           config.parameters().count("inter_op_thread_count") > 0;
  if (own_threads) {
    ORT_CHECK(g_api->SetIntraOpNumThreads(opts.get(), IntParameter(config, "intra_op_thread_count", options.intra_op_threads)),
              "SetIntraOpNumThreads");
    ORT_CHECK(g_api->SetInterOpNumThreads(opts.get(), IntParameter(config, "inter_op_thread_count", options.inter_op_threads)),
              "SetInterOpNumThreads");
  } else {
    ORT_CHECK(g_api->DisablePerSessionThreads(opts.get()), "DisablePerSessionThreads");
  }
  GraphOptimizationLevel level = ORT_ENABLE_ALL;
  if (config.has_optimization() && config.optimization().has_graph()) {
    int l = config.optimization().graph().level();
    level = l == -1 ? ORT_ENABLE_BASIC : l == 1 ? ORT_ENABLE_EXTENDED : ORT_ENABLE_ALL;
  }
  ORT_CHECK(g_api->SetSessionGraphOptimizationLevel(opts.get(), level), "SetSessionGraphOptimizationLevel");
  OrtSession* session = nullptr;
  ORT_CHECK(g_api->CreateSession(Env(), file.c_str(), opts.get(), &session), "loading " + file.string());
  return OrtPtr<OrtSession>(session);
}

Result<std::vector<TensorInfo>> SessionTensors(const OrtSession* s, bool inputs) {
  OrtAllocator* alloc = nullptr;
  ORT_CHECK(g_api->GetAllocatorWithDefaultOptions(&alloc), "GetAllocatorWithDefaultOptions");
  size_t n = 0;
  ORT_CHECK(inputs ? g_api->SessionGetInputCount(s, &n) : g_api->SessionGetOutputCount(s, &n), "tensor count");
  std::vector<TensorInfo> out;
  for (size_t i = 0; i < n; ++i) {
    char* name = nullptr;
    ORT_CHECK(inputs ? g_api->SessionGetInputName(s, i, alloc, &name) : g_api->SessionGetOutputName(s, i, alloc, &name),
              "tensor name");
    TensorInfo info;
    info.name = name;
    if (OrtStatus* freed = g_api->AllocatorFree(alloc, name)) g_api->ReleaseStatus(freed);
    OrtTypeInfo* raw_type = nullptr;
    ORT_CHECK(inputs ? g_api->SessionGetInputTypeInfo(s, i, &raw_type) : g_api->SessionGetOutputTypeInfo(s, i, &raw_type),
              "type info");
    OrtPtr<OrtTypeInfo> type(raw_type);
    const OrtTensorTypeAndShapeInfo* tinfo = nullptr;
    ORT_CHECK(g_api->CastTypeInfoToTensorInfo(type.get(), &tinfo), "CastTypeInfoToTensorInfo");
    if (tinfo == nullptr) return Unimplemented("'" + info.name + "' is not a tensor (sequences and maps are not supported)");
    ONNXTensorElementDataType et;
    ORT_CHECK(g_api->GetTensorElementType(tinfo, &et), "GetTensorElementType");
    auto dt = FromOnnx(et);
    if (!dt) return Unimplemented("'" + info.name + "' has an ONNX element type ferry does not serve");
    info.type = *dt;
    size_t rank = 0;
    ORT_CHECK(g_api->GetDimensionsCount(tinfo, &rank), "GetDimensionsCount");
    info.dims.resize(rank);
    ORT_CHECK(g_api->GetDimensions(tinfo, info.dims.data(), rank), "GetDimensions");
    for (auto& d : info.dims)
      if (d <= 0) d = -1;
    out.push_back(std::move(info));
  }
  return out;
}

// Fills or checks one side (inputs or outputs) of the config against the file.
template <typename TensorMsg>
Status CompleteTensors(const std::vector<TensorInfo>& file, int max_batch, const char* kind,
                       google::protobuf::RepeatedPtrField<TensorMsg>* declared) {
  if (declared->empty()) {
    for (const auto& t : file) {
      auto* m = declared->Add();
      m->set_name(t.name);
      m->set_data_type(static_cast<inference::DataType>(t.type));
      for (size_t i = max_batch > 0 ? 1 : 0; i < t.dims.size(); ++i) m->add_dims(t.dims[i]);
      if (m->dims().empty()) m->add_dims(1);  // Triton requires rank >= 1; see reshape below
      if (max_batch > 0 && t.dims.size() == 1) m->mutable_reshape();  // model sees [batch]
    }
    return Status::Ok();
  }
  for (const auto& m : *declared) {
    const TensorInfo* f = nullptr;
    for (const auto& t : file)
      if (t.name == m.name()) f = &t;
    if (!f) {
      std::string names;
      for (const auto& t : file) names += (names.empty() ? "" : ", ") + t.name;
      return InvalidArgument(std::string(kind) + " '" + m.name() + "' is declared in the config but the model has no such " +
                             kind + " (it has: " + names + ")");
    }
    if (static_cast<int>(m.data_type()) != static_cast<int>(f->type))
      return InvalidArgument(std::string(kind) + " '" + m.name() + "': config says " +
                             std::string(DataTypeConfigName(static_cast<DataType>(m.data_type()))) +
                             " but the model has " + std::string(DataTypeConfigName(f->type)));
    Shape full;
    if (max_batch > 0) full.push_back(-1);
    if (!m.has_reshape()) full.insert(full.end(), m.dims().begin(), m.dims().end());
    else full.insert(full.end(), m.reshape().shape().begin(), m.reshape().shape().end());
    bool ok = full.size() == f->dims.size();
    for (size_t i = 0; ok && i < full.size(); ++i)
      ok = f->dims[i] == -1 || full[i] == -1 || f->dims[i] == full[i];
    if (!ok)
      return InvalidArgument(std::string(kind) + " '" + m.name() + "': config shape " + ShapeToString(full) +
                             (max_batch > 0 ? " (batch dimension included)" : "") + " does not match the model's " +
                             ShapeToString(f->dims));
  }
  return Status::Ok();
}

class OnnxInstance : public ModelInstance {
 public:
  OnnxInstance(OrtPtr<OrtSession> session, OrtPtr<OrtMemoryInfo> mem, std::vector<TensorInfo> inputs,
               std::vector<TensorInfo> outputs)
      : session_(std::move(session)), mem_(std::move(mem)), inputs_(std::move(inputs)), outputs_(std::move(outputs)) {}

  bool computes_on_caller() const override { return true; }

  void Terminate() override {
    terminated_.store(true);
    if (OrtStatus* s = g_api->RunOptionsSetTerminate(run_options_.get())) g_api->ReleaseStatus(s);
  }

  Result<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs, const std::vector<std::string>& outputs,
                                      ExecTimings* timings) override {
    terminated_.store(false);
    uint64_t t0 = NowNanos();
    std::vector<OrtPtr<OrtValue>> values;
    values.reserve(inputs.size());
    std::vector<std::string> aligned_copies;  // owns copies of misaligned inputs
    std::vector<const char*> in_names;
    in_names.reserve(inputs.size());
    std::vector<const OrtValue*> in_values;
    in_values.reserve(inputs.size());
    for (const auto& t : inputs) {
      OrtValue* v = nullptr;
      if (t.datatype == DataType::kBytes) {
        FERRY_ASSIGN_OR_RETURN(v, StringTensor(t));
      } else {
        const void* data = t.data();
        size_t es = DataTypeSize(t.datatype);
        if (es > 1 && reinterpret_cast<uintptr_t>(data) % es != 0) {
          if (aligned_copies.empty()) aligned_copies.reserve(inputs.size());  // stable data() below
          aligned_copies.emplace_back(t.bytes());
          data = aligned_copies.back().data();
        }
        ORT_CHECK(g_api->CreateTensorWithDataAsOrtValue(mem_.get(), const_cast<void*>(data), t.byte_size(),
                                                         t.shape.data(), t.shape.size(), ToOnnx(t.datatype), &v),
                  "input '" + t.name + "'");
      }
      values.emplace_back(v);
      in_names.push_back(t.name.c_str());
      in_values.push_back(v);
    }
    std::vector<const char*> out_names;
    out_names.reserve(outputs.size());
    for (const auto& o : outputs) out_names.push_back(o.c_str());
    std::vector<OrtValue*> out_values(outputs.size(), nullptr);
    uint64_t t1 = NowNanos();
    ORT_CHECK(g_api->RunOptionsUnsetTerminate(run_options_.get()), "RunOptionsUnsetTerminate");
    OrtStatus* run = g_api->Run(session_.get(), run_options_.get(), in_names.data(), in_values.data(), in_values.size(),
                                out_names.data(), out_names.size(), out_values.data());
    if (run != nullptr && terminated_.exchange(false)) {
      g_api->ReleaseStatus(run);
      return Cancelled("the execution was stopped: every request in it was cancelled or past its deadline");
    }
    ORT_CHECK(run, "ONNX Runtime");
    uint64_t t2 = NowNanos();
    std::vector<Tensor> result;
    result.reserve(outputs.size());
    std::vector<OrtPtr<OrtValue>> owned_out;
    owned_out.reserve(out_values.size());
    for (OrtValue* v : out_values) owned_out.emplace_back(v);
    for (size_t i = 0; i < outputs.size(); ++i) {
      FERRY_ASSIGN_OR_RETURN(Tensor t, ToTensor(outputs[i], std::move(owned_out[i])));
      result.push_back(std::move(t));
    }
    uint64_t t3 = NowNanos();
    RecordTimings(timings, t0, t1, t2, t3);
    return result;
  }

 private:
  Result<OrtValue*> StringTensor(const Tensor& t) {
    OrtAllocator* alloc = nullptr;
    ORT_CHECK(g_api->GetAllocatorWithDefaultOptions(&alloc), "allocator");
    OrtValue* v = nullptr;
    ORT_CHECK(g_api->CreateTensorAsOrtValue(alloc, t.shape.data(), t.shape.size(), ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING, &v),
              "input '" + t.name + "'");
    OrtPtr<OrtValue> guard(v);
    // Element by element into ORT's own buffers, so embedded NUL bytes survive (the
    // C-string FillStringTensor would cut them).
    std::string_view b = t.bytes();
    for (size_t i = 0; b.size() >= 4; ++i) {
      uint32_t len;
      std::memcpy(&len, b.data(), 4);
      std::string_view item = b.substr(4, len);
      char* dst = nullptr;
      ORT_CHECK(g_api->GetResizedStringTensorElementBuffer(v, i, item.size(), &dst), "input '" + t.name + "'");
      if (!item.empty()) std::memcpy(dst, item.data(), item.size());
      b.remove_prefix(4 + item.size());
    }
    return guard.release();
  }

  Result<Tensor> ToTensor(const std::string& name, OrtPtr<OrtValue> v) {
    OrtTensorTypeAndShapeInfo* raw = nullptr;
    ORT_CHECK(g_api->GetTensorTypeAndShape(v.get(), &raw), "output '" + name + "'");
    OrtPtr<OrtTensorTypeAndShapeInfo> info(raw);
    ONNXTensorElementDataType et;
    ORT_CHECK(g_api->GetTensorElementType(info.get(), &et), "output type");
    size_t rank = 0, count = 0;
    ORT_CHECK(g_api->GetDimensionsCount(info.get(), &rank), "output rank");
    ORT_CHECK(g_api->GetTensorShapeElementCount(info.get(), &count), "output size");
    Tensor t;
    t.name = name;
    t.shape.resize(rank);
    ORT_CHECK(g_api->GetDimensions(info.get(), t.shape.data(), rank), "output dims");
    auto dt = FromOnnx(et);
    if (!dt) return Internal("output '" + name + "' has an unsupported ONNX element type");
    t.datatype = *dt;
    if (t.datatype == DataType::kBytes) {
      size_t total = 0;
      ORT_CHECK(g_api->GetStringTensorDataLength(v.get(), &total), "output '" + name + "'");
      std::string content(total, '\0');
      std::vector<size_t> offsets(count);
      ORT_CHECK(g_api->GetStringTensorContent(v.get(), content.data(), total, offsets.data(), count),
                "output '" + name + "'");
      std::string out;
      for (size_t i = 0; i < count; ++i) {
        size_t end = i + 1 < count ? offsets[i + 1] : total;
        uint32_t len = static_cast<uint32_t>(end - offsets[i]);
        out.append(reinterpret_cast<const char*>(&len), 4);
        out.append(content, offsets[i], len);
      }
      t.Own(std::move(out));
      return t;
    }
    void* data = nullptr;
    ORT_CHECK(g_api->GetTensorMutableData(v.get(), &data), "output '" + name + "'");
    std::shared_ptr<OrtValue> keep(v.release(), Releaser<OrtValue>());
    t.Borrow(data, count * DataTypeSize(t.datatype), std::move(keep));
    return t;
  }

  OrtPtr<OrtSession> session_;
  OrtPtr<OrtMemoryInfo> mem_;
  OrtPtr<OrtRunOptions> run_options_{[] {
    OrtRunOptions* o = nullptr;
    if (OrtStatus* s = g_api->CreateRunOptions(&o)) g_api->ReleaseStatus(s);
    return o;
  }()};
  std::atomic<bool> terminated_{false};
  std::vector<TensorInfo> inputs_;
  std::vector<TensorInfo> outputs_;
};

class OnnxRuntime : public Runtime {
 public:
  std::string_view name() const override { return "onnxruntime"; }
  std::string_view platform() const override { return "onnxruntime_onnx"; }
  std::string_view default_filename() const override { return "model.onnx"; }
  std::string version() const override { return OrtGetApiBase()->GetVersionString(); }

  Status AutoComplete(const std::filesystem::path& file, inference::ModelConfig* config) override {
    // A light session (no optimisation, one thread) is enough to read the signature.
    inference::ModelConfig probe;
    probe.mutable_optimization()->mutable_graph()->set_level(-1);
    FERRY_ASSIGN_OR_RETURN(auto session, OpenSession(file, probe, InstanceOptions{1, 1}));
    FERRY_ASSIGN_OR_RETURN(auto inputs, SessionTensors(session.get(), true));
    FERRY_ASSIGN_OR_RETURN(auto outputs, SessionTensors(session.get(), false));
    if (config->platform().empty() && config->backend().empty()) config->set_platform("onnxruntime_onnx");
    if (config->max_batch_size() == 0 && config->input().empty() && config->output().empty()) {
      // As Triton: a model whose every tensor has a dynamic leading dimension batches.
      bool batchable = true;
      for (const auto* list : {&inputs, &outputs})
        for (const auto& t : *list) batchable = batchable && !t.dims.empty() && t.dims[0] == -1;
      if (batchable) config->set_max_batch_size(kDefaultMaxBatchSize);
    }
    FERRY_RETURN_IF_ERROR(CompleteTensors(inputs, config->max_batch_size(), "input", config->mutable_input()));
    FERRY_RETURN_IF_ERROR(CompleteTensors(outputs, config->max_batch_size(), "output", config->mutable_output()));
    return Status::Ok();
  }

  Result<std::unique_ptr<ModelInstance>> CreateInstance(const std::filesystem::path& file,
                                                        const inference::ModelConfig& config,
                                                        const InstanceOptions& options) override {
    FERRY_ASSIGN_OR_RETURN(auto session, OpenSession(file, config, options));
    FERRY_ASSIGN_OR_RETURN(auto inputs, SessionTensors(session.get(), true));
    FERRY_ASSIGN_OR_RETURN(auto outputs, SessionTensors(session.get(), false));
    OrtMemoryInfo* mem = nullptr;
    ORT_CHECK(g_api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem), "CreateCpuMemoryInfo");
    return std::unique_ptr<ModelInstance>(std::make_unique<OnnxInstance>(
        std::move(session), OrtPtr<OrtMemoryInfo>(mem), std::move(inputs), std::move(outputs)));
  }

  // Triton's --backend-config default-max-batch-size.
  static constexpr int kDefaultMaxBatchSize = 4;
};

}  // namespace

Result<std::unique_ptr<Runtime>> CreateOnnxRuntime() {
  static std::once_flag once;
  std::call_once(once, [] { g_api = OrtGetApiBase()->GetApi(ORT_API_VERSION); });
  if (g_api == nullptr)
    return Unavailable(std::string("the ONNX Runtime library (") + OrtGetApiBase()->GetVersionString() +
                       ") does not provide C API version " + std::to_string(ORT_API_VERSION));
  if (Env() == nullptr) return Internal("could not create the ONNX Runtime environment");
  return std::unique_ptr<Runtime>(std::make_unique<OnnxRuntime>());
}

}  // namespace ferry::runtime
