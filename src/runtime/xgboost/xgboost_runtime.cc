#include "runtime/xgboost/xgboost_runtime.h"

#include <xgboost/c_api.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "core/clock.h"
#include "core/log.h"
#include "core/shape.h"
#include "runtime/parameters.h"
#include "runtime/xgboost/xgboost_model.h"

namespace ferry::runtime {
namespace {

// Turns a failed C API call into a Status carrying XGBoost's own message.
Status Check(int rc, const std::string& what) {
  if (rc == 0) return Status::Ok();
  return Internal(what + ": " + xgb::CleanError(XGBGetLastError()));
}

#define XGB_CHECK(expr, what) FERRY_RETURN_IF_ERROR(Check((expr), (what)))

struct BoosterFree {
  void operator()(BoosterHandle h) const { XGBoosterFree(h); }
};
using BoosterPtr = std::unique_ptr<void, BoosterFree>;
struct DMatrixFree {
  void operator()(DMatrixHandle h) const { XGDMatrixFree(h); }
};
using DMatrixPtr = std::unique_ptr<void, DMatrixFree>;

std::string XgbVersion() {
  int major = 0, minor = 0, patch = 0;
  XGBoostVersion(&major, &minor, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

struct LoadedModel {
  BoosterPtr booster;
  xgb::ModelInfo info;
};

Result<std::string> ReadFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return NotFound("cannot open model file " + file.string());
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return Unavailable("cannot read model file " + file.string());
  return std::move(bytes).str();
}

// Loads the booster from the file's bytes (see xgb::UpgradeBaseScore) and reads what
// kind of model it is. nthread <= 0 leaves XGBoost's default (all cores).
Result<LoadedModel> Load(const std::filesystem::path& file, int nthread) {
  FERRY_ASSIGN_OR_RETURN(std::string bytes, ReadFile(file));
  auto intercepts = xgb::UpgradeBaseScore(&bytes);
  if (!intercepts.ok()) return InvalidArgument("loading " + file.string() + ": " + intercepts.status().message());
  BoosterHandle raw = nullptr;
  XGB_CHECK(XGBoosterCreate(nullptr, 0, &raw), "XGBoosterCreate");
  BoosterPtr booster(raw);
  if (XGBoosterLoadModelFromBuffer(raw, bytes.data(), bytes.size()) != 0)
    return InvalidArgument("loading " + file.string() + ": " + xgb::CleanError(XGBGetLastError()));
  if (nthread > 0) XGB_CHECK(XGBoosterSetParam(raw, "nthread", std::to_string(nthread).c_str()), "setting nthread");
  bst_ulong len = 0;
  const char* config = nullptr;
  XGB_CHECK(XGBoosterSaveJsonConfig(raw, &len, &config), "reading the learner config of " + file.string());
  FERRY_ASSIGN_OR_RETURN(xgb::ModelInfo info, xgb::ParseLearnerConfig(std::string_view(config, len)));
  bst_ulong features = 0;
  XGB_CHECK(XGBoosterGetNumFeature(raw, &features), "XGBoosterGetNumFeature");
  info.num_feature = static_cast<int64_t>(features);
  if (info.num_feature <= 0) return InvalidArgument(file.string() + " is a model of no features");
  info.intercepts = std::move(intercepts).value();
  if (!info.intercepts.empty() && static_cast<int64_t>(info.intercepts.size()) != info.num_class)
    return InvalidArgument("loading " + file.string() + ": its base_score has " + std::to_string(info.intercepts.size()) +
                           " different values (written by XGBoost >= 3.0); libxgboost " + XgbVersion() +
                           " can serve per-class values of multi-class models only");
  return LoadedModel{std::move(booster), std::move(info)};
}

// XGBoost's own output columns for a plan, before the transform.
int64_t RawColumns(const xgb::ModelInfo& info, const xgb::OutputPlan& plan) {
  switch (plan.transform) {
    case xgb::Transform::kProbaPair:
    case xgb::Transform::kSigmoidPair: return 1;
    case xgb::Transform::kSoftmax:
    case xgb::Transform::kArgmax: return info.num_class;
    case xgb::Transform::kNone: break;
  }
  return plan.width;
}

// Rows of `raw` ([rows, RawColumns]) into `out` ([rows, plan.width]).
void ApplyPlan(const xgb::ModelInfo& info, const xgb::OutputPlan& plan, const float* raw, int64_t rows, float* out) {
  const int64_t in_cols = RawColumns(info, plan);
  std::vector<float> row(in_cols);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(row.data(), raw + r * in_cols, in_cols * sizeof(float));
    if (plan.add_intercepts && plan.predict_type == 1)
      for (int64_t c = 0; c < in_cols && c < static_cast<int64_t>(info.intercepts.size()); ++c) row[c] += info.intercepts[c];
    float* dst = out + r * plan.width;
    switch (plan.transform) {
      case xgb::Transform::kNone: std::memcpy(dst, row.data(), in_cols * sizeof(float)); break;
      case xgb::Transform::kProbaPair: dst[0] = 1.0f - row[0]; dst[1] = row[0]; break;
      case xgb::Transform::kSigmoidPair: {
        float p = 1.0f / (1.0f + std::exp(-row[0]));
        dst[0] = 1.0f - p;
        dst[1] = p;
        break;
      }
      case xgb::Transform::kSoftmax: {
        float top = row[0];
        for (float v : row) top = std::max(top, v);
        double sum = 0;
        for (int64_t c = 0; c < in_cols; ++c) sum += std::exp(static_cast<double>(row[c] - top));
        for (int64_t c = 0; c < in_cols; ++c) dst[c] = static_cast<float>(std::exp(static_cast<double>(row[c] - top)) / sum);
        break;
      }
      case xgb::Transform::kArgmax: {
        int64_t best = 0;
        for (int64_t c = 1; c < in_cols; ++c)
          if (row[c] > row[best]) best = c;
        dst[0] = static_cast<float>(best);
        break;
      }
    }
  }
}

class XgboostInstance : public ModelInstance {
 public:
  XgboostInstance(std::string model, LoadedModel loaded, xgb::OutputPlan plan, int nthread)
      : model_(std::move(model)), booster_(std::move(loaded.booster)), info_(std::move(loaded.info)), plan_(plan),
        nthread_(nthread), predict_config_(xgb::PredictConfig(plan.predict_type)),
        contrib_config_(xgb::PredictConfig(xgb::kPredictContributions)) {}

  bool computes_on_caller() const override { return true; }

  Result<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs, const std::vector<std::string>& outputs,
                                      ExecTimings* timings) override {
    uint64_t t0 = NowNanos();
    if (inputs.size() != 1) return Internal("model '" + model_ + "' takes one input, got " + std::to_string(inputs.size()));
    const Tensor& in = inputs[0];
    FERRY_RETURN_IF_ERROR(CheckInput(in));
    const int64_t cols = info_.num_feature;
    const size_t es = DataTypeSize(in.datatype);
    const int64_t rows = static_cast<int64_t>(in.byte_size() / es) / cols;
    Tensor out;
    out.datatype = DataType::kFp32;
    out.shape = in.shape;
    out.shape.back() = plan_.width;
    std::string result(static_cast<size_t>(rows * plan_.width) * sizeof(float), '\0');
    uint64_t t1 = t0, t2 = t0;
    if (rows > 0) {
      // XGBoost reads the matrix where it lies; only a misaligned buffer (a binary
      // HTTP tensor at an odd offset) is copied.
      const void* data = in.data();
      std::vector<double> aligned;
      if (reinterpret_cast<uintptr_t>(data) % es != 0) {
        aligned.resize((in.byte_size() + sizeof(double) - 1) / sizeof(double));
        std::memcpy(aligned.data(), data, in.byte_size());
        data = aligned.data();
      }
      const std::string array = xgb::DenseArrayInterface(data, rows, cols, in.datatype);
      const bst_ulong* shape = nullptr;
      bst_ulong dim = 0;
      const float* raw = nullptr;
      t1 = NowNanos();
      FERRY_RETURN_IF_ERROR(Predict(array, &shape, &dim, &raw));
      t2 = NowNanos();
      uint64_t total = 1;
      for (bst_ulong i = 0; i < dim; ++i) total *= shape[i];
      if (total != static_cast<uint64_t>(rows * RawColumns(info_, plan_)))
        return Internal("model '" + model_ + "': XGBoost returned " + std::to_string(total) + " values for " +
                        std::to_string(rows) + " rows, expected " + std::to_string(RawColumns(info_, plan_)) + " per row");
      ApplyPlan(info_, plan_, raw, rows, reinterpret_cast<float*>(result.data()));
    } else {
      t1 = t2 = NowNanos();
    }
    out.Own(std::move(result));
    std::vector<Tensor> tensors;
    for (const auto& name : outputs) {
      Tensor t = out;
      t.name = name;
      tensors.push_back(std::move(t));
    }
    uint64_t t3 = NowNanos();
    RecordTimings(timings, t0, t1, t2, t3);
    return tensors;
  }

  // libxgboost's own SHAP values (prediction type 2, exact TreeSHAP for tree boosters,
  // w * x for gblinear): [rows, num_feature + 1] per group, bias last, in margin space.
  Result<std::vector<Tensor>> Explain(const std::vector<Tensor>& inputs, ExecTimings* timings) override {
    uint64_t t0 = NowNanos();
    if (inputs.size() != 1) return Internal("model '" + model_ + "' takes one input, got " + std::to_string(inputs.size()));
    const Tensor& in = inputs[0];
    FERRY_RETURN_IF_ERROR(CheckInput(in));
    const size_t es = DataTypeSize(in.datatype);
    const int64_t cols = info_.num_feature;
    const int64_t rows = static_cast<int64_t>(in.byte_size() / es) / cols;
    const int64_t groups = info_.groups();
    const int64_t width = cols + 1;
    std::string result(static_cast<size_t>(rows * groups * width) * sizeof(float), '\0');
    uint64_t t1 = NowNanos(), t2 = t1;
    if (rows > 0) {
      std::vector<double> aligned;
      const void* data = in.data();
      if (reinterpret_cast<uintptr_t>(data) % es != 0) {
        aligned.resize((in.byte_size() + sizeof(double) - 1) / sizeof(double));
        std::memcpy(aligned.data(), data, in.byte_size());
        data = aligned.data();
      }
      const std::string array = xgb::DenseArrayInterface(data, rows, cols, in.datatype);
      DMatrixHandle dm = nullptr;
      const std::string dm_config = "{\"missing\":NaN,\"nthread\":" + std::to_string(nthread_) + "}";
      XGB_CHECK(XGDMatrixCreateFromDense(array.c_str(), dm_config.c_str(), &dm), "model '" + model_ + "'");
      DMatrixPtr owned(dm);
      const bst_ulong* shape = nullptr;
      bst_ulong dim = 0;
      const float* raw = nullptr;
      t1 = NowNanos();
      XGB_CHECK(XGBoosterPredictFromDMatrix(booster_.get(), dm, contrib_config_.c_str(), &shape, &dim, &raw),
                "model '" + model_ + "': contributions");
      t2 = NowNanos();
      uint64_t total = 1;
      for (bst_ulong i = 0; i < dim; ++i) total *= shape[i];
      if (total != static_cast<uint64_t>(rows * groups * width))
        return Internal("model '" + model_ + "': XGBoost returned " + std::to_string(total) + " contributions for " +
                        std::to_string(rows) + " rows, expected " + std::to_string(groups * width) + " per row");
      float* out = reinterpret_cast<float*>(result.data());
      std::memcpy(out, raw, result.size());
      // Per-class intercepts the file was loaded without (see xgb::UpgradeBaseScore)
      // belong to the bias, as they belong to the margins in Execute.
      if (!info_.intercepts.empty())
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t g = 0; g < groups && g < static_cast<int64_t>(info_.intercepts.size()); ++g)
            out[(r * groups + g) * width + cols] += info_.intercepts[g];
    }
    Tensor t;
    t.name = "attributions";
    t.datatype = DataType::kFp32;
    t.shape = groups > 1 ? Shape{rows, groups, width} : Shape{rows, width};
    t.Own(std::move(result));
    std::vector<Tensor> tensors;
    tensors.push_back(std::move(t));
    RecordTimings(timings, t0, t1, t2, NowNanos());
    return tensors;
  }

 private:
  Status CheckInput(const Tensor& in) const {
    if (in.datatype != DataType::kFp32 && in.datatype != DataType::kFp64)
      return InvalidArgument("input '" + in.name + "': datatype " + std::string(DataTypeName(in.datatype)) +
                             ", XGBoost takes FP32 or FP64");
    const int64_t cols = in.shape.empty() ? 0 : in.shape.back();
    if (cols != info_.num_feature)
      return InvalidArgument("input '" + in.name + "': shape " + ShapeToString(in.shape) + " has " + std::to_string(cols) +
                             " features per row, model '" + model_ + "' takes " + std::to_string(info_.num_feature));
    return Status::Ok();
  }

  Status Predict(const std::string& array, const bst_ulong** shape, bst_ulong* dim, const float** raw) {
    if (info_.booster != "gblinear") {
      XGB_CHECK(XGBoosterPredictFromDense(booster_.get(), array.c_str(), predict_config_.c_str(), nullptr, shape, dim, raw),
                "model '" + model_ + "'");
      return Status::Ok();
    }
    // gblinear has no in-place prediction in XGBoost: a DMatrix it is.
    DMatrixHandle dm = nullptr;
    const std::string dm_config = "{\"missing\":NaN,\"nthread\":" + std::to_string(nthread_) + "}";
    XGB_CHECK(XGDMatrixCreateFromDense(array.c_str(), dm_config.c_str(), &dm), "model '" + model_ + "'");
    DMatrixPtr owned(dm);
    XGB_CHECK(XGBoosterPredictFromDMatrix(booster_.get(), dm, predict_config_.c_str(), shape, dim, raw),
              "model '" + model_ + "'");
    return Status::Ok();
  }

  const std::string model_;
  BoosterPtr booster_;
  const xgb::ModelInfo info_;
  const xgb::OutputPlan plan_;
  const int nthread_;
  const std::string predict_config_;
  const std::string contrib_config_;
};

// Checks the one declared tensor of a side, or returns its absence.
template <typename TensorMsg>
Result<const TensorMsg*> OneTensor(const google::protobuf::RepeatedPtrField<TensorMsg>& list, const char* kind) {
  if (list.empty()) return static_cast<const TensorMsg*>(nullptr);
  if (list.size() > 1) {
    std::string names;
    for (const auto& t : list) names += (names.empty() ? "" : ", ") + t.name();
    return InvalidArgument(std::string("an XGBoost model has one ") + kind + " but the config declares " +
                           std::to_string(list.size()) + ": " + names);
  }
  return &list[0];
}

template <typename TensorMsg>
Shape DeclaredShape(const TensorMsg& t) {
  if (t.has_reshape()) return Shape(t.reshape().shape().begin(), t.reshape().shape().end());
  return Shape(t.dims().begin(), t.dims().end());
}

std::string DescribePlan(const xgb::OutputPlan& plan) {
  switch (plan.transform) {
    case xgb::Transform::kProbaPair:
    case xgb::Transform::kSigmoidPair: return "predict_proba gives [1-p, p]";
    case xgb::Transform::kSoftmax: return "class probabilities";
    case xgb::Transform::kArgmax: return "the class index";
    case xgb::Transform::kNone: break;
  }
  return plan.predict_type == 1 ? "raw margins" : "predictions";
}

class XgboostRuntime : public Runtime {
 public:
  std::string_view name() const override { return "xgboost"; }
  std::string_view platform() const override { return "xgboost"; }
  std::string_view default_filename() const override { return "model.json"; }
  std::vector<std::string> accepted_filenames() const override { return {"model.json", "model.ubj", "xgboost.model"}; }
  std::string version() const override { return XgbVersion(); }

  Status AutoComplete(const std::filesystem::path& file, inference::ModelConfig* config) override {
    FERRY_ASSIGN_OR_RETURN(LoadedModel loaded, Load(file, 1));
    const xgb::ModelInfo& info = loaded.info;
    FERRY_ASSIGN_OR_RETURN(xgb::OutputPlan plan, xgb::PlanOutput(info, *config));
    if (config->platform().empty() && config->backend().empty()) config->set_backend("xgboost");
    if (config->max_batch_size() == 0 && config->input().empty() && config->output().empty())
      config->set_max_batch_size(kDefaultMaxBatchSize);
    const bool batching = config->max_batch_size() > 0;

    FERRY_ASSIGN_OR_RETURN(const inference::ModelInput* in, OneTensor(config->input(), "input"));
    size_t rank = batching ? 1 : 2;
    if (in == nullptr) {
      auto* m = config->add_input();
      m->set_name("input__0");
      m->set_data_type(inference::TYPE_FP32);
      if (!batching) m->add_dims(-1);
      m->add_dims(info.num_feature);
    } else {
      if (in->data_type() != inference::TYPE_FP32 && in->data_type() != inference::TYPE_FP64)
        return InvalidArgument("input '" + in->name() + "': config says " +
                               std::string(DataTypeConfigName(static_cast<DataType>(in->data_type()))) +
                               " but XGBoost takes TYPE_FP32 or TYPE_FP64");
      Shape dims = DeclaredShape(*in);
      rank = dims.size();
      if (dims.empty() || (batching && dims.size() != 1) || dims.size() > 2 ||
          (dims.back() != -1 && dims.back() != info.num_feature))
        return InvalidArgument("input '" + in->name() + "': config dims " + ShapeToString(dims) + " but the model takes " +
                               std::to_string(info.num_feature) + " features: dims must be [" +
                               std::to_string(info.num_feature) + "]" +
                               (batching ? " (batch dimension excluded)" : " or [-1, " + std::to_string(info.num_feature) + "]"));
    }

    FERRY_ASSIGN_OR_RETURN(const inference::ModelOutput* out, OneTensor(config->output(), "output"));
    if (out == nullptr) {
      auto* m = config->add_output();
      m->set_name("output__0");
      m->set_data_type(inference::TYPE_FP32);
      if (rank == 2) m->add_dims(-1);
      m->add_dims(plan.width);
    } else {
      if (out->data_type() != inference::TYPE_FP32)
        return InvalidArgument("output '" + out->name() + "': config says " +
                               std::string(DataTypeConfigName(static_cast<DataType>(out->data_type()))) +
                               " but XGBoost gives TYPE_FP32");
      Shape dims = DeclaredShape(*out);
      if (dims.size() != rank || (dims.back() != -1 && dims.back() != plan.width))
        return InvalidArgument("output '" + out->name() + "': config dims " + ShapeToString(dims) + " but objective '" +
                               info.objective + "' gives " + std::to_string(plan.width) + " value(s) per row (" +
                               DescribePlan(plan) + "), so dims must be " + (rank == 2 ? "[-1, " : "[") +
                               std::to_string(plan.width) + "]");
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<ModelInstance>> CreateInstance(const std::filesystem::path& file,
                                                        const inference::ModelConfig& config,
                                                        const InstanceOptions& options) override {
    const int nthread = IntParameter(config, "nthread", options.intra_op_threads);
    FERRY_ASSIGN_OR_RETURN(LoadedModel loaded, Load(file, nthread));
    FERRY_ASSIGN_OR_RETURN(xgb::OutputPlan plan, xgb::PlanOutput(loaded.info, config));
    return std::unique_ptr<ModelInstance>(
        std::make_unique<XgboostInstance>(config.name(), std::move(loaded), plan, nthread));
  }

  // Rows a request (or a dynamic batch) may carry when the config does not say: one
  // request often carries a whole table, and XGBoost predicts rows independently, so a
  // cap costs nothing until a batch that large arrives.
  static constexpr int kDefaultMaxBatchSize = 1024;
};

}  // namespace

Result<std::unique_ptr<Runtime>> CreateXgboostRuntime() {
  // XGBoost's own warnings (old model formats, ignored parameters) join the server's
  // structured log instead of raw lines on stdout.
  static std::once_flag once;
  Status logging;
  std::call_once(once, [&logging] {
    logging = Check(XGBRegisterLogCallback([](const char* message) {
                      std::string_view m(message);
                      while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.remove_suffix(1);
                      FERRY_LOG(kWarning, "xgboost", ("message", m));
                    }),
                    "XGBRegisterLogCallback");
  });
  FERRY_RETURN_IF_ERROR(logging);
  return std::unique_ptr<Runtime>(std::make_unique<XgboostRuntime>());
}

}  // namespace ferry::runtime
