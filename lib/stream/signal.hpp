#pragma once
// A wake-up for one kind of waiter, without a timer and without a channel.
// notify_one() wakes the longest waiter (or leaves a token for the next wait,
// so a notify before the wait is not lost); notify_all() wakes the waiters
// there are and leaves no token: every waiter checks its condition right
// before it waits (on the same executor, nothing runs in between), so a token
// would only cost the next wait a spurious wake-up (a hop through the
// executor). Waiters re-check their condition after waking, so a stale token
// costs one loop. Every wake-up is posted to the waiter's executor: notifiers
// are in the middle of a state change (handoff.resume_all() is the exception,
// for the reader). Unlike a timer used as a condition variable, waiting and
// waking make no system call and wake only this signal's waiters.
//
// It keeps its waiters as a handoff does (handoff.hpp): 56 bytes, and one
// small recycled allocation per waiting coroutine. (An Asio channel of
// capacity one cost about 930 bytes per signal that was ever waited on, and
// the handler makes a signal per queued message.)
#include "handoff.hpp"

namespace tether::detail {

class signal {
public:
  explicit signal(const asio::any_io_executor& ex) : waiters_(ex) {}
  explicit signal(handoff_shutdown& registry) : waiters_(registry) {}

  /// co_await s.wait(): completes on a notify, or with an error when the
  /// awaiting coroutine is cancelled (check its cancellation state after).
  auto wait() {
    return asio::async_initiate<const std::decay_t<decltype(use_nothrow)>&, void(std::error_code)>(
        [this](auto handler) {
          if (!std::exchange(token_, false)) {
            waiters_.add(std::move(handler));
          } else if (!waiters_.registry_.down) { // the token: wake at once, through the queue
            auto ex = asio::get_associated_executor(handler);
            asio::post(ex, [h = std::move(handler)]() mutable { std::move(h)(std::error_code{}); });
          }
        },
        use_nothrow);
  }

  void notify_one() {
    if (!waiters_.notify_one())
      token_ = true;
  }
  void notify_all() { waiters_.notify_all(); }

private:
  handoff waiters_;
  bool token_ = false; // a notify_one() that found nobody waiting: the next wait's
};

} // namespace tether::detail
