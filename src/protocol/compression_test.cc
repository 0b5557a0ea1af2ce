#include "protocol/compression.h"

#include <gtest/gtest.h>

namespace ferry::protocol {
namespace {

TEST(CompressionTest, RoundTripsGzipAndDeflate) {
  std::string data(10000, 'a');
  data += "tail";
  for (Encoding e : {Encoding::kGzip, Encoding::kDeflate}) {
    auto c = Compress(data, e);
    ASSERT_TRUE(c.ok());
    EXPECT_LT(c->size(), data.size());
    auto d = Decompress(*c, 1 << 20);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(*d, data);
  }
}

TEST(CompressionTest, EnforcesLimitAndRejectsGarbage) {
  auto c = Compress(std::string(5000, 'x'), Encoding::kGzip);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(Decompress(*c, 100).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(Decompress("not compressed", 100).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Decompress(c->substr(0, c->size() / 2), 1 << 20).status().code(), StatusCode::kInvalidArgument);
}

TEST(CompressionTest, NegotiatesEncodings) {
  EXPECT_EQ(ChooseResponseEncoding("gzip"), Encoding::kGzip);
  EXPECT_EQ(ChooseResponseEncoding("deflate;q=0.5, gzip;q=0.9"), Encoding::kGzip);
  EXPECT_EQ(ChooseResponseEncoding("br"), Encoding::kIdentity);
  EXPECT_EQ(ChooseResponseEncoding("deflate, gzip"), Encoding::kDeflate);
  EXPECT_EQ(ParseContentEncoding("br").status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(*ParseContentEncoding("GZIP"), Encoding::kGzip);
}

}  // namespace
}  // namespace ferry::protocol
