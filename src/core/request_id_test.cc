#include "core/request_id.h"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace ferry {
namespace {

TEST(RequestIdTest, IsACanonicalVersion4Uuid) {
  for (int i = 0; i < 100; ++i) {
    std::string id = NewRequestId();
    ASSERT_EQ(id.size(), 36u) << id;
    for (size_t p : {8u, 13u, 18u, 23u}) EXPECT_EQ(id[p], '-') << id;
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
    for (size_t p = 0; p < id.size(); ++p) {
      if (id[p] == '-') continue;
      EXPECT_NE(std::string("0123456789abcdef").find(id[p]), std::string::npos) << id;
    }
  }
}

TEST(RequestIdTest, WritesExactlyOneIdInPlace) {
  std::string buf(kRequestIdLength + 2, '#');
  WriteNewRequestId(buf.data() + 1);
  EXPECT_EQ(buf.front(), '#');
  EXPECT_EQ(buf.back(), '#');
  const std::string id = buf.substr(1, kRequestIdLength);
  for (size_t p : {8u, 13u, 18u, 23u}) EXPECT_EQ(id[p], '-') << id;
  EXPECT_EQ(id[14], '4') << id;
  EXPECT_EQ(id.find('#'), std::string::npos) << id;
}

TEST(RequestIdTest, EveryRandomDigitTakesEveryValue) {
  // Each of the 30 fully random hex positions shows all 16 digits over 2,000 ids (a
  // digit that misses one is about 16 * (15/16)^2000 likely): the bits reach every place.
  std::vector<std::set<char>> seen(kRequestIdLength);
  for (int i = 0; i < 2000; ++i) {
    const std::string id = NewRequestId();
    for (size_t p = 0; p < id.size(); ++p) seen[p].insert(id[p]);
  }
  for (size_t p = 0; p < kRequestIdLength; ++p) {
    if (p == 8 || p == 13 || p == 18 || p == 23) continue;
    const size_t want = p == 14 ? 1 : p == 19 ? 4 : 16;  // the version; the variant (8, 9, a, b)
    EXPECT_EQ(seen[p].size(), want) << "position " << p;
  }
}

TEST(RequestIdTest, DoesNotRepeatAcrossThreads) {
  std::mutex mu;
  std::set<std::string> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      std::vector<std::string> mine;
      for (int i = 0; i < 10000; ++i) mine.push_back(NewRequestId());
      std::lock_guard lock(mu);
      seen.insert(mine.begin(), mine.end());
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.size(), 40000u);
}

}  // namespace
}  // namespace ferry
