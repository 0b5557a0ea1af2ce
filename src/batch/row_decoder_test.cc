#include "batch/row_decoder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

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

}  // namespace
}  // namespace ferry::batch
