// The handler's offline queue during a real outage of the test server: per
// message TTL, the drop_newest policy, on_drop and the queue's status fields.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>

#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "handler_support.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;

namespace {

/// The paths of the envelopes the server received, in order.
std::vector<std::string> received_paths(const test_server& server) {
  std::vector<std::string> paths;
  for (const auto& [op, text] : server.messages())
    paths.push_back(json::parse(text)["path"].get<std::string>());
  return paths;
}

/// Starts `h.send(path, n, o)` beside the test.
std::shared_ptr<op_result> send_beside(asio::io_context& io, handler& h, std::string path, send_options o,
                                       asio::cancellation_signal& cancel) {
  return start(io.get_executor(), [](handler& w, std::string p, send_options so) -> awaitable<void> {
    json d = p;
    co_await w.send(std::move(p), std::move(d), so);
  }(h, std::move(path), o), cancel);
}

/// Stops the server, waits until the handler is reconnecting, then queues a
/// send to each of `paths` beside the test and waits until all are queued.
awaitable<std::vector<std::shared_ptr<op_result>>> queue_while_down(asio::io_context& io, handler& ws,
                                                                   test_server& server, std::vector<std::string> paths,
                                                                   std::vector<asio::cancellation_signal>& cancels) {
  server.stop();
  co_await ws.wait_for(connection_state::reconnecting);
  std::vector<std::shared_ptr<op_result>> r;
  for (std::size_t i = 0; i < paths.size(); ++i)
    r.push_back(send_beside(io, ws, paths[i], {}, cancels[i]));
  const bool queued = co_await eventually([&] { return ws.status().queued == paths.size(); });
  CHECK(queued);
  co_return r;
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("offline queue: through a 2 s outage, 1 s TTLs are withdrawn and reported, 5 s TTLs arrive in order") {
  asio::io_context io;
  run(
      io,
      [&]() -> awaitable<void> {
        test_server server(io.get_executor());
        server.set_echo(false);
        handler_options o = fast();
        o.max_retries = -1;
        std::vector<dropped_message> drops;
        std::vector<std::string> dropped_payloads;
        o.on_drop = [&](const dropped_message& d) {
          drops.push_back(d);
          dropped_payloads.emplace_back(d.payload);
        };
        handler ws{io.get_executor(), o};
        co_await ws.connect(server.url());
        server.stop();
        co_await ws.wait_for(connection_state::reconnecting);
        const auto t0 = clock_type::now();
        asio::steady_timer back(io.get_executor());
        back.expires_after(2s);
        back.async_wait([&](std::error_code) { server.restart(); });

        std::vector<asio::cancellation_signal> cancels(6);
        std::vector<std::shared_ptr<op_result>> short_ttl, long_ttl;
        for (int i = 0; i < 3; ++i) {
          short_ttl.push_back(send_beside(io, ws, "short." + std::to_string(i), {.ttl = 1s}, cancels[i]));
          long_ttl.push_back(send_beside(io, ws, "long." + std::to_string(i), {.ttl = 5s}, cancels[3 + i]));
        }
        const bool queued = co_await eventually([&] { return ws.status().queued == 6; });
        CHECK(queued);
        CHECK(ws.status().queued_bytes > 0);
        CHECK(ws.status().to_json()["queued_bytes"] == ws.status().queued_bytes);

        const bool expired = co_await eventually([&] { return drops.size() == 3; });
        CHECK(expired);
        const auto took = since(t0);
        CHECK(took >= 1s);
        CHECK(took < 1s * 3 + 1s);
        // on_drop runs before the send's own coroutine resumes: wait for those.
        const bool failed = co_await eventually(
            [&] { return short_ttl[0]->done && short_ttl[1]->done && short_ttl[2]->done; });
        CHECK(failed);
        for (auto& r : short_ttl)
          CHECK(r->ec == error::send_timeout);
        for (const auto& d : drops)
          CHECK(d.reason == error::send_timeout);
        CHECK(dropped_payloads.at(0).find("short.0") != std::string::npos);
        CHECK(ws.status().dropped == 3);
        CHECK(ws.status().queued == 3);

        const bool sent = co_await eventually(
            [&] { return long_ttl[0]->done && long_ttl[1]->done && long_ttl[2]->done; }, 10s);
        CHECK(sent);
        for (auto& r : long_ttl)
          CHECK(!r->ec);
        CHECK(since(t0) >= 2s); // they waited for the server
        co_await server.wait_messages(3);
        CHECK(received_paths(server) == std::vector<std::string>{"long.0", "long.1", "long.2"});
        CHECK(ws.status().queued == 0);
        CHECK(ws.status().queued_bytes == 0);
        CHECK(drops.size() == 3); // nothing else was dropped
        co_await ws.close();
      },
      std::chrono::seconds(30));
}

TEST_CASE("offline queue: drop_newest withdraws the newest queued message and queues the new one") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    handler_options o = fast();
    o.max_retries = -1;
    o.offline_queue_size = 3;
    o.offline = offline_policy::drop_newest;
    std::vector<std::string> dropped;
    std::vector<std::error_code> reasons;
    o.on_drop = [&](const dropped_message& d) {
      dropped.emplace_back(d.payload);
      reasons.push_back(d.reason);
    };
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    std::vector<asio::cancellation_signal> cancels(4);
    std::vector<std::string> paths{"m1", "m2", "m3"}; // g++ 12: bind braced lists before co_await
    auto r = co_await queue_while_down(io, ws, server, paths, cancels);
    r.push_back(send_beside(io, ws, "m4", {}, cancels[3]));
    const bool dropped_one = co_await eventually([&] { return r[2]->done; });
    CHECK(dropped_one);
    CHECK(r[2]->ec == error::queue_full);
    REQUIRE(dropped.size() == 1);
    CHECK(dropped[0].find("\"m3\"") != std::string::npos);
    CHECK(reasons[0] == error::queue_full);
    CHECK(ws.status().dropped == 1);
    CHECK(ws.status().queued == 3);
    server.restart();
    co_await server.wait_messages(3);
    const bool all = co_await eventually([&] { return r[0]->done && r[1]->done && r[3]->done; });
    CHECK(all);
    CHECK(received_paths(server) == std::vector<std::string>{"m1", "m2", "m4"});
    CHECK(std::string(to_string(offline_policy::drop_newest)) == "drop_newest");
    co_await ws.close();
  });
}

} // TEST_SUITE

TEST_SUITE("loopback") {

TEST_CASE("offline queue: a send or request waiting for room still ends at its own deadline") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    handler_options o = fast();
    o.offline_queue_size = 1; // policy wait: a second message waits for room
    handler ws{io.get_executor(), o};
    // The queue does not flow while this step runs, and nothing else happens
    // (no reconnect attempts) that could wake a waiting sender by chance.
    ws.add_on_open([](connection_context&) -> awaitable<void> {
      asio::steady_timer gate(co_await asio::this_coro::executor, std::chrono::seconds(5));
      co_await gate.async_wait(asio::use_awaitable);
    });
    co_await ws.connect(server.url());
    asio::cancellation_signal c1, c2;
    auto first = send_beside(io, ws, "first", {}, c1); // fills the queue
    const bool full = co_await eventually([&] { return ws.status().queued == 1; });
    CHECK(full);
    auto t0 = clock_type::now();
    auto waiting = send_beside(io, ws, "second", {.ttl = 300ms}, c2);
    const bool ended = co_await eventually([&] { return waiting->done; });
    CHECK(ended);
    CHECK(waiting->ec == error::send_timeout);
    CHECK(since(t0) >= 300ms);
    CHECK(since(t0) < 300ms * 3 + 1s);
    t0 = clock_type::now();
    std::error_code ec;
    json d = 1;
    (void)co_await ws.request("op.x", d, request_options{.timeout = 300ms}, ec);
    CHECK(ec == error::request_timeout);
    CHECK(since(t0) >= 300ms);
    CHECK(since(t0) < 300ms * 3 + 1s);
    CHECK(!first->done); // still queued behind the on_open step
    co_await ws.close();
  });
}

TEST_CASE("offline queue: drop_oldest reports its victim to on_drop; an on_drop that throws is reported, the send still fails") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    handler_options o = fast();
    o.max_retries = -1;
    o.offline_queue_size = 2;
    o.offline = offline_policy::drop_oldest;
    std::vector<std::string> dropped;
    o.on_drop = [&](const dropped_message& d) {
      dropped.emplace_back(d.payload);
      throw std::runtime_error("on_drop failed on purpose");
    };
    std::vector<std::pair<std::error_code, std::string>> errors;
    o.on_error = [&](std::error_code ec, std::string_view what) { errors.emplace_back(ec, what); };
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    std::vector<asio::cancellation_signal> cancels(3);
    std::vector<std::string> paths{"m1", "m2"}; // g++ 12: bind braced lists before co_await
    auto r = co_await queue_while_down(io, ws, server, paths, cancels);
    r.push_back(send_beside(io, ws, "m3", {}, cancels[2]));
    const bool dropped_one = co_await eventually([&] { return r[0]->done; });
    CHECK(dropped_one);
    CHECK(r[0]->ec == error::queue_full);
    REQUIRE(dropped.size() == 1);
    CHECK(dropped[0].find("\"m1\"") != std::string::npos);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].first == error::callback_failed);
    CHECK(errors[0].second.find("on_drop failed on purpose") != std::string::npos);
    CHECK(ws.status().dropped == 1);
    server.restart();
    co_await server.wait_messages(2);
    CHECK(received_paths(server) == std::vector<std::string>{"m2", "m3"});
    co_await ws.close();
  });
}

} // TEST_SUITE
