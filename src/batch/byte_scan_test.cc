#include "batch/byte_scan.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ferry::batch {
namespace {

using Finder = size_t (*)(const char*, const char*, char, const char**, size_t);

// FindByte, and each of its paths that this CPU can run.
std::vector<Finder> Finders() {
  std::vector<Finder> f = {FindByte, byte_scan_internal::FindByteSse2};
  if (byte_scan_internal::HasAvx2()) f.push_back(byte_scan_internal::FindByteAvx2);
  return f;
}

TEST(FindByte, FindsEveryOccurrenceInOrderAtEveryLengthAndDensity) {
  for (Finder find : Finders()) {
    std::mt19937 rng(7);
    for (int trial = 0; trial < 20000; ++trial) {
      const size_t len = rng() % 300;
      const unsigned density = 1 + rng() % 16;  // 1: every byte is one
      std::string s(len, 'x');
      for (auto& ch : s) ch = rng() % density == 0 ? ',' : static_cast<char>('0' + rng() % 10);
      std::vector<size_t> want;
      for (size_t i = 0; i < s.size(); ++i)
        if (s[i] == ',') want.push_back(i);
      std::vector<const char*> out(want.size() + 64);
      ASSERT_EQ(find(s.data(), s.data() + s.size(), ',', out.data(), want.size()), want.size()) << s;
      for (size_t k = 0; k < want.size(); ++k) ASSERT_EQ(out[k] - s.data(), static_cast<ptrdiff_t>(want[k])) << s;
      // One fewer allowed: the count comes back above the cap.
      if (!want.empty()) {
        ASSERT_GT(find(s.data(), s.data() + s.size(), ',', out.data(), want.size() - 1), want.size() - 1) << s;
      }
    }
  }
}

TEST(FindByte, StopsPastTheCap) {
  for (Finder find : Finders()) {
    const std::string s(100000, ',');
    std::vector<const char*> out(3 + 64);
    EXPECT_GT(find(s.data(), s.data() + s.size(), ',', out.data(), 3), 3u);
    const std::string few = "1,2,3";
    EXPECT_EQ(find(few.data(), few.data() + few.size(), ',', out.data(), 3), 2u);
    EXPECT_EQ(find(few.data(), few.data(), ',', out.data(), 3), 0u);
  }
}

}  // namespace
}  // namespace ferry::batch
