#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/data_type.h"
#include "core/result.h"

// Pure helpers of the PyTorch runtime: which forward() argument each config input
// feeds, which returned value each config output is, the datatype table, and the
// cleaning of libtorch's error text. Nothing here includes or calls libtorch, so all of
// it is unit-tested without a model file (and without compiling torch's headers).
// Thread-safety: stateless functions; the plans are values.
namespace ferry::runtime::torchrt {

// c10::ScalarType's values for the element types ferry serves (torch_runtime.cc
// static_asserts each against libtorch's enum).
enum class TorchScalar : int8_t {
  kUInt8 = 0,
  kInt8 = 1,
  kInt16 = 2,
  kInt32 = 3,
  kInt64 = 4,
  kHalf = 5,
  kFloat = 6,
  kDouble = 7,
  kBool = 11,
  kBFloat16 = 15,
};

// The torch element type of a ferry datatype; nullopt for those torch 1.13 lacks
// (UINT16, UINT32, UINT64) and for BYTES.
std::optional<TorchScalar> ToTorchScalar(DataType type);
// The ferry datatype of a c10::ScalarType value; nullopt for complex, quantized and
// the other types the protocol has no name for.
std::optional<DataType> FromTorchScalar(int scalar_type);

// One argument of forward() after `self`, from its schema.
struct ForwardArg {
  std::string name;
  bool is_tensor = true;     // Tensor or Tensor? (anything else cannot take a request tensor)
  bool has_default = false;  // forward(self, x, y=None): y may go unfed
};

// How config inputs were matched with forward()'s arguments.
enum class BindBy {
  kName,    // every config input is named like a forward() argument
  kSuffix,  // every config input ends in __<position> (Triton's INPUT__0 convention)
  kOrder,   // otherwise: config order is argument order
};

struct InputPlan {
  BindBy by = BindBy::kOrder;
  // argument_of[i]: the forward() argument position (0 = first after self) that config
  // input i feeds.
  std::vector<int> argument_of;
};

// Matches the config's input names with forward()'s arguments (rules in BindBy, tried
// in that order). InvalidArgument, naming the tensor or argument: more config inputs
// than arguments, a suffix position past the last argument or used twice, a config
// input bound to a non-tensor argument, or an argument that no input feeds and that
// has no default.
Result<InputPlan> PlanInputs(const std::vector<std::string>& config_inputs, const std::vector<ForwardArg>& args);

// Where config output i is found in what forward() returns: position
// `position_of[i]` of a tuple or list (by the __<position> suffix when every output
// name has one, else config order); a dict is always read by the output's name.
struct OutputPlan {
  bool by_suffix = false;
  std::vector<int> position_of;
};

// InvalidArgument naming the output when two outputs claim the same suffix position.
Result<OutputPlan> PlanOutputs(const std::vector<std::string>& config_outputs);

// The position N of a name ending in "__N" (INPUT__0 -> 0); nullopt otherwise.
std::optional<int> SuffixPosition(std::string_view name);

// libtorch's exception text reduced to its message: from an error raised inside the
// TorchScript interpreter, the final "SomeError: message" part without the TorchScript
// traceback (a generic "RuntimeError: " and Python's "builtins." dropped); from any
// other, the text up to a C++ backtrace ("Exception raised from ..."). Trailing
// whitespace trimmed.
std::string CleanTorchError(std::string_view what);

}  // namespace ferry::runtime::torchrt
