#include "core/rotating_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace ferry {
namespace {
namespace fs = std::filesystem;

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class RotatingFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ferry_rotfile_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(RotatingFileTest, AnAppendNeverStraddlesTwoFilesAndTheOldestGo) {
  const fs::path file = dir_ / "deep" / "events.jsonl";
  {
    RotatingFile f(file.string(), /*max_bytes=*/25, /*keep=*/2);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(f.Append("line " + std::to_string(i) + "\n"));  // 7 bytes each
    EXPECT_EQ(f.write_errors(), 0u);
    EXPECT_EQ(f.rotations(), 3u);  // 3 lines per file: 0-2, 3-5, 6-8, 9
  }
  EXPECT_EQ(Read(file), "line 9\n");
  EXPECT_EQ(Read(file.string() + ".1"), "line 6\nline 7\nline 8\n");
  EXPECT_EQ(Read(file.string() + ".2"), "line 3\nline 4\nline 5\n");
  EXPECT_FALSE(fs::exists(file.string() + ".3")) << "keep=2: lines 0-2 are gone";
}

TEST_F(RotatingFileTest, AppendsToAnExistingFileAndCountsItsSize) {
  const fs::path file = dir_ / "a.log";
  { RotatingFile(file.string(), 20, 1).Append("0123456789\n"); }
  RotatingFile f(file.string(), 20, 1);
  ASSERT_TRUE(f.Append("abcdefghij\n"));  // 11 + 11 > 20: rotates first
  EXPECT_EQ(Read(file.string() + ".1"), "0123456789\n");
  EXPECT_EQ(Read(file), "abcdefghij\n");
}

TEST_F(RotatingFileTest, ALineLongerThanTheLimitStillGoesIntoAFileOfItsOwn) {
  const fs::path file = dir_ / "big.log";
  RotatingFile f(file.string(), 4, 0);
  ASSERT_TRUE(f.Append("much longer than four\n"));
  EXPECT_EQ(Read(file), "much longer than four\n");
  ASSERT_TRUE(f.Append("next\n"));
  EXPECT_EQ(Read(file), "next\n") << "keep=0 truncates";
}

TEST_F(RotatingFileTest, AnUnwritableFolderCountsErrors) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "plainfile") << "x";
  RotatingFile f((dir_ / "plainfile" / "x.log").string(), 100, 1);  // a file as the folder
  EXPECT_FALSE(f.Append("lost\n"));
  EXPECT_GE(f.write_errors(), 1u);
}

}  // namespace
}  // namespace ferry
