// detail::handoff (lib/stream/handoff.hpp), the wake-up of stream::read():
// who runs at once, who is queued, cancellation, and a context that ends with
// a waiter (run under LeakSanitizer in CI's ASan build); and detail::signal
// (lib/stream/signal.hpp), built on it: tokens, one waiter or all.
#include <doctest/doctest.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>

#include <memory>
#include <optional>
#include <system_error>
#include <vector>

#include "stream/handoff.hpp"
#include "stream/signal.hpp"

using tether::detail::handoff;
using wake_signal = tether::detail::signal;
using asio::awaitable;

namespace {

// Waits once and records what it woke with.
template <class Waitable>
awaitable<void> wait_once(Waitable& h, std::vector<std::error_code>& woke) {
  auto [ec] = co_await h.wait();
  woke.push_back(ec);
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("handoff: resume_all runs a waiter of this executor before it returns; notify_all queues it") {
  asio::io_context io;
  handoff h(io.get_executor());
  std::vector<std::error_code> woke;
  std::vector<const char*> order;
  asio::co_spawn(io, wait_once(h, woke), asio::detached);
  asio::co_spawn(io, wait_once(h, woke), asio::detached);
  asio::post(io, [&] {
    h.resume_all(); // both waiters run inside this call
    order.push_back(woke.size() == 2 ? "resumed in place" : "not yet");
  });
  io.run();
  REQUIRE(order.size() == 1);
  CHECK(std::string(order[0]) == "resumed in place");
  CHECK(woke == std::vector<std::error_code>{{}, {}});

  io.restart();
  woke.clear();
  order.clear();
  asio::co_spawn(io, wait_once(h, woke), asio::detached);
  asio::post(io, [&] {
    h.notify_all();
    order.push_back(woke.empty() ? "queued" : "ran in place");
  });
  io.run();
  REQUIRE(order.size() == 1);
  CHECK(std::string(order[0]) == "queued");
  CHECK(woke.size() == 1);
}

TEST_CASE("handoff: a waiter on a strand resumes inside its strand, also when woken from another") {
  // Asio's dispatch may run an idle strand's work at once, from the
  // notifier's thread, but always inside that strand: never beside it.
  asio::io_context io;
  auto waiter_strand = asio::make_strand(io);
  auto notifier_strand = asio::make_strand(io);
  handoff h(io.get_executor());
  std::optional<bool> in_strand;
  asio::co_spawn(
      waiter_strand,
      [](handoff& h, decltype(waiter_strand) strand, std::optional<bool>& in_strand) -> awaitable<void> {
        (void)co_await h.wait();
        in_strand = strand.running_in_this_thread();
      }(h, waiter_strand, in_strand),
      asio::detached);
  asio::post(notifier_strand, [&] { h.resume_all(); });
  io.run();
  REQUIRE(in_strand.has_value());
  CHECK(*in_strand);
}

TEST_CASE("handoff: a cancelled waiter ends with operation_aborted and is not woken again") {
  asio::io_context io;
  handoff h(io.get_executor());
  std::vector<std::error_code> woke;
  asio::cancellation_signal cancel;
  asio::co_spawn(io, wait_once(h, woke), asio::bind_cancellation_slot(cancel.slot(), asio::detached));
  asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });
  io.run();
  CHECK(woke == std::vector<std::error_code>{asio::error::operation_aborted});
  io.restart();
  asio::post(io, [&] { h.resume_all(); }); // nobody waits any more
  io.run();
  CHECK(woke.size() == 1);
}

TEST_CASE("handoff: a waiter that re-waits while being resumed waits for the next wake-up") {
  asio::io_context io;
  handoff h(io.get_executor());
  int wakes = 0;
  asio::co_spawn(
      io,
      [](handoff& h, int& wakes) -> awaitable<void> {
        for (int i = 0; i < 3; ++i) {
          (void)co_await h.wait();
          ++wakes;
        }
      }(h, wakes),
      asio::detached);
  asio::post(io, [&] { h.resume_all(); }); // one wake-up, however often it re-waits inside
  io.run_one();
  io.run_one();
  CHECK(wakes == 1);
  asio::post(io, [&] { h.resume_all(); });
  asio::post(io, [&] { h.resume_all(); });
  io.run();
  CHECK(wakes == 3);
}

TEST_CASE("handoff: a context destroyed with a waiter frees it and its coroutine") {
  // A waiting read() owns its stream, and the stream owns the handoff that
  // holds the waiter: the context's shutdown must break that cycle.
  std::weak_ptr<handoff> watch;
  {
    asio::io_context io;
    auto h = std::make_shared<handoff>(io.get_executor());
    watch = h;
    asio::co_spawn(
        io, [](std::shared_ptr<handoff> h) -> awaitable<void> { (void)co_await h->wait(); }(std::move(h)),
        asio::detached);
    io.poll(); // the coroutine starts and waits
    CHECK(!watch.expired());
  }
  CHECK(watch.expired());
}

TEST_CASE("signal: a notify_one before the wait is a token the wait finds; notify_all leaves none") {
  asio::io_context io;
  wake_signal s(io.get_executor());
  std::vector<std::error_code> woke;
  s.notify_all(); // nobody waits: no token
  asio::co_spawn(io, wait_once(s, woke), asio::detached);
  io.poll();
  CHECK(woke.empty()); // still waiting
  s.notify_one();
  io.poll();
  CHECK(woke == std::vector<std::error_code>{{}});

  woke.clear();
  s.notify_one(); // nobody waits: a token
  s.notify_one(); // one token, not two
  asio::co_spawn(io, wait_once(s, woke), asio::detached);
  asio::co_spawn(io, wait_once(s, woke), asio::detached);
  io.restart();
  io.poll();
  CHECK(woke.size() == 1); // the first found the token, the second waits
  s.notify_all();
  io.poll();
  CHECK(woke.size() == 2);
}

TEST_CASE("signal: notify_one wakes the longest waiter only, through the executor's queue") {
  asio::io_context io;
  wake_signal s(io.get_executor());
  std::vector<int> order;
  auto waiter = [](wake_signal& s, std::vector<int>& order, int id) -> awaitable<void> {
    (void)co_await s.wait();
    order.push_back(id);
  };
  asio::co_spawn(io, waiter(s, order, 1), asio::detached);
  asio::co_spawn(io, waiter(s, order, 2), asio::detached);
  io.poll();
  bool ran_inside = false;
  asio::post(io, [&] {
    s.notify_one();
    ran_inside = !order.empty();
  });
  io.poll();
  CHECK_FALSE(ran_inside);
  CHECK(order == std::vector<int>{1});
  s.notify_one();
  io.poll();
  CHECK(order == std::vector<int>{1, 2});
}

TEST_CASE("signal: a cancelled waiter ends with operation_aborted; a context destroyed with a waiter frees it") {
  {
    asio::io_context io;
    wake_signal s(io.get_executor());
    std::vector<std::error_code> woke;
    asio::cancellation_signal cancel;
    asio::co_spawn(io, wait_once(s, woke), asio::bind_cancellation_slot(cancel.slot(), asio::detached));
    asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });
    io.run();
    CHECK(woke == std::vector<std::error_code>{asio::error::operation_aborted});
  }
  std::weak_ptr<wake_signal> watch;
  {
    asio::io_context io;
    auto s = std::make_shared<wake_signal>(io.get_executor());
    watch = s;
    asio::co_spawn(
        io, [](std::shared_ptr<wake_signal> s) -> awaitable<void> { (void)co_await s->wait(); }(std::move(s)),
        asio::detached);
    io.poll();
    CHECK(!watch.expired());
  }
  CHECK(watch.expired());
}

TEST_CASE("signal: the context's shutdown frees the waiters of every live signal, after others left in any order") {
  std::vector<std::weak_ptr<wake_signal>> watch;
  {
    asio::io_context io;
    auto& registry = tether::detail::handoff::registry_of(io.get_executor());
    std::vector<std::shared_ptr<wake_signal>> all;
    for (int i = 0; i < 6; ++i)
      all.push_back(std::make_shared<wake_signal>(i % 2 ? registry : tether::detail::handoff::registry_of(io.get_executor())));
    all[0].reset(); // the first made, a middle one and the last made leave the registry
    all[3].reset();
    all[5].reset();
    for (auto& s : all) {
      if (!s)
        continue;
      watch.push_back(s);
      asio::co_spawn(
          io, [](std::shared_ptr<wake_signal> s) -> awaitable<void> { (void)co_await s->wait(); }(std::move(s)),
          asio::detached);
    }
    io.poll(); // three coroutines wait, each holding its signal
    for (auto& w : watch)
      CHECK(!w.expired());
  }
  REQUIRE(watch.size() == 3);
  for (auto& w : watch)
    CHECK(w.expired());
}

} // TEST_SUITE
