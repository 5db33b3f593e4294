// tether::handler: one supervisor coroutine per handler owns the connection's
// life (connect → run reader, writer and heartbeat → classify the end → back
// off → reconnect) until close() or the retry policy stops it.
//
// Everything runs on one strand. Entry points hop onto it only when called from
// outside it. Waiters for the handler's state park on `changed_` (a signal,
// not a timer); each send waits on its own item's signal; the writer hands
// every queued message to the stream at once (detail::stream_access), so they
// go out in one write, and learns of each one's write through a callback.
// Coroutines here are static and take shared_ptr<impl> (see docs/design.md on
// the g++ 12 member-coroutine miscompile).
#include <tether/handler.hpp>

#include <tether/error.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <deque>
#include <mutex>
#include <random>
#include <unordered_map>

#include "asio_compat.hpp"
#include "fifo.hpp"
#include "live.hpp"
#include "rate_limiter.hpp"
#include "requests.hpp"
#include "signal.hpp"
#include "subscriptions.hpp"
#include "route_table.hpp"
#include "stream_access.hpp"
#include "transport.hpp"

namespace tether {

using steady = std::chrono::steady_clock;
using detail::use_nothrow;

namespace {

bool cancelled(const asio::cancellation_state& cs) { return cs.cancelled() != asio::cancellation_type::none; }

std::int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Invalid messages are reported with at most this much of the raw frame.
constexpr std::size_t max_reported_raw = 256;

} // namespace

// ---- the handler's state ----

struct handler::impl : std::enable_shared_from_this<impl> {
  // One queued message and its sender's completion.
  struct item {
    explicit item(const asio::any_io_executor& ex) : signal(ex) {}
    std::string payload;
    bool binary = false;
    steady::time_point enqueued{};
    steady::time_point deadline{};
    steady::time_point cap = steady::time_point::max(); // a deadline of its own (a request's), if sooner
    std::optional<std::chrono::milliseconds> ttl;       // replaces send_timeout (send_options::ttl)
    detail::signal signal;     // notified on completion
    bool handed = false;       // given to the stream: can no longer be withdrawn
    bool caller_cancelled = false; // its sender was cancelled while it was being written
    std::weak_ptr<detail::pending_request> request; // the request it carries, told which connection wrote it
    bool priority = false;     // sent by an on_open step: may go before flowing_
    int bucket = -1;           // its route's rate limit (rate_limiter::bucket_of)
    bool throttled = false;    // waited for the rate limit (counted once)
    bool admitted = false;     // fail_when_rate_limited does not apply (the library's, a re-send)
    bool done = false;
    std::error_code ec;
  };

  // A running coroutine handler, so close() can cancel and await it.
  struct running {
    asio::cancellation_signal cancel;
    asio::cancellation_slot slot; // its coroutine's own, to recognise close() from inside it
  };

  impl(asio::any_io_executor ex, handler_options o)
      : strand_(asio::make_strand(ex)), opts_(std::move(o)),
        table_(opts_.routes ? opts_.routes : std::make_shared<route_table>()), routes_(table_->table_),
        changed_(strand_), backoff_timer_(strand_), deadline_timer_(strand_),
        pacer_(opts_.send_rate, opts_.route_send_rates), admit_(opts_.send_rate, opts_.route_send_rates),
        writer_timer_(strand_) {
    codec_ = opts_.wire_codec ? opts_.wire_codec : std::make_shared<json_codec>();
    codec_checks_utf8_ = dynamic_cast<const json_codec*>(codec_.get()) || dynamic_cast<const field_codec*>(codec_.get());
    rng_.seed(opts_.rng_seed ? opts_.rng_seed : std::random_device{}());
  }

  // Request ids start with a random number of this handler's, so that a server
  // de-duplicating re-sent requests never confuses two handlers' ids.
  static std::uint64_t id_nonce() {
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd();
  }

  detail::live_token live_{detail::live().handlers};
  asio::strand<asio::any_io_executor> strand_;
  handler_options opts_;
  std::shared_ptr<route_table> table_;
  std::shared_ptr<route_handle::table> routes_;
  std::vector<interceptor> interceptors_;
  detail::request_table requests_{id_nonce()};
  detail::subscription_table subs_;
  std::shared_ptr<const codec> codec_;
  bool codec_checks_utf8_ = false; // tether's own codec: its text is UTF-8 already
  std::mt19937_64 rng_;

  mutable std::mutex status_mutex_; // guards st_, state_ and response_ for other threads
  tether::status st_;
  handshake_response response_; // the latest attempt's answer (last_response())
  connection_state state_ = connection_state::idle;

  std::string url_;
  connecting_hook connecting_hook_;
  std::vector<open_step> open_steps_;
  json metadata_ = json::object();

  std::shared_ptr<stream> ws_;
  connection_context ctx_;
  std::uint64_t next_connection_id_ = 0;
  outcome conn_outcome_;
  std::string conn_text_;    // why the connection ended, as people read it (if not the stream's own text)
  unsigned failures_ = 0;    // failed attempts and short connections in a row
  std::uint64_t opens_ = 0;  // connections opened, so connect() sees an open that ended at once
  std::string failure_what_; // what connect() throws with: attempt, URL, details
  bool supervising_ = false;
  bool closing_ = false;
  bool flowing_ = false; // on_open steps done: the writer may drain the queue
  std::error_code last_error_;
  steady::time_point last_frame_{};
  bool reader_paused_ = false;

  detail::fifo<std::shared_ptr<item>> queue_;
  std::size_t queued_bytes_ = 0; // payload bytes in queue_
  detail::fifo<std::shared_ptr<item>> in_flight_; // handed to the stream, not yet written
  std::shared_ptr<asio::cancellation_signal> opening_signal_; // the running on_open steps
  asio::cancellation_slot opening_slot_;                      // their coroutine's, to recognise their sends
  std::vector<std::shared_ptr<running>> handlers_;

  detail::signal changed_;           // the handler's state, the queue, the writer's work
  asio::steady_timer backoff_timer_;
  asio::steady_timer deadline_timer_; // send_timeout of queued messages: one timer for all
  steady::time_point deadline_armed_ = steady::time_point::max();
  // Rate limits: pacer_ spaces the writes, admit_ decides fail_when_rate_limited
  // at the call. writer_timer_ wakes the writer when the next envelope may go
  // (the rate limit) or a batch has waited max_delay.
  detail::rate_limiter pacer_;
  detail::rate_limiter admit_;
  asio::steady_timer writer_timer_;
  steady::time_point writer_wake_ = steady::time_point::max();

  void notify() { changed_.notify_all(); }

  void report(std::error_code ec, std::string_view what) {
    if (opts_.on_error)
      opts_.on_error(ec, what);
  }

  // `reason` is why the last attempt or connection ended (status().last_error
  // gets the same text); `rule` is the retry decision's reason.
  void set_state(connection_state s, unsigned attempt = 0, std::chrono::milliseconds delay = {},
                 std::error_code ec = {}, std::string reason = {}, std::string rule = {}) {
    {
      std::lock_guard lock(status_mutex_);
      state_ = s;
      st_.state = to_string(s);
      st_.connected = s == connection_state::open;
      st_.retries = attempt;
      if (ec)
        st_.last_error = reason.empty() ? ec.message() : reason;
    }
    if (opts_.on_state) {
      state_change c;
      c.state = s;
      c.attempt = attempt;
      c.delay = delay;
      c.error = ec;
      c.reason = std::move(reason);
      c.rule = std::move(rule);
      opts_.on_state(c);
    }
    notify();
  }

  // Ends the running connection's loops with `ec` (the first reason wins).
  void end_connection(std::error_code ec, std::string text) {
    if (conn_outcome_.error)
      return;
    conn_outcome_.error = ec;
    conn_text_ = std::move(text);
  }

  template <class F>
  void update_status(F&& f) {
    std::lock_guard lock(status_mutex_);
    f(st_);
  }

  void set_queued() {
    update_status([n = queue_.size(), bytes = queued_bytes_](tether::status& s) {
      s.queued = n;
      s.queued_bytes = bytes;
    });
  }

  // A queued message withdrawn unwritten (overflow policy, TTL): counted,
  // reported to on_drop, then its send fails with `reason`.
  void drop(const std::shared_ptr<item>& it, std::error_code reason) {
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

  void set_pending_requests() {
    update_status([n = requests_.size()](tether::status& s) { s.pending_requests = n; });
  }

  void complete(const std::shared_ptr<item>& it, std::error_code ec) {
    if (it->done)
      return;
    it->done = true;
    it->ec = ec;
    it->signal.notify_one();
  }

  // Queued messages past their send_timeout fail, through one timer armed at the
  // earliest deadline. Deadlines grow with the queue, so a send re-arms it only
  // when it is the earliest: no timer system call per message.
  void arm_deadline(steady::time_point t) {
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

  void expire_queue() {
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

  void fail_queue(std::error_code ec) {
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

  // ---- supervisor ----

  retry_decision decide(const outcome& o) {
    auto d = classify(o, opts_.rules);
    if (opts_.classifier)
      d = opts_.classifier(o, d);
    return d;
  }

  static asio::awaitable<void> supervise(std::shared_ptr<impl> self) {
    auto& s = *self;
    s.failures_ = 0;
    bool ever_open = false;
    while (!s.closing_) {
      s.set_state(ever_open || s.failures_ ? connection_state::reconnecting : connection_state::connecting,
                  s.failures_);
      outcome o;
      std::string text;    // why it ended, as people read it
      std::string context; // the same without the error's own message, for connect()'s exception
      std::string url = s.url_;
      auto so = s.opts_.stream;
      if (s.connecting_hook_) {
        try {
          co_await s.connecting_hook_(s.failures_ + 1, url, so.headers);
        } catch (const std::exception& e) {
          context = std::string("on_connecting threw: ") + e.what();
          o.error = error::callback_failed;
          s.report(o.error, context);
        }
      }
      if (!o.error) {
        auto ws = std::make_shared<stream>(s.strand_, so);
        s.ws_ = ws;
        std::error_code ec;
        co_await ws->connect(url, ec);
        {
          std::lock_guard lock(s.status_mutex_);
          s.response_ = ws->response();
        }
        if (s.closing_)
          break;
        if (ec) {
          o.error = ec;
          if (ec == error::handshake_rejected) {
            o.http_status = ws->response().status;
            if (auto ra = ws->response().headers.find("Retry-After"))
              o.retry_after = parse_retry_after(*ra);
          }
          context = ws->last_error_context();
        } else {
          o = co_await run_connection(self, ws, ever_open);
          ever_open = true;
          if (s.closing_)
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
          d.what == retry_decision::retry_after ? d.delay : backoff_delay(s.policy(), s.failures_, std::generate_canonical<double, 53>(s.rng_));
      s.set_state(connection_state::reconnecting, s.failures_, delay, why, text, d.reason);
      s.backoff_timer_.expires_after(delay);
      co_await s.backoff_timer_.async_wait(use_nothrow);
    }
    s.ws_.reset();
    s.supervising_ = false;
    if (s.closing_)
      s.set_state(connection_state::closed, s.failures_);
    s.notify();
  }

  backoff_policy policy() const {
    backoff_policy p;
    p.kind = opts_.backoff;
    p.base = opts_.backoff_base;
    p.max_delay = opts_.max_delay;
    p.jitter = opts_.jitter;
    return p;
  }

  // One open connection: on_open steps, then reader, writer, heartbeat and the
  // stability timer until the first of them ends. Returns how it ended, with
  // conn_text_ saying why as people read it.
  static asio::awaitable<outcome> run_connection(std::shared_ptr<impl> self, std::shared_ptr<stream> ws,
                                                 bool reconnected) {
    using namespace detail::awaitable_operators;
    auto& s = *self;
    s.conn_outcome_ = outcome{};
    s.conn_outcome_.opened = true;
    s.conn_text_.clear();
    s.ctx_.connection_id = ++s.next_connection_id_;
    ++s.opens_;
    s.ctx_.connected = true;
    s.ctx_.metadata = s.metadata_;
    s.last_frame_ = steady::now();
    s.flowing_ = false;
    std::optional<std::string> accepted;
    for (const auto& e : ws->response().extensions)
      accepted = accepted ? *accepted + ", " + format_extension(e) : format_extension(e);
    s.update_status([&](tether::status& st) {
      st.extensions = accepted;
      if (reconnected)
        ++st.reconnects;
    });
    s.set_state(connection_state::open, s.failures_); // the count holds until the connection is stable

    // The on_open steps and the re-subscriptions run beside the loops (their
    // own sends must be written while they wait); queued messages flow once
    // they have all succeeded.
    if (s.open_steps_.empty() && s.subs_.active().empty()) {
      s.flowing_ = true;
    } else {
      auto steps = std::make_shared<asio::cancellation_signal>();
      s.opening_signal_ = steps;
      asio::co_spawn(s.strand_, run_open_steps(self, ws),
                     asio::bind_cancellation_slot(steps->slot(), [self, steps, id = s.ctx_.connection_id](std::exception_ptr) {
                       self->opening_slot_ = {};
                       if (self->ctx_.connection_id == id && self->ctx_.connected && !self->conn_outcome_.error)
                         self->flowing_ = true; // not for a later connection, nor after a failed step
                       self->notify();
                     }));
    }
    s.notify();

    co_await (reader(self, ws) || writer(self, ws) || heartbeat(self, ws) || settle(self));
    if (auto steps = std::exchange(s.opening_signal_, nullptr))
      steps->emit(asio::cancellation_type::terminal); // on_open steps of a dead connection
    for (auto& it : std::exchange(s.in_flight_, {})) // the stream's callbacks find them done
      s.complete(it, s.conn_outcome_.error ? s.conn_outcome_.error : make_error_code(error::connection_lost));
    if (s.closing_)
      s.requests_.fail_all(asio::error::operation_aborted); // our own close(): the caller gave up on them
    else
      s.requests_.connection_ended(s.ctx_.connection_id); // written, unanswered: outcome unknown (or re-send)

    s.ctx_.connected = false;
    s.flowing_ = false;
    outcome o = s.conn_outcome_;
    if (!s.closing_ && ws->is_open()) {
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

  // Resets the failure count once the connection has lasted stable_after, then
  // waits until another loop ends the connection.
  static asio::awaitable<void> settle(std::shared_ptr<impl> self) {
    auto& s = *self;
    auto cs = co_await asio::this_coro::cancellation_state;
    asio::steady_timer t(s.strand_);
    t.expires_after(s.opts_.stable_after);
    auto [tec] = co_await t.async_wait(use_nothrow);
    if (tec || cancelled(cs))
      co_return;
    s.failures_ = 0;
    s.update_status([](tether::status& st) { st.retries = 0; });
    t.expires_at(asio::steady_timer::time_point::max());
    co_await t.async_wait(use_nothrow);
  }

  // User steps first, then the re-subscriptions, in order. A user step that
  // throws ends the connection: it counts as a failed attempt.
  static asio::awaitable<void> run_open_steps(std::shared_ptr<impl> self, std::shared_ptr<stream> ws) {
    auto& s = *self;
    auto cs = co_await asio::this_coro::cancellation_state;
    s.opening_slot_ = cs.slot(); // sends from these steps jump the offline queue
    for (std::size_t i = 0; i < s.open_steps_.size() && !s.closing_; ++i) {
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
    if (!s.closing_ && !cancelled(cs))
      co_await resubscribe(self);
  }

  // Renews every acknowledged subscription on a new connection: all the
  // $subscribe envelopes are queued at once, ahead of the offline queue and
  // past its bound (the library's own, one per topic; paced by the rate limit
  // like every envelope, never expired), then their acknowledgements are
  // awaited, together at most resubscribe_timeout. A refused topic is reported
  // and its subscription ends; a missing acknowledgement is reported and the
  // subscription kept. If the connection ends first, what is still queued is
  // withdrawn: the next connection renews again.
  static asio::awaitable<void> resubscribe(std::shared_ptr<impl> self) {
    auto& s = *self;
    auto cs = co_await asio::this_coro::cancellation_state;
    const auto subs = s.subs_.active();
    if (subs.empty())
      co_return;
    const auto deadline = later(steady::now(), s.opts_.resubscribe_timeout);
    struct renewal {
      std::shared_ptr<detail::subscription> sub;
      std::shared_ptr<detail::pending_request> r;
      std::shared_ptr<item> it;
    };
    struct renewals_guard { // no entry or timer outlives this step
      impl& s;
      std::vector<renewal> all;
      bool withdraw = true; // the connection ended: what is still queued is not for the next one
      ~renewals_guard() {
        for (auto& x : all) {
          x.r->timer.cancel();
          s.requests_.close(x.r);
          if (!withdraw || x.it->handed || x.it->done)
            continue;
          const auto before = s.queue_.size();
          s.queue_.erase_if([&x](const std::shared_ptr<item>& q) { return q == x.it; });
          if (s.queue_.size() != before)
            s.queued_bytes_ -= x.it->payload.size();
        }
        s.set_queued();
        s.set_pending_requests();
      }
    } renewals{s, {}};
    for (const auto& sub : subs) {
      auto it = std::make_shared<item>(s.strand_);
      auto r = s.requests_.open(s.strand_, false, deadline);
      renewals.all.push_back({sub, r, it});
      if (s.codec_->encode(subscribe_envelope("$subscribe", sub->topic, r->id), it->payload, it->binary)) {
        s.report(error::invalid_envelope, "re-subscribing: the codec cannot encode a $subscribe envelope");
        co_return;
      }
      it->request = r;
      it->bucket = s.pacer_.bucket_of("$subscribe");
      it->admitted = true;
      it->priority = true;
      it->enqueued = steady::now();
      it->deadline = steady::time_point::max();
      s.enqueue(it);
    }
    s.set_pending_requests();
    for (auto& [sub, r, it] : renewals.all) {
      while (!r->done) {
        auto [tec] = co_await r->timer.async_wait(use_nothrow);
        if (cancelled(cs))
          co_return;
        if (!tec)
          break; // the deadline
      }
      if (!r->done) {
        s.report(error::request_timeout,
                 "re-subscribing to '" + sub->topic + "': no acknowledgement within " +
                     std::to_string(s.opts_.resubscribe_timeout.count()) +
                     " ms; the subscription is kept and queued messages flow");
        continue;
      }
      if (r->ec)
        co_return; // the connection ended
      if (r->reply.error) {
        if (s.subs_.remove(sub))
          s.update_status([&](tether::status& st) {
            ++st.refused_subscriptions;
            st.subscriptions = s.subs_.size();
          });
        s.report(error::subscription_refused,
                 "re-subscribing to '" + sub->topic + "' after the reconnect: refused: " + *r->reply.error);
      }
    }
    renewals.withdraw = false; // renewals the rate limit still holds go out (their replies come late)
  }

  static envelope subscribe_envelope(std::string path, const std::string& topic, const std::string& id) {
    envelope e;
    e.path = std::move(path);
    e.data = json::object();
    e.data["topic"] = topic;
    if (!id.empty())
      e.id = id;
    return e;
  }

  // ---- reader and dispatch ----

  static asio::awaitable<void> reader(std::shared_ptr<impl> self, std::shared_ptr<stream> ws) {
    auto& s = *self;
    std::string buf;
    std::vector<envelope> envs;
    std::string reason;
    for (;;) {
      // Backpressure: too many coroutine handlers running → stop reading.
      while (s.handlers_.size() >= s.opts_.max_concurrent_handlers && !s.closing_) {
        s.reader_paused_ = true;
        co_await s.changed_.wait();
        auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
        if (cancelled(cs_now))
          co_return;
      }
      s.reader_paused_ = false;
      std::error_code ec;
      auto r = co_await ws->read(buf, ec);
      if (ec) {
        if (!s.conn_outcome_.error && ec != asio::error::operation_aborted)
          s.conn_outcome_.error = ec;
        co_return;
      }
      if (r.kind == message_kind::close) {
        s.conn_outcome_.close_code = r.close_code;
        s.conn_outcome_.close_reason = r.close_reason;
        co_return;
      }
      s.last_frame_ = steady::now();
      s.ctx_.last_message_at = std::chrono::system_clock::now();
      s.update_status([&](tether::status& st) {
        ++st.messages_received;
        st.bytes_received += buf.size();
      });
      envs.clear();
      reason.clear();
      if (auto dec = s.codec_->decode(buf, r.kind == message_kind::binary, envs, reason)) {
        s.update_status([](tether::status& st) { ++st.invalid_messages; });
        s.report(dec, reason + " | raw: " + buf.substr(0, max_reported_raw));
        continue;
      }
      for (auto& e : envs)
        s.dispatch(self, std::move(e), buf);
    }
  }

  void dispatch(const std::shared_ptr<impl>& self, envelope env, std::string_view raw) {
    // Replies to request() never reach interceptors or routes.
    switch (requests_.deliver(env)) {
    case detail::request_table::reply_kind::delivered:
      set_pending_requests();
      return;
    case detail::request_table::reply_kind::late:
      update_status([](tether::status& st) { ++st.late_replies; });
      return;
    case detail::request_table::reply_kind::not_ours:
      break;
    }
    // '$' paths are the library's (docs/protocol.md): none reaches a route.
    // Publications go to their subscription; anything else is counted as unrouted.
    if (!env.path.empty() && env.path.front() == '$') {
      if (env.path == "$publish")
        if (auto t = env.extra.find("topic"); t != env.extra.end() && t->is_string())
          if (auto sub = subs_.find(t->get<std::string>())) {
            update_status([](tether::status& st) { ++st.publications; });
            env.path = sub->topic;
            invoke(self, sub->fn, env, {}, raw);
            return;
          }
      update_status([](tether::status& st) { ++st.unrouted; });
      return;
    }
    for (auto& i : interceptors_) {
      try {
        if (i(env, ctx_))
          return;
      } catch (const std::exception& e) {
        report(error::callback_failed, std::string("interceptor threw: ") + e.what());
      }
    }
    captures caps;
    std::shared_ptr<const route::function> fn;
    bool routed = false;
    bool wrong_kind = false;
    {
      std::lock_guard lock(routes_->m);
      if (auto id = routes_->router.match(env.path, caps)) {
        auto it = routes_->fns.find(*id);
        if (it != routes_->fns.end()) {
          const auto accepts = it->second.accepts;
          wrong_kind = accepts != route_kind::any && (accepts == route_kind::binary) != env.binary;
          fn = it->second.fn;
          routed = true;
        }
      }
      if (!fn)
        fn = routes_->fallback;
    }
    if (wrong_kind) {
      // Neither the route's function nor the fallback: the message is not what
      // its route takes, like a frame the codec rejects.
      update_status([](tether::status& st) { ++st.invalid_messages; });
      report(error::invalid_envelope, std::string(env.binary ? "binary" : "text") + " message for path '" +
                                          env.path + "', whose route takes " +
                                          (env.binary ? "text" : "binary") + " only");
      return;
    }
    if (!routed)
      update_status([](tether::status& st) { ++st.unrouted; });
    if (fn)
      invoke(self, fn, env, caps, raw);
  }

  // Runs a route's (or a subscription's) function on `env`: plain functions
  // here, coroutines as their own coroutine (which takes `env` over). `caps`
  // point into env.path, so env is not moved before they are turned into offsets.
  void invoke(const std::shared_ptr<impl>& self, const std::shared_ptr<const route::function>& fn, envelope& env,
              const captures& caps, std::string_view raw) {
    try {
      if (auto* f = std::get_if<route::json_fn>(fn.get())) {
        (*f)(env.data, ctx_);
      } else if (auto* g = std::get_if<route::message_fn>(fn.get())) {
        message m{env.path, env.data, env, caps, raw, env.binary, env.bytes};
        (*g)(m, ctx_);
      } else {
        // Offsets, not views: moving a short (SSO) path moves its characters.
        std::vector<std::pair<std::size_t, std::size_t>> spans;
        for (auto c : caps)
          spans.emplace_back(static_cast<std::size_t>(c.data() - env.path.data()), c.size());
        start_coroutine(self, fn, std::move(env), std::move(spans), std::string(raw));
      }
    } catch (const std::exception& e) {
      report(error::callback_failed, std::string("route handler threw: ") + e.what());
    }
  }

  // Coroutine handlers own their message and context until they complete; the
  // captures are re-pointed into the owned copy of the path.
  void start_coroutine(const std::shared_ptr<impl>& self, std::shared_ptr<const route::function> fn, envelope env,
                       std::vector<std::pair<std::size_t, std::size_t>> spans, std::string raw) {
    auto rec = std::make_shared<running>();
    handlers_.push_back(rec);
    asio::co_spawn(strand_, run_handler(self, rec, std::move(fn), std::move(env), std::move(spans), std::move(raw), ctx_),
                   asio::bind_cancellation_slot(rec->cancel.slot(), [self, rec](std::exception_ptr e) {
                     std::erase(self->handlers_, rec);
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& x) {
                         self->report(error::callback_failed, std::string("route handler threw: ") + x.what());
                       }
                     }
                     self->notify();
                   }));
  }

  static asio::awaitable<void> run_handler(std::shared_ptr<impl> self, std::shared_ptr<running> rec,
                                           std::shared_ptr<const route::function> fn, envelope env,
                                           std::vector<std::pair<std::size_t, std::size_t>> spans, std::string raw,
                                           connection_context ctx) {
    auto cs_now = co_await asio::this_coro::cancellation_state;
    rec->slot = cs_now.slot();
    captures caps;
    for (auto [pos, len] : spans)
      caps.push_back(std::string_view(env.path).substr(pos, len));
    if (auto* f = std::get_if<route::json_coro>(fn.get())) {
      co_await (*f)(env.data, ctx);
    } else if (auto* g = std::get_if<route::message_coro>(fn.get())) {
      message m{env.path, env.data, env, caps, raw, env.binary, env.bytes};
      co_await (*g)(m, ctx);
    }
    (void)self;
  }

  // ---- writer ----

  // Hands every message that may flow to the stream without waiting for each
  // one's write (the stream gathers them into one write), as long as the
  // stream's queue is under max_send_queue_bytes; on_written completes them.
  static asio::awaitable<void> writer(std::shared_ptr<impl> self, std::shared_ptr<stream> ws) {
    auto& s = *self;
    // Once cancelled (another loop ended the connection) this coroutine must not
    // await again: Asio would throw.
    auto cs = co_await asio::this_coro::cancellation_state;
    const auto id = s.ctx_.connection_id;
    for (;;) {
      while (!s.queue_.empty() && (s.flowing_ || s.queue_.front()->priority) && !s.closing_ && !cancelled(cs) &&
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
        it->handed = true;
        s.in_flight_.push_back(it);
        const auto kind = it->binary ? message_kind::binary : message_kind::text;
        auto on_written = [self, it, id](std::error_code ec) { self->written(it, ec, id); };
        if (auto ec = detail::stream_access::start_send(*ws, it->payload, kind, !it->binary && s.codec_checks_utf8_,
                                                        std::move(on_written))) {
          s.in_flight_.pop_back();
          it->handed = false; // refused: no byte of it went out
          if (ec == error::invalid_utf8) {
            s.complete(it, ec);
            continue; // refused before any byte went out (a user codec's text): only this send fails
          }
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
  void enqueue(const std::shared_ptr<item>& it) {
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
  void requeue(const std::vector<std::shared_ptr<item>>& items) {
    queue_.insert(queue_.begin(), items.begin(), items.end());
    for (const auto& x : items)
      queued_bytes_ += x->payload.size();
    set_queued();
  }

  bool batching() const noexcept { return opts_.batch.enabled && opts_.batch.max_count > 1 && codec_checks_utf8_; }

  // `first` and the text envelopes queued behind it that fit the batch's
  // limits and may go now (each takes its own rate-limit token).
  std::vector<std::shared_ptr<item>> take_batch(std::shared_ptr<item> first, steady::time_point now) {
    std::vector<std::shared_ptr<item>> batch{std::move(first)};
    std::size_t bytes = batch.front()->payload.size() + 2; // the brackets
    while (batch.size() < opts_.batch.max_count && !queue_.empty()) {
      auto next = queue_.front();
      if (next->binary || !(flowing_ || next->priority) || bytes + next->payload.size() + 1 > opts_.batch.max_bytes)
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
  void hand_batch(const std::shared_ptr<impl>& self, stream& ws, std::vector<std::shared_ptr<item>> batch,
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
  bool paced(const std::shared_ptr<item>& it, steady::time_point now) {
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

  void wake_writer_at(steady::time_point when) {
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
  void written(const std::shared_ptr<item>& it, std::error_code ec, std::uint64_t connection, bool in_batch = false) {
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
    notify(); // the writer may hand over more, or must end the connection
  }

  // ---- heartbeat ----

  // A pong arrived (the heartbeat's or ping()'s): the status says when, and the round trip.
  void record_pong(std::chrono::nanoseconds rtt) {
    update_status([&](tether::status& st) {
      st.last_pong = epoch_ms();
      st.rtt_ms = std::chrono::duration_cast<std::chrono::milliseconds>(rtt).count();
    });
  }

  static asio::awaitable<void> heartbeat(std::shared_ptr<impl> self, std::shared_ptr<stream> ws) {
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

  // ---- operations (on the strand) ----

  static asio::awaitable<void> do_connect(std::shared_ptr<impl> self, std::string url) {
    auto& s = *self;
    if (s.supervising_)
      throw std::system_error(asio::error::already_connected);
    // A TLS file that cannot be read fails at once, never retried.
    std::string bad_file;
    if (auto ec = detail::check_tls_files(s.opts_.stream.tls, bad_file))
      throw std::system_error(ec, bad_file);
    s.url_ = std::move(url);
    s.closing_ = false;
    s.last_error_ = {};
    s.failure_what_.clear();
    s.supervising_ = true;
    const auto opens = s.opens_;
    asio::co_spawn(s.strand_, supervise(self), [self](std::exception_ptr e) {
      if (!e)
        return;
      // Never silent: an escaped exception fails the handler and is reported.
      self->supervising_ = false;
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
    while (s.supervising_)
      co_await s.changed_.wait();
    if (s.state_ != connection_state::failed && s.state_ != connection_state::closed)
      s.set_state(connection_state::closed, s.failures_);
    throw std::system_error(asio::error::operation_aborted);
  }

  static asio::awaitable<void> do_send(std::shared_ptr<impl> self, std::shared_ptr<item> it) {
    auto& s = *self;
    if (s.closing_ || s.state_ == connection_state::failed || s.state_ == connection_state::closed)
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
      if (s.closing_ || s.state_ == connection_state::failed)
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

  static asio::awaitable<void> do_close(std::shared_ptr<impl> self, unsigned code, std::string reason) {
    auto& s = *self;
    // Bad arguments fail before anything changes (the same checks as stream::close).
    if (auto ec = check_close(code, reason))
      throw std::system_error(ec);
    // A route handler calling close() is not waited for (it would wait for itself).
    auto cs_now = co_await asio::this_coro::cancellation_state;
    const auto me = cs_now.slot();
    if (!s.supervising_ && s.handlers_.empty()) {
      s.closing_ = true;
      s.fail_queue(asio::error::operation_aborted);
      if (s.state_ != connection_state::idle)
        s.set_state(connection_state::closed);
      co_return;
    }
    if (!s.closing_) {
      s.closing_ = true;
      s.set_state(connection_state::closing);
      s.backoff_timer_.cancel();
      s.fail_queue(asio::error::operation_aborted);
      for (auto& h : s.handlers_)
        if (!(me.is_connected() && h->slot == me))
          h->cancel.emit(asio::cancellation_type::terminal);
      if (auto ws = s.ws_) {
        // The close handshake runs on its own, so cancelling close() ends only
        // the wait; the stream bounds it with close_timeout.
        if (ws->is_open())
          asio::co_spawn(s.strand_, close_stream(ws, static_cast<std::uint16_t>(code), std::move(reason)),
                         [self](std::exception_ptr) { self->notify(); });
        else
          ws->abort(); // still connecting (resolve, TCP, TLS or handshake)
      }
    }
    for (;;) {
      std::size_t others = 0;
      for (auto& h : s.handlers_)
        if (!(me.is_connected() && h->slot == me))
          ++others;
      if (!s.supervising_ && others == 0)
        break;
      if (cancelled(cs_now))
        throw std::system_error(asio::error::operation_aborted);
      co_await s.changed_.wait();
    }
    if (s.state_ != connection_state::closed && s.state_ != connection_state::failed)
      s.set_state(connection_state::closed);
  }

  static asio::awaitable<void> close_stream(std::shared_ptr<stream> ws, std::uint16_t code, std::string reason) {
    std::error_code ignored; // how it ended is the supervisor's to report
    co_await ws->close(code, reason, ignored);
  }

  static asio::awaitable<void> do_wait_for(std::shared_ptr<impl> self, connection_state want) {
    while (self->state_ != want) {
      co_await self->changed_.wait();
      auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
      if (cancelled(cs_now))
        throw std::system_error(asio::error::operation_aborted);
    }
  }

  static asio::awaitable<void> do_ping(std::shared_ptr<impl> self, std::string payload,
                                       std::shared_ptr<std::chrono::nanoseconds> rtt) {
    auto& s = *self;
    if (s.closing_ || s.state_ == connection_state::failed || s.state_ == connection_state::closed)
      throw std::system_error(error::handler_closed);
    auto ws = s.ws_;
    if (s.state_ != connection_state::open || !ws)
      throw std::system_error(asio::error::not_connected);
    const auto timeout = s.opts_.pong_timeout.count() > 0 ? s.opts_.pong_timeout : std::chrono::milliseconds(10000);
    const auto got = co_await ws->ping(payload, timeout);
    *rtt = got;
    s.record_pong(got);
  }

  static asio::awaitable<std::chrono::nanoseconds> ping_op(std::shared_ptr<impl> self, std::string payload,
                                                           std::error_code* ec) {
    auto rtt = std::make_shared<std::chrono::nanoseconds>(0);
    auto op = on_strand(self, do_ping(self, std::move(payload), rtt));
    if (ec)
      co_await into(std::move(op), *ec);
    else
      co_await std::move(op);
    co_return *rtt;
  }

  // Runs `op` on the strand: inline when already there, else by a hop.
  static asio::awaitable<void> on_strand(std::shared_ptr<impl> self, asio::awaitable<void> op) {
    if (self->strand_.running_in_this_thread()) {
      co_await std::move(op);
    } else {
      co_await asio::co_spawn(self->strand_, std::move(op), asio::use_awaitable);
    }
  }

  // Runs `op`, putting a std::system_error into `ec` instead of throwing it.
  static asio::awaitable<void> into(asio::awaitable<void> op, std::error_code& ec) {
    ec = {};
    try {
      co_await std::move(op);
    } catch (const std::system_error& e) {
      ec = e.code();
    }
  }

  // Encodes inside the coroutine, so an encoding error arrives through the
  // awaitable like every other send error.
  static asio::awaitable<void> encode_and_send(std::shared_ptr<impl> self, envelope e, send_options o = {}) {
    check_user_path(e.path);
    auto it = std::make_shared<item>(self->strand_);
    it->ttl = o.ttl;
    it->bucket = self->pacer_.bucket_of(e.path);
    if (auto ec = self->codec_->encode(e, it->payload, it->binary))
      throw std::system_error(ec, "encoding the envelope for '" + e.path + "'");
    co_await on_strand(self, do_send(self, std::move(it)));
  }

  // ---- acknowledged requests ----

  // One request from its first send to its reply: sends (again, after a
  // reconnect, when idempotent) through the ordered queue, then waits on its
  // entry's timer, which a reply, the connection's end or close() cancel.
  // t + d, saturating: a timeout of milliseconds::max() means "never".
  static steady::time_point later(steady::time_point t, std::chrono::milliseconds d) {
    const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(steady::time_point::max() - t);
    return d >= room ? steady::time_point::max() : t + d;
  }

  // Paths starting with '$' are the library's own envelopes (docs/protocol.md).
  static void check_user_path(const std::string& path) {
    if (!path.empty() && path.front() == '$')
      throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                              "paths starting with '$' are reserved for the library: '" + path + "'");
  }

  // `library`: one of the library's own '$' envelopes (subscriptions);
  // `still_wanted`, if set, is asked before each re-send of an idempotent one.
  static asio::awaitable<void> do_request(std::shared_ptr<impl> self, envelope e, request_options o,
                                          std::shared_ptr<json> out, bool library = false,
                                          std::function<bool()> still_wanted = {}) {
    auto& s = *self;
    if (!library)
      check_user_path(e.path);
    if (s.closing_ || s.state_ == connection_state::failed || s.state_ == connection_state::closed)
      throw std::system_error(error::handler_closed);
    if (o.timeout.count() <= 0)
      throw std::system_error(error::request_timeout, "the request's timeout is not positive");
    const auto deadline = later(steady::now(), o.timeout);
    auto r = s.requests_.open(s.strand_, o.idempotent, deadline);
    struct entry_guard { // no entry or timer outlives its request, however it ends
      impl& s;
      std::shared_ptr<detail::pending_request> r;
      ~entry_guard() {
        r->timer.cancel();
        s.requests_.close(r);
        s.set_pending_requests();
      }
    } guard{s, r};
    s.set_pending_requests();
    e.id = r->id;
    auto cs = co_await asio::this_coro::cancellation_state;
    for (;;) {
      if (r->resend && still_wanted && !still_wanted())
        throw std::system_error(asio::error::operation_aborted); // no longer wanted: not sent again
      auto it = std::make_shared<item>(s.strand_);
      if (auto ec = s.codec_->encode(e, it->payload, it->binary))
        throw std::system_error(ec, "encoding the request for '" + e.path + "'");
      it->cap = deadline;
      it->request = r;
      it->bucket = s.pacer_.bucket_of(e.path);
      it->admitted = library || r->resend; // a re-send was admitted the first time
      r->resend = false;
      std::error_code sent;
      try {
        co_await do_send(self, it);
      } catch (const std::system_error& x) {
        sent = x.code();
      }
      // Cancelled while its write was under way (do_send let the write finish
      // and reset the cancellation state): the caller is gone all the same.
      if (it->caller_cancelled || cancelled(cs))
        throw std::system_error(asio::error::operation_aborted);
      cs = co_await asio::this_coro::cancellation_state;
      if (sent && !r->done) {
        if (sent == asio::error::operation_aborted)
          throw std::system_error(asio::error::operation_aborted);
        if (steady::now() >= deadline)
          throw std::system_error(error::request_timeout);
        if (!it->handed)
          throw std::system_error(sent); // never written: as send() fails
        if (!o.idempotent)
          throw std::system_error(error::outcome_unknown, "the connection ended while writing the request: " +
                                                              sent.message());
        r->resend = true; // its write failed with the connection: again after the reconnect
      }
      while (!r->done && !r->resend) {
        auto [tec] = co_await r->timer.async_wait(use_nothrow);
        if (cancelled(cs))
          throw std::system_error(asio::error::operation_aborted);
        if (!tec && !r->done)
          throw std::system_error(error::request_timeout);
      }
      if (r->done)
        break;
    }
    if (r->ec)
      throw std::system_error(r->ec);
    if (r->reply.error)
      throw request_error(std::move(r->reply));
    *out = std::move(r->reply.data);
  }

  static asio::awaitable<json> request_op(std::shared_ptr<impl> self, envelope e, request_options o,
                                          std::error_code* ec) {
    auto out = std::make_shared<json>();
    auto op = on_strand(self, do_request(self, std::move(e), o, out));
    if (ec)
      co_await into(std::move(op), *ec);
    else
      co_await std::move(op);
    co_return std::move(*out);
  }

  // ---- subscriptions ----

  static void check_topic(const std::string& topic) {
    if (topic.empty() || topic.front() == '$')
      throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                              "a topic is a non-empty path that does not start with '$': '" + topic + "'");
  }

  void set_subscriptions() {
    update_status([n = subs_.size()](tether::status& st) { st.subscriptions = n; });
  }

  // Kept from before the $subscribe goes out, so that a publication the server
  // sends right after its acknowledgement (or before it) finds its function.
  static asio::awaitable<void> do_subscribe(std::shared_ptr<impl> self, std::string topic, route::function fn,
                                            std::chrono::milliseconds timeout) {
    auto& s = *self;
    check_topic(topic);
    if (s.closing_ || s.state_ == connection_state::failed || s.state_ == connection_state::closed)
      throw std::system_error(error::handler_closed);
    auto sub = s.subs_.add(topic, std::move(fn));
    if (!sub)
      throw std::system_error(error::route_conflict, "already subscribed to '" + topic + "'");
    s.set_subscriptions();
    struct unless_kept { // a subscription that fails, however, is not kept
      impl& s;
      std::shared_ptr<detail::subscription> sub;
      bool kept = false;
      ~unless_kept() {
        if (!kept && s.subs_.remove(sub))
          s.set_subscriptions();
      }
    } guard{s, sub};
    auto reply = std::make_shared<json>();
    std::error_code refused, failed;
    std::string text;
    // Idempotent: subscribing twice is harmless, so a $subscribe whose
    // connection ended is sent again after the reconnect - while still wanted.
    request_options ro;
    ro.timeout = timeout;
    ro.idempotent = true;
    envelope e = subscribe_envelope("$subscribe", topic, std::string());
    std::function<bool()> wanted = [&s, sub] { return s.subs_.find(sub->topic) == sub; };
    try {
      co_await do_request(self, std::move(e), ro, reply, true, std::move(wanted));
    } catch (const request_error& x) {
      refused = error::subscription_refused;
      text = x.error_text();
    } catch (const std::system_error& x) {
      failed = x.code();
      text = x.what();
    }
    if (refused) {
      s.update_status([](tether::status& st) { ++st.refused_subscriptions; });
      throw std::system_error(refused, "subscribing to '" + topic + "': " + text);
    }
    if (failed) {
      // Timed out or cancelled, perhaps after the server took it: tell it to
      // forget the topic (best effort, in order after the $subscribe).
      if (s.state_ == connection_state::open && s.ctx_.connected && !s.closing_)
        forget_on_server(self, topic);
      throw std::system_error(failed, text);
    }
    if (s.subs_.find(topic) != sub) // unsubscribed while waiting for the acknowledgement
      throw std::system_error(asio::error::operation_aborted, "unsubscribed from '" + topic + "' before the acknowledgement");
    sub->active = true;
    guard.kept = true;
  }

  // A $unsubscribe nobody awaits (a subscribe that failed after its write).
  static void forget_on_server(const std::shared_ptr<impl>& self, const std::string& topic) {
    request_options ro;
    ro.timeout = self->opts_.resubscribe_timeout;
    asio::co_spawn(self->strand_,
                   do_request(self, subscribe_envelope("$unsubscribe", topic, std::string()), ro,
                              std::make_shared<json>(), true),
                   [](std::exception_ptr) {}); // its outcome changes nothing here
  }

  static asio::awaitable<void> do_unsubscribe(std::shared_ptr<impl> self, std::string topic,
                                              std::chrono::milliseconds timeout, std::shared_ptr<bool> out) {
    auto& s = *self;
    auto sub = s.subs_.find(topic);
    if (!sub || !s.subs_.remove(sub)) {
      *out = false;
      co_return;
    }
    s.set_subscriptions();
    *out = true;
    // An acknowledged subscription lives on the server only as long as the
    // connection; one still awaiting its acknowledgement has a $subscribe on
    // its way, which this $unsubscribe follows in order.
    if (sub->active && !(s.state_ == connection_state::open && s.ctx_.connected))
      co_return;
    auto reply = std::make_shared<json>();
    std::error_code ec;
    request_options ro;
    ro.timeout = timeout;
    envelope e = subscribe_envelope("$unsubscribe", topic, std::string());
    const auto connection = s.ctx_.connection_id;
    try {
      co_await do_request(self, std::move(e), ro, reply, true);
    } catch (const request_error&) {
      throw;
    } catch (const std::system_error& x) {
      ec = x.code();
    }
    // The connection ended under it: the server forgot the subscription with it.
    const bool ended = ec == error::outcome_unknown || s.ctx_.connection_id != connection || !s.ctx_.connected;
    if (ec && !ended)
      throw std::system_error(ec, "unsubscribing from '" + topic + "'");
  }

  static asio::awaitable<bool> unsubscribe_op(std::shared_ptr<impl> self, std::string topic,
                                              std::chrono::milliseconds timeout) {
    auto out = std::make_shared<bool>(false);
    co_await on_strand(self, do_unsubscribe(self, std::move(topic), timeout, out));
    co_return *out;
  }

  void shutdown() noexcept {
    closing_ = true;
    backoff_timer_.cancel();
    deadline_timer_.cancel();
    writer_timer_.cancel();
    writer_wake_ = steady::time_point::max(); // a later connect() arms it afresh
    for (auto& h : handlers_)
      h->cancel.emit(asio::cancellation_type::terminal);
    fail_queue(asio::error::operation_aborted);
    if (ws_)
      ws_->abort();
    notify();
  }
};

// ---- public API ----

handler::handler(executor_type executor, handler_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {
  impl_->st_.state = to_string(connection_state::idle);
}

handler::~handler() {
  // The coroutines share ownership of impl and end on the strand soon after.
  asio::post(impl_->strand_, [self = impl_] { self->shutdown(); });
}

handler::executor_type handler::get_executor() const noexcept { return impl_->strand_; }

// Public operations are plain functions handing back a static coroutine: no
// member coroutines (see docs/design.md, compiler notes).
asio::awaitable<void> handler::connect(std::string url) {
  return impl::on_strand(impl_, impl::do_connect(impl_, std::move(url)));
}

asio::awaitable<void> handler::connect(std::string url, std::error_code& ec) {
  return impl::into(connect(std::move(url)), ec);
}

route_handle handler::add_route(route&& r) { return impl_->table_->add(std::move(r)); }

route_handle handler::add_route(const route& r) { return impl_->table_->add(r); }

void handler::set_fallback(route::function fn) { impl_->table_->set_fallback(std::move(fn)); }

route_table& handler::routes() noexcept { return *impl_->table_; }

void handler::add_interceptor(interceptor i) { impl_->interceptors_.push_back(std::move(i)); }

asio::awaitable<void> handler::send(std::string path, json data) {
  envelope e;
  e.path = std::move(path);
  e.data = std::move(data);
  return send(std::move(e));
}

asio::awaitable<void> handler::send(std::string path, json data, std::error_code& ec) {
  return impl::into(send(std::move(path), std::move(data)), ec);
}

asio::awaitable<void> handler::send_binary(std::string path, std::string bytes) {
  envelope e;
  e.path = std::move(path);
  e.bytes = std::move(bytes);
  e.binary = true;
  return send(std::move(e));
}

asio::awaitable<void> handler::send_binary(std::string path, std::string bytes, std::error_code& ec) {
  return impl::into(send_binary(std::move(path), std::move(bytes)), ec);
}

asio::awaitable<void> handler::send(envelope e) { return impl::encode_and_send(impl_, std::move(e)); }

asio::awaitable<void> handler::send(envelope e, send_options o) {
  return impl::encode_and_send(impl_, std::move(e), o);
}

asio::awaitable<void> handler::send(std::string path, json data, send_options o) {
  envelope e;
  e.path = std::move(path);
  e.data = std::move(data);
  return impl::encode_and_send(impl_, std::move(e), o);
}

namespace {

envelope request_envelope(std::string path, json data) {
  envelope e;
  e.path = std::move(path);
  e.data = std::move(data);
  return e;
}

std::string reply_text(const envelope& reply) { return reply.error ? *reply.error : std::string(); }

} // namespace

request_error::request_error(envelope reply)
    : std::system_error(make_error_code(error::request_failed), reply_text(reply)), reply_(std::move(reply)),
      text_(reply_text(reply_)) {
  if (auto it = reply_.extra.find("error_code"); it != reply_.extra.end() && it->is_string())
    remote_code_ = it->get<std::string>();
}

asio::awaitable<json> handler::request(std::string path, json data, request_options options) {
  return impl::request_op(impl_, request_envelope(std::move(path), std::move(data)), options, nullptr);
}

asio::awaitable<json> handler::request(std::string path, json data, std::chrono::milliseconds timeout) {
  request_options o;
  o.timeout = timeout;
  return request(std::move(path), std::move(data), o);
}

asio::awaitable<json> handler::request(std::string path, json data, request_options options, std::error_code& ec) {
  return impl::request_op(impl_, request_envelope(std::move(path), std::move(data)), options, &ec);
}

asio::awaitable<void> handler::subscribe_function(std::string topic, route::function fn,
                                                  std::chrono::milliseconds timeout) {
  return impl::on_strand(impl_, impl::do_subscribe(impl_, std::move(topic), std::move(fn), timeout));
}

asio::awaitable<bool> handler::unsubscribe(std::string topic, std::chrono::milliseconds timeout) {
  return impl::unsubscribe_op(impl_, std::move(topic), timeout);
}

std::vector<std::string> handler::topics() const { return impl_->subs_.topics(); }

asio::awaitable<void> handler::send(envelope e, std::error_code& ec) {
  return impl::into(send(std::move(e)), ec);
}

asio::awaitable<void> handler::close(std::uint16_t code, std::string reason) {
  return impl::on_strand(impl_, impl::do_close(impl_, code, std::move(reason)));
}

asio::awaitable<void> handler::close(std::uint16_t code, std::string reason, std::error_code& ec) {
  return impl::into(close(code, std::move(reason)), ec);
}

status handler::status() const {
  std::lock_guard lock(impl_->status_mutex_);
  return impl_->st_;
}

handshake_response handler::last_response() const {
  std::lock_guard lock(impl_->status_mutex_);
  return impl_->response_;
}

asio::awaitable<std::chrono::nanoseconds> handler::ping(std::string payload) {
  return impl::ping_op(impl_, std::move(payload), nullptr);
}

asio::awaitable<std::chrono::nanoseconds> handler::ping(std::string payload, std::error_code& ec) {
  return impl::ping_op(impl_, std::move(payload), &ec);
}

asio::awaitable<void> handler::wait_for(connection_state s) {
  return impl::on_strand(impl_, impl::do_wait_for(impl_, s));
}

asio::awaitable<void> handler::wait_for(connection_state s, std::error_code& ec) {
  return impl::into(wait_for(s), ec);
}

void handler::on_connecting(connecting_hook hook) { impl_->connecting_hook_ = std::move(hook); }

void handler::add_on_open(open_step step) { impl_->open_steps_.push_back(std::move(step)); }

json& handler::metadata() { return impl_->metadata_; }

} // namespace tether
