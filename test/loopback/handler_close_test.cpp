// How the handler reports the end of a connection: a server's clean close with
// its code and reason, our own close() leaving last_error alone, and close()
// arguments checked before anything changes.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>

#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "handler_support.hpp"
#include "live.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;

namespace {

awaitable<void> connect_send_close(handler& ws, std::string url, bool& done) {
  co_await ws.connect(url);
  co_await ws.send("one", json(1));
  co_await ws.close();
  done = true;
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("handler close reporting: a server's close frame is reported with its code, name and reason") {
  struct row {
    std::uint16_t code;
    std::string reason;
    std::string text;
    connection_state next;
  };
  const std::vector<row> rows{
      {4001, "bye", "server closed with 4001 (private): bye", connection_state::reconnecting},
      {1000, "done", "server closed with 1000 (normal closure): done", connection_state::failed},
      {1001, "", "server closed with 1001 (going away)", connection_state::failed},
  };
  for (const auto& r : rows) {
    CAPTURE(r.code);
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
      test_server server(io.get_executor());
      std::vector<state_change> changes;
      handler_options o = fast();
      o.on_state = [&](const state_change& c) { changes.push_back(c); };
      handler ws{io.get_executor(), o};
      co_await ws.connect(server.url());
      server.send_close(r.code, r.reason);
      co_await ws.wait_for(r.next);
      const auto& c = changes.back();
      CHECK(c.state == r.next);
      CHECK(c.error == error::server_closed);
      CHECK(c.reason == r.text);
      CHECK(ws.status().last_error == r.text);
      if (r.next == connection_state::failed)
        CHECK(c.rule == "the server ended the session");
      // The client answered the close: the server saw the echo, not a lost connection.
      co_await server.wait_closed(1);
      CHECK(server.closes().front().first == r.code);
      co_await ws.close();
    });
  }
}

TEST_CASE("handler close reporting: after our own close(), last_error is what it was before") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    handler_options o = fast();
    o.stable_after = 0ms;
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    co_await ws.close(4000, "our own");
    CHECK_FALSE(ws.status().last_error.has_value()); // nothing went wrong
    co_await ws.connect(server.url());
    server.drop();
    co_await ws.wait_for(connection_state::reconnecting);
    co_await ws.wait_for(connection_state::open);
    const auto before = ws.status().last_error;
    REQUIRE(before.has_value());
    CHECK_FALSE(before->empty());
    co_await ws.close();
    CHECK(ws.status().last_error == before);
    CHECK(ws.status().state == "closed");
  });
}

TEST_CASE("handler close(): arguments are checked first, with the stream's codes, and nothing changes") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    handler ws{io.get_executor(), fast()};
    co_await ws.connect(server.url());
    stream raw{io.get_executor()};
    co_await raw.connect(server.url());
    struct row {
      unsigned code;
      std::string reason;
      error want;
    };
    const std::string long_reason(124, 'x');
    const std::vector<row> rows{
        {1, "", error::invalid_close_code},     {999, "", error::invalid_close_code},
        {1004, "", error::invalid_close_code},  {1005, "", error::invalid_close_code},
        {1006, "", error::invalid_close_code},  {1015, "", error::invalid_close_code},
        {1016, "", error::invalid_close_code},  {2999, "", error::invalid_close_code},
        {5000, "", error::invalid_close_code},  {65535, "", error::invalid_close_code},
        {0, "why", error::invalid_close_code},  {1000, long_reason, error::control_payload_too_big},
        {1000, "\xff", error::invalid_close_reason},
    };
    for (const auto& r : rows) {
      CAPTURE(r.code);
      CAPTURE(r.reason.size());
      std::error_code h_ec, s_ec;
      co_await ws.close(static_cast<std::uint16_t>(r.code), r.reason, h_ec);
      co_await raw.close(static_cast<std::uint16_t>(r.code), r.reason, s_ec);
      CHECK(h_ec == r.want);
      CHECK(s_ec == r.want);
      CHECK(ws.status().state == "open"); // nothing changed
    }
    co_await ws.send("still.open", json(1));
    co_await server.wait_messages(1);
    // Code 0 with no reason is a close frame without a status.
    co_await ws.close(0, "");
    CHECK(ws.status().state == "closed");
    co_await raw.close(1000, "");
    co_await server.wait_closed(2);
    const auto closes = server.closes();
    CHECK(std::count(closes.begin(), closes.end(), std::pair<std::uint16_t, std::string>{1005, ""}) == 1);
  });
}

TEST_CASE("handler: a handler destroyed just before its io_context, which never runs again") {
  // The context's shutdown runs the handler's last clean-up and releases its
  // stream there, after Asio's own services have shut down: nothing may crash
  // or outlive it (found by bench-idle-memory, which exits this way).
  const long streams_before = tether::detail::live().streams.load();
  const long handlers_before = tether::detail::live().handlers.load();
  {
    asio::io_context io;
    test_server server(io.get_executor());
    auto ws = std::make_unique<handler>(io.get_executor(), fast());
    bool open = false;
    asio::co_spawn(io, ws->connect(server.url()), [&](std::exception_ptr e) {
      CHECK_FALSE(e);
      open = true;
    });
    for (int i = 0; i < 100000 && !open; ++i)
      io.run_one_for(std::chrono::milliseconds(100));
    REQUIRE(open);
    ws.reset();
  }
  CHECK(tether::detail::live().streams.load() == streams_before);
  CHECK(tether::detail::live().handlers.load() == handlers_before);
}

TEST_CASE("handler: after close() nothing is left to keep the io_context's run() going") {
  // The server has its own context and thread, so the client's run() returns
  // only once the handler left no timer and no operation behind.
  asio::io_context server_io;
  auto guard = asio::make_work_guard(server_io);
  std::thread server_thread([&] { server_io.run(); });
  std::unique_ptr<test_server> server;
  std::promise<std::string> url;
  asio::post(server_io, [&] {
    server = std::make_unique<test_server>(server_io.get_executor());
    url.set_value(server->url());
  });
  asio::io_context io;
  handler_options o = fast();
  o.send_timeout = 20s; // a timer left armed would hold run() this long
  handler ws{io.get_executor(), o};
  bool done = false;
  asio::co_spawn(io, connect_send_close(ws, url.get_future().get(), done), [](std::exception_ptr e) { CHECK_FALSE(e); });
  const auto started = clock_type::now();
  io.run_for(40s);
  CHECK(done);
  CHECK(since(started) < 10s);
  asio::post(server_io, [&] { server.reset(); });
  guard.reset();
  server_thread.join();
}

} // TEST_SUITE
