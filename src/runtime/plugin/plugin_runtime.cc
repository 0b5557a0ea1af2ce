#include "runtime/plugin/plugin_runtime.h"

#include <google/protobuf/util/json_util.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <new>
#include <optional>

#include "core/bytes_tensor.h"
#include "core/clock.h"
#include "repository/model_config.h"
#include "repository/repository.h"

namespace ferry::runtime::plugin {
namespace fs = std::filesystem;

namespace {

// "x/1/" (a version folder named by an empty model file name) -> "x/1".
std::string PluginPath(const fs::path& model_file) {
  return model_file.filename().empty() ? model_file.parent_path().string() : model_file.string();
}

// A created plugin model; destroyed (and the library released) with the last instance.
class ModelHandle {
 public:
  ModelHandle(std::shared_ptr<PluginLibrary> library, FerryPluginModel* model)
      : library_(std::move(library)), model_(model) {}
  ~ModelHandle() { library_->api().model_destroy(model_); }
  ModelHandle(const ModelHandle&) = delete;
  ModelHandle& operator=(const ModelHandle&) = delete;

  const PluginLibrary& library() const { return *library_; }
  FerryPluginModel* get() const { return model_; }
  // 0, 1, 2, ...: FerryInstanceArgs.index of the next instance of this model.
  uint32_t NextInstanceIndex() { return next_instance_.fetch_add(1); }

 private:
  const std::shared_ptr<PluginLibrary> library_;
  FerryPluginModel* const model_;  // owned by the plugin, destroyed through the ABI
  std::atomic<uint32_t> next_instance_{0};
};

// Where a plugin's outputs go during one execute: the FerryOutputAllocator's context.
class OutputBuffers {
 public:
  OutputBuffers(const std::vector<std::string>& names, const inference::ModelConfig& config)
      : names_(names), slots_(names.size()) {
    for (size_t i = 0; i < names.size(); ++i)
      for (const auto& o : config.output())
        if (o.name() == names[i]) slots_[i].declared = static_cast<DataType>(o.data_type());
  }

  FerryOutputAllocator allocator() { return FerryOutputAllocator{this, &OutputBuffers::Allocate}; }
  const std::string& error() const { return error_; }

  // Every requested output, or an error naming the first one the plugin left out.
  Result<std::vector<Tensor>> Take() {
    std::vector<Tensor> out;
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (!slots_[i].tensor) return Internal("the plugin returned success without output '" + names_[i] + "'");
      if (slots_[i].tensor->datatype == DataType::kBytes &&
          !BytesTensorWellFormed(slots_[i].tensor->bytes(), *ElementCount(slots_[i].tensor->shape)))
        return Internal("output '" + names_[i] + "': the plugin wrote BYTES elements that do not match its shape " +
                        ShapeToString(slots_[i].tensor->shape));
      out.push_back(std::move(*slots_[i].tensor));
    }
    return out;
  }

 private:
  struct Slot {
    DataType declared = DataType::kInvalid;
    std::optional<Tensor> tensor;
  };
  struct AlignedFree {
    void operator()(void* p) const { ::operator delete(p, std::align_val_t(16)); }
  };

  static void* Allocate(void* context, uint32_t index, FerryDataType datatype, const int64_t* shape, uint32_t rank,
                        uint64_t byte_size) noexcept {
    auto* self = static_cast<OutputBuffers*>(context);
    try {
      return self->AllocateSlot(index, static_cast<DataType>(datatype), shape, rank, byte_size);
    } catch (const std::exception& e) {
      self->error_ = std::string("allocating an output: ") + e.what();
      return nullptr;
    }
  }

  void* AllocateSlot(uint32_t index, DataType datatype, const int64_t* shape, uint32_t rank, uint64_t byte_size) {
    auto fail = [this](std::string why) -> void* {
      if (error_.empty()) error_ = std::move(why);
      return nullptr;
    };
    if (index >= slots_.size())
      return fail("the plugin asked for output index " + std::to_string(index) + " of " + std::to_string(slots_.size()));
    Slot& slot = slots_[index];
    const std::string where = "output '" + names_[index] + "'";
    if (slot.tensor) return fail(where + " was allocated twice");
    if (datatype != slot.declared)
      return fail(where + ": the plugin gives " + std::string(DataTypeName(datatype)) + " but the config declares " +
                  std::string(DataTypeName(slot.declared)));
    if (rank > 0 && shape == nullptr) return fail(where + ": shape is NULL with rank " + std::to_string(rank));
    Shape s(shape, shape + rank);
    auto count = ElementCount(s);
    if (!count) return fail(where + ": the plugin gives an invalid shape " + ShapeToString(s));
    const size_t es = DataTypeSize(datatype);
    if (es != 0 && static_cast<uint64_t>(*count) > UINT64_MAX / es)
      return fail(where + ": shape " + ShapeToString(s) + " is too large to allocate");
    if (es != 0 && *count * es != byte_size)
      return fail(where + ": shape " + ShapeToString(s) + " of " + std::string(DataTypeName(datatype)) + " needs " +
                  std::to_string(*count * es) + " bytes, the plugin asked for " + std::to_string(byte_size));
    std::shared_ptr<void> buffer(::operator new(byte_size > 0 ? byte_size : 1, std::align_val_t(16)), AlignedFree{});
    Tensor t;
    t.name = names_[index];
    t.datatype = datatype;
    t.shape = std::move(s);
    t.Borrow(buffer.get(), byte_size, buffer);
    slot.tensor = std::move(t);
    return buffer.get();
  }

  const std::vector<std::string>& names_;
  std::vector<Slot> slots_;
  std::string error_;  // the first allocation failure
};

class PluginInstance : public ModelInstance {
 public:
  PluginInstance(std::shared_ptr<ModelHandle> model, FerryPluginInstance* instance, inference::ModelConfig config)
      : model_(std::move(model)), instance_(instance), config_(std::move(config)),
        what_("model '" + config_.name() + "' (" + model_->library().path().filename().string() + ")") {}
  ~PluginInstance() override { model_->library().api().instance_destroy(instance_); }

  Result<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs, const std::vector<std::string>& outputs,
                                      ExecTimings* timings) override {
    const uint64_t t0 = NowNanos();
    std::vector<FerryTensor> in(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& t = inputs[i];
      in[i] = FerryTensor{t.name.c_str(), static_cast<FerryDataType>(t.datatype), t.shape.data(),
                          static_cast<uint32_t>(t.shape.size()), t.data(), t.byte_size()};
    }
    std::vector<const char*> names(outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) names[i] = outputs[i].c_str();
    OutputBuffers buffers(outputs, config_);
    const FerryOutputAllocator allocator = buffers.allocator();
    const PluginLibrary& lib = model_->library();
    const uint64_t t1 = NowNanos();
    FerryPluginError* error = lib.api().instance_execute(instance_, in.data(), static_cast<uint32_t>(in.size()),
                                                         names.data(), static_cast<uint32_t>(names.size()), &allocator);
    const uint64_t t2 = NowNanos();
    Status status = lib.Consume(error, what_);
    // An allocation the server refused explains the failure better than whatever
    // the plugin said after it.
    if (!buffers.error().empty()) return Internal(what_ + ": " + buffers.error());
    FERRY_RETURN_IF_ERROR(status);
    auto result = buffers.Take();
    if (!result.ok()) return Internal(what_ + ": " + result.status().message());
    if (timings) {
      timings->compute_input_ns = t1 - t0;
      timings->compute_infer_ns = t2 - t1;
      timings->compute_output_ns = NowNanos() - t2;
    }
    return result;
  }

  void Terminate() override {
    if (auto terminate = model_->library().api().instance_terminate) terminate(instance_);
  }

  // The plugin ABI: each instance is owned by one worker thread (include/ferry/plugin.h).
  bool needs_own_thread() const override { return true; }

 private:
  const std::shared_ptr<ModelHandle> model_;
  FerryPluginInstance* const instance_;  // owned by the plugin, destroyed through the ABI
  const inference::ModelConfig config_;
  const std::string what_;
};

// The FerryConfigSink's context during one autocomplete call.
struct ConfigSinkState {
  inference::ModelConfig config;
  bool set = false;
  std::string error;  // why the last set_config was refused
};

int SetConfig(void* context, const char* json, uint64_t size) noexcept {
  auto* state = static_cast<ConfigSinkState*>(context);
  try {
    inference::ModelConfig parsed;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto status = google::protobuf::util::JsonStringToMessage(std::string(json, size), &parsed, options);
    if (!status.ok()) {
      state->error = "the config the plugin completed is not a model config: " + std::string(status.message());
      return 1;
    }
    state->config = std::move(parsed);
    state->set = true;
    return 0;
  } catch (const std::exception& e) {
    state->error = e.what();
    return 1;
  }
}

}  // namespace

// Plugin models by what they were created from, so the instances of one version share
// one handle. Entries are weak: the instances own the handle.
class PluginRuntime::SharedModels {
 public:
  Result<std::shared_ptr<ModelHandle>> Get(const std::shared_ptr<PluginLibrary>& library, const fs::path& model_file,
                                           const inference::ModelConfig& config) {
    const std::string path = PluginPath(model_file);
    const std::string config_json = repository::ModelConfigToJson(config);
    const std::string key = path + '\n' + config_json + '\n' + repository::Fingerprint(path);
    std::lock_guard lock(mu_);
    for (auto it = models_.begin(); it != models_.end();) it = it->second.expired() ? models_.erase(it) : std::next(it);
    if (auto it = models_.find(key); it != models_.end())
      if (auto model = it->second.lock()) return model;
    // Created under the lock so two loads of the same model never race to create it;
    // loads are rare and plugins create models quickly or not at all.
    const FerryModelArgs args{config.name().c_str(), path.c_str(), config_json.c_str()};
    FerryPluginModel* raw = nullptr;
    FERRY_RETURN_IF_ERROR(library->Consume(library->api().model_create(&args, &raw),
                                           "model '" + config.name() + "': ferry_plugin_model_create failed"));
    if (raw == nullptr)
      return Internal("model '" + config.name() + "': ferry_plugin_model_create returned no model and no error");
    auto model = std::make_shared<ModelHandle>(library, raw);
    models_[key] = model;
    return model;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<ModelHandle>> models_;  // guarded by mu_
};

PluginRuntime::PluginRuntime(std::string name, std::shared_ptr<PluginLibrary> library)
    : name_(std::move(name)), library_(std::move(library)), models_(std::make_unique<SharedModels>()) {}

PluginRuntime::~PluginRuntime() = default;

Status PluginRuntime::AutoComplete(const fs::path& model_file, inference::ModelConfig* config) {
  if (library_->api().model_autocomplete == nullptr) return Status::Ok();
  const std::string path = PluginPath(model_file);
  const std::string config_json = repository::ModelConfigToJson(*config);
  const FerryModelArgs args{config->name().c_str(), path.c_str(), config_json.c_str()};
  ConfigSinkState state;
  const FerryConfigSink sink{&state, &SetConfig};
  const std::string what = "model '" + config->name() + "': ferry_plugin_model_autocomplete failed";
  Status status = library_->Consume(library_->api().model_autocomplete(&args, &sink), what);
  if (!state.error.empty()) return InvalidArgument(what + ": " + state.error);
  FERRY_RETURN_IF_ERROR(status);
  if (state.set) {
    if (!state.config.name().empty() && state.config.name() != config->name())
      return InvalidArgument(what + ": the completed config renames the model to '" + state.config.name() + "'");
    state.config.set_name(config->name());
    *config = std::move(state.config);
  }
  return Status::Ok();
}

Result<std::unique_ptr<ModelInstance>> PluginRuntime::CreateInstance(const fs::path& model_file,
                                                                     const inference::ModelConfig& config,
                                                                     const InstanceOptions& options) {
  FERRY_ASSIGN_OR_RETURN(std::shared_ptr<ModelHandle> model, models_->Get(library_, model_file, config));
  const FerryInstanceArgs args{model->NextInstanceIndex(), options.intra_op_threads};
  FerryPluginInstance* raw = nullptr;
  FERRY_RETURN_IF_ERROR(library_->Consume(library_->api().instance_create(model->get(), &args, &raw),
                                          "model '" + config.name() + "': ferry_plugin_instance_create failed"));
  if (raw == nullptr)
    return Internal("model '" + config.name() + "': ferry_plugin_instance_create returned no instance and no error");
  return std::unique_ptr<ModelInstance>(std::make_unique<PluginInstance>(std::move(model), raw, config));
}

}  // namespace ferry::runtime::plugin
