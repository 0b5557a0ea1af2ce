#include "scheduler/tensor_batching.h"

#include <gtest/gtest.h>

#include <cstring>

namespace ferry::scheduler {
namespace {

Tensor Int32s(std::vector<int32_t> v, Shape shape) {
  Tensor t;
  t.name = "x";
  t.datatype = DataType::kInt32;
  t.shape = std::move(shape);
  t.Own(std::string(reinterpret_cast<char*>(v.data()), v.size() * 4));
  return t;
}

std::vector<int32_t> Values(const Tensor& t) {
  std::vector<int32_t> v(t.byte_size() / 4);
  std::memcpy(v.data(), t.data(), t.byte_size());
  return v;
}

TEST(TensorBatchingTest, ConcatThenSplitRoundTrips) {
  Tensor a = Int32s({1, 2}, {1, 2});
  Tensor b = Int32s({3, 4, 5, 6}, {2, 2});
  Tensor joined = ConcatBatch({&a, &b});
  EXPECT_EQ(joined.shape, (Shape{3, 2}));
  EXPECT_EQ(Values(joined), (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
  auto pieces = SplitBatch(joined, {1, 2});
  ASSERT_TRUE(pieces.ok());
  EXPECT_EQ((*pieces)[0].shape, (Shape{1, 2}));
  EXPECT_EQ(Values((*pieces)[1]), (std::vector<int32_t>{3, 4, 5, 6}));
  // Pieces borrow the batch buffer.
  EXPECT_EQ((*pieces)[1].data(), joined.data() + 8);
  EXPECT_FALSE(SplitBatch(joined, {1, 1}).ok());
}

TEST(TensorBatchingTest, SplitsBytesByElements) {
  Tensor s;
  s.name = "s";
  s.datatype = DataType::kBytes;
  s.shape = {3, 1};
  s.Own(std::string("\x01\0\0\0a\x02\0\0\0bc\0\0\0\0", 15));
  auto pieces = SplitBatch(s, {2, 1});
  ASSERT_TRUE(pieces.ok()) << pieces.status().ToString();
  EXPECT_EQ((*pieces)[0].bytes(), std::string("\x01\0\0\0a\x02\0\0\0bc", 11));
  EXPECT_EQ((*pieces)[1].bytes(), std::string("\0\0\0\0", 4));
}

}  // namespace
}  // namespace ferry::scheduler
