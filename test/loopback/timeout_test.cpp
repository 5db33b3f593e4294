// detail::with_timeout (lib/stream/timeout.hpp), which bounds every connect
// phase: the op's result when it ends first, a timeout when the deadline
// passes first (whatever the cancelled op throws), and the op's own result
// when the caller is cancelled.
#include <doctest/doctest.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include <chrono>
#include <optional>
#include <system_error>

#include "stream/timeout.hpp"
#include "test_server.hpp"

using namespace std::chrono_literals;
using asio::awaitable;
using tether::detail::use_nothrow;
using tether::detail::with_timeout;
using clock_type = std::chrono::steady_clock;

namespace {

// Waits `d` and returns 7; a cancellation throws operation_aborted.
awaitable<int> seven_after(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
  co_return 7;
}

// Waits `d` and returns how the wait ended, without throwing.
awaitable<std::error_code> wait_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  auto [ec] = co_await t.async_wait(use_nothrow);
  co_return ec;
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("with_timeout: the op's result when it ends first") {
  asio::io_context io;
  tether::test::run(io, [&]() -> awaitable<void> {
    auto r = co_await with_timeout(seven_after(1ms), 10s);
    REQUIRE(r.has_value());
    CHECK(*r == 7);
  });
}

TEST_CASE("with_timeout: a deadline that passes first is a timeout, even if the cancelled op throws") {
  asio::io_context io;
  tether::test::run(io, [&]() -> awaitable<void> {
    const auto limit = 50ms;
    const auto started = clock_type::now();
    auto r = co_await with_timeout(seven_after(1h), limit); // must not throw operation_aborted
    const auto elapsed = clock_type::now() - started;
    CHECK_FALSE(r.has_value());
    CHECK(elapsed >= limit);
    CHECK(elapsed <= 3 * limit + 1s);
  });
}

TEST_CASE("with_timeout: cancelling the caller cancels the op and returns its result") {
  asio::io_context io;
  tether::test::run(io, [&]() -> awaitable<void> {
    asio::cancellation_signal cancel;
    bool done = false;
    std::optional<std::error_code> got;
    asio::co_spawn(io, with_timeout(wait_for(1h), 1h),
                   asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, std::optional<std::error_code> r) {
                     CHECK_FALSE(e);
                     got = r;
                     done = true;
                   }));
    co_await asio::post(io, asio::use_awaitable); // the race has started
    cancel.emit(asio::cancellation_type::terminal);
    for (int i = 0; i < 10 && !done; ++i) // executor turns, not time
      co_await asio::post(io, asio::use_awaitable);
    REQUIRE(done);
    REQUIRE(got.has_value()); // not a timeout
    CHECK(*got == asio::error::operation_aborted);
  });
}

} // TEST_SUITE
