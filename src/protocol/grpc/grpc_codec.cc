#include "protocol/grpc/grpc_codec.h"

#include <cstring>

#include "core/bytes_tensor.h"

namespace ferry::protocol {
namespace {

std::string Q(const std::string& s) { return "'" + s + "'"; }

template <typename To, typename From>
std::string Pack(const google::protobuf::RepeatedField<From>& values) {
  std::string out(values.size() * sizeof(To), '\0');
  for (int i = 0; i < values.size(); ++i) {
    To v = static_cast<To>(values[i]);
    std::memcpy(out.data() + i * sizeof(To), &v, sizeof(To));
  }
  return out;
}

// Typed contents for `t`'s datatype, as raw bytes; counts how many elements were given.
Result<std::string> FromContents(const inference::InferTensorContents& c, const Tensor& t, uint64_t* given) {
  switch (t.datatype) {
    case DataType::kBool: *given = c.bool_contents_size(); return Pack<uint8_t>(c.bool_contents());
    case DataType::kInt8: *given = c.int_contents_size(); return Pack<int8_t>(c.int_contents());
    case DataType::kInt16: *given = c.int_contents_size(); return Pack<int16_t>(c.int_contents());
    case DataType::kInt32: *given = c.int_contents_size(); return Pack<int32_t>(c.int_contents());
    case DataType::kInt64: *given = c.int64_contents_size(); return Pack<int64_t>(c.int64_contents());
    case DataType::kUint8: *given = c.uint_contents_size(); return Pack<uint8_t>(c.uint_contents());
    case DataType::kUint16: *given = c.uint_contents_size(); return Pack<uint16_t>(c.uint_contents());
    case DataType::kUint32: *given = c.uint_contents_size(); return Pack<uint32_t>(c.uint_contents());
    case DataType::kUint64: *given = c.uint64_contents_size(); return Pack<uint64_t>(c.uint64_contents());
    case DataType::kFp32: *given = c.fp32_contents_size(); return Pack<float>(c.fp32_contents());
    case DataType::kFp64: *given = c.fp64_contents_size(); return Pack<double>(c.fp64_contents());
    case DataType::kBytes: {
      *given = c.bytes_contents_size();
      std::string out;
      for (const auto& b : c.bytes_contents()) {
        uint32_t len = static_cast<uint32_t>(b.size());
        out.append(reinterpret_cast<const char*>(&len), 4);
        out.append(b);
      }
      return out;
    }
    default:
      return InvalidArgument("input " + Q(t.name) + ": datatype " + std::string(DataTypeName(t.datatype)) +
                             " has no typed contents field; send it in raw_input_contents");
  }
}

// Elements set in typed fields other than the one `type` uses (a client error).
bool OtherFieldsSet(const inference::InferTensorContents& c, DataType type) {
  auto n = [&](DataType t, int size) { return t == type ? 0 : size; };
  int int_owner = (type == DataType::kInt8 || type == DataType::kInt16 || type == DataType::kInt32) ? 0 : c.int_contents_size();
  int uint_owner =
      (type == DataType::kUint8 || type == DataType::kUint16 || type == DataType::kUint32) ? 0 : c.uint_contents_size();
  return n(DataType::kBool, c.bool_contents_size()) + int_owner + n(DataType::kInt64, c.int64_contents_size()) +
             uint_owner + n(DataType::kUint64, c.uint64_contents_size()) + n(DataType::kFp32, c.fp32_contents_size()) +
             n(DataType::kFp64, c.fp64_contents_size()) + n(DataType::kBytes, c.bytes_contents_size()) >
         0;
}


}  // namespace

Parameters FromGrpcParameters(const google::protobuf::Map<std::string, inference::InferParameter>& in) {
  Parameters out;
  for (const auto& [k, v] : in) {
    switch (v.parameter_choice_case()) {
      case inference::InferParameter::kBoolParam: out[k] = v.bool_param(); break;
      case inference::InferParameter::kInt64Param: out[k] = v.int64_param(); break;
      case inference::InferParameter::kStringParam: out[k] = v.string_param(); break;
      case inference::InferParameter::kDoubleParam: out[k] = v.double_param(); break;
      case inference::InferParameter::kUint64Param:
        if (v.uint64_param() <= static_cast<uint64_t>(INT64_MAX)) out[k] = static_cast<int64_t>(v.uint64_param());
        else out[k] = static_cast<double>(v.uint64_param());
        break;
      case inference::InferParameter::PARAMETER_CHOICE_NOT_SET: break;
    }
  }
  return out;
}

void ToGrpcParameters(const Parameters& in, google::protobuf::Map<std::string, inference::InferParameter>* out) {
  for (const auto& [k, v] : in) {
    inference::InferParameter& p = (*out)[k];
    std::visit(
        [&p](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, bool>) p.set_bool_param(x);
          else if constexpr (std::is_same_v<T, int64_t>) p.set_int64_param(x);
          else if constexpr (std::is_same_v<T, double>) p.set_double_param(x);
          else p.set_string_param(x);
        },
        v);
  }
}

Result<InferRequest> DecodeModelInferRequest(std::shared_ptr<const inference::ModelInferRequest> msg) {
  InferRequest req;
  req.model_name = msg->model_name();
  req.model_version = msg->model_version();
  req.id = msg->id();
  req.parameters = FromGrpcParameters(msg->parameters());
  const bool raw = msg->raw_input_contents_size() > 0;
  if (raw && msg->raw_input_contents_size() != msg->inputs_size())
    return InvalidArgument("raw_input_contents has " + std::to_string(msg->raw_input_contents_size()) +
                           " entries but the request has " + std::to_string(msg->inputs_size()) + " inputs");
  for (int i = 0; i < msg->inputs_size(); ++i) {
    const auto& in = msg->inputs(i);
    Tensor t;
    t.name = in.name();
    auto type = DataTypeFromName(in.datatype());
    if (!type) return InvalidArgument("input " + Q(t.name) + ": unknown datatype " + Q(in.datatype()));
    t.datatype = *type;
    for (int64_t d : in.shape()) {
      if (d < 0) return InvalidArgument("input " + Q(t.name) + ": shape must hold non-negative integers");
      t.shape.push_back(d);
    }
    auto count = ElementCount(t.shape);
    if (!count) return InvalidArgument("input " + Q(t.name) + ": shape " + ShapeToString(t.shape) + " is too large");
    if (in.parameters().count("shared_memory_region"))
      return Unimplemented("input " + Q(t.name) + ": shared memory is not supported");
    if (raw) {
      if (in.has_contents())
        return InvalidArgument("input " + Q(t.name) + ": contents must not be given together with raw_input_contents");
      const std::string& bytes = msg->raw_input_contents(i);
      if (t.datatype == DataType::kBytes) {
        if (!BytesTensorWellFormed(bytes, *count))
          return InvalidArgument("input " + Q(t.name) + ": raw BYTES data does not hold " + std::to_string(*count) +
                                 " length-prefixed elements");
      } else if (*count * DataTypeSize(t.datatype) != bytes.size()) {
        return InvalidArgument("input " + Q(t.name) + ": shape " + ShapeToString(t.shape) + " of " +
                               std::string(DataTypeName(t.datatype)) + " needs " +
                               std::to_string(*count * DataTypeSize(t.datatype)) + " bytes but raw_input_contents holds " +
                               std::to_string(bytes.size()));
      }
      t.Borrow(bytes.data(), bytes.size(), msg);
    } else {
      if (!in.has_contents())
        return InvalidArgument("input " + Q(t.name) + ": no data: set contents or raw_input_contents");
      if (OtherFieldsSet(in.contents(), t.datatype))
        return InvalidArgument("input " + Q(t.name) + ": contents uses a field that does not match datatype " +
                               std::string(DataTypeName(t.datatype)));
      uint64_t given = 0;
      FERRY_ASSIGN_OR_RETURN(std::string bytes, FromContents(in.contents(), t, &given));
      if (given != *count)
        return InvalidArgument("input " + Q(t.name) + ": shape " + ShapeToString(t.shape) + " has " +
                               std::to_string(*count) + " elements but contents holds " + std::to_string(given));
      t.Own(std::move(bytes));
    }
    req.inputs.push_back(std::move(t));
  }
  for (const auto& o : msg->outputs()) {
    RequestedOutput ro{o.name(), FromGrpcParameters(o.parameters())};
    if (ro.parameters.count("shared_memory_region"))
      return Unimplemented("output " + Q(ro.name) + ": shared memory is not supported");
    if (ro.parameters.count("classification"))
      return Unimplemented("output " + Q(ro.name) + ": the classification extension is not supported");
    req.outputs.push_back(std::move(ro));
  }
  return req;
}

void EncodeModelInferResponse(const InferResponse& resp, inference::ModelInferResponse* out) {
  out->set_model_name(resp.model_name);
  out->set_model_version(resp.model_version);
  out->set_id(resp.id);
  ToGrpcParameters(resp.parameters, out->mutable_parameters());
  for (const auto& t : resp.outputs) {
    auto* o = out->add_outputs();
    o->set_name(t.name);
    o->set_datatype(std::string(DataTypeName(t.datatype)));
    for (int64_t d : t.shape) o->add_shape(d);
    out->add_raw_output_contents(t.data() ? std::string(t.bytes()) : std::string());
  }
}

void EncodeModelStreamInferResponse(const Result<InferResponse>& result, const std::string& id,
                                    inference::ModelStreamInferResponse* out) {
  if (result.ok()) {
    EncodeModelInferResponse(*result, out->mutable_infer_response());
  } else {
    out->set_error_message(result.status().message());
    out->mutable_infer_response()->set_id(id);
  }
}

}  // namespace ferry::protocol
