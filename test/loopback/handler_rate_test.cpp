// Rate limits on outgoing envelopes (handler_options::send_rate,
// route_send_rates, fail_when_rate_limited) against the in-process test
// server, which notes when each envelope arrives.
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

TEST_SUITE("loopback") {

TEST_CASE("rate limit: 1,000 sends at 200/s with a burst of 100 take at least 4.5 s, never more than burst + rate × t") {
  asio::io_context io;
  run(
      io,
      [&]() -> awaitable<void> {
        test_server server(io.get_executor());
        server.set_echo(false);
        std::vector<clock_type::time_point> arrived;
        std::vector<int> order;
        server.set_on_message([&](test_server::connection_id, opcode, std::string_view text) {
          arrived.push_back(clock_type::now());
          order.push_back(json::parse(text)["data"].get<int>());
        });
        handler_options o = fast();
        o.send_rate = {.per_second = 200, .burst = 100};
        handler ws{io.get_executor(), o};
        co_await ws.connect(server.url());
        const auto t0 = clock_type::now();
        std::vector<asio::cancellation_signal> cancels(1000);
        std::vector<std::shared_ptr<op_result>> sends;
        for (int i = 0; i < 1000; ++i)
          sends.push_back(start(io.get_executor(), send_numbered(ws, "rate", i), cancels[i]));
        const bool all = co_await eventually([&] { return arrived.size() == 1000; }, 20s);
        REQUIRE(all);
        const auto took = since(t0);
        CHECK(took >= 4500ms);
        CHECK(took < 4500ms * 3 + 1s);
        const bool done = co_await eventually([&] { return sends.back()->done; });
        CHECK(done);
        for (const auto& s : sends)
          CHECK(!s->ec);
        std::vector<int> expected(1000);
        for (int i = 0; i < 1000; ++i)
          expected[i] = i;
        CHECK(order == expected);
        // Arrival lags the write by the loopback's delivery (a few ms, more
        // under sanitizers): each span is widened by 50 ms for it. Without the
        // limit all 1,000 arrive within milliseconds.
        for (auto span : {0ms, 5ms, 20ms, 100ms, 500ms, 2000ms}) {
          CAPTURE(span.count());
          const auto allowed = 100 + static_cast<std::size_t>(200 * std::chrono::duration<double>(span + 50ms).count());
          CHECK(most_within(arrived, span) <= allowed);
        }
        // The burst goes out without waiting; so do the sends that found a
        // token earned while the burst was being written (none on a fast
        // machine; the 100th arrival bounds that time from above). Every other
        // send waited and is counted.
        const auto st = ws.status();
        const auto earned = static_cast<std::uint64_t>(200 * std::chrono::duration<double>(arrived[99] - t0).count()) + 1;
        CHECK(st.throttled <= 900);
        CHECK(st.throttled + earned >= 900);
        CHECK(st.to_json()["throttled"] == st.throttled);
        CHECK(st.rate_limited == 0);
        co_await ws.close();
      },
      60s);
}

TEST_CASE("rate limit per route: the route's own bucket, in queue order; fail_when_rate_limited refuses at the call") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    std::vector<std::pair<std::string, clock_type::time_point>> arrived;
    server.set_on_message([&](test_server::connection_id, opcode, std::string_view text) {
      arrived.emplace_back(json::parse(text)["path"].get<std::string>(), clock_type::now());
    });
    {
      handler_options o = fast();
      o.route_send_rates = {{"slow.*", {.per_second = 5, .burst = 1}}};
      handler ws{io.get_executor(), o};
      co_await ws.connect(server.url());
      // Unlimited paths go at once.
      const auto t0 = clock_type::now();
      for (int i = 0; i < 20; ++i)
        co_await send_numbered(ws, "fast", i);
      CHECK(since(t0) < 1s);
      CHECK(ws.status().throttled == 0);
      // Three to slow.*: 200 ms apart.
      co_await server.wait_messages(20); // written is not yet read by the server
      arrived.clear();
      const auto t1 = clock_type::now();
      std::vector<asio::cancellation_signal> cancels(3);
      std::vector<std::shared_ptr<op_result>> sends;
      for (int i = 0; i < 3; ++i)
        sends.push_back(start(io.get_executor(), send_numbered(ws, "slow", i), cancels[i]));
      const bool all = co_await eventually([&] { return sends[2]->done; });
      REQUIRE(all);
      const auto took = since(t1);
      CHECK(took >= 400ms);
      CHECK(took < 400ms * 3 + 1s);
      REQUIRE(arrived.size() == 3);
      CHECK(arrived[2].second - arrived[0].second >= 400ms - 50ms); // arrival lag, as above
      CHECK(ws.status().throttled == 2);
      co_await ws.close();
    }
    {
      // Refused instead of waiting: 150 sends at once against a burst of 100 at 10/s.
      handler_options o = fast();
      o.send_rate = {.per_second = 10, .burst = 100};
      o.fail_when_rate_limited = true;
      handler ws{io.get_executor(), o};
      co_await ws.connect(server.url());
      const auto t0 = clock_type::now();
      std::vector<asio::cancellation_signal> cancels(150);
      std::vector<std::shared_ptr<op_result>> sends;
      for (int i = 0; i < 150; ++i)
        sends.push_back(start(io.get_executor(), send_numbered(ws, "burst", i), cancels[i]));
      const bool all = co_await eventually([&] {
        return all_done(sends);
      });
      REQUIRE(all);
      const auto calls_took = std::chrono::duration<double>(since(t0)).count();
      std::size_t ok = 0, refused = 0;
      for (const auto& s : sends) {
        ok += !s->ec;
        refused += s->ec == error::rate_limited;
      }
      CHECK(ok + refused == 150);
      CHECK(ok >= 100);
      CHECK(ok <= 100 + 1 + static_cast<std::size_t>(10 * calls_took));
      CHECK(ws.status().rate_limited == refused);
      CHECK(ws.status().to_json()["rate_limited"] == refused);
      co_await ws.close();
    }
  });
}

} // TEST_SUITE
