// Control: ping() and its pong deadline, the close handshake, abort.
#include "stream_impl.hpp"

namespace tether {

// Runs once the reader stopped: lets the writer finish (bounded), ends TCP/TLS
// and marks the stream closed.
asio::awaitable<void> stream::impl::finish() {
  const bool clean = !failing() && proto_.close_received() && !error_;
  if (!writer_done_) {
    if (!clean && !proto_.close_sent())
      state_ = state::failing;
    arm_watchdog_if_idle();
    wake_writer();
    while (!writer_done_)
      co_await changed_.wait();
  }
  if (clean && tr_->is_open())
    co_await tr_->shutdown(std::min<std::chrono::milliseconds>(opts_.close_timeout, std::chrono::seconds(1)));
  else
    tr_->close();
  if (!error_ && !proto_.close_received())
    set_error(error::connection_lost);
  if (watchdog_)
    watchdog_->cancel();
  for (auto& p : pings_)
    p->timer.cancel();
  state_ = state::closed;
  --running_;
  log(log_level::info, clean ? "closed" : "closed: " + message_of_error());
  notify();
}

asio::awaitable<std::chrono::nanoseconds> stream::impl::ping_op(std::string_view payload,
                                                                std::chrono::milliseconds timeout,
                                                                std::error_code& ec) {
  if (payload.size() > 125) {
    ec = error::control_payload_too_big;
    co_return std::chrono::nanoseconds{};
  }
  if (state_ != state::open) {
    ec = ended_error();
    co_return std::chrono::nanoseconds{};
  }
  auto p = std::make_shared<ping_wait>(ex_);
  p->payload = std::string(payload);
  p->timer.expires_after(timeout);
  pings_.push_back(p);
  wake_writer();
  auto [tec] = co_await p->timer.async_wait(use_nothrow);
  pings_.erase_if([&p](const std::shared_ptr<ping_wait>& q) { return q == p; });
  if (p->answered)
    co_return p->rtt;
  auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
  if (cancelled(cs_now))
    ec = asio::error::operation_aborted;
  else if (!tec)
    ec = error::pong_timeout;
  else if (proto_.close_received() && !error_)
    ec = error::server_closed; // the peer's close came first
  else
    ec = ended_error();
  co_return std::chrono::nanoseconds{};
}

// Validates and starts a close; true when there is an ending to wait for.
bool stream::impl::start_close(unsigned code, std::string_view reason, std::error_code& ec) {
  // Bad arguments fail in every state, before anything changes.
  if ((ec = check_close(code, reason)))
    return false;
  if (state_ == state::closed && running_ == 0)
    return false;
  if (state_ == state::connecting) {
    abort_now();
    return false;
  }
  if (state_ == state::open) {
    state_ = state::closing;
    close_code_ = static_cast<std::uint16_t>(code);
    close_reason_ = std::string(reason);
    log(log_level::info, "closing with " + std::to_string(code));
    arm_watchdog();
    wake_writer();
  }
  return true;
}

void stream::impl::abort_now() noexcept {
  if (state_ == state::closed && running_ == 0)
    return;
  fail(asio::error::operation_aborted, "aborted");
}

asio::awaitable<std::chrono::nanoseconds> stream::impl::do_ping(std::shared_ptr<impl> self, std::string payload,
                                                                std::chrono::milliseconds timeout,
                                                                std::error_code* out) {
  std::error_code ec;
  auto rtt = co_await self->ping_op(payload, timeout, ec);
  report(*self, ec, out);
  co_return rtt;
}

asio::awaitable<void> stream::impl::do_close(std::shared_ptr<impl> self, unsigned code, std::string reason,
                                             std::error_code* out) {
  std::error_code ec;
  if (self->start_close(code, reason, ec)) {
    while (self->running_ > 0 || self->state_ != state::closed) {
      co_await self->changed_.wait();
      auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
      if (cancelled(cs_now)) {
        self->abort_now();
        ec = asio::error::operation_aborted;
        break;
      }
    }
    if (!ec && self->error_ == error::close_timeout) // the watchdog's: no close from the peer in time
      ec = error::close_timeout;
  }
  report(*self, ec, out);
}

} // namespace tether
