#include "runtime/library_deps.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "runtime/module_runtime.h"

namespace ferry::runtime {
namespace {

namespace fs = std::filesystem;

fs::path TempDir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("ferry_library_deps_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(LibraryDeps, ReadsTheNeededLibrariesOfThisTestBinary) {
  auto dyn = ReadElfDynamic("/proc/self/exe");
  ASSERT_TRUE(dyn.ok()) << dyn.status().message();
  bool libc = false;
  for (const auto& n : dyn->needed) libc = libc || n.rfind("libc.so", 0) == 0;
  EXPECT_TRUE(libc) << "libc.so.* not among the DT_NEEDED entries";
  // Everything this running binary needs was found by the real loader, so the
  // approximation must find it too.
  auto missing = MissingLibraries("/proc/self/exe");
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->empty()) << missing->front();
}

TEST(LibraryDeps, NamesWhatIsWrongWithAFileThatIsNotElf) {
  fs::path dir = TempDir("notelf");
  std::ofstream(dir / "lib.so") << "not an ELF file at all";
  auto dyn = ReadElfDynamic(dir / "lib.so");
  ASSERT_FALSE(dyn.ok());
  EXPECT_NE(dyn.status().message().find("not an ELF file"), std::string::npos);
  EXPECT_NE(dyn.status().message().find((dir / "lib.so").string()), std::string::npos);
  auto absent = ReadElfDynamic(dir / "absent.so");
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);
  fs::remove_all(dir);
}

TEST(LibraryDeps, FindsLibrariesOnTheRunpathAndNotElsewhere) {
  fs::path dir = TempDir("runpath");
  std::ofstream(dir / "libferry_test_only.so.7") << "x";
  EXPECT_FALSE(FindLibrary("libferry_test_only.so.7", {}).has_value());
  auto found = FindLibrary("libferry_test_only.so.7", {dir.string()});
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, dir / "libferry_test_only.so.7");
  fs::remove_all(dir);
}

TEST(ModuleRuntime, AMissingModuleIsUnavailableNamingTheModuleAndWhereItWasLookedFor) {
  fs::path dir = TempDir("nomodule");
  ModuleSpec spec{"Test runtime", "testrt", "testrt_platform", {"model.test", "model.alt"}, "9.9.9", "nowhere"};
  ModuleRuntime rt(spec, {dir});
  // Its names are known without loading anything.
  EXPECT_EQ(rt.name(), "testrt");
  EXPECT_EQ(rt.platform(), "testrt_platform");
  EXPECT_EQ(rt.default_filename(), "model.test");
  EXPECT_EQ(rt.version(), "9.9.9");
  auto a = rt.Check();
  EXPECT_TRUE(a.module.empty());
  EXPECT_NE(a.problem.find("libferry_runtime_testrt.so"), std::string::npos) << a.problem;
  EXPECT_NE(a.problem.find(dir.string()), std::string::npos) << a.problem;
  inference::ModelConfig config;
  Status s = rt.AutoComplete(dir / "model.test", &config);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("Test runtime unavailable"), std::string::npos) << s.message();
  EXPECT_FALSE(rt.loaded());
  fs::remove_all(dir);
}

TEST(ModuleRuntime, AFileThatIsNotAModuleIsRefusedWithTheLoadersMessage) {
  fs::path dir = TempDir("badmodule");
  std::ofstream(dir / ModuleFileName("testrt")) << "garbage";
  ModuleRuntime rt({"Test runtime", "testrt", "p", {"model.test"}, "1", "nowhere"}, {dir});
  auto loaded = rt.Load();
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(loaded.status().message().find("cannot load " + (dir / ModuleFileName("testrt")).string()),
            std::string::npos)
      << loaded.status().message();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ferry::runtime
