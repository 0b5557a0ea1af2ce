#include "batch/huge_page_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstring>

namespace ferry::batch {
namespace {

constexpr size_t kHugePage = 2 * 1024 * 1024;
// Past this a request gets a mapping of its own, so that at most a quarter of a chunk is
// left unused at its end.
constexpr int64_t kOwnMappingBytes = HugePagePool::kChunkBytes / 4;

// `bytes` (a multiple of kHugePage) of fresh anonymous memory at a kHugePage-aligned
// address, marked for huge pages; null when the kernel refuses the mapping.
void* MapAligned(size_t bytes) {
  void* p = mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > start) munmap(p, aligned - start);
  const uintptr_t end = start + bytes + kHugePage;
  if (end > aligned + bytes) munmap(reinterpret_cast<void*>(aligned + bytes), end - (aligned + bytes));
  // Fails where the kernel has no transparent huge pages; the memory is still good.
  (void)madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

HugePagePool::HugePagePool() : small_(arrow::default_memory_pool()) {}

HugePagePool::~HugePagePool() {
  for (const auto& [p, n] : mappings_) munmap(p, n);
}

HugePagePool* HugePagePool::Get() {
  static HugePagePool* const pool = new HugePagePool();  // outlives every reader
  return pool;
}

size_t HugePagePool::ClassIndex(int64_t size) {
  // Four classes per power of two: 2^k, 1.25 * 2^k, 1.5 * 2^k, 1.75 * 2^k.
  const auto s = static_cast<uint64_t>(size);
  const int k = 63 - std::countl_zero(s);  // 2^k <= s < 2^(k+1)
  const uint64_t quarter = (uint64_t{1} << k) / 4;
  const uint64_t steps = (s - (uint64_t{1} << k) + quarter - 1) / quarter;  // 0..4
  return static_cast<size_t>(k) * 4 + static_cast<size_t>(steps);
}

int64_t HugePagePool::ClassBytes(int64_t size) {
  const size_t i = ClassIndex(size);
  const uint64_t base = uint64_t{1} << (i / 4);
  return static_cast<int64_t>(base + (base / 4) * (i % 4));
}

uint8_t* HugePagePool::Carve(int64_t bytes) {
  if (bytes > kOwnMappingBytes) {
    const size_t n = RoundUp(static_cast<size_t>(bytes), kHugePage);
    void* p = MapAligned(n);
    if (p == nullptr) return nullptr;
    mappings_.emplace_back(p, n);
    mapped_ += static_cast<int64_t>(n);
    return static_cast<uint8_t*>(p);
  }
  if (chunk_left_ < bytes) {
    void* p = MapAligned(static_cast<size_t>(kChunkBytes));
    if (p == nullptr) return nullptr;
    mappings_.emplace_back(p, static_cast<size_t>(kChunkBytes));
    mapped_ += kChunkBytes;
    chunk_ = static_cast<uint8_t*>(p);
    chunk_left_ = kChunkBytes;
  }
  uint8_t* out = chunk_;
  chunk_ += bytes;
  chunk_left_ -= bytes;
  return out;
}

arrow::Status HugePagePool::Allocate(int64_t size, int64_t alignment, uint8_t** out) {
  if (size < 0) return arrow::Status::Invalid("negative allocation size");
  if (!Ours(size, alignment)) {
    ARROW_RETURN_NOT_OK(small_->Allocate(size, alignment, out));
    std::lock_guard<std::mutex> lock(mu_);
    in_use_ += size;
    peak_ = std::max(peak_, in_use_);
    total_ += size;
    ++count_;
    return arrow::Status::OK();
  }
  const size_t c = ClassIndex(size);
  const int64_t bytes = ClassBytes(size);
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.size() <= c) free_.resize(c + 1);
  uint8_t* p = nullptr;
  if (!free_[c].empty()) {
    p = free_[c].back();
    free_[c].pop_back();
  } else {
    p = Carve(bytes);
    if (p == nullptr) return arrow::Status::OutOfMemory("HugePagePool: cannot map ", bytes, " bytes");
  }
  in_use_ += bytes;
  peak_ = std::max(peak_, in_use_);
  total_ += size;
  ++count_;
  *out = p;
  return arrow::Status::OK();
}

arrow::Status HugePagePool::Reallocate(int64_t old_size, int64_t new_size, int64_t alignment, uint8_t** ptr) {
  if (new_size < 0) return arrow::Status::Invalid("negative allocation size");
  const bool was_ours = Ours(old_size, alignment), will_be_ours = Ours(new_size, alignment);
  if (!was_ours && !will_be_ours) {
    ARROW_RETURN_NOT_OK(small_->Reallocate(old_size, new_size, alignment, ptr));
    std::lock_guard<std::mutex> lock(mu_);
    in_use_ += new_size - old_size;
    peak_ = std::max(peak_, in_use_);
    total_ += std::max<int64_t>(0, new_size - old_size);
    ++count_;
    return arrow::Status::OK();
  }
  if (was_ours && will_be_ours && ClassIndex(old_size) == ClassIndex(new_size)) {
    std::lock_guard<std::mutex> lock(mu_);
    total_ += std::max<int64_t>(0, new_size - old_size);
    ++count_;
    return arrow::Status::OK();  // the block already holds new_size bytes
  }
  uint8_t* fresh = nullptr;
  ARROW_RETURN_NOT_OK(Allocate(new_size, alignment, &fresh));
  if (old_size > 0) std::memcpy(fresh, *ptr, static_cast<size_t>(std::min(old_size, new_size)));
  Free(*ptr, old_size, alignment);
  *ptr = fresh;
  return arrow::Status::OK();
}

void HugePagePool::Free(uint8_t* buffer, int64_t size, int64_t alignment) {
  if (!Ours(size, alignment)) {
    small_->Free(buffer, size, alignment);
    std::lock_guard<std::mutex> lock(mu_);
    in_use_ -= size;
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  free_[ClassIndex(size)].push_back(buffer);  // Allocate made the list
  in_use_ -= ClassBytes(size);
}

int64_t HugePagePool::bytes_allocated() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_;
}

int64_t HugePagePool::max_memory() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

int64_t HugePagePool::total_bytes_allocated() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

int64_t HugePagePool::num_allocations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

int64_t HugePagePool::bytes_mapped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return mapped_;
}

}  // namespace ferry::batch
