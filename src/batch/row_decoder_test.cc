#include "batch/row_decoder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "batch/test_tensors.h"

namespace ferry::batch {
namespace {

class RowDecoderTest : public ::testing::Test {
 protected:
  std::filesystem::path Write(const std::string& name, const std::string& text) {
    auto dir = std::filesystem::temp_directory_path() / ("ferry_rowdec_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto p = dir / name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  void TearDown() override {
    std::filesystem::remove_all(std::filesystem::temp_directory_path() / ("ferry_rowdec_" + std::to_string(::getpid())));
  }
  static std::vector<ModelInput> Fp32(const std::string& name, int64_t width) {
    return {{name, DataType::kFp32, {width}, 1}};
  }
};

TEST_F(RowDecoderTest, AllColumnsFeedTheOneInputAndCarriedOnesAreKept) {
  auto reader = InputReader::Open(Write("a.csv", "id,a,b\nx1,1.5,2\n\"y,2\",3,bad\n"), Format::kCsv);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  auto d = RowDecoder::Create(**reader, Fp32("input", 2), {"id"}, {});
  ASSERT_TRUE(d.ok()) << d.status().message();
  float row[2];
  char* dst[] = {reinterpret_cast<char*>(row)};
  std::vector<std::string> carried;
  RawRow raw;
  auto all = [](uint64_t) { return true; };
  ASSERT_TRUE((*reader)->Next(&raw, all));
  ASSERT_TRUE(d->Decode(raw, dst, &carried).ok());
  EXPECT_EQ(row[0], 1.5f);
  EXPECT_EQ(row[1], 2.0f);
  EXPECT_EQ(carried, std::vector<std::string>{"x1"});
  ASSERT_TRUE((*reader)->Next(&raw, all));
  Status s = d->Decode(raw, dst, &carried);
  EXPECT_EQ(s.message(), "row 1 (line 3), column 'b': 'bad' is not a number");
  EXPECT_FALSE((*reader)->Next(&raw, all));
}

TEST_F(RowDecoderTest, WrongCellCountNamesTheRow) {
  auto reader = InputReader::Open(Write("b.csv", "a,b\n1\n"), Format::kCsv);
  auto d = RowDecoder::Create(**reader, Fp32("input", 2), {}, {});
  ASSERT_TRUE(d.ok());
  float row[2];
  char* dst[] = {reinterpret_cast<char*>(row)};
  std::vector<std::string> carried;
  RawRow raw;
  ASSERT_TRUE((*reader)->Next(&raw, [](uint64_t) { return true; }));
  EXPECT_EQ(d->Decode(raw, dst, &carried).message(), "row 0 (line 2): 1 cells, the header has 2");
}

TEST_F(RowDecoderTest, SchemaMismatchIsRefusedNamingTheInput) {
  auto reader = InputReader::Open(Write("c.csv", "a,b,c\n1,2,3\n"), Format::kCsv);
  auto d = RowDecoder::Create(**reader, Fp32("input", 4), {}, {});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(),
            "input 'input' needs 4 values per row (shape [4]); the input's columns other than --carry ones (a, b, c) hold 3");
  std::vector<ModelInput> two{{"INPUT0", DataType::kFp32, {1}, 1}, {"INPUT1", DataType::kFp32, {1}, 1}};
  d = RowDecoder::Create(**reader, two, {}, {{"a", "INPUT0"}});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(),
            "input 'INPUT1': no column feeds it; expected a column 'INPUT1' or --map COLUMN:INPUT1 (columns: 'a', 'b', 'c')");
  d = RowDecoder::Create(**reader, Fp32("input", 3), {"zz"}, {});
  EXPECT_EQ(d.status().message(), "--carry: no column 'zz' in the input (columns: 'a', 'b', 'c')");
  d = RowDecoder::Create(**reader, two, {}, {{"a", "INPUT0"}, {"q", "INPUT1"}});
  EXPECT_EQ(d.status().message(), "--map q:INPUT1: no column 'q' in the input (columns: 'a', 'b', 'c')");
}

TEST_F(RowDecoderTest, WideColumnsAndJsonArrays) {
  auto reader = InputReader::Open(Write("d.jsonl", "{\"X\": [1, 2], \"id\": {\"k\": 1}}\n{\"X\": [1]}\nnot json\n"),
                                  Format::kJsonl);
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  std::vector<ModelInput> in{{"X", DataType::kInt64, {2}, 1}};
  auto d = RowDecoder::Create(**reader, in, {"id"}, {});
  ASSERT_TRUE(d.ok()) << d.status().message();
  int64_t row[2];
  char* dst[] = {reinterpret_cast<char*>(row)};
  std::vector<std::string> carried;
  RawRow raw;
  auto all = [](uint64_t) { return true; };
  ASSERT_TRUE((*reader)->Next(&raw, all));
  ASSERT_TRUE(d->Decode(raw, dst, &carried).ok());
  EXPECT_EQ(row[1], 2);
  EXPECT_EQ(carried, std::vector<std::string>{"{\"k\":1}"});
  ASSERT_TRUE((*reader)->Next(&raw, all));
  EXPECT_EQ(d->Decode(raw, dst, &carried).message(), "row 1 (line 2), column 'X': 1 values, expected 2");
  ASSERT_TRUE((*reader)->Next(&raw, all));
  EXPECT_EQ(d->Decode(raw, dst, &carried).message(), "row 2 (line 3): not valid JSON");

  auto csv = InputReader::Open(Write("e.csv", "X_0,X_1\n3,4.0\n"), Format::kCsv);
  d = RowDecoder::Create(**csv, in, {}, {});
  ASSERT_TRUE(d.ok()) << d.status().message();
  ASSERT_TRUE((*csv)->Next(&raw, all));
  ASSERT_TRUE(d->Decode(raw, dst, &carried).ok());
  EXPECT_EQ(row[0], 3);
  EXPECT_EQ(row[1], 4);
}

using test_util::Elements;

TEST_F(RowDecoderTest, BytesInputsTakeTheCellTextInMapOrder) {
  // Plain lines (the one-pass path), a quoted cell (the full splitter), a bad number.
  auto reader = InputReader::Open(Write("s.csv", "id,a,b,x\nr0,hi there,,1.5\nr1,\"q,\"\"x\"\"\",z,2\nr2,k,l,bad\n"),
                                  Format::kCsv);
  ASSERT_TRUE(reader.ok());
  std::vector<ModelInput> inputs = {{"s", DataType::kBytes, {2}, 1}, {"x", DataType::kFp32, {1}, 1}};
  auto d = RowDecoder::Create(**reader, inputs, {"id"}, {{"b", "s"}, {"a", "s"}, {"x", "x"}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  std::string s_bytes;
  float x[3];
  std::vector<std::string> carried;
  std::string* bytes[] = {&s_bytes, nullptr};
  RawRow raw;
  auto all = [](uint64_t) { return true; };
  for (int r = 0; r < 3; ++r) {
    char* dst[] = {nullptr, reinterpret_cast<char*>(&x[r])};
    ASSERT_TRUE((*reader)->Next(&raw, all));
    Status st = d->Decode(raw, dst, &carried, bytes);
    if (r < 2) ASSERT_TRUE(st.ok()) << st.message();
    else EXPECT_EQ(st.message(), "row 2 (line 4), column 'x': 'bad' is not a number");
  }
  // --map b:s,a:s puts b first; the failed row added nothing.
  EXPECT_EQ(Elements(s_bytes), (std::vector<std::string>{"", "hi there", "z", "q,\"x\""}));
  EXPECT_EQ(carried, (std::vector<std::string>{"r0", "r1"}));
  EXPECT_EQ(x[1], 2.0f);

  auto jr = InputReader::Open(Write("s.jsonl", "{\"s\": [\"a\", \"\\u00e9\"]}\n{\"s\": [\"a\", 3]}\n"), Format::kJsonl);
  ASSERT_TRUE(jr.ok());
  auto jd = RowDecoder::Create(**jr, {{"s", DataType::kBytes, {2}, 1}}, {}, {});
  ASSERT_TRUE(jd.ok()) << jd.status().message();
  std::string j_bytes;
  std::string* jbytes[] = {&j_bytes};
  char* jdst[] = {nullptr};
  ASSERT_TRUE((*jr)->Next(&raw, all));
  ASSERT_TRUE(jd->Decode(raw, jdst, &carried, jbytes).ok());
  ASSERT_TRUE((*jr)->Next(&raw, all));
  EXPECT_EQ(jd->Decode(raw, jdst, &carried, jbytes).message(),
            "row 1 (line 2), column 's' [1]: not a string (input 's' is BYTES)");
  EXPECT_EQ(Elements(j_bytes), (std::vector<std::string>{"a", "\xc3\xa9"}));
}

TEST(ParseElement, RangesAndTypes) {
  char buf[8];
  EXPECT_TRUE(ParseElement(DataType::kInt8, "127", buf));
  EXPECT_FALSE(ParseElement(DataType::kInt8, "128", buf));
  EXPECT_FALSE(ParseElement(DataType::kInt32, "1.5", buf));
  EXPECT_TRUE(ParseElement(DataType::kBool, "true", buf));
  EXPECT_FALSE(ParseElement(DataType::kBool, "yes", buf));
  EXPECT_TRUE(ParseElement(DataType::kFp32, " -2.5e3 ", buf));
  float f;
  std::memcpy(&f, buf, 4);
  EXPECT_EQ(f, -2500.0f);
  EXPECT_FALSE(ParseElement(DataType::kFp64, "", buf));
}

// The one-pass path (plain lines handed over unsplit) must decode every row, and fail
// every bad one, exactly as the split path does: same values, carried cells, offsets,
// line numbers and messages.
TEST_F(RowDecoderTest, UnsplitLinesDecodeAsSplitOnesDo) {
  const std::string text =
      "id,a,b,n\n"
      "x1,1.5,-2e-3,7\n"
      "x2, 3 ,+4,8\r\n"                // spaces and '+' (from_chars' rules)
      "x3,1e,2,9\n"                   // half a number
      "x4,0.1,0.2\n"                  // a cell short
      "x5,0.1,0.2,3,4\n"              // a cell too many
      "\"x,6\",5,6,10\n"              // quoted: split by the reader
      "x7,inf,-0,11\r"                // a lone CR ends a record
      "x8,,2,12\n"                    // empty
      "x9,16777217,1.000000059604644775390625,13\n"  // halfway cases: from_chars decides
      "x10,1e39,1,12\n"               // out of range
      "x12,1,2,1.5\n"                 // an integer column given 1.5
      "x11,2,3,4";                    // no final line break
  auto path = Write("u.csv", text);
  std::vector<ModelInput> inputs = {{"f", DataType::kFp32, {2}, 2}, {"n", DataType::kInt64, {1}, 1}};
  auto run = [&](bool defer) {
    auto reader = InputReader::Open(path, Format::kCsv);
    EXPECT_TRUE(reader.ok());
    (*reader)->set_defer_csv_split(defer);
    auto d = RowDecoder::Create(**reader, inputs, {"id"}, {{"a", "f"}, {"b", "f"}});
    EXPECT_TRUE(d.ok()) << d.status().message();
    std::string log;
    RawRow raw;
    float f[2];
    int64_t n;
    char* dst[] = {reinterpret_cast<char*>(f), reinterpret_cast<char*>(&n)};
    while ((*reader)->Next(&raw, [](uint64_t) { return true; })) {
      std::vector<std::string> carried;
      Status st = d->Decode(raw, dst, &carried);
      log += std::to_string(raw.index) + "@" + std::to_string(raw.line) + " off " + std::to_string((*reader)->offset()) + ": ";
      if (st.ok()) {
        char buf[80];
        std::snprintf(buf, sizeof buf, "%a %a %lld", static_cast<double>(f[0]), static_cast<double>(f[1]),
                      static_cast<long long>(n));
        log += buf;
        for (const auto& c : carried) log += " [" + c + "]";
      } else {
        log += st.message();
      }
      log += "\n";
    }
    return log;
  };
  const std::string split = run(false);
  EXPECT_EQ(run(true), split);
  EXPECT_NE(split.find("row 2 (line 4), column 'a': '1e' is not a number"), std::string::npos) << split;
  EXPECT_NE(split.find("row 9 (line 11), column 'a': '1e39' is not a number"), std::string::npos) << split;
  EXPECT_NE(split.find("row 10 (line 12), column 'n': '1.5' is not an integer in the range of INT64"), std::string::npos)
      << split;
}

TEST_F(RowDecoderTest, WideUnsplitLinesDecodeAsSplitOnesDoBitForBit) {
  // Lines of thousands of bytes (the one-pass path scans them 64 bytes at a time and
  // parses most cells with the SSE2 path): random floats written as writers write them,
  // odd but valid cells, and rows with a bad cell, a cell short or a cell too many.
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal;
  const int kF = 200, kG = 40;
  std::string text = "id";
  for (int i = 0; i < kF; ++i) text += ",f_" + std::to_string(i);
  for (int i = 0; i < kG; ++i) text += ",g_" + std::to_string(i);
  text += "\n";
  const char* odd[] = {" 1.5", "+2", "1e5", "-0", "1e-45", "1.4e-45", "3.4028235e38", "inf", "-nan", "0.000000000000001",
                       "123456789012345678", "1.000000059604644775390625", "16777217", "5.", ".5", "00000000000000000001"};
  const char* bad[] = {"x", "1.2.3", "1e", "", "--1", "1,5"};
  char buf[64];
  for (int r = 0; r < 400; ++r) {
    text += "r" + std::to_string(r);
    for (int c = 0; c < kF + kG; ++c) {
      float v = normal(rng);
      if (r % 3 == 0) v = static_cast<float>(v * std::pow(10.0, static_cast<int>(rng() % 60) - 30));
      const unsigned how = rng() % 16;
      if (how == 0) {
        text += std::string(",") + odd[rng() % (sizeof odd / sizeof *odd)];
        continue;
      }
      int n = how < 8 ? std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v))
            : how < 11 ? static_cast<int>(std::to_chars(buf, buf + sizeof buf, v).ptr - buf)
            : how < 13 ? std::snprintf(buf, sizeof buf, "%.17g", static_cast<double>(v))
                       : std::snprintf(buf, sizeof buf, "%.4f", static_cast<double>(v));
      text += "," + std::string(buf, static_cast<size_t>(n));
    }
    if (r % 10 == 1) text += ",0.5";  // a cell too many
    if (r % 10 == 2) text.resize(text.rfind(','));  // a cell short
    if (r % 10 == 3) {  // a bad cell somewhere
      const size_t at = text.rfind('\n') + 1 + rng() % (text.size() - text.rfind('\n') - 1);
      const size_t comma = text.find(',', at);
      if (comma != std::string::npos)
        text.insert(comma + 1, std::string(bad[rng() % (sizeof bad / sizeof *bad)]) + (rng() % 2 ? "," : "z"));
    }
    text += r % 7 == 0 ? "\r\n" : "\n";
  }
  auto path = Write("wide.csv", text);
  std::vector<ModelInput> inputs = {{"f", DataType::kFp32, {kF}, 1}, {"g", DataType::kFp64, {kG}, 1}};
  auto run = [&](bool defer) {
    auto reader = InputReader::Open(path, Format::kCsv);
    EXPECT_TRUE(reader.ok());
    (*reader)->set_defer_csv_split(defer);
    auto d = RowDecoder::Create(**reader, inputs, {"id"}, {});
    EXPECT_TRUE(d.ok()) << d.status().message();
    std::vector<std::string> log;
    RawRow raw;
    std::vector<float> f(kF);
    std::vector<double> g(kG);
    char* dst[] = {reinterpret_cast<char*>(f.data()), reinterpret_cast<char*>(g.data())};
    while ((*reader)->Next(&raw, [](uint64_t) { return true; })) {
      std::vector<std::string> carried;
      Status st = d->Decode(raw, dst, &carried);
      std::string line = std::to_string(raw.index) + ": ";
      if (st.ok()) {
        line += std::string(reinterpret_cast<const char*>(f.data()), kF * sizeof(float));
        line += std::string(reinterpret_cast<const char*>(g.data()), kG * sizeof(double));
        for (const auto& c : carried) line += " [" + c + "]";
      } else {
        line += st.message();
      }
      log.push_back(line);
    }
    return log;
  };
  const auto split = run(false);
  const auto deferred = run(true);
  ASSERT_EQ(split.size(), 400u);
  ASSERT_EQ(deferred.size(), split.size());
  int ok = 0;
  for (size_t i = 0; i < split.size(); ++i) {
    EXPECT_EQ(deferred[i], split[i]) << "row " << i;
    ok += split[i].find(" [r") != std::string::npos;
  }
  EXPECT_GT(ok, 100);  // enough rows decode for the comparison to mean something
  EXPECT_LT(ok, 400);
}

}  // namespace
}  // namespace ferry::batch
