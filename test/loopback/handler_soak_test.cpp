// The delivery guarantees through real server deaths: the Python websockets
// peer (test/peers/echo_server.py --reply) is killed with SIGKILL and started
// again on the same port while idempotent requests are in flight. Every
// request completes exactly once, with its own reply; afterwards file
// descriptors, tether's live-object counters and the heap are back to their
// baseline. TETHER_SOAK_CYCLES sets the soak's kill/restart cycles (20 in CI;
// docs/testing.md has a 100-cycle run).
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <dirent.h>
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "handler_support.hpp"
#include "live.hpp"
#include "peer.hpp"
#include "run.hpp"
#include "test_server.hpp" // run()

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;

namespace {

/// One request: how many times its awaitable completed, and how.
struct tracked {
  int completions = 0;
  std::error_code ec;
  json reply;
};

awaitable<void> one_request(handler& h, int n, std::shared_ptr<tracked> t) {
  request_options o;
  o.timeout = 60s;
  o.idempotent = true;
  json d = n;
  try {
    auto r = co_await h.request("soak.n", std::move(d), o);
    t->reply = std::move(r);
  } catch (const std::system_error& e) {
    t->ec = e.code();
  }
  ++t->completions;
}

std::size_t open_fds() {
  std::size_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d))
      ++n;
    closedir(d);
  }
  return n;
}

/// Heap in use, after giving free pages back (0 where the allocator does not
/// say, as under AddressSanitizer: LeakSanitizer checks the heap there).
std::size_t heap_in_use() {
  malloc_trim(0);
  return mallinfo2().uordblks;
}

handler_options soak_options() {
  handler_options o = fast();
  o.backoff = backoff::linear;
  o.backoff_base = 20ms;
  o.max_delay = 200ms;
  o.max_retries = -1;
  o.ping_interval = 0ms;
  o.offline_queue_size = 20000;
  o.send_timeout = 60s;
  return o;
}

/// One lane of steady traffic: a request, and as soon as it completes the
/// next, until `stop`.
awaitable<void> lane(handler& ws, std::vector<std::shared_ptr<tracked>>& all, int& next, const bool& stop) {
  while (!stop) {
    auto t = std::make_shared<tracked>();
    all.push_back(t);
    co_await one_request(ws, next++, t);
  }
}

/// Steady traffic: 32 lanes, so 32 requests in flight; completes when all stop.
awaitable<void> steady_traffic(handler& ws, std::vector<std::shared_ptr<tracked>>& all, int& next, const bool& stop) {
  auto ex = co_await asio::this_coro::executor;
  constexpr int lanes = 32;
  int running = lanes;
  for (int i = 0; i < lanes; ++i)
    asio::co_spawn(ex, lane(ws, all, next, stop), [&running](std::exception_ptr) { --running; });
  co_await eventually([&] { return running == 0; }, std::chrono::seconds(120));
}

/// Waits until every request in `all` has completed.
awaitable<bool> all_completed(const std::vector<std::shared_ptr<tracked>>& all, std::chrono::milliseconds limit) {
  co_return co_await eventually(
      [&] { return std::all_of(all.begin(), all.end(), [](const auto& t) { return t->completions > 0; }); }, limit);
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("10,000 idempotent requests in flight while the server is killed and restarted: each completes once") {
  asio::io_context io;
  run(
      io,
      [&]() -> awaitable<void> {
        // The first server answers 2,000 requests and takes the rest in silence:
        // when it dies, 8,000 are written or queued and unanswered.
        constexpr int n = 10000;
        constexpr int answered = n / 5;
        auto server = std::make_unique<peer_process>(
            peer_kind::python, std::vector<std::string>{"--reply", "--reply-limit", std::to_string(answered)});
        const auto port = std::to_string(server->port());
        handler ws{io.get_executor(), soak_options()};
        co_await ws.connect(server->url());
        std::vector<std::shared_ptr<tracked>> all;
        for (int i = 0; i < n; ++i) {
          all.push_back(std::make_shared<tracked>());
          asio::co_spawn(io.get_executor(), one_request(ws, i, all.back()), asio::detached);
        }
        const bool some = co_await eventually([&] {
          return std::count_if(all.begin(), all.end(), [](const auto& t) { return t->completions > 0; }) == answered;
        }, 30s);
        REQUIRE(some);
        // Every request has gone to the server by now (its silence is not lack of input).
        const bool written = co_await eventually([&] { return ws.status().queued == 0; }, 30s);
        CHECK(written);
        server->kill(SIGKILL);
        co_await ws.wait_for(connection_state::reconnecting);
        server = std::make_unique<peer_process>(peer_kind::python, std::vector<std::string>{"--reply", "--port", port});
        const bool done = co_await all_completed(all, 60s);
        REQUIRE(done);
        int wrong = 0;
        for (int i = 0; i < n; ++i) {
          CHECK(all[i]->completions == 1);
          if (all[i]->ec || all[i]->reply != json(i))
            ++wrong;
        }
        CHECK(wrong == 0);
        CHECK(ws.status().reconnects == 1);
        CHECK(ws.status().pending_requests == 0);
        co_await ws.close();
      },
      120s);
}

TEST_CASE("soak: kill and restart the server under steady requests; nothing lost, and resources back to baseline") {
  const char* env = std::getenv("TETHER_SOAK_CYCLES");
  const int cycles = env ? std::atoi(env) : 20;
  asio::io_context io;
  run(
      io,
      [&]() -> awaitable<void> {
        auto server = std::make_unique<peer_process>(peer_kind::python, std::vector<std::string>{"--reply"});
        const auto port = std::to_string(server->port());
        auto ws = std::make_unique<handler>(io.get_executor(), soak_options());
        co_await ws->connect(server->url());
        int next = 0;
        std::vector<std::shared_ptr<tracked>> all;
        bool stop = false;
        // Warm up, then the baseline.
        bool traffic_done = false;
        asio::co_spawn(io.get_executor(), steady_traffic(*ws, all, next, stop),
                       [&](std::exception_ptr) { traffic_done = true; });
        const bool warm = co_await eventually([&] { return next >= 500; }, 30s);
        REQUIRE(warm);
        const auto fds_before = open_fds();
        const auto heap_before = heap_in_use();
        const long streams_before = detail::live().streams.load();
        const long handlers_before = detail::live().handlers.load();

        const auto t0 = clock_type::now();
        for (int c = 0; c < cycles; ++c) {
          CAPTURE(c);
          const int mark = next;
          const bool flowing = co_await eventually([&] { return next >= mark + 200; }, 30s);
          REQUIRE(flowing);
          server->kill(SIGKILL);
          co_await ws->wait_for(connection_state::reconnecting);
          server =
              std::make_unique<peer_process>(peer_kind::python, std::vector<std::string>{"--reply", "--port", port});
          co_await ws->wait_for(connection_state::open);
        }
        const auto took = since(t0);
        stop = true;
        const bool ended = co_await eventually([&] { return traffic_done; });
        REQUIRE(ended);
        const bool done = co_await all_completed(all, 60s);
        REQUIRE(done);
        int wrong = 0, twice = 0;
        for (std::size_t i = 0; i < all.size(); ++i) {
          twice += all[i]->completions != 1;
          wrong += all[i]->ec || all[i]->reply != json(static_cast<int>(i));
          if (all[i]->ec || all[i]->reply != json(static_cast<int>(i)))
            MESSAGE("request " << i << ": " << all[i]->ec.message() << " reply " << all[i]->reply.dump());
        }
        CHECK(twice == 0);
        CHECK(wrong == 0);
        CHECK(ws->status().reconnects == static_cast<std::uint64_t>(cycles));
        CHECK(ws->status().pending_requests == 0);
        CHECK(detail::live().requests.load() == 0);
        const auto requests = all.size();
        all.clear(); // the test's own records: not the library's heap
        all.shrink_to_fit();
        const auto heap_after = heap_in_use();
        MESSAGE(cycles << " cycles in " << took.count() << " ms, " << requests << " requests; fds " << fds_before
                       << " -> " << open_fds() << ", heap " << heap_before << " -> " << heap_after << " bytes");
        CHECK(open_fds() == fds_before);
        CHECK(detail::live().streams.load() == streams_before);
        CHECK(detail::live().handlers.load() == handlers_before);
        // Tolerance: allocator slack and containers that keep their capacity.
        CHECK(heap_after <= heap_before + 256 * 1024);
        co_await ws->close();
        ws.reset();
        // The last references go with the coroutines' final steps on the executor.
        const bool gone = co_await eventually([&] {
          return detail::live().handlers.load() == handlers_before - 1 &&
                 detail::live().streams.load() == streams_before - 1;
        });
        CHECK(gone);
      },
      std::chrono::seconds(60 + 20 * cycles));
}

} // TEST_SUITE
