// handler::subscribe against the in-process test server speaking the
// subscription envelopes of docs/protocol.md: acknowledgements, publications,
// refusals, unsubscribe, and what a server restart does (on_open steps, then
// the re-subscriptions with their acknowledgements, then queued messages).
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>

#include <asio/io_context.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "handler_support.hpp"
#include "run.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;

namespace {

/// {"path": P, "reply_to": id, "data": {"topic": T}}, with an error if `refusal` is set.
std::string ack_text(const json& req, const std::string& refusal = {}) {
  json r{{"path", req["path"]}, {"reply_to", req["id"]}, {"data", req["data"]}};
  if (!refusal.empty()) {
    r["error"] = refusal;
    r["error_code"] = "refused";
  }
  return r.dump();
}

std::string publication_text(const std::string& topic, int seq) {
  return json{{"path", "$publish"}, {"topic", topic}, {"seq", seq}, {"data", {{"n", seq}}}}.dump();
}

/// A publication as a subscription's function saw it.
struct seen_publication {
  std::string topic;
  int seq = 0;
  json data;
};

/// A subscription function recording into `out`.
std::function<void(const message&, connection_context&)> recorder(std::vector<seen_publication>& out) {
  return [&out](const message& m, connection_context&) {
    out.push_back({std::string(m.path), m.env.extra.value("seq", 0), m.data});
  };
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("subscribe: acknowledged, publications reach the function, refusals and duplicates fail, unsubscribe ends it") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    std::vector<json> got;
    server.set_on_message([&](test_server::connection_id from, opcode, std::string_view text) {
      auto req = json::parse(text);
      got.push_back(req);
      const auto topic = req["data"].value("topic", std::string());
      if (req["path"] == "$subscribe" && topic.starts_with("bad.")) {
        server.send_text_to(from, ack_text(req, "no such topic"));
      } else if (req["path"] == "$subscribe") {
        // A publication right before the acknowledgement, and two after it.
        server.send_text_to(from, publication_text(topic, 1));
        server.send_text_to(from, ack_text(req));
        server.send_text_to(from, publication_text(topic, 2));
        server.send_text_to(from, publication_text(topic, 3));
      } else if (req["path"] == "$unsubscribe") {
        server.send_text_to(from, ack_text(req));
        server.send_text_to(from, publication_text(topic, 4)); // already in flight: not delivered
      }
    });
    handler ws{io.get_executor(), fast()};
    co_await ws.connect(server.url());

    std::vector<seen_publication> pubs;
    co_await ws.subscribe("prices.btc", recorder(pubs));
    REQUIRE(got.size() == 1);
    CHECK(got[0]["path"] == "$subscribe");
    CHECK(got[0]["data"] == json{{"topic", "prices.btc"}});
    CHECK(got[0]["id"].is_string());
    CHECK(ws.topics() == std::vector<std::string>{"prices.btc"});
    CHECK(ws.status().subscriptions == 1);
    const bool three = co_await eventually([&] { return pubs.size() == 3; });
    REQUIRE(three);
    for (int i = 0; i < 3; ++i) {
      CHECK(pubs[i].topic == "prices.btc");
      CHECK(pubs[i].seq == i + 1);
      CHECK(pubs[i].data == json{{"n", i + 1}});
    }
    CHECK(ws.status().publications == 3);
    CHECK(ws.status().unrouted == 0);

    // A refusal: a typed error with the server's text; nothing kept.
    try {
      co_await ws.subscribe("bad.topic", recorder(pubs));
      FAIL("a refused subscription succeeded");
    } catch (const std::system_error& e) {
      CHECK(e.code() == error::subscription_refused);
      CHECK(std::string(e.what()).find("no such topic") != std::string::npos);
      CHECK(std::string(e.what()).find("bad.topic") != std::string::npos);
    }
    CHECK(ws.topics() == std::vector<std::string>{"prices.btc"});
    CHECK(ws.status().refused_subscriptions == 1);
    CHECK(ws.status().to_json()["refused_subscriptions"] == 1);

    // Twice the same topic, and the library's own paths, fail before anything is sent.
    const auto before = got.size();
    auto dup = co_await error_of([&]() { return ws.subscribe("prices.btc", recorder(pubs)); });
    CHECK(dup == error::route_conflict);
    auto reserved = co_await error_of([&]() { return ws.subscribe("$publish", recorder(pubs)); });
    CHECK(reserved == std::errc::invalid_argument);
    auto empty = co_await error_of([&]() { return ws.subscribe("", recorder(pubs)); });
    CHECK(empty == std::errc::invalid_argument);
    CHECK(got.size() == before);

    // Unsubscribe: acknowledged; a publication after it is not delivered.
    const bool ended = co_await ws.unsubscribe("prices.btc");
    CHECK(ended);
    CHECK(got.back()["path"] == "$unsubscribe");
    CHECK(got.back()["data"] == json{{"topic", "prices.btc"}});
    CHECK(ws.topics().empty());
    CHECK(ws.status().subscriptions == 0);
    const bool counted = co_await eventually([&] { return ws.status().unrouted == 1; });
    CHECK(counted);
    CHECK(pubs.size() == 3);
    const bool again = co_await ws.unsubscribe("prices.btc");
    CHECK(!again);
    CHECK(ws.status().pending_requests == 0);
    co_await ws.close();
  });
}

TEST_CASE("subscriptions after a server restart: on_open steps, then re-subscription acknowledged, then the queue") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    // What the server saw and did, in order: "recv PATH[:TOPIC]" and "ack TOPIC".
    std::vector<std::string> log;
    bool restarted = false;
    std::vector<std::shared_ptr<asio::steady_timer>> timers;
    server.set_on_message([&](test_server::connection_id from, opcode, std::string_view text) {
      auto req = json::parse(text);
      const std::string path = req["path"];
      const auto topic = req["data"].is_object() ? req["data"].value("topic", std::string()) : std::string();
      log.push_back("recv " + path + (topic.empty() ? "" : ":" + topic));
      if (path != "$subscribe")
        return;
      if (!restarted) {
        server.send_text_to(from, ack_text(req));
        return;
      }
      if (topic == "t.refused") {
        log.push_back("refuse " + topic);
        server.send_text_to(from, ack_text(req, "topic closed"));
        return;
      }
      // After the restart the acknowledgements take 300 ms: nothing queued may
      // arrive before them.
      auto t = std::make_shared<asio::steady_timer>(io.get_executor(), 300ms);
      timers.push_back(t);
      t->async_wait([&, from, req, topic](std::error_code) {
        log.push_back("ack " + topic);
        server.send_text_to(from, ack_text(req));
        server.send_text_to(from, publication_text(topic, 7));
      });
    });
    handler_options o = fast();
    o.max_retries = -1;
    std::vector<std::pair<std::error_code, std::string>> errors;
    o.on_error = [&](std::error_code ec, std::string_view what) { errors.emplace_back(ec, std::string(what)); };
    handler ws{io.get_executor(), o};
    ws.add_on_open([](connection_context&) -> awaitable<void> { co_return; });
    bool step_sends = false;
    ws.add_on_open([&](connection_context&) -> awaitable<void> {
      if (!step_sends)
        co_return;
      json token = {{"token", "t"}};
      co_await ws.send("auth.login", std::move(token));
    });
    co_await ws.connect(server.url());
    std::vector<seen_publication> a, b, refused;
    co_await ws.subscribe("t.a", recorder(a));
    co_await ws.subscribe("t.b", recorder(b));
    co_await ws.subscribe("t.refused", recorder(refused));
    CHECK(ws.status().subscriptions == 3);

    server.stop();
    co_await ws.wait_for(connection_state::reconnecting);
    step_sends = true;
    restarted = true;
    log.clear();
    std::vector<asio::cancellation_signal> cancels(2);
    std::vector<std::shared_ptr<op_result>> queued;
    for (int i = 0; i < 2; ++i)
      queued.push_back(start(io.get_executor(), send_numbered(ws, "q", i), cancels[i]));
    const bool waiting = co_await eventually([&] { return ws.status().queued == 2; });
    CHECK(waiting);
    server.restart();

    const bool flushed = co_await eventually([&] { return queued[0]->done && queued[1]->done; });
    REQUIRE(flushed);
    CHECK(!queued[0]->ec);
    CHECK(!queued[1]->ec);
    const std::vector<std::string> expected{"recv auth.login",         "recv $subscribe:t.a", "recv $subscribe:t.b",
                                            "recv $subscribe:t.refused", "refuse t.refused",  "ack t.a",
                                            "ack t.b",                 "recv q.0",            "recv q.1"};
    CHECK(log == expected);

    // The refused topic is reported and no longer held; the others resume.
    CHECK(ws.topics() == std::vector<std::string>{"t.a", "t.b"});
    CHECK(ws.status().refused_subscriptions == 1);
    bool reported = false;
    for (const auto& [ec, what] : errors)
      reported = reported || (ec == error::subscription_refused && what.find("t.refused") != std::string::npos &&
                              what.find("topic closed") != std::string::npos);
    CHECK(reported);
    const bool resumed = co_await eventually([&] { return a.size() == 1 && b.size() == 1; });
    CHECK(resumed);
    CHECK(a.at(0).seq == 7);
    CHECK(refused.empty());
    CHECK(ws.status().pending_requests == 0);
    co_await ws.close();
  });
}

TEST_CASE("re-subscription without an acknowledgement: reported after resubscribe_timeout, then the queue flows") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    bool silent = false;
    bool resubscribed = false;
    clock_type::time_point first_queued{};
    server.set_on_message([&](test_server::connection_id from, opcode, std::string_view text) {
      auto req = json::parse(text);
      if (req["path"] == "$subscribe") {
        if (!silent)
          server.send_text_to(from, ack_text(req));
        else
          resubscribed = true;
      } else if (first_queued == clock_type::time_point{}) {
        first_queued = clock_type::now();
      }
    });
    handler_options o = fast();
    o.max_retries = -1;
    o.resubscribe_timeout = 400ms;
    std::vector<std::error_code> errors;
    o.on_error = [&](std::error_code ec, std::string_view) { errors.push_back(ec); };
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    std::vector<seen_publication> pubs;
    co_await ws.subscribe("t.quiet", recorder(pubs));
    server.stop();
    co_await ws.wait_for(connection_state::reconnecting);
    silent = true;
    asio::cancellation_signal cancel;
    auto sent = start(io.get_executor(), send_numbered(ws, "q", 0), cancel);
    const bool waiting = co_await eventually([&] { return ws.status().queued == 1; });
    CHECK(waiting);
    const auto restarted = clock_type::now(); // the re-subscription starts after this
    server.restart();
    const bool flushed = co_await eventually([&] { return sent->done; });
    REQUIRE(flushed);
    CHECK(!sent->ec);
    CHECK(resubscribed);
    const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(first_queued - restarted);
    CHECK(gap >= 400ms);
    CHECK(gap < 400ms * 3 + 1s);
    CHECK(std::count(errors.begin(), errors.end(), make_error_code(error::request_timeout)) == 1);
    CHECK(ws.topics() == std::vector<std::string>{"t.quiet"}); // kept
    CHECK(ws.status().pending_requests == 0);
    co_await ws.close();
  });
}

TEST_CASE("re-subscription goes past a full offline queue (it does not wait for room that only the flush makes)") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    std::vector<std::string> log;
    server.set_on_message([&](test_server::connection_id from, opcode, std::string_view text) {
      auto req = json::parse(text);
      log.push_back(req["path"].get<std::string>());
      if (req["path"] == "$subscribe")
        server.send_text_to(from, ack_text(req));
    });
    handler_options o = fast();
    o.max_retries = -1;
    o.offline_queue_size = 2; // policy wait: a third send would wait for room
    o.resubscribe_timeout = 5s;
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    std::vector<seen_publication> pubs;
    co_await ws.subscribe("t.full", recorder(pubs));
    server.stop();
    co_await ws.wait_for(connection_state::reconnecting);
    log.clear();
    std::vector<asio::cancellation_signal> cancels(2);
    std::vector<std::shared_ptr<op_result>> queued;
    for (int i = 0; i < 2; ++i)
      queued.push_back(start(io.get_executor(), send_numbered(ws, "q", i), cancels[i]));
    const bool full = co_await eventually([&] { return ws.status().queued == 2; });
    REQUIRE(full);
    const auto restarted = clock_type::now();
    server.restart();
    const bool flushed = co_await eventually([&] { return all_done(queued); });
    REQUIRE(flushed);
    CHECK(!queued[0]->ec);
    CHECK(!queued[1]->ec);
    CHECK(log == std::vector<std::string>{"$subscribe", "q.0", "q.1"});
    CHECK(since(restarted) < 5s); // not after resubscribe_timeout
    co_await ws.close();
  });
}

} // TEST_SUITE
