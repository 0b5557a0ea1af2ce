#include "batch/parquet_input.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
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
  // Runs from a resume point: they start at it and stop at the record batch's end.
  ASSERT_TRUE(reader.Seek(7001, 7001, 0).ok());
  ParquetRun run;
  ASSERT_TRUE(reader.NextRun(10000, &run));
  EXPECT_EQ(run.first, 7001u);
  EXPECT_GE(run.rows, 1u);
  // Row group 1 (rows 5000 .. 9999) comes in record batches of kBatchRows from its start.
  EXPECT_LE(7001 - 5000 + run.rows, static_cast<size_t>(ParquetInput::kBatchRows));
  EXPECT_EQ(reader.next_index(), 7001u + run.rows);
  reader.RunRow(run, 1, &row);
  EXPECT_EQ(row.index, 7002u);
  EXPECT_EQ(row.csv->cells[3], "r7002");
  std::string text;
  reader.AppendRunCell(3, 0, &text);
  EXPECT_EQ(text, "r7001");
  const uint64_t next = 7001 + run.rows;
  ASSERT_TRUE(reader.NextRun(3, &run));
  EXPECT_EQ(run.first, next);
  EXPECT_EQ(run.rows, 3u);
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

// A file for the run decoder: id (string), a (float, nulls and NaNs), b (float), c (double),
// n (int64, -150 .. 149), cat (a dictionary of strings, as pandas' categoricals are stored),
// e0 .. e4 (floats), in row groups of `group_rows`.
fs::path WriteRunFile(const std::string& stem, int64_t rows, int64_t group_rows) {
  arrow::StringBuilder id;
  arrow::FloatBuilder a, b;
  arrow::DoubleBuilder c;
  arrow::Int64Builder n;
  arrow::StringDictionaryBuilder cat;
  std::vector<arrow::FloatBuilder> e(5);
  for (int64_t i = 0; i < rows; ++i) {
    for (size_t j = 0; j < e.size(); ++j) EXPECT_TRUE(e[j].Append(static_cast<float>(i) * 0.5f + static_cast<float>(j)).ok());
    EXPECT_TRUE(id.Append("r" + std::to_string(i)).ok());
    const float f = 0.25f * static_cast<float>(i % 1000) - 7.0f;
    EXPECT_TRUE((i % 97 == 5 ? a.AppendNull() : a.Append(i % 50 == 3 ? std::nanf("") : f)).ok());
    EXPECT_TRUE(b.Append(-f / 3.0f).ok());
    EXPECT_TRUE(c.Append(0.1 * static_cast<double>(i)).ok());
    EXPECT_TRUE(n.Append(i % 300 - 150).ok());
    EXPECT_TRUE((i % 11 == 0 ? cat.AppendNull() : cat.Append(i % 3 == 0 ? "low" : "high")).ok());
  }
  std::vector<std::shared_ptr<arrow::Array>> cols(6);
  EXPECT_TRUE(id.Finish(&cols[0]).ok());
  EXPECT_TRUE(a.Finish(&cols[1]).ok());
  EXPECT_TRUE(b.Finish(&cols[2]).ok());
  EXPECT_TRUE(c.Finish(&cols[3]).ok());
  EXPECT_TRUE(n.Finish(&cols[4]).ok());
  EXPECT_TRUE(cat.Finish(&cols[5]).ok());
  auto schema = arrow::schema({arrow::field("id", arrow::utf8()), arrow::field("a", arrow::float32()),
                               arrow::field("b", arrow::float32()), arrow::field("c", arrow::float64()),
                               arrow::field("n", arrow::int64()), arrow::field("cat", cols[5]->type())});
  for (size_t j = 0; j < e.size(); ++j) {
    cols.emplace_back();
    EXPECT_TRUE(e[j].Finish(&cols.back()).ok());
    schema = *schema->AddField(schema->num_fields(), arrow::field("e" + std::to_string(j), arrow::float32()));
  }
  auto table = arrow::Table::Make(schema, cols);
  fs::path path = fs::temp_directory_path() / (stem + "_" + std::to_string(::getpid()) + ".parquet");
  auto out = arrow::io::FileOutputStream::Open(path.string());
  EXPECT_TRUE(out.ok());
  auto arrow_props = parquet::ArrowWriterProperties::Builder().store_schema()->build();
  EXPECT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), *out, group_rows,
                                         parquet::default_writer_properties(), arrow_props)
                  .ok());
  EXPECT_TRUE((*out)->Close().ok());
  return path;
}

// What a decoder made of a whole file: each input's bytes (decoded rows only), the carried
// values, the decoded rows' indices, the failed rows with their messages.
struct Decoded {
  std::vector<std::string> inputs;
  std::vector<std::string> carried;
  std::vector<uint64_t> rows;
  std::vector<std::pair<uint64_t, std::string>> failed;
};

Result<RowDecoder> MakeDecoder(InputReader& reader, std::vector<ModelInput> inputs, const std::vector<std::string>& carry,
                               const std::vector<ColumnMapping>& map) {
  auto d = RowDecoder::Create(reader, std::move(inputs), carry, map);
  if (d.ok()) reader.set_typed_columns(d->TypedColumns());
  return d;
}

size_t RowBytes(const ModelInput& in) { return in.width * DataTypeSize(in.datatype); }

// Row by row, as Next and Decode go.
Decoded DecodeByRows(InputReader& reader, RowDecoder& d) {
  Decoded out;
  out.inputs.resize(d.inputs().size());
  std::vector<std::string> row_bytes(d.inputs().size());
  std::vector<char*> dst(d.inputs().size());
  std::vector<std::string*> bytes(d.inputs().size());
  RawRow row;
  auto all = [](uint64_t) { return true; };
  while (reader.Next(&row, all)) {
    for (size_t i = 0; i < dst.size(); ++i) {
      row_bytes[i].assign(RowBytes(d.inputs()[i]), '\0');
      dst[i] = row_bytes[i].data();
      bytes[i] = &out.inputs[i];
    }
    const size_t before = out.carried.size();
    Status s = d.Decode(row, dst.data(), &out.carried, bytes.data());
    if (!s.ok()) {
      EXPECT_EQ(out.carried.size(), before);
      out.failed.emplace_back(row.index, s.message());
      continue;
    }
    out.rows.push_back(row.index);
    for (size_t i = 0; i < dst.size(); ++i)
      if (d.inputs()[i].datatype != DataType::kBytes) out.inputs[i] += row_bytes[i];
  }
  EXPECT_TRUE(reader.read_error().ok()) << reader.read_error().message();
  return out;
}

// In runs of the sizes given, in turn, as DecodeRun goes.
Decoded DecodeByRuns(InputReader& reader, RowDecoder& d, const std::vector<size_t>& sizes) {
  Decoded out;
  out.inputs.resize(d.inputs().size());
  std::vector<std::string> run_bytes(d.inputs().size());
  std::vector<char*> dst(d.inputs().size());
  std::vector<std::string*> bytes(d.inputs().size());
  ParquetRun run;
  for (size_t turn = 0; reader.NextRun(sizes[turn % sizes.size()], &run); ++turn) {
    EXPECT_LE(run.rows, sizes[turn % sizes.size()]);
    EXPECT_EQ(reader.next_index(), run.first + run.rows);
    for (size_t i = 0; i < dst.size(); ++i) {
      run_bytes[i].assign(run.rows * RowBytes(d.inputs()[i]), '\x55');
      dst[i] = run_bytes[i].data();
      bytes[i] = &out.inputs[i];
    }
    const size_t before = out.rows.size();
    d.DecodeRun(reader, run, dst.data(), &out.carried, &out.rows, &out.failed, bytes.data());
    const size_t decoded = out.rows.size() - before;
    for (size_t i = 0; i < dst.size(); ++i)
      if (d.inputs()[i].datatype != DataType::kBytes) out.inputs[i].append(run_bytes[i].data(), decoded * RowBytes(d.inputs()[i]));
  }
  EXPECT_TRUE(reader.read_error().ok()) << reader.read_error().message();
  return out;
}

TEST(ParquetInput, RunsDecodeAsRowsDo) {
  const int64_t rows = 3 * ParquetInput::kBatchRows + 500;  // runs end at record batches and row groups
  fs::path path = WriteRunFile("ferry_pq_runs", rows, 5000);
  struct Plan {
    std::vector<ModelInput> inputs;
    std::vector<std::string> carry;
    std::vector<ColumnMapping> map;
    size_t failed;  // rows that fail
  };
  // a is null where i % 97 == 5; n (i % 300 - 150) does not fit INT8 below -128 and above 127.
  int64_t nulls = 0, nulls_or_misses = 0;
  for (int64_t i = 0; i < rows; ++i) {
    nulls += i % 97 == 5;
    nulls_or_misses += i % 97 == 5 || i % 300 < 22 || i % 300 >= 278;
  }
  const std::vector<Plan> plans = {
      // Floats as they are, a double converted, an int64 range-checked; nulls; carried text.
      {{{"x", DataType::kFp32, Shape{3}, 3}, {"k", DataType::kInt8, Shape{1}, 1}},
       {"id", "cat"},
       {{"a", "x"}, {"b", "x"}, {"c", "x"}, {"n", "k"}},
       static_cast<size_t>(nulls_or_misses)},
      // One float column with no null: the plain column copy.
      {{{"x", DataType::kFp32, Shape{1}, 1}}, {"id"}, {{"b", "x"}}, 0},
      // Four float columns side by side (copied four at a time), a fifth, a double; and
      // the same behind a column with nulls.
      {{{"x", DataType::kFp32, Shape{6}, 6}},
       {"id"},
       {{"e0", "x"}, {"e1", "x"}, {"e2", "x"}, {"e3", "x"}, {"e4", "x"}, {"c", "x"}},
       0},
      {{{"x", DataType::kFp32, Shape{5}, 5}}, {}, {{"a", "x"}, {"e0", "x"}, {"e1", "x"}, {"e2", "x"}, {"e3", "x"}},
       static_cast<size_t>(nulls)},
      // Wider elements, and floats from ints.
      {{{"x", DataType::kFp64, Shape{2}, 2}}, {"cat"}, {{"n", "x"}, {"c", "x"}}, 0},
      // A BYTES input: row by row inside DecodeRun.
      {{{"s", DataType::kBytes, Shape{1}, 1}, {"x", DataType::kFp32, Shape{1}, 1}},
       {"cat"},
       {{"id", "s"}, {"a", "x"}},
       static_cast<size_t>(nulls)},
  };
  for (size_t p = 0; p < plans.size(); ++p) {
    SCOPED_TRACE("plan " + std::to_string(p));
    const Plan& plan = plans[p];
    auto by_rows_reader = InputReader::Open(path, Format::kParquet);
    ASSERT_TRUE(by_rows_reader.ok()) << by_rows_reader.status().message();
    auto d1 = MakeDecoder(**by_rows_reader, plan.inputs, plan.carry, plan.map);
    ASSERT_TRUE(d1.ok()) << d1.status().message();
    const Decoded want = DecodeByRows(**by_rows_reader, *d1);
    ASSERT_EQ(want.failed.size(), plan.failed);
    ASSERT_EQ(want.rows.size() + want.failed.size(), static_cast<size_t>(rows));
    for (const std::vector<size_t>& sizes : {std::vector<size_t>{1024}, {1, 7, 1000, 5000}, {4096}}) {
      auto reader = InputReader::Open(path, Format::kParquet);
      ASSERT_TRUE(reader.ok());
      auto d2 = MakeDecoder(**reader, plan.inputs, plan.carry, plan.map);
      ASSERT_TRUE(d2.ok());
      const Decoded got = DecodeByRuns(**reader, *d2, sizes);
      EXPECT_EQ(got.rows, want.rows);
      EXPECT_EQ(got.failed, want.failed);
      EXPECT_EQ(got.carried, want.carried);
      ASSERT_EQ(got.inputs.size(), want.inputs.size());
      for (size_t i = 0; i < got.inputs.size(); ++i) EXPECT_TRUE(got.inputs[i] == want.inputs[i]) << "input " << i;
    }
  }
  // What the rows hold, for the first plan: a null and an out-of-range value fail naming
  // column and value; NaN is a value; a categorical cell is carried as its category.
  auto reader = InputReader::Open(path, Format::kParquet);
  ASSERT_TRUE(reader.ok());
  auto d = MakeDecoder(**reader, plans[0].inputs, plans[0].carry, plans[0].map);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*reader)->columns()[5].type, "dictionary<values=string, indices=int8, ordered=0>");
  EXPECT_EQ((*reader)->columns()[5].kind, ValueKind::kText);
  const Decoded got = DecodeByRuns(**reader, *d, {1024});
  EXPECT_EQ(got.failed[0], (std::pair<uint64_t, std::string>{0, "row 0, column 'n': '-150' is not an integer in the range of INT8"}));
  bool null_seen = false;
  for (const auto& [row, message] : got.failed)
    if (row == 5) {
      EXPECT_EQ(message, "row 5, column 'a': null (a missing value; ferry batch does not fill them in)");
      null_seen = true;
    }
  EXPECT_TRUE(null_seen);
  // Row 153 decodes with a NaN in a (153 % 50 == 3); its place among the decoded rows:
  const auto at = static_cast<size_t>(std::find(got.rows.begin(), got.rows.end(), 153u) - got.rows.begin());
  ASSERT_LT(at, got.rows.size());
  float x[3];
  std::memcpy(x, got.inputs[0].data() + at * 12, 12);
  EXPECT_TRUE(std::isnan(x[0]));
  EXPECT_FLOAT_EQ(x[2], static_cast<float>(0.1 * 153));
  EXPECT_EQ(got.carried[2 * at], "r153");
  EXPECT_EQ(got.carried[2 * at + 1], "low");  // 153 % 3 == 0
  const auto at_null_cat = static_cast<size_t>(std::find(got.rows.begin(), got.rows.end(), 330u) - got.rows.begin());
  EXPECT_EQ(got.carried[2 * at_null_cat + 1], "");  // 330 % 11 == 0: a null category carries as empty
  fs::remove(path);
}

TEST(ParquetInput, AColumnOfATypeWithoutNumbersIsRefusedBeforeTheFirstRow) {
  arrow::Date32Builder day;
  arrow::BooleanBuilder flag;
  arrow::DoubleBuilder x;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(day.Append(18000 + i).ok());
    EXPECT_TRUE(flag.Append(i == 1).ok());
    EXPECT_TRUE(x.Append(i).ok());
  }
  std::vector<std::shared_ptr<arrow::Array>> cols(3);
  EXPECT_TRUE(day.Finish(&cols[0]).ok());
  EXPECT_TRUE(flag.Finish(&cols[1]).ok());
  EXPECT_TRUE(x.Finish(&cols[2]).ok());
  auto table = arrow::Table::Make(arrow::schema({arrow::field("day", arrow::date32()), arrow::field("flag", arrow::boolean()),
                                                 arrow::field("x", arrow::float64())}),
                                  cols);
  fs::path path = fs::temp_directory_path() / ("ferry_pq_types_" + std::to_string(::getpid()) + ".parquet");
  auto out = arrow::io::FileOutputStream::Open(path.string());
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), *out, 3).ok());
  ASSERT_TRUE((*out)->Close().ok());
  auto r = InputReader::Open(path, Format::kParquet);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)->columns()[0].kind, ValueKind::kOther);
  EXPECT_EQ((*r)->columns()[1].kind, ValueKind::kBool);
  EXPECT_EQ((*r)->columns()[2].kind, ValueKind::kNumber);
  auto d = RowDecoder::Create(**r, {{"v", DataType::kFp32, Shape{2}, 2}}, {}, {{"x", "v"}, {"day", "v"}});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(),
            "column 'day' is date32[day] in the Parquet file and cannot feed input 'v' (FP32): it needs an integer, "
            "floating-point, decimal or string column");
  d = RowDecoder::Create(**r, {{"v", DataType::kFp32, Shape{1}, 1}}, {}, {{"flag", "v"}});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(),
            "column 'flag' is bool in the Parquet file and cannot feed input 'v' (FP32): a boolean column feeds only a "
            "BOOL input");
  // A boolean input takes it; any column can feed a BYTES input or be carried.
  EXPECT_TRUE(RowDecoder::Create(**r, {{"v", DataType::kBool, Shape{1}, 1}}, {}, {{"flag", "v"}}).ok());
  EXPECT_TRUE(RowDecoder::Create(**r, {{"v", DataType::kBytes, Shape{1}, 1}}, {"flag"}, {{"day", "v"}}).ok());
  EXPECT_TRUE(RowDecoder::Create(**r, {{"v", DataType::kFp32, Shape{1}, 1}}, {"day", "flag"}, {}).ok());
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
