#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <arrow/memory_pool.h>

namespace ferry::batch {

// The memory a ParquetInput decodes into: its page buffers, column dictionaries and
// record batches. Why a pool of its own: reading a row group, Arrow keeps every column's
// decompressed page and dictionary alive at once (for a table of random floats the
// dictionary is the whole column), so the first touch of that memory costs one page
// fault per 4 KiB: on 50,000 rows of 256 float32 columns about 25,000 faults, most of
// the system time of the job. This pool hands out blocks from large anonymous mappings
// marked MADV_HUGEPAGE, where the kernel (transparent huge pages in "madvise" or
// "always" mode) fills a fault with a 2 MiB page, and it keeps freed blocks for the
// next request of their size class instead of giving them back, so the next row group's
// and record batch's buffers are faulted in only once.
//
// Requests under kSmallBytes, or aligned past kAlignment, go to Arrow's default pool.
// Larger ones are rounded up to a size class (four per power of two, so at most 25%
// is lost to rounding) and served from a cached free block of that class or carved from
// the current chunk (kChunkBytes, 2 MiB-aligned); a request larger than a chunk gets a
// mapping of its own. Memory comes back to the kernel only when the pool is destroyed.
// Where the kernel has no transparent huge pages the madvise fails and is ignored: the
// pool still reuses blocks.
// Thread-safety: all methods may be called from any thread (one mutex).
class HugePagePool : public arrow::MemoryPool {
 public:
  static constexpr int64_t kSmallBytes = 64 * 1024;
  static constexpr int64_t kAlignment = 64;
  static constexpr int64_t kChunkBytes = 32 * 1024 * 1024;

  HugePagePool();
  ~HugePagePool() override;
  HugePagePool(const HugePagePool&) = delete;
  HugePagePool& operator=(const HugePagePool&) = delete;

  // The process's pool for ParquetInput (never destroyed).
  static HugePagePool* Get();

  arrow::Status Allocate(int64_t size, int64_t alignment, uint8_t** out) override;
  arrow::Status Reallocate(int64_t old_size, int64_t new_size, int64_t alignment, uint8_t** ptr) override;
  void Free(uint8_t* buffer, int64_t size, int64_t alignment) override;

  int64_t bytes_allocated() const override;
  int64_t max_memory() const override;
  int64_t total_bytes_allocated() const override;
  int64_t num_allocations() const override;
  std::string backend_name() const override { return "ferry-hugepage"; }

  // Bytes mapped from the kernel so far (chunks and large mappings).
  int64_t bytes_mapped() const;
  // The size class a request of `size` bytes (>= kSmallBytes) is rounded up to.
  static int64_t ClassBytes(int64_t size);

 private:
  bool Ours(int64_t size, int64_t alignment) const { return size >= kSmallBytes && alignment <= kAlignment; }
  static size_t ClassIndex(int64_t size);
  // REQUIRES: mu_ held.
  uint8_t* Carve(int64_t bytes);

  arrow::MemoryPool* const small_;  // Arrow's default pool, not owned
  mutable std::mutex mu_;
  std::vector<std::vector<uint8_t*>> free_;  // per size class: blocks to hand out again
  std::vector<std::pair<void*, size_t>> mappings_;
  uint8_t* chunk_ = nullptr;  // the rest of the current chunk
  int64_t chunk_left_ = 0;
  int64_t mapped_ = 0;
  int64_t in_use_ = 0;  // ours, in class bytes
  int64_t peak_ = 0;
  int64_t total_ = 0;
  int64_t count_ = 0;
};

}  // namespace ferry::batch
