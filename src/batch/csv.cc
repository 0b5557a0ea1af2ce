#include "batch/csv.h"

#include <cstring>

namespace ferry::batch {

void NextCsvRecord(std::string_view text, size_t pos, CsvRecord* r) {
  r->cells.clear();
  r->spans_.clear();
  r->stored_.clear();
  r->error.clear();
  r->lines = 0;
  size_t used_storage = 0;
  const size_t n = text.size();
  size_t i = pos;
  while (true) {
    // One cell starting at i.
    if (i < n && text[i] == '"') {
      if (used_storage == r->storage_.size()) r->storage_.emplace_back();
      std::string& s = r->storage_[used_storage];
      s.clear();
      ++i;
      bool closed = false;
      while (i < n) {
        const char* q = static_cast<const char*>(std::memchr(text.data() + i, '"', n - i));
        size_t stop = q ? static_cast<size_t>(q - text.data()) : n;
        for (size_t k = i; k < stop; ++k)
          if (text[k] == '\n') ++r->lines;
        s.append(text.data() + i, stop - i);
        if (!q) {
          i = n;
          break;
        }
        i = stop + 1;
        if (i < n && text[i] == '"') {  // "" inside quotes
          s += '"';
          ++i;
          continue;
        }
        closed = true;
        break;
      }
      r->spans_.emplace_back(0, s.size());
      r->stored_.push_back(static_cast<int>(used_storage++));
      if (!closed) {
        r->error = "column " + std::to_string(r->spans_.size()) + ": a quoted cell is never closed";
        r->end = n;
        break;
      }
      if (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r' && r->error.empty())
        r->error = "column " + std::to_string(r->spans_.size()) + ": text after the closing quote";
      // Skip to the delimiter (only reached with garbage after the quote).
      while (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') ++i;
    } else {
      size_t start = i;
      while (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
        if (text[i] == '"' && r->error.empty())
          r->error = "column " + std::to_string(r->spans_.size() + 1) + ": a quote inside an unquoted cell";
        ++i;
      }
      r->spans_.emplace_back(start, i - start);
      r->stored_.push_back(-1);
    }
    if (i >= n) {
      r->end = n;
      break;
    }
    if (text[i] == ',') {
      ++i;
      continue;
    }
    // Line break: "\n" or "\r\n" (a lone "\r" counts as one too).
    if (text[i] == '\r') ++i;
    if (i < n && text[i] == '\n') ++i;
    ++r->lines;
    r->end = i;
    break;
  }
  for (size_t c = 0; c < r->spans_.size(); ++c) {
    if (r->stored_[c] >= 0)
      r->cells.emplace_back(r->storage_[static_cast<size_t>(r->stored_[c])]);
    else
      r->cells.push_back(text.substr(r->spans_[c].first, r->spans_[c].second));
  }
}

size_t SkipCsvRecord(std::string_view text, size_t pos, size_t* lines) {
  bool quoted = false;
  *lines = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      quoted = !quoted;  // "" toggles twice
    } else if (c == '\n') {
      ++*lines;
      if (!quoted) return i + 1;
    } else if (c == '\r' && !quoted) {
      ++*lines;
      return i + 1 < text.size() && text[i + 1] == '\n' ? i + 2 : i + 1;
    }
  }
  return text.size();
}

void AppendCsvCell(std::string_view cell, std::string* out) {
  bool quote = !cell.empty() && (cell.front() == ' ' || cell.back() == ' ');
  for (char c : cell)
    if (c == ',' || c == '"' || c == '\n' || c == '\r') quote = true;
  if (!quote) {
    out->append(cell);
    return;
  }
  *out += '"';
  for (char c : cell) {
    if (c == '"') *out += '"';
    *out += c;
  }
  *out += '"';
}

}  // namespace ferry::batch
