// tether::pool against the in-process test server, which knows each
// message's connection: round-robin and keyed sends, routes on every member,
// and one member's connection dropped while idempotent requests flow and a
// subscription is held by it.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/pool.hpp>

#include <asio/io_context.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "handler_support.hpp"
#include "run.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;
using conn = test_server::connection_id;

namespace {

awaitable<void> pool_send(pool& p, int n) {
  std::string path = "rr." + std::to_string(n);
  co_await p.send(std::move(path), json(n));
}

awaitable<void> pool_request(pool& p, int n, std::shared_ptr<json> out) {
  request_options o;
  o.timeout = 10s;
  o.idempotent = true;
  json d = n;
  *out = co_await p.request("calc.id", std::move(d), o);
}

pool_options members(std::size_t n) {
  pool_options o;
  o.size = n;
  o.member = fast();
  o.member.max_retries = -1;
  o.member.ping_interval = 0ms;
  return o;
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("pool: round-robin over the members, keyed sends on one connection, routes on every member, status") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    std::map<conn, std::vector<std::string>> by_conn;
    server.set_on_message([&](conn from, opcode, std::string_view text) {
      by_conn[from].push_back(json::parse(text)["path"].get<std::string>());
    });
    pool p{io.get_executor(), members(3)};
    int notes = 0;
    p.add_route({"note", [&](const json&, connection_context&) { ++notes; }});
    co_await p.connect(server.url());
    CHECK(p.size() == 3);
    CHECK(p.status().open == 3);

    for (int i = 0; i < 9; ++i)
      co_await pool_send(p, i);
    const bool arrived = co_await eventually([&] {
      std::size_t n = 0;
      for (const auto& [c, paths] : by_conn)
        n += paths.size();
      return n == 9;
    });
    REQUIRE(arrived);
    CHECK(by_conn.size() == 3);
    for (const auto& [c, paths] : by_conn)
      CHECK(paths.size() == 3);

    // The same key: the same connection, in order.
    by_conn.clear();
    for (int i = 0; i < 5; ++i) {
      json d = i;
      co_await p.send_keyed("BTC-USD", "orders." + std::to_string(i), std::move(d));
    }
    const bool keyed = co_await eventually([&] { return !by_conn.empty() && by_conn.begin()->second.size() == 5; });
    CHECK(keyed);
    CHECK(by_conn.size() == 1);
    CHECK(by_conn.begin()->second == std::vector<std::string>{"orders.0", "orders.1", "orders.2", "orders.3", "orders.4"});

    // A route added on the pool runs for messages on every member.
    for (auto id : server.connection_ids())
      server.send_text_to(id, envelope_text("note", 1));
    const bool noted = co_await eventually([&] { return notes == 3; });
    CHECK(noted);

    const auto st = p.status();
    CHECK(st.size == 3);
    CHECK(st.members.size() == 3);
    CHECK(st.messages_sent == 14);
    CHECK(st.messages_received == 3);
    const auto j = st.to_json();
    CHECK(j["members"].size() == 3);
    CHECK(j["open"] == 3);
    co_await p.close();
    CHECK(p.status().open == 0);
  });
}

TEST_CASE("pool: one member's connection dropped: idempotent requests finish on the others, the subscription moves") {
  asio::io_context io;
  run(
      io,
      [&]() -> awaitable<void> {
        test_server server(io.get_executor());
        server.set_echo(false);
        conn victim = 0;         // the connection that held the subscription
        bool dropped = false;
        std::vector<json> held_back; // requests the victim got and never answered
        std::set<conn> subscribed;
        std::vector<conn> subscribe_from;
        server.set_on_message([&](conn from, opcode, std::string_view text) {
          auto req = json::parse(text);
          const std::string path = req["path"];
          if (path == "$subscribe") {
            subscribed.insert(from);
            subscribe_from.push_back(from);
            server.send_text_to(from, json{{"path", path}, {"reply_to", req["id"]}, {"data", req["data"]}}.dump());
            return;
          }
          if (path == "$unsubscribe") {
            subscribed.erase(from);
            server.send_text_to(from, json{{"path", path}, {"reply_to", req["id"]}, {"data", req["data"]}}.dump());
            return;
          }
          if (from == victim && !dropped) {
            // The victim takes requests and never answers; after five it dies.
            held_back.push_back(req);
            if (held_back.size() == 5) {
              dropped = true;
              subscribed.erase(from);
              server.drop(from);
            }
            return;
          }
          server.send_text_to(from, json{{"path", path}, {"reply_to", req["id"]}, {"data", req["data"]}}.dump());
        });
        pool p{io.get_executor(), members(3)};
        co_await p.connect(server.url());
        std::vector<int> ticks;
        co_await p.subscribe("t.x", [&](const message& m, connection_context&) {
          ticks.push_back(m.env.extra.value("seq", 0));
        });
        REQUIRE(subscribe_from.size() == 1);
        victim = subscribe_from[0];

        constexpr int n = 300;
        std::vector<asio::cancellation_signal> cancels(n);
        std::vector<std::shared_ptr<op_result>> reqs;
        std::vector<std::shared_ptr<json>> replies;
        for (int i = 0; i < n; ++i) {
          replies.push_back(std::make_shared<json>());
          reqs.push_back(start(io.get_executor(), pool_request(p, i, replies.back()), cancels[i]));
        }
        const bool finished = co_await eventually(
            [&] { return all_done(reqs); }, 20s);
        REQUIRE(finished);
        CHECK(dropped);
        int failures = 0;
        for (int i = 0; i < n; ++i) {
          failures += reqs[i]->ec ? 1 : 0;
          CHECK(*replies[i] == json(i));
        }
        CHECK(failures == 0);
        const auto st = p.status();
        // The five the victim read, and those written to its socket that it
        // never read (a third of the 300 went to it, round-robin).
        CHECK(st.moved_requests >= 5);
        CHECK(st.moved_requests <= n / 3 + 1);
        CHECK(st.pending_requests == 0);

        // The subscription moved to another member's connection.
        const bool moved = co_await eventually([&] { return subscribe_from.size() == 2; });
        REQUIRE(moved);
        CHECK(subscribe_from[1] != victim);
        CHECK(p.status().moved_subscriptions == 1);
        // The dropped member reconnects by itself and holds nothing.
        const bool back = co_await eventually([&] { return p.status().open == 3; });
        CHECK(back);
        CHECK(p.status().subscriptions == 1);
        // One publication per seq reaches the pool: no duplicates.
        for (int seq = 1; seq <= 3; ++seq)
          for (auto c : subscribed)
            server.send_text_to(c, json{{"path", "$publish"}, {"topic", "t.x"}, {"seq", seq}, {"data", seq}}.dump());
        const bool got = co_await eventually([&] { return ticks.size() >= 3; });
        CHECK(got);
        CHECK(subscribed.size() == 1);
        CHECK(ticks == std::vector<int>{1, 2, 3});
        co_await p.close();
      },
      60s);
}

TEST_CASE("pool: a keyed send whose member is reconnecting waits for it, bounded by send_timeout") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    std::vector<std::pair<conn, std::string>> got;
    server.set_on_message([&](conn from, opcode, std::string_view text) {
      got.emplace_back(from, json::parse(text)["path"].get<std::string>());
    });
    pool_options o = members(2);
    o.member.backoff_base = 300ms; // the first retry after 0-300 ms (full jitter)
    o.member.max_delay = 300ms;
    pool p{io.get_executor(), o};
    co_await p.connect(server.url());
    json d = 0;
    co_await p.send_keyed("K", "k.first", std::move(d));
    const bool first = co_await eventually([&] { return got.size() == 1; });
    REQUIRE(first);
    const conn before = got[0].first;

    // Its connection dies; the next keyed send waits for the same member's new
    // connection, although the other member is open all along.
    const std::size_t keyed_member = p.member(0).status().messages_sent == 1 ? 0 : 1;
    server.drop(before);
    const bool seen = co_await eventually([&] { return !p.member(keyed_member).status().connected; });
    REQUIRE(seen);
    json d2 = 1;
    co_await p.send_keyed("K", "k.second", std::move(d2));
    const bool second = co_await eventually([&] { return got.size() == 2; });
    REQUIRE(second);
    CHECK(got[1].second == "k.second");
    CHECK(got[1].first != before); // a new connection...
    CHECK(p.member(keyed_member).status().reconnects == 1); // ...of the same member
    CHECK(p.member(1 - keyed_member).status().reconnects == 0);
    co_await p.close();
  });
  // Bounded: a member that stays down fails the keyed send with send_timeout.
  asio::io_context io2;
  run(io2, [&]() -> awaitable<void> {
    test_server server(io2.get_executor());
    server.set_echo(false);
    pool_options o = members(2);
    o.member.send_timeout = 300ms;
    o.member.backoff_base = 5s; // no reconnect within the test
    o.member.max_delay = 5s;
    o.member.jitter = 0;
    pool p{io2.get_executor(), o};
    co_await p.connect(server.url());
    std::vector<conn> ids = server.connection_ids();
    json d = 0;
    co_await p.send_keyed("K", "k.first", std::move(d));
    // Drop every connection; the members retry only after 5 s.
    for (auto id : ids)
      server.drop(id);
    const bool down = co_await eventually([&] { return p.status().open == 0; });
    REQUIRE(down);
    const auto t0 = clock_type::now();
    auto ec = co_await error_of([&]() {
      json d2 = 1;
      return p.send_keyed("K", "k.second", std::move(d2));
    });
    const auto took = since(t0);
    CHECK(ec == error::send_timeout);
    CHECK(took >= 300ms);
    CHECK(took < 300ms * 3 + 1s);
    co_await p.close();
  });
}

} // TEST_SUITE
