#include "runtime/torch/torch_binding.h"

#include <algorithm>
#include <cctype>

namespace ferry::runtime::torchrt {
namespace {

std::string Ordinal(size_t i) {
  switch (i) {
    case 0: return "first";
    case 1: return "second";
    case 2: return "third";
    default: return "#" + std::to_string(i + 1);
  }
}

std::string Signature(const std::vector<ForwardArg>& args) {
  std::string s = "forward(";
  for (size_t i = 0; i < args.size(); ++i) s += (i ? ", " : "") + args[i].name;
  return s + ")";
}

// Positions from the __N suffixes of every name, or nullopt when some name has none.
std::optional<std::vector<int>> SuffixPositions(const std::vector<std::string>& names) {
  std::vector<int> positions;
  for (const auto& n : names) {
    auto p = SuffixPosition(n);
    if (!p) return std::nullopt;
    positions.push_back(*p);
  }
  return positions;
}

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// "RuntimeError: ...", "builtins.ValueError: ...", "torch.jit.Error: ...": a line that
// starts (unindented) with a dotted name ending in Error or Exception and a colon.
bool IsErrorLine(std::string_view line) {
  size_t colon = line.find(": ");
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view cls = line.substr(0, colon);
  for (char c : cls)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') return false;
  return cls.ends_with("Error") || cls.ends_with("Exception");
}

}  // namespace

std::optional<TorchScalar> ToTorchScalar(DataType type) {
  switch (type) {
    case DataType::kBool: return TorchScalar::kBool;
    case DataType::kUint8: return TorchScalar::kUInt8;
    case DataType::kInt8: return TorchScalar::kInt8;
    case DataType::kInt16: return TorchScalar::kInt16;
    case DataType::kInt32: return TorchScalar::kInt32;
    case DataType::kInt64: return TorchScalar::kInt64;
    case DataType::kFp16: return TorchScalar::kHalf;
    case DataType::kFp32: return TorchScalar::kFloat;
    case DataType::kFp64: return TorchScalar::kDouble;
    case DataType::kBf16: return TorchScalar::kBFloat16;
    case DataType::kUint16:
    case DataType::kUint32:
    case DataType::kUint64:
    case DataType::kBytes:
    case DataType::kInvalid: break;
  }
  return std::nullopt;
}

std::optional<DataType> FromTorchScalar(int scalar_type) {
  for (DataType t : {DataType::kBool, DataType::kUint8, DataType::kInt8, DataType::kInt16, DataType::kInt32,
                     DataType::kInt64, DataType::kFp16, DataType::kFp32, DataType::kFp64, DataType::kBf16})
    if (static_cast<int>(*ToTorchScalar(t)) == scalar_type) return t;
  return std::nullopt;
}

std::optional<int> SuffixPosition(std::string_view name) {
  size_t at = name.rfind("__");
  if (at == std::string_view::npos || at + 2 == name.size()) return std::nullopt;
  std::string_view digits = name.substr(at + 2);
  if (digits.size() > 6) return std::nullopt;
  int value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

Result<InputPlan> PlanInputs(const std::vector<std::string>& config_inputs, const std::vector<ForwardArg>& args) {
  InputPlan plan;
  const std::string sig = Signature(args);
  if (config_inputs.size() > args.size())
    return InvalidArgument("input '" + config_inputs[args.size()] + "': the config declares " +
                           std::to_string(config_inputs.size()) + " inputs but the model's " + sig + " takes " +
                           std::to_string(args.size()));

  auto by_name = [&]() -> std::optional<std::vector<int>> {
    std::vector<int> positions;
    for (const auto& n : config_inputs) {
      auto it = std::find_if(args.begin(), args.end(), [&](const ForwardArg& a) { return a.name == n; });
      if (it == args.end()) return std::nullopt;
      positions.push_back(static_cast<int>(it - args.begin()));
    }
    return positions;
  }();
  if (by_name) {
    plan.by = BindBy::kName;
    plan.argument_of = std::move(*by_name);
  } else if (auto suffix = SuffixPositions(config_inputs)) {
    plan.by = BindBy::kSuffix;
    plan.argument_of = std::move(*suffix);
    std::vector<int> owner(args.size(), -1);
    for (size_t i = 0; i < config_inputs.size(); ++i) {
      const int p = plan.argument_of[i];
      if (p >= static_cast<int>(args.size()))
        return InvalidArgument("input '" + config_inputs[i] + "': its suffix names argument position " +
                               std::to_string(p) + " but the model's " + sig + " has positions 0.." +
                               std::to_string(args.size() - 1));
      if (owner[p] >= 0)
        return InvalidArgument("input '" + config_inputs[i] + "': argument position " + std::to_string(p) +
                               " is already fed by input '" + config_inputs[owner[p]] + "'");
      owner[p] = static_cast<int>(i);
    }
  } else {
    plan.by = BindBy::kOrder;
    for (size_t i = 0; i < config_inputs.size(); ++i) plan.argument_of.push_back(static_cast<int>(i));
  }

  std::vector<bool> fed(args.size(), false);
  for (size_t i = 0; i < config_inputs.size(); ++i) {
    const ForwardArg& a = args[plan.argument_of[i]];
    if (!a.is_tensor)
      return InvalidArgument("input '" + config_inputs[i] + "' would feed argument '" + a.name + "' of the model's " +
                             sig + ", which is not a Tensor");
    fed[plan.argument_of[i]] = true;
  }
  for (size_t p = 0; p < args.size(); ++p) {
    if (fed[p] || args[p].has_default) continue;
    std::string how = plan.by == BindBy::kOrder ? "declare a " + Ordinal(p) + " input" : "add an input";
    return InvalidArgument("the model's " + sig + " argument '" + args[p].name + "' has no config input: the config declares " +
                           std::to_string(config_inputs.size()) + " input(s); " + how + " named '" + args[p].name +
                           "' or 'INPUT__" + std::to_string(p) + "'");
  }
  return plan;
}

Result<OutputPlan> PlanOutputs(const std::vector<std::string>& config_outputs) {
  OutputPlan plan;
  if (auto suffix = SuffixPositions(config_outputs)) {
    plan.by_suffix = true;
    plan.position_of = std::move(*suffix);
    for (size_t i = 0; i < config_outputs.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (plan.position_of[i] == plan.position_of[j])
          return InvalidArgument("output '" + config_outputs[i] + "': position " + std::to_string(plan.position_of[i]) +
                                 " is already output '" + config_outputs[j] + "'");
    return plan;
  }
  for (size_t i = 0; i < config_outputs.size(); ++i) plan.position_of.push_back(static_cast<int>(i));
  return plan;
}

std::string CleanTorchError(std::string_view what) {
  if (size_t bt = what.find("Exception raised from "); bt != std::string_view::npos) what = what.substr(0, bt);
  if (what.find("The following operation failed in the TorchScript interpreter") != std::string_view::npos) {
    // The message proper follows the traceback: its last line naming an exception class.
    size_t start = std::string_view::npos;
    for (size_t pos = 0; pos < what.size();) {
      size_t end = what.find('\n', pos);
      if (end == std::string_view::npos) end = what.size();
      if (IsErrorLine(what.substr(pos, end - pos))) start = pos;
      pos = end + 1;
    }
    if (start != std::string_view::npos) {
      what = what.substr(start);
      if (what.starts_with("RuntimeError: ")) what.remove_prefix(14);
      if (what.starts_with("builtins.")) what.remove_prefix(9);
    }
  }
  return std::string(TrimRight(what));
}

}  // namespace ferry::runtime::torchrt
