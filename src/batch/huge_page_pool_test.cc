#include "batch/huge_page_pool.h"

#include <cstring>
#include <numeric>
#include <vector>

#include <arrow/buffer.h>
#include <gtest/gtest.h>

namespace ferry::batch {
namespace {

TEST(HugePagePool, SizeClassesAreFourPerPowerOfTwo) {
  constexpr int64_t k = HugePagePool::kSmallBytes;
  EXPECT_EQ(HugePagePool::ClassBytes(k), k);
  EXPECT_EQ(HugePagePool::ClassBytes(k + 1), k + k / 4);
  EXPECT_EQ(HugePagePool::ClassBytes(k + k / 4), k + k / 4);
  EXPECT_EQ(HugePagePool::ClassBytes(k + k / 4 + 1), k + k / 2);
  EXPECT_EQ(HugePagePool::ClassBytes(2 * k - 1), 2 * k);
  EXPECT_EQ(HugePagePool::ClassBytes(200'000), 229'376);  // 1.75 * 2^17
  for (int64_t s = k; s < 64 * k; s += 4093) {
    const int64_t c = HugePagePool::ClassBytes(s);
    EXPECT_GE(c, s);
    EXPECT_LE(c, s + s / 4) << s;
    EXPECT_EQ(c % HugePagePool::kAlignment, 0) << s;
  }
}

TEST(HugePagePool, FreedBlocksAreHandedOutAgainAndNothingIsMappedTwice) {
  HugePagePool pool;
  uint8_t* a = nullptr;
  ASSERT_TRUE(pool.Allocate(200'000, 64, &a).ok());
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  std::memset(a, 7, 200'000);  // the block is writable to its end
  EXPECT_EQ(pool.bytes_allocated(), HugePagePool::ClassBytes(200'000));
  const int64_t mapped = pool.bytes_mapped();
  EXPECT_EQ(mapped, HugePagePool::kChunkBytes);
  pool.Free(a, 200'000, 64);
  EXPECT_EQ(pool.bytes_allocated(), 0);
  uint8_t* b = nullptr;
  ASSERT_TRUE(pool.Allocate(199'000, 64, &b).ok());  // same class
  EXPECT_EQ(b, a);
  // Blocks of one chunk do not overlap.
  std::vector<uint8_t*> blocks;
  for (int i = 0; i < 100; ++i) {
    uint8_t* p = nullptr;
    ASSERT_TRUE(pool.Allocate(100'000, 64, &p).ok());
    std::memset(p, i, 100'000);
    blocks.push_back(p);
  }
  for (int i = 0; i < 100; ++i) EXPECT_EQ(blocks[static_cast<size_t>(i)][99'999], static_cast<uint8_t>(i));
  EXPECT_EQ(pool.bytes_mapped(), mapped);  // 100 * 128 KiB fits the first chunk
  for (uint8_t* p : blocks) pool.Free(p, 100'000, 64);
  pool.Free(b, 199'000, 64);
  EXPECT_EQ(pool.bytes_allocated(), 0);
  EXPECT_EQ(pool.num_allocations(), 102);
}

TEST(HugePagePool, SmallAndOverAlignedRequestsGoToArrowsPoolAndLargeOnesToMappingsOfTheirOwn) {
  HugePagePool pool;
  uint8_t* small = nullptr;
  ASSERT_TRUE(pool.Allocate(100, 64, &small).ok());
  uint8_t* aligned = nullptr;
  ASSERT_TRUE(pool.Allocate(1 << 20, 4096, &aligned).ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(aligned) % 4096, 0u);
  EXPECT_EQ(pool.bytes_mapped(), 0);
  EXPECT_EQ(pool.bytes_allocated(), 100 + (1 << 20));
  pool.Free(small, 100, 64);
  pool.Free(aligned, 1 << 20, 4096);
  uint8_t* big = nullptr;
  ASSERT_TRUE(pool.Allocate(HugePagePool::kChunkBytes, 64, &big).ok());
  big[HugePagePool::kChunkBytes - 1] = 1;
  EXPECT_EQ(pool.bytes_mapped(), HugePagePool::kChunkBytes);  // its own mapping, no chunk
  pool.Free(big, HugePagePool::kChunkBytes, 64);
  EXPECT_EQ(pool.bytes_allocated(), 0);
}

TEST(HugePagePool, ReallocateKeepsTheBytesAcrossClassesAndPools) {
  HugePagePool pool;
  uint8_t* p = nullptr;
  ASSERT_TRUE(pool.Allocate(1000, 64, &p).ok());
  std::iota(p, p + 1000, uint8_t{0});
  // Small -> ours -> a larger class of ours -> the same class (in place) -> small again.
  int64_t size = 1000;
  for (int64_t next : {int64_t{100'000}, int64_t{300'000}, int64_t{310'000}, int64_t{500}}) {
    uint8_t* before = p;
    ASSERT_TRUE(pool.Reallocate(size, next, 64, &p).ok());
    if (next == 310'000) EXPECT_EQ(p, before);
    for (int64_t i = 0; i < std::min<int64_t>({size, next, 1000}); ++i)
      ASSERT_EQ(p[i], static_cast<uint8_t>(i)) << "after " << size << " -> " << next;
    size = next;
  }
  pool.Free(p, size, 64);
  EXPECT_EQ(pool.bytes_allocated(), 0);
}

TEST(HugePagePool, ServesArrowBuffers) {
  HugePagePool pool;
  auto b = arrow::AllocateResizableBuffer(10, &pool);
  ASSERT_TRUE(b.ok());
  for (int64_t n : {int64_t{70'000}, int64_t{1'000'000}, int64_t{3}}) {
    ASSERT_TRUE((*b)->Resize(n).ok());
    std::memset((*b)->mutable_data(), 1, static_cast<size_t>(n));
  }
  b->reset();
  EXPECT_EQ(pool.bytes_allocated(), 0);
}

}  // namespace
}  // namespace ferry::batch
