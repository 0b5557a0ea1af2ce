#include "runtime/xgboost/xgboost_model.h"

#include <gtest/gtest.h>

namespace ferry::runtime::xgb {
namespace {

// Abridged from libxgboost 1.7's XGBoosterSaveJsonConfig for a 3-class softprob model.
constexpr const char* kSoftprobConfig =
    R"({"learner":{"generic_param":{"nthread":"0"},"gradient_booster":{"name":"gbtree","gbtree_model_param":)"
    R"({"num_trees":"15"}},"learner_model_param":{"base_score":"5E-1","boost_from_average":"1","num_class":"3",)"
    R"("num_feature":"5","num_target":"1"},"learner_train_param":{"booster":"gbtree","objective":"multi:softprob"},)"
    R"("objective":{"name":"multi:softprob","softmax_multiclass_param":{"num_class":"3"}}},"version":[1,7,4]})";

ModelInfo Info(std::string objective, int64_t num_class = 0) {
  ModelInfo info;
  info.objective = std::move(objective);
  info.booster = "gbtree";
  info.num_feature = 4;
  info.num_class = num_class;
  return info;
}

inference::ModelConfig Params(std::initializer_list<std::pair<const char*, const char*>> kv) {
  inference::ModelConfig c;
  for (const auto& [k, v] : kv) (*c.mutable_parameters())[k].set_string_value(v);
  return c;
}

TEST(LearnerConfig, ReadsObjectiveBoosterAndCounts) {
  auto info = ParseLearnerConfig(kSoftprobConfig);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->objective, "multi:softprob");
  EXPECT_EQ(info->booster, "gbtree");
  EXPECT_EQ(info->num_feature, 5);
  EXPECT_EQ(info->num_class, 3);
  EXPECT_EQ(info->groups(), 3);
  EXPECT_TRUE(info->classifier());
}

TEST(LearnerConfig, OlderConfigsWithoutNumTargetMeanOne) {
  auto info = ParseLearnerConfig(
      R"({"learner":{"gradient_booster":{"name":"gblinear"},"learner_model_param":{"num_class":"0","num_feature":"7"},)"
      R"("objective":{"name":"reg:squarederror"}}})");
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->booster, "gblinear");
  EXPECT_EQ(info->num_target, 1);
  EXPECT_EQ(info->groups(), 1);
  EXPECT_FALSE(info->classifier());
}

TEST(LearnerConfig, RejectsWhatIsNotALearnerConfig) {
  EXPECT_FALSE(ParseLearnerConfig("not json").ok());
  EXPECT_FALSE(ParseLearnerConfig(R"({"learner":{}})").ok());
  EXPECT_FALSE(ParseLearnerConfig(
                   R"({"learner":{"objective":{"name":"reg:squarederror"},"learner_model_param":{"num_feature":"x"}}})")
                   .ok());
}

TEST(PlanOutput, RegressorGivesItsValueByDefault) {
  auto plan = PlanOutput(Info("reg:squarederror"), {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->predict_type, 0);
  EXPECT_EQ(plan->transform, Transform::kNone);
  EXPECT_EQ(plan->width, 1);
}

TEST(PlanOutput, BinaryClassifierDefaultsToProbaPair) {
  auto plan = PlanOutput(Info("binary:logistic"), {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->predict_type, 0);
  EXPECT_EQ(plan->transform, Transform::kProbaPair);
  EXPECT_EQ(plan->width, 2);
}

TEST(PlanOutput, BinaryProbaOffGivesP) {
  auto plan = PlanOutput(Info("binary:logistic"), Params({{"predict_proba", "false"}}));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->transform, Transform::kNone);
  EXPECT_EQ(plan->width, 1);
}

TEST(PlanOutput, LogitrawProbaAppliesTheSigmoidToMargins) {
  auto plan = PlanOutput(Info("binary:logitraw"), {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->predict_type, 1);
  EXPECT_EQ(plan->transform, Transform::kSigmoidPair);
}

TEST(PlanOutput, MarginGivesRawScoresPerClass) {
  auto plan = PlanOutput(Info("multi:softprob", 3), Params({{"output_margin", "TRUE"}}));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->predict_type, 1);
  EXPECT_EQ(plan->transform, Transform::kNone);
  EXPECT_EQ(plan->width, 3);
}

TEST(PlanOutput, SoftprobUsesXgboostsOwnProbabilities) {
  auto plan = PlanOutput(Info("multi:softprob", 3), {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->predict_type, 0);
  EXPECT_EQ(plan->transform, Transform::kNone);
  EXPECT_EQ(plan->width, 3);
}

TEST(PlanOutput, SoftmaxProbaComputesSoftmaxAndPlainValueIsTheLabel) {
  auto proba = PlanOutput(Info("multi:softmax", 4), {});
  ASSERT_TRUE(proba.ok());
  EXPECT_EQ(proba->predict_type, 1);
  EXPECT_EQ(proba->transform, Transform::kSoftmax);
  EXPECT_EQ(proba->width, 4);
  auto label = PlanOutput(Info("multi:softmax", 4), Params({{"predict_proba", "false"}}));
  ASSERT_TRUE(label.ok());
  EXPECT_EQ(label->predict_type, 0);
  EXPECT_EQ(label->width, 1);
}

TEST(PlanOutput, PerClassInterceptsForceMargins) {
  ModelInfo info = Info("multi:softprob", 3);
  info.intercepts = {0.1f, 0.2f, -0.3f};
  auto plan = PlanOutput(info, {});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->predict_type, 1);
  EXPECT_TRUE(plan->add_intercepts);
  EXPECT_EQ(plan->transform, Transform::kSoftmax);
  info.objective = "multi:softmax";
  auto label = PlanOutput(info, Params({{"predict_proba", "false"}}));
  ASSERT_TRUE(label.ok());
  EXPECT_EQ(label->transform, Transform::kArgmax);
  EXPECT_EQ(label->width, 1);
}

TEST(PlanOutput, BadParametersNameThemselves) {
  auto bad = PlanOutput(Info("binary:logistic"), Params({{"predict_proba", "yes"}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'predict_proba'"), std::string::npos) << bad.status().message();
  auto both = PlanOutput(Info("binary:logistic"), Params({{"predict_proba", "true"}, {"output_margin", "true"}}));
  ASSERT_FALSE(both.ok());
  auto regressor = PlanOutput(Info("reg:squarederror"), Params({{"predict_proba", "true"}}));
  ASSERT_FALSE(regressor.ok());
  EXPECT_NE(regressor.status().message().find("reg:squarederror"), std::string::npos);
}

TEST(ArrayInterface, PointsAtTheBufferWithItsType) {
  float data[6] = {};
  std::string s = DenseArrayInterface(data, 2, 3, DataType::kFp32);
  EXPECT_NE(s.find("\"data\":[" + std::to_string(reinterpret_cast<uintptr_t>(data)) + ",true]"), std::string::npos) << s;
  EXPECT_NE(s.find("\"shape\":[2,3]"), std::string::npos);
  EXPECT_NE(s.find("\"typestr\":\"<f4\""), std::string::npos);
  EXPECT_NE(DenseArrayInterface(data, 1, 1, DataType::kFp64).find("\"<f8\""), std::string::npos);
}

TEST(PredictConfig, CarriesTypeAndWhatLibxgboost17Requires) {
  std::string s = PredictConfig(1);
  EXPECT_NE(s.find("\"type\":1"), std::string::npos);
  EXPECT_NE(s.find("\"cache_id\":0"), std::string::npos);
  EXPECT_NE(s.find("\"strict_shape\":false"), std::string::npos);
}

TEST(UpgradeBaseScore, JsonScalarVectorBecomesScalar) {
  std::string model = R"({"learner":{"learner_model_param":{"base_score": "[-3.5352847E-1]","num_class":"0"}},"version":[3,2,0]})";
  auto intercepts = UpgradeBaseScore(&model);
  ASSERT_TRUE(intercepts.ok()) << intercepts.status().message();
  EXPECT_TRUE(intercepts->empty());
  EXPECT_NE(model.find(R"("base_score": "-3.5352847E-1")"), std::string::npos) << model;
}

TEST(UpgradeBaseScore, JsonEqualValuesBecomeOneScalar) {
  std::string model = R"({"learner":{"learner_model_param":{"base_score":"[5E-1,5E-1]"}}})";
  auto intercepts = UpgradeBaseScore(&model);
  ASSERT_TRUE(intercepts.ok());
  EXPECT_TRUE(intercepts->empty());
  EXPECT_NE(model.find(R"("base_score":"5E-1")"), std::string::npos) << model;
}

TEST(UpgradeBaseScore, JsonPerClassValuesAreReturned) {
  std::string model = R"({"learner":{"learner_model_param":{"base_score":"[1.25E-1,4E-2,-1.5E-1]"}}})";
  auto intercepts = UpgradeBaseScore(&model);
  ASSERT_TRUE(intercepts.ok());
  EXPECT_EQ(*intercepts, (std::vector<float>{0.125f, 0.04f, -0.15f}));
  EXPECT_NE(model.find(R"("base_score":"0")"), std::string::npos) << model;
}

TEST(UpgradeBaseScore, OlderFilesAreUntouched) {
  std::string json = R"({"learner":{"learner_model_param":{"base_score":"5E-1"}},"version":[1,7,6]})";
  std::string copy = json;
  auto none = UpgradeBaseScore(&json);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(json, copy);
  std::string binary("\x00\x00\x00\x3f binf", 9);
  std::string bcopy = binary;
  ASSERT_TRUE(UpgradeBaseScore(&binary).ok());
  EXPECT_EQ(binary, bcopy);
}

TEST(UpgradeBaseScore, MalformedVectorIsAnError) {
  std::string model = R"({"learner":{"learner_model_param":{"base_score":"[1,x]"}}})";
  EXPECT_FALSE(UpgradeBaseScore(&model).ok());
}

// UBJSON as XGBoost writes it: keys and strings carry an 'L' int64 big-endian length.
std::string UbjString(std::string_view s) {
  std::string out = "L";
  for (int i = 7; i >= 0; --i) out += static_cast<char>((s.size() >> (8 * i)) & 0xff);
  return out + std::string(s);
}

TEST(UpgradeBaseScore, UbjVectorIsRewrittenWithItsLength) {
  std::string model = "{" + UbjString("learner") + "{" + UbjString("base_score") + "S" + UbjString("[-3.5E-1]") +
                      UbjString("num_class") + "S" + UbjString("0") + "}}";
  auto intercepts = UpgradeBaseScore(&model);
  ASSERT_TRUE(intercepts.ok()) << intercepts.status().message();
  EXPECT_TRUE(intercepts->empty());
  std::string want = "{" + UbjString("learner") + "{" + UbjString("base_score") + "S" + UbjString("-3.5E-1") +
                     UbjString("num_class") + "S" + UbjString("0") + "}}";
  EXPECT_EQ(model, want);
}

TEST(UpgradeBaseScore, UbjPerClassValues) {
  std::string model = "{" + UbjString("base_score") + "S" + UbjString("[1,2,3]") + "}";
  auto intercepts = UpgradeBaseScore(&model);
  ASSERT_TRUE(intercepts.ok());
  EXPECT_EQ(*intercepts, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(model, "{" + UbjString("base_score") + "S" + UbjString("0") + "}");
}

TEST(CleanError, KeepsXgboostsMessageOnly) {
  EXPECT_EQ(CleanError("[22:20:54] ./src/learner.cc:1017: Check failed: x == y (18 vs. 136) : BoostLearner: wrong "
                       "model format\nStack trace:\n  [bt] (0) /lib/libxgboost.so.0(...)\n"),
            "Check failed: x == y (18 vs. 136) : BoostLearner: wrong model format");
  EXPECT_EQ(CleanError("[22:20:54] ./src/common/json.cc:407: Expecting null value \"null\", around character "
                       "position: 28\n    s\": not json\n    ~~~^~~\nStack trace:\n"),
            "Expecting null value \"null\", around character position: 28");
  EXPECT_EQ(CleanError("plain message"), "plain message");
}

}  // namespace
}  // namespace ferry::runtime::xgb
