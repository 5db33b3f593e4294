// tether::test::run (declared in test_server.hpp): runs one test coroutine on
// an io_context with a watchdog, and rethrows what it threw. A test harness,
// kept apart from the server itself.
#include "test_server.hpp"

#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>

#include <memory>
#include <stdexcept>
#include <string>

namespace tether::test {

void run(asio::io_context& ctx, std::function<asio::awaitable<void>()> test, std::chrono::milliseconds timeout) {
  // Shared with the handlers: after a timeout they may still be pending in ctx,
  // and the coroutine frame refers to the closure inside `fn`.
  struct state {
    std::function<asio::awaitable<void>()> fn;
    std::exception_ptr error;
    bool done = false;
    bool timed_out = false;
  };
  auto st = std::make_shared<state>();
  st->fn = std::move(test);

  ctx.restart();
  asio::steady_timer watchdog(ctx, timeout);
  watchdog.async_wait([st, &ctx](std::error_code ec) {
    if (!ec && !st->done) {
      st->timed_out = true;
      ctx.stop();
    }
  });
  asio::co_spawn(ctx, st->fn(), [st, &ctx](std::exception_ptr e) {
    st->error = e;
    st->done = true;
    ctx.stop();
  });
  ctx.run();
  watchdog.cancel();
  if (st->error)
    std::rethrow_exception(st->error);
  if (!st->done)
    throw std::runtime_error("test did not finish within " + std::to_string(timeout.count()) + " ms");
}

} // namespace tether::test
