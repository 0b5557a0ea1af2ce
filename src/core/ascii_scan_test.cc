#include "core/ascii_scan.h"

#include <gtest/gtest.h>

#include <string>

namespace ferry {
namespace {

bool Slow(std::string_view s, bool json_plain) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
    if (json_plain && (c == '"' || c == '\\')) return false;
  }
  return true;
}

// Every byte value at every position of strings of 0 to 20 bytes (whole words and tails).
TEST(PrintableAsciiTest, AgreesWithACharacterAtATimeCheck) {
  for (size_t len = 0; len <= 20; ++len) {
    for (size_t at = 0; at < std::max<size_t>(len, 1); ++at) {
      for (int c = 0; c < 256; ++c) {
        std::string s(len, 'a');
        if (len > 0) s[at] = static_cast<char>(c);
        for (bool json : {false, true}) ASSERT_EQ(PrintableAscii(s, json), Slow(s, json)) << len << " " << at << " " << c;
      }
    }
  }
  EXPECT_TRUE(PrintableAscii("0f8fad5b-d9cb-469f-a165-70867728950e", true));
  EXPECT_FALSE(PrintableAscii("id \"quoted\"", true));
  EXPECT_TRUE(PrintableAscii("id \"quoted\"", false));
}

}  // namespace
}  // namespace ferry
