// Outgoing batching (handler_options::batch) against the in-process test
// server, which sees the frames as written: JSON arrays of envelopes within
// the count, byte and delay limits, in order, each envelope once.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>

#include <asio/io_context.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "handler_support.hpp"
#include "run.hpp"
#include "spans.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;

namespace {

/// Frames as the server received them, parsed.
struct frames {
  std::vector<json> all;
  std::vector<clock_type::time_point> at;
  /// The envelopes in order, batches flattened.
  std::vector<json> envelopes() const {
    std::vector<json> out;
    for (const auto& f : all) {
      if (f.is_array())
        for (const auto& e : f)
          out.push_back(e);
      else
        out.push_back(f);
    }
    return out;
  }
};

void record(test_server& server, frames& got) {
  server.set_echo(false);
  server.set_on_message([&got](test_server::connection_id, opcode, std::string_view text) {
    got.all.push_back(json::parse(text));
    got.at.push_back(clock_type::now());
  });
}

/// Starts n sends to PREFIX.0 .. PREFIX.n-1 at once; waits until all completed.
awaitable<std::vector<std::shared_ptr<op_result>>> send_all(asio::io_context& io, handler& ws, std::string prefix, int n,
                                                            std::vector<asio::cancellation_signal>& cancels) {
  std::vector<std::shared_ptr<op_result>> sends;
  for (int i = 0; i < n; ++i)
    sends.push_back(start(io.get_executor(), send_numbered(ws, prefix, i), cancels[i]));
  const bool all = co_await eventually(
      [&] { return all_done(sends); }, 20s);
  CHECK(all);
  co_return sends;
}

std::vector<json> numbered(std::string prefix, int n) {
  std::vector<json> out;
  for (int i = 0; i < n; ++i)
    out.push_back(json{{"path", prefix + "." + std::to_string(i)}, {"data", i}});
  return out;
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("batching: off by default; on, envelopes queued together go as JSON arrays within max_count and max_bytes") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    frames got;
    record(server, got);
    {
      handler ws{io.get_executor(), fast()};
      co_await ws.connect(server.url());
      std::vector<asio::cancellation_signal> cancels(25);
      co_await send_all(io, ws, "plain", 25, cancels);
      const bool arrived = co_await eventually([&] { return got.all.size() == 25; });
      CHECK(arrived);
      CHECK(std::none_of(got.all.begin(), got.all.end(), [](const json& f) { return f.is_array(); }));
      CHECK(ws.status().batches == 0);
      co_await ws.close();
    }
    got = {};
    {
      handler_options o = fast();
      o.batch = {.enabled = true, .max_count = 10, .max_bytes = 64 * 1024, .max_delay = 50ms};
      handler ws{io.get_executor(), o};
      co_await ws.connect(server.url());
      std::vector<asio::cancellation_signal> cancels(25);
      auto sends = co_await send_all(io, ws, "b", 25, cancels);
      for (const auto& s : sends)
        CHECK(!s->ec);
      const bool arrived = co_await eventually([&] { return got.envelopes().size() == 25; });
      REQUIRE(arrived);
      CHECK(got.envelopes() == numbered("b", 25)); // each once, in order
      std::vector<std::size_t> sizes;
      for (const auto& f : got.all)
        sizes.push_back(f.is_array() ? f.size() : 1);
      CHECK(sizes == std::vector<std::size_t>{10, 10, 5});
      const auto st = ws.status();
      CHECK(st.batches == 3);
      CHECK(st.to_json()["batches"] == 3);
      CHECK(st.messages_sent == 3); // WebSocket messages: a batch is one
      co_await ws.close();
    }
    got = {};
    {
      // max_bytes: each envelope is about 120 bytes; at most 3 fit in 400.
      handler_options o = fast();
      o.batch = {.enabled = true, .max_count = 64, .max_bytes = 400, .max_delay = 50ms};
      handler ws{io.get_executor(), o};
      co_await ws.connect(server.url());
      std::vector<asio::cancellation_signal> cancels(12);
      std::vector<std::shared_ptr<op_result>> sends;
      for (int i = 0; i < 12; ++i)
        sends.push_back(start(io.get_executor(), [](handler& w, int n) -> awaitable<void> {
          json padded = std::string(100, 'x');
          co_await w.send("pad." + std::to_string(n), std::move(padded));
        }(ws, i), cancels[i]));
      const bool arrived = co_await eventually([&] { return got.envelopes().size() == 12; });
      REQUIRE(arrived);
      for (const auto& f : got.all) {
        CHECK(f.dump().size() <= 400);
        CHECK((!f.is_array() || f.size() <= 3));
      }
      CHECK(got.all.size() >= 4);
      co_await ws.close();
    }
  });
}

TEST_CASE("batching: a lone envelope waits max_delay for company; requests in a batch get their replies") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    std::vector<json> frames_seen;
    server.set_on_message([&](test_server::connection_id from, opcode, std::string_view text) {
      auto f = json::parse(text);
      frames_seen.push_back(f);
      // Answer every request in the frame, as one batch too.
      json replies = json::array();
      for (const auto& e : f.is_array() ? f : json::array({f}))
        if (e.contains("id"))
          replies.push_back(json{{"path", e["path"]}, {"data", e["data"]}, {"reply_to", e["id"]}});
      if (!replies.empty())
        server.send_text_to(from, replies.dump());
    });
    handler_options o = fast();
    o.batch = {.enabled = true, .max_count = 16, .max_bytes = 64 * 1024, .max_delay = 200ms};
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    const auto t0 = clock_type::now();
    co_await ws.send("alone", json(1));
    const auto took = since(t0);
    CHECK(took >= 200ms);
    CHECK(took < 200ms * 3 + 1s);
    co_await server.wait_messages(1); // written is not yet read by the server
    REQUIRE(frames_seen.size() == 1);
    CHECK(frames_seen[0].is_object()); // a batch of one is the envelope itself

    // Five requests at once: one frame, five replies.
    std::vector<std::shared_ptr<json>> replies;
    std::vector<asio::cancellation_signal> cancels(5);
    std::vector<std::shared_ptr<op_result>> reqs;
    for (int i = 0; i < 5; ++i) {
      replies.push_back(std::make_shared<json>());
      reqs.push_back(start(io.get_executor(), [](handler& w, int n, std::shared_ptr<json> out) -> awaitable<void> {
        json d = n;
        *out = co_await w.request("math.id", std::move(d), 5s);
      }(ws, i, replies.back()), cancels[i]));
    }
    const bool answered = co_await eventually(
        [&] { return all_done(reqs); });
    REQUIRE(answered);
    for (int i = 0; i < 5; ++i) {
      CHECK(!reqs[i]->ec);
      CHECK(*replies[i] == json(i));
    }
    REQUIRE(frames_seen.size() == 2);
    CHECK(frames_seen[1].is_array());
    CHECK(frames_seen[1].size() == 5);
    CHECK(ws.status().pending_requests == 0);
    co_await ws.close();
  });
}

TEST_CASE("batching with a rate limit: every envelope inside a batch takes its token") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    frames got;
    record(server, got);
    handler_options o = fast();
    o.batch = {.enabled = true, .max_count = 50, .max_bytes = 64 * 1024, .max_delay = 1ms};
    o.send_rate = {.per_second = 100, .burst = 10};
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    const auto t0 = clock_type::now();
    std::vector<asio::cancellation_signal> cancels(60);
    co_await send_all(io, ws, "r", 60, cancels);
    const auto took = since(t0);
    CHECK(took >= 500ms); // 10 at once, then 50 at 100/s
    CHECK(took < 500ms * 3 + 1s);
    const bool arrived = co_await eventually([&] { return got.envelopes().size() == 60; });
    REQUIRE(arrived);
    CHECK(got.envelopes() == numbered("r", 60));
    REQUIRE(got.all.front().is_array());
    CHECK(got.all.front().size() <= 10);
    // Envelopes per span, counting inside frames (arrival lag: 50 ms, as in handler_rate_test).
    std::vector<clock_type::time_point> each;
    for (std::size_t i = 0; i < got.all.size(); ++i)
      for (std::size_t k = 0; k < (got.all[i].is_array() ? got.all[i].size() : 1); ++k)
        each.push_back(got.at[i]);
    for (auto span : {0ms, 20ms, 100ms, 300ms}) {
      CAPTURE(span.count());
      CHECK(most_within(each, span) <= 10 + static_cast<std::size_t>(100 * std::chrono::duration<double>(span + 50ms).count()));
    }
    co_await ws.close();
  });
}

} // TEST_SUITE
