#include "engine/grpc_wire.h"

#include <gtest/gtest.h>

#include <vector>

#include "protocol/grpc/grpc_service.pb.h"

namespace ferry::engine {
namespace {

const ModelTargetFields kMetadataFields{"ModelMetadataRequest", "name", "version", ""};

Result<ModelTarget> Scan(const std::string& bytes, const ModelTargetFields& fields = kInferRequestFields) {
  std::string_view one[] = {bytes};
  return ScanModelTarget(one, fields);
}

std::string InferRequest() {
  inference::ModelInferRequest req;
  req.set_model_name("add_sub");
  req.set_model_version("1");
  req.set_id("req-7");
  (*req.mutable_parameters())["priority"].set_int64_param(3);
  for (const char* name : {"INPUT0", "INPUT1"}) {
    auto* in = req.add_inputs();
    in->set_name(name);
    in->set_datatype("FP32");
    in->add_shape(1);
    in->add_shape(16);
    req.add_raw_input_contents(std::string(64, '\x01'));
  }
  req.add_outputs()->set_name("OUTPUT0");
  return req.SerializeAsString();
}

TEST(GrpcWireTest, ReadsNameVersionAndIdOfARealRequest) {
  auto t = Scan(InferRequest());
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->name, "add_sub");
  EXPECT_EQ(t->version, "1");
  EXPECT_EQ(t->id, "req-7");
}

TEST(GrpcWireTest, ChunkBoundariesAnywhereGiveTheSameAnswer) {
  const std::string bytes = InferRequest();
  // Two chunks split at every position, and one byte per chunk.
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    std::string_view parts[] = {std::string_view(bytes).substr(0, cut), std::string_view(bytes).substr(cut)};
    auto t = ScanModelTarget(parts, kInferRequestFields);
    ASSERT_TRUE(t.ok()) << "cut at " << cut << ": " << t.status().message();
    EXPECT_EQ(t->name, "add_sub") << cut;
    EXPECT_EQ(t->version, "1") << cut;
  }
  std::vector<std::string_view> bytewise;
  for (size_t i = 0; i < bytes.size(); ++i) bytewise.push_back(std::string_view(bytes).substr(i, 1));
  auto t = ScanModelTarget(bytewise, kInferRequestFields);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->name, "add_sub");
  EXPECT_EQ(t->id, "req-7");
}

TEST(GrpcWireTest, LastOccurrenceWinsAsInAProtobufParser) {
  inference::ModelInferRequest later;
  later.set_model_name("int_ops");
  // Concatenated messages merge: the later singular field wins.
  const std::string bytes = InferRequest() + later.SerializeAsString();
  inference::ModelInferRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  auto t = Scan(bytes);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->name, parsed.model_name());
  EXPECT_EQ(t->name, "int_ops");
  EXPECT_EQ(t->version, "1") << "a field the later message lacks keeps its value";
}

TEST(GrpcWireTest, EmptyMessageAndAbsentFieldsAreEmpty) {
  auto t = Scan("");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->name, "");
  EXPECT_EQ(t->version, "");
}

TEST(GrpcWireTest, FieldWithAnotherWireTypeIsSkippedAsUnknown) {
  // Field 1 as a varint (tag 0x08), then field 2 as a string.
  const std::string bytes = std::string("\x08\x96\x01", 3) + "\x12\x01" "3";
  inference::ModelInferRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes)) << "protobuf keeps it as an unknown field";
  auto t = Scan(bytes);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->name, "");
  EXPECT_EQ(t->version, "3");
}

TEST(GrpcWireTest, MetadataRequestsUseTheirOwnFieldNames) {
  inference::ModelMetadataRequest req;
  req.set_name("mlp_classifier");
  req.set_version("2");
  auto t = Scan(req.SerializeAsString(), kMetadataFields);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->name, "mlp_classifier");
  EXPECT_EQ(t->version, "2");
  auto bad = Scan("\x0a\x05" "ab", kMetadataFields);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "malformed ModelMetadataRequest: field 1 (name) at byte 0: length 5 runs past the end of the message "
            "(2 bytes left)");
}

struct Malformed {
  const char* what;
  std::string bytes;
  const char* message;
};

TEST(GrpcWireTest, MalformedBytesAreInvalidArgumentNamingTheField) {
  const std::string whole = InferRequest();
  const Malformed cases[] = {
      {"name longer than the message", std::string("\x0a\xac\x02" "add", 6),
       "malformed ModelInferRequest: field 1 (model_name) at byte 0: length 300 runs past the end of the message "
       "(3 bytes left)"},
      {"version length cut off", std::string("\x0a\x01" "a" "\x12\x80", 5),
       "malformed ModelInferRequest: field 2 (model_version) at byte 3: truncated length"},
      {"message cut inside a tensor payload", whole.substr(0, whole.size() - 10),
       "malformed ModelInferRequest: field 7 at byte "},
      {"field number 0", std::string("\x02\x00", 2),
       "malformed ModelInferRequest: field 0 at byte 0: field numbers start at 1"},
      {"invalid wire type", std::string("\x0a\x01" "a" "\x1f", 4),
       "malformed ModelInferRequest: field 3 (id) at byte 3: invalid wire type 7"},
      {"group", std::string("\x0b", 1),
       "malformed ModelInferRequest: field 1 (model_name) at byte 0: groups (wire type 3) are not part of this message"},
      {"overlong varint value", std::string("\x20") + std::string(10, '\xff') + "\x01",
       "malformed ModelInferRequest: field 4 at byte 0: overlong varint"},
      {"truncated tag", std::string("\x0a\x00\x80", 3), "malformed ModelInferRequest: truncated field tag at byte 2"},
      {"fixed32 cut off", std::string("\x2d\x01\x02", 3),
       "malformed ModelInferRequest: field 5 at byte 0: 4-byte value runs past the end of the message (2 bytes left)"},
      {"not protobuf at all", "this is not a protobuf message",
       "malformed ModelInferRequest: field 14 at byte 0: groups (wire type 4) are not part of this message"},
  };
  for (const auto& c : cases) {
    auto t = Scan(c.bytes);
    ASSERT_FALSE(t.ok()) << c.what;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_EQ(t.status().message().rfind(c.message, 0), 0u) << c.what << ": " << t.status().message();
    inference::ModelInferRequest parsed;
    EXPECT_FALSE(parsed.ParseFromString(c.bytes)) << c.what << ": protobuf must refuse it too";
  }
}

}  // namespace
}  // namespace ferry::engine
