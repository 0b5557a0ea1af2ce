#include "runtime/python/worker_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/python/shm_region.h"

namespace ferry::runtime::python {
namespace {

// Workers here are shell scripts: the process handling is the same for any program.
Result<std::unique_ptr<WorkerProcess>> Shell(const std::string& script, int shm_fd) {
  WorkerSpawn s;
  s.executable = "sh";
  s.args = {"-c", script};
  s.env = {"PATH=/usr/bin:/bin"};
  s.shm_fd = shm_fd;
  s.log_name = "test";
  return WorkerProcess::Spawn(s);
}

// Live (not zombie) processes whose process group is `pgid`, from /proc. Killed
// grandchildren are reparented to init, which in a container may never reap them.
int LiveInGroup(pid_t pgid) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    long ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != "Z") ++n;
  }
  return n;
}

class WorkerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = ShmRegion::Create("test", 4096);
    ASSERT_TRUE(r.ok());
    region_ = std::make_unique<ShmRegion>(std::move(r).value());
  }
  std::unique_ptr<ShmRegion> region_;
};

TEST_F(WorkerProcessTest, TalksOverFdThreeAndSharesMemoryOnFdFour) {
  auto w = Shell("printf hi >&3; line=$(dd bs=100 count=1 2>/dev/null <&3); printf \"got:$line\" >&3; printf mem >&4; sleep 5", region_->fd());
  ASSERT_TRUE(w.ok()) << w.status().message();
  std::string msg;
  ASSERT_EQ((*w)->Receive(5000, -1, &msg), WorkerProcess::Wait::kMessage);
  EXPECT_EQ(msg, "hi");
  ASSERT_TRUE((*w)->Send("ping\n").ok());
  ASSERT_EQ((*w)->Receive(5000, -1, &msg), WorkerProcess::Wait::kMessage);
  EXPECT_EQ(msg, "got:ping");
  usleep(100 * 1000);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(region_->data()), 3), "mem");
}

TEST_F(WorkerProcessTest, ReportsHowTheWorkerEnded) {
  auto exited = Shell("exit 3", region_->fd());
  ASSERT_TRUE(exited.ok());
  std::string msg;
  EXPECT_EQ((*exited)->Receive(5000, -1, &msg), WorkerProcess::Wait::kClosed);
  EXPECT_EQ((*exited)->Reap(1000), "exited with status 3");

  auto crashed = Shell("kill -SEGV $$", region_->fd());
  ASSERT_TRUE(crashed.ok());
  EXPECT_EQ((*crashed)->Receive(5000, -1, &msg), WorkerProcess::Wait::kClosed);
  EXPECT_NE((*crashed)->Reap(1000).find("killed by signal 11"), std::string::npos);
}

TEST_F(WorkerProcessTest, TimesOutAndIsInterruptedAndKilled) {
  auto w = Shell("sleep 30", region_->fd());
  ASSERT_TRUE(w.ok());
  std::string msg;
  EXPECT_EQ((*w)->Receive(50, -1, &msg), WorkerProcess::Wait::kTimeout);
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  uint64_t one = 1;
  ASSERT_EQ(write(efd, &one, 8), 8);
  EXPECT_EQ((*w)->Receive(5000, efd, &msg), WorkerProcess::Wait::kInterrupted);
  close(efd);
  pid_t pid = (*w)->pid();
  EXPECT_NE((*w)->KillAndReap().find("signal 9"), std::string::npos);
  EXPECT_NE(kill(pid, 0), 0);  // gone, and reaped
}

TEST_F(WorkerProcessTest, DestructorLeavesNoProcessBehind) {
  pid_t pid;
  {
    auto w = Shell("sleep 30 & wait", region_->fd());  // a grandchild in the group too
    ASSERT_TRUE(w.ok());
    pid = (*w)->pid();
    // The shell starts its child when it gets to run: on a busy machine that may take a while.
    for (int i = 0; i < 500 && LiveInGroup(pid) < 2; ++i) usleep(10 * 1000);
    EXPECT_EQ(LiveInGroup(pid), 2);
  }
  EXPECT_NE(kill(pid, 0), 0);  // reaped
  // And nothing left in its process group: the grandchild got SIGKILL with the group, and
  // dies when the kernel next runs it (on a busy machine, not always before this line).
  for (int i = 0; i < 500 && LiveInGroup(pid) > 0; ++i) usleep(10 * 1000);
  EXPECT_EQ(LiveInGroup(pid), 0);
}

TEST_F(WorkerProcessTest, AMissingInterpreterIsUnavailable) {
  WorkerSpawn s;
  s.executable = "/nonexistent/python3";
  s.shm_fd = region_->fd();
  auto w = WorkerProcess::Spawn(s);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(w.status().message().find("/nonexistent/python3"), std::string::npos);
}

}  // namespace
}  // namespace ferry::runtime::python
