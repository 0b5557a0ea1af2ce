#include "batch/parquet_output.h"

#include <unistd.h>

#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "batch/parquet_input.h"
#include "batch/test_tensors.h"

namespace ferry::batch {
namespace {

namespace fs = std::filesystem;

using test_util::MakeTensor;

std::vector<ModelOutput> Outputs() {
  return {{"probabilities", DataType::kFp32, {2}, 0}, {"label", DataType::kInt64, {1}, 0}, {"ok", DataType::kBool, {}, 0}};
}

// Writes rows 0..n-1 (probabilities [i/8, -i], label i*10, ok i%2, id "r<i>"), `group` rows
// per row group, as the job does: magic, row groups at their offsets, footer.
std::string Build(ParquetOutput& pq, const OutputWriter& w, int n, int group) {
  std::string file = w.Header(0);
  std::vector<std::string> metas;
  for (int start = 0; start < n; start += group) {
    const int rows = std::min(group, n - start);
    std::vector<float> p;
    std::vector<int64_t> l;
    std::vector<uint8_t> ok;
    std::vector<std::string> ids;
    for (int i = start; i < start + rows; ++i) {
      p.push_back(static_cast<float>(i) / 8);
      p.push_back(static_cast<float>(-i));
      l.push_back(i * 10);
      ok.push_back(i % 2);
      ids.push_back("r" + std::to_string(i));
    }
    Tensor tp = MakeTensor("probabilities", DataType::kFp32, {rows, 2}, p);
    Tensor tl = MakeTensor("label", DataType::kInt64, {rows, 1}, l);
    Tensor tok = MakeTensor("ok", DataType::kBool, {rows}, ok);
    std::vector<const Tensor*> outs{&tp, &tl, &tok};
    auto widths = w.CheckTensors(outs, static_cast<size_t>(rows));
    EXPECT_TRUE(widths.ok()) << widths.status().message();
    for (int r = 0; r < rows; ++r) pq.AppendRow(&ids[static_cast<size_t>(r)], outs, *widths, static_cast<size_t>(r));
    EXPECT_EQ(pq.buffered_rows(), static_cast<uint64_t>(rows));
    auto g = pq.FlushRowGroup(file.size());
    EXPECT_TRUE(g.ok()) << g.status().message();
    EXPECT_EQ(pq.buffered_rows(), 0u);
    file += g->data;
    metas.push_back(g->metadata);
  }
  auto footer = pq.Footer(metas);
  EXPECT_TRUE(footer.ok()) << footer.status().message();
  return file + *footer;
}

fs::path Save(const std::string& stem, const std::string& bytes) {
  fs::path path = fs::temp_directory_path() / (stem + "_" + std::to_string(::getpid()) + ".parquet");
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(ParquetOutput, RowGroupsWrittenApartReadBackAsOneFile) {
  auto w = OutputWriter::Create(Format::kParquet, {"id"}, false, Outputs());
  ASSERT_TRUE(w.ok()) << w.status().message();
  auto pq = ParquetOutput::Create(**w, {"id"}, false);
  ASSERT_TRUE(pq.ok()) << pq.status().message();
  const std::string bytes = Build(**pq, **w, 25, 10);
  fs::path path = Save("ferry_pq_out", bytes);
  auto in = ParquetInput::Open(path);
  ASSERT_TRUE(in.ok()) << in.status().message();
  EXPECT_EQ((*in)->column_names(), (std::vector<std::string>{"id", "probabilities_0", "probabilities_1", "label", "ok"}));
  EXPECT_EQ((*in)->column_types(), (std::vector<std::string>{"string", "float", "float", "int64", "bool"}));
  EXPECT_EQ((*in)->num_rows(), 25u);
  EXPECT_EQ((*in)->num_row_groups(), 3);
  std::vector<std::string_view> cells;
  std::vector<uint8_t> nulls;
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE((*in)->Next(&cells, &nulls)) << i;
    const float p0 = static_cast<float>(i) / 8;
    std::string want_p0;
    AppendElement(DataType::kFp32, reinterpret_cast<const std::byte*>(&p0), 0, false, &want_p0);
    EXPECT_EQ(cells[0], "r" + std::to_string(i));
    EXPECT_EQ(cells[1], want_p0);
    EXPECT_EQ(cells[2], std::to_string(-i));
    EXPECT_EQ(cells[3], std::to_string(i * 10));
    EXPECT_EQ(cells[4], i % 2 ? "true" : "false");
  }
  EXPECT_FALSE((*in)->Next(&cells, &nulls));
  EXPECT_TRUE((*in)->error().ok()) << (*in)->error().message();
  // The same rows give the same bytes: nothing in the file depends on when it was written.
  auto again = ParquetOutput::Create(**w, {"id"}, false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Build(**again, **w, 25, 10), bytes);
  fs::remove(path);
}

TEST(ParquetOutput, NoRowsGiveASchemaOnlyFile) {
  auto w = OutputWriter::Create(Format::kParquet, {}, false, Outputs());
  ASSERT_TRUE(w.ok());
  auto pq = ParquetOutput::Create(**w, {}, false);
  ASSERT_TRUE(pq.ok());
  fs::path path = Save("ferry_pq_empty", Build(**pq, **w, 0, 10));
  auto in = ParquetInput::Open(path);
  ASSERT_TRUE(in.ok()) << in.status().message();
  EXPECT_EQ((*in)->num_rows(), 0u);
  EXPECT_EQ((*in)->column_names().size(), 4u);
  fs::remove(path);
}

TEST(ParquetOutput, DamagedRowGroupMetadataIsNamed) {
  auto w = OutputWriter::Create(Format::kParquet, {}, false, Outputs());
  ASSERT_TRUE(w.ok());
  auto pq = ParquetOutput::Create(**w, {}, false);
  ASSERT_TRUE(pq.ok());
  auto footer = (*pq)->Footer({"not thrift"});
  ASSERT_FALSE(footer.ok());
  EXPECT_NE(footer.status().message().find("row group 0 of the Parquet output"), std::string::npos)
      << footer.status().message();
}

TEST(ParquetOutput, OutputColumnsClashWithCarriedOnesAreRefused) {
  auto w = OutputWriter::Create(Format::kParquet, {"probabilities_1"}, false, Outputs());
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("--carry: column 'probabilities_1'"), std::string::npos) << w.status().message();
}

}  // namespace
}  // namespace ferry::batch
