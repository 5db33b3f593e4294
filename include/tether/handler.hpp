#pragma once
/// @file
/// tether::handler — a connection that stays up by itself: a supervisor
/// coroutine connects, runs heartbeat and reconnect loops, and dispatches
/// incoming envelopes to routes; sends wait in an ordered queue while offline.
///
/// ```cpp
/// tether::handler ws{io.get_executor(), {.reconnect = true, .max_retries = 5,
///                                        .backoff = tether::backoff::exponential,
///                                        .ping_interval = 30s}};
/// ws.add_route({"chat.message", [](const json& msg, tether::connection_context& ctx) { ... }});
/// co_await ws.connect(url);
/// json hello = {{"userId", "123"}, {"text", "Hello, world!"}};
/// co_await ws.send("chat.message", hello);
/// co_await ws.close(1000, "Normal closure");
/// ```
///
/// Thread safety: send, status, close, add_route and route removal are safe
/// from any thread. Callbacks and route handlers run on the handler's strand
/// (get_executor()); coroutines started there avoid a hop per call.

#include <tether/codec.hpp>
#include <tether/export.hpp>
#include <tether/retry.hpp>
#include <tether/router.hpp>
#include <tether/stream.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace tether {

/// The handler's life, as reported by status().state and on_state.
enum class connection_state { idle, connecting, open, reconnecting, closing, closed, failed };

/// The state's name as in status JSON: "idle", "connecting", "open", ...
TETHER_API const char* to_string(connection_state s) noexcept;

/// What a state change carries (attempt, delay and error for reconnecting).
struct state_change {
  connection_state state = connection_state::idle;
  unsigned attempt = 0;                  ///< Failed attempts since the last open.
  std::chrono::milliseconds delay{0};    ///< Wait before the next attempt (reconnecting).
  std::error_code error;                 ///< Why the last attempt or connection ended.
  std::string reason;                    ///< The retry decision's reason, or the error text.
};

/// What send() does when the offline queue is full.
enum class offline_policy {
  wait,        ///< The sender waits for room (bounded by send_timeout).
  fail,        ///< The new message fails with error::queue_full.
  drop_oldest, ///< The oldest queued message fails with error::queue_full.
};

/// Per connection data handed to route handlers. `metadata` survives reconnects.
struct connection_context {
  std::uint64_t connection_id = 0;   ///< New and unique for each physical connection.
  bool connected = false;
  std::chrono::system_clock::time_point last_message_at{};
  json metadata = json::object();
};

/// What a route handler taking the whole message receives.
struct message {
  std::string_view path;
  const json& data;
  const envelope& env;        ///< All fields, including id/reply_to/extra.
  const captures& wildcards;  ///< Segments matched by '*' and '#'.
  std::string_view raw;       ///< The frame as received.
};

/// A route: a pattern and a plain or coroutine function taking either
/// (const json&, connection_context&) or (const message&, connection_context&).
struct route {
  using json_fn = std::function<void(const json&, connection_context&)>;
  using message_fn = std::function<void(const message&, connection_context&)>;
  using json_coro = std::function<asio::awaitable<void>(const json&, connection_context&)>;
  using message_coro = std::function<asio::awaitable<void>(const message&, connection_context&)>;
  using function = std::variant<json_fn, message_fn, json_coro, message_coro>;

  template <class F>
  route(std::string pattern_, F&& f, bool replace_ = false)
      : pattern(std::move(pattern_)), fn(wrap(std::forward<F>(f))), replace(replace_) {}

  std::string pattern;
  function fn;
  bool replace = false; ///< Replace an existing route with the same pattern instead of failing.

private:
  template <class F>
  static function wrap(F&& f) {
    using D = std::decay_t<F>;
    if constexpr (std::is_invocable_r_v<asio::awaitable<void>, D&, const message&, connection_context&> &&
                  !std::is_invocable_v<D&, const json&, connection_context&>)
      return message_coro(std::forward<F>(f));
    else if constexpr (std::is_invocable_v<D&, const message&, connection_context&> &&
                       !std::is_invocable_v<D&, const json&, connection_context&>)
      return message_fn(std::forward<F>(f));
    else if constexpr (std::is_same_v<std::invoke_result_t<D&, const json&, connection_context&>,
                                      asio::awaitable<void>>)
      return json_coro(std::forward<F>(f));
    else
      return json_fn(std::forward<F>(f));
  }
};

class handler;
class route_table;

/// Returned by add_route; remove() removes the route (dropping the handle does not).
class TETHER_API route_handle {
public:
  route_handle() = default;
  /// Removes the route; false if it was already removed or replaced. Thread safe.
  bool remove();
  const std::string& pattern() const noexcept { return pattern_; }

private:
  friend class route_table;
  friend class handler;
  struct table;
  route_handle(std::shared_ptr<table> t, std::string pattern, std::uint64_t id)
      : table_(std::move(t)), pattern_(std::move(pattern)), id_(id) {}
  std::weak_ptr<table> table_;
  std::string pattern_;
  std::uint64_t id_ = 0;
};

/// Routes that one or several handlers dispatch through (handler_options::routes).
/// Thread safe: routes may be added and removed while messages are dispatched.
class TETHER_API route_table {
public:
  route_table();
  /// Registers a route; throws std::system_error(route_conflict / invalid_pattern).
  route_handle add(route r);
  /// Receives envelopes no route matched.
  void set_fallback(route::function fn);
  /// The registered patterns, sorted.
  std::vector<std::string> patterns() const;

private:
  friend class handler;
  std::shared_ptr<route_handle::table> table_;
};

/// A consistent snapshot of the handler (see docs/handler.md for the fields).
struct status {
  bool connected = false;
  std::string state;
  std::uint64_t retries = 0;          ///< Failed attempts since the last open.
  std::uint64_t reconnects = 0;       ///< Successful reconnects in total.
  std::uint64_t messages_sent = 0;    ///< Data messages written to the socket.
  std::uint64_t messages_received = 0;
  std::uint64_t bytes_sent = 0;       ///< Payload bytes of those messages.
  std::uint64_t bytes_received = 0;
  std::optional<std::int64_t> last_ping; ///< Unix epoch milliseconds.
  std::optional<std::int64_t> last_pong;
  std::optional<std::int64_t> rtt_ms;
  std::uint64_t queued = 0;           ///< Messages waiting to be written.
  std::optional<std::string> last_error;
  std::uint64_t invalid_messages = 0; ///< Frames the codec rejected.
  std::uint64_t unrouted = 0;         ///< Envelopes no route matched.

  /// The JSON object with exactly the documented field names.
  TETHER_API json to_json() const;
};

/// Everything a handler can be configured with (docs/options.md).
struct handler_options {
  bool reconnect = true;
  /// Attempts after the first failure (N = N retries); negative = no limit.
  int max_retries = 10;
  tether::backoff backoff = tether::backoff::exponential;
  std::chrono::milliseconds ping_interval{30000}; ///< Heartbeat ping period; 0 disables.
  std::chrono::milliseconds pong_timeout{10000};  ///< No pong nor any frame by then: dead.
  std::chrono::milliseconds backoff_base{500};
  std::chrono::milliseconds max_delay{30000};
  double jitter = 1.0;                            ///< 1 = full jitter, 0 = none.
  std::chrono::milliseconds stable_after{10000};  ///< Open this long: the retry counter resets.
  retry_rules rules{};                              ///< Close 1000/1001 handling, Retry-After cap.
  /// Overrides any decision of the default table.
  std::function<retry_decision(const outcome&, const retry_decision&)> classifier{};
  std::size_t max_concurrent_handlers = 64;       ///< Coroutine handlers at once; beyond, reading pauses.
  std::size_t offline_queue_size = 1024;          ///< Messages waiting while not connected.
  offline_policy offline = offline_policy::wait;
  std::chrono::milliseconds send_timeout{30000};  ///< Longest wait of a send in the queue.
  std::uint64_t rng_seed = 0;                     ///< Jitter RNG seed; 0 = random.
  stream_options stream{};                          ///< Timeouts, limits, TLS, headers of each connection.
  std::shared_ptr<const codec> wire_codec{};        ///< Default: json_codec.
  /// Routes shared with other handlers; default: a table of this handler's own.
  std::shared_ptr<route_table> routes{};
  std::function<void(const state_change&)> on_state{};
  /// Handler exceptions, invalid messages (reason and up to 256 raw bytes), dispatch errors.
  std::function<void(std::error_code, std::string_view)> on_error{};
};

/// A connection that stays up by itself.
class TETHER_API handler {
public:
  using executor_type = asio::any_io_executor;

  explicit handler(executor_type executor, handler_options options = {});
  /// Safe without close(): the coroutines end on the executor soon after.
  ~handler();
  handler(const handler&) = delete;
  handler& operator=(const handler&) = delete;

  /// The handler's strand: callbacks run here; start coroutines here to avoid hops.
  executor_type get_executor() const noexcept;

  /// Connects (following the retry policy) and starts the supervisor. Completes
  /// when the first connection is open; throws the last error once the policy
  /// gives up (error::retries_exhausted wraps nothing: the code is the last error).
  asio::awaitable<void> connect(std::string url);

  /// Registers a route; throws std::system_error(route_conflict / invalid_pattern).
  route_handle add_route(route r);
  /// Messages no route matched (also counted in status().unrouted).
  void set_fallback(route::function fn);
  /// This handler's route table (shared if handler_options::routes was given).
  route_table& routes() noexcept;

  /// Sees every decoded envelope before the router, in the order added; one that
  /// returns true consumes the envelope (replies, subscriptions plug in here).
  /// Add interceptors before connect().
  using interceptor = std::function<bool(envelope&, connection_context&)>;
  void add_interceptor(interceptor i);

  /// Sends `data` to `path` as an envelope; completes once written to the socket.
  /// While reconnecting it waits in the offline queue (offline_policy); fails
  /// with send_timeout, queue_full, handler_closed, or the connection's error if
  /// the socket dies while writing it.
  asio::awaitable<void> send(std::string path, json data);
  /// Sends a prepared envelope (ids, reply_to, extra fields, binary).
  asio::awaitable<void> send(envelope e);

  /// Stops the supervisor, fails waiting sends (operation_aborted), runs the
  /// close handshake and returns when the handler's coroutines have ended.
  asio::awaitable<void> close(std::uint16_t code = 1000, std::string reason = {});

  /// A consistent snapshot; safe from any thread.
  tether::status status() const;
  /// Completes when the handler reaches `s` (at once if it is there).
  asio::awaitable<void> wait_for(connection_state s);

  /// Called before each attempt (1 = first); may change the URL and headers,
  /// e.g. to refresh a token after a 401. Set hooks before connect().
  using connecting_hook = std::function<asio::awaitable<void>(unsigned attempt, std::string& url, http_headers& headers)>;
  void on_connecting(connecting_hook hook);
  /// Steps run in order after each (re)connect, before queued messages flow.
  using open_step = std::function<asio::awaitable<void>(connection_context&)>;
  void add_on_open(open_step step);

  /// User data that survives reconnects (copied into each connection_context).
  json& metadata();

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace tether
