#include "runtime/python/shm_region.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ferry::runtime::python {

namespace {
std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }
}  // namespace

Result<ShmRegion> ShmRegion::Create(const std::string& name, uint64_t size) {
  if (size == 0) return InvalidArgument("a shared-memory region needs a size");
  // Not CLOEXEC-free: the spawn dup2()s it onto the worker's fd 4, which clears the
  // flag on that copy only.
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) return Internal(Errno("memfd_create"));
  ShmRegion region(fd, nullptr, 0);
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) return Internal(Errno("sizing shared memory"));
  FERRY_RETURN_IF_ERROR(region.Map(size));
  return region;
}

ShmRegion::ShmRegion(ShmRegion&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

ShmRegion& ShmRegion::operator=(ShmRegion&& other) noexcept {
  if (this != &other) {
    this->~ShmRegion();
    fd_ = std::exchange(other.fd_, -1);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

ShmRegion::~ShmRegion() {
  if (data_ != nullptr) munmap(data_, size_);
  if (fd_ >= 0) close(fd_);
}

Status ShmRegion::Map(uint64_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) return Internal(Errno("mapping " + std::to_string(size) + " bytes of shared memory"));
  if (data_ != nullptr) munmap(data_, size_);
  data_ = static_cast<std::byte*>(p);
  size_ = size;
  return Status::Ok();
}

Status ShmRegion::Reserve(uint64_t size) {
  if (size <= size_) return Status::Ok();
  uint64_t grown = size_ == 0 ? 4096 : size_;
  while (grown < size) grown *= 2;
  struct stat st {};
  if (fstat(fd_, &st) != 0) return Internal(Errno("fstat of shared memory"));
  if (static_cast<uint64_t>(st.st_size) < grown && ftruncate(fd_, static_cast<off_t>(grown)) != 0)
    return ResourceExhausted(Errno("growing shared memory to " + std::to_string(grown) + " bytes"));
  return Map(grown);
}

Status ShmRegion::MapPeerSize(uint64_t size) {
  if (size <= size_) return Status::Ok();
  struct stat st {};
  if (fstat(fd_, &st) != 0) return Internal(Errno("fstat of shared memory"));
  if (static_cast<uint64_t>(st.st_size) < size)
    return Internal("the worker says shared memory holds " + std::to_string(size) + " bytes but the file has " +
                    std::to_string(st.st_size));
  return Map(size);
}

}  // namespace ferry::runtime::python
