#pragma once

#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <cstdint>
#include <string>

#include "core/result.h"

namespace ferry::cli {

struct AdminAnswer {
  int status = 0;
  std::string body;
};

// A blocking HTTP/1.1 client of the engine's admin API, one connection per call, on
// Boost.Beast (as the gateway's upstream side): what `ferry deploy / status / scale /
// delete / logs` speak.
// Thread-safety: Call is thread-safe (nothing is shared between calls).
class AdminClient {
 public:
  // "http://HOST[:PORT][/PREFIX]" or "HOST[:PORT]"; InvalidArgument otherwise.
  static Result<AdminClient> FromUrl(const std::string& url);

  // One exchange. Unavailable when the API cannot be reached, DeadlineExceeded past
  // `timeout`; any HTTP status is an answer.
  Result<AdminAnswer> Call(boost::beast::http::verb method, const std::string& target, const std::string& body = "",
                           const std::string& content_type = "application/json",
                           std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  const std::string& url() const { return url_; }

 private:
  std::string url_, host_, port_, prefix_;
};

// Percent-encodes a query parameter value.
std::string UrlEncode(const std::string& s);

}  // namespace ferry::cli
