// How the handler reports the end of a connection: a server's clean close with
// its code and reason, our own close() leaving last_error alone, and close()
// arguments checked before anything changes.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>

#include <asio/io_context.hpp>

#include <string>
#include <vector>

#include "handler_support.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;

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

} // TEST_SUITE
