// The heartbeat and ping(): a ping per interval, the pong deadline, round trips.
#include "handler_impl.hpp"

namespace tether {

// A pong arrived (the heartbeat's or ping()'s): the status says when, and the round trip.
void handler::impl::record_pong(std::chrono::nanoseconds rtt) {
  update_status([&](tether::status& st) {
    st.last_pong = epoch_ms();
    st.rtt_ms = std::chrono::duration_cast<std::chrono::milliseconds>(rtt).count();
  });
}

asio::awaitable<void> handler::impl::heartbeat(std::shared_ptr<impl> self, std::shared_ptr<stream> ws) {
  auto& s = *self;
  asio::steady_timer t(s.strand_);
  for (;;) {
    if (s.opts_.ping_interval.count() <= 0)
      t.expires_at(asio::steady_timer::time_point::max());
    else
      t.expires_after(s.opts_.ping_interval);
    auto [tec] = co_await t.async_wait(use_nothrow);
    if (tec)
      co_return; // cancelled: another loop ended the connection
    if (s.reader_paused_)
      continue; // a slow handler must not look like a dead server
    const auto sent = steady::now();
    s.update_status([](tether::status& st) { st.last_ping = epoch_ms(); });
    std::error_code ec;
    const auto rtt = co_await ws->ping({}, s.opts_.pong_timeout, ec);
    if (!ec) {
      s.record_pong(rtt);
      continue;
    }
    if (ec == error::pong_timeout) {
      if (s.last_frame_ > sent || s.reader_paused_)
        continue; // other frames arrived: the connection is alive
      s.end_connection(error::dead_connection, {});
      co_return;
    }
    if (ec == asio::error::operation_aborted)
      co_return;
    if (!s.conn_outcome_.error)
      s.conn_outcome_.error = ec;
    co_return;
  }
}

asio::awaitable<void> handler::impl::do_ping(std::shared_ptr<impl> self, std::string payload,
                                             std::shared_ptr<std::chrono::nanoseconds> rtt) {
  auto& s = *self;
  if (s.stopping() || s.state_ == connection_state::failed || s.state_ == connection_state::closed)
    throw std::system_error(error::handler_closed);
  auto ws = s.ws_;
  if (s.state_ != connection_state::open || !ws)
    throw std::system_error(asio::error::not_connected);
  const auto timeout = s.opts_.pong_timeout.count() > 0 ? s.opts_.pong_timeout : std::chrono::milliseconds(10000);
  const auto got = co_await ws->ping(payload, timeout);
  *rtt = got;
  s.record_pong(got);
}

asio::awaitable<std::chrono::nanoseconds> handler::impl::ping_op(std::shared_ptr<impl> self, std::string payload,
                                                                 std::error_code* ec) {
  auto rtt = std::make_shared<std::chrono::nanoseconds>(0);
  auto op = on_strand(self, do_ping(self, std::move(payload), rtt));
  if (ec)
    co_await into(std::move(op), *ec);
  else
    co_await std::move(op);
  co_return *rtt;
}

} // namespace tether
