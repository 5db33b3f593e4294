#pragma once
// handler::impl: the handler's state and the declarations of its jobs, each
// defined in a file of its own (handler.cpp: state changes, close, the public
// API; supervisor.cpp, dispatch.cpp, send_queue.cpp, delivery.cpp,
// heartbeat.cpp). Private to lib/handler.
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
#include <asio/experimental/parallel_group.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <unordered_map>

#include "asio_compat.hpp"
#include "crypto.hpp"
#include "fifo.hpp"
#include "live.hpp"
#include "jitter.hpp"
#include "rate_limiter.hpp"
#include "requests.hpp"
#include "signal.hpp"
#include "strand.hpp"
#include "subscriptions.hpp"
#include "route_table.hpp"
#include "stream_access.hpp"
#include "transport.hpp"

namespace tether {

using steady = std::chrono::steady_clock;
using detail::use_nothrow;

inline bool cancelled(const asio::cancellation_state& cs) { return cs.cancelled() != asio::cancellation_type::none; }

inline std::int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Invalid messages are reported with at most this much of the raw frame.
inline constexpr std::size_t max_reported_raw = 256;

struct handler::impl : std::enable_shared_from_this<impl> {
  // One queued message and its sender's completion.
  struct item {
    explicit item(detail::handoff_shutdown& wake_registry) : signal(wake_registry) {}
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
    bool priority = false;     // sent by an on_open step: may go before the queue flows
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
      : strand_(detail::make_strand(ex)), wake_registry_(detail::handoff::registry_of(ex)), opts_(std::move(o)),
        table_(opts_.routes ? opts_.routes : std::make_shared<route_table>()), routes_(table_->table_),
        changed_(strand_), backoff_timer_(strand_), stable_timer_(strand_), deadline_timer_(strand_),
        pacer_(opts_.send_rate, opts_.route_send_rates), admit_(opts_.send_rate, opts_.route_send_rates),
        writer_timer_(strand_) {
    codec_ = opts_.wire_codec ? opts_.wire_codec : std::make_shared<json_codec>();
    codec_checks_utf8_ = dynamic_cast<const json_codec*>(codec_.get()) || dynamic_cast<const field_codec*>(codec_.get());
    rng_.seed(opts_.rng_seed ? opts_.rng_seed : random_u64());
  }

  // From the CSPRNG's per-thread pool (crypto.hpp), as frame masks are:
  // constructing a std::random_device costs a CPUID, which a VM traps (two
  // per handler made connecting 1,000 handlers cost 0.23 CPU-seconds instead
  // of 0.16: docs/benchmarks.md).
  static std::uint64_t random_u64() {
    std::array<unsigned char, 8> b{};
    if (!detail::pooled_random_bytes(b)) {
      std::random_device rd; // OpenSSL failed: still random, only slower
      return (std::uint64_t{rd()} << 32) ^ rd();
    }
    std::uint64_t v = 0;
    std::memcpy(&v, b.data(), sizeof v);
    return v;
  }

  detail::live_token live_{detail::live().handlers};
  asio::any_io_executor strand_; // detail::make_strand
  detail::handoff_shutdown& wake_registry_; // for the signal of each queued message
  handler_options opts_;
  std::shared_ptr<route_table> table_;
  std::shared_ptr<route_handle::table> routes_;
  std::vector<interceptor> interceptors_;
  // Request ids start with a random number of this handler's, so that a server
  // de-duplicating re-sent requests never confuses two handlers' ids.
  detail::request_table requests_{random_u64()};
  detail::subscription_table subs_;
  std::shared_ptr<const codec> codec_;
  bool codec_checks_utf8_ = false; // tether's own codec: its text is UTF-8 already
  detail::jitter_engine rng_; // the backoff's jitter (jitter.hpp)

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
  // The handler's life on the strand, one value (state_ is what status() and
  // on_state report; during `closing` it says closing, then closed).
  enum class life {
    stopped,    // no supervisor, no stop asked: never connected, or the retry policy ended it (failed)
    connecting, // the supervisor runs: connecting, backing off, or on_open steps still running
    flowing,    // the supervisor runs an open connection whose on_open steps are done: the queue drains
    closing,    // close() or shutdown() asked the running supervisor to stop
    closed,     // a stop was asked and no supervisor runs (close() may still wait for route handlers)
  };
  life life_ = life::stopped;
  bool supervising() const noexcept {
    return life_ == life::connecting || life_ == life::flowing || life_ == life::closing;
  }
  bool stopping() const noexcept { return life_ == life::closing || life_ == life::closed; }
  bool flowing() const noexcept { return life_ == life::flowing; }
  // Asks the supervisor (if one runs) to stop.
  void stop_asked() noexcept { life_ = supervising() ? life::closing : life::closed; }
  // The supervisor ended, returning or throwing: closed if a stop was asked.
  void supervisor_ended() noexcept { life_ = stopping() ? life::closed : life::stopped; }
  // The connection's on_open steps are done: its queue flows (unless a stop
  // was asked meanwhile).
  void start_flowing() noexcept {
    if (life_ == life::connecting)
      life_ = life::flowing;
  }

  std::error_code last_error_;
  steady::time_point last_frame_{};
  bool reader_paused_ = false; // dispatch waits for a handler slot: the heartbeat does not count silence

  detail::fifo<std::shared_ptr<item>> queue_;
  std::size_t queued_bytes_ = 0; // payload bytes in queue_
  detail::fifo<std::shared_ptr<item>> in_flight_; // handed to the stream, not yet written
  std::shared_ptr<asio::cancellation_signal> opening_signal_; // the running on_open steps
  asio::cancellation_slot opening_slot_;                      // their coroutine's, to recognise their sends
  std::vector<std::shared_ptr<running>> handlers_;

  detail::signal changed_;           // the handler's state, the queue, the writer's work
  asio::steady_timer backoff_timer_;
  asio::steady_timer stable_timer_; // stable_after of the open connection (arm_stable_timer)
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

  template <class F>
  void update_status(F&& f) {
    std::lock_guard lock(status_mutex_);
    f(st_);
  }

  bool batching() const noexcept { return opts_.batch.enabled && opts_.batch.max_count > 1 && codec_checks_utf8_; }

  // t + d, saturating: a timeout of milliseconds::max() means "never".
  static steady::time_point later(steady::time_point t, std::chrono::milliseconds d) {
    const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(steady::time_point::max() - t);
    return d >= room ? steady::time_point::max() : t + d;
  }

  // ---- handler.cpp (with the public API) ----
  void set_state(connection_state s, unsigned attempt = 0, std::chrono::milliseconds delay = {},
                 std::error_code ec = {}, std::string reason = {}, std::string rule = {});
  void end_connection(std::error_code ec, std::string text);
  static asio::awaitable<void> do_close(std::shared_ptr<impl> self, unsigned code, std::string reason);
  static asio::awaitable<void> close_stream(std::shared_ptr<stream> ws, std::uint16_t code, std::string reason);
  static asio::awaitable<void> do_wait_for(std::shared_ptr<impl> self, connection_state want);
  static asio::awaitable<void> on_strand(std::shared_ptr<impl> self, asio::awaitable<void> op);
  static asio::awaitable<void> into(asio::awaitable<void> op, std::error_code& ec);
  static asio::awaitable<void> encode_and_send(std::shared_ptr<impl> self, envelope e, send_options o = {});
  static void check_user_path(const std::string& path);
  void shutdown() noexcept;

  // ---- supervisor.cpp ----
  retry_decision decide(const outcome& o);
  static asio::awaitable<void> supervise(std::shared_ptr<impl> self);
  static asio::awaitable<std::shared_ptr<stream>> open_attempt(std::shared_ptr<impl> self, outcome& o,
                                                               std::string& context);
  backoff_policy policy() const;
  static asio::awaitable<outcome> run_connection(std::shared_ptr<impl> self, std::shared_ptr<stream> ws,
                                                 bool reconnected);
  // Which loop ended first, and what each one threw.
  using loops_result = std::tuple<std::array<std::size_t, 3>, std::exception_ptr, std::exception_ptr, std::exception_ptr>;
  static asio::awaitable<loops_result> run_loops(const std::shared_ptr<impl>& self, const std::shared_ptr<stream>& ws);
  void begin_connection(const std::shared_ptr<impl>& self, const std::shared_ptr<stream>& ws, bool reconnected);
  static asio::awaitable<outcome> finish_connection(std::shared_ptr<impl> self, std::shared_ptr<stream> ws);
  void arm_stable_timer();
  static asio::awaitable<void> run_open_steps(std::shared_ptr<impl> self, std::shared_ptr<stream> ws);
  static asio::awaitable<void> do_connect(std::shared_ptr<impl> self, std::string url);

  // ---- dispatch.cpp ----
  static asio::awaitable<void> reader(std::shared_ptr<impl> self, std::shared_ptr<stream> ws);
  void dispatch(const std::shared_ptr<impl>& self, envelope env, std::string_view raw);
  void invoke(const std::shared_ptr<impl>& self, const std::shared_ptr<const route::function>& fn, envelope& env,
              const captures& caps, std::string_view raw);
  void start_coroutine(const std::shared_ptr<impl>& self, std::shared_ptr<const route::function> fn, envelope env,
                       std::vector<std::pair<std::size_t, std::size_t>> spans, std::string raw);
  static asio::awaitable<void> run_handler(std::shared_ptr<impl> self, std::shared_ptr<running> rec,
                                           std::shared_ptr<const route::function> fn, envelope env,
                                           std::vector<std::pair<std::size_t, std::size_t>> spans, std::string raw,
                                           connection_context ctx);

  // ---- send_queue.cpp ----
  void set_queued();
  void drop(const std::shared_ptr<item>& it, std::error_code reason);
  void complete(const std::shared_ptr<item>& it, std::error_code ec);
  void arm_deadline(steady::time_point t);
  void expire_queue();
  void fail_queue(std::error_code ec);
  static asio::awaitable<void> writer(std::shared_ptr<impl> self, std::shared_ptr<stream> ws);
  void enqueue(const std::shared_ptr<item>& it);
  void requeue(const std::vector<std::shared_ptr<item>>& items);
  std::vector<std::shared_ptr<item>> take_batch(std::shared_ptr<item> first, steady::time_point now);
  void hand_batch(const std::shared_ptr<impl>& self, stream& ws, std::vector<std::shared_ptr<item>> batch,
                  std::uint64_t id);
  bool paced(const std::shared_ptr<item>& it, steady::time_point now);
  void wake_writer_at(steady::time_point when);
  void written(const std::shared_ptr<item>& it, std::error_code ec, std::uint64_t connection, bool in_batch = false,
               bool wake = true);
  // A send may skip the queue and the writer (do_send): lock-step.
  bool may_write_directly() const;
  bool utf8_ok(const item& it) const;
  static asio::awaitable<void> do_send(std::shared_ptr<impl> self, std::shared_ptr<item> it);

  // ---- delivery.cpp ----
  void set_pending_requests();
  static asio::awaitable<void> resubscribe(std::shared_ptr<impl> self);
  static envelope subscribe_envelope(std::string path, const std::string& topic, const std::string& id);
  static asio::awaitable<void> do_request(std::shared_ptr<impl> self, envelope e, request_options o,
                                          std::shared_ptr<json> out, bool library = false,
                                          std::function<bool()> still_wanted = {});
  static asio::awaitable<json> request_op(std::shared_ptr<impl> self, envelope e, request_options o,
                                          std::error_code* ec);
  static void check_topic(const std::string& topic);
  void set_subscriptions();
  static asio::awaitable<void> do_subscribe(std::shared_ptr<impl> self, std::string topic, route::function fn,
                                            std::chrono::milliseconds timeout);
  static void forget_on_server(const std::shared_ptr<impl>& self, const std::string& topic);
  static asio::awaitable<void> do_unsubscribe(std::shared_ptr<impl> self, std::string topic,
                                              std::chrono::milliseconds timeout, std::shared_ptr<bool> out);
  static asio::awaitable<bool> unsubscribe_op(std::shared_ptr<impl> self, std::string topic,
                                              std::chrono::milliseconds timeout);

  // ---- heartbeat.cpp ----
  void record_pong(std::chrono::nanoseconds rtt);
  static asio::awaitable<void> heartbeat(std::shared_ptr<impl> self, std::shared_ptr<stream> ws);
  static asio::awaitable<void> do_ping(std::shared_ptr<impl> self, std::string payload,
                                       std::shared_ptr<std::chrono::nanoseconds> rtt);
  static asio::awaitable<std::chrono::nanoseconds> ping_op(std::shared_ptr<impl> self, std::string payload,
                                                           std::error_code* ec);
};

} // namespace tether
