#include "repository/model_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "core/data_type.h"
#include "core/log.h"
#include "repository/mlserver_settings.h"

namespace ferry::repository {
namespace fs = std::filesystem;
namespace pb = google::protobuf;

namespace {

class CollectErrors : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (text_.empty()) text_ = "line " + std::to_string(line + 1) + " column " + std::to_string(column + 1) + ": " + message;
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

Result<std::string> ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Unavailable("cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<inference::DataType> YamlDataType(const YAML::Node& n, const std::string& where) {
  if (!n) return InvalidArgument(where + ": missing 'datatype'");
  std::string s = n.as<std::string>();
  auto t = DataTypeFromName(s);
  if (!t) t = DataTypeFromConfigName(s);
  if (!t) return InvalidArgument(where + ": unknown datatype '" + s + "'");
  return static_cast<inference::DataType>(*t);
}

template <typename TensorMsg>
Status YamlTensors(const YAML::Node& list, const char* key,
                   pb::RepeatedPtrField<TensorMsg>* out) {
  if (!list) return Status::Ok();
  if (!list.IsSequence()) return InvalidArgument(std::string("'") + key + "' must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node& t = list[i];
    std::string where = std::string(key) + "[" + std::to_string(i) + "]";
    if (!t["name"]) return InvalidArgument(where + ": missing 'name'");
    auto* m = out->Add();
    m->set_name(t["name"].as<std::string>());
    where = std::string(key) + " '" + m->name() + "'";
    FERRY_ASSIGN_OR_RETURN(auto dt, YamlDataType(t["datatype"], where));
    m->set_data_type(dt);
    const YAML::Node& shape = t["shape"];
    if (!shape || !shape.IsSequence()) return InvalidArgument(where + ": 'shape' must be a list of dimensions");
    for (const auto& d : shape) m->add_dims(d.as<int64_t>());
  }
  return Status::Ok();
}

// Writes a proto message as JSON through reflection (see ModelConfigToJson).
class JsonPrinter {
 public:
  using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
  explicit JsonPrinter(Writer& w) : w_(w) {}

  void Message(const pb::Message& m) {
    const pb::Descriptor* d = m.GetDescriptor();
    const pb::Reflection* r = m.GetReflection();
    w_.StartObject();
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor* f = d->field(i);
      // Unset oneof members and unset sub-messages are omitted, as protobuf does.
      if (f->containing_oneof() && !r->HasField(m, f)) continue;
      if (!f->is_repeated() && f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !r->HasField(m, f)) continue;
      w_.Key(f->name().c_str());
      if (f->is_map()) {
        Map(m, f);
      } else if (f->is_repeated()) {
        w_.StartArray();
        for (int j = 0; j < r->FieldSize(m, f); ++j) Value(m, f, j);
        w_.EndArray();
      } else {
        Value(m, f, -1);
      }
    }
    w_.EndObject();
  }

 private:
  void Map(const pb::Message& m, const pb::FieldDescriptor* f) {
    const pb::Reflection* r = m.GetReflection();
    w_.StartObject();
    for (int j = 0; j < r->FieldSize(m, f); ++j) {
      const pb::Message& entry = r->GetRepeatedMessage(m, f, j);
      const pb::Descriptor* ed = entry.GetDescriptor();
      const pb::Reflection* er = entry.GetReflection();
      const pb::FieldDescriptor* kf = ed->FindFieldByName("key");
      std::string key;
      switch (kf->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_STRING: key = er->GetString(entry, kf); break;
        case pb::FieldDescriptor::CPPTYPE_UINT64: key = std::to_string(er->GetUInt64(entry, kf)); break;
        case pb::FieldDescriptor::CPPTYPE_INT64: key = std::to_string(er->GetInt64(entry, kf)); break;
        case pb::FieldDescriptor::CPPTYPE_UINT32: key = std::to_string(er->GetUInt32(entry, kf)); break;
        default: key = std::to_string(er->GetInt32(entry, kf)); break;
      }
      w_.Key(key.c_str());
      Value(entry, ed->FindFieldByName("value"), -1);
    }
    w_.EndObject();
  }

  void Value(const pb::Message& m, const pb::FieldDescriptor* f, int index) {
    const pb::Reflection* r = m.GetReflection();
    bool rep = index >= 0;
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_INT32: w_.Int(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f)); break;
      case pb::FieldDescriptor::CPPTYPE_INT64: w_.Int64(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f)); break;
      case pb::FieldDescriptor::CPPTYPE_UINT32: w_.Uint(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f)); break;
      case pb::FieldDescriptor::CPPTYPE_UINT64: w_.Uint64(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f)); break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE: w_.Double(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f)); break;
      case pb::FieldDescriptor::CPPTYPE_FLOAT: w_.Double(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f)); break;
      case pb::FieldDescriptor::CPPTYPE_BOOL: w_.Bool(rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)); break;
      case pb::FieldDescriptor::CPPTYPE_ENUM: {
        const auto* e = rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f);
        w_.String(e->name().c_str());
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_STRING: {
        std::string s = rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
        w_.String(s.data(), s.size());
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        Message(rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
        break;
    }
  }

  Writer& w_;
};

template <typename TensorMsg>
Status ValidateTensors(const pb::RepeatedPtrField<TensorMsg>& list, const char* kind) {
  std::set<std::string> names;
  for (const auto& t : list) {
    if (t.name().empty()) return InvalidArgument(std::string(kind) + " with an empty name");
    if (!names.insert(t.name()).second) return InvalidArgument(std::string(kind) + " '" + t.name() + "' is declared twice");
    if (t.data_type() == inference::TYPE_INVALID)
      return InvalidArgument(std::string(kind) + " '" + t.name() + "': data_type is missing");
    for (int64_t d : t.dims())
      if (d < -1 || d == 0)
        return InvalidArgument(std::string(kind) + " '" + t.name() + "': dims must be -1 or positive");
  }
  return Status::Ok();
}

// dynamic_batching: true | {} | {max_queue_delay_microseconds, preferred_batch_size,
// preserve_ordering} (false or absent: none). Triton's other dynamic_batching fields
// (priorities, queue policies) need config.pbtxt.
Status YamlDynamicBatching(const YAML::Node& db, ModelConfig* c) {
  if (db.IsScalar()) {
    if (db.as<bool>()) c->mutable_dynamic_batching();
    return Status::Ok();
  }
  if (!db.IsMap()) return InvalidArgument("model.yaml: 'dynamic_batching' must be true, false or a mapping");
  auto* b = c->mutable_dynamic_batching();
  for (const auto& kv : db) {
    const std::string k = kv.first.as<std::string>();
    if (k == "max_queue_delay_microseconds") {
      b->set_max_queue_delay_microseconds(kv.second.as<uint64_t>());
    } else if (k == "preferred_batch_size") {
      if (!kv.second.IsSequence())
        return InvalidArgument("model.yaml: dynamic_batching.preferred_batch_size must be a list of sizes");
      for (const auto& v : kv.second) b->add_preferred_batch_size(v.as<int32_t>());
    } else if (k == "preserve_ordering") {
      b->set_preserve_ordering(kv.second.as<bool>());
    } else {
      return InvalidArgument("model.yaml: unknown key 'dynamic_batching." + k +
                             "' (max_queue_delay_microseconds, preferred_batch_size, preserve_ordering)");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ModelConfig> ParseTritonConfig(const std::string& text) {
  ModelConfig config;
  pb::TextFormat::Parser parser;
  CollectErrors errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &config)) return InvalidArgument("config.pbtxt: " + errors.text());
  return config;
}

// model.yaml's `monitoring:` block, nested mappings of scalars, becomes the parameters
// monitoring.<a>.<b> that config.pbtxt and model-settings.json spell out.
static Status YamlMonitoring(const YAML::Node& node, const std::string& path, ModelConfig* c) {
  if (node.IsScalar()) {
    (*c->mutable_parameters())[path].set_string_value(node.as<std::string>());
    return Status::Ok();
  }
  if (node.IsNull()) return Status::Ok();  // an empty block sets nothing
  if (!node.IsMap()) return InvalidArgument("model.yaml: '" + path + "' must be a mapping of settings or a value, not a list");
  for (const auto& kv : node) FERRY_RETURN_IF_ERROR(YamlMonitoring(kv.second, path + "." + kv.first.as<std::string>(), c));
  return Status::Ok();
}

Result<ModelConfig> ParseFerryYaml(const std::string& text) {
  ModelConfig c;
  try {
    YAML::Node y = YAML::Load(text);
    if (!y || y.IsNull()) return c;
    if (!y.IsMap()) return InvalidArgument("model.yaml: the top level must be a mapping");
    static const std::set<std::string> kKeys = {"name", "platform", "backend", "max_batch_size", "inputs", "outputs",
                                                "version_policy", "instances", "parameters", "default_model_filename",
                                                "graph_optimization_level", "dynamic_batching", "monitoring"};
    for (const auto& kv : y) {
      std::string k = kv.first.as<std::string>();
      if (!kKeys.count(k)) return InvalidArgument("model.yaml: unknown key '" + k + "'");
    }
    if (y["name"]) c.set_name(y["name"].as<std::string>());
    if (y["platform"]) c.set_platform(y["platform"].as<std::string>());
    if (y["backend"]) c.set_backend(y["backend"].as<std::string>());
    if (y["default_model_filename"]) c.set_default_model_filename(y["default_model_filename"].as<std::string>());
    if (y["max_batch_size"]) c.set_max_batch_size(y["max_batch_size"].as<int32_t>());
    FERRY_RETURN_IF_ERROR(YamlTensors(y["inputs"], "input", c.mutable_input()));
    FERRY_RETURN_IF_ERROR(YamlTensors(y["outputs"], "output", c.mutable_output()));
    if (const YAML::Node& vp = y["version_policy"]) {
      // version_policy: all | {latest: N} | {specific: [1, 3]}
      if (vp.IsScalar() && vp.as<std::string>() == "all") {
        c.mutable_version_policy()->mutable_all();
      } else if (vp.IsMap() && vp["latest"]) {
        c.mutable_version_policy()->mutable_latest()->set_num_versions(vp["latest"].as<uint32_t>());
      } else if (vp.IsMap() && vp["specific"]) {
        for (const auto& v : vp["specific"]) c.mutable_version_policy()->mutable_specific()->add_versions(v.as<int64_t>());
      } else {
        return InvalidArgument("model.yaml: version_policy must be 'all', {latest: N} or {specific: [versions]}");
      }
    }
    if (y["instances"]) {
      auto* g = c.add_instance_group();
      g->set_kind(inference::ModelInstanceGroup::KIND_CPU);
      g->set_count(y["instances"].as<int32_t>());
    }
    if (y["graph_optimization_level"])
      c.mutable_optimization()->mutable_graph()->set_level(y["graph_optimization_level"].as<int32_t>());
    if (const YAML::Node& db = y["dynamic_batching"]) FERRY_RETURN_IF_ERROR(YamlDynamicBatching(db, &c));
    if (const YAML::Node& p = y["parameters"]) {
      if (!p.IsMap()) return InvalidArgument("model.yaml: 'parameters' must be a mapping");
      for (const auto& kv : p)
        (*c.mutable_parameters())[kv.first.as<std::string>()].set_string_value(kv.second.as<std::string>());
    }
    if (const YAML::Node& m = y["monitoring"]) FERRY_RETURN_IF_ERROR(YamlMonitoring(m, "monitoring", &c));
  } catch (const YAML::Exception& e) {
    return InvalidArgument("model.yaml: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return c;
}

Result<ModelConfig> ReadModelConfig(const fs::path& model_dir) {
  std::string name = model_dir.filename().string();
  ModelConfig config;
  std::error_code ec;
  if (fs::exists(model_dir / "config.pbtxt", ec)) {
    FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(model_dir / "config.pbtxt"));
    FERRY_ASSIGN_OR_RETURN(config, ParseTritonConfig(text));
  } else if (fs::exists(model_dir / "model.yaml", ec)) {
    FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(model_dir / "model.yaml"));
    FERRY_ASSIGN_OR_RETURN(config, ParseFerryYaml(text));
  } else if (fs::exists(model_dir / kMlserverSettingsFile, ec)) {
    FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(model_dir / kMlserverSettingsFile));
    FERRY_ASSIGN_OR_RETURN(MlserverSettings settings, ParseMlserverSettings(text));
    for (const auto& why : settings.ignored)
      FERRY_LOG(kInfo, "model-settings.json field ignored", ("model", name)("field", why));
    config = std::move(settings.config);
    // Without parameters.uri, MLServer's runtime takes the first of its well-known
    // file names that exists; so does ferry, before its own runtime's names.
    if (config.default_model_filename().empty())
      for (const auto& file : MlserverModelFilenames(config.backend()))
        if (fs::exists(model_dir / file, ec)) {
          config.set_default_model_filename(file);
          break;
        }
  }
  if (!config.name().empty() && config.name() != name)
    return InvalidArgument("config name '" + config.name() + "' differs from the model folder name '" + name + "'");
  config.set_name(name);
  return config;
}

std::string ModelConfigToJson(const ModelConfig& config) {
  rapidjson::StringBuffer sb;
  JsonPrinter::Writer w(sb);
  JsonPrinter(w).Message(config);
  return std::string(sb.GetString(), sb.GetSize());
}

Status ValidateModelConfig(const ModelConfig& c) {
  if (c.max_batch_size() < 0) return InvalidArgument("max_batch_size must not be negative");
  FERRY_RETURN_IF_ERROR(ValidateTensors(c.input(), "input"));
  FERRY_RETURN_IF_ERROR(ValidateTensors(c.output(), "output"));
  if (c.input().empty()) return InvalidArgument("the model declares no inputs");
  if (c.output().empty()) return InvalidArgument("the model declares no outputs");
  for (const auto& g : c.instance_group())
    if (g.count() < 0) return InvalidArgument("instance_group '" + g.name() + "': count must not be negative");
  return Status::Ok();
}

}  // namespace ferry::repository
