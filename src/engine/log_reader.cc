#include "engine/log_reader.h"

#include <fstream>
#include <string_view>
#include <sys/stat.h>

namespace ferry::engine {
namespace {

// Size of a file, or -1 when it does not exist.
int64_t FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_size);
}

// Bytes [from, to) of a file (to clipped to its size).
std::string ReadRange(const std::string& path, uint64_t from, uint64_t to) {
  std::ifstream in(path, std::ios::binary);
  if (!in || to <= from) return {};
  in.seekg(static_cast<std::streamoff>(from));
  std::string out(to - from, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

// The last `lines` lines of `text` (a partial last line counts as one).
std::string_view LastLines(std::string_view text, int lines, bool* complete) {
  size_t end = text.size();
  if (end > 0 && text[end - 1] == '\n') --end;
  int seen = 0;
  size_t pos = end;
  while (pos > 0) {
    if (text[pos - 1] == '\n' && ++seen == lines) {
      *complete = true;
      return text.substr(pos);
    }
    --pos;
  }
  *complete = false;  // fewer lines than asked for
  return text;
}

int CountLines(std::string_view text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  if (!text.empty() && text.back() != '\n') ++n;
  return n;
}

}  // namespace

std::string SanitizeUtf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= in.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
    if (ok && len == 2) ok = c >= 0xC2;  // no overlong forms
    if (ok && len == 3) {
      const auto c1 = static_cast<unsigned char>(in[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);  // overlong, surrogates
    }
    if (ok && len == 4) {
      const auto c1 = static_cast<unsigned char>(in[i + 1]);
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90) && c <= 0xF4;
    }
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

Result<LogChunk> ReadLogTail(const std::string& path, int lines, uint64_t max_bytes) {
  const int64_t size = FileSize(path);
  if (size < 0) return NotFound("log file '" + path + "' does not exist");
  LogChunk chunk;
  chunk.offset = static_cast<uint64_t>(size);
  const uint64_t from = static_cast<uint64_t>(size) > max_bytes ? static_cast<uint64_t>(size) - max_bytes : 0;
  std::string text = ReadRange(path, from, static_cast<uint64_t>(size));
  bool complete = false;
  std::string_view last = LastLines(text, lines, &complete);
  std::string out(last);
  if (!complete && from == 0) {
    // FILE alone holds fewer lines: the older ones are in FILE.1.
    const int missing = lines - CountLines(out);
    const int64_t prev_size = FileSize(path + ".1");
    if (missing > 0 && prev_size > 0) {
      const uint64_t budget = max_bytes > out.size() ? max_bytes - out.size() : 0;
      const uint64_t pfrom = static_cast<uint64_t>(prev_size) > budget ? static_cast<uint64_t>(prev_size) - budget : 0;
      std::string prev = ReadRange(path + ".1", pfrom, static_cast<uint64_t>(prev_size));
      if (!prev.empty() && prev.back() != '\n') prev += '\n';
      bool c2 = false;
      out = std::string(LastLines(prev, missing, &c2)) + out;
    }
  } else if (!complete) {
    chunk.truncated = true;
    // Cut at a line start so the first line is whole.
    const size_t nl = out.find('\n');
    if (nl != std::string::npos) out = out.substr(nl + 1);
  }
  chunk.text = SanitizeUtf8(out);
  return chunk;
}

Result<LogChunk> ReadLogFrom(const std::string& path, uint64_t from, uint64_t max_bytes) {
  const int64_t size = FileSize(path);
  if (size < 0) return NotFound("log file '" + path + "' does not exist");
  LogChunk chunk;
  std::string text;
  uint64_t start = from;
  if (static_cast<uint64_t>(size) < from) {
    chunk.rotated = true;
    const int64_t prev_size = FileSize(path + ".1");
    if (prev_size > 0 && static_cast<uint64_t>(prev_size) > from)
      text = ReadRange(path + ".1", from, static_cast<uint64_t>(prev_size));
    start = 0;
  }
  std::string current = ReadRange(path, start, static_cast<uint64_t>(size));
  // A character the replica is still writing waits for the next read, rather than
  // turning into two replacement characters.
  size_t hold = 0;
  for (size_t k = 1; k <= 3 && k <= current.size(); ++k) {
    const auto c = static_cast<unsigned char>(current[current.size() - k]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    if (len > k) hold = k;
    break;
  }
  current.resize(current.size() - hold);
  text += current;
  chunk.offset = static_cast<uint64_t>(size) - hold;
  if (text.size() > max_bytes) {
    chunk.truncated = true;
    text = text.substr(text.size() - max_bytes);
  }
  chunk.text = SanitizeUtf8(text);
  return chunk;
}

}  // namespace ferry::engine
