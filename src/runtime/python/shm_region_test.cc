#include "runtime/python/shm_region.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

namespace ferry::runtime::python {
namespace {

TEST(ShmRegionTest, GrowsToAPowerOfTwoAndKeepsItsBytes) {
  auto region = ShmRegion::Create("test", 4096);
  ASSERT_TRUE(region.ok()) << region.status().message();
  std::memcpy(region->data(), "hello", 5);
  ASSERT_TRUE(region->Reserve(10000).ok());
  EXPECT_EQ(region->size(), 16384u);
  EXPECT_EQ(std::memcmp(region->data(), "hello", 5), 0);
  ASSERT_TRUE(region->Reserve(100).ok());  // never shrinks
  EXPECT_EQ(region->size(), 16384u);
}

TEST(ShmRegionTest, SeesWhatAnotherMappingWrites) {
  auto region = ShmRegion::Create("test", 4096);
  ASSERT_TRUE(region.ok());
  // A second mapping of the same fd, as the worker has.
  void* peer = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, region->fd(), 0);
  ASSERT_NE(peer, MAP_FAILED);
  std::memcpy(static_cast<char*>(peer) + 100, "from the worker", 15);
  EXPECT_EQ(std::memcmp(region->data() + 100, "from the worker", 15), 0);
  munmap(peer, 4096);
}

TEST(ShmRegionTest, MapsWhatThePeerGrewButNoMore) {
  auto region = ShmRegion::Create("test", 4096);
  ASSERT_TRUE(region.ok());
  ASSERT_EQ(ftruncate(region->fd(), 8192), 0);  // the worker grew the file
  ASSERT_TRUE(region->MapPeerSize(8192).ok());
  EXPECT_EQ(region->size(), 8192u);
  Status lie = region->MapPeerSize(1 << 20);
  ASSERT_FALSE(lie.ok());
  EXPECT_NE(lie.message().find("8192"), std::string::npos);
  EXPECT_EQ(region->size(), 8192u);
}

}  // namespace
}  // namespace ferry::runtime::python
