// The handler's supervisor: connects (following the retry policy), runs each
// connection (on_open steps and renewals beside the reader, writer and
// heartbeat), classifies how it ended, backs off and reconnects.
#include "handler_impl.hpp"

namespace tether {

retry_decision handler::impl::decide(const outcome& o) {
  auto d = classify(o, opts_.rules);
  if (opts_.classifier)
    d = opts_.classifier(o, d);
  return d;
}

asio::awaitable<void> handler::impl::supervise(std::shared_ptr<impl> self) {
  auto& s = *self;
  s.failures_ = 0;
  bool ever_open = false;
  while (!s.stopping()) {
    s.set_state(ever_open || s.failures_ ? connection_state::reconnecting : connection_state::connecting,
                s.failures_);
    outcome o;
    std::string text;    // why it ended, as people read it
    std::string context; // the same without the error's own message, for connect()'s exception
    auto ws = co_await open_attempt(self, o, context);
    if (ws) {
      if (s.stopping())
        break;
      if (!o.error) {
        o = co_await run_connection(self, ws, ever_open);
        ever_open = true;
        if (s.stopping())
          break; // our own close: last_error stays as it was
        text = s.conn_text_;
      }
    }
    if (text.empty())
      text = context.empty() ? o.error.message() : context + ": " + o.error.message();
    const std::error_code why = o.error                 ? o.error
                                : o.close_code          ? make_error_code(error::server_closed)
                                                        : make_error_code(error::connection_lost);
    if (o.close_code && !o.error)
      context = text; // "server closed with ..." is the whole story
    auto d = s.decide(o);
    ++s.failures_;
    s.last_error_ = why;
    s.failure_what_ = "attempt " + std::to_string(s.failures_) + (context.empty() ? "" : ": " + context);
    const bool limit = s.opts_.max_retries >= 0 && s.failures_ > static_cast<unsigned>(s.opts_.max_retries);
    if (d.what == retry_decision::stop || !s.opts_.reconnect || limit) {
      const auto rule = d.what == retry_decision::stop ? d.reason
                        : !s.opts_.reconnect           ? std::string("reconnect is off")
                                                       : std::string("max_retries reached");
      s.set_state(connection_state::failed, s.failures_, {}, why, text, rule);
      s.fail_queue(why);
      break;
    }
    const auto delay =
        d.what == retry_decision::retry_after ? d.delay : backoff_delay(s.policy(), s.failures_,
                                                                        detail::jitter_draw(s.rng_));
    s.set_state(connection_state::reconnecting, s.failures_, delay, why, text, d.reason);
    s.backoff_timer_.expires_after(delay);
    co_await s.backoff_timer_.async_wait(use_nothrow);
  }
  s.ws_.reset();
  s.supervisor_ended();
  if (s.life_ == life::closed)
    s.set_state(connection_state::closed, s.failures_);
  s.notify();
}

// One attempt's on_connecting hook (which may change the URL and headers) and
// opening handshake. A coroutine of its own so that the copy of the stream
// options made for the hook is not kept for the life of the connection (in
// supervise's frame it cost every open handler 464 bytes). Returns the stream
// (null if the hook failed); `o` and `context` say why the attempt failed.
asio::awaitable<std::shared_ptr<stream>> handler::impl::open_attempt(std::shared_ptr<impl> self, outcome& o,
                                                                     std::string& context) {
  auto& s = *self;
  std::string url = s.url_;
  auto so = s.opts_.stream;
  if (s.connecting_hook_) {
    try {
      co_await s.connecting_hook_(s.failures_ + 1, url, so.headers);
    } catch (const std::exception& e) {
      context = std::string("on_connecting threw: ") + e.what();
      o.error = error::callback_failed;
      s.report(o.error, context);
      co_return nullptr;
    }
  }
  auto ws = std::make_shared<stream>(s.strand_, so);
  s.ws_ = ws;
  std::error_code ec;
  co_await ws->connect(url, ec);
  {
    std::lock_guard lock(s.status_mutex_);
    s.response_ = ws->response();
  }
  if (ec) {
    o.error = ec;
    if (ec == error::handshake_rejected) {
      o.http_status = ws->response().status;
      if (auto ra = ws->response().headers.find("Retry-After"))
        o.retry_after = parse_retry_after(*ra);
    }
    context = ws->last_error_context();
  }
  co_return ws;
}

backoff_policy handler::impl::policy() const {
  backoff_policy p;
  p.kind = opts_.backoff;
  p.base = opts_.backoff_base;
  p.max_delay = opts_.max_delay;
  p.jitter = opts_.jitter;
  return p;
}

// One open connection: on_open steps, then reader, writer and heartbeat (and
// the stability timer) until the first of the loops ends. Returns how it
// ended, with conn_text_ saying why as people read it. The setup and the
// teardown are functions of their own: this frame lives as long as the
// connection, so it holds only what the loops need.
asio::awaitable<outcome> handler::impl::run_connection(std::shared_ptr<impl> self, std::shared_ptr<stream> ws,
                                                       bool reconnected) {
  auto& s = *self;
  s.begin_connection(self, ws, reconnected);
  auto loops = run_loops(self, ws); // made outside this frame: its temporaries are not kept here
  auto [order, e_reader, e_writer, e_heartbeat] = co_await std::move(loops);
  s.stable_timer_.cancel();
  if (e_reader && e_writer && e_heartbeat)
    std::rethrow_exception(order[0] == 0 ? e_reader : order[0] == 1 ? e_writer : e_heartbeat);
  auto o = co_await finish_connection(std::move(self), std::move(ws));
  co_return o;
}

// The reader, writer and heartbeat of a connection, as one group, not nested
// `||`s: each `||` spawns both of its sides and keeps a frame of its own
// (docs/benchmarks.md). As with `||`, a loop that throws does not end the
// others; the group completes when one of them returns.
asio::awaitable<handler::impl::loops_result> handler::impl::run_loops(const std::shared_ptr<impl>& self,
                                                                      const std::shared_ptr<stream>& ws) {
  return asio::experimental::make_parallel_group(asio::co_spawn(self->strand_, reader(self, ws), detail::deferred),
                                                 asio::co_spawn(self->strand_, writer(self, ws), detail::deferred),
                                                 asio::co_spawn(self->strand_, heartbeat(self, ws), detail::deferred))
      .async_wait(asio::experimental::wait_for_one_success(), asio::use_awaitable);
}

// The connection is open: its id, context and status, the on_open steps, the stability timer.
void handler::impl::begin_connection(const std::shared_ptr<impl>& self, const std::shared_ptr<stream>& ws,
                                     bool reconnected) {
  conn_outcome_ = outcome{};
  conn_outcome_.opened = true;
  conn_text_.clear();
  ctx_.connection_id = ++next_connection_id_;
  ++opens_;
  ctx_.connected = true;
  ctx_.metadata = metadata_;
  last_frame_ = steady::now();
  std::optional<std::string> accepted;
  for (const auto& e : ws->response().extensions)
    accepted = accepted ? *accepted + ", " + format_extension(e) : format_extension(e);
  update_status([&](tether::status& st) {
    st.extensions = accepted;
    if (reconnected)
      ++st.reconnects;
  });
  set_state(connection_state::open, failures_); // the count holds until the connection is stable

  // The on_open steps and the re-subscriptions run beside the loops (their
  // own sends must be written while they wait); queued messages flow once
  // they have all succeeded.
  if (open_steps_.empty() && subs_.active().empty()) {
    start_flowing();
  } else {
    auto steps = std::make_shared<asio::cancellation_signal>();
    opening_signal_ = steps;
    asio::co_spawn(strand_, run_open_steps(self, ws),
                   asio::bind_cancellation_slot(steps->slot(), [self, steps,
                                                id = ctx_.connection_id](std::exception_ptr) {
                     self->opening_slot_ = {};
                     if (self->ctx_.connection_id == id && self->ctx_.connected && !self->conn_outcome_.error)
                       self->start_flowing(); // not for a later connection, nor after a failed step
                     self->notify();
                   }));
  }
  notify();
  arm_stable_timer();
}

// The loops have ended: what was in flight fails, the server's close is
// answered (or the socket aborted), and the outcome says how it ended.
asio::awaitable<outcome> handler::impl::finish_connection(std::shared_ptr<impl> self, std::shared_ptr<stream> ws) {
  auto& s = *self;
  if (auto steps = std::exchange(s.opening_signal_, nullptr))
    steps->emit(asio::cancellation_type::terminal); // on_open steps of a dead connection
  for (auto& it : std::exchange(s.in_flight_, {})) // the stream's callbacks find them done
    s.complete(it, s.conn_outcome_.error ? s.conn_outcome_.error : make_error_code(error::connection_lost));
  if (s.stopping())
    s.requests_.fail_all(asio::error::operation_aborted); // our own close(): the caller gave up on them
  else
    s.requests_.connection_ended(s.ctx_.connection_id); // written, unanswered: outcome unknown (or re-send)

  s.ctx_.connected = false;
  if (s.flowing())
    s.life_ = life::connecting; // until the next connection's steps are done
  outcome o = s.conn_outcome_;
  if (!s.stopping() && ws->is_open()) {
    std::error_code ignored;
    if (o.close_code && !o.error)
      co_await ws->close(ignored); // the server closed: finish the handshake (bounded by close_timeout)
    else
      ws->abort(); // a dead or failed connection cannot do a close handshake
  }
  if (o.error && s.conn_text_.empty())
    s.conn_text_ = ws->last_error() == o.error ? ws->last_error_message() : o.error.message();
  if (!o.error && o.close_code)
    s.conn_text_ = "server closed with " + std::to_string(o.close_code) + " (" + close_code_name(o.close_code) +
                   ")" + (o.close_reason.empty() ? "" : ": " + o.close_reason);
  co_return o;
}

// Resets the failure count once the connection has lasted stable_after. A
// plain timer, not a loop of its own beside the others: an idle handler keeps
// no coroutine for it. run_connection cancels it when the connection ends.
void handler::impl::arm_stable_timer() {
  stable_timer_.expires_after(opts_.stable_after);
  stable_timer_.async_wait([weak = weak_from_this(), id = ctx_.connection_id](std::error_code ec) {
    auto s = weak.lock();
    if (ec || !s || s->ctx_.connection_id != id || !s->ctx_.connected || s->conn_outcome_.error ||
        s->conn_outcome_.close_code)
      return; // the connection ended, or is ending, first
    s->failures_ = 0;
    s->update_status([](tether::status& st) { st.retries = 0; });
  });
}

// User steps first, then the re-subscriptions, in order. A user step that
// throws ends the connection: it counts as a failed attempt.
asio::awaitable<void> handler::impl::run_open_steps(std::shared_ptr<impl> self, std::shared_ptr<stream> ws) {
  auto& s = *self;
  auto cs = co_await asio::this_coro::cancellation_state;
  s.opening_slot_ = cs.slot(); // sends from these steps jump the offline queue
  for (std::size_t i = 0; i < s.open_steps_.size() && !s.stopping(); ++i) {
    std::string failed;
    try {
      co_await s.open_steps_[i](s.ctx_);
    } catch (const std::exception& e) {
      failed = std::string("on_open step threw: ") + e.what();
    }
    if (!failed.empty()) {
      s.report(error::callback_failed, failed);
      s.end_connection(error::callback_failed, failed);
      ws->abort(); // ends the reader, and with it the connection's loops
      co_return;
    }
  }
  if (!s.stopping() && !cancelled(cs))
    co_await resubscribe(self);
}

asio::awaitable<void> handler::impl::do_connect(std::shared_ptr<impl> self, std::string url) {
  auto& s = *self;
  if (s.supervising())
    throw std::system_error(asio::error::already_connected);
  // A TLS file that cannot be read fails at once, never retried.
  std::string bad_file;
  if (auto ec = detail::check_tls_files(s.opts_.stream.tls, bad_file))
    throw std::system_error(ec, bad_file);
  s.url_ = std::move(url);
  s.last_error_ = {};
  s.failure_what_.clear();
  s.life_ = life::connecting;
  const auto opens = s.opens_;
  asio::co_spawn(s.strand_, supervise(self), [self](std::exception_ptr e) {
    if (!e)
      return;
    // Never silent: an escaped exception fails the handler and is reported.
    self->supervisor_ended();
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      self->report(error::handler_closed, std::string("supervisor failed: ") + x.what());
    }
    self->last_error_ = error::handler_closed;
    self->set_state(connection_state::failed, 0, {}, error::handler_closed);
    self->fail_queue(error::handler_closed);
  });
  // Once cancelled this coroutine must not await again (Asio would throw)
  // until the cancellation state is reset.
  auto cs = co_await asio::this_coro::cancellation_state;
  for (;;) {
    if (s.opens_ != opens)
      co_return;
    if (s.state_ == connection_state::failed || s.state_ == connection_state::closed) {
      const auto ec = s.last_error_ ? s.last_error_ : make_error_code(error::handler_closed);
      if (s.failure_what_.empty())
        throw std::system_error(ec);
      throw std::system_error(ec, s.failure_what_);
    }
    if (cancelled(cs))
      break;
    co_await s.changed_.wait();
  }
  // Cancelled: stop connecting, as close() would, then report the cancellation.
  co_await asio::this_coro::reset_cancellation_state();
  s.shutdown();
  while (s.supervising())
    co_await s.changed_.wait();
  if (s.state_ != connection_state::failed && s.state_ != connection_state::closed)
    s.set_state(connection_state::closed, s.failures_);
  throw std::system_error(asio::error::operation_aborted);
}

} // namespace tether
