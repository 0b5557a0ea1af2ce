#include "batch/csv.h"

#include <gtest/gtest.h>

namespace ferry::batch {
namespace {

TEST(Csv, SplitsPlainAndQuotedCells) {
  const std::string text = "a,\"b,c\",\"say \"\"hi\"\"\"\r\nnext,1\n";
  CsvRecord r;
  NextCsvRecord(text, 0, &r);
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_EQ(r.cells.size(), 3u);
  EXPECT_EQ(r.cells[0], "a");
  EXPECT_EQ(r.cells[1], "b,c");
  EXPECT_EQ(r.cells[2], "say \"hi\"");
  EXPECT_EQ(text.substr(r.end), "next,1\n");
  NextCsvRecord(text, r.end, &r);
  ASSERT_EQ(r.cells.size(), 2u);
  EXPECT_EQ(r.cells[1], "1");
  EXPECT_EQ(r.end, text.size());
}

TEST(Csv, QuotedCellSpansLines) {
  const std::string text = "\"two\nlines\",x\nb,y";
  CsvRecord r;
  NextCsvRecord(text, 0, &r);
  ASSERT_EQ(r.cells.size(), 2u);
  EXPECT_EQ(r.cells[0], "two\nlines");
  EXPECT_EQ(r.lines, 2u);
  size_t lines = 0;
  EXPECT_EQ(SkipCsvRecord(text, 0, &lines), r.end);
  EXPECT_EQ(lines, 2u);
  NextCsvRecord(text, r.end, &r);
  EXPECT_EQ(r.cells[0], "b");
  EXPECT_EQ(r.cells[1], "y");
}

TEST(Csv, MalformedQuotesNameTheColumnAndKeepGoing) {
  const std::string text = "1,\"ab\"c,3\n4,5,6\n";
  CsvRecord r;
  NextCsvRecord(text, 0, &r);
  EXPECT_EQ(r.error, "column 2: text after the closing quote");
  EXPECT_EQ(text.substr(r.end), "4,5,6\n");
  NextCsvRecord("1,a\"b\n", 0, &r);
  EXPECT_EQ(r.error, "column 2: a quote inside an unquoted cell");
  NextCsvRecord("1,\"never closed\n2,3\n", 0, &r);
  EXPECT_EQ(r.error, "column 2: a quoted cell is never closed");
}

TEST(Csv, EmptyCells) {
  CsvRecord r;
  NextCsvRecord(",,\n", 0, &r);
  ASSERT_EQ(r.cells.size(), 3u);
  for (auto c : r.cells) EXPECT_TRUE(c.empty());
}

TEST(Csv, AppendQuotesOnlyWhenNeeded) {
  std::string out;
  AppendCsvCell("plain", &out);
  out += ',';
  AppendCsvCell("a,b", &out);
  out += ',';
  AppendCsvCell("q\"q", &out);
  out += ',';
  AppendCsvCell(" pad", &out);
  EXPECT_EQ(out, "plain,\"a,b\",\"q\"\"q\",\" pad\"");
  // What AppendCsvCell writes reads back as the same cells.
  CsvRecord r;
  NextCsvRecord(out, 0, &r);
  ASSERT_EQ(r.cells.size(), 4u);
  EXPECT_EQ(r.cells[2], "q\"q");
  EXPECT_EQ(r.cells[3], " pad");
}

}  // namespace
}  // namespace ferry::batch
