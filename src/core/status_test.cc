#include "core/result.h"
#include "core/status.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("x: odd value " + std::to_string(x));
  return x / 2;
}

Status UseHalf(int x, int* out) {
  FERRY_ASSIGN_OR_RETURN(*out, Half(x));
  return Status::Ok();
}

TEST(StatusTest, OkIsFreeAndErrorsCarryMessages) {
  EXPECT_TRUE(Status().ok());
  Status s = NotFound("model 'x' not found");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NOT_FOUND: model 'x' not found");
}

TEST(StatusTest, AssignOrReturnPropagates) {
  int v = 0;
  EXPECT_TRUE(UseHalf(4, &v).ok());
  EXPECT_EQ(v, 2);
  Status s = UseHalf(3, &v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "x: odd value 3");
}

}  // namespace
}  // namespace ferry
