#include "runtime/torch/torch_binding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::runtime::torchrt {
namespace {

using ::testing::HasSubstr;

std::vector<ForwardArg> Args(std::initializer_list<const char*> names) {
  std::vector<ForwardArg> args;
  for (const char* n : names) args.push_back({n, true, false});
  return args;
}

TEST(TorchScalarTable, EveryServedTypeRoundTrips) {
  for (DataType t : {DataType::kBool, DataType::kUint8, DataType::kInt8, DataType::kInt16, DataType::kInt32,
                     DataType::kInt64, DataType::kFp16, DataType::kFp32, DataType::kFp64, DataType::kBf16}) {
    auto scalar = ToTorchScalar(t);
    ASSERT_TRUE(scalar.has_value()) << DataTypeName(t);
    EXPECT_EQ(FromTorchScalar(static_cast<int>(*scalar)), t) << DataTypeName(t);
  }
  EXPECT_EQ(ToTorchScalar(DataType::kFp32), TorchScalar::kFloat);
  EXPECT_EQ(ToTorchScalar(DataType::kInt64), TorchScalar::kInt64);
  EXPECT_EQ(ToTorchScalar(DataType::kBool), TorchScalar::kBool);
}

TEST(TorchScalarTable, TypesTorchLacksHaveNoMapping) {
  for (DataType t : {DataType::kUint16, DataType::kUint32, DataType::kUint64, DataType::kBytes, DataType::kInvalid})
    EXPECT_FALSE(ToTorchScalar(t).has_value()) << DataTypeName(t);
  EXPECT_FALSE(FromTorchScalar(8).has_value());   // ComplexHalf
  EXPECT_FALSE(FromTorchScalar(9).has_value());   // ComplexFloat
  EXPECT_FALSE(FromTorchScalar(12).has_value());  // QInt8
  EXPECT_FALSE(FromTorchScalar(-1).has_value());
}

TEST(SuffixPosition, ReadsTritonStyleNames) {
  EXPECT_EQ(SuffixPosition("INPUT__0"), 0);
  EXPECT_EQ(SuffixPosition("output__12"), 12);
  EXPECT_EQ(SuffixPosition("a__b__3"), 3);
  EXPECT_FALSE(SuffixPosition("INPUT0").has_value());
  EXPECT_FALSE(SuffixPosition("INPUT__").has_value());
  EXPECT_FALSE(SuffixPosition("INPUT__x").has_value());
  EXPECT_FALSE(SuffixPosition("INPUT_0").has_value());
  EXPECT_FALSE(SuffixPosition("x__99999999999").has_value());
}

TEST(PlanInputs, ByNameWhenEveryInputNamesAnArgument) {
  auto plan = PlanInputs({"mask", "features"}, Args({"features", "mask"}));
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->by, BindBy::kName);
  EXPECT_EQ(plan->argument_of, (std::vector<int>{1, 0}));
}

TEST(PlanInputs, BySuffixWhenEveryInputHasOne) {
  auto plan = PlanInputs({"INPUT__1", "INPUT__0"}, Args({"x", "y"}));
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->by, BindBy::kSuffix);
  EXPECT_EQ(plan->argument_of, (std::vector<int>{1, 0}));
}

TEST(PlanInputs, NamesWinOverSuffixes) {
  // Arguments may themselves be called like Triton tensors.
  auto plan = PlanInputs({"in__1", "in__0"}, Args({"in__1", "in__0"}));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->by, BindBy::kName);
  EXPECT_EQ(plan->argument_of, (std::vector<int>{0, 1}));
}

TEST(PlanInputs, ConfigOrderOtherwise) {
  auto plan = PlanInputs({"b", "a"}, Args({"x", "y"}));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->by, BindBy::kOrder);
  EXPECT_EQ(plan->argument_of, (std::vector<int>{0, 1}));
  // One unmatched name is enough to fall back to order.
  plan = PlanInputs({"y", "z"}, Args({"x", "y"}));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->by, BindBy::kOrder);
}

TEST(PlanInputs, TooManyInputsNameTheFirstExtra) {
  auto plan = PlanInputs({"a", "b", "extra"}, Args({"x", "y"}));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("input 'extra'"));
  EXPECT_THAT(plan.status().message(), HasSubstr("forward(x, y) takes 2"));
}

TEST(PlanInputs, TooFewInputsNameTheUnfedArgument) {
  auto plan = PlanInputs({"a"}, Args({"x", "y"}));
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("argument 'y' has no config input"));
  EXPECT_THAT(plan.status().message(), HasSubstr("'INPUT__1'"));
}

TEST(PlanInputs, ArgumentsWithDefaultsMayGoUnfed) {
  std::vector<ForwardArg> args = {{"x", true, false}, {"bias", true, true}, {"k", false, true}};
  auto plan = PlanInputs({"x"}, args);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->argument_of, (std::vector<int>{0}));
  // A suffix may skip over a defaulted argument.
  plan = PlanInputs({"INPUT__0"}, args);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
}

TEST(PlanInputs, NonTensorArgumentsCannotBeFed) {
  std::vector<ForwardArg> args = {{"x", true, false}, {"k", false, true}};
  auto plan = PlanInputs({"x", "k"}, args);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("input 'k'"));
  EXPECT_THAT(plan.status().message(), HasSubstr("not a Tensor"));
}

TEST(PlanInputs, SuffixPastTheLastArgumentOrUsedTwice) {
  auto plan = PlanInputs({"INPUT__0", "INPUT__5"}, Args({"x", "y"}));
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("input 'INPUT__5'"));
  plan = PlanInputs({"A__1", "B__1"}, Args({"x", "y"}));
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("input 'B__1'"));
  EXPECT_THAT(plan.status().message(), HasSubstr("'A__1'"));
}

TEST(PlanOutputs, SuffixOrConfigOrder) {
  auto plan = PlanOutputs({"OUTPUT__1", "OUTPUT__0"});
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->by_suffix);
  EXPECT_EQ(plan->position_of, (std::vector<int>{1, 0}));
  plan = PlanOutputs({"sum", "OUTPUT__0"});
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->by_suffix);
  EXPECT_EQ(plan->position_of, (std::vector<int>{0, 1}));
  plan = PlanOutputs({"a__0", "b__0"});
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("output 'b__0'"));
}

TEST(CleanTorchError, KeepsTheMessageAfterTheTorchScriptTraceback) {
  // As libtorch 1.13 words them (seen from torch.jit.script modules).
  EXPECT_EQ(CleanTorchError("The following operation failed in the TorchScript interpreter.\n"
                            "Traceback of TorchScript (most recent call last):\n"
                            "  File \"/tmp/m.py\", line 5, in forward\n"
                            "        return x @ w\n"
                            "               ~~~~~ <--- HERE\n"
                            "RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)\n"),
            "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)");
  EXPECT_EQ(CleanTorchError("The following operation failed in the TorchScript interpreter.\n"
                            "Traceback of TorchScript (most recent call last):\n"
                            "def _assert(condition : bool, message : str):\n"
                            "  assert condition, message\n"
                            "  ~~~~~~~~~~~~~~~~~~~~~~~~~ <--- HERE\n"
                            "# existing device operator is registered with input name `a`, which prevents\n"
                            "RuntimeError: AssertionError: batch too big\n"),
            "AssertionError: batch too big");
  EXPECT_EQ(CleanTorchError("The following operation failed in the TorchScript interpreter.\n"
                            "        if x.sum() > 0: raise ValueError(\"no\")\n"
                            "builtins.ValueError: no\n"),
            "ValueError: no");
}

TEST(CleanTorchError, KeepsTheMessageAfterBothTracebacksOfALoadedModule) {
  // A module loaded from a file reports its serialized and its original code.
  EXPECT_EQ(CleanTorchError("The following operation failed in the TorchScript interpreter.\n"
                            "Traceback of TorchScript, serialized code (most recent call last):\n"
                            "  File \"code/__torch__.py\", line 15, in forward\n"
                            "      ops.prim.RaiseException(_0)\n"
                            "    return torch.matmul(x, w)\n"
                            "           ~~~~~~~~~~~~ <--- HERE\n\n"
                            "Traceback of TorchScript, original code (most recent call last):\n"
                            "  File \"/tmp/torch_models.py\", line 95, in forward\n"
                            "        return x @ self.w\n"
                            "               ~~~~~~~~~~ <--- HERE\n"
                            "RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x2 and 4x2)\n"),
            "mat1 and mat2 shapes cannot be multiplied (1x2 and 4x2)");
}

TEST(CleanTorchError, CutsTheCppBacktrace) {
  EXPECT_EQ(CleanTorchError("PytorchStreamReader failed reading zip archive: failed finding central directory\n"
                            "Exception raised from valid at ../caffe2/serialize/inline_container.cc:184 (most recent "
                            "call first):\nframe #0: c10::Error::Error(...)\n"),
            "PytorchStreamReader failed reading zip archive: failed finding central directory");
  EXPECT_EQ(CleanTorchError("plain message  \n"), "plain message");
}

}  // namespace
}  // namespace ferry::runtime::torchrt
