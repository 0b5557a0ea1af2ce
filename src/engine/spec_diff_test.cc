#include "engine/spec_diff.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace ferry::engine {
namespace {
namespace fs = std::filesystem;

class SpecDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ferry_diff_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "models" / "a" / "1");
    fs::create_directories(dir_ / "models" / "b" / "1");
    fs::create_directories(dir_ / "other" / "a" / "1");
  }
  void TearDown() override { fs::remove_all(dir_); }

  DeploymentSpec Parse(const std::string& yaml) {
    auto spec = ParseSpecIn("deployments:\n" + yaml, "spec.yaml", dir_.string());
    EXPECT_TRUE(spec.ok()) << spec.status().message();
    return spec.ok() ? spec->deployments.at(0) : DeploymentSpec{};
  }
  fs::path dir_;
};

const char* kBase = R"(- name: d
  revisions:
  - name: v1
    models: [models/a]
    serve: {http-threads: 1}
  replicas: {min: 1, max: 3}
)";

TEST_F(SpecDiffTest, TheSameDeploymentWrittenOtherwiseIsUnchanged) {
  DeploymentSpec yaml = Parse(kBase);
  // JSON, absolute paths, other key order: the same processes and settings.
  DeploymentSpec json = Parse("- {\"replicas\": {\"max\": 3, \"min\": 1}, \"name\": \"d\", \"revisions\": [{\"name\": \"v1\", "
                              "\"serve\": {\"--http-threads\": \"1\"}, \"models\": [\"" +
                              (dir_ / "models" / "a").string() + "\"]}]}\n");
  DeploymentDiff diff = DiffDeployment(yaml, json);
  EXPECT_FALSE(diff.changed()) << diff.Describe();
  EXPECT_EQ(diff.kept, std::vector<std::string>{"v1"});
  EXPECT_EQ(diff.Describe(), "no change");
}

TEST_F(SpecDiffTest, NewModelsServeOptionsOrEnvironmentRollTheRevision) {
  DeploymentSpec before = Parse(kBase);
  for (const auto& [yaml, reason] : std::vector<std::pair<std::string, std::string>>{
           {"    models: [models/a, models/b]\n    serve: {http-threads: 1}\n", "models"},
           {"    models: [other/a]\n    serve: {http-threads: 1}\n", "models"},
           {"    models: [models/a]\n    serve: {http-threads: 2}\n", "serve"},
           {"    models: [models/a]\n    serve: {http-threads: 1}\n    env: {A: b}\n", "env"}}) {
    DeploymentSpec after = Parse("- name: d\n  revisions:\n  - name: v1\n" + yaml + "  replicas: {min: 1, max: 3}\n");
    DeploymentDiff diff = DiffDeployment(before, after);
    EXPECT_TRUE(diff.rolling()) << yaml;
    ASSERT_EQ(diff.replaced.size(), 1u) << yaml;
    EXPECT_EQ(diff.replaced[0].revision, "v1");
    EXPECT_EQ(diff.replaced[0].reasons, std::vector<std::string>{reason}) << yaml;
    EXPECT_TRUE(diff.in_place.empty());
  }
}

TEST_F(SpecDiffTest, WeightsBoundsAutoscalingAndLimitsApplyInPlace) {
  DeploymentSpec before = Parse(kBase);
  DeploymentSpec after = Parse(R"(- name: d
  revisions:
  - name: v1
    models: [models/a]
    serve: {http-threads: 1}
  replicas: {min: 2, max: 5}
  autoscaling: {target_in_flight: 8}
  gateway: {max_in_flight: 10}
  drain: {grace: 1s}
  rollout: {progress_deadline: 1m}
)");
  DeploymentDiff diff = DiffDeployment(before, after);
  EXPECT_FALSE(diff.rolling());
  EXPECT_TRUE(diff.changed());
  EXPECT_EQ(diff.in_place, (std::vector<std::string>{"replicas", "autoscaling", "drain", "gateway", "rollout"}));
  EXPECT_EQ(diff.Describe(), "in place: replicas, autoscaling, drain, gateway, rollout");
}

TEST_F(SpecDiffTest, AConcurrencyLimitOrASurgeAppliesInPlace) {
  DeploymentSpec before = Parse(kBase);
  DeploymentSpec after = Parse(R"(- name: d
  revisions:
  - name: v1
    models: [models/a]
    serve: {http-threads: 1}
  replicas: {min: 1, max: 3}
  gateway: {max_concurrency: 4}
  rollout: {max_surge: 1}
)");
  DeploymentDiff diff = DiffDeployment(before, after);
  EXPECT_FALSE(diff.rolling());
  EXPECT_EQ(diff.in_place, (std::vector<std::string>{"gateway", "rollout"}));
}

TEST_F(SpecDiffTest, ARenamedRevisionIsAddedAndTheOldOneDropped) {
  DeploymentSpec before = Parse(kBase);
  DeploymentSpec after = Parse(R"(- name: d
  revisions:
  - {name: v2, models: [models/a], serve: {http-threads: 1}}
  replicas: {min: 1, max: 3}
)");
  DeploymentDiff diff = DiffDeployment(before, after);
  EXPECT_TRUE(diff.rolling());
  EXPECT_EQ(diff.added, std::vector<std::string>{"v2"});
  EXPECT_EQ(diff.removed, std::vector<std::string>{"v1"});
  EXPECT_EQ(diff.in_place, std::vector<std::string>{"traffic"});
  EXPECT_EQ(diff.Describe(), "adds v2; drops v1; in place: traffic");
}

TEST_F(SpecDiffTest, DroppingOneOfTwoRevisionsOrMovingWeightNeedsNoNewProcess) {
  const std::string two = R"(- name: d
  revisions:
  - {name: v1, models: [models/a]}
  - {name: v2, models: [models/a], serve: {http-threads: 2}}
  traffic: {v1: 90, v2: 10}
)";
  DeploymentSpec before = Parse(two);
  DeploymentSpec moved = Parse(R"(- name: d
  revisions:
  - {name: v1, models: [models/a]}
  - {name: v2, models: [models/a], serve: {http-threads: 2}}
  traffic: {v1: 10, v2: 90}
)");
  DeploymentDiff diff = DiffDeployment(before, moved);
  EXPECT_FALSE(diff.rolling());
  EXPECT_EQ(diff.in_place, std::vector<std::string>{"traffic"});
  DeploymentSpec one = Parse("- name: d\n  revisions:\n  - {name: v2, models: [models/a], serve: {http-threads: 2}}\n");
  diff = DiffDeployment(before, one);
  EXPECT_FALSE(diff.rolling());
  EXPECT_EQ(diff.removed, std::vector<std::string>{"v1"});
  EXPECT_EQ(diff.kept, std::vector<std::string>{"v2"});
}

TEST_F(SpecDiffTest, NewCpusetsReplaceEveryRevision) {
  DeploymentSpec before = Parse(kBase);
  DeploymentSpec after = Parse(std::string(kBase) + "  cpusets: [\"0\"]\n");
  DeploymentDiff diff = DiffDeployment(before, after);
  ASSERT_EQ(diff.replaced.size(), 1u);
  EXPECT_EQ(diff.replaced[0].reasons, std::vector<std::string>{"cpusets"});
}

TEST_F(SpecDiffTest, ALoneDeploymentDocumentNamesFieldsFromTheDeployment) {
  auto d = ParseDeploymentDocument("name: d\nrevisions:\n- name: v1\n  models: [models/a]\nreplicas: {min: 3, max: 2}\n",
                                   "one.yaml", dir_.string());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(), "one.yaml:5:25: replicas.max: must be at least min (3), got 2");
  auto rel = ParseDeploymentDocument("name: d\nrevisions:\n- name: v1\n  models: [models/a]\n", "one.yaml", "");
  ASSERT_FALSE(rel.ok());
  EXPECT_NE(rel.status().message().find("one.yaml:4:12: revisions[0].models[0]: relative path 'models/a' needs a base folder"),
            std::string::npos)
      << rel.status().message();
  auto ok = ParseDeploymentDocument("{\"name\": \"d\", \"revisions\": [{\"name\": \"v1\", \"models\": [\"models/a\"]}]}",
                                    "one.json", dir_.string());
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->revisions[0].model_folders[0], (dir_ / "models" / "a").string());
  auto list = ParseDeploymentDocument("[1, 2]", "one.json", dir_.string());
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().message().find("(document): must be a mapping"), std::string::npos);
}

}  // namespace
}  // namespace ferry::engine
