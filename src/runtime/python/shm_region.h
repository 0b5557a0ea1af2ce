#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/result.h"

namespace ferry::runtime::python {

// A shared-memory file (memfd) mapped into this process, which a worker process maps
// too (it inherits the fd). Tensors travel through it both ways; only small messages
// go over the socket. Either side may grow the file (never shrink it, so the peer's
// mapping never points past its end): the server before writing inputs, the worker
// before writing outputs, each telling the other the new size in its message.
// Thread-safety: none; the owning model instance uses it from one thread at a time.
class ShmRegion {
 public:
  // A new region of `size` bytes (> 0), named `name` in /proc/<pid>/fd for debugging.
  static Result<ShmRegion> Create(const std::string& name, uint64_t size);

  ShmRegion(ShmRegion&& other) noexcept;
  ShmRegion& operator=(ShmRegion&& other) noexcept;
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;
  ~ShmRegion();

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }  // bytes mapped here
  std::byte* data() { return data_; }

  // Makes at least `size` bytes available here, growing the file to the next power of
  // two at or above `size` when it is smaller.
  Status Reserve(uint64_t size);
  // Maps the `size` bytes the peer says the file now has. Refuses (naming both sizes)
  // a size larger than the file really is, so a confused peer cannot make reads fault.
  Status MapPeerSize(uint64_t size);

 private:
  ShmRegion(int fd, std::byte* data, uint64_t size) : fd_(fd), data_(data), size_(size) {}
  Status Map(uint64_t size);

  int fd_ = -1;
  std::byte* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace ferry::runtime::python
