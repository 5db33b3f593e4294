// tether::stream: one reader and one writer coroutine per connection around the
// sans-IO protocol core. The reader sees every frame (pongs, close replies) even
// when nobody reads; the writer owns all socket writes, so frames of different
// messages never interleave and control frames go out between fragments.
//
// Coordination is single-threaded on the stream's executor. Each kind of waiter
// has its own signal (signal.hpp: no timer, no system call): readers wait on
// `changed_`, each sender on its own completion signal, senders short of queue
// room on `room_`, the writer on `writer_wake_`, the reader coroutine on
// `reader_wake_`. A waiter re-checks its condition after waking and tells a
// real cancellation from a wake-up by its coroutine's cancellation state.
#include <tether/stream.hpp>

#include <tether/error.hpp>
#include <tether/protocol.hpp>
#include <tether/url.hpp>

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/ssl/error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include <algorithm>
#include <stdexcept>

#include "asio_compat.hpp"
#include "fifo.hpp"
#include "handshake_log.hpp"
#include "timeout.hpp"
#include "live.hpp"
#include "signal.hpp"
#include "stream_access.hpp"
#include "transport.hpp"
#include "utf8.hpp"

namespace tether {

detail::live_counts& detail::live() noexcept {
  static live_counts counts;
  return counts;
}

using clock = std::chrono::steady_clock;
using detail::use_nothrow;

handshake_error::handshake_error(handshake_response response)
    : std::system_error(make_error_code(error::handshake_rejected),
                        "HTTP " + std::to_string(response.status) + " " + response.reason),
      response_(std::move(response)) {}

namespace {

// Reads ask for between min_read and max_read bytes: the size doubles while
// reads fill the buffer (a large message arrives in few system calls) and
// halves when they use under a quarter of it (an idle connection holds little:
// the pending read's buffer is all the input memory an idle stream has).
constexpr std::size_t min_read = 1024;
constexpr std::size_t max_read = 1024 * 1024;
constexpr std::size_t read_chunk = 16 * 1024; // handshake and discard reads
// Frames gathered into one write, at most (one system call per batch).
constexpr std::size_t write_batch = 256 * 1024;
constexpr std::size_t max_spare_buffers = 4;
constexpr std::size_t max_spare_signals = 64;
constexpr int max_gather_yields = 16; // passes of the executor before a write (gather())

// Use as `cancelled(co_await asio::this_coro::cancellation_state)`. Not a
// coroutine of its own: Asio throws operation_aborted when a cancelled coroutine
// awaits another awaitable, and the point here is to handle it without throwing.
bool cancelled(const asio::cancellation_state& cs) { return cs.cancelled() != asio::cancellation_type::none; }

bool is_eof(const std::error_code& ec) {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

void throw_if(const std::error_code& ec, const std::string& detail) {
  if (!ec)
    return;
  if (detail.empty())
    throw std::system_error(ec);
  throw std::system_error(ec, detail);
}

} // namespace

struct stream::impl : std::enable_shared_from_this<impl> {
  enum class state { closed, connecting, open, closing };

  struct inbound {
    message_kind kind;
    std::string data;
    bool complete = false;
  };
  struct outgoing {
    std::uint64_t seq;
    opcode type;
    std::string_view data;
    std::size_t offset = 0;
    bool started = false;
  };
  struct ping_wait {
    explicit ping_wait(const asio::any_io_executor& ex) : timer(ex) {}
    std::string payload;
    asio::steady_timer timer;
    clock::time_point sent{};
    std::chrono::nanoseconds rtt{};
    bool queued = true;
    bool answered = false;
  };

  impl(asio::any_io_executor ex, stream_options o)
      : ex_(std::move(ex)), opts_(std::move(o)), changed_(ex_), room_(ex_), writer_wake_(ex_), reader_wake_(ex_),
        watchdog_(ex_) {}

  // ---- shared state ----
  detail::live_token live_{detail::live().streams};
  asio::any_io_executor ex_;
  stream_options opts_;
  std::unique_ptr<detail::transport> tr_;
  protocol proto_;
  handshake_response response_;
  std::string subprotocol_;
  state state_ = state::closed;
  std::error_code error_;
  std::string detail_;
  bool insecure_warned_ = false; // tls.insecure_skip_verify is logged once per stream
  int running_ = 0;      // reader + writer coroutines alive
  bool fatal_ = false;   // the connection must end now (violation, transport error, abort)
  bool writer_done_ = false;
  bool close_timed_out_ = false;

  detail::signal changed_;      // messages or the connection's state: read, connect, close waiters
  detail::signal room_;         // room in the send queue: senders held back by backpressure
  detail::signal writer_wake_;  // work for the writer
  detail::signal reader_wake_;  // room in the read queue again
  asio::steady_timer watchdog_; // bounds the close handshake and TCP shutdown

  // inbound
  detail::fifo<inbound> inbox_;
  std::size_t inbox_bytes_ = 0;
  std::vector<std::string> spare_;
  bool close_seen_ = false;
  bool close_delivered_ = false;
  int partial_readers_ = 0; // read_some() calls waiting: they take data before a message ends
  std::uint16_t peer_close_code_ = 0;
  std::string peer_close_reason_;

  // outbound
  detail::fifo<outgoing> sendq_;
  std::size_t sendq_bytes_ = 0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t framed_seq_ = 0;  // every message up to here is in the protocol's output
  std::uint64_t written_seq_ = 0; // ... and up to here on the socket
  std::uint64_t last_batch_ = 0;  // messages the latest write completed (gather())
  bool writing_ = false;          // a write loop runs (the writer's or a sender's)
  std::uint64_t writing_framed_ = 0; // framed_seq_ when the write in flight began
  bool writer_idle_ = false;      // the writer coroutine waits for work
  // Senders waiting for their message to be written, in seq order; each is woken
  // alone once the write that carried its last byte completes. A wait is a
  // sender's signal (send()) or a callback (the handler's pipeline, which hands
  // over many messages without a coroutine each).
  struct send_wait {
    std::uint64_t seq;
    detail::signal* done;
    std::function<void(std::error_code)> callback;
  };
  detail::fifo<send_wait> send_waits_;
  std::vector<std::unique_ptr<detail::signal>> spare_signals_;
  detail::fifo<std::string> pongs_;
  detail::fifo<std::shared_ptr<ping_wait>> pings_;
  bool close_requested_ = false;
  std::uint16_t close_code_ = 0;
  std::string close_reason_;

  // The connection's state changed (close, error, end): every waiter re-checks;
  // once the writer can write no more, callbacks learn their message failed.
  void notify() {
    changed_.notify_all();
    room_.notify_all();
    const bool ended = fatal_ || writer_done_ || state_ == state::closed;
    std::vector<std::function<void(std::error_code)>> failed; // called after the loop: they may queue more
    for (auto it = send_waits_.begin(); it != send_waits_.end();) {
      if (!it->callback) {
        it->done->notify_one();
        ++it;
      } else if (ended) {
        failed.push_back(std::move(it->callback));
        it = send_waits_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& cb : failed)
      cb(ended_error());
  }

  // Wakes the senders whose messages are now on the socket.
  void complete_written() {
    while (!send_waits_.empty() && send_waits_.front().seq <= written_seq_) {
      auto w = std::move(send_waits_.front());
      send_waits_.pop_front();
      if (w.callback)
        w.callback({});
      else
        w.done->notify_one();
    }
  }

  void log(log_level level, const std::string& text) const {
    if (opts_.log)
      opts_.log(level, text);
  }

  void reset() {
    protocol_options po;
    po.role = role::client;
    po.max_message_size = opts_.max_message_size;
    po.max_frame_size = opts_.max_frame_size;
    po.auto_pong = false; // pongs go through pongs_ so a backlog can be merged
    po.initial_buffer_size = min_read; // what the input buffer shrinks back to
    proto_ = protocol(po);
    response_ = {};
    subprotocol_.clear();
    error_ = {};
    detail_.clear();
    fatal_ = writer_done_ = close_timed_out_ = false;
    inbox_.clear();
    inbox_bytes_ = 0;
    close_seen_ = close_delivered_ = false;
    peer_close_code_ = 0;
    peer_close_reason_.clear();
    sendq_.clear();
    sendq_bytes_ = 0;
    framed_seq_ = written_seq_ = next_seq_;
    pongs_.clear();
    pings_.clear();
    close_requested_ = false;
  }

  // Records the first error that ends the connection.
  void set_error(std::error_code ec, std::string detail = {}) {
    if (error_)
      return;
    error_ = ec;
    detail_ = std::move(detail);
    log(log_level::warning, "connection error: " + message_of_error());
  }

  std::string message_of_error() const {
    if (!error_)
      return {};
    return detail_.empty() ? error_.message() : detail_ + ": " + error_.message();
  }

  // Ends the connection now: the socket closes, reader and writer finish.
  void fail(std::error_code ec, std::string detail = {}) {
    set_error(ec, std::move(detail));
    fatal_ = true;
    if (tr_)
      tr_->close();
    writer_wake_.notify_one();
    reader_wake_.notify_one();
    notify();
  }

  void arm_watchdog() {
    if (opts_.close_timeout.count() <= 0)
      return;
    watchdog_.expires_after(opts_.close_timeout);
    watchdog_.async_wait([weak = weak_from_this()](std::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->state_ == state::closed)
        return;
      self->close_timed_out_ = true;
      self->log(log_level::warning, "close handshake timed out; closing the socket");
      if (!self->proto_.close_received())
        self->set_error(error::close_timeout);
      self->fatal_ = true;
      if (self->tr_)
        self->tr_->close();
      self->writer_wake_.notify_one();
      self->reader_wake_.notify_one();
      self->notify();
    });
  }

  // ---- connect ----

  // `why` receives what a person needs beyond the code: the status of a
  // rejection, how much arrived before TCP closed, a TLS answer to ws://.
  asio::awaitable<std::error_code> handshake(const url& u, std::string& why) {
    const auto key = generate_key();
    client_request req;
    req.host = u.host_header();
    req.target = u.target;
    req.origin = opts_.origin;
    req.subprotocols = opts_.subprotocols;
    req.headers = opts_.headers;
    if (u.authorization && !req.headers.find("Authorization"))
      req.headers.add("Authorization", *u.authorization);
    // permessage-deflate: offered unless off; installed if the server accepts.
    std::unique_ptr<extension> ext;
    if (opts_.compression != compression::off)
      ext = make_permessage_deflate(opts_.deflate);
    if (ext)
      req.extensions = ext->offers();
    const auto text = build_request(req, key);
    if (opts_.log)
      for (const auto& line : detail::request_log_lines(text))
        log(log_level::debug, line);
    if (auto [ec, n] = co_await tr_->write(asio::buffer(text)); ec)
      co_return ec;

    response_parser parser(opts_.handshake);
    std::string buf(read_chunk, '\0');
    std::string_view leftover;
    std::size_t received = 0;
    for (;;) {
      auto [ec, n] = co_await tr_->read_some(asio::buffer(buf));
      if (ec) {
        if (is_eof(ec)) {
          auto r = parser.finish();
          if (r.done && !r.ec)
            break;
          if (why.empty())
            why = "the server closed the connection after " + std::to_string(received) + " bytes of response";
          co_return error::handshake_no_response;
        }
        co_return ec;
      }
      // A TLS record (alert 0x15 or handshake 0x16, version 3.x) where HTTP was expected.
      if (received == 0 && !u.secure && n >= 2 && (buf[0] == 0x15 || buf[0] == 0x16) && buf[1] == 0x03)
        why = "the server answered with TLS: try wss://";
      received += n;
      auto r = parser.feed({buf.data(), n});
      if (r.ec)
        co_return r.ec;
      if (r.done) {
        leftover = std::string_view(buf.data() + r.consumed, n - r.consumed);
        break;
      }
    }
    response_ = std::move(parser.response());
    if (opts_.log)
      for (const auto& line : detail::response_log_lines(response_))
        log(log_level::debug, line);
    if (auto ec = validate_response(response_, key, req)) {
      if (ec == error::handshake_rejected)
        why = "HTTP " + std::to_string(response_.status) + (response_.reason.empty() ? "" : " " + response_.reason);
      co_return ec;
    }
    subprotocol_ = response_.subprotocol;
    for (const auto& accepted : response_.extensions) {
      // validate_response admits only names we offered, each once.
      if (!ext || accepted.name != req.extensions.front().name)
        continue;
      if (auto ec = ext->accept(accepted)) {
        why = "the server's " + format_extension(accepted) + " is not what was offered";
        co_return ec;
      }
      proto_.set_extension(std::move(ext));
    }
    // A server may send its first frames in the same packet as the 101.
    if (!leftover.empty())
      proto_.feed(leftover);
    co_return std::error_code{};
  }

  asio::awaitable<void> connect_op(std::string_view text, std::error_code& ec) {
    // A connection that already failed may still be winding down: wait for it.
    while ((state_ != state::closed || running_ > 0) && (error_ || state_ == state::closing)) {
      co_await changed_.wait();
      auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
      if (cancelled(cs_now)) {
        ec = asio::error::operation_aborted;
        co_return;
      }
    }
    if (state_ != state::closed || running_ > 0) {
      ec = asio::error::already_connected;
      co_return;
    }
    reset();
    url u;
    if ((ec = parse_url(text, u))) {
      set_error(ec);
      co_return;
    }
    if (opts_.compression == compression::on && !deflate_available()) {
      set_error(error::compression_unavailable);
      ec = error_;
      co_return;
    }
    if (opts_.compression != compression::off) {
      try {
        (void)make_permessage_deflate(opts_.deflate); // settings out of range: fail before connecting
      } catch (const std::invalid_argument& e) {
        set_error(std::make_error_code(std::errc::invalid_argument), e.what());
        ec = error_;
        co_return;
      }
    }
    if (u.secure) {
      std::string bad_file; // before any connection: a configuration error
      if (auto e = detail::check_tls_files(opts_.tls, bad_file)) {
        set_error(e, bad_file);
        ec = error_;
        co_return;
      }
    }
    state_ = state::connecting;
    log(log_level::info, "connecting to " + u.to_string());
    tr_ = std::make_unique<detail::transport>(ex_);
    std::string where;
    std::error_code e = co_await tr_->open(u, opts_, where);
    if (e)
      set_error(e, where);
    if (!e && u.secure && opts_.tls.insecure_skip_verify && !std::exchange(insecure_warned_, true))
      log(log_level::warning, "TLS certificate and host name checks are off (tls.insecure_skip_verify): "
                              "for tests only, anyone on the path can read and change this connection");
    if (!e && u.secure) {
      std::string why;
      e = co_await tr_->start_tls(u, opts_.tls, opts_.tls_timeout, why);
      if (e)
        set_error(e, "TLS with " + u.to_string() + (why.empty() ? "" : ": " + why));
    }
    if (!e) {
      std::string why;
      auto r = co_await detail::with_timeout(handshake(u, why), opts_.handshake_timeout);
      e = r ? *r : make_error_code(error::handshake_timeout);
      if (e)
        set_error(e, "WebSocket handshake with " + u.to_string() + (why.empty() ? "" : ": " + why));
    }
    const bool ok = !e;
    if (!ok) {
      ec = error_;
      tr_->close();
      state_ = state::closed;
      co_return;
    }
    state_ = state::open;
    log(log_level::info, "open: " + u.to_string() + (subprotocol_.empty() ? "" : " (" + subprotocol_ + ")"));
    running_ = 2;
    auto on_end = [weak = weak_from_this()](std::exception_ptr e) {
      if (auto self = weak.lock(); self && e)
        self->fail(error::connection_lost, "internal error");
    };
    asio::co_spawn(ex_, run_reader(shared_from_this()), on_end);
    asio::co_spawn(ex_, run_writer(shared_from_this()), on_end);
  }

  // ---- reader ----

  bool read_paused() const {
    return state_ == state::open && inbox_bytes_ >= opts_.max_read_queue_bytes && !inbox_.empty() &&
           inbox_.front().complete;
  }

  void on_event(const event& ev) {
    switch (ev.what) {
    case event::kind::message_begin: {
      std::string buf;
      if (!spare_.empty()) {
        buf = std::move(spare_.back());
        spare_.pop_back();
      }
      inbox_.push_back({ev.type == opcode::text ? message_kind::text : message_kind::binary, std::move(buf), false});
      break;
    }
    case event::kind::data:
      inbox_.back().data.append(ev.data);
      inbox_bytes_ += ev.data.size();
      if (partial_readers_ != 0)
        changed_.notify_all(); // read_some() callers take partial data
      break;
    case event::kind::message_end:
      inbox_.back().complete = true;
      changed_.notify_all();
      break;
    case event::kind::ping:
      pongs_.emplace_back(ev.data);
      if (pongs_.size() > opts_.max_pong_backlog) // RFC 6455 §5.5.3: answering the latest is enough
        pongs_.erase(pongs_.begin(), pongs_.end() - 1);
      writer_wake_.notify_one();
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
      close_seen_ = true;
      peer_close_code_ = ev.code;
      peer_close_reason_ = std::string(ev.data);
      for (auto& p : pings_) // no pong follows a close: fail them now
        p->timer.cancel();
      if (state_ == state::open) {
        state_ = state::closing; // the core queued the echo; the writer sends it
        log(log_level::info, "peer closed with " + std::to_string(ev.code));
        arm_watchdog();
      }
      // An unfinished message can never complete now.
      if (!inbox_.empty() && !inbox_.back().complete) {
        inbox_bytes_ -= inbox_.back().data.size();
        inbox_.pop_back();
      }
      writer_wake_.notify_one();
      notify();
      break;
    case event::kind::error:
      // The core queued a close frame with the RFC's code; the writer flushes it,
      // then the connection ends, bounded by the watchdog.
      set_error(ev.error, "peer violated the protocol, sent close " + std::to_string(ev.code));
      if (!inbox_.empty() && !inbox_.back().complete) {
        inbox_bytes_ -= inbox_.back().data.size();
        inbox_.pop_back();
      }
      state_ = state::closing;
      arm_watchdog();
      writer_wake_.notify_one();
      notify();
      break;
    }
  }

  static asio::awaitable<void> run_reader(std::shared_ptr<impl> self) {
    auto& s = *self;
    std::string discard;
    std::size_t read_size = min_read;
    try {
      for (;;) {
        while (auto ev = s.proto_.next_event())
          s.on_event(*ev);
        if (s.fatal_ || s.proto_.failed())
          break;
        while (s.read_paused() && !s.fatal_)
          co_await s.reader_wake_.wait();
        if (s.fatal_)
          break;
        // After the close handshake only EOF matters; whatever else arrives is dropped.
        asio::mutable_buffer buf;
        if (s.proto_.close_received()) {
          discard.resize(read_chunk);
          buf = asio::buffer(discard);
        } else {
          auto span = s.proto_.prepare(read_size);
          buf = asio::buffer(span.data(), std::min(span.size(), read_size));
        }
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
        if (!s.proto_.close_received())
          s.proto_.commit(n);
      }
    } catch (const std::exception& e) {
      s.set_error(error::connection_lost, e.what());
    }
    co_await s.finish();
  }

  // Runs once the reader stopped: lets the writer finish (bounded), ends TCP/TLS
  // and marks the stream closed.
  asio::awaitable<void> finish() {
    const bool clean = !fatal_ && proto_.close_received() && !error_;
    if (!writer_done_) {
      if (!clean && !proto_.close_sent())
        fatal_ = true;
      arm_watchdog_if_idle();
      writer_wake_.notify_one();
      while (!writer_done_)
        co_await changed_.wait();
    }
    if (clean && tr_->is_open())
      co_await tr_->shutdown(std::min<std::chrono::milliseconds>(opts_.close_timeout, std::chrono::seconds(1)));
    else
      tr_->close();
    if (!error_ && !proto_.close_received())
      set_error(error::connection_lost);
    watchdog_.cancel();
    for (auto& p : pings_)
      p->timer.cancel();
    state_ = state::closed;
    --running_;
    log(log_level::info, clean ? "closed" : "closed: " + message_of_error());
    notify();
  }

  void arm_watchdog_if_idle() {
    if (watchdog_.expiry() <= clock::now() || state_ != state::closing)
      arm_watchdog();
  }

  // ---- writer ----

  // Frames what is queued into the protocol's output: pongs and pings first (they
  // may go between fragments of a message), then data up to one write batch, then
  // our close frame once every queued message is out.
  void fill_output() {
    while (!pongs_.empty()) {
      (void)proto_.send_pong(pongs_.front());
      pongs_.pop_front();
    }
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
      (void)proto_.send_frame(type, m.data.substr(m.offset, n), fin);
      m.started = true;
      m.offset += n;
      if (fin) {
        framed_seq_ = m.seq;
        sendq_bytes_ -= m.data.size();
        sendq_.pop_front();
        room_.notify_all(); // room in the queue
      }
    }
    if (sendq_.empty() && close_requested_)
      (void)proto_.send_close(close_code_, close_reason_);
  }

  // Before writing, lets the handlers already queued on the executor run: an
  // application answering a burst of incoming messages queues its sends one
  // handler at a time, and writing at the first would send the burst one
  // message per system call (and the peer would answer one per call too).
  // Yields while the queue keeps growing, a few times at most, and only when
  // the last write carried several messages: a yield costs a pass of the
  // executor (an epoll_wait when nothing else is queued), which a lone message
  // answered in lock-step should not pay.
  asio::awaitable<void> gather() {
    if (last_batch_ < 2)
      co_return;
    for (int i = 0; i < max_gather_yields && !fatal_ && sendq_bytes_ < write_batch; ++i) {
      const auto before = next_seq_;
      co_await asio::post(ex_, use_nothrow);
      if (next_seq_ == before)
        break;
    }
  }

  // The write loop, `while (auto out = next_write(); out.size()) wrote(co_await
  // tr_->write(out))`, runs in whoever holds `writing_`: the writer coroutine,
  // or a sender that found the writer idle (send_op), which saves two hops
  // through the executor per message for a sender that waits for its write
  // anyway. Written out in both places: a nested coroutine would cost a frame
  // per message.

  // Marks the write loop's holder (however the loop ends).
  struct write_hold {
    impl& s;
    explicit write_hold(impl& owner) : s(owner) { s.writing_ = true; }
    ~write_hold() { s.writing_ = false; }
    write_hold(const write_hold&) = delete;
    write_hold& operator=(const write_hold&) = delete;
  };

  // What to write next (empty: nothing pending, or the connection failed).
  asio::const_buffer next_write() {
    if (fatal_)
      return {};
    fill_output();
    writing_framed_ = framed_seq_;
    const auto out = proto_.pending_output();
    return asio::buffer(out.data(), out.size());
  }

  // Accounts a completed write; false once the connection failed.
  bool wrote(const std::tuple<std::error_code, std::size_t>& result) {
    const auto& [ec, n] = result;
    proto_.consume_output(n);
    if (ec) {
      fail(error::connection_lost, "write: " + ec.message());
      return false;
    }
    last_batch_ = writing_framed_ - written_seq_;
    written_seq_ = writing_framed_;
    complete_written();
    return true;
  }

  // A sender may write itself: the writer coroutine is parked with nothing to
  // do, nobody else writes, no frame sits unwritten, and messages come one at
  // a time (in a burst the writer gathers them into one write instead).
  bool can_write_inline() const {
    return writer_idle_ && !writing_ && !fatal_ && last_batch_ < 2 && proto_.pending_output().empty();
  }

  static asio::awaitable<void> run_writer(std::shared_ptr<impl> self) {
    auto& s = *self;
    for (;;) {
      if (s.fatal_)
        break;
      if (!s.writing_) {
        try {
          write_hold hold(s);
          for (auto out = s.next_write(); out.size(); out = s.next_write()) {
            auto result = co_await s.tr_->write(out);
            if (!s.wrote(result))
              break;
          }
        } catch (const std::exception& e) {
          s.fail(error::connection_lost, e.what());
        }
        if (s.fatal_ || s.proto_.close_sent())
          break; // our close frame is on the wire; nothing may follow it
      }
      s.writer_idle_ = !s.writing_;
      co_await s.writer_wake_.wait();
      s.writer_idle_ = false;
      if (!s.writing_)
        co_await s.gather();
    }
    // A sender's write still in flight ends before the writer does (it ends
    // with the socket's close at the latest).
    while (s.writing_)
      co_await s.writer_wake_.wait();
    s.writer_done_ = true;
    --s.running_;
    s.reader_wake_.notify_one();
    s.notify();
  }

  // ---- operations ----

  std::error_code ended_error() const { return error_ ? error_ : make_error_code(error::closed); }

  // What a read takes without waiting: a message (or, with `some`, part of
  // one), the peer's close, or the connection's end in `ec`. False: wait.
  bool take(std::string& buf, bool some, read_result& out, std::error_code& ec) {
    if (!inbox_.empty()) {
      auto& f = inbox_.front();
      if (f.complete || (some && !f.data.empty())) {
        out.kind = f.kind;
        out.size = f.data.size();
        out.message_end = f.complete;
        buf.swap(f.data); // hand over the message; keep the caller's old buffer for reuse
        f.data.clear();
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
    if (close_seen_ && !close_delivered_) {
      close_delivered_ = true;
      out.kind = message_kind::close;
      out.close_code = peer_close_code_;
      out.close_reason = peer_close_reason_;
      return true;
    }
    if (state_ == state::closed || fatal_ || (error_ && inbox_.empty()) || close_delivered_ ||
        (state_ == state::closing && running_ == 0)) {
      ec = ended_error();
      return true;
    }
    return false;
  }

  // `utf8_checked`: text from tether's own codecs, UTF-8 by construction.
  // A send, from the public entry point (one frame: a send per message).
  // `keep` holds the impl alive; errors go to *out, or are thrown without it.
  asio::awaitable<void> send_op([[maybe_unused]] std::shared_ptr<impl> keep, std::string_view data, message_kind kind,
                                std::error_code* out, bool utf8_checked) {
    if (kind == message_kind::close) {
      co_return report(*this, make_error_code(std::errc::invalid_argument), out);
    }
    // A peer must fail the connection on invalid UTF-8 (RFC 6455 §8.1): refuse it here.
    if (kind == message_kind::text && !utf8_checked && !detail::is_valid_utf8(data)) {
      co_return report(*this, error::invalid_utf8, out);
    }
    // Backpressure: wait for room, unless the queue is empty.
    while (state_ == state::open && !close_requested_ && !sendq_.empty() &&
           sendq_bytes_ + data.size() > opts_.max_send_queue_bytes) {
      co_await room_.wait();
      auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
      if (cancelled(cs_now)) {
        co_return report(*this, asio::error::operation_aborted, out);
      }
    }
    if (state_ != state::open || close_requested_ || fatal_) {
      co_return report(*this, ended_error(), out);
    }
    const auto seq = ++next_seq_;
    sendq_.push_back({seq, kind == message_kind::text ? opcode::text : opcode::binary, data});
    sendq_bytes_ += data.size();
    if (can_write_inline()) {
      try {
        write_hold hold(*this);
        for (auto out = next_write(); out.size(); out = next_write()) {
          auto result = co_await tr_->write(out);
          if (!wrote(result))
            break;
        }
      } catch (const std::exception& e) {
        fail(error::connection_lost, e.what());
      }
      if (fatal_ || proto_.close_sent())
        writer_wake_.notify_one(); // the writer ends now
      if (!fatal_ && written_seq_ >= seq)
        co_return report(*this, {}, out);
    } else {
      writer_wake_.notify_one();
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
      if (fatal_ || writer_done_ || state_ == state::closed) {
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
  std::error_code start_send(std::string_view data, message_kind kind, bool utf8_checked,
                             std::function<void(std::error_code)> done) {
    if (kind == message_kind::text && !utf8_checked && !detail::is_valid_utf8(data))
      return error::invalid_utf8;
    if (state_ != state::open || close_requested_ || fatal_ || writer_done_)
      return ended_error();
    const auto seq = ++next_seq_;
    sendq_.push_back({seq, kind == message_kind::text ? opcode::text : opcode::binary, data});
    sendq_bytes_ += data.size();
    send_waits_.push_back({seq, nullptr, std::move(done)});
    writer_wake_.notify_one();
    return {};
  }

  // Drops message `seq` if the writer has not taken any of it.
  bool remove_unsent(std::uint64_t seq) {
    auto it = std::find_if(sendq_.begin(), sendq_.end(), [seq](const outgoing& o) { return o.seq == seq; });
    if (it == sendq_.end() || it->started)
      return false;
    sendq_bytes_ -= it->data.size();
    sendq_.erase(it);
    room_.notify_all();
    return true;
  }

  asio::awaitable<std::chrono::nanoseconds> ping_op(std::string_view payload, std::chrono::milliseconds timeout,
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
    writer_wake_.notify_one();
    auto [tec] = co_await p->timer.async_wait(use_nothrow);
    pings_.erase_if([&p](const std::shared_ptr<ping_wait>& q) { return q == p; });
    if (p->answered)
      co_return p->rtt;
    auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
    if (cancelled(cs_now))
      ec = asio::error::operation_aborted;
    else if (!tec)
      ec = error::pong_timeout;
    else if (close_seen_ && !error_)
      ec = error::server_closed; // the peer's close came first
    else
      ec = ended_error();
    co_return std::chrono::nanoseconds{};
  }

  // Validates and starts a close; true when there is an ending to wait for.
  bool start_close(unsigned code, std::string_view reason, std::error_code& ec) {
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
      close_requested_ = true;
      close_code_ = static_cast<std::uint16_t>(code);
      close_reason_ = std::string(reason);
      log(log_level::info, "closing with " + std::to_string(code));
      arm_watchdog();
      writer_wake_.notify_one();
    }
    return true;
  }

  void abort_now() noexcept {
    if (state_ == state::closed && running_ == 0)
      return;
    fail(asio::error::operation_aborted, "aborted");
  }

  // ---- entry points: hold the impl alive, report through *ec or throw ----

  static void report(impl& s, std::error_code ec, std::error_code* out) {
    if (out) {
      *out = ec;
      return;
    }
    if (!ec)
      return;
    if (ec == error::handshake_rejected && s.response_.status != 0)
      throw handshake_error(s.response_);
    throw_if(ec, ec == s.error_ ? s.detail_ : std::string());
  }

  static asio::awaitable<void> do_connect(std::shared_ptr<impl> self, std::string url, std::error_code* out) {
    std::error_code ec;
    co_await self->connect_op(url, ec);
    report(*self, ec, out);
  }

  // One coroutine for the whole read (no inner frame: a read per message).
  static asio::awaitable<read_result> do_read(std::shared_ptr<impl> self, std::string& buf, std::error_code* out,
                                              bool some) {
    auto& s = *self;
    std::error_code ec;
    read_result r;
    while (!s.take(buf, some, r, ec)) {
      s.partial_readers_ += some;
      co_await s.changed_.wait();
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

  static asio::awaitable<void> do_send(std::shared_ptr<impl> self, std::string_view data, message_kind kind,
                                       std::error_code* out, bool utf8_checked = false) {
    auto& s = *self;
    return s.send_op(std::move(self), data, kind, out, utf8_checked);
  }

  static asio::awaitable<std::chrono::nanoseconds> do_ping(std::shared_ptr<impl> self, std::string payload,
                                                           std::chrono::milliseconds timeout, std::error_code* out) {
    std::error_code ec;
    auto rtt = co_await self->ping_op(payload, timeout, ec);
    report(*self, ec, out);
    co_return rtt;
  }

  static asio::awaitable<void> do_close(std::shared_ptr<impl> self, unsigned code, std::string reason,
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
      if (!ec && self->close_timed_out_ && !self->proto_.close_received())
        ec = error::close_timeout;
    }
    report(*self, ec, out);
  }
};

// `code` is unsigned, not std::uint16_t: g++ 12 miscompiles coroutines that take
// a 16-bit parameter (the frame is resumed uninitialised).
// ---- public API ----

stream::stream(executor_type executor, stream_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {}

stream::~stream() {
  if (impl_)
    impl_->abort_now();
}

stream::stream(stream&&) noexcept = default;
stream& stream::operator=(stream&& other) noexcept {
  if (this != &other) {
    if (impl_)
      impl_->abort_now();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

stream::executor_type stream::get_executor() const noexcept { return impl_->ex_; }
const stream_options& stream::options() const noexcept { return impl_->opts_; }
bool stream::is_open() const noexcept { return impl_->state_ == impl::state::open && !impl_->error_; }
const handshake_response& stream::response() const noexcept { return impl_->response_; }
std::string_view stream::subprotocol() const noexcept { return impl_->subprotocol_; }
std::error_code stream::last_error() const noexcept { return impl_->error_; }
std::string stream::last_error_message() const { return impl_->message_of_error(); }
std::string stream::last_error_context() const { return impl_->detail_; }
void stream::abort() noexcept { impl_->abort_now(); }

// Each public operation hands back the impl's coroutine directly (no wrapper
// frame). With ec == nullptr the coroutine throws instead of reporting.
asio::awaitable<void> stream::connect(std::string_view url, std::error_code& ec) {
  return impl::do_connect(impl_, std::string(url), &ec);
}
asio::awaitable<void> stream::connect(std::string_view url) {
  return impl::do_connect(impl_, std::string(url), nullptr);
}
asio::awaitable<read_result> stream::read(std::string& buffer, std::error_code& ec) {
  return impl::do_read(impl_, buffer, &ec, false);
}
asio::awaitable<read_result> stream::read(std::string& buffer) { return impl::do_read(impl_, buffer, nullptr, false); }
asio::awaitable<read_result> stream::read_some(std::string& buffer, std::error_code& ec) {
  return impl::do_read(impl_, buffer, &ec, true);
}
asio::awaitable<read_result> stream::read_some(std::string& buffer) {
  return impl::do_read(impl_, buffer, nullptr, true);
}
asio::awaitable<void> stream::send(std::string_view data, message_kind kind, std::error_code& ec) {
  return impl::do_send(impl_, data, kind, &ec);
}
asio::awaitable<void> stream::send(std::string_view data, message_kind kind) {
  return impl::do_send(impl_, data, kind, nullptr);
}

asio::awaitable<void> detail::stream_access::send_checked_text(stream& s, std::string_view data,
                                                               std::error_code& ec) {
  return stream::impl::do_send(s.impl_, data, message_kind::text, &ec, true);
}

std::error_code detail::stream_access::start_send(stream& s, std::string_view data, message_kind kind,
                                                  bool utf8_checked, std::function<void(std::error_code)> done) {
  return s.impl_->start_send(data, kind, utf8_checked, std::move(done));
}

std::size_t detail::stream_access::queued_bytes(const stream& s) noexcept { return s.impl_->sendq_bytes_; }

std::size_t detail::stream_access::buffered_read_bytes(const stream& s) noexcept { return s.impl_->inbox_bytes_; }
asio::awaitable<std::chrono::nanoseconds> stream::ping(std::string_view payload, std::chrono::milliseconds timeout,
                                                       std::error_code& ec) {
  return impl::do_ping(impl_, std::string(payload), timeout, &ec);
}
asio::awaitable<std::chrono::nanoseconds> stream::ping(std::string_view payload, std::chrono::milliseconds timeout) {
  return impl::do_ping(impl_, std::string(payload), timeout, nullptr);
}
asio::awaitable<void> stream::close(std::uint16_t code, std::string_view reason, std::error_code& ec) {
  return impl::do_close(impl_, code, std::string(reason), &ec);
}
asio::awaitable<void> stream::close(std::error_code& ec) {
  return impl::do_close(impl_, close_code::normal, std::string(), &ec);
}
asio::awaitable<void> stream::close(std::uint16_t code, std::string_view reason) {
  return impl::do_close(impl_, code, std::string(reason), nullptr);
}

} // namespace tether
