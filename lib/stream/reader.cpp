// Reading: the reader feeds the protocol core; its events become whole
// messages in the inbox (or chunks for read_some); read() takes them; the
// idle watchdog.
#include <cstring>
#include <utility>

#include <asio/bind_allocator.hpp>

#include "stream_impl.hpp"

namespace tether {

void stream::impl::arm_watchdog() {
  if (opts_.close_timeout.count() <= 0)
    return;
  if (!watchdog_)
    watchdog_ = std::make_unique<asio::steady_timer>(ex_);
  watchdog_->expires_after(opts_.close_timeout);
  watchdog_->async_wait([weak = weak_from_this()](std::error_code ec) {
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
    self->wake_reader();
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

// The reader is a state machine driven by its reads' completions, not a
// coroutine (as the writer, writer.cpp): a pending read holds the stream, and
// a paused reader holds nothing. Each step parses what was read and delivers
// its events, then starts the next read, pauses (the read queue is full) or
// ends; the end (finish()) is a coroutine of its own.

void stream::impl::start_reader() {
  reader_ = reader_phase::running;
  read_size_ = min_read;
  read_loop();
}

// Room in the read queue again, or the connection must end: a paused reader
// goes on (posted: wakers are in the middle of a state change).
void stream::impl::wake_reader() {
  if (reader_ != reader_phase::paused)
    return; // running: it checks the state before it pauses
  reader_ = reader_phase::scheduled;
  asio::post(ex_, [self = shared_from_this(), run = run_] {
    if (self->run_ != run || self->reader_ != reader_phase::scheduled)
      return;
    self->reader_ = reader_phase::running;
    self->read_loop();
  });
}

// Every socket read of the reader: its operation is built in read_memory_.
template <class Handler>
void stream::impl::read_socket(asio::mutable_buffer buf, Handler&& handler) {
  tr_->async_read_some(buf, asio::bind_allocator(detail::op_allocator<void>(read_memory_),
                                                 std::forward<Handler>(handler)));
}

// Between messages (nothing buffered, no message half read) a read asks for
// no more than the traffic needs, whatever read_size_ has grown to: the
// pending read's buffer is all the input memory an idle stream holds. After
// a message that direct reads finished (a large one), min_read; otherwise
// twice what the last read got (w2's batches still arrive in one read), so
// a read that fills it is followed by one twice as large (read_size_ once a
// message is left half read).
inline std::size_t stream::impl::next_read_size() const noexcept {
  if (proto_.buffered_input() != 0 || message_in_progress())
    return read_size_;
  return last_read_direct_ ? min_read : std::min(read_size_, std::max(min_read, 2 * last_read_));
}

void stream::impl::read_loop() {
  try {
    while (auto ev = proto_.next_event())
      on_event(*ev);
    if (failing() || proto_.failed()) {
      end_reader();
      return;
    }
    if (read_paused()) {
      reader_ = reader_phase::paused;
      return;
    }
    if (proto_.direct_payload() >= direct_read_min && message_in_progress()) {
      read_direct();
      return;
    }
    // After the close handshake only EOF matters: whatever else arrives is
    // read into the core's free input space and never committed (a buffer
    // of its own would cost every closing connection an allocation).
    if (proto_.close_received())
      read_size_ = min_read;
    const auto want = next_read_size();
    auto span = proto_.prepare(want);
    auto buf = asio::buffer(span.data(), std::min(span.size(), want));
    read_socket(buf, [self = shared_from_this(), size = buf.size()](std::error_code ec, std::size_t n) {
      self->on_read(ec, n, size);
    });
  } catch (const std::exception& e) {
    reader_failed(e.what());
  }
}

// The connection is lost (unless an earlier error says why it ended): the
// reader ends. set_error() logs, and a log callback that throws is not let
// out: the error is recorded before the log.
void stream::impl::reader_failed(const std::string& why) {
  try {
    if (!error_)
      set_error(error::connection_lost, why);
  } catch (const std::exception&) {
  }
  end_reader();
}

// A socket read of `size` bytes returned `n`: read_size_ doubles after a full
// one and, for reads into the core's buffer, halves after one under a quarter.
inline void stream::impl::count_read(std::size_t n, std::size_t size, bool direct) noexcept {
  last_read_ = n;
  last_read_direct_ = direct;
  if (n == size)
    read_size_ = std::min(read_size_ * 2, max_read);
  else if (!direct && n < size / 4)
    read_size_ = std::max(read_size_ / 2, min_read);
}

void stream::impl::on_read(std::error_code ec, std::size_t n, std::size_t size) {
  count_read(n, size, false);
  if (ec) {
    if (is_eof(ec) && proto_.close_received())
      end_reader(); // clean: the server ended TCP after the close handshake (RFC 6455 §7.1.1)
    else
      reader_failed(ec.message());
    return;
  }
  if (!proto_.close_received()) {
    proto_.commit(n);
    fresh_input_ = true;
  }
  read_loop();
}

// The reader has stopped: finish() lets the writer end and closes the socket.
void stream::impl::end_reader() {
  reader_ = reader_phase::done;
  auto on_end = [weak = weak_from_this()](std::exception_ptr e) {
    if (auto self = weak.lock(); self && e)
      self->fail(error::connection_lost, "internal error");
  };
  asio::co_spawn(ex_, run_finish(shared_from_this()), on_end);
}

asio::awaitable<void> stream::impl::run_finish(std::shared_ptr<impl> self) { co_await self->finish(); }

// Reads the rest of a large frame's payload from the socket straight into the
// message being received, without a copy through the protocol's buffer.
// read_size_ adapts as for other reads.
void stream::impl::read_direct() {
  // Moved out while the read is pending: a read_some() meanwhile finds no
  // partial data to take, rather than a buffer being written into.
  direct_body_ = std::move(inbox_.back().data);
  const auto old = std::exchange(inbox_.back().size, 0);
  const auto remaining = proto_.direct_payload();
  if (const auto limit = opts_.max_message_size; limit == 0 || old + remaining <= limit)
    direct_body_.reserve(old + static_cast<std::size_t>(remaining)); // one allocation for the frame, not doublings
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, read_size_));
  if (direct_body_.size() < old + want)
    direct_body_.resize(old + want); // zeroes only what no earlier message left in this buffer
  read_socket(asio::buffer(direct_body_.data() + old, want),
              [self = shared_from_this(), old, want](std::error_code ec, std::size_t n) {
                self->on_read_direct(ec, n, old, want);
              });
}

void stream::impl::on_read_direct(std::error_code ec, std::size_t n, std::size_t old, std::size_t want) {
  count_read(n, want, true);
  try {
    const auto keep = ec ? 0 : proto_.commit_payload({direct_body_.data() + old, n});
    if (n != 0)
      fresh_input_ = true;
    if (inbox_.empty() || inbox_.back().complete) {
      std::string().swap(direct_body_); // reset() under a pending read: nothing to put back
      end_reader();
      return;
    }
    inbox_.back().data = std::move(direct_body_);
    inbox_.back().size = old + keep;
    inbox_bytes_ += keep;
    if (keep != 0 && partial_readers_ != 0)
      readable_.resume_all();
    if (ec) {
      reader_failed(ec.message());
      return;
    }
  } catch (const std::exception& e) {
    reader_failed(e.what());
    return;
  }
  read_loop();
}

void stream::impl::arm_watchdog_if_idle() {
  if (!watchdog_ || watchdog_->expiry() <= clock::now()) // not already bounding a close handshake
    arm_watchdog();
}

// Whether the caller's old buffer, handed back by a read of a `delivered`-byte
// message, is kept for the next messages (stream_impl.hpp, large_spare).
inline bool stream::impl::keep_spare(const std::string& buf, std::size_t delivered) const noexcept {
  if (spare_.size() >= max_spare_buffers)
    return false;
  if (buf.capacity() <= large_spare)
    return true;
  if (delivered <= large_spare)
    return false; // messages are small again
  for (const auto& s : spare_)
    if (s.capacity() > large_spare)
      return false; // one large one is enough while they are large
  return true;
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
        if (keep_spare(f.data, out.size))
          spare_.push_back(std::move(f.data));
        inbox_.pop_front();
      }
      wake_reader();
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
