#include "runtime/plugin/plugin_runtime.h"

#include <gtest/gtest.h>

#include <cstring>

#include "repository/model_config.h"
#include "runtime/plugin/plugin_finder.h"

namespace ferry::runtime::plugin {
namespace {

namespace fs = std::filesystem;

const fs::path kAddOne = fs::path(FERRY_TEST_PLUGIN_DIR) / "libferry_add_one.so";
const fs::path kBroken = FERRY_TEST_BROKEN_PLUGIN_DIR;

inference::ModelConfig Config(const std::string& text) {
  auto c = repository::ParseTritonConfig(text);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return *c;
}

template <typename T>
Tensor Make(const std::string& name, DataType type, std::vector<T> values) {
  Tensor t;
  t.name = name;
  t.datatype = type;
  t.shape = {static_cast<int64_t>(values.size())};
  t.Own(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
  return t;
}

template <typename T>
std::vector<T> Values(const Tensor& t) {
  std::vector<T> v(t.byte_size() / sizeof(T));
  std::memcpy(v.data(), t.data(), t.byte_size());
  return v;
}

TEST(PluginLibraryTest, OpensTheExampleAndReadsItsVersion) {
  auto lib = PluginLibrary::Open(kAddOne);
  ASSERT_TRUE(lib.ok()) << lib.status().message();
  EXPECT_EQ((*lib)->abi_version(), std::to_string(FERRY_PLUGIN_API_VERSION_MAJOR) + "." +
                                       std::to_string(FERRY_PLUGIN_API_VERSION_MINOR));
  EXPECT_NE((*lib)->api().instance_terminate, nullptr);  // optional, and the example has it
  EXPECT_EQ((*lib)->api().model_autocomplete, nullptr);  // optional, and the example lacks it
}

TEST(PluginLibraryTest, RefusesBrokenLibrariesNamingTheProblem) {
  struct Case {
    std::string file, mentions;
  } cases[] = {
      {"libferry_broken_version.so", "was built for plugin ABI " + std::to_string(FERRY_PLUGIN_API_VERSION_MAJOR + 1)},
      {"libferry_broken_missing_execute.so", "lacks the required symbol(s) ferry_plugin_instance_execute"},
      {"libferry_broken_initialize.so", "ferry_plugin_initialize failed: the device this plugin needs is absent"},
      {"libferry_no_such_plugin.so", "cannot load plugin library"},
  };
  for (const auto& c : cases) {
    auto lib = PluginLibrary::Open(kBroken / c.file);
    ASSERT_FALSE(lib.ok()) << c.file;
    EXPECT_EQ(lib.status().code(), StatusCode::kUnavailable) << c.file;
    EXPECT_NE(lib.status().message().find(c.file), std::string::npos) << lib.status().message();
    EXPECT_NE(lib.status().message().find(c.mentions), std::string::npos) << lib.status().message();
  }
}

class PluginRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lib = PluginLibrary::Open(kAddOne);
    ASSERT_TRUE(lib.ok()) << lib.status().message();
    runtime_ = std::make_unique<PluginRuntime>("add_one", std::move(lib).value());
    dir_ = fs::temp_directory_path() / ("ferry_plugin_runtime_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<PluginRuntime> runtime_;
  fs::path dir_;
};

TEST_F(PluginRuntimeTest, ExecutesThroughTheAbi) {
  auto config = Config(R"(name: "m" backend: "add_one"
      input [ { name: "INPUT_A" data_type: TYPE_FP32 dims: [ -1 ] }, { name: "INPUT_B" data_type: TYPE_INT8 dims: [ -1 ] } ]
      output [ { name: "OUTPUT_A" data_type: TYPE_FP32 dims: [ -1 ] }, { name: "OUTPUT_B" data_type: TYPE_INT8 dims: [ -1 ] } ])");
  auto instance = runtime_->CreateInstance(dir_ / "", config, InstanceOptions{});
  ASSERT_TRUE(instance.ok()) << instance.status().message();
  std::vector<Tensor> in = {Make<float>("INPUT_A", DataType::kFp32, {1.5f, -2.0f}),
                            Make<int8_t>("INPUT_B", DataType::kInt8, {-128, 5, 126})};
  ExecTimings timings;
  auto out = (*instance)->Execute(in, {"OUTPUT_B", "OUTPUT_A"}, &timings);
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].name, "OUTPUT_B");
  EXPECT_EQ((*out)[0].shape, Shape{3});
  EXPECT_EQ(Values<int8_t>((*out)[0]), (std::vector<int8_t>{-127, 6, 127}));
  EXPECT_EQ(Values<float>((*out)[1]), (std::vector<float>{2.5f, -1.0f}));

  // The plugin's own error reaches the caller, and the instance keeps serving.
  in[1] = Make<int8_t>("INPUT_B", DataType::kInt8, {1, 127});
  auto failed = (*instance)->Execute(in, {"OUTPUT_B"}, nullptr);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(failed.status().message().find("input 'INPUT_B': element 1 is INT8_MAX"), std::string::npos)
      << failed.status().message();
  EXPECT_TRUE((*instance)->Execute({in[0]}, {"OUTPUT_A"}, nullptr).ok());
}

TEST_F(PluginRuntimeTest, RefusesAnOutputOfAnotherDatatypeThanDeclared) {
  auto config = Config(R"(name: "m" backend: "add_one"
      input [ { name: "INPUT" data_type: TYPE_FP32 dims: [ -1 ] } ]
      output [ { name: "OUTPUT" data_type: TYPE_FP64 dims: [ -1 ] } ])");
  auto instance = runtime_->CreateInstance(dir_ / "", config, InstanceOptions{});
  ASSERT_TRUE(instance.ok()) << instance.status().message();
  auto out = (*instance)->Execute({Make<float>("INPUT", DataType::kFp32, {1})}, {"OUTPUT"}, nullptr);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInternal);
  EXPECT_NE(out.status().message().find("output 'OUTPUT': the plugin gives FP32 but the config declares FP64"),
            std::string::npos)
      << out.status().message();
}

TEST(PluginAutoCompleteTest, TheConfigThePluginHandsBackReplacesTheDeclaredOne) {
  auto lib = PluginLibrary::Open(kBroken / "libferry_autocomplete.so");
  ASSERT_TRUE(lib.ok()) << lib.status().message();
  PluginRuntime runtime("autocomplete", std::move(lib).value());
  auto config = Config(R"(name: "m" backend: "autocomplete")");
  ASSERT_TRUE(runtime.AutoComplete("/nonexistent/1/", &config).ok());
  EXPECT_EQ(config.name(), "m");  // kept, though the plugin's JSON has no name
  EXPECT_EQ(config.max_batch_size(), 4);
  ASSERT_EQ(config.input_size(), 1);
  EXPECT_EQ(config.input(0).name(), "IN");
  EXPECT_EQ(config.output(0).data_type(), inference::TYPE_FP32);
  EXPECT_TRUE(repository::ValidateModelConfig(config).ok());

  // JSON that is not a model config: the load fails with protobuf's reason.
  auto broken = Config(R"(name: "m" backend: "autocomplete" parameters { key: "broken" value { string_value: "1" } })");
  Status s = runtime.AutoComplete("/nonexistent/1/", &broken);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not a model config"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("no_such_field"), std::string::npos) << s.message();
  EXPECT_EQ(broken.input_size(), 0);  // left as it was
}

class PluginFinderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ferry_plugin_finder_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "model" / "1");
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(PluginFinderTest, LooksInTheVersionFolderThenTheModelFolderThenThePluginDir) {
  PluginFinder none("");
  auto missing = none.Resolve("add_one", root_ / "model" / "1", root_ / "model");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("libferry_add_one.so"), std::string::npos);
  EXPECT_NE(missing.status().message().find("--plugin-dir"), std::string::npos);

  PluginFinder finder(FERRY_TEST_PLUGIN_DIR);
  auto from_dir = finder.Resolve("add_one", root_ / "model" / "1", root_ / "model");
  ASSERT_TRUE(from_dir.ok()) << from_dir.status().message();
  // A broken library in the model folder comes first, and its defect is reported.
  fs::copy_file(kBroken / "libferry_broken_version.so", root_ / "model" / "libferry_add_one.so");
  auto from_model = finder.Resolve("add_one", root_ / "model" / "1", root_ / "model");
  ASSERT_FALSE(from_model.ok());
  EXPECT_NE(from_model.status().message().find((root_ / "model" / "libferry_add_one.so").string()), std::string::npos)
      << from_model.status().message();
  // ... and a good one in the version folder comes before that.
  fs::copy_file(kAddOne, root_ / "model" / "1" / "libferry_add_one.so");
  auto from_version = finder.Resolve("add_one", root_ / "model" / "1", root_ / "model");
  ASSERT_TRUE(from_version.ok()) << from_version.status().message();
  EXPECT_NE(*from_version, *from_dir);

  auto escape = finder.Resolve("../add_one", root_ / "model" / "1", root_ / "model");
  ASSERT_FALSE(escape.ok());
  EXPECT_EQ(escape.status().code(), StatusCode::kInvalidArgument);
}

TEST(PluginFinderListTest, ListsEveryPluginWithItsVersionOrProblem) {
  auto found = PluginFinder::List(FERRY_TEST_BROKEN_PLUGIN_DIR);
  ASSERT_EQ(found.size(), 4u);
  EXPECT_EQ(found[0].backend, "autocomplete");
  EXPECT_TRUE(found[0].error.empty()) << found[0].error;
  EXPECT_EQ(found[1].backend, "broken_initialize");
  EXPECT_NE(found[1].error.find("ferry_plugin_initialize failed"), std::string::npos);
  auto good = PluginFinder::List(FERRY_TEST_PLUGIN_DIR);
  ASSERT_EQ(good.size(), 1u);
  EXPECT_EQ(good[0].backend, "add_one");
  EXPECT_TRUE(good[0].error.empty()) << good[0].error;
  EXPECT_FALSE(good[0].abi_version.empty());
}

}  // namespace
}  // namespace ferry::runtime::plugin
