// The opening handshake (RFC 6455 §4): key/accept vectors, the request builder,
// the incremental response parser fed whole, byte by byte and at every split,
// each validation failure, rejections, and the server role round trip.
#include <ostream> // before doctest, which only forward-declares it: CHECKs print std::error_code

#include <doctest/doctest.h>

#include <tether/error.hpp>
#include <tether/handshake.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "crypto.hpp"

using namespace std::string_literals;
using tether::error;

namespace {

// RFC 6455 §1.3 sample nonce and its accept value.
constexpr std::string_view sample_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view sample_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const std::string frame_bytes = "\x81\x05Hello";

tether::client_request make_request() {
  tether::client_request req;
  req.host = "example.com:8080";
  req.target = "/chat?room=1";
  req.origin = "https://example.com";
  req.subprotocols = {"chat", "superchat"};
  req.extensions = {{"permessage-deflate", {{"client_max_window_bits", std::nullopt}}}, {"x-foo", {}}};
  req.headers.add("Authorization", "Basic dXNlcjpwYXNz");
  return req;
}

std::string accept_head(std::string_view extra = {}) {
  return "HTTP/1.1 101 Switching Protocols\r\n"
         "Upgrade: websocket\r\n"
         "Connection: Upgrade\r\n"
         "Sec-WebSocket-Accept: "s +
         std::string(sample_accept) + "\r\n" + std::string(extra) + "\r\n";
}

struct parse_outcome {
  std::size_t consumed = 0; // total bytes the parser took
  bool done = false;
  std::error_code ec;
  tether::handshake_response resp;
};

// Feeds `chunks` in order, checking the contract: until done, a chunk is consumed
// entirely; after done or an error nothing more is fed. Calls finish() at the end
// if `eof` and the response is not yet done.
parse_outcome run_parser(const std::vector<std::string_view>& chunks, bool eof = false,
                         tether::handshake_limits limits = {}) {
  tether::response_parser parser(limits);
  parse_outcome out;
  for (auto chunk : chunks) {
    const auto r = parser.feed(chunk);
    CHECK(r.consumed <= chunk.size());
    out.consumed += r.consumed;
    out.done = r.done;
    out.ec = r.ec;
    if (r.ec || r.done)
      break;
    CHECK(r.consumed == chunk.size());
  }
  if (eof && !out.done && !out.ec) {
    const auto r = parser.finish();
    CHECK(r.consumed == 0);
    out.done = r.done;
    out.ec = r.ec;
  }
  out.resp = parser.response();
  return out;
}

parse_outcome parse_whole(std::string_view in, bool eof = false, tether::handshake_limits limits = {}) {
  return run_parser({in}, eof, limits);
}

parse_outcome parse_bytewise(std::string_view in, bool eof = false) {
  std::vector<std::string_view> chunks;
  for (std::size_t i = 0; i < in.size(); ++i)
    chunks.push_back(in.substr(i, 1));
  return run_parser(chunks, eof);
}

std::error_code validate(std::string_view head, tether::client_request req = make_request()) {
  auto out = parse_whole(head);
  REQUIRE(out.done);
  REQUIRE(!out.ec);
  return tether::validate_response(out.resp, sample_key, req);
}

} // namespace

TEST_CASE("compute_accept matches RFC 6455 §1.3") {
  CHECK(tether::compute_accept(sample_key) == sample_accept);
}

TEST_CASE("generate_key: 24 base64 characters of 16 random bytes, fresh each time") {
  const auto a = tether::generate_key();
  const auto b = tether::generate_key();
  CHECK(a.size() == 24);
  CHECK(a != b);
  std::string raw;
  REQUIRE(tether::detail::base64_decode(a, raw));
  CHECK(raw.size() == 16);
}

TEST_CASE("base64 helpers are strict") {
  std::string out;
  CHECK(tether::detail::base64_encode("") == "");
  CHECK(tether::detail::base64_encode("f") == "Zg==");
  CHECK(tether::detail::base64_encode("fo") == "Zm8=");
  CHECK(tether::detail::base64_encode("foobar") == "Zm9vYmFy");
  CHECK(tether::detail::base64_decode("Zm9vYmE=", out));
  CHECK(out == "fooba");
  CHECK(tether::detail::base64_decode("", out));
  CHECK(out.empty());
  for (auto bad : {"Zg=", "Zg", "Z===", "====", "Zh==", " Zg==", "Zg==\n", "Zm9v YmE=", "Zg=a", "Zm9*"})
    CHECK_MESSAGE(!tether::detail::base64_decode(bad, out), bad);
  // SHA-1 of "abc" (FIPS 180 test vector), checked through base64.
  std::array<unsigned char, 20> digest{};
  REQUIRE(tether::detail::sha1("abc", digest));
  CHECK(tether::detail::base64_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), 20)) ==
        "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
}

TEST_CASE("build_request writes the RFC 6455 §4.1 fields with CRLF line ends") {
  const auto text = tether::build_request(make_request(), sample_key);
  CHECK(text == "GET /chat?room=1 HTTP/1.1\r\n"
                "Host: example.com:8080\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                "Origin: https://example.com\r\n"
                "Sec-WebSocket-Protocol: chat, superchat\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n"
                "Authorization: Basic dXNlcjpwYXNz\r\n"
                "\r\n");

  tether::client_request bare;
  bare.host = "h";
  CHECK(tether::build_request(bare, sample_key) == "GET / HTTP/1.1\r\n"
                                                   "Host: h\r\n"
                                                   "Upgrade: websocket\r\n"
                                                   "Connection: Upgrade\r\n"
                                                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                                   "Sec-WebSocket-Version: 13\r\n"
                                                   "\r\n");
}

TEST_CASE("a 101 stops exactly before the first frame, however it is split") {
  const auto head = accept_head("Sec-WebSocket-Protocol: chat\r\n");
  const auto wire = head + frame_bytes;

  SUBCASE("whole") {
    const auto out = parse_whole(wire);
    CHECK(out.done);
    CHECK(!out.ec);
    CHECK(out.consumed == head.size());
    CHECK(out.resp.status == 101);
    CHECK(out.resp.reason == "Switching Protocols");
    CHECK(out.resp.body.empty());
  }
  SUBCASE("byte by byte") {
    const auto out = parse_bytewise(wire);
    CHECK(out.done);
    CHECK(!out.ec);
    CHECK(out.consumed == head.size());
  }
  SUBCASE("at every split point") {
    for (std::size_t i = 0; i <= wire.size(); ++i) {
      CAPTURE(i);
      const std::string_view w = wire;
      const auto out = run_parser({w.substr(0, i), w.substr(i)});
      CHECK(out.done);
      CHECK(!out.ec);
      CHECK(out.consumed == head.size());
      CHECK(out.resp.headers.fields.size() == 4);
    }
  }
  SUBCASE("the parser takes nothing more once done") {
    tether::response_parser parser;
    auto r = parser.feed(wire);
    CHECK(r.done);
    r = parser.feed(frame_bytes);
    CHECK(r.done);
    CHECK(r.consumed == 0);
    CHECK(parser.finish().done);
  }
}

TEST_CASE("validate_response accepts a correct 101 and records the choices") {
  auto out = parse_whole(accept_head("Sec-WebSocket-Protocol: superchat\r\n"
                                     "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15\r\n"));
  REQUIRE(out.done);
  const auto req = make_request();
  CHECK(!tether::validate_response(out.resp, sample_key, req));
  CHECK(out.resp.subprotocol == "superchat");
  REQUIRE(out.resp.extensions.size() == 1);
  CHECK(out.resp.extensions[0].name == "permessage-deflate");
  REQUIRE(out.resp.extensions[0].params.size() == 1);
  CHECK(out.resp.extensions[0].params[0].first == "client_max_window_bits");
  CHECK(out.resp.extensions[0].params[0].second == "15");

  // Header names and the Upgrade/Connection tokens are case-insensitive, and
  // Connection is a list.
  CHECK(!validate("HTTP/1.1 101 OK\r\n"
                  "upgrade: WebSocket\r\n"
                  "CONNECTION: keep-alive, UPGRADE\r\n"
                  "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
  // No subprotocol and no extensions chosen.
  CHECK(!validate(accept_head()));
  // Extensions split over several lines are combined.
  auto split = parse_whole(accept_head("Sec-WebSocket-Extensions: permessage-deflate\r\n"
                                       "Sec-WebSocket-Extensions: x-foo; a=\"b\"\r\n"));
  CHECK(!tether::validate_response(split.resp, sample_key, req));
  REQUIRE(split.resp.extensions.size() == 2);
  CHECK(split.resp.extensions[1].name == "x-foo");
  CHECK(split.resp.extensions[1].params[0].second == "b");
}

TEST_CASE("validate_response failures") {
  const std::string upgrade = "Upgrade: websocket\r\n";
  const std::string connection = "Connection: Upgrade\r\n";
  const std::string accept = "Sec-WebSocket-Accept: "s + std::string(sample_accept) + "\r\n";
  const auto head = [](std::string fields) { return "HTTP/1.1 101 Switching Protocols\r\n" + fields + "\r\n"; };

  CHECK(validate(head(upgrade + connection + "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n")) ==
        error::handshake_bad_accept);
  CHECK(validate(head(upgrade + connection)) == error::handshake_bad_accept);
  CHECK(validate(head(upgrade + connection + accept + accept)) == error::handshake_bad_accept);
  CHECK(validate(head(connection + accept)) == error::handshake_bad_upgrade);
  CHECK(validate(head("Upgrade: h2c\r\n" + connection + accept)) == error::handshake_bad_upgrade);
  CHECK(validate(head(upgrade + accept)) == error::handshake_bad_connection);
  CHECK(validate(head(upgrade + "Connection: keep-alive\r\n" + accept)) == error::handshake_bad_connection);
  CHECK(validate(head(upgrade + "Connection: upgraded\r\n" + accept)) == error::handshake_bad_connection);

  CHECK(validate(accept_head("Sec-WebSocket-Protocol: mqtt\r\n")) == error::handshake_bad_subprotocol);
  CHECK(validate(accept_head("Sec-WebSocket-Protocol: chat, superchat\r\n")) == error::handshake_bad_subprotocol);
  CHECK(validate(accept_head("Sec-WebSocket-Protocol: CHAT\r\n")) == error::handshake_bad_subprotocol);
  CHECK(validate(accept_head("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n")) ==
        error::handshake_bad_subprotocol);
  CHECK(validate(accept_head("Sec-WebSocket-Protocol: \r\n")) == error::handshake_bad_subprotocol);
  auto no_offer = make_request();
  no_offer.subprotocols.clear();
  CHECK(validate(accept_head("Sec-WebSocket-Protocol: chat\r\n"), no_offer) == error::handshake_bad_subprotocol);

  CHECK(validate(accept_head("Sec-WebSocket-Extensions: x-bar\r\n")) == error::handshake_bad_extension);
  CHECK(validate(accept_head("Sec-WebSocket-Extensions: x-foo, x-foo\r\n")) == error::handshake_bad_extension);
  CHECK(validate(accept_head("Sec-WebSocket-Extensions: x-foo\r\nSec-WebSocket-Extensions: x-foo\r\n")) ==
        error::handshake_bad_extension);
  CHECK(validate(accept_head("Sec-WebSocket-Extensions: x-foo;\r\n")) == error::handshake_bad_extension);
  CHECK(validate(accept_head("Sec-WebSocket-Extensions: \r\n")) == error::handshake_bad_extension);

  // A failed validation leaves the previous choices alone.
  auto out = parse_whole(accept_head("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: x-bar\r\n"));
  CHECK(tether::validate_response(out.resp, sample_key, make_request()) == error::handshake_bad_extension);
  CHECK(out.resp.subprotocol.empty());
}

TEST_CASE("rejections: status, headers and body") {
  struct rejection {
    int status;
    std::string reason;
    std::string header;
    std::string value;
  };
  const std::vector<rejection> cases = {
      {400, "Bad Request", "X-Why", "missing key"},
      {401, "Unauthorized", "WWW-Authenticate", "Basic realm=\"ws\""},
      {403, "Forbidden", "X-Why", "origin"},
      {404, "Not Found", "X-Why", "no such path"},
      {429, "Too Many Requests", "Retry-After", "120"},
      {301, "Moved Permanently", "Location", "wss://example.com/new"},
      {500, "Internal Server Error", "X-Why", "oops"},
      {503, "Service Unavailable", "Retry-After", "5"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.status);
    const std::string body = "{\"error\":\"" + c.reason + "\"}";
    const std::string head_fields = c.header + ": " + c.value + "\r\n";
    const std::string status_line = "HTTP/1.1 " + std::to_string(c.status) + " " + c.reason + "\r\n";

    // By Content-Length, with bytes after the body left alone.
    const auto by_length =
        status_line + head_fields + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    for (const auto& out : {parse_whole(by_length + "XYZ"), parse_bytewise(by_length)}) {
      CHECK(out.done);
      CHECK(!out.ec);
      CHECK(out.consumed == by_length.size());
      CHECK(out.resp.status == c.status);
      CHECK(out.resp.reason == c.reason);
      CHECK(out.resp.headers.find(c.header) == c.value);
      CHECK(out.resp.body == body);
      CHECK(!out.resp.body_truncated);
      auto resp = out.resp;
      CHECK(tether::validate_response(resp, sample_key, make_request()) == error::handshake_rejected);
    }

    // Until EOF: not done until finish().
    const auto by_eof = status_line + head_fields + "Connection: close\r\n\r\n" + body;
    tether::response_parser parser;
    auto r = parser.feed(by_eof);
    CHECK(!r.done);
    CHECK(r.consumed == by_eof.size());
    r = parser.finish();
    CHECK(r.done);
    CHECK(!r.ec);
    CHECK(parser.response().status == c.status);
    CHECK(parser.response().headers.find(c.header) == c.value);
    CHECK(parser.response().body == body);
    CHECK(parse_bytewise(by_eof, true).resp.body == body);
  }
}

TEST_CASE("rejection body details") {
  SUBCASE("the body cap truncates but still consumes up to Content-Length") {
    const std::string body(100, 'b');
    const auto wire = "HTTP/1.1 400 Bad Request\r\nContent-Length: 100\r\n\r\n" + body;
    const auto with_frame = wire + frame_bytes;
    for (std::size_t i = 0; i <= wire.size(); ++i) {
      CAPTURE(i);
      const std::string_view w = with_frame;
      const auto out = run_parser({w.substr(0, i), w.substr(i)}, false, {1024, 10});
      CHECK(out.done);
      CHECK(out.consumed == wire.size());
      CHECK(out.resp.body == std::string(10, 'b'));
      CHECK(out.resp.body_truncated);
    }
  }
  SUBCASE("the body cap applies to a body read until EOF") {
    const auto out = parse_whole("HTTP/1.1 500 Oops\r\n\r\n0123456789abcdef", true, {1024, 4});
    CHECK(out.done);
    CHECK(out.resp.body == "0123");
    CHECK(out.resp.body_truncated);
  }
  SUBCASE("a body exactly at the cap is not truncated") {
    const auto out = parse_whole("HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nabcd", false, {1024, 4});
    CHECK(out.done);
    CHECK(out.resp.body == "abcd");
    CHECK(!out.resp.body_truncated);
  }
  SUBCASE("Content-Length: 0, 204 and 304 have no body") {
    for (auto head : {"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n",
                      "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"}) {
      const std::string h = head;
      const auto out = parse_whole(h + "rest");
      CHECK(out.done);
      CHECK(out.consumed == h.size());
      CHECK(out.resp.body.empty());
    }
  }
  SUBCASE("HTTP/1.0 rejections are understood") {
    const auto out = parse_whole("HTTP/1.0 404 Not Found\r\nContent-Length: 2\r\n\r\nno");
    CHECK(out.done);
    CHECK(out.resp.status == 404);
    CHECK(out.resp.body == "no");
  }
  SUBCASE("a 3xx is only a status") {
    auto out = parse_whole("HTTP/1.1 302 Found\r\nLocation: ws://elsewhere/\r\nContent-Length: 0\r\n\r\n");
    CHECK(out.done);
    CHECK(out.resp.status == 302);
    CHECK(out.resp.headers.find("location") == "ws://elsewhere/");
    CHECK(tether::validate_response(out.resp, sample_key, make_request()) == error::handshake_rejected);
  }
  SUBCASE("chunked bodies are kept raw until EOF") {
    const std::string raw = "5\r\nhello\r\n0\r\n\r\n";
    const auto out =
        parse_whole("HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n" + raw, true);
    CHECK(out.done);
    CHECK(out.resp.body == raw);
  }
  SUBCASE("EOF inside a Content-Length body reports what arrived, flagged truncated") {
    const auto out = parse_whole("HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 10\r\n\r\nabc", true);
    CHECK(out.done);
    CHECK(!out.ec);
    CHECK(out.resp.status == 503);
    CHECK(out.resp.body == "abc");
    CHECK(out.resp.body_truncated);
  }
  SUBCASE("EOF inside the header section is malformed") {
    CHECK(parse_whole("HTTP/1.1 101 Switching", true).ec == error::handshake_malformed);
    CHECK(parse_whole("", true).ec == error::handshake_malformed);
  }
  SUBCASE("conflicting or bad Content-Length is malformed") {
    CHECK(parse_whole("HTTP/1.1 400 X\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").ec ==
          error::handshake_malformed);
    CHECK(parse_whole("HTTP/1.1 400 X\r\nContent-Length: -1\r\n\r\n").ec == error::handshake_malformed);
    CHECK(parse_whole("HTTP/1.1 400 X\r\nContent-Length: 99999999999999999999999\r\n\r\n").ec ==
          error::handshake_malformed);
    CHECK(parse_whole("HTTP/1.1 400 X\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok").done);
  }
}

TEST_CASE("header section limit") {
  const auto head = accept_head();
  SUBCASE("exactly at the limit is fine") {
    const auto out = parse_whole(head + frame_bytes, false, {head.size(), 0});
    CHECK(out.done);
    CHECK(out.consumed == head.size());
  }
  SUBCASE("one byte over is too large, whole or byte by byte") {
    CHECK(parse_whole(head, false, {head.size() - 1, 0}).ec == error::handshake_too_large);
    tether::response_parser parser({head.size() - 1, 0});
    std::error_code ec;
    for (char c : head)
      if ((ec = parser.feed(std::string_view(&c, 1)).ec))
        break;
    CHECK(ec == error::handshake_too_large);
    // Errors are sticky.
    CHECK(parser.feed("x").ec == error::handshake_too_large);
    CHECK(parser.finish().ec == error::handshake_too_large);
  }
  SUBCASE("an endless header is stopped at the default limit") {
    const auto out = parse_whole("HTTP/1.1 101 OK\r\nX: " + std::string(20000, 'a'));
    CHECK(out.ec == error::handshake_too_large);
  }
}

TEST_CASE("malformed responses") {
  const std::vector<std::string> heads = {
      "HTTP/1.1 101\r\n",        // fine on its own: a missing reason is tolerated (checked below)
      "HTTP/2 101 OK\r\n",
      "HTTP/1.2 101 OK\r\n",
      "http/1.1 101 OK\r\n",
      "HTTP/1.1 1O1 OK\r\n",
      "HTTP/1.1 99 OK\r\n",
      "HTTP/1.1 1010 OK\r\n",
      "HTTP/1.1 600 OK\r\n",
      "HTTP/1.1  101 OK\r\n",
      "HTTP/1.1 101 O\x01K\r\n",
      "ICY 200 OK\r\n",
      "\r\n",
      "HTTP/1.0 101 Switching Protocols\r\n",
  };
  CHECK(parse_whole(heads[0] + "\r\n").done);
  for (std::size_t i = 1; i < heads.size(); ++i) {
    CAPTURE(heads[i]);
    CHECK(parse_whole(heads[i] + "Upgrade: websocket\r\n\r\n").ec == error::handshake_malformed);
  }
  const std::string status = "HTTP/1.1 101 Switching Protocols\r\n";
  for (auto line : {"Upgrade websocket\r\n", " Upgrade: websocket\r\n", "Upgrade : websocket\r\n",
                    ": websocket\r\n", "Up grade: websocket\r\n", "X: a\x7f\r\n", "X: a\rb\r\n"}) {
    CAPTURE(line);
    CHECK(parse_whole(status + line + "\r\n").ec == error::handshake_malformed);
  }
  // obs-fold continuation lines are rejected (RFC 7230 §3.2.4).
  CHECK(parse_whole(status + "X-A: one\r\n  two\r\n\r\n").ec == error::handshake_malformed);
  // Bare LF line ends are rejected at once, whole or byte by byte.
  CHECK(parse_whole("HTTP/1.1 101 OK\nUpgrade: websocket\n\n").ec == error::handshake_malformed);
  CHECK(parse_bytewise("HTTP/1.1 101 OK\nUpgrade: websocket\n\n").ec == error::handshake_malformed);
  // Empty values and obs-text are allowed.
  CHECK(parse_whole(status + "X-Empty:\r\nX-Latin: caf\xe9\r\n\r\n").done);
}

TEST_CASE("parse_extensions follows RFC 6455 §9.1") {
  std::vector<tether::extension_offer> out;
  REQUIRE(!tether::parse_extensions("permessage-deflate; client_max_window_bits, x-foo; a=\"b\"", out));
  REQUIRE(out.size() == 2);
  CHECK(out[0].name == "permessage-deflate");
  REQUIRE(out[0].params.size() == 1);
  CHECK(out[0].params[0].first == "client_max_window_bits");
  CHECK(!out[0].params[0].second);
  CHECK(out[1].name == "x-foo");
  REQUIRE(out[1].params.size() == 1);
  CHECK(out[1].params[0].first == "a");
  CHECK(out[1].params[0].second == "b");

  REQUIRE(!tether::parse_extensions("  a ;b = 1 ;\tc=\"d\\e\" ,\tf  ", out));
  REQUIRE(out.size() == 2);
  CHECK(out[0].params.size() == 2);
  CHECK(out[0].params[0].second == "1");
  CHECK(out[0].params[1].second == "de");
  CHECK(out[1].name == "f");
  CHECK(out[1].params.empty());

  const auto before = out;
  for (auto bad : {"", " ", ";", "a;;", "a; b=\"c", "a, , b", "a,", ",a", "a; =b", "a; b=", "a; b=\"\"",
                   "a; b=\"c d\"", "a; b=\"c,d\"", "a b", "a; b c", "a; b=c=d", "\"a\"", "a; b=\"c\"d", "a; b=\"c\\",
                   "a;\r\nb", "a@b"}) {
    CAPTURE(bad);
    CHECK(tether::parse_extensions(bad, out) == error::handshake_bad_extension);
  }
  CHECK(out == before); // untouched on error

  // format_extension is the inverse.
  for (auto text : {"permessage-deflate; client_max_window_bits; server_max_window_bits=10", "x", "a; b=c"}) {
    REQUIRE(!tether::parse_extensions(text, out));
    REQUIRE(out.size() == 1);
    CHECK(tether::format_extension(out[0]) == text);
  }
  // A value that is not a token is written quoted.
  CHECK(tether::format_extension({"x", {{"p", "a b\"c"}}}) == "x; p=\"a b\\\"c\"");
}

TEST_CASE("server role round trip") {
  const auto req = make_request();
  const auto key = tether::generate_key();
  const auto text = tether::build_request(req, key);

  tether::request_parser server;
  const auto wire = text + frame_bytes;
  const auto r = server.feed(wire);
  REQUIRE(r.done);
  REQUIRE(!r.ec);
  CHECK(r.consumed == text.size());
  CHECK(server.feed("more").consumed == 0);

  auto sreq = server.request();
  REQUIRE(!tether::validate_request(sreq));
  CHECK(sreq.method == "GET");
  CHECK(sreq.target == "/chat?room=1");
  CHECK(sreq.version == "HTTP/1.1");
  CHECK(sreq.key == key);
  CHECK(sreq.subprotocols == req.subprotocols);
  CHECK(sreq.extensions == req.extensions);
  CHECK(sreq.headers.find("authorization") == "Basic dXNlcjpwYXNz");

  // Byte by byte and at every split point gives the same.
  for (std::size_t i = 0; i <= wire.size(); ++i) {
    CAPTURE(i);
    tether::request_parser p;
    const std::string_view w = wire;
    auto a = p.feed(w.substr(0, i));
    std::size_t consumed = a.consumed;
    if (!a.done) {
      CHECK(a.consumed == i);
      auto b = p.feed(w.substr(i));
      consumed += b.consumed;
      CHECK(b.done);
    }
    CHECK(consumed == text.size());
    CHECK(p.request().target == sreq.target);
  }

  // The server's answer is accepted by the client.
  const auto answer = tether::build_accept_response(sreq, "superchat", {sreq.extensions[1]});
  auto out = parse_whole(answer + frame_bytes);
  REQUIRE(out.done);
  CHECK(out.consumed == answer.size());
  CHECK(!tether::validate_response(out.resp, key, req));
  CHECK(out.resp.subprotocol == "superchat");
  REQUIRE(out.resp.extensions.size() == 1);
  CHECK(out.resp.extensions[0].name == "x-foo");

  // And with the plain form: no protocol, no extensions.
  auto plain = parse_whole(tether::build_accept_response(sreq));
  CHECK(!tether::validate_response(plain.resp, key, req));
  CHECK(plain.resp.headers.find("Sec-WebSocket-Protocol") == std::nullopt);
}

TEST_CASE("validate_request failures") {
  const auto good = tether::build_request(make_request(), sample_key);
  const auto check = [](std::string text) {
    tether::request_parser p;
    const auto r = p.feed(text);
    if (r.ec)
      return r.ec;
    REQUIRE(r.done);
    auto req = p.request();
    return tether::validate_request(req);
  };
  const auto replace = [&](std::string_view from, std::string_view to) {
    auto s = good;
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    s.replace(at, from.size(), to);
    return s;
  };
  CHECK(!check(good));
  CHECK(check(replace("GET ", "POST ")) == error::handshake_bad_method);
  CHECK(check(replace("HTTP/1.1", "HTTP/1.0")) == error::handshake_bad_method);
  CHECK(check(replace("GET /chat?room=1 HTTP/1.1", "GET /chat")) == error::handshake_malformed);
  CHECK(check(replace("Host: example.com:8080\r\n", "")) == error::handshake_malformed);
  CHECK(check(replace("Upgrade: websocket", "Upgrade: h2c")) == error::handshake_bad_upgrade);
  CHECK(check(replace("Connection: Upgrade", "Connection: close")) == error::handshake_bad_connection);
  CHECK(check(replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8")) == error::handshake_bad_version);
  CHECK(check(replace("Sec-WebSocket-Version: 13\r\n", "")) == error::handshake_bad_version);
  CHECK(check(replace(sample_key, "dGhlIHNhbXBsZSBub25jZQ")) == error::handshake_bad_key);
  CHECK(check(replace(sample_key, "dGhlIHNhbXBsZSBub25jZSE=")) == error::handshake_bad_key); // 17 bytes
  CHECK(check(replace(sample_key, "not base64 at all!!!!!==")) == error::handshake_bad_key);
  CHECK(check(replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "")) == error::handshake_bad_key);
  CHECK(check(replace("Sec-WebSocket-Extensions: permessage-deflate", "Sec-WebSocket-Extensions: ;")) ==
        error::handshake_bad_extension);
  CHECK(check(replace("chat, superchat", "chat, super chat")) == error::handshake_bad_subprotocol);

  // Subprotocols are split on commas and trimmed, over several lines.
  tether::request_parser p;
  REQUIRE(p.feed(replace("Sec-WebSocket-Protocol: chat, superchat\r\n",
                         "Sec-WebSocket-Protocol:  a ,b,, \r\nSec-WebSocket-Protocol: c\r\n"))
              .done);
  auto req = p.request();
  REQUIRE(!tether::validate_request(req));
  CHECK(req.subprotocols == std::vector<std::string>{"a", "b", "c"});

  tether::request_parser small({64, 0});
  CHECK(small.feed(good).ec == error::handshake_too_large);
}

TEST_CASE("build_reject_response is read back by response_parser") {
  tether::http_headers headers;
  headers.add("Retry-After", "30");
  headers.add("Content-Length", "999"); // replaced by the real length
  const auto text = tether::build_reject_response(429, "Too Many Requests", headers, "slow down");
  CHECK(text == "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 9\r\n\r\nslow down");
  const auto out = parse_whole(text + frame_bytes);
  CHECK(out.done);
  CHECK(out.consumed == text.size());
  CHECK(out.resp.status == 429);
  CHECK(out.resp.headers.find("retry-after") == "30");
  CHECK(out.resp.body == "slow down");
}
