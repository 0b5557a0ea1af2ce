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

template <typename T>
T At(const std::string& p, size_t offset) {
  T v;
  std::memcpy(&v, p.data() + offset, sizeof v);
  return v;
}

TEST(WorkerMessagesTest, InferPacketNamesEveryTensorInTheBinaryLayout) {
  InputLayout layout = LayoutInputs({MakeTensor("x", DataType::kFp32, {2, 3}, 24)});
  std::string p = "stale bytes the encoder must replace";
  EncodeInfer(7, 4096, layout, {"y", "zz"}, &p);
  // Header: magic, reserved, id, shm_size, output_offset, input and output counts.
  ASSERT_EQ(p.substr(0, 4), "FIN2");
  EXPECT_EQ(At<uint64_t>(p, 8), 7u);
  EXPECT_EQ(At<uint64_t>(p, 16), 4096u);
  EXPECT_EQ(At<uint64_t>(p, 24), 64u);  // outputs start after the aligned input
  EXPECT_EQ(At<uint32_t>(p, 32), 1u);
  EXPECT_EQ(At<uint32_t>(p, 36), 2u);
  // The input: datatype code (Triton's enum), rank, name length, offset, size, dims, name.
  EXPECT_EQ(At<uint8_t>(p, 40), static_cast<uint8_t>(DataType::kFp32));
  EXPECT_EQ(At<uint8_t>(p, 41), 2u);
  EXPECT_EQ(At<uint16_t>(p, 42), 1u);
  EXPECT_EQ(At<uint64_t>(p, 48), 0u);
  EXPECT_EQ(At<uint64_t>(p, 56), 24u);
  EXPECT_EQ(At<int64_t>(p, 64), 2);
  EXPECT_EQ(At<int64_t>(p, 72), 3);
  EXPECT_EQ(p.substr(80, 1), "x");
  // The requested outputs: length-prefixed names.
  EXPECT_EQ(At<uint16_t>(p, 81), 1u);
  EXPECT_EQ(p.substr(83, 1), "y");
  EXPECT_EQ(At<uint16_t>(p, 84), 2u);
  EXPECT_EQ(p.substr(86), "zz");
}

TEST(WorkerMessagesTest, LoadMessageEmbedsTheConfigAsJson) {
  LoadRequest load;
  load.model = "m\"q";
  load.config_json = "{\"name\":\"m\"}";
  std::string msg = EncodeLoad(load);
  EXPECT_NE(msg.find("\"config\":{\"name\":\"m\"}"), std::string::npos);
  EXPECT_NE(msg.find("\"model\":\"m\\\"q\""), std::string::npos);
}

// A reply packet as python/ferry_sdk/_wire.py writes it.
std::string ReplyPacket(uint32_t status, uint64_t id, uint64_t shm_size, const std::vector<TensorSlot>& outputs,
                        std::string_view error = {}) {
  std::string p = "FRE2";
  auto put = [&p](const auto& v) { p.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(status);
  put(id);
  put(shm_size);
  put(static_cast<uint32_t>(outputs.size()));
  for (const TensorSlot& s : outputs) {
    put(static_cast<uint8_t>(s.datatype));
    put(static_cast<uint8_t>(s.shape.size()));
    put(static_cast<uint16_t>(s.name.size()));
    put(uint32_t{0});
    put(s.offset);
    put(s.size);
    for (int64_t d : s.shape) put(d);
    p += s.name;
  }
  p += error;
  return p;
}

TEST(WorkerMessagesTest, DecodesBinaryInferReplies) {
  WorkerReply reply;
  ASSERT_TRUE(DecodeInferReply(ReplyPacket(0, 3, 8192, {{"y", DataType::kInt64, {2}, 64, 16},
                                                         {"probabilities", DataType::kFp64, {2, 3}, 128, 48}}),
                               &reply)
                  .ok());
  EXPECT_TRUE(reply.ok);
  EXPECT_EQ(reply.id, 3u);
  EXPECT_EQ(reply.shm_size, 8192u);
  ASSERT_EQ(reply.outputs.size(), 2u);
  EXPECT_EQ(reply.outputs[0].name, "y");
  EXPECT_EQ(reply.outputs[0].datatype, DataType::kInt64);
  EXPECT_EQ(reply.outputs[0].shape, (Shape{2}));
  EXPECT_EQ(reply.outputs[0].offset, 64u);
  EXPECT_EQ(reply.outputs[1].name, "probabilities");
  EXPECT_EQ(reply.outputs[1].shape, (Shape{2, 3}));
  EXPECT_EQ(reply.outputs[1].size, 48u);

  // Errors: 1 is the request's fault (400), 2 the model's (500); the text follows.
  ASSERT_TRUE(DecodeInferReply(ReplyPacket(1, 4, 0, {}, "ValueError: bad x"), &reply).ok());
  EXPECT_FALSE(reply.ok);
  EXPECT_TRUE(reply.user_error);
  EXPECT_EQ(reply.error, "ValueError: bad x");
  EXPECT_TRUE(reply.outputs.empty());
  ASSERT_TRUE(DecodeInferReply(ReplyPacket(2, 4, 0, {}, "RuntimeError: boom"), &reply).ok());
  EXPECT_FALSE(reply.user_error);
  EXPECT_FALSE(reply.unsupported);
  EXPECT_EQ(reply.error, "RuntimeError: boom");
  // 3: the model lacks what was asked (an explanation): the server falls back.
  ASSERT_TRUE(DecodeInferReply(ReplyPacket(3, 4, 0, {}, "Model has no explanations of its own"), &reply).ok());
  EXPECT_FALSE(reply.ok);
  EXPECT_TRUE(reply.unsupported);
  EXPECT_FALSE(reply.user_error);
}

TEST(WorkerMessagesTest, RefusesMalformedInferReplies) {
  WorkerReply reply;
  const std::string good = ReplyPacket(0, 1, 64, {{"y", DataType::kFp32, {1}, 0, 4}});
  EXPECT_FALSE(DecodeInferReply(R"({"ok":true})", &reply).ok());  // a JSON reply: an older SDK
  for (size_t cut : {size_t{20}, good.size() - 1}) {
    Status s = DecodeInferReply(std::string_view(good).substr(0, cut), &reply);
    EXPECT_FALSE(s.ok()) << cut;
    EXPECT_NE(s.message().find("cut short"), std::string::npos) << s.message();
  }
  EXPECT_NE(DecodeInferReply(good + "x", &reply).message().find("past its last output"), std::string::npos);
  Status code = DecodeInferReply(ReplyPacket(0, 1, 64, {{"y", static_cast<DataType>(99), {1}, 0, 4}}), &reply);
  EXPECT_NE(code.message().find("'y': unknown datatype code 99"), std::string::npos) << code.message();
  EXPECT_FALSE(DecodeInferReply(ReplyPacket(0, 1, 64, {{"y", DataType::kFp32, {-2}, 0, 4}}), &reply).ok());
  // A count larger than the packet could hold is refused before anything is sized by it.
  std::string huge = good;
  const uint32_t many = 0xffffffffu;
  std::memcpy(huge.data() + 24, &many, 4);
  EXPECT_FALSE(DecodeInferReply(huge, &reply).ok());
}

TEST(WorkerMessagesTest, DecodesLoadReplies) {
  auto err = DecodeReply(R"({"ok":false,"error":"ImportError: no numpy"})");
  ASSERT_TRUE(err.ok());
  EXPECT_FALSE(err->ok);
  EXPECT_EQ(err->error, "ImportError: no numpy");

  auto ok = DecodeReply(R"({"ok":true,"wire":3,"described_outputs":[{"name":"predict","datatype":"INT64","shape":[-1]}]})");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->wire_version, kWireVersion);
  ASSERT_EQ(ok->described_outputs.size(), 1u);
  EXPECT_EQ(ok->described_outputs[0].datatype, DataType::kInt64);
  EXPECT_EQ(DecodeReply(R"({"ok":true})")->wire_version, 0);  // an SDK from before the binary protocol

  EXPECT_FALSE(DecodeReply("not json").ok());
  EXPECT_FALSE(DecodeReply(R"({"id":1})").ok());
  auto bad_dt = DecodeReply(R"({"ok":true,"described_outputs":[{"name":"y","datatype":"FP128","shape":[]}]})");
  ASSERT_FALSE(bad_dt.ok());
  EXPECT_NE(bad_dt.status().message().find("'y'"), std::string::npos);
  EXPECT_FALSE(DecodeReply(R"({"ok":true,"described_outputs":[{"name":"y","datatype":"FP32","shape":[-2]}]})").ok());
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
