#include "runtime/python/worker_messages.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "core/bytes_tensor.h"

namespace ferry::runtime::python {

namespace {
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void String(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

std::string Done(const rapidjson::StringBuffer& sb) { return std::string(sb.GetString(), sb.GetSize()); }

Result<uint64_t> Uint(const rapidjson::Value& obj, const char* key, const std::string& where) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsUint64())
    return Internal(where + ": '" + key + "' is missing or not a non-negative integer");
  return it->value.GetUint64();
}

Result<TensorSlot> DecodeSlot(const rapidjson::Value& v, size_t index) {
  std::string where = "worker reply output " + std::to_string(index);
  if (!v.IsObject()) return Internal(where + " is not an object");
  TensorSlot slot;
  auto name = v.FindMember("name");
  if (name == v.MemberEnd() || !name->value.IsString()) return Internal(where + ": 'name' is missing");
  slot.name = name->value.GetString();
  where = "worker reply output '" + slot.name + "'";
  auto dt = v.FindMember("datatype");
  if (dt == v.MemberEnd() || !dt->value.IsString()) return Internal(where + ": 'datatype' is missing");
  auto parsed = DataTypeFromName(dt->value.GetString());
  if (!parsed) return Internal(where + ": unknown datatype '" + std::string(dt->value.GetString()) + "'");
  slot.datatype = *parsed;
  auto shape = v.FindMember("shape");
  if (shape == v.MemberEnd() || !shape->value.IsArray()) return Internal(where + ": 'shape' is missing");
  for (const auto& d : shape->value.GetArray()) {
    if (!d.IsInt64() || d.GetInt64() < 0) return Internal(where + ": shape holds a value that is not a dimension");
    slot.shape.push_back(d.GetInt64());
  }
  FERRY_ASSIGN_OR_RETURN(slot.offset, Uint(v, "offset", where));
  FERRY_ASSIGN_OR_RETURN(slot.size, Uint(v, "size", where));
  return slot;
}
}  // namespace

InputLayout LayoutInputs(const std::vector<Tensor>& inputs) {
  InputLayout layout;
  uint64_t offset = 0;
  for (const Tensor& t : inputs) {
    layout.slots.push_back(TensorSlot{t.name, t.datatype, t.shape, offset, t.byte_size()});
    offset = AlignUp(offset + t.byte_size());
  }
  layout.end = offset;
  return layout;
}

std::string EncodeLoad(const LoadRequest& load) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("op");
  w.String("load");
  w.Key("model");
  String(w, load.model);
  w.Key("version");
  w.Int64(load.version);
  w.Key("version_dir");
  String(w, load.version_dir);
  w.Key("model_file");
  String(w, load.model_file);
  w.Key("class");
  String(w, load.model_class);
  w.Key("instance");
  w.Int(load.instance);
  w.Key("config");
  w.RawValue(load.config_json.data(), load.config_json.size(), rapidjson::kObjectType);
  if (load.describe_outputs) {
    w.Key("describe");
    w.Bool(true);
  }
  w.EndObject();
  return Done(sb);
}

std::string EncodeInfer(uint64_t id, uint64_t shm_size, const InputLayout& layout,
                        const std::vector<std::string>& outputs) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("op");
  w.String("infer");
  w.Key("id");
  w.Uint64(id);
  w.Key("shm_size");
  w.Uint64(shm_size);
  w.Key("output_offset");
  w.Uint64(layout.end);
  w.Key("inputs");
  w.StartArray();
  for (const TensorSlot& s : layout.slots) {
    w.StartObject();
    w.Key("name");
    String(w, s.name);
    w.Key("datatype");
    String(w, DataTypeName(s.datatype));
    w.Key("shape");
    w.StartArray();
    for (int64_t d : s.shape) w.Int64(d);
    w.EndArray();
    w.Key("offset");
    w.Uint64(s.offset);
    w.Key("size");
    w.Uint64(s.size);
    w.EndObject();
  }
  w.EndArray();
  w.Key("outputs");
  w.StartArray();
  for (const auto& o : outputs) String(w, o);
  w.EndArray();
  w.EndObject();
  return Done(sb);
}

Result<WorkerReply> DecodeReply(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return Internal("the worker's reply is not a JSON object");
  WorkerReply reply;
  auto ok = doc.FindMember("ok");
  if (ok == doc.MemberEnd() || !ok->value.IsBool()) return Internal("the worker's reply has no 'ok'");
  reply.ok = ok->value.GetBool();
  if (auto id = doc.FindMember("id"); id != doc.MemberEnd() && id->value.IsUint64()) reply.id = id->value.GetUint64();
  if (!reply.ok) {
    auto err = doc.FindMember("error");
    reply.error = err != doc.MemberEnd() && err->value.IsString() ? err->value.GetString() : "unknown error";
    auto user = doc.FindMember("user_error");
    reply.user_error = user != doc.MemberEnd() && user->value.IsBool() && user->value.GetBool();
    return reply;
  }
  auto outputs = doc.FindMember("outputs");
  if (outputs == doc.MemberEnd()) {  // a load reply
    auto described = doc.FindMember("described_outputs");
    if (described == doc.MemberEnd()) return reply;
    if (!described->value.IsArray()) return Internal("the worker's load reply: 'described_outputs' is not a list");
    for (const auto& o : described->value.GetArray()) {
      auto name = o.FindMember("name"), dt = o.FindMember("datatype"), shape = o.FindMember("shape");
      if (!o.IsObject() || name == o.MemberEnd() || !name->value.IsString() || dt == o.MemberEnd() ||
          !dt->value.IsString() || shape == o.MemberEnd() || !shape->value.IsArray())
        return Internal("the worker's load reply: a described output needs name, datatype and shape");
      WorkerReply::Described d;
      d.name = name->value.GetString();
      auto t = DataTypeFromName(dt->value.GetString());
      if (!t) return Internal("the worker's load reply: output '" + d.name + "' has unknown datatype '" +
                              dt->value.GetString() + "'");
      d.datatype = *t;
      for (const auto& v : shape->value.GetArray()) {
        if (!v.IsInt64() || v.GetInt64() < -1)
          return Internal("the worker's load reply: output '" + d.name + "' has a bad shape");
        d.shape.push_back(v.GetInt64());
      }
      reply.described_outputs.push_back(std::move(d));
    }
    return reply;
  }
  if (!outputs->value.IsArray()) return Internal("the worker's reply: 'outputs' is not a list");
  FERRY_ASSIGN_OR_RETURN(reply.shm_size, Uint(doc, "shm_size", "the worker's reply"));
  size_t i = 0;
  for (const auto& o : outputs->value.GetArray()) {
    FERRY_ASSIGN_OR_RETURN(TensorSlot slot, DecodeSlot(o, i++));
    reply.outputs.push_back(std::move(slot));
  }
  return reply;
}

Status CheckOutputs(const WorkerReply& reply, uint64_t id, const std::vector<std::string>& requested,
                    uint64_t region_size, const std::byte* region) {
  if (reply.id != id)
    return Internal("the worker answered request " + std::to_string(reply.id) + " while " + std::to_string(id) +
                    " was waiting");
  if (reply.outputs.size() != requested.size())
    return Internal("the worker returned " + std::to_string(reply.outputs.size()) + " outputs for " +
                    std::to_string(requested.size()) + " requested");
  for (size_t i = 0; i < requested.size(); ++i) {
    const TensorSlot& s = reply.outputs[i];
    if (s.name != requested[i])
      return Internal("the worker returned output '" + s.name + "' where '" + requested[i] + "' was expected");
    if (s.offset > region_size || s.size > region_size - s.offset)
      return Internal("output '" + s.name + "': bytes [" + std::to_string(s.offset) + ", +" + std::to_string(s.size) +
                      ") lie outside the " + std::to_string(region_size) + "-byte shared memory");
    uint64_t count = 1;
    for (int64_t d : s.shape) {
      if (d != 0 && count > UINT64_MAX / static_cast<uint64_t>(d))
        return Internal("output '" + s.name + "': shape " + ShapeToString(s.shape) + " overflows");
      count *= static_cast<uint64_t>(d);
    }
    if (s.datatype == DataType::kBytes) {
      std::string_view bytes(reinterpret_cast<const char*>(region + s.offset), s.size);
      if (!BytesTensorWellFormed(bytes, count))
        return Internal("output '" + s.name + "': its BYTES are not " + std::to_string(count) +
                        " length-prefixed elements");
    } else if (count > UINT64_MAX / std::max<uint64_t>(1, DataTypeSize(s.datatype)) ||
               count * DataTypeSize(s.datatype) != s.size) {
      return Internal("output '" + s.name + "': shape " + ShapeToString(s.shape) + " of " +
                      std::string(DataTypeName(s.datatype)) + " needs " +
                      std::to_string(count * DataTypeSize(s.datatype)) + " bytes, the worker wrote " +
                      std::to_string(s.size));
    }
  }
  return Status::Ok();
}

}  // namespace ferry::runtime::python
