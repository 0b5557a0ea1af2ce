#include "protocol/grpc/grpc_framing.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ferry::protocol::grpc_wire {
namespace {

std::string Framed(std::string_view body, bool compressed = false) {
  std::string out;
  AppendMessagePrefix(&out, compressed, static_cast<uint32_t>(body.size()));
  out.append(body);
  return out;
}

struct Collected {
  std::vector<std::string> messages;
  std::vector<bool> compressed;
  std::vector<bool> borrowed;  // the view pointed into the piece fed, not a copy
};

Status FeedAll(MessageDeframer* d, std::string_view piece, Collected* c) {
  return d->Feed(piece, [&](const Message& m) {
    c->messages.emplace_back(m.bytes);
    c->compressed.push_back(m.compressed);
    c->borrowed.push_back(m.bytes.data() >= piece.data() && m.bytes.data() < piece.data() + piece.size());
    return true;
  });
}

TEST(GrpcFraming, PrefixIsFlagThenBigEndianLength) {
  std::string out;
  AppendMessagePrefix(&out, true, 0x01020304);
  EXPECT_EQ(out, std::string("\x01\x01\x02\x03\x04", 5));
}

TEST(GrpcFraming, SeveralMessagesInOnePieceAreViewsIntoIt) {
  MessageDeframer d(1024);
  Collected c;
  const std::string bytes = Framed("first") + Framed("") + Framed("third", true);
  ASSERT_TRUE(FeedAll(&d, bytes, &c).ok());
  EXPECT_EQ(c.messages, (std::vector<std::string>{"first", "", "third"}));
  EXPECT_EQ(c.compressed, (std::vector<bool>{false, false, true}));
  EXPECT_EQ(c.borrowed, (std::vector<bool>{true, true, true}));
  EXPECT_FALSE(d.mid_message());
}

TEST(GrpcFraming, MessageSplitAtEveryByteIsGathered) {
  const std::string body(300, 'x');
  const std::string bytes = Framed(body) + Framed("tail");
  for (size_t step = 1; step <= 7; ++step) {
    MessageDeframer d(1024);
    Collected c;
    for (size_t i = 0; i < bytes.size(); i += step) {
      ASSERT_TRUE(FeedAll(&d, std::string_view(bytes).substr(i, step), &c).ok());
    }
    ASSERT_EQ(c.messages.size(), 2u) << step;
    EXPECT_EQ(c.messages[0], body);
    EXPECT_EQ(c.messages[1], "tail");
    EXPECT_FALSE(d.mid_message());
  }
}

TEST(GrpcFraming, PrefixOnlyThenBodyLater) {
  MessageDeframer d(1024);
  Collected c;
  const std::string bytes = Framed("hello");
  ASSERT_TRUE(FeedAll(&d, std::string_view(bytes).substr(0, 5), &c).ok());
  EXPECT_TRUE(c.messages.empty());
  EXPECT_TRUE(d.mid_message());
  ASSERT_TRUE(FeedAll(&d, std::string_view(bytes).substr(5), &c).ok());
  EXPECT_EQ(c.messages, (std::vector<std::string>{"hello"}));
}

TEST(GrpcFraming, OversizedMessageFailsNamingBothSizes) {
  MessageDeframer d(4096);
  Collected c;
  std::string prefix;
  AppendMessagePrefix(&prefix, false, 8192);
  Status s = FeedAll(&d, prefix, &c);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("8192"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("4096"), std::string::npos) << s.message();
  // A message of exactly the limit passes.
  MessageDeframer exact(4096);
  EXPECT_TRUE(FeedAll(&exact, Framed(std::string(4096, 'a')), &c).ok());
  EXPECT_EQ(c.messages.size(), 1u);
}

TEST(GrpcFraming, BadFlagFails) {
  MessageDeframer d(64);
  Collected c;
  Status s = FeedAll(&d, std::string("\x02\x00\x00\x00\x00", 5), &c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("2"), std::string::npos);
}

TEST(GrpcFraming, StopsWhenTheCallbackSaysSo) {
  MessageDeframer d(64);
  int seen = 0;
  const std::string bytes = Framed("a") + Framed("b");
  ASSERT_TRUE(d.Feed(bytes, [&](const Message&) { return ++seen < 1; }).ok());
  EXPECT_EQ(seen, 1);
}

TEST(GrpcFraming, TimeoutUnits) {
  using namespace std::chrono;
  EXPECT_EQ(*ParseTimeout("1H"), hours(1));
  EXPECT_EQ(*ParseTimeout("2M"), minutes(2));
  EXPECT_EQ(*ParseTimeout("3S"), seconds(3));
  EXPECT_EQ(*ParseTimeout("100m"), milliseconds(100));
  EXPECT_EQ(*ParseTimeout("2500000u"), microseconds(2500000));
  EXPECT_EQ(*ParseTimeout("99999999n"), nanoseconds(99999999));
  for (const char* bad : {"", "S", "1", "1s", "123456789S", "-1S", "1.5S", "1 S"}) {
    auto r = ParseTimeout(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos) << r.status().message();
  }
}

TEST(GrpcFraming, PercentEncoding) {
  EXPECT_EQ(PercentEncode("plain text: ok"), "plain text: ok");
  EXPECT_EQ(PercentEncode("100%"), "100%25");
  EXPECT_EQ(PercentEncode("a\nb"), "a%0Ab");
  EXPECT_EQ(PercentEncode("\xC3\xA9"), "%C3%A9");
  for (std::string s : {std::string("x%y\r\n\x01\xff"), std::string("model 'ä' not found")})
    EXPECT_EQ(PercentDecode(PercentEncode(s)), s);
  EXPECT_EQ(PercentDecode("bad %zz and %4"), "bad %zz and %4");
}

}  // namespace
}  // namespace ferry::protocol::grpc_wire
