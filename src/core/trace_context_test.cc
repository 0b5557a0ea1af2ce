#include "core/trace_context.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(TraceContextTest, ParsesAndFormatsTheW3CExample) {
  auto c = TraceContext::Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->sampled);
  EXPECT_EQ(Hex(c->trace_id.data(), 16), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(Hex(c->span_id.data(), 8), "00f067aa0ba902b7");
  EXPECT_EQ(c->Format(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto unsampled = TraceContext::Parse(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 ");
  ASSERT_TRUE(unsampled.has_value());
  EXPECT_FALSE(unsampled->sampled);
  // A later version: the first four fields count, more may follow.
  EXPECT_TRUE(TraceContext::Parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever").has_value());
}

TEST(TraceContextTest, RefusesWhatIsNotATraceparent) {
  for (const char* bad : {"", "garbage", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                          "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    EXPECT_FALSE(TraceContext::Parse(bad).has_value()) << bad;
}

TEST(TraceContextTest, NewIdsAreNonZeroAndDiffer) {
  EXPECT_NE(TraceContext::NewTraceId(), TraceContext::NewTraceId());
  EXPECT_NE(TraceContext::NewSpanId(), (std::array<uint8_t, 8>{}));
}

}  // namespace
}  // namespace ferry
