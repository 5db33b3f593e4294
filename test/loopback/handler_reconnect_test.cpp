// The handler's reconnect limits against servers that accept and then drop:
// short connections count as failed attempts, the count resets only after
// stable_after, a throwing on_open step is a failed attempt.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <stdexcept>
#include <vector>

#include "handler_support.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;

namespace {

// Drops each of the first `n` connections `after` its handshake request arrived;
// `before_drop` runs just before each drop.
template <class F>
awaitable<void> drop_each(test_server& server, std::size_t n, std::chrono::milliseconds after, F before_drop) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  for (std::size_t i = 1; i <= n; ++i) {
    co_await server.wait_request(i);
    t.expires_after(after);
    co_await t.async_wait(asio::use_awaitable);
    before_drop(i);
    server.drop();
  }
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
  std::string p{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  p += reason;
  return p;
}

struct recorded {
  std::vector<state_change> changes;
  std::vector<unsigned> attempts_at_open;
  std::vector<std::uint64_t> retries_at_open;

  std::vector<state_change> of(connection_state s) const {
    std::vector<state_change> out;
    for (const auto& c : changes)
      if (c.state == s)
        out.push_back(c);
    return out;
  }
};

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("handler reconnect: a server that accepts and resets after 0.5 s; max_retries 3 fails after 4 connections") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    recorded rec;
    handler_options o = fast();
    o.max_retries = 3;
    o.backoff = backoff::linear;
    o.backoff_base = 50ms;
    o.jitter = 0; // exact delays: base × attempt
    handler* self = nullptr;
    o.on_state = [&](const state_change& c) {
      rec.changes.push_back(c);
      if (c.state == connection_state::open) {
        rec.attempts_at_open.push_back(c.attempt);
        rec.retries_at_open.push_back(self->status().retries);
      }
    };
    handler ws{io.get_executor(), o};
    self = &ws;
    std::vector<std::uint64_t> retries_before_drop;
    asio::co_spawn(io, drop_each(server, 5, 500ms, [&](std::size_t) { retries_before_drop.push_back(ws.status().retries); }),
                   asio::detached);
    co_await ws.connect(server.url());
    co_await ws.wait_for(connection_state::failed);
    CHECK(server.accepted() == 4);
    const auto rec_delays = rec.of(connection_state::reconnecting);
    std::vector<std::pair<unsigned, long>> seen;
    for (const auto& c : rec_delays)
      if (c.delay.count() > 0)
        seen.emplace_back(c.attempt, static_cast<long>(c.delay.count()));
    const std::vector<std::pair<unsigned, long>> want{{1, 50}, {2, 100}, {3, 150}};
    CHECK(seen == want);
    // While a connection is younger than stable_after its count is kept.
    CHECK(rec.attempts_at_open == std::vector<unsigned>{0, 1, 2, 3});
    CHECK(rec.retries_at_open == std::vector<std::uint64_t>{0, 1, 2, 3});
    CHECK(retries_before_drop == std::vector<std::uint64_t>{0, 1, 2, 3});
    const auto failed = rec.of(connection_state::failed);
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].attempt == 4);
    CHECK(failed[0].rule == "max_retries reached");
    CHECK(failed[0].error == error::connection_lost);
    CHECK(ws.status().retries == 4);
    CHECK(ws.status().state == "failed");
  });
}

TEST_CASE("handler reconnect: a server that closes with 1011 right after the handshake; max_retries 3") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_after_handshake(encode_frame(opcode::close, close_payload(1011, "overloaded")));
    recorded rec;
    handler_options o = fast();
    o.max_retries = 3;
    o.backoff = backoff::exponential;
    o.backoff_base = 50ms;
    o.jitter = 0; // exact delays: base × 2^(attempt−1)
    o.on_state = [&](const state_change& c) { rec.changes.push_back(c); };
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url()); // the first connection opened, then closed at once
    co_await ws.wait_for(connection_state::failed);
    CHECK(server.accepted() == 4);
    std::vector<std::pair<unsigned, long>> seen;
    for (const auto& c : rec.of(connection_state::reconnecting)) {
      if (c.delay.count() == 0)
        continue;
      seen.emplace_back(c.attempt, static_cast<long>(c.delay.count()));
      CHECK(c.error == error::server_closed);
      CHECK(c.reason == "server closed with 1011 (internal error): overloaded");
    }
    const std::vector<std::pair<unsigned, long>> want{{1, 50}, {2, 100}, {3, 200}};
    CHECK(seen == want);
    const auto failed = rec.of(connection_state::failed);
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].attempt == 4);
    CHECK(failed[0].reason == "server closed with 1011 (internal error): overloaded");
    CHECK(ws.status().last_error == "server closed with 1011 (internal error): overloaded");
    // The client finished each close handshake: the server saw its echo, not a drop.
    co_await server.wait_closed(4);
    for (const auto& [code, reason] : server.closes())
      CHECK(code == 1011);
  });
}

TEST_CASE("handler reconnect: the count resets only once a connection lasted stable_after") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    recorded rec;
    handler_options o = fast();
    o.max_retries = 1; // two short connections in a row would fail the handler
    o.backoff = backoff::linear;
    o.backoff_base = 50ms;
    o.jitter = 0;
    o.stable_after = 200ms; // each connection lasts 500 ms: long enough
    o.on_state = [&](const state_change& c) {
      rec.changes.push_back(c);
      if (c.state == connection_state::open)
        rec.attempts_at_open.push_back(c.attempt);
    };
    handler ws{io.get_executor(), o};
    std::vector<std::uint64_t> retries_before_drop;
    bool done = false;
    asio::co_spawn(io, drop_each(server, 4, 500ms, [&](std::size_t) { retries_before_drop.push_back(ws.status().retries); }),
                   [&](std::exception_ptr) { done = true; });
    co_await ws.connect(server.url());
    const bool dropped_four = co_await eventually([&] { return done; }, 10s);
    CHECK(dropped_four);
    co_await server.wait_request(5);
    co_await ws.wait_for(connection_state::open);
    CHECK(rec.of(connection_state::failed).empty());
    for (const auto& c : rec.of(connection_state::reconnecting))
      if (c.delay.count() > 0) {
        CHECK(c.attempt == 1);
        CHECK(c.delay == 50ms);
      }
    CHECK(rec.attempts_at_open == std::vector<unsigned>{0, 1, 1, 1, 1});
    // Each connection had lasted stable_after when it was dropped: the count was 0.
    CHECK(retries_before_drop == std::vector<std::uint64_t>{0, 0, 0, 0});
    co_await ws.close();
  });
}

TEST_CASE("handler reconnect: a connection shorter than stable_after is a failure even with a long stable_after") {
  // The same drops as above with stable_after longer than each connection: the
  // handler gives up after max_retries + 1 connections.
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    handler_options o = fast();
    o.max_retries = 1;
    o.jitter = 0;
    o.stable_after = 2s;
    handler ws{io.get_executor(), o};
    asio::co_spawn(io, drop_each(server, 3, 300ms, [](std::size_t) {}), asio::detached);
    co_await ws.connect(server.url());
    co_await ws.wait_for(connection_state::failed);
    CHECK(server.accepted() == 2);
  });
}

TEST_CASE("handler reconnect: a throwing on_open step ends the connection and counts as a failed attempt") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    std::vector<std::pair<std::error_code, std::string>> errors;
    handler_options o = fast();
    o.max_retries = 2;
    o.jitter = 0;
    o.on_error = [&](std::error_code ec, std::string_view what) { errors.emplace_back(ec, what); };
    handler ws{io.get_executor(), o};
    int steps = 0;
    ws.add_on_open([&](connection_context&) -> awaitable<void> {
      ++steps;
      throw std::runtime_error("authentication refused");
      co_return;
    });
    co_await ws.connect(server.url());
    std::error_code send_ec;
    co_await ws.send("after.auth", json(1), send_ec); // queued: on_open never succeeds
    co_await ws.wait_for(connection_state::failed);
    CHECK(server.accepted() == 3);
    CHECK(steps == 3);
    CHECK(send_ec == error::callback_failed);
    CHECK(server.messages().empty()); // nothing flowed on a connection whose step failed
    REQUIRE(errors.size() == 3);
    for (const auto& [ec, what] : errors) {
      CHECK(ec == error::callback_failed);
      CHECK(what == "on_open step threw: authentication refused");
    }
    CHECK(ws.status().last_error == "on_open step threw: authentication refused");
  });
}

} // TEST_SUITE
