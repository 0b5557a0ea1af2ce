#include "protocol/grpc/grpc_codec.h"

#include <gtest/gtest.h>

#include <cstring>

namespace ferry::protocol {
namespace {

std::shared_ptr<inference::ModelInferRequest> Request() {
  auto r = std::make_shared<inference::ModelInferRequest>();
  r->set_model_name("m");
  r->set_id("7");
  (*r->mutable_parameters())["priority"].set_uint64_param(2);
  return r;
}

TEST(GrpcCodecTest, RawContentsAreBorrowedInInputOrder) {
  auto r = Request();
  auto* a = r->add_inputs();
  a->set_name("a");
  a->set_datatype("FP32");
  a->add_shape(2);
  float av[2] = {1.5f, -2.0f};
  r->add_raw_input_contents(std::string(reinterpret_cast<char*>(av), sizeof av));
  auto* s = r->add_inputs();
  s->set_name("s");
  s->set_datatype("BYTES");
  s->add_shape(1);
  r->add_raw_input_contents(std::string("\x02\0\0\0hi", 6));
  auto d = DecodeModelInferRequest(r);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->id, "7");
  EXPECT_EQ(std::get<int64_t>(d->parameters.at("priority")), 2);
  EXPECT_EQ(reinterpret_cast<const char*>(d->inputs[0].data()), r->raw_input_contents(0).data());
  float got[2];
  std::memcpy(got, d->inputs[0].data(), sizeof got);
  EXPECT_EQ(got[1], -2.0f);
  EXPECT_EQ(d->inputs[1].bytes(), std::string("\x02\0\0\0hi", 6));
}

TEST(GrpcCodecTest, TypedContentsAreNarrowedToTheDatatype) {
  auto r = Request();
  auto* a = r->add_inputs();
  a->set_name("a");
  a->set_datatype("INT16");
  a->add_shape(3);
  for (int v : {1, -2, 300}) a->mutable_contents()->add_int_contents(v);
  auto d = DecodeModelInferRequest(r);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  int16_t got[3];
  ASSERT_EQ(d->inputs[0].byte_size(), sizeof got);
  std::memcpy(got, d->inputs[0].data(), sizeof got);
  EXPECT_EQ(got[2], 300);
}

TEST(GrpcCodecTest, BadRequestsNameTheInput) {
  auto both = Request();
  auto* a = both->add_inputs();
  a->set_name("x");
  a->set_datatype("FP32");
  a->add_shape(1);
  a->mutable_contents()->add_fp32_contents(1);
  both->add_raw_input_contents(std::string(4, '\0'));
  auto d = DecodeModelInferRequest(both);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("'x'"), std::string::npos);

  auto wrong_field = Request();
  a = wrong_field->add_inputs();
  a->set_name("y");
  a->set_datatype("FP32");
  a->add_shape(1);
  a->mutable_contents()->add_int64_contents(1);
  d = DecodeModelInferRequest(wrong_field);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("'y'"), std::string::npos);

  auto short_raw = Request();
  a = short_raw->add_inputs();
  a->set_name("z");
  a->set_datatype("INT64");
  a->add_shape(2);
  short_raw->add_raw_input_contents(std::string(15, '\0'));
  d = DecodeModelInferRequest(short_raw);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("'z'"), std::string::npos);
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);

  auto fp16_typed = Request();
  a = fp16_typed->add_inputs();
  a->set_name("h");
  a->set_datatype("FP16");
  a->add_shape(1);
  a->mutable_contents();
  d = DecodeModelInferRequest(fp16_typed);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("raw_input_contents"), std::string::npos);
}

TEST(GrpcCodecTest, ResponsesUseRawOutputContents) {
  InferResponse resp;
  resp.model_name = "m";
  resp.model_version = "3";
  resp.id = "q";
  Tensor t;
  t.name = "y";
  t.datatype = DataType::kInt32;
  t.shape = {1};
  t.Own(std::string("\x05\0\0\0", 4));
  resp.outputs.push_back(t);
  inference::ModelInferResponse out;
  EncodeModelInferResponse(resp, &out);
  EXPECT_EQ(out.model_version(), "3");
  EXPECT_EQ(out.id(), "q");
  ASSERT_EQ(out.raw_output_contents_size(), 1);
  EXPECT_EQ(out.raw_output_contents(0), std::string("\x05\0\0\0", 4));
  EXPECT_EQ(out.outputs(0).datatype(), "INT32");
  EXPECT_FALSE(out.outputs(0).has_contents());
}

}  // namespace
}  // namespace ferry::protocol
