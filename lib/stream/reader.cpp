// Reading: the reader coroutine feeds the protocol core; its events become
// whole messages in the inbox (or chunks for read_some); read() takes them;
// the idle watchdog.
#include <cstring>
#include <utility>

#include "stream_impl.hpp"

namespace tether {

void stream::impl::arm_watchdog() {
  if (opts_.close_timeout.count() <= 0)
    return;
  watchdog_.expires_after(opts_.close_timeout);
  watchdog_.async_wait([weak = weak_from_this()](std::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->state_ == state::closed)
      return;
    self->log(log_level::warning, "close handshake timed out; closing the socket");
    if (!self->proto_.close_received())
      self->set_error(error::close_timeout);
    self->state_ = state::failing;
    if (self->tr_)
      self->tr_->close();
    self->wake_writer();
    self->reader_wake_.notify_one();
    self->notify();
  });
}

void stream::impl::on_event(const event& ev) {
  switch (ev.what) {
  case event::kind::message_begin: {
    std::string buf;
    if (!spare_.empty()) {
      buf = std::move(spare_.back());
      spare_.pop_back();
    }
    inbox_.push_back({ev.type == opcode::text ? message_kind::text : message_kind::binary, std::move(buf), false, 0});
    break;
  }
  case event::kind::data: {
    auto& m = inbox_.back();
    // Over a recycled buffer's old bytes where it is long enough: shrinking it
    // would make read_direct() zero the rest of it again (1 MiB per message in w3).
    if (m.data.size() >= m.size + ev.data.size()) {
      std::memcpy(m.data.data() + m.size, ev.data.data(), ev.data.size());
    } else {
      m.data.resize(m.size); // drops a recycled tail, writes nothing
      m.data.append(ev.data);
    }
    m.size += ev.data.size();
    inbox_bytes_ += ev.data.size();
    if (partial_readers_ != 0)
      readable_.resume_all(); // read_some() callers take partial data (last: they may run now)
    break;
  }
  case event::kind::message_end:
    inbox_.back().complete = true;
    readable_.resume_all(); // last: the reading coroutine may run right here
    break;
  case event::kind::ping:
    wake_writer(); // the core queued the pong (and bounds a backlog of them)
    break;
  case event::kind::pong:
    for (auto& p : pings_) {
      if (!p->queued && !p->answered && p->payload == ev.data) {
        p->answered = true;
        p->rtt = clock::now() - p->sent;
        p->timer.cancel();
        break;
      }
    }
    break;
  case event::kind::close:
    peer_close_code_ = ev.code;
    peer_close_reason_ = std::string(ev.data);
    for (auto& p : pings_) // no pong follows a close: fail them now
      p->timer.cancel();
    if (state_ == state::open) {
      state_ = state::peer_closing; // the core queued the echo; the writer sends it
      log(log_level::info, "peer closed with " + std::to_string(ev.code));
      arm_watchdog();
    }
    // An unfinished message can never complete now.
    if (!inbox_.empty() && !inbox_.back().complete) {
      inbox_bytes_ -= inbox_.back().size;
      inbox_.pop_back();
    }
    wake_writer();
    notify();
    break;
  case event::kind::error:
    // The core queued a close frame with the RFC's code; the writer flushes it,
    // then the connection ends, bounded by the watchdog.
    // The RFC's code for the error: the server's violation, or a message over
    // our own limits (1009). "Sent" would be wrong after a close of our own.
    set_error(ev.error, "close code " + std::to_string(ev.code));
    if (!inbox_.empty() && !inbox_.back().complete) {
      inbox_bytes_ -= inbox_.back().size;
      inbox_.pop_back();
    }
    if (state_ == state::open || state_ == state::closing)
      state_ = state::peer_closing; // our close code is queued: it answers the violation
    arm_watchdog();
    wake_writer();
    notify();
    break;
  }
}

asio::awaitable<void> stream::impl::run_reader(std::shared_ptr<impl> self) {
  auto& s = *self;
  std::size_t read_size = min_read;
  try {
    for (;;) {
      while (auto ev = s.proto_.next_event())
        s.on_event(*ev);
      if (s.failing() || s.proto_.failed())
        break;
      while (s.read_paused() && !s.failing())
        co_await s.reader_wake_.wait();
      if (s.failing())
        break;
      if (s.proto_.direct_payload() >= direct_read_min && !s.inbox_.empty() && !s.inbox_.back().complete) {
        const bool read = co_await s.read_direct(read_size);
        if (!read)
          break;
        continue;
      }
      // After the close handshake only EOF matters: whatever else arrives is
      // read into the core's free input space and never committed (a buffer
      // of its own would cost every closing connection an allocation).
      if (s.proto_.close_received())
        read_size = min_read;
      auto span = s.proto_.prepare(read_size);
      auto buf = asio::buffer(span.data(), std::min(span.size(), read_size));
      auto [ec, n] = co_await s.tr_->read_some(buf);
      if (n == buf.size())
        read_size = std::min(read_size * 2, max_read);
      else if (n < buf.size() / 4)
        read_size = std::max(read_size / 2, min_read);
      if (ec) {
        if (is_eof(ec) && s.proto_.close_received()) {
          // Clean: the server ended TCP after the close handshake (RFC 6455 §7.1.1).
        } else if (!s.error_) {
          s.set_error(error::connection_lost, ec.message());
        }
        break;
      }
      if (!s.proto_.close_received()) {
        s.proto_.commit(n);
        s.fresh_input_ = true;
      }
    }
  } catch (const std::exception& e) {
    s.set_error(error::connection_lost, e.what());
  }
  co_await s.finish();
}

// Reads the rest of a large frame's payload from the socket straight into the
// message being received, without a copy through the protocol's buffer.
// read_size adapts as for other reads. False: the connection ended.
asio::awaitable<bool> stream::impl::read_direct(std::size_t& read_size) {
  // Moved out while the read is pending: a read_some() meanwhile finds no
  // partial data to take, rather than a buffer being written into.
  std::string body = std::move(inbox_.back().data);
  const auto old = std::exchange(inbox_.back().size, 0);
  const auto remaining = proto_.direct_payload();
  if (const auto limit = opts_.max_message_size; limit == 0 || old + remaining <= limit)
    body.reserve(old + static_cast<std::size_t>(remaining)); // one allocation for the frame, not doublings
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, read_size));
  if (body.size() < old + want)
    body.resize(old + want); // zeroes only what no earlier message left in this buffer
  auto [ec, n] = co_await tr_->read_some(asio::buffer(body.data() + old, want));
  if (n == want)
    read_size = std::min(read_size * 2, max_read);
  const auto keep = ec ? 0 : proto_.commit_payload({body.data() + old, n});
  if (n != 0)
    fresh_input_ = true;
  if (inbox_.empty() || inbox_.back().complete)
    co_return false; // reset() under a pending read: nothing to put back
  inbox_.back().data = std::move(body);
  inbox_.back().size = old + keep;
  inbox_bytes_ += keep;
  if (keep != 0 && partial_readers_ != 0)
    readable_.resume_all();
  if (ec && !error_)
    set_error(error::connection_lost, ec.message());
  co_return !ec;
}

void stream::impl::arm_watchdog_if_idle() {
  if (watchdog_.expiry() <= clock::now()) // not already bounding a close handshake
    arm_watchdog();
}

// What a read takes without waiting: a message (or, with `some`, part of
// one), the peer's close, or the connection's end in `ec`. False: wait.
bool stream::impl::take(std::string& buf, bool some, read_result& out, std::error_code& ec) {
  if (!inbox_.empty()) {
    auto& f = inbox_.front();
    if (f.complete || (some && f.size != 0)) {
      out.kind = f.kind;
      out.size = f.size;
      out.message_end = f.complete;
      f.data.resize(f.size); // a partial message's recycled tail stays ours
      buf.swap(f.data); // hand over the message; keep the caller's old buffer for reuse, its size too
      f.size = 0;
      inbox_bytes_ -= out.size;
      if (f.complete) {
        if (spare_.size() < max_spare_buffers)
          spare_.push_back(std::move(f.data));
        inbox_.pop_front();
      }
      reader_wake_.notify_one();
      return true;
    }
  }
  if (proto_.close_received() && !close_delivered_) {
    close_delivered_ = true;
    out.kind = message_kind::close;
    out.close_code = peer_close_code_;
    out.close_reason = peer_close_reason_;
    return true;
  }
  if (state_ == state::closed || failing() || (error_ && inbox_.empty()) || close_delivered_ ||
      (ending() && running_ == 0)) {
    ec = ended_error();
    return true;
  }
  return false;
}

// One coroutine for the whole read (no inner frame: a read per message).
asio::awaitable<read_result> stream::impl::do_read(std::shared_ptr<impl> self, std::string& buf, std::error_code* out,
                                                   bool some) {
  auto& s = *self;
  std::error_code ec;
  read_result r;
  while (!s.take(buf, some, r, ec)) {
    s.partial_readers_ += some;
    co_await s.readable_.wait();
    s.partial_readers_ -= some;
    auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
    if (cancelled(cs_now)) {
      ec = asio::error::operation_aborted;
      break;
    }
  }
  report(s, ec, out);
  co_return ec ? read_result{} : r;
}

} // namespace tether
