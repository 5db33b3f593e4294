// handler::request against the in-process test server answering as each case
// needs: replies, error replies, silence, dropped connections, re-sent
// idempotent requests, cancellation, close(), and no entry or timer left over.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>

#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>

#include <map>
#include <string>
#include <vector>

#include "handler_support.hpp"
#include "live.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;

namespace {

/// An envelope answering request `req` with `data`, or with an error.
std::string reply_text(const json& req, const json& data) {
  return json{{"path", req["path"]}, {"data", data}, {"reply_to", req["id"]}}.dump();
}

/// The requests a server received, in order, parsed.
struct seen_requests {
  std::vector<json> all;
  std::map<std::string, int> times; // per id
};

/// Installs a handler that parses every text message as a request and lets
/// `answer` act on it (reply, drop, ignore).
void on_requests(test_server& server, seen_requests& seen,
                 std::function<void(test_server::connection_id, const json&)> answer) {
  server.set_echo(false);
  server.set_on_message([&server, &seen, answer](test_server::connection_id from, opcode, std::string_view text) {
    auto req = json::parse(text);
    seen.all.push_back(req);
    ++seen.times[req["id"].get<std::string>()];
    answer(from, req);
    (void)server;
  });
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("request: ids are \"<16 hex digits>.<n>\", the digits random per handler") {
  // Two handlers in one process, one request each: a server that de-duplicates
  // re-sent requests by id must never confuse them (docs/protocol.md).
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    seen_requests seen;
    on_requests(server, seen, [&](test_server::connection_id from, const json& req) {
      server.send_text_to(from, reply_text(req, true));
    });
    handler a{io.get_executor(), fast()}, b{io.get_executor(), fast()};
    co_await a.connect(server.url());
    co_await b.connect(server.url());
    (void)co_await a.request("who", 1);
    (void)co_await a.request("who", 2);
    (void)co_await b.request("who", 3);
    REQUIRE(seen.all.size() == 3);
    std::vector<std::string> prefixes;
    for (const auto& req : seen.all) {
      const auto id = req["id"].get<std::string>();
      const auto dot = id.find('.');
      REQUIRE(dot == 16);
      CHECK(id.find_first_not_of("0123456789abcdef") == dot);
      CHECK(id.find_first_not_of("0123456789", dot + 1) == std::string::npos);
      prefixes.push_back(id.substr(0, dot));
    }
    CHECK(prefixes[0] == prefixes[1]); // one handler's
    CHECK(prefixes[0] != prefixes[2]);
    CHECK(prefixes[0] != std::string(16, '0'));
    co_await a.close();
    co_await b.close();
  });
}

TEST_CASE("request: the reply's data; an error reply is a request_error; ids are unique; replies skip routes") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    seen_requests seen;
    on_requests(server, seen, [&](test_server::connection_id from, const json& req) {
      if (req["path"] == "math.double")
        server.send_text_to(from, reply_text(req, req["data"].get<int>() * 2));
      else
        server.send_text_to(from, json{{"path", "math.error"},
                                       {"data", nullptr},
                                       {"reply_to", req["id"]},
                                       {"error", "no such operation"},
                                       {"error_code", "E_NOOP"}}
                                      .dump());
    });
    handler ws{io.get_executor(), fast()};
    int routed = 0;
    ws.add_route({"math.#", [&](const json&, connection_context&) { ++routed; }});
    co_await ws.connect(server.url());
    json two = 21;
    auto got = co_await ws.request("math.double", two);
    CHECK(got == 42);
    json one = 1;
    auto again = co_await ws.request("math.double", one, 5s);
    CHECK(again == 2);
    REQUIRE(seen.all.size() == 2);
    CHECK(seen.all[0]["id"].is_string());
    CHECK(seen.all[0]["id"] != seen.all[1]["id"]);
    CHECK(seen.all[0]["data"] == 21);

    bool threw = false;
    try {
      json x = 0;
      (void)co_await ws.request("math.sqrt", x);
    } catch (const request_error& e) {
      threw = true;
      CHECK(e.code() == error::request_failed);
      CHECK(e.error_text() == "no such operation");
      CHECK(e.remote_code() == "E_NOOP");
      CHECK(e.reply().path == "math.error");
      CHECK(std::string(e.what()).find("no such operation") != std::string::npos);
    }
    CHECK(threw);
    // The error_code form: the code, no throw.
    std::error_code ec;
    json x = 0;
    (void)co_await ws.request("math.sqrt", x, request_options{}, ec);
    CHECK(ec == error::request_failed);
    CHECK(routed == 0); // replies are consumed before the router
    CHECK(ws.status().pending_requests == 0);
    CHECK(ws.status().to_json()["pending_requests"] == 0);
    co_await ws.close();
  });
}

TEST_CASE("request: no reply fails with request_timeout after the timeout; a later reply is counted and dropped") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    seen_requests seen;
    on_requests(server, seen, [](test_server::connection_id, const json&) {}); // never answers
    handler ws{io.get_executor(), fast()};
    int unrouted = 0;
    ws.set_fallback(route::json_fn([&](const json&, connection_context&) { ++unrouted; }));
    co_await ws.connect(server.url());
    const long entries_before = detail::live().requests.load();
    const auto t0 = clock_type::now();
    const auto ec = co_await error_of([&]() -> awaitable<void> {
      json d = "ping";
      (void)co_await ws.request("slow.op", d, 300ms);
    });
    const auto took = since(t0);
    CHECK(ec == error::request_timeout);
    CHECK(ec == condition::timeout);
    CHECK(took >= 300ms);
    CHECK(took < 300ms * 3 + 1s);
    CHECK(ws.status().pending_requests == 0);
    CHECK(detail::live().requests.load() == entries_before);
    // The server answers now: counted as late, neither routed nor unrouted.
    REQUIRE(seen.all.size() == 1);
    server.send_text(reply_text(seen.all[0], "too late"));
    const bool counted = co_await eventually([&] { return ws.status().late_replies == 1; });
    CHECK(counted);
    CHECK(unrouted == 0);
    CHECK(ws.status().unrouted == 0);
    // A reply_to that is not one of ours goes to the routes as before.
    server.send_text(json{{"path", "other.reply"}, {"reply_to", "someone-else"}}.dump());
    const bool routed = co_await eventually([&] { return unrouted == 1; });
    CHECK(routed);
    co_await ws.close();
  });
}

TEST_CASE("request: the connection ends after the request was written: outcome_unknown at once, not retried") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    seen_requests seen;
    on_requests(server, seen, [&](test_server::connection_id from, const json&) { server.drop(from); });
    handler ws{io.get_executor(), fast()};
    co_await ws.connect(server.url());
    const auto t0 = clock_type::now();
    const auto ec = co_await error_of([&]() -> awaitable<void> {
      json d = 1;
      (void)co_await ws.request("orders.place", d, 20s);
    });
    CHECK(ec == error::outcome_unknown);
    CHECK(since(t0) < 10s); // at the connection's end, long before the timeout
    co_await ws.wait_for(connection_state::open);
    CHECK(seen.all.size() == 1); // not sent again: it may have been carried out
    CHECK(ws.status().pending_requests == 0);
    co_await ws.close();
  });
}

TEST_CASE("request: idempotent requests are sent again after the reconnect, with the same id, and complete once") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    seen_requests seen;
    // The first copy of each request is lost with its connection; the second is answered.
    on_requests(server, seen, [&](test_server::connection_id from, const json& req) {
      if (seen.times[req["id"].get<std::string>()] == 1)
        server.drop(from);
      else
        server.send_text_to(from, reply_text(req, req["data"]));
    });
    handler ws{io.get_executor(), fast()};
    co_await ws.connect(server.url());
    request_options o;
    o.idempotent = true;
    o.timeout = 10s;
    json d = {{"n", 7}};
    auto got = co_await ws.request("orders.status", d, o);
    CHECK(got == d);
    REQUIRE(seen.all.size() == 2);
    CHECK(seen.all[0]["id"] == seen.all[1]["id"]);
    CHECK(ws.status().reconnects == 1);
    CHECK(ws.status().pending_requests == 0);

    // With the server gone for good it is re-sent until its own timeout.
    server.stop();
    const auto t0 = clock_type::now();
    o.timeout = 500ms;
    const auto ec = co_await error_of([&]() -> awaitable<void> { (void)co_await ws.request("orders.status", d, o); });
    CHECK(ec == error::request_timeout);
    CHECK(since(t0) >= 500ms);
    CHECK(since(t0) < 500ms * 3 + 1s);
    co_await ws.close();
  });
}

TEST_CASE("request: cancelling the caller forgets the request; close() fails the waiting ones") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    seen_requests seen;
    on_requests(server, seen, [](test_server::connection_id, const json&) {});
    handler ws{io.get_executor(), fast()};
    co_await ws.connect(server.url());
    const long entries_before = detail::live().requests.load();
    asio::cancellation_signal cancel;
    json d = 1;
    auto r = start(io.get_executor(), [](handler& h, json data) -> awaitable<void> {
      (void)co_await h.request("slow.op", std::move(data), 10s);
    }(ws, d), cancel);
    co_await server.wait_messages(1);
    CHECK(ws.status().pending_requests == 1);
    cancel.emit(asio::cancellation_type::terminal);
    const bool ended = co_await eventually([&] { return r->done; });
    CHECK(ended);
    CHECK(r->ec == asio::error::operation_aborted);
    CHECK(ws.status().pending_requests == 0);
    CHECK(detail::live().requests.load() == entries_before);
    server.send_text(reply_text(seen.all.at(0), "late"));
    const bool late = co_await eventually([&] { return ws.status().late_replies == 1; });
    CHECK(late);

    // close() with a request waiting: it fails with operation_aborted.
    asio::cancellation_signal unused;
    auto w = start(io.get_executor(), [](handler& h, json data) -> awaitable<void> {
      (void)co_await h.request("slow.op", std::move(data), 10s);
    }(ws, d), unused);
    co_await server.wait_messages(2);
    co_await ws.close();
    const bool failed = co_await eventually([&] { return w->done; });
    CHECK(failed);
    CHECK(w->ec == asio::error::operation_aborted);
    CHECK(detail::live().requests.load() == entries_before);
  });
}

TEST_CASE("request and send: paths starting with '$' are the library's") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    handler ws{io.get_executor(), fast()};
    co_await ws.connect(server.url());
    json d = 1;
    auto sent = co_await error_of([&]() -> awaitable<void> { co_await ws.send("$subscribe", d); });
    CHECK(sent == std::errc::invalid_argument);
    auto asked = co_await error_of([&]() -> awaitable<void> { (void)co_await ws.request("$subscribe", d); });
    CHECK(asked == std::errc::invalid_argument);
    CHECK(server.messages().empty());
    // Incoming '$' envelopes are the library's: no route sees them.
    int routed = 0;
    ws.add_route({"#", [&](const json&, connection_context&) { ++routed; }});
    server.send_text(R"({"path":"$publish","topic":"ticker.x","seq":1,"data":2})");
    server.send_text(R"({"path":"after.it","data":3})");
    const bool arrived = co_await eventually([&] { return routed == 1; });
    CHECK(arrived);
    CHECK(ws.status().unrouted == 1);
    co_await ws.close();
  });
}

TEST_CASE("request: 100,000 requests answered, timed out or cancelled leave no entry or timer behind") {
  asio::io_context io;
  run(
      io,
      [&]() -> awaitable<void> {
        test_server server(io.get_executor());
        server.set_record(false);
        server.set_echo(false);
        // Answers requests whose data is even; odd ones time out (i % 4 == 3, a
        // short timeout) or are cancelled (i % 4 == 1). Answered and cancelled
        // ones have a long timeout, so a slow machine cannot turn them into
        // timeouts.
        // Short-timeout requests may expire while still queued on a slow
        // machine (then they are never written), so only the others are counted.
        std::size_t received = 0;
        server.set_on_message([&](test_server::connection_id from, opcode, std::string_view text) {
          auto req = json::parse(text);
          if (req["data"].get<int>() % 4 != 3)
            ++received;
          if (req["data"].get<int>() % 2 == 0)
            server.send_text_to(from, reply_text(req, req["data"]));
        });
        handler_options o = fast();
        o.offline_queue_size = 100000;
        handler ws{io.get_executor(), o};
        co_await ws.connect(server.url());
        const long entries_before = detail::live().requests.load();
        constexpr int total = 100000;
        constexpr int batch = 2000;
        int answered = 0, timed_out = 0, cancelled = 0, other = 0;
        for (int first = 0; first < total; first += batch) {
          std::vector<std::shared_ptr<op_result>> results;
          std::vector<std::unique_ptr<asio::cancellation_signal>> cancels;
          for (int i = first; i < first + batch; ++i) {
            cancels.push_back(std::make_unique<asio::cancellation_signal>());
            json d = i;
            const auto timeout = i % 4 == 3 ? std::chrono::milliseconds(200) : std::chrono::milliseconds(60000);
            results.push_back(start(io.get_executor(), [](handler& h, json data, std::chrono::milliseconds t) -> awaitable<void> {
              (void)co_await h.request("load.op", std::move(data), t);
            }(ws, d, timeout), *cancels.back()));
          }
          // Every fourth request (odd ones among them) is cancelled while it waits.
          const bool arrived =
              co_await eventually([&] { return received == static_cast<std::size_t>(first + batch) / 4 * 3; }, 10s);
          REQUIRE(arrived);
          for (int i = first + 1; i < first + batch; i += 4)
            cancels[static_cast<std::size_t>(i - first)]->emit(asio::cancellation_type::terminal);
          const bool all_done = co_await eventually(
              [&] {
                for (auto& r : results)
                  if (!r->done)
                    return false;
                return true;
              },
              30s);
          REQUIRE(all_done);
          for (int i = first; i < first + batch; ++i) {
            const auto& r = *results[static_cast<std::size_t>(i - first)];
            if (!r.ec)
              ++answered;
            else if (r.ec == error::request_timeout)
              ++timed_out;
            else if (r.ec == asio::error::operation_aborted)
              ++cancelled;
            else
              ++other;
          }
        }
        CHECK(answered == total / 2);
        CHECK(cancelled == total / 4);
        CHECK(timed_out == total / 4);
        CHECK(other == 0);
        CHECK(ws.status().pending_requests == 0);
        CHECK(detail::live().requests.load() == entries_before);
        co_await ws.close();
      },
      std::chrono::seconds(240));
}

} // TEST_SUITE
