#pragma once
// Helpers shared by the handler's loopback tests.
#include <tether/handler.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace tether::test {

using clock_type = std::chrono::steady_clock;

inline std::chrono::milliseconds since(clock_type::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t);
}

/// Short backoff and close timeout, seeded jitter: tests that reconnect stay fast.
inline handler_options fast() {
  handler_options o;
  o.backoff_base = std::chrono::milliseconds(20);
  o.max_delay = std::chrono::milliseconds(200);
  o.rng_seed = 1;
  o.stream.close_timeout = std::chrono::seconds(1);
  return o;
}

inline std::string envelope_text(const std::string& path, const json& data) {
  return json{{"path", path}, {"data", data}}.dump();
}

/// Waits until `pred` holds, re-checking every few milliseconds (a poll
/// interval, not a synchronisation sleep); false after `limit`.
template <class Pred>
asio::awaitable<bool> eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  auto this_ex = co_await asio::this_coro::executor;
  asio::steady_timer t(this_ex);
  const auto end = clock_type::now() + limit;
  while (!pred()) {
    if (clock_type::now() > end)
      co_return false;
    t.expires_after(std::chrono::milliseconds(5));
    co_await t.async_wait(asio::use_awaitable);
  }
  co_return true;
}

/// How an operation started with start() ended.
struct op_result {
  bool done = false;
  std::error_code ec; ///< The std::system_error it threw, if any.
};

/// A completion handler that fills in `r` (co_spawn's, for an awaitable<void>).
inline auto record_into(std::shared_ptr<op_result> r) {
  return [r](std::exception_ptr e) {
    r->done = true;
    try {
      if (e)
        std::rethrow_exception(e);
    } catch (const std::system_error& x) {
      r->ec = x.code();
    }
  };
}

/// Starts `op` beside the test, cancellable through `cancel`; the result is
/// filled in when it ends.
template <class Executor>
std::shared_ptr<op_result> start(const Executor& ex, asio::awaitable<void> op, asio::cancellation_signal& cancel) {
  auto r = std::make_shared<op_result>();
  asio::co_spawn(ex, std::move(op), asio::bind_cancellation_slot(cancel.slot(), record_into(r)));
  return r;
}

/// Starts `op` beside the test with no cancellation slot (as a detached
/// coroutine of the application's); the result is filled in when it ends.
/// `then` runs after the result is filled in.
template <class Executor>
std::shared_ptr<op_result> start_detached(const Executor& ex, asio::awaitable<void> op,
                                          std::function<void()> then = {}) {
  auto r = std::make_shared<op_result>();
  asio::co_spawn(ex, std::move(op), [record = record_into(r), then = std::move(then)](std::exception_ptr e) {
    record(e);
    if (then)
      then();
  });
  return r;
}

/// A codec that writes an envelope's data verbatim as a text frame, "bad" as
/// "\xff" (not UTF-8), and decodes nothing: text from a user's codec.
struct verbatim_codec final : codec {
  std::error_code encode(const envelope& e, std::string& out, bool& binary_frame) const override {
    out = e.data.get<std::string>() == "bad" ? std::string("\xff") : e.path;
    binary_frame = false;
    return {};
  }
  std::error_code decode(std::string_view, bool, std::vector<envelope>&, std::string&) const override { return {}; }
};

/// True once every operation in `ops` has ended (for eventually()).
inline bool all_done(const std::vector<std::shared_ptr<op_result>>& ops) {
  return std::all_of(ops.begin(), ops.end(), [](const auto& op) { return op->done; });
}

/// The std::system_error code `op()`'s awaitable fails with (none: success).
template <class F>
asio::awaitable<std::error_code> error_of(F op) {
  try {
    co_await op();
  } catch (const std::system_error& e) {
    co_return e.code();
  }
  co_return std::error_code{};
}

/// A wake-up the test can await and a callback can give (no polling).
struct wake_event {
  explicit wake_event(asio::any_io_executor ex) : timer(ex, asio::steady_timer::time_point::max()) {}
  asio::awaitable<void> wait() {
    while (!fired) {
      auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      (void)ec;
    }
    fired = false;
  }
  /// As wait(), at most `limit`; false if it was not given in time.
  asio::awaitable<bool> wait_for(std::chrono::milliseconds limit) {
    timer.expires_after(limit);
    if (!fired) {
      auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      (void)ec;
    }
    timer.expires_at(asio::steady_timer::time_point::max());
    co_return std::exchange(fired, false);
  }
  void fire() {
    fired = true;
    timer.cancel();
  }
  asio::steady_timer timer;
  bool fired = false;
};

/// Runs `body` on the handler's executor as an application's own coroutine
/// (spawned there; with a cancellation slot if `cancellable`) and waits for it.
inline asio::awaitable<void> on_handler(handler& h, std::function<asio::awaitable<void>()> body, bool cancellable = false) {
  wake_event done(co_await asio::this_coro::executor);
  std::exception_ptr failure;
  auto finished = [&](std::exception_ptr e) {
    failure = e;
    done.fire();
  };
  asio::cancellation_signal cancel; // never emitted: the slot is only connected
  if (cancellable)
    asio::co_spawn(h.get_executor(), body(), asio::bind_cancellation_slot(cancel.slot(), finished));
  else
    asio::co_spawn(h.get_executor(), body(), finished);
  co_await done.wait();
  if (failure)
    std::rethrow_exception(failure);
}

/// Sends n to "PREFIX.<n>".
inline asio::awaitable<void> send_numbered(handler& h, std::string prefix, int n) {
  std::string path = prefix + "." + std::to_string(n);
  co_await h.send(std::move(path), json(n));
}

} // namespace tether::test
