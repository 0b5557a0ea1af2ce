#include "monitoring/payload_log/cloud_event.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace ferry::monitoring::payload_log {
namespace {

TEST(CloudEventTest, TimeIsRfc3339InUtcWithMilliseconds) {
  EXPECT_EQ(Rfc3339Millis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(Rfc3339Millis(1796144584123ull), "2026-12-01T17:03:04.123Z");
}

TEST(CloudEventTest, ExtensionNamesAreLowerCaseAlphanumericsUpTo20) {
  EXPECT_TRUE(ValidExtensionName("requestid"));
  EXPECT_TRUE(ValidExtensionName("statuscode"));
  EXPECT_TRUE(ValidExtensionName("a1234567890123456789"));
  EXPECT_FALSE(ValidExtensionName("a12345678901234567890"));
  EXPECT_FALSE(ValidExtensionName("requestId"));
  EXPECT_FALSE(ValidExtensionName("request_id"));
  EXPECT_FALSE(ValidExtensionName(""));
}

TEST(CloudEventTest, StructuredJsonCarriesTheRequiredAttributesExtensionsAndData) {
  CloudEvent e;
  e.id = "6f1c0e0e-0000-4000-8000-000000000001";
  e.source = "ferry://host/models/m/versions/1";
  e.type = "org.ferry.inference.response";
  e.time_ms = 1796144584123ull;
  e.extensions = {{"requestid", std::string("r\"1")}, {"statuscode", int64_t{400}}, {"truncated", true}};
  e.data = R"({"error":"input 'x': expected FP32"})";
  const std::string json = EncodeStructured(e);
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_FALSE(d.HasParseError()) << json;
  EXPECT_STREQ(d["specversion"].GetString(), "1.0");
  EXPECT_EQ(std::string(d["id"].GetString()), e.id);
  EXPECT_EQ(std::string(d["source"].GetString()), e.source);
  EXPECT_EQ(std::string(d["type"].GetString()), e.type);
  EXPECT_STREQ(d["time"].GetString(), "2026-12-01T17:03:04.123Z");
  EXPECT_STREQ(d["datacontenttype"].GetString(), "application/json");
  EXPECT_STREQ(d["requestid"].GetString(), "r\"1");
  EXPECT_EQ(d["statuscode"].GetInt64(), 400);
  EXPECT_TRUE(d["truncated"].GetBool());
  EXPECT_STREQ(d["data"]["error"].GetString(), "input 'x': expected FP32");
  EXPECT_EQ(json.find('\n'), std::string::npos) << "one line";
}

TEST(CloudEventTest, AnEventWithoutDataHasNeitherDataNorItsContentType) {
  CloudEvent e;
  e.id = "1";
  e.source = "s";
  e.type = "t";
  const std::string json = EncodeStructured(e);
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_FALSE(d.HasParseError()) << json;
  EXPECT_FALSE(d.HasMember("data"));
  EXPECT_FALSE(d.HasMember("datacontenttype"));
}

}  // namespace
}  // namespace ferry::monitoring::payload_log
