// What the handler tells its user when something goes wrong: errors with the
// URL, attempt and HTTP status; callbacks that throw; non-throwing forms; what
// cancelling each operation does. Also the stream's texts for handshakes that
// end early.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "handler_support.hpp"
#include "peer.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;
using asio::ip::tcp;

namespace {

// A port nothing listens on: bound, then closed.
std::uint16_t dead_port(asio::io_context& io) {
  tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1))
    ++n;
  return n;
}

// Accepts one connection, reads the request, writes `answer` and closes TCP.
awaitable<void> answer_and_close(tcp::acceptor& a, std::string answer) {
  auto sock = co_await a.async_accept(asio::use_awaitable);
  std::string request;
  co_await asio::async_read_until(sock, asio::dynamic_buffer(request), "\r\n\r\n", asio::use_awaitable);
  if (!answer.empty())
    co_await asio::async_write(sock, asio::buffer(answer), asio::use_awaitable);
  sock.close();
}

// A user codec's invalid text fails that send alone; the next one goes out.
awaitable<void> bad_then_good(handler& ws, std::string bad, std::string good) {
  std::error_code ec;
  co_await ws.send(std::move(bad), json("bad"), ec);
  CHECK(ec == error::invalid_utf8);
  co_await ws.send(std::move(good), json("good"), ec);
  CHECK_FALSE(ec);
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("handler connect() errors name the attempt and the URL once, never its userinfo") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    const auto port = dead_port(io);
    const std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/";
    handler_options o = fast();
    o.max_retries = 0; // fail fast
    handler ws{io.get_executor(), o};
    std::string what;
    std::error_code code;
    try {
      co_await ws.connect(url);
    } catch (const std::system_error& e) {
      what = e.what();
      code = e.code();
    }
    CHECK(code == asio::error::connection_refused);
    CHECK(what.rfind("attempt 1: connecting to " + url, 0) == 0);
    CHECK(count_of(what, url) == 1);
    CHECK(ws.status().state == "failed");

    // A rejected upgrade: the status is in the text; the retry counted.
    test_server server(io.get_executor());
    server.set_reject(502, {}, "upstream down");
    handler_options o2 = fast();
    o2.max_retries = 1;
    handler h2{io.get_executor(), o2};
    what.clear();
    try {
      co_await h2.connect("ws://user:secret@127.0.0.1:" + std::to_string(server.port()) + "/chat");
    } catch (const std::system_error& e) {
      what = e.what();
      code = e.code();
    }
    CHECK(code == error::handshake_rejected);
    const auto shown = "ws://127.0.0.1:" + std::to_string(server.port()) + "/chat";
    CHECK(what == "attempt 2: WebSocket handshake with " + shown +
                      ": HTTP 502 Bad Gateway: server rejected the WebSocket upgrade");
    CHECK(what.find("secret") == std::string::npos);
    CHECK(h2.status().last_error->find("HTTP 502 Bad Gateway") != std::string::npos);
  });
}

TEST_CASE("stream: a handshake that ends early says so, with the bytes that arrived") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    const std::string url = "ws://127.0.0.1:" + std::to_string(a.local_endpoint().port()) + "/";
    struct row {
      std::string answer;
      std::string text;
    };
    const std::vector<row> rows{
        {"", "WebSocket handshake with " + url + ": the server closed the connection after 0 bytes of response"},
        {"HTTP/1.1 10", "WebSocket handshake with " + url + ": the server closed the connection after 11 bytes of response"},
    };
    for (const auto& r : rows) {
      asio::cancellation_signal never;
      auto server_done = start(io.get_executor(), answer_and_close(a, r.answer), never);
      stream s(io.get_executor());
      std::error_code ec;
      co_await s.connect(url, ec);
      CHECK(ec == error::handshake_no_response);
      CHECK(ec.default_error_condition() == condition::handshake_failed);
      CHECK(s.last_error_context() == r.text);
      CHECK(s.last_error_message() == r.text + ": " + ec.message());
      const bool served = co_await eventually([&] { return server_done->done; });
      CHECK(served);
    }
  });
}

TEST_CASE("stream: ws:// pointed at a TLS port suggests wss://") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    // What an OpenSSL server answers to plain HTTP: a TLS alert record
    // (content type 21, version 3.3, length 2, fatal, unexpected_message).
    tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::cancellation_signal never;
    auto served = start(io.get_executor(), answer_and_close(a, std::string("\x15\x03\x03\x00\x02\x02\x0a", 7)), never);
    stream s(io.get_executor());
    std::error_code ec;
    co_await s.connect("ws://127.0.0.1:" + std::to_string(a.local_endpoint().port()) + "/", ec);
    CHECK(ec == error::handshake_malformed);
    INFO(s.last_error_message());
    CHECK(s.last_error_message().find("the server answered with TLS: try wss://") != std::string::npos);
    const bool done = co_await eventually([&] { return served->done; });
    CHECK(done);
  });
}

TEST_CASE("handler TLS: reconnecting lines carry OpenSSL's reason; an unreadable CA file fails at once") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    server_options so;
    so.cert_file = cert_dir() + "/server.pem";
    so.key_file = cert_dir() + "/server.key";
    test_server server(io.get_executor(), so);
    std::vector<state_change> changes;
    handler_options o = fast();
    o.max_retries = 1;
    o.stream.tls.ca_file = cert_dir() + "/other-ca.pem"; // not the server's CA
    o.on_state = [&](const state_change& c) { changes.push_back(c); };
    handler ws{io.get_executor(), o};
    std::error_code ec;
    co_await ws.connect(server.url(), ec);
    CHECK(ec == error::tls_failed);
    bool reconnecting_seen = false;
    for (const auto& c : changes) {
      if (c.state != connection_state::reconnecting || !c.error)
        continue;
      reconnecting_seen = true;
      CHECK(c.reason.find("certificate verify failed") != std::string::npos);
      CHECK(c.rule.find("TLS") != std::string::npos);
    }
    CHECK(reconnecting_seen);

    handler_options bad = fast();
    bad.stream.tls.ca_file = "/nonexistent/ca.pem";
    handler h2{io.get_executor(), bad};
    const auto accepted = server.accepted();
    std::string what;
    try {
      co_await h2.connect(server.url());
    } catch (const std::system_error& e) {
      what = e.what();
      ec = e.code();
    }
    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK(what.find("tls.ca_file '/nonexistent/ca.pem'") != std::string::npos);
    CHECK(server.accepted() == accepted); // no connection was tried
    CHECK(h2.status().state == "idle");

    // The stream checks the same before connecting.
    stream_options sopt;
    sopt.tls.ca_file = "/nonexistent/ca.pem";
    stream s(io.get_executor(), sopt);
    co_await s.connect("wss://127.0.0.1:" + std::to_string(server.port()) + "/", ec);
    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK(s.last_error_message() == "tls.ca_file '/nonexistent/ca.pem': " + ec.message());
    CHECK(server.accepted() == accepted);
  });
}

TEST_CASE("handler: exceptions from user callbacks are reported as callback_failed") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    std::vector<std::pair<std::error_code, std::string>> errors;
    handler_options o = fast();
    o.on_error = [&](std::error_code ec, std::string_view what) { errors.emplace_back(ec, what); };
    handler ws{io.get_executor(), o};
    ws.add_interceptor([](envelope& e, connection_context&) -> bool {
      if (e.path == "intercept.me")
        throw std::runtime_error("interceptor says no");
      return false;
    });
    ws.add_route({"plain", [](const json&, connection_context&) -> void { throw std::runtime_error("plain says no"); }});
    ws.add_route({"coro", [](const json&, connection_context&) -> awaitable<void> {
                    throw std::runtime_error("coroutine says no");
                    co_return;
                  }});
    co_await ws.connect(server.url());
    for (const char* path : {"intercept.me", "plain", "coro"})
      server.send_text(envelope_text(path, json(1)));
    const bool all = co_await eventually([&] { return errors.size() >= 3; });
    CHECK(all);
    const std::vector<std::string> texts{"interceptor threw: interceptor says no", "route handler threw: plain says no",
                                         "route handler threw: coroutine says no"};
    for (std::size_t i = 0; i < texts.size() && i < errors.size(); ++i) {
      CHECK(errors[i].first == error::callback_failed);
      CHECK(errors[i].second == texts[i]);
    }
    CHECK(ws.status().connected); // the connection is kept
    co_await ws.close();

    // A throwing on_connecting fails the attempt with callback_failed.
    handler_options o2 = fast();
    o2.max_retries = 0;
    handler h2{io.get_executor(), o2};
    h2.on_connecting([](unsigned, std::string&, http_headers&) -> awaitable<void> {
      throw std::runtime_error("no token");
      co_return;
    });
    std::string what;
    std::error_code ec;
    try {
      co_await h2.connect(server.url());
    } catch (const std::system_error& e) {
      what = e.what();
      ec = e.code();
    }
    CHECK(ec == error::callback_failed);
    CHECK(what == "attempt 1: on_connecting threw: no token: a user callback threw");
    CHECK(server.accepted() == 1); // only the first handler's connection
  });
}

TEST_CASE("handler: encoding errors arrive through the awaitable; every operation has a non-throwing form") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    handler_options o = fast();
    o.max_retries = 0;
    handler ws{io.get_executor(), o};
    envelope bad;
    bad.path = "p";
    bad.extra = json::array(); // extra fields must be an object
    auto op = ws.send(bad);      // nothing thrown at call time
    std::error_code ec;
    try {
      co_await std::move(op);
    } catch (const std::system_error& e) {
      ec = e.code();
    }
    CHECK(ec == error::invalid_envelope);
    co_await ws.send(bad, ec);
    CHECK(ec == error::invalid_envelope);

    co_await ws.connect("ws://127.0.0.1:" + std::to_string(dead_port(io)) + "/", ec);
    CHECK(ec == asio::error::connection_refused);
    co_await ws.send("p", json(1), ec);
    CHECK(ec == error::handler_closed);
    co_await ws.close(1005, "", ec);
    CHECK(ec == error::invalid_close_code);
    co_await ws.close(1000, "", ec);
    CHECK_FALSE(ec);

    asio::cancellation_signal cancel;
    auto waiting = start(io.get_executor(), ws.wait_for(connection_state::open), cancel);
    cancel.emit(asio::cancellation_type::terminal);
    const bool ended = co_await eventually([&] { return waiting->done; });
    CHECK(ended);
    CHECK(waiting->ec == asio::error::operation_aborted);
    std::error_code wec;
    co_await ws.wait_for(connection_state::closed, wec);
    CHECK_FALSE(wec);
  });
}

TEST_CASE("handler cancellation: connect() stops connecting; close() stops waiting only; a handed send completes") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_handshake(handshake_mode::silent);
    handler_options o = fast();
    o.stream.close_timeout = 500ms;
    handler ws{io.get_executor(), o};
    {
      asio::cancellation_signal cancel;
      auto connecting = start(io.get_executor(), ws.connect(server.url()), cancel);
      co_await server.wait_request(1);
      cancel.emit(asio::cancellation_type::terminal);
      const bool ended = co_await eventually([&] { return connecting->done; });
      CHECK(ended);
      CHECK(connecting->ec == asio::error::operation_aborted);
      CHECK(ws.status().state == "closed");
      co_await server.wait_closed(1); // the attempt's socket was closed
      CHECK(server.accepted() == 1);
    }
    server.set_handshake(handshake_mode::accept);
    co_await ws.connect(server.url()); // a cancelled connect() may be called again
    CHECK(ws.status().connected);

    // A send already handed to the socket is not interrupted by cancellation.
    std::uint64_t reconnects_before = 0;
    server.stall();
    {
      asio::cancellation_signal cancel;
      auto sending = start(io.get_executor(), ws.send("big", std::string(16 << 20, 'x')), cancel);
      const bool handed = co_await eventually([&] { return ws.status().queued == 0 && !sending->done; });
      CHECK(handed);
      cancel.emit(asio::cancellation_type::terminal);
      const bool early = co_await eventually([&] { return sending->done; }, 300ms);
      CHECK_FALSE(early); // still being written
      reconnects_before = ws.status().reconnects;
      server.drop();
      const bool ended = co_await eventually([&] { return sending->done; });
      CHECK(ended);
      CHECK(sending->ec);
      CHECK(sending->ec != asio::error::operation_aborted);
    }
    // The drop's reconnect, not the old connection's "open" (the send can fail
    // before the supervisor has noticed the drop).
    const bool reopened =
        co_await eventually([&] { return ws.status().reconnects > reconnects_before && ws.status().connected; });
    CHECK(reopened);

    // close() cancelled while the server ignores our close frame: the wait ends
    // at once, the handler still closes once close_timeout passes.
    server.set_answer_close(false);
    asio::cancellation_signal cancel;
    const auto started = clock_type::now();
    auto closing = start(io.get_executor(), ws.close(), cancel);
    co_await ws.wait_for(connection_state::closing);
    cancel.emit(asio::cancellation_type::terminal);
    const bool ended = co_await eventually([&] { return closing->done; }, 200ms);
    CHECK(ended);
    CHECK(closing->ec == asio::error::operation_aborted);
    co_await ws.wait_for(connection_state::closed);
    CHECK(since(started) >= o.stream.close_timeout);
    CHECK(since(started) <= 3 * o.stream.close_timeout + 1s);
  });
}

TEST_CASE("handler: text from a user's codec is still validated, queued or written by its sender; the connection survives") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    handler_options o = fast();
    o.wire_codec = std::make_shared<verbatim_codec>();
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    co_await bad_then_good(ws, "first", "second");
    co_await server.wait_messages(1);
    CHECK(server.messages().front().second == "second");
    // The same for a lone send that its sender writes itself (do_send).
    co_await on_handler(ws, [&] { return bad_then_good(ws, "third", "fourth"); });
    co_await server.wait_messages(2);
    CHECK(server.messages().back().second == "fourth");
    CHECK(ws.status().reconnects == 0);
    CHECK(server.accepted() == 1);
    co_await ws.close();
  });
}

TEST_CASE("handler add_route: an invalid pattern's error says why") {
  asio::io_context io;
  handler ws{io.get_executor(), fast()};
  std::string what;
  std::error_code ec;
  try {
    ws.add_route({"a.#.b", [](const json&, connection_context&) {}});
  } catch (const std::system_error& e) {
    what = e.what();
    ec = e.code();
  }
  CHECK(ec == error::invalid_pattern);
  CHECK(what == "route 'a.#.b': '#' must be the last segment: invalid route pattern");
}

} // TEST_SUITE
