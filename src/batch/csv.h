#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::batch {

// One record of a CSV text (RFC 4180): cells separated by ',', records by "\n" or
// "\r\n"; a cell in double quotes may hold ',', line breaks and "" for one quote.
// `cells` point into the text, or into `storage_` for a quoted cell that had to be
// unescaped; they stay valid until the record is reused.
// Thread-safety: a value; one thread at a time.
struct CsvRecord {
  std::vector<std::string_view> cells;
  size_t end = 0;    // offset just past the record's line break (or the text's end)
  size_t lines = 0;  // line breaks consumed (more than 1 when a quoted cell spans lines)
  // Non-empty when the record is malformed ("column 3: text after a closing quote");
  // `end` still points past the record so reading can go on with the next one.
  std::string error;

  std::vector<std::string> storage_;
  std::vector<std::pair<size_t, size_t>> spans_;  // offset, length into text or storage_
  std::vector<int> stored_;                        // index into storage_ or -1
};

// Reads the record starting at `pos` (< text.size()) into `record`.
void NextCsvRecord(std::string_view text, size_t pos, CsvRecord* record);

// Offset just past the record starting at `pos`, without splitting it into cells:
// what a reader skipping rows (another shard's) needs.
size_t SkipCsvRecord(std::string_view text, size_t pos, size_t* lines);

// Appends `cell` to `out`, quoted when it holds ',', '"', '\r' or '\n' or starts or
// ends with a space.
void AppendCsvCell(std::string_view cell, std::string* out);

}  // namespace ferry::batch
