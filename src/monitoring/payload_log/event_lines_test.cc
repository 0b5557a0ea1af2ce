#include "monitoring/payload_log/event_lines.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <regex>
#include <set>

#include "monitoring/payload_log/cloud_event.h"

namespace ferry::monitoring::payload_log {
namespace {

Tensor Make(std::string name, DataType type, Shape shape, std::string bytes) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = type;
  t.shape = std::move(shape);
  t.Own(std::move(bytes));
  return t;
}

template <typename T>
Tensor Numbers(std::string name, DataType type, std::vector<T> v) {
  return Make(std::move(name), type, {1, static_cast<int64_t>(v.size())},
              std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T)));
}

Tensor Strings(std::string name, std::vector<std::string> v) {
  std::string bytes;
  for (const auto& s : v) {
    const uint32_t n = static_cast<uint32_t>(s.size());
    bytes.append(reinterpret_cast<const char*>(&n), 4).append(s);
  }
  return Make(std::move(name), DataType::kBytes, {static_cast<int64_t>(v.size())}, std::move(bytes));
}

// The old encoder's lines: AppendStructured over RecordEvents, a newline after each.
std::string OldLines(const InferenceRecord& r, const EventOptions& o) {
  std::string out;
  for (const auto& e : RecordEvents(r, o)) {
    AppendStructured(e, &out);
    out += '\n';
  }
  return out;
}

// The event ids (new UUIDs each time) replaced by a placeholder; the ids found.
std::string Masked(const std::string& lines, std::vector<std::string>* ids) {
  static const std::regex kId(R"re(^\{"specversion":"1\.0","id":"([0-9a-f-]{36})")re");
  std::string out;
  size_t start = 0;
  while (start < lines.size()) {
    const size_t end = lines.find('\n', start);
    std::string line = lines.substr(start, end - start);
    std::smatch m;
    if (std::regex_search(line, m, kId)) {
      ids->push_back(m[1]);
      line.replace(static_cast<size_t>(m.position(1)), 36, "ID");
    }
    out += line + '\n';
    start = end + 1;
  }
  return out;
}

void ExpectSameAsOld(const InferenceRecord& r, const EventOptions& o, EventLineWriter* shared = nullptr) {
  std::string direct;
  EventLineWriter own;
  EventLineWriter& writer = shared ? *shared : own;
  const size_t n = writer.Append(r, o, &direct);
  std::vector<std::string> old_ids, new_ids;
  EXPECT_EQ(Masked(direct, &new_ids), Masked(OldLines(r, o), &old_ids));
  EXPECT_EQ(n, new_ids.size());
  ASSERT_EQ(new_ids.size(), old_ids.size());
  static const std::regex kV4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> all(old_ids.begin(), old_ids.end());
  for (const auto& id : new_ids) {
    EXPECT_TRUE(std::regex_match(id, kV4)) << id;
    EXPECT_TRUE(all.insert(id).second) << "ids repeat: " << id;
  }
  // Every line parses as JSON on its own.
  size_t start = 0;
  while (start < direct.size()) {
    const size_t end = direct.find('\n', start);
    ASSERT_NE(end, std::string::npos) << "each line ends in a newline";
    rapidjson::Document d;
    d.Parse(direct.data() + start, end - start);
    EXPECT_FALSE(d.HasParseError()) << direct.substr(start, end - start);
    start = end + 1;
  }
}

InferenceRecord Success() {
  InferenceRecord r;
  r.model = "iris";
  r.version = "2";
  r.request_id = "req-7";
  r.received_wall_ms = 1796144584123ull;
  r.duration_ns = 2500000;
  r.inputs.push_back(Numbers<float>("x", DataType::kFp32, {5.1f, 3.5f, 1.4f, 0.2f, -1e-7f, 3e38f}));
  r.outputs.push_back(Numbers<int64_t>("label", DataType::kInt64, {2}));
  r.outputs.push_back(Numbers<float>("probabilities", DataType::kFp32, {0.9f, 0.05f, 0.05f}));
  return r;
}

TEST(EventLineWriterTest, WritesWhatTheEventEncoderWritesForASuccess) {
  ExpectSameAsOld(Success(), EventOptions{});
}

TEST(EventLineWriterTest, WritesWhatTheEventEncoderWritesWithParametersTraceAndSampling) {
  InferenceRecord r = Success();
  r.parameters["priority"] = int64_t{1};
  r.parameters["tag"] = std::string("a \"quoted\"\n\ttag\x01");
  r.parameters["flag"] = true;
  r.trace_parent = TraceContext::Parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  ASSERT_TRUE(r.trace_parent.has_value());
  r.frontend = Frontend::kGrpc;
  EventOptions o;
  o.sampled_rate = 10;
  o.source = "ferry://host:8000";
  ExpectSameAsOld(r, o);
}

TEST(EventLineWriterTest, WritesWhatTheEventEncoderWritesForEscapesAndOddNames) {
  InferenceRecord r = Success();
  r.model = "my model/ü";
  r.version = "1 0";
  r.request_id = "id \"with\" \\ and \x1f and é";
  r.inputs.push_back(Strings("text", {"hello", "qu\"ote\\", "new\nline", ""}));
  r.inputs.push_back(Numbers<uint8_t>("flags", DataType::kBool, {1, 0, 1}));
  r.inputs.push_back(Numbers<double>("d", DataType::kFp64, {0.1, 1e300, -0.0, 123456789.0}));
  ExpectSameAsOld(r, EventOptions{});
}

TEST(EventLineWriterTest, WritesWhatTheEventEncoderWritesForFailures) {
  InferenceRecord r = Success();
  r.outputs.clear();
  r.code = StatusCode::kInvalidArgument;
  r.error = "input 'x': expected FP32 got \"INT64\"";
  ExpectSameAsOld(r, EventOptions{});
  // A body that did not decode: no inputs, so the request event has no data.
  r.inputs.clear();
  r.request_id.clear();
  ExpectSameAsOld(r, EventOptions{});
  r.code = StatusCode::kUnavailable;
  ExpectSameAsOld(r, EventOptions{});
}

TEST(EventLineWriterTest, WritesWhatTheEventEncoderWritesForTruncationAndModes) {
  InferenceRecord r = Success();
  std::vector<float> big(1000, 0.25f);
  r.inputs.push_back(Numbers<float>("big", DataType::kFp32, big));
  r.outputs.push_back(Numbers<float>("big_out", DataType::kFp32, big));
  EventOptions o;
  o.max_tensor_bytes = 64;
  ExpectSameAsOld(r, o);
  o.mode = LogMode::kRequest;
  ExpectSameAsOld(r, o);
  o.mode = LogMode::kResponse;
  ExpectSameAsOld(r, o);
}

TEST(EventLineWriterTest, OneWriterFollowsTheVersionAndSourceOfEachRecord) {
  EventLineWriter writer;
  InferenceRecord a = Success();
  InferenceRecord b = Success();
  b.model = "other";
  b.version = "7";
  EventOptions o;
  EventOptions o2;
  o2.source = "ferry://elsewhere";
  for (int i = 0; i < 3; ++i) {
    ExpectSameAsOld(a, o, &writer);
    ExpectSameAsOld(b, o, &writer);
    ExpectSameAsOld(b, o2, &writer);
  }
}

TEST(EventLineWriterTest, TimesMatchTheCLibraryAcrossDatesAndLeapYears) {
  for (uint64_t ms : {0ull, 1ull, 951782400000ull /* 2000-02-29 */, 1796144584123ull, 4107542399999ull,
                      253402300799999ull /* 9999-12-31T23:59:59.999 */, 253402300800000ull}) {
    std::string s;
    AppendRfc3339Millis(ms, &s);
    EXPECT_EQ(s, Rfc3339Millis(ms)) << ms;
  }
  for (uint64_t ms = 0; ms < 5000ull * 86400000; ms += 86400000ull * 37 + 3600123) {
    std::string s;
    AppendRfc3339Millis(ms, &s);
    ASSERT_EQ(s, Rfc3339Millis(ms)) << ms;
  }
}

TEST(EventLineWriterTest, EveryEventOfAWarmWriterGetsItsOwnId) {
  EventLineWriter writer;
  std::string out;
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    out.clear();
    writer.Append(Success(), EventOptions{}, &out);
    std::vector<std::string> found;
    Masked(out, &found);
    for (const auto& id : found) EXPECT_TRUE(ids.insert(id).second);
  }
  EXPECT_EQ(ids.size(), 200u);
}

// AppendJsonString scans for bytes to escape a word at a time: a byte to escape at any
// place of a word or of the tail, and bytes that need none (high bytes, DEL, '/'), must
// come out as rapidjson's Writer writes them.
TEST(EventLinesTest, JsonStringsAreEscapedAsRapidjsonEscapesThem) {
  const std::string specials[] = {"\"", "\\", "\n", "\t", "\b", "\f", "\r", std::string(1, '\0'), "\x01",
                                  "\x1f", "\x7f", "\xc3\xa9", "/", " ", "\x80"};
  for (const std::string& special : specials)
    for (size_t at = 0; at < 20; ++at) {
      const std::string s = std::string(at, 'a') + special + std::string(19 - at, 'b');
      rapidjson::StringBuffer sb;
      rapidjson::Writer<rapidjson::StringBuffer> w(sb);
      w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
      std::string got = "x";
      AppendJsonString(s, &got);
      EXPECT_EQ(got, "x" + std::string(sb.GetString(), sb.GetSize())) << "byte " << at << " of " << s.size();
    }
}

}  // namespace
}  // namespace ferry::monitoring::payload_log
