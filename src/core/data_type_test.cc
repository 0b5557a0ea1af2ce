#include "core/data_type.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(DataTypeTest, EveryProtocolNameRoundTrips) {
  for (int i = 1; i <= 14; ++i) {
    auto t = static_cast<DataType>(i);
    auto parsed = DataTypeFromName(DataTypeName(t));
    ASSERT_TRUE(parsed.has_value()) << DataTypeName(t);
    EXPECT_EQ(*parsed, t);
    auto from_config = DataTypeFromConfigName(DataTypeConfigName(t));
    ASSERT_TRUE(from_config.has_value());
    EXPECT_EQ(*from_config, t);
  }
}

TEST(DataTypeTest, SizesMatchTheProtocol) {
  EXPECT_EQ(DataTypeSize(DataType::kBool), 1u);
  EXPECT_EQ(DataTypeSize(DataType::kUint16), 2u);
  EXPECT_EQ(DataTypeSize(DataType::kInt64), 8u);
  EXPECT_EQ(DataTypeSize(DataType::kFp16), 2u);
  EXPECT_EQ(DataTypeSize(DataType::kBf16), 2u);
  EXPECT_EQ(DataTypeSize(DataType::kFp64), 8u);
  EXPECT_EQ(DataTypeSize(DataType::kBytes), 0u);
}

TEST(DataTypeTest, BytesIsStringInConfigAndNamesAreCaseSensitive) {
  EXPECT_EQ(DataTypeConfigName(DataType::kBytes), "TYPE_STRING");
  EXPECT_FALSE(DataTypeFromName("fp32").has_value());
  EXPECT_FALSE(DataTypeFromName("INVALID").has_value());
  EXPECT_FALSE(DataTypeFromName("FP33").has_value());
}

}  // namespace
}  // namespace ferry
