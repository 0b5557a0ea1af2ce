#include "batch/parquet_input.h"

#include <unistd.h>

#include <fstream>

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include "batch/input_reader.h"
#include "batch/row_decoder.h"

namespace ferry::batch {
namespace {

namespace fs = std::filesystem;

// A file Arrow's own Parquet writer makes: x (double, a null in row 2), n (int64),
// flag (bool), name (string), `rows` rows in row groups of `group_rows`.
fs::path WriteFile(const std::string& stem, int64_t rows, int64_t group_rows) {
  arrow::DoubleBuilder x;
  arrow::Int64Builder n;
  arrow::BooleanBuilder flag;
  arrow::StringBuilder name;
  for (int64_t i = 0; i < rows; ++i) {
    EXPECT_TRUE((i == 2 ? x.AppendNull() : x.Append(0.1 * static_cast<double>(i))).ok());
    EXPECT_TRUE(n.Append(-i).ok());
    EXPECT_TRUE(flag.Append(i % 2 == 0).ok());
    EXPECT_TRUE(name.Append("r" + std::to_string(i)).ok());
  }
  std::vector<std::shared_ptr<arrow::Array>> cols(4);
  EXPECT_TRUE(x.Finish(&cols[0]).ok());
  EXPECT_TRUE(n.Finish(&cols[1]).ok());
  EXPECT_TRUE(flag.Finish(&cols[2]).ok());
  EXPECT_TRUE(name.Finish(&cols[3]).ok());
  auto schema = arrow::schema({arrow::field("x", arrow::float64()), arrow::field("n", arrow::int64()),
                               arrow::field("flag", arrow::boolean()), arrow::field("name", arrow::utf8())});
  auto table = arrow::Table::Make(schema, cols);
  fs::path path = fs::temp_directory_path() / (stem + "_" + std::to_string(::getpid()) + ".parquet");
  auto out = arrow::io::FileOutputStream::Open(path.string());
  EXPECT_TRUE(out.ok());
  EXPECT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), *out, group_rows).ok());
  EXPECT_TRUE((*out)->Close().ok());
  return path;
}

TEST(ParquetInput, ReadsRowsInOrderAcrossRowGroups) {
  const int64_t rows = 3 * ParquetInput::kBatchRows + 17;  // record batches and row groups both span
  fs::path path = WriteFile("ferry_pq_rows", rows, 5000);
  auto r = InputReader::Open(path, Format::kParquet);
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto& reader = **r;
  ASSERT_EQ(reader.columns().size(), 4u);
  EXPECT_EQ(reader.columns()[3].name, "name");
  EXPECT_EQ(reader.row_count(), static_cast<uint64_t>(rows));
  RawRow row;
  auto all = [](uint64_t) { return true; };
  uint64_t i = 0;
  while (reader.Next(&row, all)) {
    ASSERT_EQ(row.index, i);
    ASSERT_NE(row.csv, nullptr);
    ASSERT_NE(row.nulls, nullptr);
    if (i == 2) {
      EXPECT_EQ((*row.nulls)[0], 1);
      EXPECT_EQ(row.csv->cells[0], "");
    } else {
      ASSERT_EQ((*row.nulls)[0], 0);
      // Shortest round-trip text: parsing it gives back the exact double.
      ASSERT_EQ(std::stod(std::string(row.csv->cells[0])), 0.1 * static_cast<double>(i)) << i;
    }
    ASSERT_EQ(row.csv->cells[1], std::to_string(-static_cast<int64_t>(i)));
    ASSERT_EQ(row.csv->cells[2], i % 2 == 0 ? "true" : "false");
    ASSERT_EQ(row.csv->cells[3], "r" + std::to_string(i));
    ++i;
    EXPECT_EQ(reader.offset(), i);  // positions count rows
  }
  EXPECT_EQ(i, static_cast<uint64_t>(rows));
  EXPECT_TRUE(reader.read_error().ok());

  // A resume point in the middle of the second row group.
  ASSERT_TRUE(reader.Seek(7001, 7001, 0).ok());
  ASSERT_TRUE(reader.Next(&row, all));
  EXPECT_EQ(row.index, 7001u);
  EXPECT_EQ(row.csv->cells[3], "r7001");
  EXPECT_FALSE(reader.Seek(5, 6, 0).ok());
  EXPECT_FALSE(reader.Seek(rows + 1, rows + 1, 0).ok());
  fs::remove(path);
}

TEST(ParquetInput, NullInAModelInputFailsTheRowNamingTheColumn) {
  fs::path path = WriteFile("ferry_pq_null", 4, 4);
  auto r = InputReader::Open(path, Format::kParquet);
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto d = RowDecoder::Create(**r, {{"x", DataType::kFp32, Shape{1}, 1}}, {"name"}, {{"x", "x"}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  RawRow row;
  auto all = [](uint64_t) { return true; };
  float v[1];
  char* dst[1] = {reinterpret_cast<char*>(v)};
  std::vector<std::string> carried;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE((*r)->Next(&row, all));
    Status s = d->Decode(row, dst, &carried);
    if (i == 2) {
      EXPECT_EQ(s.message(), "row 2, column 'x': null (a missing value; ferry batch does not fill them in)");
    } else {
      EXPECT_TRUE(s.ok()) << s.message();
      EXPECT_FLOAT_EQ(v[0], 0.1f * static_cast<float>(i));
    }
  }
  fs::remove(path);
}

TEST(ParquetInput, TypedNumbersGoStraightIntoTheInputAndABadOneNamesColumnAndValue) {
  fs::path path = WriteFile("ferry_pq_typed", 200, 200);
  auto r = InputReader::Open(path, Format::kParquet);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // n (int64, 0 .. -199) feeds an INT8 input: -128 fits, -129 does not.
  auto d = RowDecoder::Create(**r, {{"n", DataType::kInt8, Shape{1}, 1}}, {"name"}, {{"n", "n"}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->TypedColumns(), (std::vector<uint8_t>{0, 1, 0, 0}));
  (*r)->set_typed_columns(d->TypedColumns());
  RawRow row;
  auto all = [](uint64_t) { return true; };
  int8_t v[1];
  char* dst[1] = {reinterpret_cast<char*>(v)};
  std::vector<std::string> carried;
  for (int i = 0; i < 130; ++i) {
    ASSERT_TRUE((*r)->Next(&row, all));
    ASSERT_NE(row.typed, nullptr);
    EXPECT_NE((*row.typed)[1].data, nullptr) << "n comes typed";
    EXPECT_EQ((*row.typed)[3].data, nullptr) << "name (carried) comes as text";
    Status s = d->Decode(row, dst, &carried);
    if (i < 129) {
      ASSERT_TRUE(s.ok()) << s.message();
      EXPECT_EQ(v[0], -i);
      EXPECT_EQ(carried.back(), "r" + std::to_string(i));
    } else {
      EXPECT_EQ(s.message(), "row 129, column 'n': '-129' is not an integer in the range of INT8");
    }
  }
  fs::remove(path);
}

TEST(ParquetInput, RefusesAFileThatIsNotParquet) {
  fs::path path = fs::temp_directory_path() / ("ferry_pq_bad_" + std::to_string(::getpid()) + ".parquet");
  std::ofstream(path) << "a,b\n1,2\n";
  auto r = InputReader::Open(path, Format::kParquet);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("input '" + path.string() + "': not a readable Parquet file"), std::string::npos)
      << r.status().message();
  fs::remove(path);
  r = InputReader::Open(path, Format::kParquet);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(path.string()), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace ferry::batch
