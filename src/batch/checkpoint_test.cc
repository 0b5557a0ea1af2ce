#include "batch/checkpoint.h"

#include <gtest/gtest.h>

#include <fstream>

namespace ferry::batch {
namespace {

TEST(Checkpoint, SavesAndLoads) {
  auto dir = std::filesystem::temp_directory_path() / ("ferry_ckpt_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / "out.csv.checkpoint";
  EXPECT_FALSE(LoadCheckpoint(path)->has_value());
  Checkpoint c;
  c.identity = {{"input", "/data/in.csv"}, {"model", "m"}};
  c.input_offset = 1234;
  c.next_row = 99;
  c.next_line = 101;
  c.output_bytes = 5678;
  c.error_bytes = 12;
  c.rows_ok = 98;
  c.rows_failed = 1;
  ASSERT_TRUE(SaveCheckpoint(path, c).ok());
  auto got = LoadCheckpoint(path);
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status().message();
  const Checkpoint& g = **got;
  EXPECT_EQ(g.identity, c.identity);
  EXPECT_EQ(g.input_offset, 1234u);
  EXPECT_EQ(g.next_row, 99u);
  EXPECT_EQ(g.next_line, 101u);
  EXPECT_EQ(g.output_bytes, 5678u);
  EXPECT_EQ(g.error_bytes, 12u);
  EXPECT_EQ(g.rows_ok, 98u);
  EXPECT_EQ(g.rows_failed, 1u);
  EXPECT_FALSE(g.complete);
  EXPECT_FALSE(std::filesystem::exists(dir / "out.csv.checkpoint.tmp"));

  std::ofstream(path) << "{\"version\": 1, \"identity\": {}}";
  auto bad = LoadCheckpoint(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("is damaged (pass --restart to start over): a counter is missing"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Checkpoint, IdentityDifferenceNamesTheField) {
  JobIdentity a{{"input_size", "100"}, {"model", "m"}};
  JobIdentity b{{"input_size", "120"}, {"model", "m"}};
  EXPECT_EQ(IdentityDifference(a, a), "");
  EXPECT_EQ(IdentityDifference(a, b), "input_size was '100', now '120'");
  JobIdentity c{{"input_size", "100"}};
  EXPECT_EQ(IdentityDifference(a, c), "model was 'm', now (none)");
}

}  // namespace
}  // namespace ferry::batch
