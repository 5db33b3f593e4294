// Self-test of the loopback test server, driven by a minimal client written
// here from the sans-IO pieces (build_request, response_parser,
// validate_response, protocol in client role) so that it depends on nothing
// the server is meant to test.
#include "test_server.hpp"

#include "asio_compat.hpp"
#include "run.hpp"

#include <tether/error.hpp>
#include <tether/handshake.hpp>
#include <tether/protocol.hpp>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstdlib>
#include <optional>
#include <string>
#include <variant>

namespace {

using namespace std::chrono_literals;
using namespace tether::detail::awaitable_operators;
using tether::detail::use_nothrow;
using tether::event;
using tether::opcode;
using tether::test::handshake_mode;
using tether::test::server_options;
using tether::test::test_server;
using tcp = asio::ip::tcp;

constexpr auto short_wait = 200ms; // for "nothing happens" checks

/// One thing the client received: a whole message or a control event.
struct received {
  event::kind what = event::kind::message_end;
  opcode type = opcode::text;
  std::string data;
  std::uint16_t code = 0;
};

struct raw_client {
  explicit raw_client(asio::any_io_executor ex, asio::ssl::context* tls_ctx = nullptr) : plain(ex), ctx(tls_ctx) {}

  tcp::socket& socket() { return tls ? tls->next_layer() : plain; }

  asio::awaitable<std::error_code> connect(std::uint16_t port) {
    const tcp::endpoint ep(asio::ip::address_v4::loopback(), port);
    if (ctx) {
      tls.emplace(plain.get_executor(), *ctx);
      auto [ec] = co_await tls->next_layer().async_connect(ep, use_nothrow);
      if (ec)
        co_return ec;
      tls->set_verify_mode(asio::ssl::verify_peer);
      tls->set_verify_callback(asio::ssl::host_name_verification("localhost"));
      auto [hec] = co_await tls->async_handshake(asio::ssl::stream_base::client, use_nothrow);
      co_return hec;
    }
    auto [ec] = co_await plain.async_connect(ep, use_nothrow);
    co_return ec;
  }

  asio::awaitable<std::tuple<std::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
    if (tls)
      return tls->async_read_some(b, use_nothrow);
    return plain.async_read_some(b, use_nothrow);
  }

  asio::awaitable<void> write(std::string_view bytes) {
    if (tls)
      co_await asio::async_write(*tls, asio::buffer(bytes), asio::use_awaitable);
    else
      co_await asio::async_write(plain, asio::buffer(bytes), asio::use_awaitable);
  }

  asio::awaitable<void> send_request() {
    const auto bytes = tether::build_request(req, key);
    co_await write(bytes);
  }

  /// Reads the handshake response; leaves bytes after it in the protocol core.
  /// Returns validate_response's verdict (or the parser's or socket's error).
  asio::awaitable<std::error_code> read_response() {
    for (;;) {
      auto [ec, n] = co_await read_some(asio::buffer(buf));
      tether::response_parser::result r;
      if (ec == asio::error::operation_aborted)
        co_return ec; // cancelled (a timeout race): the parser keeps its state
      if (ec) {
        r = parser.finish();
        if (!r.done)
          co_return r.ec ? r.ec : ec;
      } else {
        ++response_reads;
        const std::string_view in(buf.data(), n);
        r = parser.feed(in);
        if (r.ec)
          co_return r.ec;
        if (r.done) {
          tail.assign(in.substr(r.consumed));
          proto.feed(tail);
        }
      }
      if (r.done)
        co_return tether::validate_response(parser.response(), key, req);
    }
  }

  asio::awaitable<std::error_code> handshake() {
    co_await send_request();
    {
      auto result = co_await read_response();
      co_return result;
    }
  }

  /// connect(), throwing std::system_error on failure.
  asio::awaitable<void> open_tcp(std::uint16_t port) {
    if (auto ec = co_await connect(port))
      throw std::system_error(ec, "raw_client: connect");
  }

  /// connect() and handshake(), throwing std::system_error on failure.
  asio::awaitable<void> open(std::uint16_t port) {
    co_await open_tcp(port);
    if (auto ec = co_await handshake())
      throw std::system_error(ec, "raw_client: handshake");
  }

  asio::awaitable<void> send_close(std::uint16_t code, std::string reason) {
    REQUIRE_FALSE(proto.send_close(code, reason));
    co_await flush();
  }

  asio::awaitable<void> send_ping(std::string payload) {
    REQUIRE_FALSE(proto.send_ping(payload));
    co_await flush();
  }

  asio::awaitable<void> flush() {
    while (!proto.pending_output().empty()) {
      const std::string out(proto.pending_output());
      proto.consume_output(out.size());
      co_await write(out);
    }
  }

  asio::awaitable<void> send(opcode type, std::string payload) {
    REQUIRE_FALSE(proto.send_message(type, payload));
    co_await flush();
  }

  /// The next whole message or control event. Throws std::system_error when the
  /// connection ends first.
  asio::awaitable<received> receive() {
    received r;
    for (;;) {
      while (auto ev = proto.next_event()) {
        switch (ev->what) {
        case event::kind::message_begin:
          r.type = ev->type;
          break;
        case event::kind::data:
          r.data.append(ev->data);
          break;
        default:
          r.what = ev->what;
          if (ev->what != event::kind::message_end) {
            r.data.assign(ev->data);
            r.code = ev->code;
          }
          co_await flush(); // auto-pong, close echo
          co_return r;
        }
      }
      auto [ec, n] = co_await read_some(asio::buffer(buf));
      if (ec)
        throw std::system_error(ec, "raw_client::receive");
      proto.feed({buf.data(), n});
    }
  }

  /// Reads and discards until the connection ends; returns how it ended.
  asio::awaitable<std::error_code> read_until_end() {
    for (;;) {
      auto [ec, n] = co_await read_some(asio::buffer(buf));
      if (ec)
        co_return ec;
    }
  }

  tcp::socket plain;
  asio::ssl::context* ctx;
  std::optional<asio::ssl::stream<tcp::socket>> tls;
  tether::client_request req{"127.0.0.1", "/", {}, {}, {}, {}};
  std::string key = tether::generate_key();
  tether::response_parser parser;
  tether::protocol proto;
  std::array<char, 8192> buf{};
  int response_reads = 0; // reads it took to complete the response
  std::string tail;       // bytes after the response in the read that completed it
};

/// Races `op` against a short timer: true if the timer wins.
template <class T> asio::awaitable<bool> times_out(asio::awaitable<T> op, std::chrono::milliseconds bound = short_wait) {
  auto this_ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(this_ex, bound);
  auto result = co_await (std::move(op) || timer.async_wait(asio::use_awaitable));
  co_return result.index() == 1;
}

/// Reads until the connection ends, then closes the client's socket as a real
/// client would (the server waits for that FIN, bounded, before it lets go).
/// True if it ended by EOF or reset rather than an unexpected error.
asio::awaitable<bool> ends(raw_client& c) {
  const auto ec = co_await c.read_until_end();
  c.socket().close();
  if (ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::ssl::error::stream_truncated)
    co_return true;
  MESSAGE("connection ended with " << ec.message());
  co_return false;
}

using close_entry = std::pair<std::uint16_t, std::string>;

} // namespace


// Assertions never contain co_await (doctest's macros and g++ 12's coroutine
// temporaries do not mix): results go to named variables first.

TEST_CASE("accepted handshake, echo of text and binary, client-initiated close") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());
  CHECK(srv.url("/chat") == "ws://127.0.0.1:" + std::to_string(srv.port()) + "/chat");

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    c.req.target = "/chat?x=1";
    c.req.headers.add("Authorization", "Bearer t");
    co_await c.open_tcp(srv.port());
    co_await srv.wait_accepted(1);
    const auto ec = co_await c.handshake();
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK(c.parser.response().status == 101);
    CHECK(srv.requests() == 1);
    CHECK(srv.connections() == 1);
    CHECK(srv.last_request().target == "/chat?x=1");
    CHECK(srv.last_request().headers.find("authorization") == "Bearer t");

    co_await c.send(opcode::text, "hello");
    auto r = co_await c.receive();
    CHECK(r.what == event::kind::message_end);
    CHECK(r.type == opcode::text);
    CHECK(r.data == "hello");

    const std::string bin("\0\1\2\xff", 4);
    co_await c.send(opcode::binary, bin);
    r = co_await c.receive();
    CHECK(r.type == opcode::binary);
    CHECK(r.data == bin);

    co_await srv.wait_messages(2);
    const auto msgs = srv.messages();
    REQUIRE(msgs.size() == 2);
    CHECK(msgs[0].first == opcode::text);
    CHECK(msgs[0].second == "hello");
    CHECK(msgs[1].first == opcode::binary);
    CHECK(msgs[1].second == bin);

    co_await c.send_close(1000, "bye");
    r = co_await c.receive();
    CHECK(r.what == event::kind::close);
    CHECK(r.code == 1000);
    // RFC 6455 §7.1.1: the server closes TCP first.
    const bool ended = co_await ends(c);
    CHECK(ended);
    co_await srv.wait_closed(1);
    CHECK(srv.connections() == 0);
    const auto closes = srv.closes();
    REQUIRE(closes.size() == 1);
    CHECK(closes[0] == close_entry{1000, "bye"});
  });
}

TEST_CASE("subprotocol: the first client-offered one the server supports") {
  asio::io_context ctx;
  server_options opts;
  opts.subprotocols = {"b", "c"};
  test_server srv(ctx.get_executor(), opts);

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    c.req.subprotocols = {"a", "c", "b"};
    co_await c.open(srv.port());
    CHECK(c.parser.response().subprotocol == "c");
    CHECK(srv.last_request().headers.find("Sec-WebSocket-Protocol") == "a, c, b");

    raw_client d(ctx.get_executor());
    d.req.subprotocols = {"x"};
    co_await d.open(srv.port());
    CHECK(d.parser.response().subprotocol.empty());
    CHECK_FALSE(d.parser.response().headers.find("Sec-WebSocket-Protocol"));
  });
}

TEST_CASE("reject: status, headers and body reach the client, then TCP closes") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());
  tether::http_headers h;
  h.add("Retry-After", "7");
  srv.set_reject(503, h, "busy, come back later");

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    co_await c.open_tcp(srv.port());
    const auto ec = co_await c.handshake();
    CHECK(ec == tether::error::handshake_rejected);
    const auto& resp = c.parser.response();
    CHECK(resp.status == 503);
    CHECK(resp.reason == "Service Unavailable");
    CHECK(resp.headers.find("Retry-After") == "7");
    CHECK(resp.body == "busy, come back later");
    const bool ended = co_await ends(c);
    CHECK(ended);
    co_await srv.wait_closed(1);
    CHECK(srv.requests() == 1);
    CHECK(srv.closes().empty()); // never reached the WebSocket phase
  });
}

TEST_CASE("accept mode answers an invalid upgrade request with 400") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    co_await c.open_tcp(srv.port());
    co_await c.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const auto ec = co_await c.read_response();
    CHECK(ec == tether::error::handshake_rejected);
    CHECK(c.parser.response().status == 400);
    const bool ended = co_await ends(c);
    CHECK(ended);
    co_await srv.wait_closed(1);
  });
}

TEST_CASE("silent: the client's handshake times out; send_raw can answer late in paced pieces") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());
  srv.set_handshake(handshake_mode::silent);

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    co_await c.open_tcp(srv.port());
    co_await c.send_request();
    const bool late = co_await times_out(c.read_response());
    CHECK(late);
    co_await srv.wait_request(1);
    CHECK(srv.connections() == 1);

    // Answer by hand, three bytes at a time.
    auto req = srv.last_request();
    REQUIRE_FALSE(tether::validate_request(req));
    srv.send_raw(tether::build_accept_response(req), 3, 1ms);
    const auto ec = co_await c.read_response();
    CHECK_MESSAGE(!ec, ec.message());
    CHECK(c.response_reads > 1);
  });
}

TEST_CASE("after_handshake bytes arrive in the same read as the 101") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());
  const auto frame = tether::test::encode_frame(opcode::text, "early");
  srv.set_after_handshake(frame);

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    co_await c.open(srv.port());
    CHECK(c.response_reads == 1);
    CHECK(c.tail == frame); // the parser left them for the protocol core
    const auto r = co_await c.receive();
    CHECK(r.type == opcode::text);
    CHECK(r.data == "early");
  });
}

TEST_CASE("raw handshake: a 101 with a wrong accept key") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());
  srv.set_handshake_raw("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n");

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    co_await c.open_tcp(srv.port());
    const auto ec = co_await c.handshake();
    CHECK(ec == tether::error::handshake_bad_accept);
    c.socket().close();
    co_await srv.wait_closed(1);
    const auto closes = srv.closes();
    REQUIRE(closes.size() == 1);
    CHECK(closes[0].first == 1006);
  });
}

TEST_CASE("drop: the client reads EOF or a reset; the server records 1006") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    co_await c.open(srv.port());
    srv.drop();
    const bool ended = co_await ends(c);
    CHECK(ended);
    co_await srv.wait_closed(1);
    const auto closes = srv.closes();
    REQUIRE(closes.size() == 1);
    CHECK(closes[0] == close_entry{1006, ""});
  });
}

TEST_CASE("server-initiated text, binary, ping and close") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    co_await c.open(srv.port());
    srv.send_text("t");
    srv.send_binary("b");
    srv.send_ping("p");
    auto r = co_await c.receive();
    CHECK(r.type == opcode::text);
    CHECK(r.data == "t");
    r = co_await c.receive();
    CHECK(r.type == opcode::binary);
    CHECK(r.data == "b");
    r = co_await c.receive();
    CHECK(r.what == event::kind::ping);
    CHECK(r.data == "p");

    CHECK_THROWS_AS(srv.send_ping(std::string(126, 'x')), std::system_error); // RFC 6455 §5.5
    srv.send_close(4001, "going");
    r = co_await c.receive();
    CHECK(r.what == event::kind::close);
    CHECK(r.code == 4001);
    CHECK(r.data == "going");
    const bool ended = co_await ends(c);
    CHECK(ended);
    co_await srv.wait_closed(1);
    const auto closes = srv.closes();
    REQUIRE(closes.size() == 1);
    CHECK(closes[0].first == 4001); // the client core's echo
    CHECK(srv.messages().empty());  // the pong is not a data message
  });
}

TEST_CASE("set_answer_pings(false) and set_answer_close(false)") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());
  srv.set_answer_pings(false);
  srv.set_answer_close(false);

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    co_await c.open(srv.port());

    co_await c.send_ping("one");
    const bool no_pong = co_await times_out(c.receive());
    CHECK(no_pong);
    srv.set_answer_pings(true); // applies to open connections
    co_await c.send_ping("two");
    const auto r = co_await c.receive();
    CHECK(r.what == event::kind::pong);
    CHECK(r.data == "two");

    co_await c.send_close(1001, "");
    const bool no_close = co_await times_out(c.receive());
    CHECK(no_close);
    CHECK(srv.connections() == 1);
    REQUIRE(srv.closes().size() == 1);
    CHECK(srv.closes()[0].first == 1001);
    c.socket().close();
    co_await srv.wait_closed(1);
    CHECK(srv.closes().size() == 1); // not recorded again as 1006
  });
}

TEST_CASE("stall keeps TCP open and silent until drop") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    co_await c.open(srv.port());
    srv.stall();
    co_await c.send(opcode::text, "anyone?");
    const bool silent = co_await times_out(c.receive());
    CHECK(silent);
    CHECK(srv.connections() == 1);
    CHECK(srv.messages().empty());
    srv.drop();
    const bool ended = co_await ends(c);
    CHECK(ended);
    co_await srv.wait_closed(1);
  });
}

TEST_CASE("send_raw: a frame byte by byte; set_echo(false)") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());
  srv.set_echo(false);

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    co_await c.open(srv.port());
    co_await c.send(opcode::text, "not echoed");
    co_await srv.wait_messages(1);
    srv.send_raw(tether::test::encode_frame(opcode::text, "slow"), 1, 1ms);
    const auto r = co_await c.receive();
    CHECK(r.data == "slow"); // and not "not echoed"
  });
}

TEST_CASE("stop and restart on the same port") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());
  const auto port = srv.port();

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor());
    co_await c.open(port);
    srv.stop();
    const bool ended = co_await ends(c);
    CHECK(ended);
    co_await srv.wait_closed(1);

    raw_client refused(ctx.get_executor());
    const auto ec = co_await refused.connect(port);
    CHECK(ec == asio::error::connection_refused);

    srv.restart();
    CHECK(srv.port() == port);
    raw_client d(ctx.get_executor());
    co_await d.open(port);
    co_await d.send(opcode::text, "again");
    const auto r = co_await d.receive();
    CHECK(r.data == "again");
    CHECK(srv.accepted() == 2);
  });
}

TEST_CASE("wait helpers: cancellable, and woken only when their count is reached") {
  asio::io_context ctx;
  test_server srv(ctx.get_executor());

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    bool late = co_await times_out(srv.wait_accepted(1));
    CHECK(late);
    late = co_await times_out(srv.wait_closed(1));
    CHECK(late);

    raw_client c(ctx.get_executor());
    co_await c.open_tcp(srv.port());
    co_await srv.wait_accepted(1);
    const auto ec = co_await c.handshake();
    REQUIRE_FALSE(ec);
    co_await srv.wait_request(1);
    // Each message notifies; wait_messages(3) keeps waiting through two of them.
    co_await c.send(opcode::text, "1");
    co_await c.send(opcode::text, "2");
    late = co_await times_out(srv.wait_messages(3));
    CHECK(late);
    CHECK(srv.messages().size() == 2);
    co_await c.send(opcode::text, "3");
    co_await srv.wait_messages(3);
    CHECK(srv.messages().size() == 3);
    late = co_await times_out(srv.wait_accepted(2));
    CHECK(late);
  });
}

TEST_CASE("run() reports a test that does not finish") {
  asio::io_context ctx;
  asio::steady_timer forever(ctx, std::chrono::hours(1));
  auto body = [&]() -> asio::awaitable<void> { co_await forever.async_wait(asio::use_awaitable); };
  CHECK_THROWS_AS(tether::test::run(ctx, body, 50ms), std::runtime_error);
}

TEST_CASE("under run_async, a server built inside the coroutine ends with it") {
  // run_async runs its io_context until no work is left: the server's destructor
  // (at the coroutine's end) must close the acceptor and every connection.
  const auto start = std::chrono::steady_clock::now();
  auto body = [](asio::io_context& io) -> asio::awaitable<void> {
    test_server srv(io.get_executor());
    raw_client c(io.get_executor());
    co_await c.open(srv.port());
    co_await c.send(opcode::text, "x");
    const auto r = co_await c.receive();
    CHECK(r.data == "x");
  };
  tether::test::run_async(body, std::chrono::seconds(10));
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("TLS: wss handshake, echo and close") {
  const char* dir = std::getenv("TETHER_TEST_CERTS");
  if (!dir) {
    MESSAGE("TETHER_TEST_CERTS is not set (no openssl program at configure time): skipped");
    return;
  }
  const std::string certs(dir);
  asio::io_context ctx;
  server_options opts;
  opts.cert_file = certs + "/server.pem";
  opts.key_file = certs + "/server.key";
  test_server srv(ctx.get_executor(), opts);
  CHECK(srv.url().starts_with("wss://127.0.0.1:"));

  asio::ssl::context client_tls(asio::ssl::context::tls_client);
  client_tls.load_verify_file(certs + "/ca.pem");

  tether::test::run(ctx, [&]() -> asio::awaitable<void> {
    raw_client c(ctx.get_executor(), &client_tls);
    co_await c.open(srv.port());
    co_await c.send(opcode::text, "secret");
    auto r = co_await c.receive();
    CHECK(r.data == "secret");

    co_await c.send_close(1000, "");
    r = co_await c.receive();
    CHECK(r.what == event::kind::close);
    // The server sends close_notify and FIN; the client sees the stream end.
    const bool ended = co_await ends(c);
    CHECK(ended);
    co_await srv.wait_closed(1);
    REQUIRE(srv.closes().size() == 1);
    CHECK(srv.closes()[0].first == 1000);
  });
}
