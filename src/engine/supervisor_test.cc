#include "engine/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/manual_clock.h"

namespace ferry::engine {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The supervisor runs any binary as a replica; these tests run shell scripts in place of
// `ferry serve`, so they check supervision (exit, back-off, crash loop, drain) alone.
class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ferry_supervisor_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "models" / "m" / "1");
    auto store = StateStore::Open((dir_ / "state").string());
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
  }
  void TearDown() override {
    supervisor_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  void Start(const std::string& script, RestartPolicy restart = {}) {
    const fs::path bin = dir_ / "replica.sh";
    std::ofstream(bin) << "#!/bin/sh\n" << script << "\n";
    fs::permissions(bin, fs::perms::owner_all);
    auto d = std::make_shared<DeploymentSpec>();
    d->name = "d";
    RevisionSpec r;
    r.name = "v1";
    r.model_folders = {(dir_ / "models" / "m").string()};
    r.model_names = {"m"};
    d->revisions.push_back(r);
    d->restart = restart;
    d->drain.grace = 1s;
    d->drain.kill_after = 1s;
    deployment_ = d;
    SupervisorOptions o;
    o.binary = bin.string();
    o.state_dir = (dir_ / "state").string();
    o.probe_timeout = 200ms;
    supervisor_ = std::make_unique<Supervisor>(o, store_.get(), &clock_);
    ASSERT_TRUE(supervisor_->AddRevision(d, "v1", 1).ok());
  }

  RevisionStatus Status() { return supervisor_->StatusReport().at(0); }

  // Ticks (real time passes, the manual clock does not) until `pred` holds.
  template <typename Pred>
  bool TickUntil(Pred pred, std::chrono::milliseconds limit = 5000ms) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      supervisor_->Tick();
      if (pred(Status())) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  fs::path dir_;
  ManualClock clock_;
  std::unique_ptr<StateStore> store_;
  std::shared_ptr<const DeploymentSpec> deployment_;
  std::unique_ptr<Supervisor> supervisor_;
};

TEST_F(SupervisorTest, CrashesRestartWithBackoffThenTheRevisionIsDegradedWithTheReason) {
  RestartPolicy restart;
  restart.initial_backoff = 1s;
  restart.max_backoff = 4s;
  restart.crash_loop_failures = 3;
  restart.crash_loop_window = 60s;
  Start("echo \"boom: $2 $3\"; exit 3", restart);
  auto failed = [](int n) { return [n](const RevisionStatus& s) {
    return s.replicas.size() == 1 && s.replicas[0].restarts == n && s.replicas[0].state == ReplicaState::kBackoff; }; };
  ASSERT_TRUE(TickUntil(failed(1)));
  EXPECT_FALSE(Status().degraded);
  // Back-off 1 s: nothing before the clock gets there.
  supervisor_->Tick();
  EXPECT_EQ(Status().replicas[0].pid, -1);
  clock_.Advance(1s);
  ASSERT_TRUE(TickUntil(failed(2)));
  // Now 2 s: one second is not enough.
  clock_.Advance(1s);
  supervisor_->Tick();
  EXPECT_EQ(Status().replicas[0].pid, -1) << "the second back-off is 2 s";
  clock_.Advance(1s);
  ASSERT_TRUE(TickUntil(failed(3)));
  RevisionStatus s = Status();
  EXPECT_TRUE(s.degraded);
  EXPECT_NE(s.degraded_reason.find("3 replica failures within 60 s; last: exit status 3"), std::string::npos)
      << s.degraded_reason;
  EXPECT_NE(s.degraded_reason.find("boom: --model-repository="), std::string::npos) << s.degraded_reason;
  auto restarts = store_->Restarts("d", 10);
  ASSERT_TRUE(restarts.ok());
  ASSERT_EQ(restarts->size(), 3u);
  EXPECT_EQ((*restarts)[0].exit, "exit status 3");
  EXPECT_NE((*restarts)[0].log_tail.find("boom"), std::string::npos);
  // The replica's output is in its log file.
  std::ifstream log(s.replicas[0].log_path);
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("boom: --model-repository="), std::string::npos);
  EXPECT_NE(text.find("--http-address=127.0.0.1"), std::string::npos);
}

TEST_F(SupervisorTest, ReplicaNotReadyInTimeIsKilledAndCountsAsAFailure) {
  Start("exec sleep 60");
  ASSERT_TRUE(TickUntil([](const RevisionStatus& s) { return s.replicas.size() == 1 && s.replicas[0].pid > 0; }));
  const pid_t pid = Status().replicas[0].pid;
  clock_.Advance(121s);  // past health.ready_timeout (120 s)
  ASSERT_TRUE(TickUntil([](const RevisionStatus& s) { return s.replicas[0].restarts == 1; }));
  EXPECT_NE(::kill(pid, 0), 0) << "killed and reaped";
  auto restarts = store_->Restarts("d", 1);
  ASSERT_TRUE(restarts.ok());
  ASSERT_EQ(restarts->size(), 1u);
  EXPECT_NE((*restarts)[0].exit.find("not ready after 120 s"), std::string::npos) << (*restarts)[0].exit;
}

TEST_F(SupervisorTest, ScalingDownStopsTheReplicaAndRemovesIt) {
  // A replica that takes SIGTERM to exit 0, as `ferry serve` does.
  Start("trap 'exit 0' TERM; while true; do sleep 0.05; done");
  ASSERT_TRUE(TickUntil([](const RevisionStatus& s) { return s.replicas.size() == 1 && s.replicas[0].pid > 0; }));
  const pid_t pid = Status().replicas[0].pid;
  supervisor_->SetDesired("d", "v1", 0);
  ASSERT_TRUE(TickUntil([](const RevisionStatus& s) { return s.replicas.empty(); }));
  EXPECT_NE(::kill(pid, 0), 0);
  EXPECT_TRUE(store_->Restarts("d", 10)->empty()) << "a stop asked for is not a failure";
}

TEST_F(SupervisorTest, StopAllKillsAReplicaThatIgnoresSigterm) {
  Start("trap '' TERM; while true; do sleep 0.05; done");
  ASSERT_TRUE(TickUntil([](const RevisionStatus& s) { return s.replicas.size() == 1 && s.replicas[0].pid > 0; }));
  const pid_t pid = Status().replicas[0].pid;
  supervisor_->StopAll(300ms);
  EXPECT_NE(::kill(pid, 0), 0);
}

}  // namespace
}  // namespace ferry::engine
