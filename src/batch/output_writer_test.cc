#include "batch/output_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "batch/test_tensors.h"

namespace ferry::batch {
namespace {

using test_util::MakeTensor;

std::vector<ModelOutput> MlpOutputs() {
  return {{"probabilities", DataType::kFp32, {3}, 0}, {"label", DataType::kInt64, {1}, 0}};
}

TEST(OutputWriter, CsvNamesWideOutputsAndQuotesCarriedCells) {
  auto w = OutputWriter::Create(Format::kCsv, {"id"}, false, MlpOutputs());
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ((*w)->Header(0), "id,probabilities_0,probabilities_1,probabilities_2,label\n");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor p = MakeTensor<float>("probabilities", DataType::kFp32, {2, 3}, {0.1f, 0.2f, 0.7f, nan, 1e-20f, -INFINITY});
  Tensor l = MakeTensor<int64_t>("label", DataType::kInt64, {2, 1}, {2, -5});
  std::vector<std::string> carried{"a,b", "plain"};
  std::string out;
  ASSERT_TRUE((*w)->AppendRow(&carried[0], {&p, &l}, 0, 2, &out).ok());
  ASSERT_TRUE((*w)->AppendRow(&carried[1], {&p, &l}, 1, 2, &out).ok());
  EXPECT_EQ(out, "\"a,b\",0.1,0.2,0.7,2\nplain,nan,1e-20,-inf,-5\n");
}

TEST(OutputWriter, AppendRowsWritesWhatAppendRowWritesAndNothingOnABadTensor) {
  for (Format f : {Format::kCsv, Format::kJsonl}) {
    auto w = OutputWriter::Create(f, {"id"}, false, MlpOutputs());
    ASSERT_TRUE(w.ok());
    Tensor p = MakeTensor<float>("probabilities", DataType::kFp32, {2, 3}, {0.1f, 0.2f, 0.7f, 1.5f, 1e-20f, -INFINITY});
    Tensor l = MakeTensor<int64_t>("label", DataType::kInt64, {2, 1}, {2, -5});
    std::vector<std::string> carried{"a,b", "plain"};
    std::string one_by_one = "before;", all = "before;";
    ASSERT_TRUE((*w)->AppendRow(&carried[0], {&p, &l}, 0, 2, &one_by_one).ok());
    ASSERT_TRUE((*w)->AppendRow(&carried[1], {&p, &l}, 1, 2, &one_by_one).ok());
    ASSERT_TRUE((*w)->AppendRows(carried.data(), {&p, &l}, 2, &all).ok());
    EXPECT_EQ(all, one_by_one);
    Tensor short_label = MakeTensor<int64_t>("label", DataType::kInt64, {1, 1}, {2});
    std::string out = "before;";
    Status s = (*w)->AppendRows(carried.data(), {&p, &short_label}, 2, &out);
    EXPECT_EQ(s.message(), "output 'label': 1 elements for 2 rows, expected 1 per row");
    EXPECT_EQ(out, "before;");
  }
}

TEST(OutputWriter, JsonlScalarsArraysAndCarriedJson) {
  auto w = OutputWriter::Create(Format::kJsonl, {"id", "meta"}, true, MlpOutputs());
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->Header(0), "");
  Tensor p = MakeTensor<float>("probabilities", DataType::kFp32, {1, 3}, {0.5f, NAN, 0.25f});
  Tensor l = MakeTensor<int64_t>("label", DataType::kInt64, {1, 1}, {0});
  std::vector<std::string> carried{"\"r\\\"0\"", "{\"k\":[1,2]}"};
  std::string out;
  ASSERT_TRUE((*w)->AppendRow(carried.data(), {&p, &l}, 0, 1, &out).ok());
  EXPECT_EQ(out, "{\"id\":\"r\\\"0\",\"meta\":{\"k\":[1,2]},\"probabilities\":[0.5,NaN,0.25],\"label\":0}\n");
}

TEST(OutputWriter, RefusesWhatAFormatCannotHold) {
  auto npy = OutputWriter::Create(Format::kNpy, {}, false, MlpOutputs());
  ASSERT_FALSE(npy.ok());
  EXPECT_EQ(npy.status().message(),
            "a .npy output holds one output and the model has 2 (probabilities, label); choose one with --outputs NAME");
  auto clash = OutputWriter::Create(Format::kCsv, {"probabilities_1"}, false, MlpOutputs());
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().message(), "--carry: column 'probabilities_1' has the name of an output column of 'probabilities'");
  auto variable = OutputWriter::Create(Format::kCsv, {}, false, {{"y", DataType::kFp32, {-1}, 0}});
  EXPECT_FALSE(variable.ok());
  EXPECT_TRUE(OutputWriter::Create(Format::kJsonl, {}, false, {{"y", DataType::kFp32, {-1}, 0}}).ok());
}

TEST(OutputWriter, WrongOutputSizeIsAnErrorNotGarbage) {
  auto w = OutputWriter::Create(Format::kCsv, {}, false, MlpOutputs());
  Tensor p = MakeTensor<float>("probabilities", DataType::kFp32, {1, 2}, {0.5f, 0.5f});
  Tensor l = MakeTensor<int64_t>("label", DataType::kInt64, {1, 1}, {0});
  std::string out;
  Status s = (*w)->AppendRow(nullptr, {&p, &l}, 0, 1, &out);
  EXPECT_EQ(s.message(), "output 'probabilities': 2 elements for 1 rows, expected 3 per row");
  EXPECT_EQ(out, "");
}

TEST(OutputWriter, BytesOutputsAreTextCellsAndJsonStrings) {
  const std::vector<ModelOutput> outputs = {{"s", DataType::kBytes, {2}, 0}, {"n", DataType::kInt64, {1}, 0}};
  Tensor s = test_util::MakeBytesTensor("s", {2, 2}, {"plain", "a,b \"q\"\nline", "", " lead\xc3\xa9"});
  Tensor n = MakeTensor<int64_t>("n", DataType::kInt64, {2, 1}, {1, 2});
  auto csv = OutputWriter::Create(Format::kCsv, {}, false, outputs);
  ASSERT_TRUE(csv.ok()) << csv.status().message();
  EXPECT_EQ((*csv)->Header(0), "s_0,s_1,n\n");
  std::string out;
  ASSERT_TRUE((*csv)->AppendRows(nullptr, {&s, &n}, 2, &out).ok());
  EXPECT_EQ(out, "plain,\"a,b \"\"q\"\"\nline\",1\n,\" lead\xc3\xa9\",2\n");
  auto jsonl = OutputWriter::Create(Format::kJsonl, {}, false, outputs);
  ASSERT_TRUE(jsonl.ok());
  out.clear();
  ASSERT_TRUE((*jsonl)->AppendRows(nullptr, {&s, &n}, 2, &out).ok());
  EXPECT_EQ(out, "{\"s\":[\"plain\",\"a,b \\\"q\\\"\\nline\"],\"n\":1}\n{\"s\":[\"\",\" lead\xc3\xa9\"],\"n\":2}\n");
  // Bytes that are not UTF-8: a CSV cell takes them, a JSON string cannot.
  Tensor raw = test_util::MakeBytesTensor("s", {1, 2}, {"ok", "\xff\xfe"});
  Tensor one = MakeTensor<int64_t>("n", DataType::kInt64, {1, 1}, {3});
  out.clear();
  EXPECT_TRUE((*csv)->AppendRows(nullptr, {&raw, &one}, 1, &out).ok());
  EXPECT_EQ(out, "ok,\xff\xfe,3\n");
  out = "before;";
  EXPECT_EQ((*jsonl)->AppendRows(nullptr, {&raw, &one}, 1, &out).message(),
            "output 's': element 1 is not UTF-8 text, which jsonl needs (a .csv output takes any bytes)");
  EXPECT_EQ(out, "before;");
  // A length past the tensor's end, and a .npy output.
  Tensor cut = s;
  cut.Own(std::string(s.bytes().substr(0, 10)));
  EXPECT_EQ((*csv)->AppendRows(nullptr, {&cut, &n}, 2, &out).message(),
            "output 's': a BYTES element runs past the tensor's end");
  EXPECT_FALSE(OutputWriter::Create(Format::kNpy, {}, false, {{"s", DataType::kBytes, {1}, 0}}).ok());
}

TEST(OutputWriter, NpyHeaderKeepsItsLength) {
  auto w = OutputWriter::Create(Format::kNpy, {}, false, {{"probabilities", DataType::kFp32, {3}, 0}});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->Header(0).size(), (*w)->Header(1000000000).size());
  Tensor p = MakeTensor<float>("probabilities", DataType::kFp32, {2, 3}, {1, 2, 3, 4, 5, 6});
  std::string out;
  ASSERT_TRUE((*w)->AppendRow(nullptr, {&p}, 1, 2, &out).ok());
  ASSERT_EQ(out.size(), 12u);
  float back[3];
  std::memcpy(back, out.data(), 12);
  EXPECT_EQ(back[0], 4.0f);
  EXPECT_EQ(back[2], 6.0f);
}

}  // namespace
}  // namespace ferry::batch
