#include "runtime/xgboost/xgboost_model.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace ferry::runtime::xgb {
namespace {

const rapidjson::Value* Member(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(key);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

// learner_model_param values are decimal strings ("5"); absent ones take `fallback`.
Result<int64_t> IntParam(const rapidjson::Value* params, const char* key, int64_t fallback) {
  const rapidjson::Value* v = params ? Member(*params, key) : nullptr;
  if (v == nullptr) return fallback;
  if (v->IsInt64()) return v->GetInt64();
  if (!v->IsString()) return InvalidArgument(std::string("learner_model_param.") + key + " is not a number");
  char* end = nullptr;
  long long n = std::strtoll(v->GetString(), &end, 10);
  if (end == v->GetString() || *end != '\0' || n < 0)
    return InvalidArgument(std::string("learner_model_param.") + key + " is '" + v->GetString() + "', not a count");
  return static_cast<int64_t>(n);
}

Result<std::optional<bool>> BoolParam(const inference::ModelConfig& config, const std::string& key) {
  auto it = config.parameters().find(key);
  if (it == config.parameters().end()) return std::optional<bool>();
  std::string v = it->second.string_value();
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "true" || v == "1") return std::optional<bool>(true);
  if (v == "false" || v == "0") return std::optional<bool>(false);
  return InvalidArgument("parameter '" + key + "' must be \"true\" or \"false\", not \"" +
                         it->second.string_value() + "\"");
}

// Parses "[a,b,...]" (XGBoost >= 3.0's base_score) into floats; nullopt if malformed.
std::optional<std::vector<float>> ParseVector(std::string_view s) {
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return std::nullopt;
  std::string body(s.substr(1, s.size() - 2));
  std::vector<float> out;
  const char* p = body.c_str();
  while (true) {
    char* end = nullptr;
    float f = std::strtof(p, &end);
    if (end == p) return std::nullopt;
    out.push_back(f);
    while (*end == ' ') ++end;
    if (*end == '\0') break;
    if (*end != ',') return std::nullopt;
    p = end + 1;
  }
  return out;
}

// The scalar text that replaces a vector base_score, and the intercepts left over.
Result<std::string> ScalarFor(std::string_view vec, std::vector<float>* intercepts) {
  auto values = ParseVector(vec);
  if (!values || values->empty())
    return InvalidArgument("the model's base_score '" + std::string(vec) + "' is not a list of numbers");
  bool all_equal = std::all_of(values->begin(), values->end(), [&](float f) { return f == values->front(); });
  if (all_equal) {
    std::string_view first = vec.substr(1, vec.find_first_of(",]") - 1);
    while (!first.empty() && first.front() == ' ') first.remove_prefix(1);
    return std::string(first);
  }
  *intercepts = std::move(*values);
  return std::string("0");
}

// UBJSON integer length markers as XGBoost writes them (big-endian).
std::optional<std::pair<uint64_t, size_t>> ReadUbjLength(const std::string& b, size_t pos) {
  if (pos >= b.size()) return std::nullopt;
  size_t n = 0;
  switch (b[pos]) {
    case 'i': case 'U': n = 1; break;
    case 'I': n = 2; break;
    case 'l': n = 4; break;
    case 'L': n = 8; break;
    default: return std::nullopt;
  }
  if (pos + 1 + n > b.size()) return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(b[pos + 1 + i]);
  return std::make_pair(v, 1 + n);
}

Result<std::vector<float>> UpgradeUbj(std::string* bytes) {
  static constexpr std::string_view kKey = "base_score";
  std::vector<float> intercepts;
  std::string& b = *bytes;
  for (size_t at = b.find(kKey); at != std::string::npos; at = b.find(kKey, at + 1)) {
    // A key is its length (low byte 10 for this key) then its bytes; the value a
    // string: 'S', a length, the characters.
    if (at == 0 || static_cast<unsigned char>(b[at - 1]) != kKey.size()) continue;
    size_t value = at + kKey.size();
    if (value >= b.size() || b[value] != 'S') continue;
    auto len = ReadUbjLength(b, value + 1);
    if (!len) continue;
    size_t text = value + 1 + len->second;
    if (text + len->first > b.size()) continue;
    std::string_view s(b.data() + text, len->first);
    if (s.empty() || s.front() != '[') continue;
    FERRY_ASSIGN_OR_RETURN(std::string scalar, ScalarFor(s, &intercepts));
    std::string replacement = "SL";
    for (int i = 7; i >= 0; --i) replacement += static_cast<char>((scalar.size() >> (8 * i)) & 0xff);
    replacement += scalar;
    b.replace(value, text + len->first - value, replacement);
  }
  return intercepts;
}

Result<std::vector<float>> UpgradeJson(std::string* bytes) {
  static constexpr std::string_view kKey = "\"base_score\"";
  std::vector<float> intercepts;
  std::string& b = *bytes;
  for (size_t at = b.find(kKey); at != std::string::npos; at = b.find(kKey, at + 1)) {
    size_t p = at + kKey.size();
    while (p < b.size() && std::isspace(static_cast<unsigned char>(b[p]))) ++p;
    if (p >= b.size() || b[p] != ':') continue;
    ++p;
    while (p < b.size() && std::isspace(static_cast<unsigned char>(b[p]))) ++p;
    if (p + 1 >= b.size() || b[p] != '"' || b[p + 1] != '[') continue;
    size_t close = b.find('"', p + 1);
    if (close == std::string::npos) continue;
    std::string_view s(b.data() + p + 1, close - p - 1);
    FERRY_ASSIGN_OR_RETURN(std::string scalar, ScalarFor(s, &intercepts));
    b.replace(p + 1, close - p - 1, scalar);
  }
  return intercepts;
}

}  // namespace

bool ModelInfo::classifier() const { return objective.rfind("binary:", 0) == 0 || objective.rfind("multi:", 0) == 0; }

Result<ModelInfo> ParseLearnerConfig(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) return Internal("XGBoost's learner config is not JSON");
  const rapidjson::Value* learner = Member(doc, "learner");
  if (learner == nullptr) return Internal("XGBoost's learner config has no 'learner'");
  ModelInfo info;
  const rapidjson::Value* objective = Member(*learner, "objective");
  const rapidjson::Value* name = objective ? Member(*objective, "name") : nullptr;
  if (name == nullptr || !name->IsString()) return Internal("XGBoost's learner config names no objective");
  info.objective = name->GetString();
  const rapidjson::Value* gbm = Member(*learner, "gradient_booster");
  const rapidjson::Value* gbm_name = gbm ? Member(*gbm, "name") : nullptr;
  info.booster = gbm_name && gbm_name->IsString() ? gbm_name->GetString() : "gbtree";
  const rapidjson::Value* params = Member(*learner, "learner_model_param");
  FERRY_ASSIGN_OR_RETURN(info.num_feature, IntParam(params, "num_feature", 0));
  FERRY_ASSIGN_OR_RETURN(info.num_class, IntParam(params, "num_class", 0));
  FERRY_ASSIGN_OR_RETURN(info.num_target, IntParam(params, "num_target", 1));
  return info;
}

Result<OutputPlan> PlanOutput(const ModelInfo& info, const inference::ModelConfig& config) {
  FERRY_ASSIGN_OR_RETURN(std::optional<bool> proba, BoolParam(config, "predict_proba"));
  FERRY_ASSIGN_OR_RETURN(std::optional<bool> margin_param, BoolParam(config, "output_margin"));
  const bool margin = margin_param.value_or(false);
  if (margin && proba.value_or(false))
    return InvalidArgument("parameters 'predict_proba' and 'output_margin' are both true; choose one");
  if (proba.value_or(false) && !info.classifier())
    return InvalidArgument("parameter 'predict_proba': objective '" + info.objective +
                           "' is not a classifier (binary:* or multi:*)");
  const bool multi = info.num_class > 1;
  const bool intercepts = !info.intercepts.empty();
  OutputPlan plan;
  plan.add_intercepts = intercepts;
  if (margin) {
    plan.predict_type = 1;
    plan.width = info.groups();
  } else if (proba.value_or(info.classifier())) {
    if (multi) {
      // softprob's value already is the probabilities; softmax's is the label, and a
      // per-class intercept must be added to margins before the softmax.
      bool own = info.objective == "multi:softprob" && !intercepts;
      plan.predict_type = own ? 0 : 1;
      plan.transform = own ? Transform::kNone : Transform::kSoftmax;
      plan.width = info.num_class;
    } else if (info.objective == "binary:logitraw") {
      plan.predict_type = 1;
      plan.transform = Transform::kSigmoidPair;
      plan.width = 2;
    } else {
      plan.transform = Transform::kProbaPair;
      plan.width = 2;
    }
  } else if (multi && info.objective == "multi:softmax") {
    plan.predict_type = intercepts ? 1 : 0;
    plan.transform = intercepts ? Transform::kArgmax : Transform::kNone;
    plan.width = 1;
  } else if (multi && intercepts) {  // multi:softprob
    plan.predict_type = 1;
    plan.transform = Transform::kSoftmax;
    plan.width = info.num_class;
  } else {
    plan.width = info.groups();
  }
  return plan;
}

std::string DenseArrayInterface(const void* data, int64_t rows, int64_t cols, DataType type) {
  return "{\"data\":[" + std::to_string(reinterpret_cast<uintptr_t>(data)) + ",true],\"shape\":[" +
         std::to_string(rows) + "," + std::to_string(cols) + "],\"typestr\":\"" +
         (type == DataType::kFp64 ? "<f8" : "<f4") + "\",\"version\":3}";
}

std::string PredictConfig(int predict_type) {
  // cache_id: libxgboost 1.7 reads it and fails on its absence.
  return "{\"type\":" + std::to_string(predict_type) +
         ",\"training\":false,\"iteration_begin\":0,\"iteration_end\":0,\"strict_shape\":false,"
         "\"missing\":NaN,\"cache_id\":0}";
}

Result<std::vector<float>> UpgradeBaseScore(std::string* model_bytes) {
  const std::string& b = *model_bytes;
  if (b.size() < 2 || b[0] != '{') return std::vector<float>();  // the old binary format
  // As XGBoost itself tells them apart: '{' then a type marker is UBJSON.
  if (std::isalpha(static_cast<unsigned char>(b[1]))) return UpgradeUbj(model_bytes);
  return UpgradeJson(model_bytes);
}

std::string CleanError(std::string_view raw) {
  std::string_view s = raw;
  if (size_t cut = s.find("\nStack trace:"); cut != std::string_view::npos) s = s.substr(0, cut);
  if (size_t nl = s.find('\n'); nl != std::string_view::npos) s = s.substr(0, nl);
  // "[22:19:33] ./src/learner.cc:1017: message"
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find("] ");
    size_t colon = close == std::string_view::npos ? close : s.find(": ", close + 2);
    if (colon != std::string_view::npos) s.remove_prefix(colon + 2);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace ferry::runtime::xgb
