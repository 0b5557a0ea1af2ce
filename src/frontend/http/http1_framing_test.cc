#include "frontend/http/http1_framing.h"

#include <gtest/gtest.h>

namespace ferry::frontend::http::http1 {
namespace {

ParseResult Request(std::string_view in, Head* h, size_t max = 64 * 1024) { return ParseRequestHead(in, max, h); }

TEST(Http1Framing, ParsesARequestHeadAndItsFraming) {
  Head h;
  const std::string in =
      "\r\nPOST /v2/models/m/infer?x=1 HTTP/1.1\r\nHost: a\r\ncontent-length:  12 \r\n"
      "Traceparent: 00-ab-cd-01\r\nConnection: keep-alive\r\n\r\nbody follows";
  ParseResult r = Request(in, &h);
  ASSERT_EQ(r.state, State::kDone) << r.error;
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.target, "/v2/models/m/infer?x=1");
  EXPECT_EQ(h.minor_version, 1);
  EXPECT_EQ(h.size, in.find("body follows"));
  EXPECT_TRUE(h.has_content_length);
  EXPECT_EQ(h.content_length, 12u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.chunked);
  ASSERT_EQ(h.fields.size(), 4u);
  EXPECT_EQ(h.fields[1].value, "12") << "whitespace around a value is not part of it";
  EXPECT_EQ(h.Find("TRACEPARENT"), "00-ab-cd-01");
  EXPECT_EQ(h.Find("missing"), "");
}

TEST(Http1Framing, KeepAliveFollowsTheVersionAndConnection) {
  Head h;
  ASSERT_EQ(Request("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", &h).state, State::kDone);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(Request("GET / HTTP/1.0\r\n\r\n", &h).state, State::kDone);
  EXPECT_EQ(h.minor_version, 0);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(Request("GET / HTTP/1.0\r\nConnection: foo, keep-alive\r\n\r\n", &h).state, State::kDone);
  EXPECT_TRUE(h.keep_alive);
  ASSERT_EQ(Request("POST / HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: Chunked\r\n\r\n", &h).state,
            State::kDone);
  EXPECT_TRUE(h.expect_continue);
  EXPECT_TRUE(h.chunked);
}

TEST(Http1Framing, ATruncatedHeadIsIncompleteUntilTheLimit) {
  Head h;
  const std::string full = "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\n";
  for (size_t n = 0; n < full.size(); ++n)
    EXPECT_EQ(Request(full.substr(0, n), &h).state, State::kIncomplete) << n;
  EXPECT_EQ(Request(full, &h).state, State::kDone);
  // Past the limit without a blank line: an error that says so (the server's 431).
  std::string huge = "GET / HTTP/1.1\r\nX-Big: " + std::string(70000, 'a');
  ParseResult r = Request(huge, &h);
  EXPECT_EQ(r.state, State::kError);
  EXPECT_TRUE(r.too_large);
  EXPECT_NE(r.error.find("65536"), std::string::npos) << r.error;
  // A complete head longer than the limit too.
  r = Request("GET / HTTP/1.1\r\nX-Big: " + std::string(100, 'a') + "\r\n\r\n", &h, 64);
  EXPECT_TRUE(r.too_large) << r.error;
}

TEST(Http1Framing, RejectsWhatAProxyAndAServerCouldFrameDifferently) {
  const std::pair<std::string, std::string> bad[] = {
      {"POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n", "'Content-Length': not a number"},
      {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "'Content-Length': not a number"},
      {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", "'Content-Length': not a number"},
      {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", "'Content-Length': not a number"},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "twice with different values"},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "together"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "only 'chunked'"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "twice"},
      {"POST / HTTP/1.1\r\nContent-Length : 1\r\n\r\n", "malformed header field name"},
      {"POST / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", "obsolete line folding"},
      {"POST / HTTP/1.1\r\nNoColon\r\n\r\n", "without a colon"},
      {"POST / HTTP/1.1\r\nX: a\x01z\r\n\r\n", "invalid character"},
      {"POST / HTTP/1.1\nX: a\r\n\r\n", "bare LF"},
      {"POST / HTTP/1.1\r\nX: a\rb\r\n\r\n", "bare LF or CR"},
      {"POST / HTTP/2.0\r\n\r\n", "unsupported HTTP version"},
      {"POST /  HTTP/1.1\r\n\r\n", "malformed request line"},
      {"POST\r\n\r\n", "malformed request line"},
      {"P(ST / HTTP/1.1\r\n\r\n", "malformed method"},
  };
  for (const auto& [in, want] : bad) {
    Head h;
    ParseResult r = Request(in, &h);
    EXPECT_EQ(r.state, State::kError) << in;
    EXPECT_NE(r.error.find(want), std::string::npos) << in << " -> " << r.error;
    EXPECT_FALSE(r.too_large) << in;
  }
  // A bare LF is refused before the head is complete too (it never will be).
  Head h;
  EXPECT_EQ(Request("GET / HTTP/1.1\nHost: a\n", &h).state, State::kError);
}

TEST(Http1Framing, ParsesAResponseHead) {
  Head h;
  const std::string in = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
  ParseResult r = ParseResponseHead(in, 1024, &h);
  ASSERT_EQ(r.state, State::kDone) << r.error;
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.content_length, 5u);
  EXPECT_EQ(h.size, in.find("hello"));
  ASSERT_EQ(ParseResponseHead("HTTP/1.1 404\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 1024, &h).state,
            State::kDone);
  EXPECT_EQ(h.status, 404);
  EXPECT_EQ(h.reason, "");
  EXPECT_TRUE(h.chunked);
  EXPECT_FALSE(h.has_content_length) << "chunked framing wins over Content-Length in a response";
  ASSERT_EQ(ParseResponseHead("HTTP/1.0 200 OK\r\n\r\n", 1024, &h).state, State::kDone);
  EXPECT_FALSE(h.keep_alive);
  for (std::string bad : {"HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 abc OK\r\n\r\n",
                          "HTTP/1.1 099 X\r\n\r\n", "ICY 200 OK\r\n\r\n", "\r\n\r\n"})
    EXPECT_EQ(ParseResponseHead(bad, 1024, &h).state, State::kError) << bad;
  EXPECT_EQ(ParseResponseHead("HTTP/1.1 200 OK\r\nContent-Le", 1024, &h).state, State::kIncomplete);
}

// Feeds `in` to a decoder in pieces of `piece` bytes, as a socket would deliver it,
// keeping what the decoder did not consume.
ParseResult DecodeInPieces(std::string_view in, size_t piece, std::string* body, uint64_t max = 1 << 20) {
  ChunkedDecoder d(max);
  std::string pending;
  size_t at = 0;
  while (true) {
    const size_t n = std::min(piece, in.size() - at);
    pending.append(in.substr(at, n));
    at += n;
    auto step = d.Feed(pending, body);
    pending.erase(0, step.consumed);
    if (step.result.state != State::kIncomplete) return step.result;
    if (at == in.size()) return step.result;
  }
}

TEST(Http1Framing, DecodesChunkedBodiesDeliveredInAnyPieces) {
  const std::string in = "5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  for (size_t piece : {1, 2, 3, 7, 1000}) {
    std::string body;
    ParseResult r = DecodeInPieces(in.substr(0, in.size() - 4), piece, &body);
    EXPECT_EQ(r.state, State::kDone) << piece << ": " << r.error;
    EXPECT_EQ(body, "hello 0123456789") << piece;
  }
  // What follows the body is not consumed (the next message's bytes).
  ChunkedDecoder d(1 << 20);
  std::string body;
  auto step = d.Feed(in, &body);
  EXPECT_EQ(step.result.state, State::kDone);
  EXPECT_EQ(in.substr(step.consumed), "NEXT");
  // An empty body; upper-case hex.
  body.clear();
  EXPECT_EQ(DecodeInPieces("0\r\n\r\n", 1, &body).state, State::kDone);
  EXPECT_EQ(body, "");
  EXPECT_EQ(DecodeInPieces("1F\r\n" + std::string(31, 'z') + "\r\n0\r\n\r\n", 4, &body).state, State::kDone);
  EXPECT_EQ(body.size(), 31u);
}

TEST(Http1Framing, RejectsMalformedAndOversizedChunkedBodies) {
  const std::pair<std::string, std::string> bad[] = {
      {"x\r\n", "malformed chunk size"},
      {"\r\n", "malformed chunk size"},
      {"-1\r\n", "malformed chunk size"},
      {"11111111111111111\r\n", "malformed chunk size"},  // 17 hex digits: overflows
      {"3\r\nabcX\r\n", "no CRLF after a chunk's data"},
      {"0\r\nnot a field\r\n\r\n", "malformed trailer"},
      {std::string(5000, '1'), "chunk-size line too long"},
  };
  for (const auto& [in, want] : bad) {
    std::string body;
    ParseResult r = DecodeInPieces(in, 3, &body);
    EXPECT_EQ(r.state, State::kError) << in.substr(0, 40);
    EXPECT_NE(r.error.find(want), std::string::npos) << in.substr(0, 40) << " -> " << r.error;
  }
  // Over the body limit, across chunks: too_large (the server's 413).
  std::string body;
  ParseResult r = DecodeInPieces("8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n", 5, &body, 10);
  EXPECT_EQ(r.state, State::kError);
  EXPECT_TRUE(r.too_large);
  EXPECT_EQ(body, "12345678") << "nothing past the limit is kept";
  // A truncated body stays incomplete (the connection's end decides).
  body.clear();
  EXPECT_EQ(DecodeInPieces("5\r\nhel", 2, &body).state, State::kIncomplete);
  // A huge trailer.
  body.clear();
  r = DecodeInPieces("0\r\n" + std::string(70000, 'a'), 1000, &body);
  EXPECT_TRUE(r.too_large) << r.error;
}

}  // namespace
}  // namespace ferry::frontend::http::http1
