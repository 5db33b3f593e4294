// The loopback test server: a connection's single writer. Every write on a
// socket goes through the connection's queue, so two writes never overlap.
#include "server_impl.hpp"

namespace tether::test {

using namespace server_detail;

asio::awaitable<void> test_server::impl::write_side(std::shared_ptr<connection> c) {
  for (;;) {
    if (c->dead || c->stalled)
      break;
    if (!c->queue.empty()) {
      auto item = std::move(c->queue.front());
      c->queue.pop_front();
      if (item.delay.count() > 0) {
        c->pace.expires_after(item.delay);
        co_await c->pace.async_wait(use_nothrow);
        if (c->dead || c->stalled)
          break;
      }
      if (c->silenced)
        continue; // silence() after this item was taken
      auto [ec, n] = co_await c->write(item.bytes);
      if (ec && !c->stalled)
        c->end();
      continue;
    }
    if (c->closing || c->reader_done) {
      // Flushed. A reader still blocked in a read (our close answered the
      // peer's) is woken by cancelling it; it sees `closing` and returns.
      if (!c->reader_done) {
        std::error_code ignored;
        c->socket().cancel(ignored);
      }
      break;
    }
    co_await c->wake.async_wait(use_nothrow);
  }
}

} // namespace tether::test
