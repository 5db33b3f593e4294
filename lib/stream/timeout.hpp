#pragma once
// Races an awaitable against a deadline. Used for the connect phases and the
// close handshake, not on the per-message path (each race spawns a frame).
#include <asio/co_spawn.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include <chrono>
#include <exception>
#include <optional>

#include "asio_compat.hpp"

namespace tether::detail {

/// The result of `op`, or nothing if `limit` passed first (the op is then
/// cancelled and awaited, and whatever it threw meanwhile is dropped). A zero
/// limit waits forever. If the caller is cancelled, so is the op: its result
/// is returned, or its exception rethrown.
template <class T>
asio::awaitable<std::optional<T>> with_timeout(asio::awaitable<T> op, std::chrono::milliseconds limit) {
  if (limit.count() <= 0) {
    auto result = co_await std::move(op);
    co_return result;
  }
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex, limit);
  // wait_for_one: the first to finish cancels the other and both results
  // arrive, the timer's as an error code. (The awaitable operators' `||` made
  // the cancelled timer throw: an exception per connection phase, 14 % of the
  // instructions of opening 1,000 connections.)
  auto [order, thrown, result, expired] =
      co_await asio::experimental::make_parallel_group(asio::co_spawn(ex, std::move(op), deferred),
                                                       timer.async_wait(deferred))
          .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
  // First: an op cancelled by the deadline may throw operation_aborted (a
  // cancelled coroutine does at its next co_await); that is the timeout.
  if (order[0] == 1 && !expired)
    co_return std::nullopt;
  if (thrown)
    std::rethrow_exception(thrown);
  co_return std::move(result);
}

} // namespace tether::detail
