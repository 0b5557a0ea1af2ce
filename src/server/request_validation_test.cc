#include "server/request_validation.h"

#include <gtest/gtest.h>

#include "repository/model_config.h"

namespace ferry::server {
namespace {

inference::ModelConfig AddSub() {
  auto c = repository::ParseTritonConfig(R"(name: "add_sub" max_batch_size: 8
    input { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }
    input { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] }
    output { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] }
    output { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 4 ] })");
  return *c;
}

Tensor Fp32(std::string name, Shape shape) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = DataType::kFp32;
  t.Own(std::string(*ElementCount(shape) * 4, '\0'));
  t.shape = std::move(shape);
  return t;
}

TEST(RequestValidationTest, AcceptsAValidBatchAndDefaultsToAllOutputs) {
  InferRequest r;
  r.inputs = {Fp32("INPUT0", {3, 4}), Fp32("INPUT1", {3, 4})};
  auto v = ValidateRequest(AddSub(), &r);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->batch_size, 3);
  EXPECT_EQ(v->output_names, (std::vector<std::string>{"OUTPUT0", "OUTPUT1"}));
}

TEST(RequestValidationTest, ErrorsNameTheTensor) {
  struct Case {
    std::vector<Tensor> inputs;
    std::vector<std::string> outputs;
    std::string needle;
  };
  Tensor wrong_type = Fp32("INPUT1", {1, 4});
  wrong_type.datatype = DataType::kInt32;
  std::vector<Case> cases = {
      {{Fp32("INPUT0", {1, 4})}, {}, "missing input 'INPUT1'"},
      {{Fp32("INPUT0", {1, 4}), Fp32("INPUT1", {1, 4}), Fp32("EXTRA", {1})}, {}, "'EXTRA'"},
      {{Fp32("INPUT0", {1, 5}), Fp32("INPUT1", {1, 4})}, {}, "input 'INPUT0': shape [1,5]"},
      {{Fp32("INPUT0", {9, 4}), Fp32("INPUT1", {9, 4})}, {}, "batch size 9"},
      {{Fp32("INPUT0", {2, 4}), Fp32("INPUT1", {3, 4})}, {}, "input 'INPUT1': batch size 3"},
      {{Fp32("INPUT0", {1, 4}), wrong_type}, {}, "input 'INPUT1': datatype INT32"},
      {{Fp32("INPUT0", {1, 4}), Fp32("INPUT1", {1, 4})}, {"OUTPUT9"}, "unknown output 'OUTPUT9'"},
      {{Fp32("INPUT0", {1, 4}), Fp32("INPUT0", {1, 4})}, {}, "more than once"},
  };
  for (auto& c : cases) {
    InferRequest r;
    r.inputs = c.inputs;
    for (auto& o : c.outputs) r.outputs.push_back({o, {}});
    auto v = ValidateRequest(AddSub(), &r);
    ASSERT_FALSE(v.ok()) << c.needle;
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(v.status().message().find(c.needle), std::string::npos) << v.status().message();
  }
}

TEST(RequestValidationTest, ReshapeMapsRank1BatchedTensors) {
  auto c = repository::ParseTritonConfig(R"(name: "m" max_batch_size: 4
    input { name: "x" data_type: TYPE_FP32 dims: [ 1 ] reshape { shape: [ ] } }
    output { name: "y" data_type: TYPE_FP32 dims: [ 1 ] reshape { shape: [ ] } })");
  InferRequest r;
  r.inputs = {Fp32("x", {2, 1})};
  auto v = ValidateRequest(*c, &r);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(r.inputs[0].shape, (Shape{2}));
  Tensor y = Fp32("y", {2});
  ApplyOutputReshape(*c, 2, &y);
  EXPECT_EQ(y.shape, (Shape{2, 1}));
}

}  // namespace
}  // namespace ferry::server
