#include "repository/repository.h"

#include <gtest/gtest.h>

#include <fstream>

namespace ferry::repository {
namespace {
namespace fs = std::filesystem;

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ferry_repo_test_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void Touch(const fs::path& p) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "x";
  }
  fs::path root_;
};

TEST_F(RepositoryTest, ScansModelsAndNumericVersions) {
  Touch(root_ / "a" / "1" / "model.onnx");
  Touch(root_ / "a" / "10" / "model.onnx");
  Touch(root_ / "a" / "2" / "model.onnx");
  fs::create_directories(root_ / "a" / "01");
  fs::create_directories(root_ / "a" / "0");
  fs::create_directories(root_ / "a" / "v3");
  fs::create_directories(root_ / ".hidden");
  Touch(root_ / "README");
  auto models = ScanRepositories({root_});
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ(ScanVersions(root_ / "a"), (std::vector<int64_t>{1, 2, 10}));
}

TEST_F(RepositoryTest, DuplicateModelAcrossRootsIsAnError) {
  fs::create_directories(root_ / "r1" / "m");
  fs::create_directories(root_ / "r2" / "m");
  auto models = ScanRepositories({root_ / "r1", root_ / "r2"});
  ASSERT_FALSE(models.ok());
  EXPECT_NE(models.status().message().find("'m'"), std::string::npos);
  EXPECT_EQ(ScanRepositories({root_ / "missing"}).status().code(), StatusCode::kNotFound);
}

TEST_F(RepositoryTest, FingerprintChangesWhenAFileChanges) {
  Touch(root_ / "m" / "1" / "model.onnx");
  std::string before = Fingerprint(root_ / "m");
  EXPECT_EQ(before, Fingerprint(root_ / "m"));
  Touch(root_ / "m" / "2" / "model.onnx");
  EXPECT_NE(before, Fingerprint(root_ / "m"));
}

TEST(VersionPolicyTest, LatestAllSpecific) {
  std::vector<int64_t> avail = {1, 2, 5};
  inference::ModelVersionPolicy p;
  EXPECT_EQ(SelectVersions(p, avail), (std::vector<int64_t>{5}));
  p.mutable_latest()->set_num_versions(2);
  EXPECT_EQ(SelectVersions(p, avail), (std::vector<int64_t>{2, 5}));
  p.mutable_all();
  EXPECT_EQ(SelectVersions(p, avail), avail);
  p.mutable_specific()->add_versions(1);
  p.mutable_specific()->add_versions(7);
  EXPECT_EQ(SelectVersions(p, avail), (std::vector<int64_t>{1}));
  EXPECT_TRUE(SelectVersions(inference::ModelVersionPolicy(), {}).empty());
}

}  // namespace
}  // namespace ferry::repository
