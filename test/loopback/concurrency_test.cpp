// The tests that run on several threads: who wakes whom across threads, with
// the stream and with the handler. An executable of its own, so that CI's
// ThreadSanitizer build compiles only this file (and the library).
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>
#include <tether/stream.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "handler_support.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;

TEST_CASE("concurrency: 8 coroutines on 2 threads send 10,000 messages each, none interleaved") {
  // The server runs on its own thread; the client on a strand over two threads.
  asio::io_context server_io;
  std::unique_ptr<test_server> server;
  std::string url;
  {
    auto guard = asio::make_work_guard(server_io);
    std::thread st([&] { server_io.run(); });
    std::promise<void> ready;
    asio::post(server_io, [&] {
      server = std::make_unique<test_server>(server_io.get_executor());
      url = server->url();
      ready.set_value();
    });
    ready.get_future().wait();

    asio::io_context io;
    auto strand = asio::make_strand(io);
    constexpr int senders = 8;
    constexpr int per_sender = 10000;
    stream_options o;
    o.fragment_size = 700; // long messages go out in several frames
    auto ws = std::make_shared<stream>(strand, o);
    std::exception_ptr failure;
    int received = 0;
    bool ok = true;

    auto body = [](std::shared_ptr<stream> ws, std::string url, int senders, int per_sender, int& received,
                   bool& ok) -> awaitable<void> {
      co_await ws->connect(url);
      auto ex = co_await asio::this_coro::executor;
      int finished = 0;
      for (int s = 0; s < senders; ++s) {
        asio::co_spawn(ex, [](std::shared_ptr<stream> ws, int s, int per_sender) -> awaitable<void> {
            for (int i = 0; i < per_sender; ++i) {
              // "s:i:" then a filler whose length and byte depend on s and i.
              std::string msg = std::to_string(s) + ":" + std::to_string(i) + ":";
              msg.append(static_cast<std::size_t>((i * 37 + s * 11) % 2000), static_cast<char>('a' + s));
              co_await ws->send(msg);
            }
          }(ws, s, per_sender), [&finished](std::exception_ptr e) {
            if (e)
              std::rethrow_exception(e);
            ++finished;
          });
      }
      std::vector<int> next(static_cast<std::size_t>(senders), 0);
      std::string buf;
      while (received < senders * per_sender) {
        co_await ws->read(buf);
        const auto c1 = buf.find(':');
        const auto c2 = buf.find(':', c1 + 1);
        const int s = std::stoi(buf.substr(0, c1));
        const int i = std::stoi(buf.substr(c1 + 1, c2 - c1 - 1));
        const auto fill = buf.substr(c2 + 1);
        // Each sender's messages come back in order, intact and unmixed.
        if (i != next[static_cast<std::size_t>(s)]++ ||
            fill != std::string(static_cast<std::size_t>((i * 37 + s * 11) % 2000), static_cast<char>('a' + s)))
          ok = false;
        ++received;
      }
      co_await ws->close();
    };
    asio::co_spawn(strand, body(ws, url, senders, per_sender, received, ok), [&](std::exception_ptr e) { failure = e; });
    std::thread t2([&] { io.run(); });
    io.run();
    t2.join();
    if (failure)
      std::rethrow_exception(failure);
    CHECK(received == senders * per_sender);
    CHECK(ok);
    asio::post(server_io, [&] { server.reset(); });
    guard.reset();
    st.join();
  }
}

TEST_CASE("handler concurrency: sends from several threads while the connection drops and reconnects") {
  // Server on its own thread; handler on an io_context run by two threads; the
  // senders run on a third executor (a thread pool), so every send hops.
  asio::io_context server_io;
  auto server_guard = asio::make_work_guard(server_io);
  std::thread server_thread([&] { server_io.run(); });
  std::unique_ptr<test_server> server;
  std::string url;
  {
    std::promise<void> ready;
    asio::post(server_io, [&] {
      server = std::make_unique<test_server>(server_io.get_executor());
      server->set_echo(false);
      url = server->url();
      ready.set_value();
    });
    ready.get_future().wait();
  }

  asio::io_context io;
  auto io_guard = asio::make_work_guard(io);
  std::thread t1([&] { io.run(); }), t2([&] { io.run(); });
  asio::thread_pool senders(4);

  handler_options o = fast();
  o.max_retries = -1;
  auto ws = std::make_shared<handler>(io.get_executor(), o);
  {
    std::promise<void> connected;
    asio::co_spawn(io, ws->connect(url), [&](std::exception_ptr e) {
      CHECK_FALSE(e);
      connected.set_value();
    });
    connected.get_future().wait();
  }

  constexpr int threads = 4, per_thread = 300;
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::future<void>> done;
  for (int s = 0; s < threads; ++s) {
    auto p = std::make_shared<std::promise<void>>();
    done.push_back(p->get_future());
    asio::co_spawn(senders,
                   [](std::shared_ptr<handler> ws, int s, std::atomic<int>& ok, std::atomic<int>& failed) -> awaitable<void> {
                     for (int i = 0; i < per_thread; ++i) {
                       json data = {{"s", s}, {"i", i}};
                       try {
                         co_await ws->send("load", data);
                         ++ok;
                       } catch (const std::system_error&) {
                         ++failed; // written to a socket that died: the caller is told
                       }
                     }
                   }(ws, s, ok, failed),
                   [p](std::exception_ptr) { p->set_value(); });
  }
  // Drop the connection three times while the senders run.
  for (int d = 1; d <= 3; ++d) {
    std::promise<void> dropped;
    asio::co_spawn(server_io, [&, d]() -> awaitable<void> {
      co_await server->wait_messages(static_cast<std::size_t>(d * 150));
      server->drop();
      dropped.set_value();
    }, asio::detached);
    if (dropped.get_future().wait_for(60s) != std::future_status::ready) {
      // A hang here cannot be unwound (threads are running): report and exit.
      std::fprintf(stderr, "server never saw %d messages; handler: %s\n", d * 150, ws->status().to_json().dump().c_str());
      std::_Exit(1);
    }
  }
  for (auto& f : done)
    if (f.wait_for(60s) != std::future_status::ready)
    {
      std::fprintf(stderr, "a sender never finished; handler: %s\n", ws->status().to_json().dump().c_str());
      std::_Exit(1);
    }
  CHECK(ok + failed == threads * per_thread);

  std::promise<std::vector<std::pair<opcode, std::string>>> got_p;
  asio::post(server_io, [&] { got_p.set_value(server->messages()); });
  const auto got = got_p.get_future().get();
  std::vector<int> last(threads, -1);
  bool ordered = true;
  for (const auto& [op, text] : got) {
    const auto j = json::parse(text);
    const int s = j["data"]["s"], i = j["data"]["i"];
    if (i <= last[static_cast<std::size_t>(s)])
      ordered = false; // a duplicate or a reordering
    last[static_cast<std::size_t>(s)] = i;
  }
  CHECK(ordered);
  CHECK(static_cast<int>(got.size()) >= ok.load() - 3 * 64); // at most what the dead sockets swallowed
  CHECK(ws->status().reconnects >= 3);

  std::promise<void> closed;
  asio::co_spawn(io, ws->close(), [&](std::exception_ptr) { closed.set_value(); });
  closed.get_future().wait();
  ws.reset();
  io_guard.reset();
  senders.join();
  t1.join();
  t2.join();
  asio::post(server_io, [&] { server.reset(); });
  server_guard.reset();
  server_thread.join();
}

TEST_CASE("concurrency: streams of one context made and destroyed on two threads at once") {
  // Each stream registers its read wake-up with a service of the context
  // (lib/stream/handoff.hpp), which frees waiters at shutdown: that registry
  // is shared by every stream of the context, whatever thread makes them.
  asio::io_context io;
  std::atomic<int> made{0};
  auto churn = [&io, &made] {
    for (int i = 0; i < 2000; ++i) {
      stream ws(io.get_executor());
      made += ws.is_open() ? 0 : 1;
    }
  };
  std::thread a(churn), b(churn);
  a.join();
  b.join();
  CHECK(made == 4000);
}
