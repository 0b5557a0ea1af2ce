#pragma once

#include <cstddef>
#include <string>

namespace ferry {

// A new random (version 4) UUID in its canonical lower-case form,
// "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx": the id the server gives a monitored request
// that came without one, and the id of every CloudEvent. 122 random bits from a
// per-thread generator seeded from the OS, so ids do not repeat across threads,
// processes or restarts in practice; about 50 ns, no lock.
// Thread-safety: thread-safe.
std::string NewRequestId();
// The same into `out` (kRequestIdLength characters, no terminator), for a writer that
// puts the id straight into its own buffer.
inline constexpr size_t kRequestIdLength = 36;
void WriteNewRequestId(char* out);

}  // namespace ferry
