#include "frontend/http/http1_framing.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace ferry::frontend::http::http1 {
namespace {

// tchar (RFC 9110 5.6.2): the characters of a method and a field name.
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kToken = MakeTokenTable();

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!kToken[static_cast<unsigned char>(c)]) return false;
  return true;
}

// A field value's characters: visible, obs-text, space and tab; no other control.
bool IsFieldValue(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

ParseResult Error(std::string message) { return {State::kError, std::move(message), false}; }

// "HTTP/1.x" -> x; -1 when it is not HTTP/1.
int MinorVersion(std::string_view v) {
  if (v.size() != 8 || v.substr(0, 7) != "HTTP/1." || v[7] < '0' || v[7] > '9') return -1;
  return v[7] - '0';
}

// Does the comma-separated list `value` hold `token` (case-insensitive)?
bool ListHas(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (EqualsIgnoreCase(Trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// Parses the field lines between the start line (ending at `line_end`) and `head_end`
// (just past the last field's CRLF) into *head's fields and framing.
ParseResult ParseFields(std::string_view in, size_t line_end, size_t head_end, bool request, Head* head) {
  size_t pos = line_end + 2;
  bool has_te = false;
  while (pos < head_end) {
    const size_t eol = in.find("\r\n", pos);
    std::string_view line = in.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.front() == ' ' || line.front() == '\t') return Error("obsolete line folding in the header fields");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Error("header field without a colon: '" + std::string(line.substr(0, 64)) + "'");
    std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return Error("malformed header field name '" + std::string(name.substr(0, 64)) + "'");
    std::string_view value = Trim(line.substr(colon + 1));
    if (!IsFieldValue(value)) return Error("header field '" + std::string(name) + "': invalid character in its value");
    head->fields.push_back({name, value});
    if (EqualsIgnoreCase(name, "content-length")) {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || p != value.data() + value.size())
        return Error("header field 'Content-Length': not a number: '" + std::string(value.substr(0, 64)) + "'");
      if (head->has_content_length && head->content_length != n)
        return Error("header field 'Content-Length' appears twice with different values");
      head->has_content_length = true;
      head->content_length = n;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      if (!EqualsIgnoreCase(value, "chunked"))
        return Error("header field 'Transfer-Encoding': only 'chunked' is supported, got '" +
                     std::string(value.substr(0, 64)) + "'");
      if (has_te) return Error("header field 'Transfer-Encoding' appears twice");
      has_te = true;
      head->chunked = true;
    } else if (EqualsIgnoreCase(name, "connection")) {
      if (ListHas(value, "close")) head->keep_alive = false;
      else if (ListHas(value, "keep-alive") && head->minor_version == 0) head->keep_alive = true;
    } else if (request && EqualsIgnoreCase(name, "expect")) {
      head->expect_continue = EqualsIgnoreCase(value, "100-continue");
    }
  }
  if (request && head->chunked && head->has_content_length)
    return Error("header fields 'Content-Length' and 'Transfer-Encoding' together (RFC 9112 6.3)");
  if (head->chunked) head->has_content_length = false;  // a response's chunked framing wins
  return {State::kDone, {}, false};
}

// Locates the head: skips `skip_empty` leading CRLFs, finds the blank line.
// Returns kDone with *start and *head_end set (head_end: just past the blank line).
ParseResult Locate(std::string_view in, size_t max, bool skip_empty, size_t* start, size_t* head_end) {
  size_t s = 0;
  if (skip_empty)
    while (in.size() - s >= 2 && in[s] == '\r' && in[s + 1] == '\n') s += 2;
  const size_t blank = in.find("\r\n\r\n", s);
  if (blank == std::string_view::npos || blank + 4 > max) {
    if (in.size() > max || (blank != std::string_view::npos && blank + 4 > max))
      return {State::kError, "the message head exceeds " + std::to_string(max) + " bytes", true};
    // A bare LF in what came so far will never make a valid head.
    for (size_t i = s; i < in.size(); ++i)
      if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) return Error("a line ends with a bare LF");
    return {State::kIncomplete, {}, false};
  }
  for (size_t i = s; i < blank; ++i)
    if ((in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) || (in[i] == '\r' && in[i + 1] != '\n'))
      return Error("a line ends with a bare LF or CR");
  *start = s;
  *head_end = blank + 4;
  return {State::kDone, {}, false};
}

void Reset(Head* h) {
  h->fields.clear();
  h->method = h->target = h->reason = {};
  h->status = 0;
  h->minor_version = 1;
  h->size = 0;
  h->chunked = h->has_content_length = h->expect_continue = false;
  h->content_length = 0;
  h->keep_alive = true;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view Head::Find(std::string_view name) const {
  for (const Field& f : fields)
    if (EqualsIgnoreCase(f.name, name)) return f.value;
  return {};
}

ParseResult ParseRequestHead(std::string_view in, size_t max_head_bytes, Head* head) {
  Reset(head);
  size_t start = 0, end = 0;
  ParseResult r = Locate(in, max_head_bytes, /*skip_empty=*/true, &start, &end);
  if (r.state != State::kDone) return r;
  const size_t line_end = in.find("\r\n", start);
  std::string_view line = in.substr(start, line_end - start);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return Error("malformed request line: '" + std::string(line.substr(0, 64)) + "'");
  head->method = line.substr(0, sp1);
  head->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!IsToken(head->method)) return Error("malformed method in the request line");
  if (head->target.empty()) return Error("empty request target");
  for (char c : head->target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return Error("invalid character in the request target");
  head->minor_version = MinorVersion(line.substr(sp2 + 1));
  if (head->minor_version < 0)
    return Error("unsupported HTTP version '" + std::string(line.substr(sp2 + 1, 16)) + "' (HTTP/1.x only)");
  head->keep_alive = head->minor_version >= 1;
  r = ParseFields(in, line_end, end - 2, /*request=*/true, head);
  if (r.state != State::kDone) return r;
  head->size = end;
  return r;
}

ParseResult ParseResponseHead(std::string_view in, size_t max_head_bytes, Head* head) {
  Reset(head);
  size_t start = 0, end = 0;
  ParseResult r = Locate(in, max_head_bytes, /*skip_empty=*/false, &start, &end);
  if (r.state != State::kDone) return r;
  const size_t line_end = in.find("\r\n");
  std::string_view line = in.substr(0, line_end);
  head->minor_version = MinorVersion(line.substr(0, 8));
  if (head->minor_version < 0 || line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' '))
    return Error("malformed status line: '" + std::string(line.substr(0, 64)) + "'");
  int status = 0;
  auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
  if (ec != std::errc() || p != line.data() + 12 || status < 100)
    return Error("malformed status code in '" + std::string(line.substr(0, 64)) + "'");
  head->status = status;
  head->reason = line.size() > 13 ? line.substr(13) : std::string_view();
  head->keep_alive = head->minor_version >= 1;
  r = ParseFields(in, line_end, end - 2, /*request=*/false, head);
  if (r.state != State::kDone) return r;
  head->size = end;
  return r;
}

ChunkedDecoder::Step ChunkedDecoder::Feed(std::string_view in, std::string* body) {
  constexpr size_t kMaxLine = 4096;        // a chunk-size line, extensions included
  constexpr size_t kMaxTrailer = 64 * 1024;
  Step step;
  auto fail = [&](std::string message, bool too_large = false) {
    step.result = {State::kError, std::move(message), too_large};
    return step;
  };
  size_t pos = 0;
  while (phase_ != Phase::kDone) {
    std::string_view rest = in.substr(pos);
    if (phase_ == Phase::kData) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
      if (n == 0) break;
      body->append(rest.data(), n);
      remaining_ -= n;
      pos += n;
      if (remaining_ == 0) phase_ = Phase::kDataEnd;
      continue;
    }
    if (phase_ == Phase::kDataEnd) {
      if (rest.size() < 2) break;
      if (rest[0] != '\r' || rest[1] != '\n') return fail("chunked body: no CRLF after a chunk's data");
      pos += 2;
      phase_ = Phase::kSize;
      continue;
    }
    const size_t eol = rest.find("\r\n");
    if (eol == std::string_view::npos) {
      if (phase_ == Phase::kSize && rest.size() > kMaxLine) return fail("chunked body: chunk-size line too long");
      if (phase_ == Phase::kTrailer && trailer_bytes_ + rest.size() > kMaxTrailer)
        return fail("chunked body: trailer fields exceed " + std::to_string(kMaxTrailer) + " bytes", true);
      break;
    }
    std::string_view line = rest.substr(0, eol);
    pos += eol + 2;
    if (phase_ == Phase::kTrailer) {
      trailer_bytes_ += eol + 2;
      if (trailer_bytes_ > kMaxTrailer)
        return fail("chunked body: trailer fields exceed " + std::to_string(kMaxTrailer) + " bytes", true);
      if (line.empty()) phase_ = Phase::kDone;
      else if (line.find('\n') != std::string_view::npos || line.find(':') == std::string_view::npos)
        return fail("chunked body: malformed trailer field");
      continue;
    }
    // The chunk-size line: hex digits, then optional ";extension"s.
    std::string_view size = line.substr(0, line.find(';'));
    while (!size.empty() && (size.back() == ' ' || size.back() == '\t')) size.remove_suffix(1);
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(size.data(), size.data() + size.size(), n, 16);
    if (size.empty() || size.size() > 16 || ec != std::errc() || p != size.data() + size.size())
      return fail("chunked body: malformed chunk size '" + std::string(size.substr(0, 32)) + "'");
    if (n > max_body_ - decoded_)
      return fail("request body exceeds the limit of " + std::to_string(max_body_) + " bytes", true);
    decoded_ += n;
    if (n == 0) {
      phase_ = Phase::kTrailer;
    } else {
      remaining_ = n;
      phase_ = Phase::kData;
    }
  }
  step.consumed = pos;
  step.result.state = phase_ == Phase::kDone ? State::kDone : State::kIncomplete;
  return step;
}

}  // namespace ferry::frontend::http::http1
