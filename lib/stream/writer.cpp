// Writing: senders queue frames, the writer (or a lone sender, inline)
// gathers whatever is queued into one write; completions after it.
#include <cstring>

#include "stream_impl.hpp"

namespace tether {

// Wakes the senders whose messages are now on the socket.
void stream::impl::complete_written() {
  while (!send_waits_.empty() && send_waits_.front().seq <= written_seq_) {
    auto w = std::move(send_waits_.front());
    send_waits_.pop_front();
    if (w.callback)
      w.callback({});
    else
      w.done->notify_one();
  }
}

// Frames what is queued into the protocol's output, after the pongs the core
// queued itself: pings first (they may go between fragments of a message), then
// data up to one write batch, then our close frame once every queued message is out.
void stream::impl::fill_output() {
  for (auto& p : pings_) {
    if (p->queued) {
      p->queued = false;
      p->sent = clock::now();
      (void)proto_.send_ping(p->payload);
    }
  }
  if (proto_.close_sent())
    return;
  const std::size_t frag = opts_.fragment_size ? opts_.fragment_size : std::string_view::npos;
  while (!sendq_.empty() && proto_.pending_output().size() < write_batch) {
    auto& m = sendq_.front();
    const auto n = std::min(frag, m.data.size() - m.offset);
    const bool fin = m.offset + n == m.data.size();
    const auto type = m.started ? opcode::continuation : m.type;
    if (n > stream_frame_min && !proto_.extension() && !proto_.begin_frame(type, n, fin, frame_mask_)) {
      m.started = true;
      frame_left_ = n;
      frame_done_ = 0;
      tr_->measure_segments();
      return; // the header ends the output; next_write() appends the payload
    }
    (void)proto_.send_frame(type, m.data.substr(m.offset, n), fin);
    m.started = true;
    m.offset += n;
    if (fin)
      message_framed();
  }
  if (sendq_.empty() && state_ == state::closing)
    (void)proto_.send_close(close_code_, close_reason_);
}

// The front message is framed to its last byte.
void stream::impl::message_framed() {
  framed_seq_ = sendq_.front().seq;
  sendq_bytes_ -= sendq_.front().data.size();
  sendq_.pop_front();
  room_.notify_all(); // room in the queue
}

// Masks the next piece of the open frame's payload onto the write: whole
// TCP segments of payload (transport::send_chunk), after the frame's header
// in the first write.
void stream::impl::append_frame_piece() {
  auto& m = sendq_.front();
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(frame_left_, tr_->send_chunk()));
  const auto at = out_.size();
  out_.resize(at + n);
  auto* dst = reinterpret_cast<std::uint8_t*>(out_.data() + at);
  const auto* src = reinterpret_cast<const std::uint8_t*>(m.data.data() + m.offset);
  if (frame_mask_.masked)
    mask_copy({dst, n}, {src, n}, frame_mask_.key, static_cast<std::size_t>(frame_done_));
  else
    std::memcpy(dst, src, n);
  m.offset += n;
  frame_left_ -= n;
  frame_done_ += n;
  if (frame_left_ == 0 && m.offset == m.data.size())
    message_framed();
}

// Before writing, lets the handlers already queued on the executor run: an
// application answering a burst of incoming messages queues its sends one
// handler at a time, and writing at the first would send the burst one
// message per system call (and the peer would answer one per call too).
// Yields while the queue keeps growing, a few times at most, and only when
// the last write carried several messages (writer_woken): a yield costs a
// pass of the executor (an epoll_wait when nothing else is queued), which a
// lone message answered in lock-step should not pay.
void stream::impl::gather() {
  if (gather_left_ == 0 || failing() || sendq_bytes_ >= write_batch) {
    writer_pass();
    return;
  }
  --gather_left_;
  const auto before = next_seq_;
  asio::post(ex_, [self = shared_from_this(), before] {
    if (self->next_seq_ == before)
      self->writer_pass(); // nothing new was queued during that pass
    else
      self->gather();
  });
}

// What to write next (empty: nothing pending, or the connection failed).
asio::const_buffer stream::impl::next_write() {
  if (failing())
    return {};
  if (frame_left_ == 0) {
    fill_output();
    // The bytes leave the core for the write: the reader may make the core
    // queue a close echo meanwhile, and that must not move what is being sent.
    proto_.take_output(out_);
  } else {
    out_.clear(); // what the core queued meanwhile waits until the frame is out
  }
  if (frame_left_ != 0)
    append_frame_piece();
  writing_framed_ = framed_seq_;
  return asio::buffer(out_.data(), out_.size());
}

// Accounts a completed write; false once the connection failed.
bool stream::impl::wrote(const std::tuple<std::error_code, std::size_t>& result) {
  const auto& [ec, n] = result;
  // Kept for the next batch while batches stay about as large (w3's last
  // piece of a frame is smaller than the others); freed once they are small.
  if (out_.capacity() > std::max(out_keep, 8 * n))
    decltype(out_)().swap(out_);
  else
    out_.clear();
  if (ec) {
    fail(error::connection_lost, "write: " + ec.message());
    return false;
  }
  last_batch_ = writing_framed_ - written_seq_;
  written_seq_ = writing_framed_;
  complete_written();
  return true;
}

// The writer is a state machine driven by wake_writer() and by its writes'
// completions, not a coroutine: a stream with nothing to write keeps nothing
// for it (the coroutine's frame, spawn frame and parked wait cost an idle
// stream 960 bytes: docs/benchmarks.md). Its phases keep the coroutine's
// order: a wake-up is posted; a pass gathers, then writes everything queued,
// each batch offered to the socket first (tr_->try_write) and the rest
// written asynchronously; between the pieces of a large frame the reader gets
// a turn. A wake-up during a pass leaves a token: one more pass after it.

void stream::impl::start_writer() {
  writer_ = writer_phase::busy;
  writer_token_ = false;
  writer_pass();
}

void stream::impl::wake_writer() {
  switch (writer_) {
  case writer_phase::idle:
    writer_ = writer_phase::scheduled;
    asio::post(ex_, [self = shared_from_this(), run = run_] {
      if (self->run_ == run)
        self->writer_woken();
    });
    break;
  case writer_phase::busy:
    writer_token_ = true;
    break;
  case writer_phase::ending: // may be posted more than once: not past this connection's end
    asio::post(ex_, [self = shared_from_this(), run = run_] {
      if (self->run_ == run)
        self->writer_end();
    });
    break;
  case writer_phase::scheduled: // the pass to come sees this work too
  case writer_phase::done:
    break;
  }
}

void stream::impl::writer_woken() {
  if (writer_ != writer_phase::scheduled)
    return; // ended meanwhile
  writer_ = writer_phase::busy;
  writer_idle_ = false;
  if (!writing_ && last_batch_ >= 2) {
    gather_left_ = max_gather_yields;
    gather();
    return;
  }
  writer_pass();
}

// One pass: unless a sender writes inline right now, write whatever is queued.
void stream::impl::writer_pass() {
  if (failing()) {
    writer_end();
    return;
  }
  if (writing_) {
    writer_park(); // that sender wakes the writer if it leaves output behind
    return;
  }
  writing_ = true;
  write_more();
}

void stream::impl::write_more() {
  try {
    for (auto out = next_write(); out.size(); out = next_write()) {
      const auto now = tr_->try_write(out); // most writes end here, without a pass of the executor
      if (now < out.size()) {
        tr_->async_write(out + now, [self = shared_from_this(), now](std::error_code ec, std::size_t n) {
          bool more = false;
          try {
            more = self->wrote({ec, now + n}); // completes senders: their callbacks run here
          } catch (const std::exception& e) {
            self->fail(error::connection_lost, e.what());
          }
          if (more)
            self->write_more();
          else
            self->writes_done();
        });
        return;
      }
      if (!wrote({std::error_code{}, now}))
        break;
      // Between the pieces of a large frame the reader gets a turn: a
      // writer that keeps the socket busy for megabytes while the echo
      // piles up stalls the peer. w3, interleaved runs: medians 4,173
      // against 3,762 msgs/s without the yield (Beast 3,398).
      if (frame_left_ != 0) {
        asio::post(ex_, [self = shared_from_this()] { self->write_more(); });
        return;
      }
    }
  } catch (const std::exception& e) {
    fail(error::connection_lost, e.what());
  }
  writes_done();
}

void stream::impl::writes_done() {
  writing_ = false;
  if (failing() || proto_.close_sent())
    writer_end(); // our close frame is on the wire; nothing may follow it
  else
    writer_park();
}

void stream::impl::writer_park() {
  writer_idle_ = !writing_;
  writer_ = writer_phase::idle;
  release_if_idle();
  if (std::exchange(writer_token_, false))
    wake_writer();
}

// Nothing to write after a large message: its output buffers, ours and the
// core's (they trade places at every write), go back to the allocator, so an
// idle stream does not keep them (bench-idle-memory --after-large). Only with
// the writer parked and no write in flight: a sender's write uses out_.
void stream::impl::release_if_idle() {
  if (writing_ || writer_ != writer_phase::idle || out_.capacity() <= out_keep)
    return;
  decltype(out_)().swap(out_);
  if (!proto_.pending_output().empty())
    return; // the core's holds a frame (a pong, say): it goes out first
  protocol::output_buffer theirs;
  proto_.take_output(theirs); // the core now has an empty one
  if (theirs.capacity() <= out_keep)
    proto_.take_output(theirs); // a small one: hand it back
}

// A sender's write still in flight ends before the writer does (it ends
// with the socket's close at the latest, and wakes the writer).
void stream::impl::writer_end() {
  if (writer_ == writer_phase::done)
    return;
  if (writing_) {
    writer_ = writer_phase::ending;
    return;
  }
  writer_ = writer_phase::done;
  writer_idle_ = false;
  writer_done_ = true;
  --running_;
  wake_reader();
  notify();
}

// `utf8_checked`: text from tether's own codecs, UTF-8 by construction.
// A send, from the public entry point (one frame: a send per message).
// `keep` holds the impl alive; errors go to *out, or are thrown without it.
asio::awaitable<void> stream::impl::send_op([[maybe_unused]] std::shared_ptr<impl> keep, std::string_view data,
                                            message_kind kind, std::error_code* out, bool utf8_checked) {
  if (kind == message_kind::close) {
    co_return report(*this, make_error_code(std::errc::invalid_argument), out);
  }
  // A peer must fail the connection on invalid UTF-8 (RFC 6455 §8.1): refuse it here.
  if (kind == message_kind::text && !utf8_checked && !detail::is_valid_utf8(data)) {
    co_return report(*this, error::invalid_utf8, out);
  }
  // Backpressure: wait for room, unless the queue is empty.
  while (state_ == state::open && !sendq_.empty() &&
         sendq_bytes_ + data.size() > opts_.max_send_queue_bytes) {
    co_await room_.wait();
    auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
    if (cancelled(cs_now)) {
      co_return report(*this, asio::error::operation_aborted, out);
    }
  }
  if (state_ != state::open) {
    co_return report(*this, ended_error(), out);
  }
  const auto seq = ++next_seq_;
  sendq_.push_back({seq, kind == message_kind::text ? opcode::text : opcode::binary, data});
  sendq_bytes_ += data.size();
  if (can_write_inline()) {
    // The first lone send since the reader took input from the socket is
    // offered to the socket at once and, if it takes it all, completes without
    // a pass of the executor: a request answered in lock-step. Any later one
    // (no input since: the application sends on its own, perhaps a burst) and
    // the further pieces of a large frame go through Asio's write, whose
    // completion gives other handlers a turn first.
    bool at_once = std::exchange(fresh_input_, false);
    try {
      write_hold hold(*this);
      for (auto out = next_write(); out.size(); out = next_write()) {
        const std::size_t now = std::exchange(at_once, false) ? tr_->try_write(out) : 0;
        std::tuple<std::error_code, std::size_t> result{std::error_code{}, now};
        if (now < out.size()) {
          // The write cannot be taken back half done: cancelling its sender
          // fails the connection, which ends the write (partial_write_cancelled).
          auto cs = co_await asio::this_coro::cancellation_state;
          if (cs.slot().is_connected())
            cs.slot().assign([weak = weak_from_this()](asio::cancellation_type) {
              if (auto self = weak.lock())
                self->fail(error::partial_write_cancelled);
            });
          auto [ec, n] = co_await tr_->write(out + now); // its completion clears the slot
          result = {ec, now + n};
        }
        if (!wrote(result))
          break;
        if (written_seq_ >= seq)
          break; // this send's message is out; what others queued meanwhile is the writer's
      }
    } catch (const std::exception& e) {
      fail(error::connection_lost, e.what());
    }
    if (failing() || proto_.close_sent() || output_left())
      wake_writer(); // the writer ends now, or writes the rest
    else
      release_if_idle(); // this sender wrote the last of a large message
    if (!failing() && written_seq_ >= seq)
      co_return report(*this, {}, out);
  } else {
    wake_writer();
  }
  // This send's own wake-up (from a pool: making a channel per message costs a
  // lock), registered until the coroutine ends however it ends.
  struct registration {
    impl& s;
    std::uint64_t seq;
    std::unique_ptr<detail::signal> signal;
    registration(impl& owner, std::uint64_t n) : s(owner), seq(n) {
      if (s.spare_signals_.empty()) {
        signal = std::make_unique<detail::signal>(s.ex_);
      } else {
        signal = std::move(s.spare_signals_.back());
        s.spare_signals_.pop_back();
      }
      s.send_waits_.push_back({seq, signal.get(), {}});
    }
    ~registration() {
      s.send_waits_.erase_if([this](const send_wait& w) { return w.seq == seq; });
      if (s.spare_signals_.size() < max_spare_signals)
        s.spare_signals_.push_back(std::move(signal)); // a stale token only costs a re-check
    }
  } registered(*this, seq);
  auto& done = *registered.signal;
  for (;;) {
    if (written_seq_ >= seq)
      co_return report(*this, {}, out);
    if (failing() || writer_done_ || state_ == state::closed) {
      remove_unsent(seq);
      co_return report(*this, ended_error(), out);
    }
    co_await done.wait();
    auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
    if (cancelled(cs_now)) {
      if (written_seq_ >= seq)
        co_return report(*this, {}, out);
      if (remove_unsent(seq)) {
        co_return report(*this, asio::error::operation_aborted, out);
      }
      // Part of it is framed: a half-sent message cannot be taken back.
      fail(error::partial_write_cancelled);
      co_return report(*this, error::partial_write_cancelled, out);
    }
  }
}

// Queues a message without waiting: `done` is called once it is written, or
// with the connection's error. A refused message calls nothing and returns
// the error (invalid_utf8, the connection's end).
std::error_code stream::impl::start_send(std::string_view data, message_kind kind, bool utf8_checked,
                                         std::function<void(std::error_code)> done) {
  if (kind == message_kind::text && !utf8_checked && !detail::is_valid_utf8(data))
    return error::invalid_utf8;
  if (state_ != state::open || writer_done_)
    return ended_error();
  const auto seq = ++next_seq_;
  sendq_.push_back({seq, kind == message_kind::text ? opcode::text : opcode::binary, data});
  sendq_bytes_ += data.size();
  send_waits_.push_back({seq, nullptr, std::move(done)});
  wake_writer();
  return {};
}

// Drops message `seq` if the writer has not taken any of it.
bool stream::impl::remove_unsent(std::uint64_t seq) {
  auto it = std::find_if(sendq_.begin(), sendq_.end(), [seq](const outgoing& o) { return o.seq == seq; });
  if (it == sendq_.end() || it->started)
    return false;
  sendq_bytes_ -= it->data.size();
  sendq_.erase(it);
  room_.notify_all();
  return true;
}

asio::awaitable<void> stream::impl::do_send(std::shared_ptr<impl> self, std::string_view data, message_kind kind,
                                            std::error_code* out, bool utf8_checked) {
  auto& s = *self;
  return s.send_op(std::move(self), data, kind, out, utf8_checked);
}

} // namespace tether
