#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ferry::monitoring {

// One blocking HTTP/1.1 POST of a JSON body to an http:// URL (host[:port][/path]);
// OK for a 2xx answer, Unavailable naming the URL and the status or the socket error
// otherwise (connect, send and receive within `timeout`). No TLS. For the alert loop's
// notifications, span exports and payload logs, never on a request path.
// Thread-safety: thread-safe.
Status HttpPostJson(const std::string& url, const std::string& body, std::chrono::milliseconds timeout);

// The same exchange, answering the HTTP status code whatever it is (Unavailable only
// when no answer came: resolve, connect, send or receive failed, or timed out).
// `content_type` for JSON media types other than application/json (CloudEvents').
Result<int> HttpPostJsonStatus(const std::string& url, const std::string& body, std::chrono::milliseconds timeout,
                               std::string_view content_type = "application/json");

}  // namespace ferry::monitoring
