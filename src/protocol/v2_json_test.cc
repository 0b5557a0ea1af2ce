#include "protocol/v2_json.h"

#include <gtest/gtest.h>

#include "core/float16.h"

#include <cstring>

namespace ferry::protocol {
namespace {

Result<InferRequest> Decode(std::string body, std::optional<size_t> ihcl = std::nullopt) {
  return DecodeInferRequest(std::make_shared<const std::string>(std::move(body)), ihcl);
}

template <typename T>
std::vector<T> Values(const Tensor& t) {
  std::vector<T> v(t.byte_size() / sizeof(T));
  std::memcpy(v.data(), t.data(), t.byte_size());
  return v;
}

TEST(V2JsonTest, DecodesNestedAndFlatDataIdentically) {
  auto flat = Decode(R"({"id":"42","inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[1,2,3,4]}]})");
  auto nested = Decode(R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[[1,2],[3,4]]}]})");
  ASSERT_TRUE(flat.ok()) << flat.status().ToString();
  ASSERT_TRUE(nested.ok()) << nested.status().ToString();
  EXPECT_EQ(flat->id, "42");
  EXPECT_EQ(Values<int32_t>(flat->inputs[0]), (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(Values<int32_t>(nested->inputs[0]), Values<int32_t>(flat->inputs[0]));
}

TEST(V2JsonTest, DecodesEveryJsonDatatype) {
  auto r = Decode(R"({"inputs":[
    {"name":"b","shape":[2],"datatype":"BOOL","data":[true,false]},
    {"name":"u8","shape":[1],"datatype":"UINT8","data":[255]},
    {"name":"i64","shape":[1],"datatype":"INT64","data":[-9007199254740993]},
    {"name":"u64","shape":[1],"datatype":"UINT64","data":[18446744073709551615]},
    {"name":"f","shape":[2],"datatype":"FP32","data":[1.5, 2]},
    {"name":"d","shape":[1],"datatype":"FP64","data":[0.1]},
    {"name":"s","shape":[2],"datatype":"BYTES","data":["ab",""]}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Values<uint8_t>(r->inputs[0]), (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(Values<uint8_t>(r->inputs[1])[0], 255);
  EXPECT_EQ(Values<int64_t>(r->inputs[2])[0], -9007199254740993LL);
  EXPECT_EQ(Values<uint64_t>(r->inputs[3])[0], UINT64_MAX);
  EXPECT_EQ(Values<float>(r->inputs[4]), (std::vector<float>{1.5f, 2.0f}));
  EXPECT_EQ(Values<double>(r->inputs[5])[0], 0.1);
  EXPECT_EQ(r->inputs[6].bytes(), std::string("\x02\0\0\0ab\0\0\0\0", 10));
}

TEST(V2JsonTest, BadInputErrorsNameTheField) {
  struct Case {
    const char* body;
    const char* needle;
  } cases[] = {
      {R"({"inputs":[)", "parse"},
      {R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP33","data":[1,2]}]})", "FP33"},
      {R"({"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2]}]})", "'x'"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1.5]}]})", "'x'"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[300]}]})", "out of range"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP16","data":["1"]}]})", "JSON number"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[-1]}]})", "non-negative"},
      {R"({"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]})", "shape"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]})", "exactly one"},
      {R"({"id":5,"inputs":[]})", "'id'"},
      {R"({"outputs":[]})", "inputs"},
      {R"({"inputs":[],"parameters":{"a":[1]}})", "'a'"},
  };
  for (const auto& c : cases) {
    auto r = Decode(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.body;
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << r.status().message();
  }
}

TEST(V2JsonTest, Fp16AndBf16FromJsonNumbersRoundToNearestEven) {
  auto r = Decode(R"({"inputs":[{"name":"h","shape":[7],"datatype":"FP16","data":[1,-2.5,65504,70000,1e-8,1.00048828125,1.00146484375]},)"
                  R"({"name":"b","shape":[4],"datatype":"BF16","data":[1,3.14159,1e39,-0.0]}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // 1.00048828125 is halfway between 1 and the next half (1 + 2^-10): ties to even (1);
  // 1.00146484375 is halfway between 1+2^-10 and 1+2^-9: ties to even (1+2^-9).
  EXPECT_EQ(Values<uint16_t>(r->inputs[0]),
            (std::vector<uint16_t>{0x3c00, 0xc100, 0x7bff, 0x7c00, 0x0000, 0x3c00, 0x3c02}));
  EXPECT_EQ(Values<uint16_t>(r->inputs[1]), (std::vector<uint16_t>{0x3f80, 0x4049, 0x7f80, 0x8000}));
  EXPECT_EQ(HalfToFloat(DoubleToHalf(5.960464477539063e-08)), 5.960464477539063e-08f);  // smallest subnormal
}

TEST(V2JsonTest, BinaryTensorsBorrowTheBodyInInputOrder) {
  std::string json =
      R"({"inputs":[{"name":"a","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},)"
      R"({"name":"j","shape":[1],"datatype":"INT32","data":[7]},)"
      R"({"name":"b","shape":[1],"datatype":"INT16","parameters":{"binary_data_size":2}}]})";
  std::string body = json;
  float a[2] = {1.25f, -3.0f};
  int16_t b = -7;
  body.append(reinterpret_cast<char*>(a), sizeof a);
  body.append(reinterpret_cast<char*>(&b), sizeof b);
  auto shared = std::make_shared<const std::string>(body);
  auto r = DecodeInferRequest(shared, json.size());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Values<float>(r->inputs[0]), (std::vector<float>{1.25f, -3.0f}));
  EXPECT_EQ(reinterpret_cast<const char*>(r->inputs[0].data()), shared->data() + json.size());
  EXPECT_EQ(Values<int16_t>(r->inputs[2])[0], -7);

  auto short_tail = DecodeInferRequest(std::make_shared<const std::string>(body.substr(0, body.size() - 1)), json.size());
  ASSERT_FALSE(short_tail.ok());
  EXPECT_NE(short_tail.status().message().find("'b'"), std::string::npos);
  auto extra = DecodeInferRequest(std::make_shared<const std::string>(body + "x"), json.size());
  ASSERT_FALSE(extra.ok());
  auto bad_header = DecodeInferRequest(shared, body.size() + 1);
  ASSERT_FALSE(bad_header.ok());
  EXPECT_NE(bad_header.status().message().find("Inference-Header-Content-Length"), std::string::npos);
}

TEST(V2JsonTest, EncodesJsonAndBinaryOutputs) {
  InferRequest req;
  req.parameters["binary_data_output"] = true;
  RequestedOutput json_out{"y", {}};
  json_out.parameters["binary_data"] = false;
  req.outputs = {json_out, RequestedOutput{"z", {}}};
  InferResponse resp;
  resp.model_name = "m";
  resp.model_version = "1";
  resp.id = "7";
  Tensor y;
  y.name = "y";
  y.datatype = DataType::kFp32;
  y.shape = {2};
  float yv[2] = {1.1f, 2.0f};
  y.Own(std::string(reinterpret_cast<char*>(yv), sizeof yv));
  Tensor z;
  z.name = "z";
  z.datatype = DataType::kBool;
  z.shape = {1};
  z.Own(std::string("\x01", 1));
  resp.outputs = {y, z};
  EncodedBody enc = EncodeInferResponse(resp, req);
  ASSERT_TRUE(enc.json_length.has_value());
  std::string json = enc.body.substr(0, *enc.json_length);
  EXPECT_EQ(json,
            R"({"id":"7","model_name":"m","model_version":"1","outputs":[)"
            R"({"name":"y","datatype":"FP32","shape":[2],"data":[1.100000023841858,2.0]},)"
            R"({"name":"z","datatype":"BOOL","shape":[1],"parameters":{"binary_data_size":1}}]})");
  EXPECT_EQ(enc.body.substr(*enc.json_length), std::string("\x01", 1));
}

TEST(V2JsonTest, DeepNestingIsAnErrorNotACrash) {
  std::string deep = R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":)" + std::string(2000000, '[') +
                     std::string(2000000, ']') + "}]}";
  auto r = Decode(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nested"), std::string::npos) << r.status().message();
  auto unterminated = Decode(std::string(3000000, '['));
  EXPECT_EQ(unterminated.status().code(), StatusCode::kInvalidArgument);
}

// 'data' may nest 100 levels; deeper is refused naming the input, both below the depth
// at which the parse changes to the non-recursive parser and above it.
TEST(V2JsonTest, NestingLimitNamesTheInputOnBothParsePaths) {
  auto nested = [](int depth) {
    return R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":)" + std::string(depth, '[') + "1" +
           std::string(depth, ']') + "}]}";
  };
  auto ok = Decode(nested(100));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(Values<float>(ok->inputs[0]), std::vector<float>{1});
  for (int depth : {101, 104, 106, 200}) {
    auto r = Decode(nested(depth));
    ASSERT_FALSE(r.ok()) << depth;
    EXPECT_NE(r.status().message().find("input 'x': 'data' nested deeper than 100 levels"), std::string::npos)
        << depth << ": " << r.status().message();
  }
  auto broken = Decode(R"({"inputs":[{"name":"x",]})");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("failed to parse the request JSON at offset 23: Missing a name for object member"), std::string::npos)
      << broken.status().message();
}

TEST(V2JsonTest, ErrorBodyEscapes) { EXPECT_EQ(ErrorBody("bad \"x\""), R"({"error":"bad \"x\""})"); }

TEST(V2JsonTest, TensorDataJsonStopsAtTheByteLimit) {
  auto r = Decode(R"({"inputs":[{"name":"f","shape":[5],"datatype":"FP32","data":[1,2.5,3,4,5]},
                                {"name":"s","shape":[3],"datatype":"BYTES","data":["ab","cde","f"]}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto all = EncodeTensorDataJson(r->inputs[0], SIZE_MAX);
  EXPECT_EQ(all.json, "[1.0,2.5,3.0,4.0,5.0]");
  EXPECT_EQ(all.elements_written, 5u);
  EXPECT_EQ(all.elements_total, 5u);
  auto cut = EncodeTensorDataJson(r->inputs[0], 9);  // two FP32 fit in 9 bytes
  EXPECT_EQ(cut.json, "[1.0,2.5]");
  EXPECT_EQ(cut.elements_written, 2u);
  EXPECT_EQ(cut.elements_total, 5u);
  auto strings = EncodeTensorDataJson(r->inputs[1], 5);  // "ab" + "cde" = 5 bytes; "f" would pass it
  EXPECT_EQ(strings.json, R"(["ab","cde"])");
  EXPECT_EQ(strings.elements_written, 2u);
  EXPECT_EQ(strings.elements_total, 3u);
  EXPECT_EQ(EncodeTensorDataJson(r->inputs[1], 0).json, "[]");
}

TEST(V2JsonTest, TensorDataEncoderWritesWhatEncodeTensorDataJsonWritesCallAfterCall) {
  auto r = Decode(R"({"inputs":[{"name":"f","shape":[5],"datatype":"FP32","data":[1,2.5,3,4,0.1]},
                                {"name":"s","shape":[3],"datatype":"BYTES","data":["ab","c\"de","f"]},
                                {"name":"i","shape":[2],"datatype":"INT64","data":[-7,9]}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  TensorDataJsonEncoder encoder;
  // One encoder reused across tensors, limits and repeats: its kept buffers must not
  // carry anything from one call into the next.
  for (int round = 0; round < 2; ++round)
    for (const Tensor& t : r->inputs)
      for (size_t max : {SIZE_MAX, size_t{9}, size_t{0}}) {
        const TensorDataJson want = EncodeTensorDataJson(t, max);
        const TensorDataJsonEncoder::Encoded got = encoder.Encode(t, max);
        EXPECT_EQ(got.json, want.json) << t.name << " " << max;
        EXPECT_EQ(got.elements_written, want.elements_written) << t.name << " " << max;
        EXPECT_EQ(got.elements_total, want.elements_total) << t.name << " " << max;
      }
}

}  // namespace
}  // namespace ferry::protocol
