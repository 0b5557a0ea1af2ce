#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "frontend/http/http_server.h"

// The head of an HTTP/1.1 response, written as bytes: Http1Server (under `ferry serve`'s
// HttpServer and in the engine's gateway) formats every answer with these and sends
// head and body in one gather write, without Beast's serializer.
// Thread-safety: pure functions.
namespace ferry::frontend::http {

// "HTTP/1.<minor_version> <status> <reason>\r\n"; an empty reason becomes the standard
// one for the status ("OK", "Not Found", ...).
void AppendStatusLine(std::string* out, int minor_version, int status, std::string_view reason = {});

// Each field of `r` as "Name: value\r\n", in order, except the framing and connection
// fields (Content-Length, Transfer-Encoding, Connection), which are the server's.
void AppendFields(const Response& r, std::string* out);

// Content-Length (not for 1xx, 204 and 304 answers, RFC 9110 8.6), the Connection field
// `keep_alive` needs at HTTP/1.<minor_version>, and the blank line that ends the head.
void AppendFraming(std::string* out, int status, uint64_t content_length, int minor_version, bool keep_alive);

}  // namespace ferry::frontend::http
