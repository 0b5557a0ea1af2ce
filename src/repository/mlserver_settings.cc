#include "repository/mlserver_settings.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/data_type.h"

namespace ferry::repository {
namespace {

namespace rj = rapidjson;

const char kFile[] = "model-settings.json";

Status Bad(const std::string& what) { return InvalidArgument(std::string(kFile) + ": " + what); }

// MLServer's runtime classes, by the ferry backend that serves their models.
const std::map<std::string, std::string>& Implementations() {
  static const std::map<std::string, std::string> m = {
      {"mlserver_sklearn.SKLearnModel", "sklearn"},
      {"mlserver_xgboost.XGBoostModel", "xgboost"},
      {"mlserver_lightgbm.LightGBMModel", "lightgbm"},
  };
  return m;
}

std::string JsonType(const rj::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "a boolean";
  if (v.IsNumber()) return "a number";
  if (v.IsString()) return "a string";
  if (v.IsArray()) return "a list";
  return "an object";
}

Result<std::string> String(const rj::Value& v, const std::string& field) {
  if (!v.IsString()) return Bad("'" + field + "' must be a string, not " + JsonType(v));
  return std::string(v.GetString(), v.GetStringLength());
}

Result<int64_t> Integer(const rj::Value& v, const std::string& field) {
  if (!v.IsInt64()) return Bad("'" + field + "' must be an integer, not " + (v.IsNumber() ? "a fraction" : JsonType(v)));
  return v.GetInt64();
}

// One entry of "inputs" or "outputs": {name, datatype, shape, parameters}.
template <typename TensorMsg>
Status ReadTensors(const rj::Value& list, const char* key, google::protobuf::RepeatedPtrField<TensorMsg>* out,
                   std::vector<std::vector<int64_t>>* shapes) {
  if (!list.IsArray()) return Bad(std::string("'") + key + "' must be a list, not " + JsonType(list));
  for (rj::SizeType i = 0; i < list.Size(); ++i) {
    const rj::Value& t = list[i];
    std::string where = std::string(key) + "[" + std::to_string(i) + "]";
    if (!t.IsObject()) return Bad(where + " must be an object, not " + JsonType(t));
    if (!t.HasMember("name")) return Bad(where + ": 'name' is missing");
    FERRY_ASSIGN_OR_RETURN(std::string name, String(t["name"], where + ".name"));
    where = std::string(key) + " '" + name + "'";
    if (!t.HasMember("datatype")) return Bad(where + ": 'datatype' is missing");
    FERRY_ASSIGN_OR_RETURN(std::string dt, String(t["datatype"], where + ".datatype"));
    auto type = DataTypeFromName(dt);
    if (!type) return Bad(where + ": unknown datatype '" + dt + "' (expected a V2 name such as FP32, INT64, BYTES)");
    if (!t.HasMember("shape")) return Bad(where + ": 'shape' is missing");
    const rj::Value& shape = t["shape"];
    if (!shape.IsArray() || shape.Empty()) return Bad(where + ": 'shape' must be a non-empty list of dimensions");
    std::vector<int64_t> dims;
    for (rj::SizeType d = 0; d < shape.Size(); ++d) {
      FERRY_ASSIGN_OR_RETURN(int64_t dim, Integer(shape[d], where + ".shape[" + std::to_string(d) + "]"));
      if (dim < -1 || dim == 0) return Bad(where + ": shape " + std::to_string(dim) + " must be -1 or positive");
      dims.push_back(dim);
    }
    auto* m = out->Add();
    m->set_name(name);
    m->set_data_type(static_cast<inference::DataType>(*type));
    shapes->push_back(std::move(dims));
  }
  return Status::Ok();
}

// Writes the declared shapes as dims, without the batch dimension when batching.
template <typename TensorMsg>
void SetDims(google::protobuf::RepeatedPtrField<TensorMsg>* list, const std::vector<std::vector<int64_t>>& shapes,
             bool batching) {
  for (int i = 0; i < list->size(); ++i) {
    auto* m = list->Mutable(i);
    m->clear_dims();
    const auto& s = shapes[static_cast<size_t>(i)];
    for (size_t d = batching ? 1 : 0; d < s.size(); ++d) m->add_dims(s[d]);
  }
}

// The name of a declared tensor that has no dimension besides the batch dimension.
template <typename TensorMsg>
std::string OnlyBatchDim(const google::protobuf::RepeatedPtrField<TensorMsg>& list,
                         const std::vector<std::vector<int64_t>>& shapes) {
  for (int i = 0; i < list.size(); ++i)
    if (shapes[static_cast<size_t>(i)].size() < 2) return list[i].name();
  return "";
}

Status ReadParameters(const rj::Value& p, MlserverSettings* out) {
  if (!p.IsObject()) return Bad("'parameters' must be an object, not " + JsonType(p));
  inference::ModelConfig& c = out->config;
  for (auto it = p.MemberBegin(); it != p.MemberEnd(); ++it) {
    const std::string key(it->name.GetString(), it->name.GetStringLength());
    const rj::Value& v = it->value;
    if (key == "uri") {
      FERRY_ASSIGN_OR_RETURN(std::string uri, String(v, "parameters.uri"));
      if (uri.size() >= 2 && uri[0] == '.' && uri[1] == '/') uri.erase(0, 2);
      if (uri.empty()) return Bad("'parameters.uri' is empty");
      if (uri.find("://") != std::string::npos)
        return Bad("'parameters.uri' is '" + uri + "': only a path to a file beside " + kFile + " (or absolute) is served");
      c.set_default_model_filename(uri);
    } else if (key == "version") {
      if (v.IsNull()) continue;
      std::string version;
      if (v.IsInt64()) {
        version = std::to_string(v.GetInt64());
      } else {
        FERRY_ASSIGN_OR_RETURN(version, String(v, "parameters.version"));
      }
      int64_t number = 1;
      const bool numeric = !version.empty() && version.size() <= 18 &&
                           std::all_of(version.begin(), version.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
      if (numeric && std::stoll(version) > 0) number = std::stoll(version);
      else out->ignored.push_back("parameters.version: '" + version + "' is not a positive number; served as version 1");
      c.mutable_version_policy()->mutable_specific()->add_versions(number);
    } else if (key == "extra") {
      if (v.IsNull()) continue;
      if (!v.IsObject()) return Bad("'parameters.extra' must be an object, not " + JsonType(v));
      for (auto e = v.MemberBegin(); e != v.MemberEnd(); ++e) {
        const std::string name(e->name.GetString(), e->name.GetStringLength());
        std::string value;
        if (e->value.IsString()) value.assign(e->value.GetString(), e->value.GetStringLength());
        else if (e->value.IsBool()) value = e->value.GetBool() ? "true" : "false";
        else if (e->value.IsInt64()) value = std::to_string(e->value.GetInt64());
        else if (e->value.IsNumber()) value = std::to_string(e->value.GetDouble());
        else {
          out->ignored.push_back("parameters.extra." + name + ": " + JsonType(e->value) + " values are not passed on");
          continue;
        }
        (*c.mutable_parameters())[name].set_string_value(value);
      }
    } else {
      out->ignored.push_back("parameters." + key + ": not used by ferry");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<MlserverSettings> ParseMlserverSettings(const std::string& json) {
  rj::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    const size_t offset = doc.GetErrorOffset();
    const size_t line = 1 + static_cast<size_t>(std::count(json.begin(), json.begin() + std::min(offset, json.size()), '\n'));
    return Bad("invalid JSON at line " + std::to_string(line) + " (byte " + std::to_string(offset) +
               "): " + rj::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) return Bad("the top level must be an object, not " + JsonType(doc));

  MlserverSettings out;
  inference::ModelConfig& c = out.config;
  std::vector<std::vector<int64_t>> in_shapes, out_shapes;
  int64_t max_batch_size = 0;
  double max_batch_time = 0;
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    const std::string key(it->name.GetString(), it->name.GetStringLength());
    const rj::Value& v = it->value;
    if (key == "name") {
      FERRY_ASSIGN_OR_RETURN(std::string name, String(v, "name"));
      c.set_name(name);
    } else if (key == "implementation") {
      FERRY_ASSIGN_OR_RETURN(std::string impl, String(v, "implementation"));
      auto found = Implementations().find(impl);
      if (found == Implementations().end()) {
        std::string known;
        for (const auto& [k, backend] : Implementations()) known += (known.empty() ? "" : ", ") + k;
        return Unavailable(std::string(kFile) + ": implementation '" + impl +
                           "' has no ferry runtime; ferry serves " + known);
      }
      c.set_backend(found->second);
    } else if (key == "parameters") {
      if (!v.IsNull()) FERRY_RETURN_IF_ERROR(ReadParameters(v, &out));
    } else if (key == "inputs") {
      FERRY_RETURN_IF_ERROR(ReadTensors(v, "inputs", c.mutable_input(), &in_shapes));
    } else if (key == "outputs") {
      FERRY_RETURN_IF_ERROR(ReadTensors(v, "outputs", c.mutable_output(), &out_shapes));
    } else if (key == "max_batch_size") {
      FERRY_ASSIGN_OR_RETURN(max_batch_size, Integer(v, "max_batch_size"));
      if (max_batch_size < 0) return Bad("'max_batch_size' must not be negative");
      if (max_batch_size > INT32_MAX) return Bad("'max_batch_size' is too large");
    } else if (key == "max_batch_time") {
      if (!v.IsNumber()) return Bad("'max_batch_time' must be a number of seconds, not " + JsonType(v));
      max_batch_time = v.GetDouble();
      if (!(max_batch_time >= 0) || max_batch_time > 3600)
        return Bad("'max_batch_time' must be between 0 and 3600 seconds");
    } else if (key == "parallel_workers") {
      if (v.IsNull()) continue;
      FERRY_ASSIGN_OR_RETURN(int64_t workers, Integer(v, "parallel_workers"));
      if (workers < 0 || workers > 1024) return Bad("'parallel_workers' must be between 0 and 1024");
      auto* g = c.add_instance_group();
      g->set_kind(inference::ModelInstanceGroup::KIND_CPU);
      // MLServer's 0 runs inference in the server process: one instance here.
      g->set_count(static_cast<int32_t>(std::max<int64_t>(workers, 1)));
    } else {
      out.ignored.push_back(key + ": not used by ferry");
    }
  }
  if (c.backend().empty())
    return Bad("'implementation' is missing (e.g. \"mlserver_xgboost.XGBoostModel\")");

  // MLServer batches whole requests; ferry batches rows, so max_batch_size becomes the
  // most rows one execution takes. Every declared tensor needs a dimension besides the
  // batch dimension, as in ferry's dims.
  bool batching = max_batch_size > 1;
  if (batching) {
    std::string flat = OnlyBatchDim(c.input(), in_shapes);
    if (flat.empty()) flat = OnlyBatchDim(c.output(), out_shapes);
    if (!flat.empty()) {
      out.ignored.push_back("max_batch_size: tensor '" + flat + "' has only the batch dimension; served without batching");
      batching = false;
    }
  } else if (max_batch_size == 1 || max_batch_time > 0) {
    out.ignored.push_back("max_batch_size/max_batch_time: batching needs max_batch_size > 1");
  }
  SetDims(c.mutable_input(), in_shapes, batching);
  SetDims(c.mutable_output(), out_shapes, batching);
  if (batching) {
    c.set_max_batch_size(static_cast<int32_t>(max_batch_size));
    c.mutable_dynamic_batching()->set_max_queue_delay_microseconds(
        static_cast<uint64_t>(std::llround(max_batch_time * 1e6)));
  }
  return out;
}

std::vector<std::string> MlserverModelFilenames(const std::string& backend) {
  if (backend == "sklearn") return {"model.joblib", "model.pickle", "model.pkl"};
  if (backend == "xgboost") return {"model.bst", "model.json", "model.ubj"};
  if (backend == "lightgbm") return {"model.bst"};
  return {};
}

}  // namespace ferry::repository
