#include "server/request_validation.h"

#include <set>

namespace ferry::server {
namespace {

template <typename List>
std::string Names(const List& list) {
  std::string s;
  for (const auto& t : list) s += (s.empty() ? "" : ", ") + t.name();
  return s;
}

Status CheckBytes(const Tensor& t) {
  if (t.datatype == DataType::kBytes) return Status::Ok();  // framing checked by the codec
  uint64_t expect = *ElementCount(t.shape) * DataTypeSize(t.datatype);
  if (expect != t.byte_size())
    return InvalidArgument("input '" + t.name + "': shape " + ShapeToString(t.shape) + " needs " +
                           std::to_string(expect) + " bytes but " + std::to_string(t.byte_size()) + " were given");
  return Status::Ok();
}

}  // namespace

Result<ValidatedRequest> ValidateRequest(const inference::ModelConfig& config, InferRequest* req) {
  ValidatedRequest out;
  const std::string& model = config.name();
  const bool batching = config.max_batch_size() > 0;
  int64_t batch = -1;
  std::set<std::string_view> seen;
  for (auto& t : req->inputs) {
    const inference::ModelInput* decl = nullptr;
    for (const auto& in : config.input())
      if (in.name() == t.name) decl = &in;
    if (!decl)
      return InvalidArgument("unexpected input '" + t.name + "' for model '" + model + "'; the model's inputs are: " +
                             Names(config.input()));
    if (!seen.insert(t.name).second) return InvalidArgument("input '" + t.name + "' is given more than once");
    auto want = static_cast<DataType>(decl->data_type());
    if (t.datatype != want)
      return InvalidArgument("input '" + t.name + "': datatype " + std::string(DataTypeName(t.datatype)) +
                             " does not match the model's " + std::string(DataTypeName(want)));
    Shape declared;
    if (batching) declared.push_back(-1);
    declared.insert(declared.end(), decl->dims().begin(), decl->dims().end());
    if (!ShapeMatches(declared, t.shape))
      return InvalidArgument("input '" + t.name + "': shape " + ShapeToString(t.shape) + " does not match the model's " +
                             ShapeToString(declared));
    if (batching) {
      int64_t b = t.shape[0];
      if (b < 1 || b > config.max_batch_size())
        return InvalidArgument("input '" + t.name + "': batch size " + std::to_string(b) + " is outside 1.." +
                               std::to_string(config.max_batch_size()) + " (max_batch_size of model '" + model + "')");
      if (batch >= 0 && b != batch)
        return InvalidArgument("input '" + t.name + "': batch size " + std::to_string(b) +
                               " differs from the other inputs' " + std::to_string(batch));
      batch = b;
    }
    FERRY_RETURN_IF_ERROR(CheckBytes(t));
    if (decl->has_reshape()) {
      Shape s;
      if (batching) s.push_back(t.shape[0]);
      s.insert(s.end(), decl->reshape().shape().begin(), decl->reshape().shape().end());
      t.shape = std::move(s);
    }
  }
  for (const auto& in : config.input())
    if (!in.optional() && !seen.count(in.name()))
      return InvalidArgument("missing input '" + in.name() + "' for model '" + model + "'");
  out.batch_size = batching ? batch : 1;

  // Scheduling parameters, as Triton names them: non-negative integers.
  for (const char* key : {"priority", "timeout"}) {
    auto it = req->parameters.find(key);
    if (it == req->parameters.end()) continue;
    const int64_t* v = std::get_if<int64_t>(&it->second);
    if (v == nullptr || *v < 0)
      return InvalidArgument(std::string("parameter '") + key + "' must be a non-negative integer");
    if (std::string_view(key) == "priority") {
      if (*v > UINT32_MAX) return InvalidArgument("parameter 'priority' is too large");
      out.priority = static_cast<uint32_t>(*v);
    } else {
      out.timeout_us = static_cast<uint64_t>(*v);
    }
  }

  if (req->outputs.empty()) {
    for (const auto& o : config.output()) out.output_names.push_back(o.name());
  } else {
    std::set<std::string_view> wanted;
    for (const auto& ro : req->outputs) {
      bool known = false;
      for (const auto& o : config.output()) known = known || o.name() == ro.name;
      if (!known)
        return InvalidArgument("unknown output '" + ro.name + "' requested from model '" + model +
                               "'; the model's outputs are: " + Names(config.output()));
      if (!wanted.insert(ro.name).second) return InvalidArgument("output '" + ro.name + "' is requested more than once");
      out.output_names.push_back(ro.name);
    }
  }
  return out;
}

void ApplyOutputReshape(const inference::ModelConfig& config, int64_t batch_size, Tensor* output) {
  for (const auto& o : config.output()) {
    if (o.name() != output->name || !o.has_reshape()) continue;
    Shape s;
    if (config.max_batch_size() > 0) s.push_back(batch_size);
    s.insert(s.end(), o.dims().begin(), o.dims().end());
    auto n = ElementCount(s);
    if (n && n == ElementCount(output->shape)) output->shape = std::move(s);
  }
}

}  // namespace ferry::server
