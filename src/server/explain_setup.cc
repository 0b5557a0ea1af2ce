#include "server/explain_setup.h"

#include <cstring>
#include <system_error>

#include "core/shape.h"
#include "monitoring/drift/reference_profile.h"
#include "monitoring/explain/background.h"

namespace ferry::server {
namespace {

namespace ex = monitoring::explain;

template <typename T>
void ReadAs(const std::byte* data, int64_t count, double* out) {
  for (int64_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, data + i * sizeof(T), sizeof(T));
    out[i] = static_cast<double>(v);
  }
}

}  // namespace

Result<ExplainSetup> BuildExplainSetup(const inference::ModelConfig& config, const std::filesystem::path& model_dir,
                                       const MonitoringDefaults& defaults) {
  const std::string& model = config.name();
  const monitoring::MonitoredModel monitored = MonitoredModelFor(model, 0, model_dir, config, defaults);
  ExplainSetup s;
  FERRY_ASSIGN_OR_RETURN(s.settings, ex::ParseExplainSettings(monitored.settings, model_dir));
  if (!s.settings.enabled)
    return FailedPrecondition("model '" + model + "' is not explainable: monitoring.explain.enabled is not true");
  if (config.input_size() != 1)
    return FailedPrecondition("model '" + model + "' is not explainable: it has " + std::to_string(config.input_size()) +
                              " inputs, explanations need one [rows, features] input");
  const inference::ModelInput& in = config.input(0);
  s.input = in.name();
  s.input_type = static_cast<DataType>(in.data_type());
  Shape dims(in.dims().begin(), in.dims().end());
  if (config.max_batch_size() == 0 && !dims.empty()) dims.erase(dims.begin());
  if ((s.input_type != DataType::kFp32 && s.input_type != DataType::kFp64) || dims.size() != 1 || dims[0] < 1)
    return FailedPrecondition("model '" + model + "' is not explainable: input '" + s.input + "' is " +
                              std::string(DataTypeName(s.input_type)) + " " + ShapeToString(Shape(in.dims().begin(), in.dims().end())) +
                              ", explanations need an FP32 or FP64 row of a known number of features");
  s.features = dims[0];
  s.output = s.settings.output.empty() ? (config.output_size() > 0 ? config.output(0).name() : "") : s.settings.output;
  bool known = false;
  std::string outputs;
  for (const auto& o : config.output()) {
    known = known || o.name() == s.output;
    outputs += (outputs.empty() ? "" : ", ") + o.name();
  }
  if (!known)
    return InvalidArgument("monitoring.explain.output: '" + s.output + "' is not an output of model '" + model +
                           "' (its outputs: " + outputs + ")");
  for (int64_t i = 0; i < s.features; ++i) s.feature_names.push_back(s.input + "[" + std::to_string(i) + "]");

  std::error_code ec;
  if (!std::filesystem::exists(s.settings.profile, ec)) {
    s.background_error = FailedPrecondition("model '" + model + "' has no background for kernel_shap or permutation: " +
                                            s.settings.profile.string() +
                                            " does not exist (write one with `ferry profile build`, or set "
                                            "monitoring.explain.profile)");
    return s;
  }
  auto profile = monitoring::drift::ReadProfile(s.settings.profile);
  if (!profile.ok()) {
    s.background_error = FailedPrecondition("model '" + model + "': monitoring.explain.profile: " + profile.status().message());
    return s;
  }
  for (const auto& f : profile->features)
    if ((f.tensor.empty() || f.tensor == s.input) && static_cast<int64_t>(f.index) < s.features && !f.name.empty())
      s.feature_names[f.index] = f.name;
  auto background = ex::BackgroundFromProfile(*profile, s.input, s.features, s.settings.background_rows, s.settings.seed);
  if (background.ok()) s.background = std::move(background).value();
  else
    s.background_error = FailedPrecondition("model '" + model + "': " + s.settings.profile.string() + ": " +
                                            background.status().message());
  return s;
}

Result<ex::Matrix> TensorAsMatrix(const Tensor& t, int64_t rows) {
  const auto count = ElementCount(t.shape);
  if (!count || rows <= 0 || *count % rows != 0)
    return Internal("output '" + t.name + "': shape " + ShapeToString(t.shape) + " is not " + std::to_string(rows) + " rows");
  ex::Matrix m;
  m.rows = rows;
  m.cols = static_cast<int64_t>(*count) / rows;
  m.values.resize(*count);
  const int64_t n = static_cast<int64_t>(*count);
  switch (t.datatype) {
    case DataType::kFp32: ReadAs<float>(t.data(), n, m.values.data()); break;
    case DataType::kFp64: ReadAs<double>(t.data(), n, m.values.data()); break;
    case DataType::kInt32: ReadAs<int32_t>(t.data(), n, m.values.data()); break;
    case DataType::kInt64: ReadAs<int64_t>(t.data(), n, m.values.data()); break;
    default:
      return InvalidArgument("output '" + t.name + "': datatype " + std::string(DataTypeName(t.datatype)) +
                             " cannot be explained (FP32, FP64, INT32 or INT64; see monitoring.explain.output)");
  }
  return m;
}

Tensor MatrixRowsAsTensor(const ex::Matrix& m, int64_t first, int64_t rows, const std::string& name, DataType type) {
  Tensor t;
  t.name = name;
  t.datatype = type;
  t.shape = {rows, m.cols};
  const double* src = m.values.data() + first * m.cols;
  const int64_t n = rows * m.cols;
  std::string bytes(static_cast<size_t>(n) * DataTypeSize(type), '\0');
  if (type == DataType::kFp64) {
    std::memcpy(bytes.data(), src, bytes.size());
  } else {
    for (int64_t i = 0; i < n; ++i) {
      float v = static_cast<float>(src[i]);
      std::memcpy(bytes.data() + i * sizeof(float), &v, sizeof(float));
    }
  }
  t.Own(std::move(bytes));
  return t;
}

std::vector<Tensor> ExplanationTensors(const ex::Matrix& a, int64_t groups, const std::vector<std::string>& feature_names,
                                       DataType type) {
  const int64_t width = a.cols / groups;
  std::vector<Tensor> out;
  Tensor attributions = MatrixRowsAsTensor(a, 0, a.rows, "attributions", type);
  attributions.shape = groups > 1 ? Shape{a.rows, groups, width} : Shape{a.rows, width};
  out.push_back(std::move(attributions));
  ex::Matrix expected{1, groups, {}};
  for (int64_t g = 0; g < groups; ++g) expected.values.push_back(a.rows > 0 ? a.at(0, g * width + width - 1) : 0.0);
  Tensor ev = MatrixRowsAsTensor(expected, 0, 1, "expected_value", type);
  ev.shape = {groups};
  out.push_back(std::move(ev));
  Tensor names;
  names.name = "feature_names";
  names.datatype = DataType::kBytes;
  names.shape = {width};
  std::string bytes;
  auto add = [&bytes](const std::string& s) {
    const uint32_t len = static_cast<uint32_t>(s.size());
    char le[4] = {static_cast<char>(len & 0xff), static_cast<char>((len >> 8) & 0xff),
                  static_cast<char>((len >> 16) & 0xff), static_cast<char>((len >> 24) & 0xff)};
    bytes.append(le, 4);
    bytes += s;
  };
  for (int64_t i = 0; i + 1 < width; ++i) add(i < static_cast<int64_t>(feature_names.size()) ? feature_names[i] : "");
  add("bias");
  names.Own(std::move(bytes));
  out.push_back(std::move(names));
  return out;
}

}  // namespace ferry::server
