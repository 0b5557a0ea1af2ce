#include "repository/mlserver_settings.h"

#include <gtest/gtest.h>

#include <fstream>

#include "repository/model_config.h"
#include "repository/repository.h"

namespace ferry::repository {
namespace {

namespace fs = std::filesystem;

std::string Message(const std::string& json) {
  auto s = ParseMlserverSettings(json);
  EXPECT_FALSE(s.ok()) << json;
  return s.ok() ? "" : s.status().message();
}

TEST(MlserverSettingsTest, MapsEveryFieldFerryUses) {
  auto s = ParseMlserverSettings(R"({
    "name": "income",
    "implementation": "mlserver_xgboost.XGBoostModel",
    "parameters": {"uri": "./model.json", "version": "3", "extra": {"predict_proba": true, "nthread": 2,
                   "nested": {"a": 1}}, "format": "json"},
    "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 6]}],
    "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, 2]}],
    "max_batch_size": 16,
    "max_batch_time": 0.25,
    "parallel_workers": 3,
    "platform": "xgboost",
    "versions": ["xgboost/1.7"]
  })");
  ASSERT_TRUE(s.ok()) << s.status().message();
  const auto& c = s->config;
  EXPECT_EQ(c.name(), "income");
  EXPECT_EQ(c.backend(), "xgboost");
  EXPECT_EQ(c.default_model_filename(), "model.json");
  ASSERT_EQ(c.version_policy().specific().versions_size(), 1);
  EXPECT_EQ(c.version_policy().specific().versions(0), 3);
  EXPECT_EQ(c.parameters().at("predict_proba").string_value(), "true");
  EXPECT_EQ(c.parameters().at("nthread").string_value(), "2");
  EXPECT_EQ(c.parameters().count("nested"), 0u);
  ASSERT_EQ(c.input_size(), 1);
  EXPECT_EQ(c.input(0).data_type(), inference::TYPE_FP32);
  ASSERT_EQ(c.input(0).dims_size(), 1);  // batch dimension dropped: batching is on
  EXPECT_EQ(c.input(0).dims(0), 6);
  EXPECT_EQ(c.output(0).dims(0), 2);
  EXPECT_EQ(c.max_batch_size(), 16);
  EXPECT_EQ(c.dynamic_batching().max_queue_delay_microseconds(), 250000u);  // seconds -> microseconds
  ASSERT_EQ(c.instance_group_size(), 1);
  EXPECT_EQ(c.instance_group(0).count(), 3);
  // platform, versions, parameters.format and the nested extra are reported, not applied.
  EXPECT_EQ(s->ignored.size(), 4u);
  EXPECT_TRUE(ValidateModelConfig(c).ok());
}

TEST(MlserverSettingsTest, WithoutBatchingShapesStayWholeAndVersionDefaultsToOne) {
  auto s = ParseMlserverSettings(R"({"implementation": "mlserver_sklearn.SKLearnModel",
      "parameters": {"version": "v0.1.0"},
      "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 4]}]})");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->config.backend(), "sklearn");
  EXPECT_EQ(s->config.max_batch_size(), 0);
  EXPECT_FALSE(s->config.has_dynamic_batching());
  EXPECT_EQ(s->config.input(0).dims_size(), 2);
  EXPECT_EQ(s->config.version_policy().specific().versions(0), 1);
  ASSERT_EQ(s->ignored.size(), 1u);
  EXPECT_NE(s->ignored[0].find("v0.1.0"), std::string::npos);
}

TEST(MlserverSettingsTest, BatchingNeedsADimensionBesidesTheBatch) {
  auto s = ParseMlserverSettings(R"({"implementation": "mlserver_lightgbm.LightGBMModel", "max_batch_size": 8,
      "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}]})");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->config.backend(), "lightgbm");
  EXPECT_EQ(s->config.max_batch_size(), 0);
  EXPECT_EQ(s->config.output(0).dims(0), -1);
  ASSERT_EQ(s->ignored.size(), 1u);
  EXPECT_NE(s->ignored[0].find("'predict'"), std::string::npos);
}

TEST(MlserverSettingsTest, ErrorsNameTheField) {
  EXPECT_NE(Message("{\"name\": \"m\",\n \"implementation\": }").find("invalid JSON at line 2"), std::string::npos);
  EXPECT_NE(Message("[1]").find("the top level must be an object"), std::string::npos);
  EXPECT_NE(Message("{\"name\": \"m\"}").find("'implementation' is missing"), std::string::npos);
  auto unknown = ParseMlserverSettings(R"({"implementation": "mlserver_huggingface.HuggingFaceRuntime"})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(unknown.status().message().find("implementation 'mlserver_huggingface.HuggingFaceRuntime' has no ferry runtime"),
            std::string::npos);
  const std::string impl = R"("implementation": "mlserver_xgboost.XGBoostModel")";
  EXPECT_NE(Message("{" + impl + R"(, "inputs": [{"name": "x", "datatype": "FLOAT", "shape": [1]}]})")
                .find("inputs 'x': unknown datatype 'FLOAT'"),
            std::string::npos);
  EXPECT_NE(Message("{" + impl + R"(, "inputs": [{"name": "x", "datatype": "FP32"}]})").find("inputs 'x': 'shape' is missing"),
            std::string::npos);
  EXPECT_NE(Message("{" + impl + R"(, "outputs": [{"name": "y", "datatype": "FP32", "shape": [0]}]})")
                .find("outputs 'y': shape 0 must be -1 or positive"),
            std::string::npos);
  EXPECT_NE(Message("{" + impl + R"(, "max_batch_size": "8"})").find("'max_batch_size' must be an integer, not a string"),
            std::string::npos);
  EXPECT_NE(Message("{" + impl + R"(, "max_batch_time": -1})").find("'max_batch_time' must be between"), std::string::npos);
  EXPECT_NE(Message("{" + impl + R"(, "parameters": {"uri": "s3://bucket/model.json"}})").find("parameters.uri"),
            std::string::npos);
}

class MlserverLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ferry_mlserver_" + std::to_string(::getpid())) / "income";
    fs::remove_all(dir_.parent_path());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_.parent_path()); }
  void Write(const std::string& file, const std::string& text) { std::ofstream(dir_ / file) << text; }
  fs::path dir_;
};

TEST_F(MlserverLayoutTest, TheModelFolderIsTheOneVersionAndWellKnownFilesAreFound) {
  Write("model-settings.json", R"({"name": "income", "implementation": "mlserver_xgboost.XGBoostModel",
                                   "parameters": {"version": "7"}})");
  Write("model.bst", "x");
  Write("model.json", "x");
  auto config = ReadModelConfig(dir_);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->default_model_filename(), "model.bst");  // MLServer's first well-known name
  auto folders = VersionFolders(dir_, *config);
  ASSERT_EQ(folders.size(), 1u);
  EXPECT_EQ(folders.begin()->first, 7);
  EXPECT_EQ(folders.begin()->second, dir_);

  // Numeric version folders win over the flat layout.
  fs::create_directories(dir_ / "2");
  folders = VersionFolders(dir_, *config);
  ASSERT_EQ(folders.size(), 1u);
  EXPECT_EQ(folders.begin()->first, 2);
  EXPECT_EQ(folders.begin()->second, dir_ / "2");
}

TEST_F(MlserverLayoutTest, ANameOtherThanTheFolderIsRefused) {
  Write("model-settings.json", R"({"name": "other", "implementation": "mlserver_xgboost.XGBoostModel"})");
  auto config = ReadModelConfig(dir_);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("'other'"), std::string::npos);
}

}  // namespace
}  // namespace ferry::repository
