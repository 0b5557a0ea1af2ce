#pragma once

#include <cstddef>
#include <string>

namespace ferry {

// A new id in the canonical lower-case form of a version 4 UUID,
// "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx": the id the server gives a monitored request
// that came without one, and the id of every CloudEvent. Unique, not unpredictable: its
// first 60 bits are drawn once per thread from a generator seeded from the OS, its last
// 62 are a per-thread counter that starts at a random value below 2^61, so ids do not
// repeat across threads, processes, replicas or restarts in practice (two threads share
// a prefix with probability about 2^-60), and the next id of a thread is the last one
// plus one. A few dozen instructions, no lock.
// Thread-safety: thread-safe.
std::string NewRequestId();
// The same into `out` (kRequestIdLength characters, no terminator), for a writer that
// puts the id straight into its own buffer.
inline constexpr size_t kRequestIdLength = 36;
void WriteNewRequestId(char* out);

}  // namespace ferry
