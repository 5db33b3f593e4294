// handler::ping (the REPL's ping command), handler::last_response (the REPL's
// -v) and the handshake lines the stream logs at debug level, secrets redacted.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>

#include <asio/error.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "handler_support.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;

TEST_SUITE("loopback") {

TEST_CASE("handler ping: the round-trip time of a pong with our payload, in the status too") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    handler_options o = fast();
    o.ping_interval = 0ms; // only our pings
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    CHECK(ws.status().rtt_ms == std::nullopt);
    const auto start = clock_type::now();
    const auto rtt = co_await ws.ping("hello");
    CHECK(rtt > 0ns);
    CHECK(rtt <= clock_type::now() - start);
    CHECK(ws.status().rtt_ms.has_value());
    CHECK(ws.status().last_pong.has_value());
    co_await ws.close();
  });
}

TEST_CASE("handler ping: refused while not open, after close, with a payload over 125 bytes") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    handler ws{io.get_executor(), fast()};
    std::error_code ec;
    co_await ws.ping("early", ec);
    CHECK(ec == asio::error::not_connected);
    co_await ws.connect(server.url());
    co_await ws.ping(std::string(126, 'x'), ec);
    CHECK(ec == error::control_payload_too_big);
    CHECK(ws.status().connected); // a bad argument does not end the connection
    co_await ws.ping(std::string(125, 'x'), ec);
    CHECK(!ec);
    co_await ws.close();
    co_await ws.ping("late", ec);
    CHECK(ec == error::handler_closed);
  });
}

TEST_CASE("handler ping: a server that never answers fails it after pong_timeout") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_answer_pings(false);
    handler_options o = fast();
    o.ping_interval = 0ms;
    o.pong_timeout = 300ms;
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    const auto start = clock_type::now();
    std::error_code ec;
    co_await ws.ping("anyone?", ec);
    const auto took = since(start);
    CHECK(ec == error::pong_timeout);
    CHECK(took >= 300ms);
    CHECK(took <= 1900ms); // 3T + 1 s
    co_await ws.close();
  });
}

TEST_CASE("stream ping: the server's close fails a ping in flight at once, not after the timeout") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_answer_pings(false);
    stream ws(io.get_executor());
    co_await ws.connect(server.url());
    std::error_code ec;
    bool done = false;
    auto ping = [](stream& s, std::error_code& e, bool& d) -> awaitable<void> {
      co_await s.ping("anyone?", std::chrono::seconds(10), e);
      d = true;
    };
    const auto start = clock_type::now();
    asio::co_spawn(io, ping(ws, ec, done), asio::detached);
    co_await server.wait_accepted(1);
    // A close frame the server does not track: it takes our echo for a
    // client-initiated close it never answers, and keeps TCP open.
    server.set_answer_close(false);
    server.send_raw(encode_frame(opcode::close, std::string("\x0f\xa0", 2) + "bye"));
    co_await eventually([&] { return done; }, 15s);
    CHECK(ec == error::server_closed);
    CHECK(since(start) < 5s); // far below the 10 s timeout
    std::error_code ignored;
    co_await ws.close(ignored);
  });
}

TEST_CASE("handler last_response: the 101's headers once open, a refusal's status and body") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    handler_options o = fast();
    o.max_retries = 0;
    handler ws{io.get_executor(), o};
    CHECK(ws.last_response().status == 0);
    co_await ws.connect(server.url());
    auto r = ws.last_response();
    CHECK(r.status == 101);
    CHECK(r.headers.find("Upgrade") == std::optional<std::string_view>("websocket"));
    co_await ws.close();

    server.set_reject(503, {}, "busy");
    std::error_code ec;
    co_await ws.connect(server.url(), ec);
    CHECK(ec == error::handshake_rejected);
    r = ws.last_response();
    CHECK(r.status == 503);
    CHECK(r.body == "busy");
  });
}

TEST_CASE("stream log: the handshake line by line at debug level, secrets redacted") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    std::vector<std::string> lines;
    stream_options so;
    so.headers.add("Authorization", "Bearer s3cret-token");
    so.headers.add("Cookie", "session=also-s3cret");
    so.headers.add("X-Trace", "visible-value");
    so.headers.add("X-Api-Key", "s3cret-key");
    so.log = [&](log_level level, std::string_view text) {
      if (level == log_level::debug)
        lines.emplace_back(text);
    };
    stream ws(io.get_executor(), so);
    co_await ws.connect(server.url("/chat?room=1"));
    co_await ws.close();
    REQUIRE(!lines.empty());
    CHECK(lines.front() == "> GET /chat?room=1 HTTP/1.1");
    auto has = [&](std::string_view l) { return std::find(lines.begin(), lines.end(), l) != lines.end(); };
    CHECK(has("> Authorization: [redacted]"));
    CHECK(has("> Cookie: [redacted]"));
    CHECK(has("> X-Trace: visible-value"));
    CHECK(has("> X-Api-Key: [redacted]"));
    CHECK(std::any_of(lines.begin(), lines.end(),
                      [](const std::string& l) { return l.rfind("> Sec-WebSocket-Key: ", 0) == 0 && l.size() > 30; }));
    CHECK(has("> Upgrade: websocket"));
    CHECK(has("< HTTP/1.1 101 Switching Protocols"));
    CHECK(has("< Upgrade: websocket"));
    for (const auto& l : lines)
      CHECK_MESSAGE(l.find("s3cret") == std::string::npos, l);
  });
}

} // TEST_SUITE
