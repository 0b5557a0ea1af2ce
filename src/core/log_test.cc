#include "core/log.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(LogTest, TextLineQuotesValuesThatNeedIt) {
  auto line = FormatLogLine(LogFormat::kText, "2026-12-01T00:00:00.000Z", LogLevel::kWarning, "model loaded",
                            LogFields()("model", "add_sub")("error", "a \"b\"\nc")("n", 3));
  EXPECT_EQ(line,
            "ts=2026-12-01T00:00:00.000Z level=warning msg=\"model loaded\" model=add_sub error=\"a \\\"b\\\"\\nc\" n=3");
}

TEST(LogTest, JsonLineEscapesEveryValue) {
  auto line = FormatLogLine(LogFormat::kJson, "2026-12-01T00:00:00.000Z", LogLevel::kInfo, "say \"hi\"",
                            LogFields()("model", "add_sub")("path", "C:\\x")("ctl", std::string("a\x01\tb")));
  EXPECT_EQ(line,
            "{\"ts\":\"2026-12-01T00:00:00.000Z\",\"level\":\"info\",\"msg\":\"say \\\"hi\\\"\",\"model\":\"add_sub\","
            "\"path\":\"C:\\\\x\",\"ctl\":\"a\\u0001\\tb\"}");
}

TEST(LogTest, ParsesFormats) {
  LogFormat f;
  EXPECT_TRUE(ParseLogFormat("json", &f));
  EXPECT_EQ(f, LogFormat::kJson);
  EXPECT_TRUE(ParseLogFormat("text", &f));
  EXPECT_EQ(f, LogFormat::kText);
  EXPECT_FALSE(ParseLogFormat("JSON ", &f));
}

}  // namespace
}  // namespace ferry
