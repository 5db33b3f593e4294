#pragma once
// A wake-up for one kind of waiter, without a timer: a channel of capacity one.
// notify_one() hands one waiter a token (or leaves it for the next wait, so a
// notify before the wait is not lost); notify_all() wakes the waiters there
// are and leaves no token: every waiter checks its condition right before it
// waits (on the same executor, nothing runs in between), so a token would only
// cost the next wait a spurious wake-up (a hop through the executor). Waiters
// re-check their condition after waking, so a stale token costs one loop.
// Unlike a timer used as a condition variable, waiting and waking make no
// system call (no timerfd_settime) and wake only this signal's waiters.
#include <asio/any_io_executor.hpp>
#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/query.hpp>

#include <cstddef>
#include <limits>
#include <memory>
#include <system_error>
#include <utility>

#include "asio_compat.hpp"

namespace tether::detail {

// Notes that the execution context is shutting down. Asio 1.22's channel_service
// destroys the waiting operations at shutdown but leaves the channel believing
// they wait, so a notify afterwards (a stream destroyed by a handler that the
// context's shutdown releases) would complete a null operation. Registered
// after the channel service, this service shuts down before it.
class signal_shutdown final : public asio::execution_context::service {
public:
  using key_type = signal_shutdown;
  static inline asio::execution_context::id id;
  explicit signal_shutdown(asio::execution_context& ctx) : service(ctx) {}
  bool down = false;

private:
  void shutdown() override { down = true; }
};

// The channel is made at the first wait, on the heap: most signals of an idle
// connection never have a waiter, and a channel costs about 200 bytes inline
// plus what it allocates. A notify before that is the token the first wait finds.
class signal {
public:
  explicit signal(const asio::any_io_executor& ex)
      : ex_(ex), down_(asio::use_service<signal_shutdown>(asio::query(ex, asio::execution::context)).down) {}

  /// co_await s.wait(): completes on a notify, or with an error when the
  /// awaiting coroutine is cancelled (check its cancellation state after).
  auto wait() {
    if (!ch_) {
      ch_ = std::make_unique<channel>(ex_, 1);
      if (std::exchange(pending_, false))
        (void)ch_->try_send(std::error_code{}, true);
    }
    return ch_->async_receive(use_nothrow);
  }

  void notify_one() {
    if (down_)
      return;
    if (ch_)
      (void)ch_->try_send(std::error_code{}, true);
    else
      pending_ = true;
  }
  void notify_all() {
    if (down_ || !ch_)
      return;
    (void)ch_->try_send_n(std::numeric_limits<std::size_t>::max(), std::error_code{}, true);
    if (ch_->ready()) // nobody was waiting: take the token back
      (void)ch_->try_receive([](std::error_code, bool) {});
  }

private:
  // (error_code, bool), not (error_code): Asio 1.22 cannot instantiate a
  // channel whose signature is void(error_code) alone (ambiguous traits).
  using channel = asio::experimental::channel<void(std::error_code, bool)>;
  asio::any_io_executor ex_;
  std::unique_ptr<channel> ch_;
  bool pending_ = false; // a notify with no channel yet: the first wait's token
  const bool& down_;
};

} // namespace tether::detail
