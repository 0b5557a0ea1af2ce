#include "runtime/python/worker_messages.h"

#include <gtest/gtest.h>

#include <cstring>

namespace ferry::runtime::python {
namespace {

Tensor MakeTensor(std::string name, DataType dt, Shape shape, size_t bytes) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = dt;
  t.shape = std::move(shape);
  t.Own(std::string(bytes, '\x01'));
  return t;
}

TEST(WorkerMessagesTest, InputsStartAtAlignedOffsets) {
  InputLayout layout = LayoutInputs({MakeTensor("a", DataType::kFp32, {3}, 12), MakeTensor("b", DataType::kInt8, {70}, 70),
                                     MakeTensor("c", DataType::kFp64, {0}, 0)});
  ASSERT_EQ(layout.slots.size(), 3u);
  EXPECT_EQ(layout.slots[0].offset, 0u);
  EXPECT_EQ(layout.slots[1].offset, 64u);
  EXPECT_EQ(layout.slots[2].offset, 192u);
  EXPECT_EQ(layout.end, 192u);
  EXPECT_EQ(layout.slots[1].size, 70u);
}

TEST(WorkerMessagesTest, InferMessageNamesEveryTensor) {
  InputLayout layout = LayoutInputs({MakeTensor("x", DataType::kFp32, {2, 3}, 24)});
  std::string msg = EncodeInfer(7, 4096, layout, {"y", "z"});
  EXPECT_NE(msg.find("\"op\":\"infer\""), std::string::npos);
  EXPECT_NE(msg.find("\"id\":7"), std::string::npos);
  EXPECT_NE(msg.find("{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2,3],\"offset\":0,\"size\":24}"), std::string::npos);
  EXPECT_NE(msg.find("\"outputs\":[\"y\",\"z\"]"), std::string::npos);
  EXPECT_NE(msg.find("\"output_offset\":64"), std::string::npos);
}

TEST(WorkerMessagesTest, LoadMessageEmbedsTheConfigAsJson) {
  LoadRequest load;
  load.model = "m\"q";
  load.config_json = "{\"name\":\"m\"}";
  std::string msg = EncodeLoad(load);
  EXPECT_NE(msg.find("\"config\":{\"name\":\"m\"}"), std::string::npos);
  EXPECT_NE(msg.find("\"model\":\"m\\\"q\""), std::string::npos);
}

TEST(WorkerMessagesTest, DecodesErrorsAndOutputs) {
  auto err = DecodeReply(R"({"id":3,"ok":false,"user_error":true,"error":"ValueError: bad x"})");
  ASSERT_TRUE(err.ok());
  EXPECT_FALSE(err->ok);
  EXPECT_TRUE(err->user_error);
  EXPECT_EQ(err->error, "ValueError: bad x");

  auto ok = DecodeReply(
      R"({"id":3,"ok":true,"shm_size":8192,"outputs":[{"name":"y","datatype":"INT64","shape":[2],"offset":64,"size":16}]})");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  ASSERT_EQ(ok->outputs.size(), 1u);
  EXPECT_EQ(ok->outputs[0].datatype, DataType::kInt64);
  EXPECT_EQ(ok->shm_size, 8192u);

  EXPECT_FALSE(DecodeReply("not json").ok());
  EXPECT_FALSE(DecodeReply(R"({"id":1})").ok());
  auto bad_dt = DecodeReply(R"({"id":1,"ok":true,"shm_size":1,"outputs":[{"name":"y","datatype":"FP128","shape":[],"offset":0,"size":0}]})");
  ASSERT_FALSE(bad_dt.ok());
  EXPECT_NE(bad_dt.status().message().find("'y'"), std::string::npos);
  EXPECT_FALSE(DecodeReply(R"({"id":1,"ok":true,"shm_size":1,"outputs":[{"name":"y","datatype":"FP32","shape":[-2],"offset":0,"size":0}]})").ok());
}

WorkerReply OneOutput(DataType dt, Shape shape, uint64_t offset, uint64_t size) {
  WorkerReply r;
  r.id = 1;
  r.ok = true;
  r.outputs.push_back(TensorSlot{"y", dt, std::move(shape), offset, size});
  return r;
}

TEST(WorkerMessagesTest, ChecksOutputsAgainstTheRegionAndTheRequest) {
  std::vector<std::byte> region(256);
  EXPECT_TRUE(CheckOutputs(OneOutput(DataType::kFp32, {2, 2}, 64, 16), 1, {"y"}, region.size(), region.data()).ok());
  // Outside the region, including offset + size overflowing.
  Status outside = CheckOutputs(OneOutput(DataType::kFp32, {2, 2}, 250, 16), 1, {"y"}, region.size(), region.data());
  EXPECT_NE(outside.message().find("outside"), std::string::npos);
  EXPECT_FALSE(CheckOutputs(OneOutput(DataType::kUint8, {1}, UINT64_MAX, 1), 1, {"y"}, region.size(), region.data()).ok());
  // Size disagreeing with shape x datatype.
  Status size = CheckOutputs(OneOutput(DataType::kFp32, {3}, 0, 16), 1, {"y"}, region.size(), region.data());
  EXPECT_NE(size.message().find("needs 12 bytes"), std::string::npos);
  // 2^62 FP32 elements: the byte count wraps to 0 in 64 bits; must not pass as 0 bytes.
  EXPECT_FALSE(CheckOutputs(OneOutput(DataType::kFp32, {int64_t{1} << 62}, 0, 0), 1, {"y"}, region.size(),
                            region.data()).ok());
  // Another request's reply, or other outputs.
  EXPECT_FALSE(CheckOutputs(OneOutput(DataType::kFp32, {1}, 0, 4), 2, {"y"}, region.size(), region.data()).ok());
  EXPECT_FALSE(CheckOutputs(OneOutput(DataType::kFp32, {1}, 0, 4), 1, {"z"}, region.size(), region.data()).ok());
  EXPECT_FALSE(CheckOutputs(OneOutput(DataType::kFp32, {1}, 0, 4), 1, {"y", "z"}, region.size(), region.data()).ok());
}

TEST(WorkerMessagesTest, ChecksBytesOutputsElementByElement) {
  std::vector<std::byte> region(64);
  const uint32_t len = 3;
  std::memcpy(region.data(), &len, 4);
  std::memcpy(region.data() + 4, "abc", 3);
  EXPECT_TRUE(CheckOutputs(OneOutput(DataType::kBytes, {1}, 0, 7), 1, {"y"}, region.size(), region.data()).ok());
  EXPECT_FALSE(CheckOutputs(OneOutput(DataType::kBytes, {2}, 0, 7), 1, {"y"}, region.size(), region.data()).ok());
  EXPECT_FALSE(CheckOutputs(OneOutput(DataType::kBytes, {1}, 0, 6), 1, {"y"}, region.size(), region.data()).ok());
}

}  // namespace
}  // namespace ferry::runtime::python
