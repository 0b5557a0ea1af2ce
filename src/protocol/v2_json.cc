#include "protocol/v2_json.h"

#include <rapidjson/document.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "core/ascii_scan.h"
#include "core/bytes_tensor.h"
#include "core/float16.h"

namespace ferry::protocol {
namespace {

using rapidjson::Value;
constexpr int kMaxNesting = 100;  // as Triton's HTTP_MAX_JSON_NESTING_DEPTH

// Request JSON nested deeper than this takes the slower, non-recursive parse: 'data' at
// kMaxNesting inside {"inputs":[{"data": ...}]} fits, with a little room.
constexpr int kMaxParseDepth = kMaxNesting + 8;

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// Passes a parse's events on to a document, refusing to open an array or object deeper
// than kMaxParseDepth: so rapidjson's recursive parser (a quarter fewer instructions than
// its iterative one on a typical request header) recurses at most that deep, whatever
// the body.
template <typename Handler>
class DepthLimited : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, DepthLimited<Handler>> {
 public:
  explicit DepthLimited(Handler* h) : h_(h) {}
  bool Null() { return h_->Null(); }
  bool Bool(bool b) { return h_->Bool(b); }
  bool Int(int i) { return h_->Int(i); }
  bool Uint(unsigned u) { return h_->Uint(u); }
  bool Int64(int64_t i) { return h_->Int64(i); }
  bool Uint64(uint64_t u) { return h_->Uint64(u); }
  bool Double(double d) { return h_->Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) { return h_->RawNumber(s, n, copy); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return h_->String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return h_->Key(s, n, copy); }
  bool StartObject() { return Open() && h_->StartObject(); }
  bool EndObject(rapidjson::SizeType n) { return --depth_, h_->EndObject(n); }
  bool StartArray() { return Open() && h_->StartArray(); }
  bool EndArray(rapidjson::SizeType n) { return --depth_, h_->EndArray(n); }
  bool too_deep() const { return too_deep_; }

 private:
  bool Open() {
    too_deep_ = ++depth_ > kMaxParseDepth;
    return !too_deep_;
  }
  Handler* h_;
  int depth_ = 0;
  bool too_deep_ = false;
};

// Parses `json` into `doc`. A body nested deeper than kMaxParseDepth is parsed again by
// rapidjson's iterative parser (no recursion), so that the checks after the parse name
// the input whose 'data' is too deep, as they did before.
template <typename Document>
Status ParseJson(std::string_view json, Document* doc, rapidjson::MemoryPoolAllocator<>* stack_alloc) {
  rapidjson::GenericReader<rapidjson::UTF8<>, rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>> reader(
      stack_alloc, 1024);
  bool too_deep = false;
  auto generate = [&](auto& handler) {
    DepthLimited<std::remove_reference_t<decltype(handler)>> limited(&handler);
    rapidjson::MemoryStream bytes(json.data(), json.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> stream(bytes);
    const bool ok = !reader.Parse<rapidjson::kParseDefaultFlags>(stream, limited).IsError();
    too_deep = limited.too_deep();
    return ok;
  };
  doc->Populate(generate);
  size_t offset = reader.GetErrorOffset();
  rapidjson::ParseErrorCode code = reader.GetParseErrorCode();
  if (too_deep) {
    doc->template Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    offset = doc->GetErrorOffset();
    code = doc->GetParseError();
  }
  if (code == rapidjson::kParseErrorNone) return Status::Ok();
  return InvalidArgument("failed to parse the request JSON at offset " + std::to_string(offset) + ": " +
                         rapidjson::GetParseError_En(code));
}

// Appends JSON leaves of `v` (arbitrarily nested arrays) as elements of `type`.
class DataDecoder {
 public:
  DataDecoder(const std::string& input, DataType type, std::string* out)
      : input_(input), type_(type), out_(out) {}

  Status Walk(const Value& v, int depth) {
    if (depth > kMaxNesting)
      return InvalidArgument("input " + Quoted(input_) + ": 'data' nested deeper than 100 levels");
    if (v.IsArray()) {
      for (const auto& e : v.GetArray()) FERRY_RETURN_IF_ERROR(Walk(e, depth + 1));
      return Status::Ok();
    }
    ++count_;
    return Leaf(v);
  }
  uint64_t count() const { return count_; }

 private:
  template <typename T>
  void Put(T x) {
    char buf[sizeof(T)];
    std::memcpy(buf, &x, sizeof(T));
    out_->append(buf, sizeof(T));
  }
  Status Wrong(const char* expected) {
    return InvalidArgument("input " + Quoted(input_) + ": element " + std::to_string(count_ - 1) +
                           " of 'data' is not " + expected + " as datatype " +
                           std::string(DataTypeName(type_)) + " requires");
  }

  Status Leaf(const Value& v) {
    switch (type_) {
      case DataType::kBool:
        if (!v.IsBool()) return Wrong("a JSON boolean");
        Put<uint8_t>(v.GetBool() ? 1 : 0);
        return Status::Ok();
      case DataType::kInt8: return Signed<int8_t>(v);
      case DataType::kInt16: return Signed<int16_t>(v);
      case DataType::kInt32: return Signed<int32_t>(v);
      case DataType::kInt64: return Signed<int64_t>(v);
      case DataType::kUint8: return Unsigned<uint8_t>(v);
      case DataType::kUint16: return Unsigned<uint16_t>(v);
      case DataType::kUint32: return Unsigned<uint32_t>(v);
      case DataType::kUint64: return Unsigned<uint64_t>(v);
      case DataType::kFp32:
        if (!v.IsNumber()) return Wrong("a JSON number");
        Put<float>(static_cast<float>(v.GetDouble()));
        return Status::Ok();
      case DataType::kFp64:
        if (!v.IsNumber()) return Wrong("a JSON number");
        Put<double>(v.GetDouble());
        return Status::Ok();
      case DataType::kFp16:
        if (!v.IsNumber()) return Wrong("a JSON number");
        Put<uint16_t>(DoubleToHalf(v.GetDouble()));
        return Status::Ok();
      case DataType::kBf16:
        if (!v.IsNumber()) return Wrong("a JSON number");
        Put<uint16_t>(DoubleToBf16(v.GetDouble()));
        return Status::Ok();
      case DataType::kBytes: {
        if (!v.IsString()) return Wrong("a JSON string");
        uint32_t len = v.GetStringLength();
        Put<uint32_t>(len);
        out_->append(v.GetString(), len);
        return Status::Ok();
      }
      default:
        return InvalidArgument("input " + Quoted(input_) + ": datatype " + std::string(DataTypeName(type_)) +
                               " cannot be sent as JSON 'data'; use the binary tensor data extension");
    }
  }
  template <typename T>
  Status Signed(const Value& v) {
    if (!v.IsInt64()) return Wrong("a JSON integer");
    int64_t x = v.GetInt64();
    if (x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        x > static_cast<int64_t>(std::numeric_limits<T>::max()))
      return InvalidArgument("input " + Quoted(input_) + ": element " + std::to_string(count_ - 1) + " value " +
                             std::to_string(x) + " is out of range for " + std::string(DataTypeName(type_)));
    Put<T>(static_cast<T>(x));
    return Status::Ok();
  }
  template <typename T>
  Status Unsigned(const Value& v) {
    if (!v.IsUint64()) return Wrong("a non-negative JSON integer");
    uint64_t x = v.GetUint64();
    if (x > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      return InvalidArgument("input " + Quoted(input_) + ": element " + std::to_string(count_ - 1) + " value " +
                             std::to_string(x) + " is out of range for " + std::string(DataTypeName(type_)));
    Put<T>(static_cast<T>(x));
    return Status::Ok();
  }

  const std::string& input_;
  DataType type_;
  std::string* out_;
  uint64_t count_ = 0;
};

// `kind` and `name` say whose parameters these are ("input", "x" -> "input 'x'"; no
// name: just `kind`); the text is built only for an error.
Status ParseParameters(const Value& v, const char* kind, const std::string* name, Parameters* out) {
  auto where = [&] { return name ? std::string(kind) + " " + Quoted(*name) : std::string(kind); };
  if (!v.IsObject()) return InvalidArgument(where() + ": 'parameters' must be a JSON object");
  for (const auto& m : v.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    const Value& x = m.value;
    if (x.IsBool()) (*out)[key] = x.GetBool();
    else if (x.IsInt64()) (*out)[key] = x.GetInt64();
    else if (x.IsUint64()) (*out)[key] = static_cast<double>(x.GetUint64());
    else if (x.IsNumber()) (*out)[key] = x.GetDouble();
    else if (x.IsString()) (*out)[key] = std::string(x.GetString(), x.GetStringLength());
    else
      return InvalidArgument(where() + ": parameter " + Quoted(key) +
                             " must be a string, number or boolean");
  }
  return Status::Ok();
}

Result<Shape> ParseShape(const Value& v, const std::string& input) {
  if (!v.IsArray()) return InvalidArgument("input " + Quoted(input) + ": 'shape' must be an array of integers");
  Shape shape;
  for (const auto& d : v.GetArray()) {
    if (!d.IsInt64() || d.GetInt64() < 0)
      return InvalidArgument("input " + Quoted(input) + ": 'shape' must hold non-negative integers");
    shape.push_back(d.GetInt64());
  }
  return shape;
}

const Value* Member(const Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}


}  // namespace

Result<InferRequest> DecodeInferRequest(std::shared_ptr<const std::string> body,
                                        std::optional<size_t> header_length) {
  size_t json_len = body->size();
  if (header_length) {
    if (*header_length > body->size())
      return InvalidArgument("Inference-Header-Content-Length " + std::to_string(*header_length) +
                             " exceeds the body length " + std::to_string(body->size()));
    json_len = *header_length;
  }
  // The DOM and the parser's stack start in buffers on this stack, so a typical request
  // header parses without a heap allocation (larger ones grow onto the heap).
  char value_buffer[8192];
  char parse_buffer[2048];
  rapidjson::MemoryPoolAllocator<> value_alloc(value_buffer, sizeof value_buffer);
  rapidjson::MemoryPoolAllocator<> parse_alloc(parse_buffer, sizeof parse_buffer);
  rapidjson::GenericDocument<rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>, rapidjson::MemoryPoolAllocator<>> doc(
      &value_alloc, sizeof parse_buffer / 2, &parse_alloc);
  FERRY_RETURN_IF_ERROR(ParseJson(std::string_view(body->data(), json_len), &doc, &parse_alloc));
  if (!doc.IsObject()) return InvalidArgument("the request body must be a JSON object");

  InferRequest req;
  if (const Value* id = Member(doc, "id")) {
    if (!id->IsString()) return InvalidArgument("'id' must be a string");
    req.id.assign(id->GetString(), id->GetStringLength());
  }
  if (const Value* p = Member(doc, "parameters")) FERRY_RETURN_IF_ERROR(ParseParameters(*p, "request", nullptr, &req.parameters));

  const Value* inputs = Member(doc, "inputs");
  if (!inputs) return InvalidArgument("the request has no 'inputs' field");
  if (!inputs->IsArray()) return InvalidArgument("'inputs' must be an array");

  size_t tail = json_len;  // next unread binary byte
  for (const auto& in : inputs->GetArray()) {
    if (!in.IsObject()) return InvalidArgument("each entry of 'inputs' must be an object");
    Tensor t;
    const Value* name = Member(in, "name");
    if (!name || !name->IsString()) return InvalidArgument("an input has no string 'name'");
    t.name.assign(name->GetString(), name->GetStringLength());
    const Value* dt = Member(in, "datatype");
    if (!dt || !dt->IsString()) return InvalidArgument("input " + Quoted(t.name) + ": missing string 'datatype'");
    auto type = DataTypeFromName(std::string_view(dt->GetString(), dt->GetStringLength()));
    if (!type)
      return InvalidArgument("input " + Quoted(t.name) + ": unknown datatype " +
                             Quoted(std::string_view(dt->GetString(), dt->GetStringLength())));
    t.datatype = *type;
    const Value* shape_v = Member(in, "shape");
    if (!shape_v) return InvalidArgument("input " + Quoted(t.name) + ": missing 'shape'");
    FERRY_ASSIGN_OR_RETURN(t.shape, ParseShape(*shape_v, t.name));
    auto count = ElementCount(t.shape);
    if (!count) return InvalidArgument("input " + Quoted(t.name) + ": shape " + ShapeToString(t.shape) + " is too large");

    Parameters params;
    if (const Value* p = Member(in, "parameters"))
      FERRY_RETURN_IF_ERROR(ParseParameters(*p, "input", &t.name, &params));
    const Value* data = Member(in, "data");
    auto binary_size_it = params.find("binary_data_size");
    bool has_binary = binary_size_it != params.end();
    if (params.count("shared_memory_region"))
      return Unimplemented("input " + Quoted(t.name) + ": shared memory is not supported");
    if (has_binary == (data != nullptr))
      return InvalidArgument("input " + Quoted(t.name) + ": must set exactly one of 'data' or parameters.binary_data_size");

    if (has_binary) {
      auto* size = std::get_if<int64_t>(&binary_size_it->second);
      if (!size || *size < 0)
        return InvalidArgument("input " + Quoted(t.name) + ": binary_data_size must be a non-negative integer");
      if (!header_length)
        return InvalidArgument("input " + Quoted(t.name) +
                               ": binary_data_size given but the request has no Inference-Header-Content-Length header");
      if (static_cast<uint64_t>(*size) > body->size() - tail)
        return InvalidArgument("input " + Quoted(t.name) + ": binary_data_size " + std::to_string(*size) +
                               " exceeds the " + std::to_string(body->size() - tail) +
                               " bytes of binary data left in the body");
      std::string_view bytes(body->data() + tail, static_cast<size_t>(*size));
      tail += static_cast<size_t>(*size);
      if (t.datatype == DataType::kBytes) {
        if (!BytesTensorWellFormed(bytes, *count))
          return InvalidArgument("input " + Quoted(t.name) + ": binary BYTES data does not hold " +
                                 std::to_string(*count) + " length-prefixed elements");
      } else if (*count * DataTypeSize(t.datatype) != bytes.size()) {
        return InvalidArgument("input " + Quoted(t.name) + ": shape " + ShapeToString(t.shape) + " of " +
                               std::string(DataTypeName(t.datatype)) + " needs " +
                               std::to_string(*count * DataTypeSize(t.datatype)) + " bytes but binary_data_size is " +
                               std::to_string(bytes.size()));
      }
      t.Borrow(bytes.data(), bytes.size(), body);
    } else {
      std::string buf;
      if (t.datatype != DataType::kBytes && *count < (1u << 28)) buf.reserve(*count * DataTypeSize(t.datatype));
      DataDecoder decoder(t.name, t.datatype, &buf);
      FERRY_RETURN_IF_ERROR(decoder.Walk(*data, 0));
      if (decoder.count() != *count)
        return InvalidArgument("input " + Quoted(t.name) + ": shape " + ShapeToString(t.shape) + " has " +
                               std::to_string(*count) + " elements but 'data' holds " +
                               std::to_string(decoder.count()));
      t.Own(std::move(buf));
    }
    req.inputs.push_back(std::move(t));
  }
  if (tail != body->size())
    return InvalidArgument(std::to_string(body->size() - tail) +
                           " bytes of binary data follow the JSON but no input claims them (binary_data_size)");

  if (const Value* outs = Member(doc, "outputs")) {
    if (!outs->IsArray()) return InvalidArgument("'outputs' must be an array");
    for (const auto& o : outs->GetArray()) {
      if (!o.IsObject()) return InvalidArgument("each entry of 'outputs' must be an object");
      const Value* name = Member(o, "name");
      if (!name || !name->IsString()) return InvalidArgument("a requested output has no string 'name'");
      RequestedOutput ro;
      ro.name.assign(name->GetString(), name->GetStringLength());
      if (const Value* p = Member(o, "parameters"))
        FERRY_RETURN_IF_ERROR(ParseParameters(*p, "output", &ro.name, &ro.parameters));
      if (ro.parameters.count("shared_memory_region"))
        return Unimplemented("output " + Quoted(ro.name) + ": shared memory is not supported");
      if (ro.parameters.count("classification"))
        return Unimplemented("output " + Quoted(ro.name) + ": the classification extension is not supported");
      req.outputs.push_back(std::move(ro));
    }
  }
  return req;
}

namespace {

// NaN and infinities, which a model may well output, are written as NaN, Infinity and
// -Infinity (as Python's json and tritonclient read them); the default writer would drop
// them and leave the document malformed.
using Writer = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>, rapidjson::CrtAllocator,
                                 rapidjson::kWriteNanAndInfFlag>;

template <typename T>
T Load(const std::byte* p) {
  T x;
  std::memcpy(&x, p, sizeof(T));
  return x;
}

// Writes the tensor's elements as a JSON array, stopping before the first element that
// would take the raw bytes written past `max_bytes`. Returns {written, total} elements.
std::pair<size_t, size_t> WriteData(Writer& w, const Tensor& t, size_t max_bytes = SIZE_MAX) {
  w.StartArray();
  const std::byte* p = t.data();
  size_t es = DataTypeSize(t.datatype);
  size_t total = es ? t.byte_size() / es : 0;
  size_t n = es ? std::min(total, max_bytes / es) : 0;
  switch (t.datatype) {
    case DataType::kBool: for (size_t i = 0; i < n; ++i) w.Bool(Load<uint8_t>(p + i) != 0); break;
    case DataType::kUint8: for (size_t i = 0; i < n; ++i) w.Uint(Load<uint8_t>(p + i)); break;
    case DataType::kUint16: for (size_t i = 0; i < n; ++i) w.Uint(Load<uint16_t>(p + 2 * i)); break;
    case DataType::kUint32: for (size_t i = 0; i < n; ++i) w.Uint(Load<uint32_t>(p + 4 * i)); break;
    case DataType::kUint64: for (size_t i = 0; i < n; ++i) w.Uint64(Load<uint64_t>(p + 8 * i)); break;
    case DataType::kInt8: for (size_t i = 0; i < n; ++i) w.Int(Load<int8_t>(p + i)); break;
    case DataType::kInt16: for (size_t i = 0; i < n; ++i) w.Int(Load<int16_t>(p + 2 * i)); break;
    case DataType::kInt32: for (size_t i = 0; i < n; ++i) w.Int(Load<int32_t>(p + 4 * i)); break;
    case DataType::kInt64: for (size_t i = 0; i < n; ++i) w.Int64(Load<int64_t>(p + 8 * i)); break;
    case DataType::kFp16: for (size_t i = 0; i < n; ++i) w.Double(HalfToFloat(Load<uint16_t>(p + 2 * i))); break;
    case DataType::kBf16: for (size_t i = 0; i < n; ++i) w.Double(Bf16ToFloat(Load<uint16_t>(p + 2 * i))); break;
    case DataType::kFp32: for (size_t i = 0; i < n; ++i) w.Double(Load<float>(p + 4 * i)); break;
    case DataType::kFp64: for (size_t i = 0; i < n; ++i) w.Double(Load<double>(p + 8 * i)); break;
    case DataType::kBytes: {
      size_t pos = 0, written = 0;
      bool full = false;
      while (pos + 4 <= t.byte_size()) {
        uint32_t len = Load<uint32_t>(p + pos);
        pos += 4;
        if (pos + len > t.byte_size()) break;
        ++total;
        if (!full && written + len <= max_bytes) {
          w.String(reinterpret_cast<const char*>(p + pos), len);
          written += len;
          ++n;
        } else {
          full = true;
        }
        pos += len;
      }
      break;
    }
    case DataType::kInvalid: break;
  }
  w.EndArray();
  return {n, total};
}

void WriteParameters(Writer& w, const Parameters& params) {
  w.StartObject();
  for (const auto& [k, v] : params) {
    w.Key(k.data(), k.size());
    std::visit(
        [&w](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, bool>) w.Bool(x);
          else if constexpr (std::is_same_v<T, int64_t>) w.Int64(x);
          else if constexpr (std::is_same_v<T, double>) w.Double(x);
          else w.String(x.data(), x.size());
        },
        v);
  }
  w.EndObject();
}

bool WantsBinary(const InferRequest& req, const std::string& output) {
  for (const auto& ro : req.outputs) {
    if (ro.name == output) {
      if (auto b = GetBool(ro.parameters, "binary_data")) return *b;
      break;
    }
  }
  return GetBool(req.parameters, "binary_data_output").value_or(false);
}

}  // namespace

EncodedBody EncodeInferResponse(const InferResponse& resp, const InferRequest& req) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  std::vector<const Tensor*> binary;
  w.StartObject();
  // An id of printable ASCII without '"' or '\\' (every id the server makes, and most
  // clients') reads the same escaped or not: it is put in front of the rest as it is,
  // below, rather than escaped by the writer a character at a time.
  const bool plain_id = PrintableAscii(resp.id, /*json_plain=*/true);
  if (!resp.id.empty() && !plain_id) {
    w.Key("id");
    w.String(resp.id.data(), resp.id.size());
  }
  w.Key("model_name");
  w.String(resp.model_name.data(), resp.model_name.size());
  w.Key("model_version");
  w.String(resp.model_version.data(), resp.model_version.size());
  if (!resp.parameters.empty()) {
    w.Key("parameters");
    WriteParameters(w, resp.parameters);
  }
  w.Key("outputs");
  w.StartArray();
  for (const auto& t : resp.outputs) {
    w.StartObject();
    w.Key("name");
    w.String(t.name.data(), t.name.size());
    w.Key("datatype");
    auto dt = DataTypeName(t.datatype);
    w.String(dt.data(), dt.size());
    w.Key("shape");
    w.StartArray();
    for (int64_t d : t.shape) w.Int64(d);
    w.EndArray();
    if (WantsBinary(req, t.name)) {
      w.Key("parameters");
      w.StartObject();
      w.Key("binary_data_size");
      w.Uint64(t.byte_size());
      w.EndObject();
      binary.push_back(&t);
    } else {
      w.Key("data");
      WriteData(w, t);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();

  EncodedBody out;
  size_t tail = 0;
  for (const Tensor* t : binary) tail += t->byte_size();
  const bool spliced_id = !resp.id.empty() && plain_id;
  out.body.reserve(sb.GetSize() + tail + (spliced_id ? resp.id.size() + 8 : 0));
  if (spliced_id) {  // {"id":"ID", then the writer's object without its '{'
    out.body.append("{\"id\":\"").append(resp.id).append("\",");
    out.body.append(sb.GetString() + 1, sb.GetSize() - 1);
  } else {
    out.body.append(sb.GetString(), sb.GetSize());
  }
  if (!binary.empty()) {
    out.json_length = out.body.size();
    for (const Tensor* t : binary) out.body.append(t->bytes());
  }
  return out;
}

std::string EncodeParametersJson(const Parameters& parameters) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  WriteParameters(w, parameters);
  return std::string(sb.GetString(), sb.GetSize());
}

TensorDataJson EncodeTensorDataJson(const Tensor& tensor, size_t max_bytes) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  auto [written, total] = WriteData(w, tensor, max_bytes);
  return {std::string(sb.GetString(), sb.GetSize()), written, total};
}

struct TensorDataJsonEncoder::Buffers {
  rapidjson::StringBuffer sb;
  Writer w{sb};
};

TensorDataJsonEncoder::TensorDataJsonEncoder() : buffers_(std::make_unique<Buffers>()) {}
TensorDataJsonEncoder::~TensorDataJsonEncoder() = default;
TensorDataJsonEncoder::TensorDataJsonEncoder(TensorDataJsonEncoder&&) noexcept = default;
TensorDataJsonEncoder& TensorDataJsonEncoder::operator=(TensorDataJsonEncoder&&) noexcept = default;

TensorDataJsonEncoder::Encoded TensorDataJsonEncoder::Encode(const Tensor& tensor, size_t max_bytes) {
  Buffers& b = *buffers_;
  b.sb.Clear();  // both keep their capacity
  b.w.Reset(b.sb);
  auto [written, total] = WriteData(b.w, tensor, max_bytes);
  return {std::string_view(b.sb.GetString(), b.sb.GetSize()), written, total};
}

std::string ErrorBody(std::string_view message) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("error");
  w.String(message.data(), message.size());
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace ferry::protocol
