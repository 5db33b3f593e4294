#pragma once
// Races an awaitable against a deadline. Used for the connect phases and the
// close handshake, not on the per-message path (each race spawns two frames).
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include <chrono>
#include <optional>
#include <variant>

#include "asio_compat.hpp"

namespace tether::detail {

/// The result of `op`, or nothing if `limit` passed first (the op is then
/// cancelled and awaited). A zero limit waits forever.
template <class T>
asio::awaitable<std::optional<T>> with_timeout(asio::awaitable<T> op, std::chrono::milliseconds limit) {
  using namespace awaitable_operators;
  if (limit.count() <= 0) {
    auto result = co_await std::move(op);
    co_return result;
  }
  auto this_ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(this_ex, limit);
  auto r = co_await (std::move(op) || timer.async_wait(asio::use_awaitable));
  if (r.index() == 0)
    co_return std::move(std::get<0>(r));
  co_return std::nullopt;
}

} // namespace tether::detail
