#include "engine/spec.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <filesystem>
#include <fstream>

namespace ferry::engine {
namespace {
namespace fs = std::filesystem;

class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ferry_spec_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "repo" / "add_sub" / "1");
    fs::create_directories(dir_ / "repo" / "mlp" / "1");
    fs::create_directories(dir_ / "repo2" / "other" / "1");
    fs::create_directories(dir_ / "single" / "1");
    file_ = (dir_ / "spec.yaml").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  Result<EngineSpec> Parse(const std::string& yaml) { return ParseSpec(yaml, file_); }
  std::string Error(const std::string& yaml) {
    auto r = Parse(yaml);
    EXPECT_FALSE(r.ok()) << yaml;
    return r.ok() ? "" : r.status().message();
  }

  fs::path dir_;
  std::string file_;
};

TEST_F(SpecTest, MinimalDeploymentGetsDocumentedDefaults) {
  auto spec = Parse("deployments:\n- name: d\n  revisions:\n  - name: v1\n    model_repository: repo\n");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_EQ(spec->deployments.size(), 1u);
  const DeploymentSpec& d = spec->deployments[0];
  EXPECT_EQ(d.name, "d");
  ASSERT_EQ(d.revisions.size(), 1u);
  EXPECT_EQ(d.revisions[0].model_repositories, std::vector<std::string>{(dir_ / "repo").string()});
  EXPECT_EQ(d.revisions[0].model_names, (std::vector<std::string>{"add_sub", "mlp"}));
  EXPECT_EQ(d.traffic.at("v1"), 100);
  EXPECT_EQ(d.replicas.min, 1);
  EXPECT_EQ(d.replicas.max, 1);
  EXPECT_EQ(d.replicas.initial, 1);
  EXPECT_DOUBLE_EQ(d.autoscaling.target_in_flight, 4);
  EXPECT_EQ(d.autoscaling.stable_window, Millis(60000));
  EXPECT_EQ(d.drain.grace, Millis(30000));
  EXPECT_EQ(d.gateway.max_in_flight, 1000);
  EXPECT_NE(d.source_yaml.find("model_repository"), std::string::npos);
}

// A CPU this process may run on, as text.
std::string AllowedCpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  ::sched_getaffinity(0, sizeof set, &set);
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) return std::to_string(c);
  return "0";
}

TEST_F(SpecTest, FullDeploymentParses) {
  const std::string cpu = AllowedCpu();
  auto spec = Parse(R"(deployments:
- name: classifier
  revisions:
  - name: blue
    models: [single]
    serve: {http-threads: 2, --intra-op-threads: 1}
    env: {OMP_NUM_THREADS: "1"}
  - name: green
    model_repository: [repo2]
  traffic: {blue: 90, green: 10}
  replicas: {min: 0, max: 4}
  autoscaling: {target_in_flight: 2.5, stable_window: 30s, panic_window: 3s, scale_down_delay: 1m,
                scale_to_zero_after: 90s, target_p95: 40ms, latency_window: 5s}
  cpusets: [")" + cpu + "-" + cpu + R"(", ")" + cpu + R"("]
  health: {ready_timeout: 20s, probe_interval: 100ms}
  drain: {grace: 5s, kill_after: 2s}
  restart: {initial_backoff: 250ms, max_backoff: 8s, crash_loop_failures: 3, crash_loop_window: 30s}
  gateway: {max_in_flight: 64, request_timeout: 15s, cold_start_timeout: 4s, max_concurrency: 2, max_queue: 8,
            queue_timeout: 750ms}
  rollout: {max_surge: 25%}
- name: second
  rollout: {max_surge: 2}
  revisions: [{name: r, models: [repo/add_sub]}]
  replicas: 3
)");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_EQ(spec->deployments.size(), 2u);
  const DeploymentSpec& d = spec->deployments[0];
  EXPECT_EQ(d.revisions[0].model_names, std::vector<std::string>{"single"});
  EXPECT_EQ(d.revisions[0].serve_options,
            (std::vector<std::pair<std::string, std::string>>{{"http-threads", "2"}, {"intra-op-threads", "1"}}));
  EXPECT_EQ(d.revisions[0].env, (std::vector<std::pair<std::string, std::string>>{{"OMP_NUM_THREADS", "1"}}));
  EXPECT_EQ(d.traffic.at("blue"), 90);
  EXPECT_EQ(d.traffic.at("green"), 10);
  EXPECT_EQ(d.replicas.min, 0);
  EXPECT_EQ(d.replicas.max, 4);
  EXPECT_EQ(d.replicas.initial, 1) << "min 0 still starts one replica";
  EXPECT_DOUBLE_EQ(d.autoscaling.target_in_flight, 2.5);
  EXPECT_EQ(d.autoscaling.scale_down_delay, Millis(60000));
  EXPECT_EQ(d.autoscaling.scale_to_zero_after, Millis(90000));
  EXPECT_EQ(d.autoscaling.target_p95, Millis(40));
  EXPECT_EQ(d.autoscaling.latency_window, Millis(5000));
  EXPECT_EQ(spec->deployments[1].autoscaling.target_p95, Millis(0)) << "the latency objective is off by default";
  EXPECT_EQ(d.cpusets, (std::vector<std::vector<int>>{{std::stoi(cpu)}, {std::stoi(cpu)}}));
  EXPECT_EQ(d.health.probe_interval, Millis(100));
  EXPECT_EQ(d.drain.kill_after, Millis(2000));
  EXPECT_EQ(d.restart.crash_loop_failures, 3);
  EXPECT_EQ(d.gateway.max_in_flight, 64);
  EXPECT_EQ(d.gateway.cold_start_timeout, Millis(4000));
  EXPECT_EQ(d.gateway.max_concurrency, 2);
  EXPECT_EQ(d.gateway.max_queue, 8);
  EXPECT_EQ(d.gateway.queue_timeout, Millis(750));
  EXPECT_EQ(d.rollout.SurgeFor(3), 1) << "25% of 3, rounded up";
  EXPECT_EQ(d.rollout.SurgeFor(8), 2);
  EXPECT_EQ(d.rollout.SurgeFor(1), 1);
  const DeploymentSpec& s = spec->deployments[1];
  EXPECT_EQ(s.gateway.max_concurrency, 0) << "no concurrency limit by default";
  EXPECT_EQ(s.rollout.SurgeFor(3), 2);
  EXPECT_EQ(DeploymentSpec{}.rollout.SurgeFor(7), 7) << "surge-all by default";
  EXPECT_EQ(s.replicas.min, 3);
  EXPECT_EQ(s.replicas.max, 3);
  EXPECT_EQ(s.revisions[0].model_names, std::vector<std::string>{"add_sub"});
}

TEST_F(SpecTest, ErrorsNameTheFieldAndTheLine) {
  EXPECT_EQ(Error("deployments:\n- name: d\n  revisions:\n  - name: v1\n    model_repository: repo\n"
                  "  replicas: {min: 3, max: 2}\n"),
            file_ + ":6:27: deployments[0].replicas.max: must be at least min (3), got 2");
  EXPECT_EQ(Error("deployments:\n- name: d\n  replica: 2\n"),
            file_ + ":3:3: deployments[0].replica: unknown field (expected one of: autoscaling, cpusets, drain, "
                    "gateway, health, name, replicas, restart, revisions, rollout, traffic)");
  EXPECT_EQ(Error("deployments:\n- name: d\n  revisions:\n  - name: v1\n    model_repository: nowhere\n"),
            file_ + ":5:23: deployments[0].revisions[0].model_repository: folder '" + (dir_ / "nowhere").string() +
                "' does not exist");
  EXPECT_EQ(Error("deployments:\n- name: d\n  revisions:\n  - name: v1\n    model_repository: repo\n"
                  "  autoscaling:\n    stable_window: 5 minutes\n"),
            file_ + ":7:20: deployments[0].autoscaling.stable_window: '5 minutes': unknown unit ' minutes' (use ms, s, "
                    "m or h)");
}

TEST_F(SpecTest, RefusesInconsistentDeployments) {
  const std::string rev = "  revisions:\n  - name: v1\n    model_repository: repo\n";
  EXPECT_NE(Error("deployments:\n- name: d\n" + rev + "- name: d\n" + rev).find("deployment 'd' is named twice"),
            std::string::npos);
  EXPECT_NE(Error("deployments:\n- name: a\n" + rev + "- name: b\n" + rev)
                .find("model 'add_sub' is also served by deployment 'a' (line 2)"),
            std::string::npos);
  EXPECT_NE(Error("deployments:\n- name: d\n  revisions:\n  - {name: a, models: [single]}\n  - {name: b, models: "
                  "[single]}\n")
                .find("deployments[0].traffic: is required when a deployment has several revisions"),
            std::string::npos);
  EXPECT_NE(Error("deployments:\n- name: d\n" + rev + "  traffic: {v2: 10}\n").find("names no revision"),
            std::string::npos);
  EXPECT_NE(Error("deployments:\n- name: d\n" + rev + "  traffic: {v1: 0}\n").find("sum to 0"), std::string::npos);
  EXPECT_NE(Error("deployments:\n- name: d\n  revisions:\n  - {name: v1, models: [single], serve: {http-port: 9}}\n")
                .find("revisions[0].serve.http-port: is set by the engine"),
            std::string::npos);
  EXPECT_NE(Error("deployments:\n- name: d\n  revisions:\n  - {name: v1}\n").find("needs model_repository or models"),
            std::string::npos);
  EXPECT_NE(Error("deployments:\n- name: 'a b'\n" + rev).find("must be 1-63 letters"), std::string::npos);
  EXPECT_NE(Error("deployments:\n- name: d\n" + rev + "  cpusets: ['3-1']\n").find("cpusets[0]: '3-1' is not a CPU list"),
            std::string::npos);
  EXPECT_NE(Error("deployments:\n- name: d\n" + rev + "  cpusets: ['" + AllowedCpu() + "', '4095']\n")
                .find("cpusets[1]: CPU 4095 is not one this engine may use"),
            std::string::npos);
  EXPECT_NE(Error("deployments:\n- name: d\n" + rev + "  replicas: {min: -1}\n").find("must be at least 0, got -1"),
            std::string::npos);
  EXPECT_NE(Error("deployments:\n- name: d\n" + rev + "  autoscaling: {latency_window: 0s}\n")
                .find("deployments[0].autoscaling.latency_window: must be positive"),
            std::string::npos);
  EXPECT_NE(Error("deployments:\n- name: d\n" + rev + "  autoscaling: {target_p95: fast}\n")
                .find("deployments[0].autoscaling.target_p95"),
            std::string::npos);
}

TEST_F(SpecTest, ConcurrencyLimitAndSurgeErrorsNameTheFieldAndTheLine) {
  const std::string head = "deployments:\n- name: d\n  revisions:\n  - name: v1\n    model_repository: repo\n";
  EXPECT_EQ(Error(head + "  gateway: {max_concurrency: -1}\n"),
            file_ + ":6:30: deployments[0].gateway.max_concurrency: must be at least 0, got -1");
  EXPECT_EQ(Error(head + "  gateway:\n    max_queue: 5\n"),
            file_ + ":7:16: deployments[0].gateway.max_queue: has no effect without gateway.max_concurrency (0 or "
                    "unset: no limit)");
  EXPECT_EQ(Error(head + "  gateway: {max_concurrency: 1, queue_timeout: 0s}\n"),
            file_ + ":6:48: deployments[0].gateway.queue_timeout: must be positive");
  EXPECT_EQ(Error(head + "  gateway: {max_concurrency: 1, max_queue: many}\n"),
            file_ + ":6:44: deployments[0].gateway.max_queue: must be an integer, got 'many'");
  EXPECT_EQ(Error(head + "  rollout:\n    max_surge: 0\n"),
            file_ + ":7:16: deployments[0].rollout.max_surge: must be a count of replicas from 1 to 1000 or a "
                    "percentage from 1% to 100%, got '0'");
  EXPECT_NE(Error(head + "  rollout: {max_surge: 150%}\n").find("rollout.max_surge: must be a count"),
            std::string::npos);
  EXPECT_NE(Error(head + "  rollout: {max_surge: 1.5}\n").find("got '1.5'"), std::string::npos);
}

TEST_F(SpecTest, BadYamlAndEmptyFiles) {
  EXPECT_NE(Error("deployments: [\n").find(file_ + ":2:1: invalid YAML"), std::string::npos);
  EXPECT_NE(Error("").find("the spec is empty"), std::string::npos);
  EXPECT_NE(Error("deployments: 3\n").find("deployments: must be a list"), std::string::npos);
  EXPECT_NE(Error("other: 1\n").find("other: unknown field"), std::string::npos);
}

TEST(DurationTest, Units) {
  EXPECT_EQ(*ParseDuration("250ms"), Millis(250));
  EXPECT_EQ(*ParseDuration("2s"), Millis(2000));
  EXPECT_EQ(*ParseDuration("1.5m"), Millis(90000));
  EXPECT_EQ(*ParseDuration("1h"), Millis(3600000));
  EXPECT_EQ(*ParseDuration("3"), Millis(3000));
  EXPECT_FALSE(ParseDuration("-1s").ok());
  EXPECT_FALSE(ParseDuration("s").ok());
  EXPECT_FALSE(ParseDuration("1.2.3s").ok());
}

TEST(CpuListTest, RangesAndSingles) {
  EXPECT_EQ(*ParseCpuList("0-2,5"), (std::vector<int>{0, 1, 2, 5}));
  EXPECT_EQ(*ParseCpuList("7"), (std::vector<int>{7}));
  EXPECT_FALSE(ParseCpuList("").ok());
  EXPECT_FALSE(ParseCpuList("a").ok());
  EXPECT_FALSE(ParseCpuList("1-").ok());
}

}  // namespace
}  // namespace ferry::engine
