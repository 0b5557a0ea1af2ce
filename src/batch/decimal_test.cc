#include "batch/decimal.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace ferry::batch {
namespace {

// Whenever ParseDecimal decides, it must agree with std::from_chars bit for bit and
// stop where it stops.
template <typename T>
bool AgreesAlone(const std::string& s, const char* q, T fast) {
  T ref{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), ref);
  if (ec != std::errc()) {
    ADD_FAILURE() << "'" << s << "': fast path decided, from_chars refused";
    return false;
  }
  if (p != q) {
    ADD_FAILURE() << "'" << s << "': fast path stopped at " << (q - s.data()) << ", from_chars at " << (p - s.data());
    return false;
  }
  if (std::memcmp(&fast, &ref, sizeof(T)) != 0) {
    ADD_FAILURE() << "'" << s << "': fast " << fast << " vs from_chars " << ref;
    return false;
  }
  return true;
}

// Whenever ParseDecimal (on s alone) or ParseShortDecimal (on s followed by a cell
// separator and more text, as in a CSV line) decides, it must agree with
// std::from_chars bit for bit and stop where it stops.
int g_short_decided = 0;
template <typename T>
bool Agrees(const std::string& s, int* decided) {
  T fast{};
  if (const char* q = ParseDecimal(s.data(), s.data() + s.size(), &fast)) {
    ++*decided;
    if (!AgreesAlone(s, q, fast)) return false;
  }
  for (const char* tail : {",0.5,1,2,3,4,5,6,7,8", "\n9999999999999999", "e5,xxxxxxxxxxxxxxxxxx", "0000000000000000000"}) {
    const std::string line = s + tail;
    if (const char* q = ParseShortDecimal(line.data(), &fast)) {
      ++g_short_decided;
      if (!AgreesAlone(line, q, fast)) return false;
    }
  }
  return true;
}

TEST(Decimal, ReadsPlainNumbers) {
  float f = 0;
  const std::string s = "-1.25e-3,next";
  const char* q = ParseDecimal(s.data(), s.data() + s.size(), &f);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(*q, ',');
  EXPECT_EQ(f, -1.25e-3f);
  double d = 0;
  const std::string t = "42";
  ASSERT_EQ(ParseDecimal(t.data(), t.data() + t.size(), &d), t.data() + t.size());
  EXPECT_EQ(d, 42.0);
  const std::string z = "-0";
  ASSERT_NE(ParseDecimal(z.data(), z.data() + z.size(), &f), nullptr);
  EXPECT_TRUE(std::signbit(f));
}

TEST(Decimal, ShortPathReadsACellAndStopsAtItsEnd) {
  // Each cell as it sits in a CSV line, with the next cells after it.
  auto cell = [](const std::string& text, auto* out) -> int {
    const std::string line = text + ",1.0,2.0,3.0,4.0,5.0,6.0";
    const char* q = ParseShortDecimal(line.data(), out);
    return q == nullptr ? -1 : static_cast<int>(q - line.data());
  };
  float f = 0;
  EXPECT_EQ(cell("-0.123456791", &f), 12);
  EXPECT_EQ(f, -0.123456791f);
  EXPECT_EQ(cell(".5", &f), 2);
  EXPECT_EQ(f, 0.5f);
  EXPECT_EQ(cell("7", &f), 1);
  EXPECT_EQ(f, 7.0f);
  EXPECT_EQ(cell("-0", &f), 2);
  EXPECT_EQ(f, 0.0f);
  EXPECT_TRUE(std::signbit(f));
  double d = 0;
  EXPECT_EQ(cell("0.0000000596046", &d), 15);
  EXPECT_EQ(d, 0.0000000596046);
  EXPECT_EQ(cell("123456789012345", &d), 15);
  EXPECT_EQ(d, 123456789012345.0);
  // Past the case: ParseDecimal decides.
  for (std::string s : {"1.5e3", "2E-7", "1234567890123456", "0.00000000000001", "1.2.3", ".", "-", "", "+1", "nan"})
    EXPECT_EQ(cell(s, &f), -1) << "'" << s << "'";
}

TEST(Decimal, LeavesWhatItCannotProveToFromChars) {
  float f;
  for (std::string s : {"", "-", ".", "e5", "1e", "1e+", "inf", "nan", "+1", " 1", "12345678901234567890",
                        "1e-50", "1e39", "1e23", "0e999"})
    EXPECT_EQ(ParseDecimal(s.data(), s.data() + s.size(), &f), nullptr) << "'" << s << "'";
  // 2^-149 * 3 / 2 ... a value exactly halfway between two floats: 1 + 2^-24.
  const std::string half = "1.000000059604644775390625";  // more than 19 digits: from_chars decides
  EXPECT_EQ(ParseDecimal(half.data(), half.data() + half.size(), &f), nullptr);
  const std::string tie = "16777217";  // 2^24 + 1: halfway between 2^24 and 2^24 + 2
  EXPECT_EQ(ParseDecimal(tie.data(), tie.data() + tie.size(), &f), nullptr);
}

TEST(Decimal, AgreesWithFromCharsOnWhatWritersProduce) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> exp(-40, 38);
  int decided_f = 0, decided_d = 0, total = 0;
  char buf[64];
  for (int i = 0; i < 100000; ++i) {
    float v = normal(rng);
    if (i % 3 == 0) v = static_cast<float>(v * std::pow(10.0, exp(rng)));
    for (const char* fmt : {"%.9g", "%.6g", "%g", "%.3f", "%.12e"}) {
      std::snprintf(buf, sizeof buf, fmt, static_cast<double>(v));
      ++total;
      ASSERT_TRUE(Agrees<float>(buf, &decided_f));
      ASSERT_TRUE(Agrees<double>(buf, &decided_d));
    }
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
    ASSERT_TRUE(Agrees<float>(std::string(buf, p), &decided_f));
  }
  // Most of them take the fast path (or it would be no use), and the short path too.
  EXPECT_GT(decided_f, total / 2);
  EXPECT_GT(decided_d, total / 2);
  EXPECT_GT(g_short_decided, total / 2);
}

TEST(Decimal, AgreesWithFromCharsNearHalfwayPointsAndOnOddText) {
  std::mt19937_64 rng(11);
  int decided = 0;
  char buf[400];
  // Decimal texts of values halfway between adjacent floats, and next to them.
  for (int i = 0; i < 100000; ++i) {
    uint32_t bits = static_cast<uint32_t>(rng()) & 0x7f7fffffu;
    if ((bits >> 23) == 0) bits |= 1u << 23;  // normal floats
    float a;
    std::memcpy(&a, &bits, sizeof a);
    const double mid = (static_cast<double>(a) + static_cast<double>(std::nextafter(a, INFINITY))) / 2;
    for (int digits : {9, 12, 15, 17, 19}) {
      std::snprintf(buf, sizeof buf, "%.*g", digits - 1, mid);
      ASSERT_TRUE(Agrees<float>(buf, &decided));
      ASSERT_TRUE(Agrees<double>(buf, &decided));
    }
  }
  // The same between 0.001 and 1000, where the texts are short enough (15 digits at
  // most, no exponent) for ParseShortDecimal to decide.
  std::uniform_real_distribution<float> unit(0.001f, 1000.0f);
  for (int i = 0; i < 200000; ++i) {
    const float a = unit(rng);
    const double mid = (static_cast<double>(a) + static_cast<double>(std::nextafter(a, INFINITY))) / 2;
    for (int digits : {13, 14, 15}) {
      std::snprintf(buf, sizeof buf, "%.*g", digits, mid);
      ASSERT_TRUE(Agrees<float>(buf, &decided));
    }
  }
  // Random short strings of number characters.
  const char alphabet[] = "0123456789.-+eE";
  for (int i = 0; i < 300000; ++i) {
    std::string s(1 + rng() % 12, ' ');
    for (auto& c : s) c = alphabet[rng() % (sizeof alphabet - 1)];
    ASSERT_TRUE(Agrees<float>(s, &decided));
    ASSERT_TRUE(Agrees<double>(s, &decided));
  }
  // Integers around 2^24 and 2^53, where float and double stop being exact.
  for (uint64_t base : {uint64_t{1} << 24, uint64_t{1} << 25, uint64_t{1} << 53})
    for (uint64_t k = base - 40; k < base + 40; ++k) {
      const std::string s = std::to_string(k);
      ASSERT_TRUE(Agrees<float>(s, &decided));
      ASSERT_TRUE(Agrees<double>(s, &decided));
    }
}

}  // namespace
}  // namespace ferry::batch
