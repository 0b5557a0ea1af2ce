#include "frontend/http/response_head.h"

#include <gtest/gtest.h>

namespace ferry::frontend::http {
namespace {

std::string Head(const Response& r, int minor, bool keep, uint64_t length) {
  std::string out;
  AppendStatusLine(&out, minor, r.result_int());
  AppendFields(r, &out);
  AppendFraming(&out, r.result_int(), length, minor, keep);
  return out;
}

TEST(ResponseHeadTest, WritesTheStatusLineFieldsInOrderAndTheServersFraming) {
  Response r = JsonResponse(404, "{}");
  r.set("Inference-Header-Content-Length", "12");
  // The handler's own framing and connection fields never reach the wire.
  r.set(beast_http::field::content_length, "999");
  r.set(beast_http::field::connection, "upgrade");
  r.set(beast_http::field::transfer_encoding, "chunked");
  EXPECT_EQ(Head(r, 1, true, 2),
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nInference-Header-Content-Length: 12\r\n"
            "Content-Length: 2\r\n\r\n");
  EXPECT_EQ(Head(r, 1, false, 2),
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nInference-Header-Content-Length: 12\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\n");
}

TEST(ResponseHeadTest, Http10KeepAliveIsAnnouncedAndCloseIsExplicit) {
  Response r{beast_http::status::ok, 10};
  EXPECT_EQ(Head(r, 0, true, 0), "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(Head(r, 0, false, 0), "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST(ResponseHeadTest, NoContentLengthOn1xx204And304) {
  for (int status : {100, 204, 304}) {
    std::string out;
    AppendFraming(&out, status, 7, 1, true);
    EXPECT_EQ(out, "\r\n") << status;
  }
  std::string out;
  AppendStatusLine(&out, 1, 503, "Busy");
  EXPECT_EQ(out, "HTTP/1.1 503 Busy\r\n");
}

}  // namespace
}  // namespace ferry::frontend::http
