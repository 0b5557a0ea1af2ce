#include "engine/log_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ferry::engine {
namespace {
namespace fs = std::filesystem;

class LogReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ferry_log_reader_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "replica-0.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& path, const std::string& text, bool append = false) {
    std::ofstream(path, append ? std::ios::app : std::ios::trunc) << text;
  }
  fs::path dir_;
  std::string path_;
};

TEST_F(LogReaderTest, TailGivesTheLastLinesReachingIntoTheRotatedFile) {
  Write(path_ + ".1", "old 1\nold 2\nold 3\n");
  Write(path_, "new 1\nnew 2\npartial");
  auto two = ReadLogTail(path_, 2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->text, "new 2\npartial");
  EXPECT_EQ(two->offset, 19u);
  auto five = ReadLogTail(path_, 5);
  ASSERT_TRUE(five.ok());
  EXPECT_EQ(five->text, "old 2\nold 3\nnew 1\nnew 2\npartial");
  EXPECT_EQ(ReadLogTail((dir_ / "nope.log").string(), 5).status().code(), StatusCode::kNotFound);
}

TEST_F(LogReaderTest, FollowingReadsWhatWasAddedAndSurvivesARotation) {
  Write(path_, "a\nb\n");
  auto first = ReadLogFrom(path_, 0);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->text, "a\nb\n");
  Write(path_, "c\n", true);
  auto next = ReadLogFrom(path_, first->offset);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->text, "c\n");
  EXPECT_FALSE(next->rotated);
  // Rotated: the file moved to .1 with one more line, a new file began.
  Write(path_, "d\n", true);
  fs::rename(path_, path_ + ".1");
  Write(path_, "e\n");
  auto after = ReadLogFrom(path_, next->offset);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->rotated);
  EXPECT_EQ(after->text, "d\ne\n");
  EXPECT_EQ(after->offset, 2u);
}

TEST_F(LogReaderTest, AHalfWrittenCharacterWaitsAndBadBytesAreReplaced) {
  Write(path_, "caf\xC3");
  auto a = ReadLogFrom(path_, 0);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->text, "caf");
  EXPECT_EQ(a->offset, 3u);
  Write(path_, "\xA9\n", true);
  auto b = ReadLogFrom(path_, a->offset);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->text, "\xC3\xA9\n");
  EXPECT_EQ(SanitizeUtf8("ok \xFF\xC0\xAF end \xE2\x82\xAC"), "ok \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD end \xE2\x82\xAC");
}

TEST_F(LogReaderTest, ALongBacklogKeepsItsNewestBytes) {
  std::string big;
  for (int i = 0; i < 1000; ++i) big += "line " + std::to_string(i) + "\n";
  Write(path_, big);
  auto tail = ReadLogTail(path_, 100000, 100);
  ASSERT_TRUE(tail.ok());
  EXPECT_TRUE(tail->truncated);
  EXPECT_EQ(tail->text.substr(tail->text.size() - 9), "line 999\n");
  EXPECT_EQ(tail->text.substr(0, 5), "line ") << "cut at a line start";
  auto from = ReadLogFrom(path_, 0, 100);
  ASSERT_TRUE(from.ok());
  EXPECT_TRUE(from->truncated);
  EXPECT_EQ(from->text.size(), 100u);
}

}  // namespace
}  // namespace ferry::engine
