#include "runtime/registry.h"

#include <gtest/gtest.h>

#include <fstream>

namespace ferry::runtime {
namespace {

namespace fs = std::filesystem;

// A runtime that only has names: Find and ModelFile never load anything.
class NamedRuntime : public Runtime {
 public:
  NamedRuntime(std::string name, std::vector<std::string> files) : name_(std::move(name)), files_(std::move(files)) {}
  std::string_view name() const override { return name_; }
  std::string_view platform() const override { return name_; }
  std::string_view default_filename() const override { return files_.front(); }
  std::vector<std::string> accepted_filenames() const override { return files_; }
  std::string version() const override { return "0"; }
  Status AutoComplete(const fs::path&, inference::ModelConfig*) override { return Status::Ok(); }
  Result<std::unique_ptr<ModelInstance>> CreateInstance(const fs::path&, const inference::ModelConfig&,
                                                        const InstanceOptions&) override {
    return Unimplemented("test runtime");
  }

 private:
  std::string name_;
  std::vector<std::string> files_;
};

// A runtime that keeps the base class's accepted_filenames().
class SingleFileRuntime : public NamedRuntime {
 public:
  SingleFileRuntime() : NamedRuntime("single", {"model.onnx"}) {}
  std::vector<std::string> accepted_filenames() const override { return Runtime::accepted_filenames(); }
};

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ferry_registry_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    registry_.Register(std::make_unique<SingleFileRuntime>());
    registry_.Register(std::make_unique<NamedRuntime>("trees", std::vector<std::string>{"model.json", "model.ubj", "xgboost.model"}));
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Touch(const std::string& name) { std::ofstream(dir_ / name) << "x"; }

  fs::path dir_;
  RuntimeRegistry registry_;
  inference::ModelConfig config_;
};

TEST_F(RegistryTest, DefaultAcceptedFilenamesIsTheDefaultFilename) {
  SingleFileRuntime r;
  EXPECT_EQ(r.accepted_filenames(), std::vector<std::string>{"model.onnx"});
}

TEST_F(RegistryTest, FindsRuntimeByAnyAcceptedFilename) {
  Touch("xgboost.model");
  auto found = registry_.Find(config_, dir_);
  ASSERT_TRUE(found.ok()) << found.status().message();
  EXPECT_EQ((*found)->name(), "trees");
  EXPECT_EQ(RuntimeRegistry::ModelFile(**found, config_, dir_), dir_ / "xgboost.model");
}

TEST_F(RegistryTest, ModelFilePrefersEarlierAcceptedName) {
  Touch("model.ubj");
  Touch("model.json");
  auto found = registry_.Find(config_, dir_);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(RuntimeRegistry::ModelFile(**found, config_, dir_), dir_ / "model.json");
}

TEST_F(RegistryTest, ConfigFilenameWins) {
  Touch("model.json");
  config_.set_default_model_filename("custom.bin");
  NamedRuntime trees("trees", {"model.json"});
  EXPECT_EQ(RuntimeRegistry::ModelFile(trees, config_, dir_), dir_ / "custom.bin");
}

TEST_F(RegistryTest, NotFoundListsEveryAcceptedName) {
  auto found = registry_.Find(config_, dir_);
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kNotFound);
  for (const char* name : {"model.onnx", "model.json", "model.ubj", "xgboost.model"})
    EXPECT_NE(found.status().message().find(name), std::string::npos) << found.status().message();
}

TEST_F(RegistryTest, MissingFileGivesDefaultFilename) {
  NamedRuntime trees("trees", {"model.json", "model.ubj"});
  EXPECT_EQ(RuntimeRegistry::ModelFile(trees, config_, dir_), dir_ / "model.json");
}

}  // namespace
}  // namespace ferry::runtime
