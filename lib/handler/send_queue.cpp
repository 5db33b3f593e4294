// The handler's one ordered send queue and its writer: the bound and the
// overflow policies, TTLs, rate-limit pacing, batching, the hand-off to the
// stream and each send's completion.
#include "handler_impl.hpp"

#include "utf8.hpp"

namespace tether {

void handler::impl::set_queued() {
  update_status([n = queue_.size(), bytes = queued_bytes_](tether::status& s) {
    s.queued = n;
    s.queued_bytes = bytes;
  });
}

// A queued message withdrawn unwritten (overflow policy, TTL): counted,
// reported to on_drop, then its send fails with `reason`.
void handler::impl::drop(const std::shared_ptr<item>& it, std::error_code reason) {
  if (it->done)
    return;
  update_status([](tether::status& st) { ++st.dropped; });
  if (opts_.on_drop) {
    try {
      opts_.on_drop(dropped_message{it->payload, it->binary, reason});
    } catch (const std::exception& e) {
      report(error::callback_failed, std::string("on_drop threw: ") + e.what());
    }
  }
  complete(it, reason);
}

void handler::impl::complete(const std::shared_ptr<item>& it, std::error_code ec) {
  if (it->done)
    return;
  it->done = true;
  it->ec = ec;
  it->signal.notify_one();
}

// Queued messages past their send_timeout fail, through one timer armed at the
// earliest deadline. Deadlines grow with the queue, so a send re-arms it only
// when it is the earliest: no timer system call per message.
void handler::impl::arm_deadline(steady::time_point t) {
  if (t >= deadline_armed_)
    return;
  deadline_armed_ = t;
  deadline_timer_.expires_at(t);
  deadline_timer_.async_wait([weak = weak_from_this()](std::error_code ec) {
    auto self = weak.lock();
    if (ec || !self)
      return;
    self->deadline_armed_ = steady::time_point::max();
    self->expire_queue();
  });
}

void handler::impl::expire_queue() {
  const auto now = steady::now();
  auto next = steady::time_point::max();
  std::vector<std::shared_ptr<item>> expired; // reported after the loop: on_drop may send
  for (auto q = queue_.begin(); q != queue_.end();) {
    if ((*q)->deadline <= now) {
      queued_bytes_ -= (*q)->payload.size();
      expired.push_back(std::move(*q));
      q = queue_.erase(q);
    } else {
      next = std::min(next, (*q)->deadline);
      ++q;
    }
  }
  for (auto& it : expired)
    drop(it, error::send_timeout);
  set_queued();
  notify(); // room in the queue
  if (next != steady::time_point::max())
    arm_deadline(next);
}

void handler::impl::fail_queue(std::error_code ec) {
  for (auto& it : queue_)
    complete(it, ec);
  queue_.clear();
  queued_bytes_ = 0;
  requests_.fail_all(ec); // the handler is ending: requests awaiting replies too
  set_queued();
  // No queued message, no deadline: a pending timer would keep the
  // io_context's run() from returning after close().
  deadline_timer_.cancel();
  deadline_armed_ = steady::time_point::max();
  notify();
}

// Hands every message that may flow to the stream without waiting for each
// one's write (the stream gathers them into one write), as long as the
// stream's queue is under max_send_queue_bytes; on_written completes them.
asio::awaitable<void> handler::impl::writer(std::shared_ptr<impl> self, std::shared_ptr<stream> ws) {
  auto& s = *self;
  // Once cancelled (another loop ended the connection) this coroutine must not
  // await again: Asio would throw.
  auto cs = co_await asio::this_coro::cancellation_state;
  const auto id = s.ctx_.connection_id;
  for (;;) {
    while (!s.queue_.empty() && (s.flowing() || s.queue_.front()->priority) && !s.stopping() && !cancelled(cs) &&
           !s.conn_outcome_.error &&
           (s.in_flight_.empty() ||
            detail::stream_access::queued_bytes(*ws) < s.opts_.stream.max_send_queue_bytes)) {
      auto it = s.queue_.front();
      const auto now = steady::now();
      const bool batching = s.batching() && !it->binary;
      if (batching && now < it->deadline && s.queue_.size() < s.opts_.batch.max_count &&
          s.queued_bytes_ < s.opts_.batch.max_bytes) {
        const auto due = later(it->enqueued, s.opts_.batch.max_delay);
        if (now < due) {
          s.wake_writer_at(due); // let others join it, at most max_delay
          break;
        }
      }
      if (now < it->deadline && !s.paced(it, now))
        break; // the rate limit: writer_timer_ wakes this loop when it may go
      s.queue_.pop_front();
      s.queued_bytes_ -= it->payload.size();
      s.set_queued();
      s.notify(); // room in the queue
      if (now >= it->deadline) {
        s.drop(it, error::send_timeout); // its TTL passed: never onto this connection
        continue;
      }
      if (batching) {
        auto batch = s.take_batch(it, now);
        if (batch.size() > 1) {
          s.hand_batch(self, *ws, std::move(batch), id);
          continue;
        }
      }
      if (!s.utf8_ok(*it)) {
        s.complete(it, error::invalid_utf8); // a user codec's text: only this send fails
        continue;
      }
      it->handed = true;
      s.in_flight_.push_back(it);
      const auto kind = it->binary ? message_kind::binary : message_kind::text;
      auto on_written = [self, it, id](std::error_code ec) { self->written(it, ec, id); };
      // Checked above: a refusal is the connection's end (whose error may be
      // invalid_utf8 too, when the peer sent bad text).
      if (auto ec = detail::stream_access::start_send(*ws, it->payload, kind, true, std::move(on_written))) {
        s.in_flight_.pop_back();
        it->handed = false; // refused: no byte of it went out
        s.requeue({it}); // the connection ended under it: it goes first on the next one
        if (!s.conn_outcome_.error)
          s.conn_outcome_.error = ec;
      }
    }
    if (cancelled(cs) || s.conn_outcome_.error)
      co_return; // a write failed, or another loop ended the connection
    co_await s.changed_.wait();
    if (cancelled(cs))
      co_return;
  }
}

// Queues `it`: a priority one (an on_open step's, a renewal) after the
// priority ones already queued, ahead of the rest; others at the back.
void handler::impl::enqueue(const std::shared_ptr<item>& it) {
  if (it->priority) {
    auto pos = std::find_if(queue_.begin(), queue_.end(), [](const auto& q) { return !q->priority; });
    queue_.insert(pos, it);
  } else {
    queue_.push_back(it);
  }
  queued_bytes_ += it->payload.size();
  set_queued();
  arm_deadline(it->deadline);
  notify();
}

// Puts messages the stream refused (its connection had ended, no byte of
// them written) back at the front of the queue, in order: they are neither
// lost nor failed, and go first once a connection is open again.
void handler::impl::requeue(const std::vector<std::shared_ptr<item>>& items) {
  queue_.insert(queue_.begin(), items.begin(), items.end());
  for (const auto& x : items)
    queued_bytes_ += x->payload.size();
  set_queued();
}

// `first` and the text envelopes queued behind it that fit the batch's
// limits and may go now (each takes its own rate-limit token).
auto handler::impl::take_batch(std::shared_ptr<item> first,
                               steady::time_point now) -> std::vector<std::shared_ptr<item>> {
  std::vector<std::shared_ptr<item>> batch{std::move(first)};
  std::size_t bytes = batch.front()->payload.size() + 2; // the brackets
  while (batch.size() < opts_.batch.max_count && !queue_.empty()) {
    auto next = queue_.front();
    if (next->binary || !(flowing() || next->priority) || bytes + next->payload.size() + 1 > opts_.batch.max_bytes)
      break;
    if (now < next->deadline && !paced(next, now))
      break;
    queue_.pop_front();
    queued_bytes_ -= next->payload.size();
    if (now >= next->deadline) {
      drop(next, error::send_timeout);
      continue;
    }
    bytes += next->payload.size() + 1;
    batch.push_back(std::move(next));
  }
  set_queued();
  return batch;
}

// Hands a batch to the stream as one text frame, a JSON array of the
// envelopes; each completes when the frame is written.
void handler::impl::hand_batch(const std::shared_ptr<impl>& self, stream& ws, std::vector<std::shared_ptr<item>> batch,
                               std::uint64_t id) {
  auto frame = std::make_shared<std::string>();
  std::size_t size = 1 + batch.size();
  for (const auto& x : batch)
    size += x->payload.size();
  frame->reserve(size);
  frame->push_back('[');
  for (const auto& x : batch) {
    if (frame->size() > 1)
      frame->push_back(',');
    frame->append(x->payload);
    x->handed = true;
    in_flight_.push_back(x);
  }
  frame->push_back(']');
  auto on_written = [self, batch, frame, id](std::error_code ec) {
    if (!ec)
      self->update_status([&](tether::status& st) {
        ++st.messages_sent; // one WebSocket message
        st.bytes_sent += frame->size();
        ++st.batches;
      });
    for (const auto& x : batch)
      self->written(x, ec, id, true);
  };
  if (auto ec = detail::stream_access::start_send(ws, *frame, message_kind::text, true, std::move(on_written))) {
    for (const auto& x : batch) {
      in_flight_.erase_if([&x](const std::shared_ptr<item>& y) { return y == x; });
      x->handed = false;
    }
    requeue(batch); // the connection ended: no byte went out, they go first on the next one
    if (!conn_outcome_.error)
      conn_outcome_.error = ec;
  }
}

// True when `it` may be written now under the rate limits (and takes its
// token); otherwise arms pace_timer_ for when it may.
bool handler::impl::paced(const std::shared_ptr<item>& it, steady::time_point now) {
  if (!pacer_.active())
    return true;
  const auto when = pacer_.when(it->bucket, now);
  if (when <= now) {
    pacer_.take(it->bucket, now);
    return true;
  }
  if (!std::exchange(it->throttled, true))
    update_status([](tether::status& st) { ++st.throttled; });
  wake_writer_at(when);
  return false;
}

void handler::impl::wake_writer_at(steady::time_point when) {
  if (when >= writer_wake_)
    return; // armed sooner already
  writer_wake_ = when;
  writer_timer_.expires_at(when);
  writer_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
    if (ec)
      return; // re-armed sooner, or shut down
    self->writer_wake_ = steady::time_point::max();
    self->notify();
  });
}

// The stream wrote `it` (or never will: ec). Messages are written in order, so
// it is the oldest in flight unless the connection already ended.
// `in_batch`: one envelope of a batch frame, which hand_batch counts as one message.
void handler::impl::written(const std::shared_ptr<item>& it, std::error_code ec, std::uint64_t connection,
                            bool in_batch, bool wake) {
  if (!in_flight_.empty() && in_flight_.front() == it)
    in_flight_.pop_front();
  else
    in_flight_.erase_if([&it](const std::shared_ptr<item>& x) { return x == it; });
  const bool counted = !it->done && !ec && !in_batch;
  if (auto r = it->request.lock(); r && !ec)
    r->written_on = connection;
  complete(it, ec);
  if (counted) {
    update_status([&](tether::status& st) {
      ++st.messages_sent;
      st.bytes_sent += it->payload.size();
    });
  }
  if (ec && connection == ctx_.connection_id && ctx_.connected && !conn_outcome_.error &&
      ec != asio::error::operation_aborted)
    conn_outcome_.error = ec;
  if (wake)
    notify(); // the writer may hand over more, or must end the connection
}

// Text from a user's codec must be UTF-8 (RFC 6455 §8.1); tether's own codecs
// write it by construction. Checked here, before the stream, so that an
// invalid_utf8 from the stream can only be the connection's error.
bool handler::impl::utf8_ok(const item& it) const {
  return it.binary || codec_checks_utf8_ || detail::is_valid_utf8(it.payload);
}

// Nothing queued or in flight, the queue flows, and nothing to pace or batch:
// a message sent now would be handed to the stream at once and written alone.
bool handler::impl::may_write_directly() const {
  return flowing() && ctx_.connected && ws_ && !conn_outcome_.error && queue_.empty() && in_flight_.empty() &&
         !batching() && !pacer_.active() && detail::stream_access::idle_and_open(*ws_);
}

asio::awaitable<void> handler::impl::do_send(std::shared_ptr<impl> self, std::shared_ptr<item> it) {
  auto& s = *self;
  if (s.stopping() || s.state_ == connection_state::failed || s.state_ == connection_state::closed)
    throw std::system_error(error::handler_closed);
  it->enqueued = steady::now();
  it->deadline = std::min(later(it->enqueued, it->ttl ? *it->ttl : s.opts_.send_timeout), it->cap);
  // The offline queue is bounded.
  while (s.queue_.size() >= s.opts_.offline_queue_size) {
    if (s.opts_.offline == offline_policy::fail)
      throw std::system_error(error::queue_full);
    if (s.queue_.empty()) // offline_queue_size 0: nothing may wait
      throw std::system_error(error::queue_full);
    if (s.opts_.offline == offline_policy::drop_oldest || s.opts_.offline == offline_policy::drop_newest) {
      const bool oldest = s.opts_.offline == offline_policy::drop_oldest;
      auto victim = oldest ? s.queue_.front() : s.queue_.back();
      if (oldest)
        s.queue_.pop_front();
      else
        s.queue_.pop_back();
      s.queued_bytes_ -= victim->payload.size();
      s.drop(victim, error::queue_full);
      continue;
    }
    s.arm_deadline(it->deadline); // its expiry wakes this wait (expire_queue notifies)
    co_await s.changed_.wait();
    auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
    if (cancelled(cs_now))
      throw std::system_error(asio::error::operation_aborted);
    if (s.stopping() || s.state_ == connection_state::failed)
      throw std::system_error(s.last_error_ ? s.last_error_ : make_error_code(error::handler_closed));
    if (steady::now() >= it->deadline)
      throw std::system_error(error::send_timeout);
  }
  // Over the rate at the call: refused (fail_when_rate_limited), once it is
  // known to be queued, so a send refused for room takes no token.
  if (s.opts_.fail_when_rate_limited && !it->admitted && s.admit_.active()) {
    const auto now = steady::now();
    if (s.admit_.when(it->bucket, now) > now) {
      s.update_status([](tether::status& st) { ++st.rate_limited; });
      throw std::system_error(error::rate_limited);
    }
    s.admit_.take(it->bucket, now);
  }
  // A send from an on_open step goes ahead of the offline queue (after earlier
  // such sends); everything else queues at the back.
  auto me = co_await asio::this_coro::cancellation_state;
  it->priority = s.opening_slot_.is_connected() && me.slot() == s.opening_slot_;
  if (!me.slot().is_connected() && s.may_write_directly()) {
    // Lock-step: the sender writes its message itself, through the stream's
    // send (which completes at once when the socket takes it all), instead
    // of waking the writer and being woken by the write's completion: two
    // passes through the executor fewer per message. Only for a sender that
    // cannot be cancelled: the write may not be taken back half done.
    if (!s.utf8_ok(*it))
      throw std::system_error(error::invalid_utf8); // a user codec's text: only this send fails
    const auto ws = s.ws_;
    const auto id = s.ctx_.connection_id;
    it->handed = true;
    s.in_flight_.push_back(it);
    std::error_code ec; // the stream takes it (checked, open, idle): an error is the connection's
    if (it->binary)
      co_await ws->send(it->payload, message_kind::binary, ec);
    else
      co_await detail::stream_access::send_checked_text(*ws, it->payload, ec);
    // The writer needs waking only for what queued meanwhile, or to end the connection.
    s.written(it, ec, id, false, ec || !s.queue_.empty());
    if (it->ec)
      throw std::system_error(it->ec);
    co_return;
  }
  s.enqueue(it);
  for (;;) {
    co_await it->signal.wait();
    if (it->done) {
      if (it->ec)
        throw std::system_error(it->ec);
      co_return;
    }
    auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
    if (!cancelled(cs_now))
      continue; // a stale wake-up
    if (it->handed) {
      // Being written: it completes with the write (or the connection's end).
      it->caller_cancelled = true;
      co_await asio::this_coro::reset_cancellation_state();
      continue;
    }
    s.queue_.erase_if([&it](const std::shared_ptr<item>& x) { return x == it; });
    s.queued_bytes_ -= it->payload.size();
    s.set_queued();
    s.notify();
    throw std::system_error(asio::error::operation_aborted);
  }
}

} // namespace tether
