#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/result.h"

namespace ferry::engine {

struct LaunchSpec {
  std::string binary;              // executable path ("/proc/self/exe": this binary)
  std::vector<std::string> argv;   // argv[0] included
  std::vector<std::string> env;    // "KEY=VALUE", the whole environment
  std::vector<int> cpus;           // CPU affinity; empty = inherit
};

struct LaunchedProcess {
  pid_t pid = -1;
  int output_fd = -1;  // read end of the pipe that is the child's stdout and stderr; caller owns it
};

// Starts a child process. The child:
//  - gets SIGKILL when the thread that launched it exits (PR_SET_PDEATHSIG), so no
//    replica outlives an engine killed with SIGKILL; hence call this from a thread that
//    lives as long as the children (the engine's control thread);
//  - runs in its own process group (a Ctrl-C at the engine's terminal reaches only the
//    engine, which then drains its replicas in order);
//  - starts with an empty signal mask, default SIGPIPE, stdin from /dev/null, and no
//    descriptors of the engine besides stdout/stderr.
// Only async-signal-safe calls run between fork and exec; everything is prepared before.
// Thread-safety: thread-safe.
Result<LaunchedProcess> LaunchChild(const LaunchSpec& spec);

// "exit status 3", "killed by signal 9 (Killed)".
std::string DescribeWaitStatus(int wstatus);

// The environment of this process as "KEY=VALUE" strings.
std::vector<std::string> CurrentEnvironment();

}  // namespace ferry::engine
