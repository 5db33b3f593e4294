// The loopback test server: listening, accepting, serving one connection
// (TLS handshake, then its reader and writer side by side) and closing it.
#include "server_impl.hpp"

namespace tether::test {

using namespace server_detail;

void test_server::impl::listen() {
  auto acc = std::make_shared<tcp::acceptor>(ex);
  const tcp::endpoint ep(asio::ip::address_v4::loopback(), port ? port : opts.port);
  acc->open(ep.protocol());
  acc->set_option(asio::socket_base::reuse_address(true));
  acc->bind(ep);
  acc->listen();
  port = acc->local_endpoint().port();
  acceptor = acc;
  auto self = shared_from_this();
  asio::co_spawn(ex, accept_loop(self, acc), [self](std::exception_ptr e) {
    if (e)
      self->fail(e);
  });
}

void test_server::impl::stop() {
  if (acceptor) {
    std::error_code ignored;
    acceptor->close(ignored);
    acceptor.reset();
  }
  for (auto& c : conns)
    c->abort();
  notify();
}

asio::awaitable<void> test_server::impl::accept_loop(std::shared_ptr<impl> s, std::shared_ptr<tcp::acceptor> acc) {
  for (;;) {
    auto [ec, sock] = co_await acc->async_accept(use_nothrow);
    if (!acc->is_open() || ec == asio::error::operation_aborted)
      co_return; // stop()
    if (ec) {
      if (ec == asio::error::connection_aborted)
        continue; // the client gave up before we accepted
      throw std::system_error(ec, "test_server: accept");
    }
    ++s->accepted;
    auto c = std::make_shared<connection>(std::move(sock), s->tls_ctx.get());
    c->id = ++s->next_id;
    s->conns.push_back(c);
    s->notify();
    asio::co_spawn(s->ex, serve(s, c), [s](std::exception_ptr e) {
      if (e)
        s->fail(e);
    });
  }
}

asio::awaitable<void> test_server::impl::serve(std::shared_ptr<impl> s, std::shared_ptr<connection> c) {
  using namespace tether::detail::awaitable_operators;
  try {
    bool ok = true;
    if (c->tls) {
      asio::steady_timer watchdog(s->ex, tls_handshake_bound);
      watchdog.async_wait([c](std::error_code ec) {
        if (!ec)
          c->end();
      });
      auto [ec] = co_await c->tls->async_handshake(asio::ssl::stream_base::server, use_nothrow);
      ok = !ec && !c->dead && !c->stalled;
    }
    if (ok)
      co_await (read_side(s, c) && write_side(c));
    if (c->stalled && !c->dead)
      co_await c->park.async_wait(use_nothrow); // until drop() or stop()
    else if (ok && c->closing && !c->dead)
      co_await close_gracefully(s, c);
  } catch (...) {
    s->fail(std::current_exception());
  }
  std::error_code ignored;
  c->socket().close(ignored);
  c->dead = true;
  if (c->proto && !c->close_seen && s->record)
    s->closes.emplace_back(close_code::abnormal, std::string());
  ++s->ended;
  std::erase(s->conns, c);
  s->notify();
}

// RFC 6455 §7.1.1: after the close handshake the server closes TCP first. Our
// FIN goes out, then we read until the client's FIN so that no unread bytes
// turn our close into a reset that could destroy the response in flight.
asio::awaitable<void> test_server::impl::close_gracefully(std::shared_ptr<impl> s, std::shared_ptr<connection> c) {
  if (c->tls) {
    asio::steady_timer bound(s->ex, tls_shutdown_bound);
    bound.async_wait([c](std::error_code ec) {
      if (!ec) {
        std::error_code ignored;
        c->socket().cancel(ignored);
      }
    });
    co_await c->tls->async_shutdown(use_nothrow); // sends close_notify; errors do not matter here
  }
  if (c->dead)
    co_return;
  asio::steady_timer bound(s->ex, linger_bound);
  bound.async_wait([c](std::error_code ec) {
    if (!ec)
      c->abort();
  });
  std::error_code ignored;
  c->socket().shutdown(tcp::socket::shutdown_send, ignored);
  std::array<char, 4096> sink;
  for (;;) {
    auto [ec, n] = co_await c->socket().async_read_some(asio::buffer(sink), use_nothrow);
    if (ec || c->dead)
      break;
  }
}

} // namespace tether::test
