#include "server/response_cache.h"

#include <gtest/gtest.h>

namespace ferry::server {
namespace {

Tensor Bytes(std::string name, std::string data) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = DataType::kUint8;
  t.shape = {static_cast<int64_t>(data.size())};
  t.Own(std::move(data));
  return t;
}

TEST(ResponseCacheTest, KeysDependOnVersionInputsAndOutputs) {
  std::vector<Tensor> in = {Bytes("x", "abc")};
  auto k = ResponseCache::MakeKey(1, in, {"y"});
  EXPECT_TRUE(k == ResponseCache::MakeKey(1, in, {"y"}));
  EXPECT_FALSE(k == ResponseCache::MakeKey(2, in, {"y"}));  // another load of the model
  EXPECT_FALSE(k == ResponseCache::MakeKey(1, {Bytes("x", "abd")}, {"y"}));
  EXPECT_FALSE(k == ResponseCache::MakeKey(1, in, {"z"}));
  Tensor reshaped = Bytes("x", "abc");
  reshaped.shape = {1, 3};
  EXPECT_FALSE(k == ResponseCache::MakeKey(1, {reshaped}, {"y"}));
}

TEST(ResponseCacheTest, EvictsLeastRecentlyUsedWithinTheBound) {
  ResponseCache cache(3 * (1000 + 1 + 64));
  auto key = [](int i) { return ResponseCache::MakeKey(i, {}, {}); };
  for (int i = 0; i < 3; ++i) cache.Insert(key(i), {Bytes("y", std::string(1000, 'a' + i))});
  EXPECT_EQ(cache.entries(), 3u);
  ASSERT_TRUE(cache.Lookup(key(0)).has_value());  // 0 is now the most recent
  cache.Insert(key(3), {Bytes("y", std::string(1000, 'd'))});
  EXPECT_FALSE(cache.Lookup(key(1)).has_value());  // the least recent went
  auto hit = cache.Lookup(key(0));
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ((*hit)[0].bytes(), std::string(1000, 'a'));
  cache.Insert(key(9), {Bytes("y", std::string(100000, 'z'))});  // larger than the cache
  EXPECT_FALSE(cache.Lookup(key(9)).has_value());
  EXPECT_LE(cache.size_bytes(), 3u * 1065);
}

}  // namespace
}  // namespace ferry::server
