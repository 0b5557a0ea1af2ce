#include "runtime/python/worker_messages.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstring>

#include "core/bytes_tensor.h"

namespace ferry::runtime::python {

namespace {
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void String(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

std::string Done(const rapidjson::StringBuffer& sb) { return std::string(sb.GetString(), sb.GetSize()); }

constexpr char kRequestMagic[4] = {'F', 'I', 'N', '2'};
constexpr char kReplyMagic[4] = {'F', 'R', 'E', '2'};

// Little-endian appends and reads (x86-64 and aarch64 Linux are little-endian; the
// static_assert keeps a big-endian port from silently speaking another layout).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the worker wire layout is little-endian");
template <typename T>
void Put(std::string& p, T v) {
  p.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void PutSlot(std::string& p, const TensorSlot& s) {
  const size_t name_len = std::min<size_t>(s.name.size(), UINT16_MAX);
  Put<uint8_t>(p, static_cast<uint8_t>(s.datatype));
  Put<uint8_t>(p, static_cast<uint8_t>(s.shape.size()));
  Put<uint16_t>(p, static_cast<uint16_t>(name_len));
  Put<uint32_t>(p, 0);
  Put<uint64_t>(p, s.offset);
  Put<uint64_t>(p, s.size);
  for (int64_t d : s.shape) Put<int64_t>(p, d);
  p.append(s.name.data(), name_len);
}

struct Reader {
  std::string_view data;
  size_t pos = 0;
  bool ok = true;
  template <typename T>
  bool Get(T* v) {
    if (!ok || data.size() - pos < sizeof(T)) return ok = false;
    std::memcpy(v, data.data() + pos, sizeof(T));
    pos += sizeof(T);
    return true;
  }
  std::string_view Bytes(size_t n) {
    if (!ok || data.size() - pos < n) {
      ok = false;
      return {};
    }
    std::string_view v = data.substr(pos, n);
    pos += n;
    return v;
  }
};

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

void EncodeInfer(uint64_t id, uint64_t shm_size, const InputLayout& layout, const std::vector<std::string>& outputs,
                 std::string* packet) {
  std::string& p = *packet;
  p.clear();
  p.append(kRequestMagic, 4);
  Put<uint32_t>(p, 0);
  Put<uint64_t>(p, id);
  Put<uint64_t>(p, shm_size);
  Put<uint64_t>(p, layout.end);
  Put<uint32_t>(p, static_cast<uint32_t>(layout.slots.size()));
  Put<uint32_t>(p, static_cast<uint32_t>(outputs.size()));
  for (const TensorSlot& s : layout.slots) PutSlot(p, s);
  for (const auto& o : outputs) {
    Put<uint16_t>(p, static_cast<uint16_t>(std::min<size_t>(o.size(), UINT16_MAX)));
    p.append(o.data(), std::min<size_t>(o.size(), UINT16_MAX));
  }
}

Status DecodeInferReply(std::string_view packet, WorkerReply* reply) {
  Reader r{packet};
  reply->outputs.clear();
  reply->error.clear();
  reply->described_outputs.clear();
  std::string_view magic = r.Bytes(4);
  uint32_t status = 0, count = 0;
  if (!r.ok || magic != std::string_view(kReplyMagic, 4))
    return Internal("the worker's reply is not a binary infer reply (an older ferry_sdk?)");
  if (!r.Get(&status) || !r.Get(&reply->id) || !r.Get(&reply->shm_size) || !r.Get(&count))
    return Internal("the worker's reply is cut short");
  if (status != 0) {
    reply->ok = false;
    reply->user_error = status == 1;
    reply->unsupported = status == 3;
    reply->error = std::string(packet.substr(r.pos));
    if (reply->error.empty()) reply->error = "unknown error";
    return Status::Ok();
  }
  reply->ok = true;
  reply->user_error = false;
  reply->unsupported = false;
  if (count > packet.size()) return Internal("the worker's reply names more outputs than it holds");
  reply->outputs.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    TensorSlot& slot = reply->outputs[i];
    uint8_t code = 0, rank = 0;
    uint16_t name_len = 0;
    uint32_t reserved = 0;
    if (!r.Get(&code) || !r.Get(&rank) || !r.Get(&name_len) || !r.Get(&reserved) || !r.Get(&slot.offset) ||
        !r.Get(&slot.size))
      return Internal("worker reply output " + std::to_string(i) + " is cut short");
    slot.shape.resize(rank);
    for (uint8_t d = 0; d < rank; ++d) {
      int64_t dim = 0;
      if (!r.Get(&dim)) return Internal("worker reply output " + std::to_string(i) + " is cut short");
      if (dim < 0) return Internal("worker reply output " + std::to_string(i) + ": shape holds a value that is not a dimension");
      slot.shape[d] = dim;
    }
    std::string_view name = r.Bytes(name_len);
    if (!r.ok) return Internal("worker reply output " + std::to_string(i) + " is cut short");
    slot.name.assign(name.data(), name.size());
    if (code == 0 || code > static_cast<uint8_t>(DataType::kBf16))
      return Internal("worker reply output '" + slot.name + "': unknown datatype code " + std::to_string(code));
    slot.datatype = static_cast<DataType>(code);
  }
  if (r.pos != packet.size()) return Internal("the worker's reply holds bytes past its last output");
  return Status::Ok();
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
  if (auto wire = doc.FindMember("wire"); wire != doc.MemberEnd() && wire->value.IsInt64())
    reply.wire_version = wire->value.GetInt64();
  {
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
