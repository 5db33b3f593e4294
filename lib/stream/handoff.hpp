#pragma once
// A wake-up for the coroutines waiting in stream::read(), which the reader can
// resume at once. signal (signal.hpp) wakes through a channel, and a channel
// posts every completion: one more pass through the executor's queue for each
// message read, the hop that Beast's read does not make (callgrind, 1 and
// 200 connections in lock-step: 7 % fewer instructions per message without
// it). resume_all() dispatches instead: where Asio's dispatch allows (the
// waiter's executor runs on this thread, or its strand is idle and can be
// entered here), the waiter continues right here, inside its strand, before
// the reader parses on; otherwise it is queued. notify_all() always queues:
// for notifiers in the middle of a state change.
// A cancelled waiter is removed and completed with operation_aborted (posted:
// the cancellation handler must not run the coroutine inside itself).
// Waiters re-check their condition after waking, as with signal.
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <asio/post.hpp>
#include <asio/query.hpp>
#include <asio/recycling_allocator.hpp>

#include <algorithm>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

#include "asio_compat.hpp"

namespace tether::detail {

class handoff;

// Destroys the waiters of every handoff when the execution context shuts
// down, as Asio's channel service does for channel operations: a waiting
// coroutine's frame holds its stream, which holds the handoff, so without
// this they would keep each other alive after the context is gone.
class handoff_shutdown final : public asio::execution_context::service {
public:
  using key_type = handoff_shutdown;
  static inline asio::execution_context::id id;
  explicit handoff_shutdown(asio::execution_context& ctx) : service(ctx) {}
  // Streams on one context may be made and destroyed on several threads.
  std::mutex lock;
  handoff* live = nullptr; // an intrusive list: joining and leaving cost O(1)
  bool down = false;

private:
  void shutdown() override;
};

class handoff {
public:
  /// The registry of `ex`'s execution context (a service lookup: objects made
  /// often, such as the handler's per-message signals, look it up once).
  static handoff_shutdown& registry_of(const asio::any_io_executor& ex) {
    return asio::use_service<handoff_shutdown>(asio::query(ex, asio::execution::context));
  }

  explicit handoff(const asio::any_io_executor& ex) : handoff(registry_of(ex)) {}
  explicit handoff(handoff_shutdown& registry) : registry_(registry) {
    const std::lock_guard guard(registry_.lock);
    next_ = registry_.live;
    if (next_)
      next_->prev_ = this;
    registry_.live = this;
  }
  handoff(const handoff&) = delete;
  handoff& operator=(const handoff&) = delete;
  ~handoff() {
    {
      const std::lock_guard guard(registry_.lock);
      (prev_ ? prev_->next_ : registry_.live) = next_;
      if (next_)
        next_->prev_ = prev_;
    }
    for (auto* w : waiters_) // none while a coroutine holds the stream; see handoff_shutdown
      w->destroy();
  }

  /// co_await h.wait(): an empty error_code on a wake-up, operation_aborted
  /// when the awaiting coroutine is cancelled (check its cancellation state).
  auto wait() {
    return asio::async_initiate<const std::decay_t<decltype(use_nothrow)>&, void(std::error_code)>(
        [this](auto handler) { add(std::move(handler)); }, use_nothrow);
  }

  /// Wakes every waiter, running those that can run on this thread now.
  void resume_all() { wake(true); }
  /// Wakes every waiter through its executor's queue.
  void notify_all() { wake(false); }
  /// Wakes the longest waiter through its executor's queue; false if none waits.
  bool notify_one() {
    if (waiters_.empty() || registry_.down)
      return false;
    auto* w = waiters_.front();
    waiters_.erase(waiters_.begin());
    w->complete({}, false);
    return true;
  }

private:
  struct waiter {
    virtual void complete(std::error_code ec, bool now) = 0; // deletes itself
    virtual void destroy() = 0;                               // deletes itself
  protected:
    ~waiter() = default;
  };

  // Allocated from Asio's per-thread recycling cache, as Asio's own
  // operations are: a wait per message costs no malloc.
  template <class Handler>
  struct waiter_for final : waiter {
    using allocator = std::allocator_traits<asio::recycling_allocator<void>>::rebind_alloc<waiter_for>;
    static waiter_for* make(Handler&& h) {
      allocator a;
      return new (a.allocate(1)) waiter_for(std::move(h));
    }
    explicit waiter_for(Handler&& h) : handler(std::move(h)) {}
    void complete(std::error_code ec, bool now) override {
      auto ex = asio::get_associated_executor(handler);
      auto run = [h = std::move(handler), ec]() mutable { std::move(h)(ec); };
      release();
      if (now)
        asio::dispatch(ex, std::move(run));
      else
        asio::post(ex, std::move(run));
    }
    void destroy() override { release(); }
    void release() {
      this->~waiter_for();
      allocator a;
      a.deallocate(this, 1);
    }
    Handler handler;
  };

  struct cancel_waiter {
    handoff* owner;
    waiter* w;
    void operator()(asio::cancellation_type type) const {
      if (type == asio::cancellation_type::none)
        return;
      auto& list = owner->waiters_;
      if (auto it = std::find(list.begin(), list.end(), w); it != list.end()) {
        list.erase(it);
        w->complete(asio::error::operation_aborted, false);
      }
    }
  };

  template <class Handler>
  void add(Handler handler) {
    if (registry_.down)
      return; // the context is gone: the handler is dropped, as a channel's would be
    auto slot = asio::get_associated_cancellation_slot(handler);
    auto* w = waiter_for<Handler>::make(std::move(handler));
    waiters_.push_back(w);
    if (slot.is_connected())
      slot.template emplace<cancel_waiter>(cancel_waiter{this, w});
  }

  void wake(bool now) {
    if (waiters_.empty() || registry_.down)
      return;
    // Taken first: a waiter resumed here may wait again, and that wait is for
    // the next wake-up, not this one.
    auto woken = std::exchange(waiters_, {});
    for (auto* w : woken)
      w->complete({}, now);
    if (waiters_.empty() && woken.capacity() > 0) {
      woken.clear();
      waiters_.swap(woken); // keep the capacity: no allocation per message
    }
  }

  friend class handoff_shutdown;
  friend class signal;
  handoff_shutdown& registry_;
  handoff* prev_ = nullptr; // in registry_.live
  handoff* next_ = nullptr;
  std::vector<waiter*> waiters_;
};

inline void handoff_shutdown::shutdown() {
  down = true;
  // Taken out first: destroying a waiter may destroy its stream, and with it
  // a handoff that leaves `live`.
  std::vector<handoff::waiter*> all;
  {
    const std::lock_guard guard(lock);
    for (auto* h = live; h; h = h->next_)
      for (auto* w : std::exchange(h->waiters_, {}))
        all.push_back(w);
  }
  for (auto* w : all) // unlocked: a handoff destroyed here takes the lock
    w->destroy();
}

} // namespace tether::detail
