#include "stream/message_codec.h"

#include <gtest/gtest.h>

#include <cstring>

#include "batch/test_tensors.h"
#include "protocol/v2_json.h"

namespace ferry::stream {
namespace {

std::vector<batch::ModelInput> Fp32(const std::string& name, int64_t width) {
  return {{name, DataType::kFp32, {width}, 1}};
}

TEST(MessageFormatTest, ParsesNamesAndNamesTheFlag) {
  EXPECT_EQ(*ParseMessageFormat("v2"), MessageFormat::kV2Json);
  EXPECT_EQ(*ParseMessageFormat("json"), MessageFormat::kJsonRow);
  EXPECT_EQ(*ParseMessageFormat("csv"), MessageFormat::kCsvRow);
  auto bad = ParseMessageFormat("avro");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--format"), std::string::npos);
  EXPECT_NE(bad.status().message().find("'avro'"), std::string::npos);
}

TEST(HeadersTest, LastHeaderWinsAndModelComesFromHeaderOrFlag) {
  Headers h = {{"ferry-model", "a"}, {"x", "1"}, {"ferry-model", "b"}};
  ASSERT_NE(FindHeader(h, "ferry-model"), nullptr);
  EXPECT_EQ(*FindHeader(h, "ferry-model"), "b");
  EXPECT_EQ(FindHeader(h, "missing"), nullptr);

  auto ref = ResolveModel(h, {"flag_model", "3"});
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->model, "b");
  EXPECT_EQ(ref->version, "");  // a header model does not inherit the flag's version

  h.push_back({"ferry-model-version", "2"});
  EXPECT_EQ(ResolveModel(h, {}).value().version, "2");
  EXPECT_EQ(ResolveModel({}, {"flag_model", "3"}).value(), (ModelRef{"flag_model", "3"}));

  auto none = ResolveModel({}, {});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("ferry-model"), std::string::npos);
  EXPECT_NE(none.status().message().find("--model"), std::string::npos);
  EXPECT_FALSE(ResolveModel({{"ferry-model", ""}}, {"m", ""}).ok());
}

TEST(HeadersTest, OutputAndDeadLetterHeadersNameTheSource) {
  SourcePosition src{"in", 3, 42};
  Headers out = OutputHeaders(src, {"m", "1"});
  EXPECT_EQ(*FindHeader(out, kSourceTopicHeader), "in");
  EXPECT_EQ(*FindHeader(out, kSourcePartitionHeader), "3");
  EXPECT_EQ(*FindHeader(out, kSourceOffsetHeader), "42");
  EXPECT_EQ(*FindHeader(out, kModelHeader), "m");
  EXPECT_EQ(*FindHeader(out, kModelVersionHeader), "1");
  EXPECT_EQ(FindHeader(OutputHeaders(src, {"m", ""}), kModelVersionHeader), nullptr);

  Headers dead = DeadLetterHeaders({{"trace", "t1"}}, src, InvalidArgument("input 'x': bad"), "decode");
  EXPECT_EQ(dead.front(), (Header{"trace", "t1"}));  // the input's own headers are kept
  EXPECT_EQ(*FindHeader(dead, kErrorHeader), "input 'x': bad");
  EXPECT_EQ(*FindHeader(dead, kErrorCodeHeader), "INVALID_ARGUMENT");
  EXPECT_EQ(*FindHeader(dead, kErrorStageHeader), "decode");
  EXPECT_EQ(*FindHeader(dead, kSourceOffsetHeader), "42");
}

TEST(V2MessageTest, DecodesRequestAndTakesTheKeyAsId) {
  auto req = DecodeV2Message(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1.5,2]}]})", "k7");
  ASSERT_TRUE(req.ok()) << req.status().message();
  EXPECT_EQ(req->id, "k7");
  ASSERT_EQ(req->inputs.size(), 1u);
  float v[2];
  std::memcpy(v, req->inputs[0].data(), sizeof v);
  EXPECT_EQ(v[0], 1.5f);
  EXPECT_EQ(v[1], 2.0f);
  auto own_id = DecodeV2Message(R"({"id":"mine","inputs":[{"name":"x","datatype":"INT64","shape":[1],"data":[1]}]})", "k");
  ASSERT_TRUE(own_id.ok());
  EXPECT_EQ(own_id->id, "mine");

  auto bad = DecodeV2Message(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1]}]})", "k");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(DecodeV2Message("not json", "k").ok());
}

TEST(V2MessageTest, EncodesJsonEvenForFp16) {
  InferResponse resp;
  resp.model_name = "m";
  resp.model_version = "1";
  resp.id = "k";
  Tensor t;
  t.name = "y";
  t.datatype = DataType::kInt32;
  t.shape = {1, 2};
  int32_t v[2] = {3, -4};
  t.Own(std::string(reinterpret_cast<const char*>(v), sizeof v));
  resp.outputs.push_back(t);
  const std::string body = EncodeV2Response(resp).value();
  EXPECT_NE(body.find(R"("model_name":"m")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("id":"k")"), std::string::npos) << body;
  EXPECT_NE(body.find("[3,-4]"), std::string::npos) << body;
  EXPECT_EQ(body.find("binary_data_size"), std::string::npos) << body;
}

TEST(V2MessageTest, BytesOutputsAreJsonStringsAndNonUtf8IsRefusedNamingTheOutput) {
  auto response_of = [](const std::string& element) {
    InferResponse resp;
    resp.model_name = "m";
    resp.outputs.push_back(batch::test_util::MakeBytesTensor("echo", {1, 1}, {element}));
    return resp;
  };
  auto good = EncodeV2Response(response_of("a,\"b\"\n\xc3\xbc"));
  ASSERT_TRUE(good.ok()) << good.status().message();
  EXPECT_NE(good->find(R"("data":["a,\"b\"\nü"])"), std::string::npos) << *good;
  auto bad = EncodeV2Response(response_of("\xff\xfe"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("output 'echo'"), std::string::npos) << bad.status().message();
}

TEST(ColumnsTest, ParsesNamesAndWidths) {
  auto cols = ParseColumns({"a", "vec:4"});
  ASSERT_TRUE(cols.ok());
  ASSERT_EQ(cols->size(), 2u);
  EXPECT_EQ((*cols)[0].name, "a");
  EXPECT_EQ((*cols)[0].width, 1u);
  EXPECT_EQ((*cols)[1].width, 4u);
  for (const char* bad : {"v:0", "v:x", ":3"}) {
    auto r = ParseColumns({bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("--columns"), std::string::npos);
  }
  EXPECT_FALSE(ParseColumns({"a", "a"}).ok());
  auto from_inputs = ColumnsOfInputs(Fp32("input", 4));
  ASSERT_EQ(from_inputs.size(), 1u);
  EXPECT_EQ(from_inputs[0].name, "input");
  EXPECT_EQ(from_inputs[0].width, 4u);
}

TEST(RowMessageTest, CsvLineFeedsTheInputByColumnName) {
  auto cols = ParseColumns({"a", "b"});
  auto d = RowMessageDecoder::Create(MessageFormat::kCsvRow, *cols, Fp32("input", 2), {});
  ASSERT_TRUE(d.ok()) << d.status().message();
  float row[2];
  char* dst[] = {reinterpret_cast<char*>(row)};
  ASSERT_TRUE(d->Decode("1.5,2\n", dst).ok());
  EXPECT_EQ(row[0], 1.5f);
  EXPECT_EQ(row[1], 2.0f);
  Status bad = d->Decode("1.5,oops", dst);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("column 'b'"), std::string::npos) << bad.message();
  EXPECT_EQ(bad.message().find("row 0"), std::string::npos) << bad.message();
  EXPECT_FALSE(d->Decode("1,2,3", dst).ok());
  EXPECT_FALSE(d->Decode("1,2\n3,4", dst).ok());
  EXPECT_FALSE(d->Decode("", dst).ok());
}

TEST(RowMessageTest, JsonObjectByInputNameAndMissingKeyIsNamed) {
  std::vector<batch::ModelInput> inputs = {{"x", DataType::kInt64, {2}, 1}, {"flag", DataType::kBool, {1}, 1}};
  auto d = RowMessageDecoder::Create(MessageFormat::kJsonRow, ColumnsOfInputs(inputs), inputs, {});
  ASSERT_TRUE(d.ok()) << d.status().message();
  int64_t x[2];
  bool flag;
  char* dst[] = {reinterpret_cast<char*>(x), reinterpret_cast<char*>(&flag)};
  ASSERT_TRUE(d->Decode(R"({"x": [7, -8], "flag": true, "extra": "ignored"})", dst).ok());
  EXPECT_EQ(x[0], 7);
  EXPECT_EQ(x[1], -8);
  EXPECT_TRUE(flag);
  Status missing = d->Decode(R"({"x": [1, 2]})", dst);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("'flag'"), std::string::npos) << missing.message();
  EXPECT_FALSE(d->Decode(R"({"x": [1], "flag": true})", dst).ok());
  EXPECT_FALSE(d->Decode("[1,2]", dst).ok());
}

using batch::test_util::Elements;

TEST(RowMessageTest, StringCellsFeedBytesInputsAndABadValueNamesTheColumn) {
  std::vector<batch::ModelInput> inputs = {{"text", DataType::kBytes, {1}, 1}, {"n", DataType::kInt64, {1}, 1}};
  auto csv = RowMessageDecoder::Create(MessageFormat::kCsvRow, *ParseColumns({"text", "n"}), inputs, {});
  ASSERT_TRUE(csv.ok()) << csv.status().message();
  int64_t n = 0;
  std::string text;
  char* dst[] = {nullptr, reinterpret_cast<char*>(&n)};
  std::string* bytes[] = {&text, nullptr};
  ASSERT_TRUE(csv->Decode("\"a,\"\"b\"\"\nc\",3\r\n", dst, bytes).ok());
  EXPECT_EQ(Elements(text), std::vector<std::string>{"a,\"b\"\nc"});
  EXPECT_EQ(n, 3);
  text.clear();
  Status bad = csv->Decode("ok,three", dst, bytes);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("column 'n'"), std::string::npos) << bad.message();
  EXPECT_TRUE(text.empty()) << "a row that fails appends no strings";

  auto json = RowMessageDecoder::Create(MessageFormat::kJsonRow, ColumnsOfInputs(inputs), inputs, {});
  ASSERT_TRUE(json.ok()) << json.status().message();
  ASSERT_TRUE(json->Decode(R"({"text": "na\u00efve \"q\"", "n": 4})", dst, bytes).ok());
  ASSERT_TRUE(json->Decode(R"({"text": [""], "n": 5})", dst, bytes).ok());
  EXPECT_EQ(Elements(text), (std::vector<std::string>{"na\xc3\xafve \"q\"", ""}));
  Status number = json->Decode(R"({"text": 7, "n": 4})", dst, bytes);
  ASSERT_FALSE(number.ok());
  EXPECT_NE(number.message().find("column 'text'"), std::string::npos) << number.message();
  EXPECT_NE(number.message().find("not a string"), std::string::npos) << number.message();
  EXPECT_EQ(Elements(text).size(), 2u);
}

TEST(RowMessageTest, SchemaThatDoesNotFitIsRefusedNamingTheInput) {
  auto cols = ParseColumns({"a", "b", "c"});
  auto d = RowMessageDecoder::Create(MessageFormat::kCsvRow, *cols, Fp32("input", 4), {});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("input 'input'"), std::string::npos) << d.status().message();
  std::vector<batch::ModelInput> two = {{"X", DataType::kFp32, {1}, 1}, {"Y", DataType::kFp32, {1}, 1}};
  auto d2 = RowMessageDecoder::Create(MessageFormat::kJsonRow, *ParseColumns({"X", "Z"}), two, {});
  ASSERT_FALSE(d2.ok());
  EXPECT_NE(d2.status().message().find("'Y'"), std::string::npos) << d2.status().message();
  auto wide_csv = RowMessageDecoder::Create(MessageFormat::kCsvRow, *ParseColumns({"v:4"}), Fp32("input", 4), {});
  ASSERT_FALSE(wide_csv.ok());
  EXPECT_NE(wide_csv.status().message().find("--columns"), std::string::npos);
}

TEST(SliceTest, SlicesFixedAndBytesOutputsByRow) {
  auto resp = std::make_shared<InferResponse>();
  resp->model_name = "m";
  Tensor f;
  f.name = "f";
  f.datatype = DataType::kFp32;
  f.shape = {3, 2};
  float fv[6] = {0, 1, 2, 3, 4, 5};
  f.Own(std::string(reinterpret_cast<const char*>(fv), sizeof fv));
  Tensor b;
  b.name = "s";
  b.datatype = DataType::kBytes;
  b.shape = {3, 1};
  std::string bytes;
  for (std::string s : {"a", "bcd", ""}) {
    uint32_t n = static_cast<uint32_t>(s.size());
    bytes.append(reinterpret_cast<const char*>(&n), 4);
    bytes += s;
  }
  b.Own(bytes);
  resp->outputs = {f, b};
  auto row1 = SliceResponse(resp, 1, 3);
  ASSERT_TRUE(row1.ok()) << row1.status().message();
  EXPECT_EQ(row1->outputs[0].shape, (Shape{1, 2}));
  float got[2];
  std::memcpy(got, row1->outputs[0].data(), sizeof got);
  EXPECT_EQ(got[0], 2.0f);
  EXPECT_EQ(got[1], 3.0f);
  EXPECT_EQ(row1->outputs[1].byte_size(), 7u);
  EXPECT_EQ(row1->outputs[1].bytes().substr(4), "bcd");
  EXPECT_EQ(SliceResponse(resp, 2, 3)->outputs[1].byte_size(), 4u);
  EXPECT_FALSE(SliceResponse(resp, 0, 2).ok());  // leading dimension is 3
}

}  // namespace
}  // namespace ferry::stream
