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

// ParseShortDecimalSse2 on `line` (after 16 bytes of other cells, which it reads but must
// not take in) decides exactly when ParseShortDecimal does (which gave q and v), with the
// same value and end.
template <typename T>
bool SameAsSse2(const std::string& line, const char* q, T v) {
  for (const char* before : {"9876543210123456", "1,2,3,4,5,6,7,8,", "................"}) {
    const std::string text = before + line;
    const char* p = text.data() + 16;
    T got{};
    const char* r = ParseShortDecimalSse2(p, &got);
    if ((r == nullptr) != (q == nullptr) || (r != nullptr && (r - p != q - line.data() || std::memcmp(&got, &v, sizeof v) != 0))) {
      ADD_FAILURE() << "'" << line << "' after '" << before << "': SSE2 path " << (r ? std::to_string(r - p) : "null")
                    << " " << got << ", short path " << (q ? std::to_string(q - line.data()) : "null") << " " << v;
      return false;
    }
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
    const char* q = ParseShortDecimal(line.data(), &fast);
    if (q != nullptr) {
      ++g_short_decided;
      if (!AgreesAlone(line, q, fast)) return false;
    }
    if (!SameAsSse2(line, q, fast)) return false;
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
  // Each also after 16 bytes of digits, which the SSE2 path reads but must not take in:
  // it must give the same.
  auto cell = [](const std::string& text, auto* out) -> int {
    const std::string line = text + ",1.0,2.0,3.0,4.0,5.0,6.0";
    const char* q = ParseShortDecimal(line.data(), out);
    const std::string after = "1234567890123456" + line;
    auto v = *out;
    const char* r = ParseShortDecimalSse2(after.data() + 16, &v);
    EXPECT_EQ(r == nullptr ? -1 : r - after.data() - 16, q == nullptr ? -1 : q - line.data()) << "'" << text << "'";
    if (q != nullptr) {
      EXPECT_EQ(std::memcmp(&v, out, sizeof v), 0) << "'" << text << "'";
    }
    return q == nullptr ? -1 : static_cast<int>(q - line.data());
  };
  float f = 0;
  const struct { const char* text; int end; float value; } floats[] = {
      {"-0.123456791", 12, -0.123456791f}, {".5", 2, 0.5f}, {"7", 1, 7.0f}, {"5.", 2, 5.0f}, {"000000000000007", 15, 7.0f}};
  for (const auto& c : floats) {
    EXPECT_EQ(cell(c.text, &f), c.end) << c.text;
    EXPECT_EQ(f, c.value) << c.text;
  }
  EXPECT_EQ(cell("-0", &f), 2);
  EXPECT_EQ(f, 0.0f);
  EXPECT_TRUE(std::signbit(f));
  double d = 0;
  const struct { const char* text; int end; double value; } doubles[] = {
      {"0.0000000596046", 15, 0.0000000596046}, {"123456789012345", 15, 123456789012345.0},
      {"99999999.999999", 15, 99999999.999999}};
  for (const auto& c : doubles) {
    EXPECT_EQ(cell(c.text, &d), c.end) << c.text;
    EXPECT_EQ(d, c.value) << c.text;
  }
  // Past the case: ParseDecimal decides.
  for (std::string s : {"1.5e3", "2E-7", "1e-45", "1234567890123456", "0.00000000000001", "1.2.3", ".", "-", "", "+1",
                        "nan", "inf", "-inf", " 1"})
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

TEST(Decimal, ShortPathsAgreeWithFromCharsOnMillionsOfRandomFloats) {
  // Every finite float is as likely as any other (all exponents, subnormals included),
  // written as CSV writers write them; then values of a feature table, by "%.9g".
  std::mt19937_64 rng(13);
  std::normal_distribution<float> normal;
  int decided = 0;
  const int short_before = g_short_decided;
  char buf[64];
  for (int i = 0; i < 1000000; ++i) {
    float v;
    if (i % 2 == 0) {
      uint32_t bits = static_cast<uint32_t>(rng());
      std::memcpy(&v, &bits, sizeof v);
      if (!std::isfinite(v)) continue;
    } else {
      v = normal(rng);
    }
    const int n = std::snprintf(buf, sizeof buf, i % 4 < 2 ? "%.9g" : "%.7g", static_cast<double>(v));
    ASSERT_TRUE(Agrees<float>(std::string(buf, static_cast<size_t>(n)), &decided));
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
    ASSERT_TRUE(Agrees<float>(std::string(buf, p), &decided));
    if (i % 8 == 0) {
      ASSERT_TRUE(Agrees<double>(std::string(buf, p), &decided));
    }
  }
  EXPECT_GT(g_short_decided - short_before, 1000000);
}

}  // namespace
}  // namespace ferry::batch
