#pragma once
// A wake-up for one kind of waiter, without a timer: a channel of capacity one.
// notify_one() hands one waiter a token (or leaves it for the next wait, so a
// notify before the wait is not lost); notify_all() wakes every waiter. Waiters
// re-check their condition after waking, so a stale token costs one loop.
// Unlike a timer used as a condition variable, waiting and waking make no
// system call (no timerfd_settime) and wake only this signal's waiters.
#include <asio/any_io_executor.hpp>
#include <asio/experimental/channel.hpp>

#include <cstddef>
#include <limits>
#include <system_error>

#include "asio_compat.hpp"

namespace tether::detail {

class signal {
public:
  explicit signal(const asio::any_io_executor& ex) : ch_(ex, 1) {}

  /// co_await s.wait(): completes on a notify, or with an error when the
  /// awaiting coroutine is cancelled (check its cancellation state after).
  auto wait() { return ch_.async_receive(use_nothrow); }

  void notify_one() { (void)ch_.try_send(std::error_code{}, true); }
  void notify_all() { (void)ch_.try_send_n(std::numeric_limits<std::size_t>::max(), std::error_code{}, true); }

private:
  // (error_code, bool), not (error_code): Asio 1.22 cannot instantiate a
  // channel whose signature is void(error_code) alone (ambiguous traits).
  asio::experimental::channel<void(std::error_code, bool)> ch_;
};

} // namespace tether::detail
