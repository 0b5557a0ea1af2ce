#pragma once

#include <signal.h>

namespace ferry::cli {

// Blocks SIGTERM and SIGINT in the calling thread (and the threads it starts later, which
// inherit the mask) and ignores SIGPIPE, so the main thread can take the shutdown signal
// synchronously with WaitForShutdownSignal. Call before any thread starts.
inline void BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// Waits for SIGTERM or SIGINT; returns which.
inline int WaitForShutdownSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace ferry::cli
