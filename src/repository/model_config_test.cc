#include "repository/model_config.h"

#include <gtest/gtest.h>

namespace ferry::repository {
namespace {

TEST(ModelConfigTest, ParsesTritonTextFormat) {
  auto c = ParseTritonConfig(R"(
    name: "add_sub"  # comment
    platform: "onnxruntime_onnx"
    max_batch_size: 8
    input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
    output { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] }
    version_policy: { specific { versions: [1, 3] } }
    instance_group [ { kind: KIND_CPU count: 2 } ]
    parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
  )");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_batch_size(), 8);
  EXPECT_EQ(c->input(0).data_type(), inference::TYPE_FP32);
  EXPECT_EQ(c->output(0).dims(0), 16);
  EXPECT_EQ(c->version_policy().specific().versions_size(), 2);
  EXPECT_EQ(c->instance_group(0).count(), 2);
  EXPECT_EQ(c->parameters().at("intra_op_thread_count").string_value(), "1");
  EXPECT_TRUE(ValidateModelConfig(*c).ok());
}

TEST(ModelConfigTest, TextFormatErrorsGiveTheLine) {
  auto c = ParseTritonConfig("name: \"x\"\nmax_batch_size: 8\nbogus_field: 3\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("line 3"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("bogus_field"), std::string::npos);
}

TEST(ModelConfigTest, ParsesFerryYaml) {
  auto c = ParseFerryYaml(R"(
platform: onnxruntime_onnx
max_batch_size: 4
version_policy: all
instances: 2
inputs:
  - {name: X, datatype: INT64, shape: [4]}
outputs:
  - {name: Y, datatype: BOOL, shape: [-1]}
parameters: {intra_op_thread_count: 2}
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->platform(), "onnxruntime_onnx");
  EXPECT_EQ(c->input(0).data_type(), inference::TYPE_INT64);
  EXPECT_EQ(c->output(0).data_type(), inference::TYPE_BOOL);
  EXPECT_EQ(c->output(0).dims(0), -1);
  EXPECT_TRUE(c->version_policy().has_all());
  EXPECT_EQ(c->instance_group(0).count(), 2);
  EXPECT_EQ(c->parameters().at("intra_op_thread_count").string_value(), "2");
}

TEST(ModelConfigTest, YamlTurnsOnDynamicBatching) {
  auto on = ParseFerryYaml("max_batch_size: 8\ndynamic_batching: true\n");
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  EXPECT_TRUE(on->has_dynamic_batching());
  EXPECT_EQ(on->dynamic_batching().max_queue_delay_microseconds(), 0u);
  auto tuned = ParseFerryYaml(
      "max_batch_size: 8\ndynamic_batching: {max_queue_delay_microseconds: 500, preferred_batch_size: [4, 8], "
      "preserve_ordering: true}\n");
  ASSERT_TRUE(tuned.ok()) << tuned.status().ToString();
  EXPECT_EQ(tuned->dynamic_batching().max_queue_delay_microseconds(), 500u);
  ASSERT_EQ(tuned->dynamic_batching().preferred_batch_size_size(), 2);
  EXPECT_EQ(tuned->dynamic_batching().preferred_batch_size(1), 8);
  EXPECT_TRUE(tuned->dynamic_batching().preserve_ordering());
  auto off = ParseFerryYaml("max_batch_size: 8\ndynamic_batching: false\n");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->has_dynamic_batching());
  auto typo = ParseFerryYaml("dynamic_batching: {max_delay: 5}\n");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("dynamic_batching.max_delay"), std::string::npos) << typo.status().message();
  EXPECT_FALSE(ParseFerryYaml("dynamic_batching: [1]\n").ok());
}

TEST(ModelConfigTest, YamlErrorsNameTheKey) {
  auto unknown = ParseFerryYaml("max_batch: 4\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("max_batch"), std::string::npos);
  auto bad_type = ParseFerryYaml("inputs:\n  - {name: X, datatype: FLOAT, shape: [1]}\n");
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.status().message().find("'X'"), std::string::npos);
  EXPECT_NE(bad_type.status().message().find("FLOAT"), std::string::npos);
}

TEST(ModelConfigTest, YamlMonitoringBlockBecomesMonitoringParameters) {
  auto c = ParseFerryYaml(R"(
parameters: {intra_op_thread_count: 1}
monitoring:
  payload_log:
    sink: file:/var/log/ferry/iris.jsonl
    sample_rate: 0.1
  drift: {window: 500}
)");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->parameters().at("monitoring.payload_log.sink").string_value(), "file:/var/log/ferry/iris.jsonl");
  EXPECT_EQ(c->parameters().at("monitoring.payload_log.sample_rate").string_value(), "0.1");
  EXPECT_EQ(c->parameters().at("monitoring.drift.window").string_value(), "500");
  EXPECT_EQ(c->parameters().at("intra_op_thread_count").string_value(), "1");
  auto list = ParseFerryYaml("monitoring:\n  payload_log:\n    sink: [a, b]\n");
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.status().message(),
            "model.yaml: 'monitoring.payload_log.sink' must be a mapping of settings or a value, not a list");
}

TEST(ModelConfigTest, JsonUsesProtoNamesEnumNamesAndNumbers) {
  auto c = ParseTritonConfig(R"(name: "m" max_batch_size: 2
    input { name: "x" data_type: TYPE_FP32 dims: [ -1, 3 ] }
    dynamic_batching { max_queue_delay_microseconds: 100 })");
  ASSERT_TRUE(c.ok());
  std::string j = ModelConfigToJson(*c);
  EXPECT_NE(j.find(R"("max_batch_size":2)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("data_type":"TYPE_FP32")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("dims":[-1,3])"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("max_queue_delay_microseconds":100)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("platform":"")"), std::string::npos) << j;  // defaults printed
  EXPECT_EQ(j.find("sequence_batching"), std::string::npos) << j;  // unset oneof omitted
}

TEST(ModelConfigTest, ValidationNamesTheTensor) {
  auto c = ParseTritonConfig(R"(input { name: "a" data_type: TYPE_FP32 dims: [0] } output { name: "b" data_type: TYPE_FP32 dims: [1] })");
  ASSERT_TRUE(c.ok());
  Status s = ValidateModelConfig(*c);
  EXPECT_NE(s.message().find("'a'"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace ferry::repository
