#include "engine/rotating_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace ferry::engine {
namespace {
namespace fs = std::filesystem;

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(RotatingLogTest, RotatesBySizeAndKeepsTheNewestFiles) {
  fs::path dir = fs::temp_directory_path() / ("ferry_rotlog_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const fs::path file = dir / "sub" / "replica-0.log";
  {
    RotatingLog log(file.string(), /*max_bytes=*/100, /*keep=*/2, /*tail_lines=*/3);
    for (int i = 0; i < 20; ++i) log.Append("line " + std::to_string(i) + " " + std::string(20, 'x') + "\n");
    EXPECT_EQ(log.Tail(), "line 17 xxxxxxxxxxxxxxxxxxxx\nline 18 xxxxxxxxxxxxxxxxxxxx\nline 19 xxxxxxxxxxxxxxxxxxxx\n");
    log.Append("partial");
    EXPECT_NE(log.Tail().find("partial\n"), std::string::npos);
    EXPECT_EQ(log.write_errors(), 0u);
  }
  ASSERT_TRUE(fs::exists(file));
  ASSERT_TRUE(fs::exists(file.string() + ".1"));
  ASSERT_TRUE(fs::exists(file.string() + ".2"));
  EXPECT_FALSE(fs::exists(file.string() + ".3")) << "keep=2";
  EXPECT_LE(fs::file_size(file), 100u);
  EXPECT_NE(Read(file).find("partial"), std::string::npos);
  EXPECT_NE(Read(file.string() + ".1").find("line 1"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ferry::engine
