#include "frontend/http/response_head.h"

#include <charconv>

namespace ferry::frontend::http {

void AppendStatusLine(std::string* out, int minor_version, int status, std::string_view reason) {
  out->append(minor_version == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
  char digits[12];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), status);
  out->append(digits, end).push_back(' ');
  if (reason.empty()) {
    auto r = beast_http::obsolete_reason(static_cast<beast_http::status>(status));
    out->append(r.data(), r.size());
  } else {
    out->append(reason);
  }
  out->append("\r\n");
}

void AppendFields(const Response& r, std::string* out) {
  for (const auto& f : r) {
    const auto name = f.name();
    if (name == beast_http::field::content_length || name == beast_http::field::transfer_encoding ||
        name == beast_http::field::connection)
      continue;
    const auto n = f.name_string();
    const auto v = f.value();
    out->append(n.data(), n.size()).append(": ").append(v.data(), v.size()).append("\r\n");
  }
}

void AppendFraming(std::string* out, int status, uint64_t content_length, int minor_version, bool keep_alive) {
  if (status >= 200 && status != 204 && status != 304) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), content_length);
    out->append("Content-Length: ").append(digits, end).append("\r\n");
  }
  // "close" also at HTTP/1.0, where it is the default: explicit for every client.
  if (!keep_alive) out->append("Connection: close\r\n");
  else if (minor_version == 0) out->append("Connection: keep-alive\r\n");
  out->append("\r\n");
}

}  // namespace ferry::frontend::http
