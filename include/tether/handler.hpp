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
  /// Failures in a row: failed attempts and connections that ended before
  /// stable_after. Kept while a connection is young; 0 once one lasted stable_after.
  unsigned attempt = 0;
  std::chrono::milliseconds delay{0};    ///< Wait before the next attempt (reconnecting).
  std::error_code error;                 ///< Why the last attempt or connection ended (server_closed for a close frame).
  /// Why, as people read it: the stream's text with its details (URL, HTTP
  /// status, OpenSSL's reason) or "server closed with 1001 (going away): bye".
  /// The same text as status().last_error.
  std::string reason;
  std::string rule; ///< The retry decision's reason ("HTTP 503: server-side, may pass", "max_retries reached", ...).
};

/// What send() does when the offline queue is full.
enum class offline_policy {
  wait,        ///< The sender waits for room (bounded by send_timeout).
  fail,        ///< The new message fails with error::queue_full.
  drop_oldest, ///< The oldest queued message fails with error::queue_full.
  drop_newest, ///< The newest queued message fails with error::queue_full; the new one is queued.
};

/// "wait", "fail", "drop_oldest" or "drop_newest".
TETHER_API const char* to_string(offline_policy p) noexcept;

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
  const json& data;           ///< null for a binary message.
  const envelope& env;        ///< All fields, including id/reply_to/extra.
  const captures& wildcards;  ///< Segments matched by '*' and '#'.
  std::string_view raw;       ///< The frame as received.
  bool binary = false;        ///< A binary message: its payload is `bytes`.
  std::string_view bytes{};   ///< The payload of a binary message (env.bytes).
};

/// Which messages a route takes (route::accepts). A message of another kind
/// for its pattern is counted as invalid (status().invalid_messages), reported
/// through on_error with error::invalid_envelope, and the connection carries on.
enum class route_kind {
  text,   ///< JSON envelopes in text frames (the default).
  binary, ///< Binary envelopes (docs/protocol.md); take `const message&` to see the bytes.
  any,    ///< Both.
};

/// "text", "binary" or "any".
TETHER_API const char* to_string(route_kind k) noexcept;

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
  /// A route for binary messages, or for both kinds: {"files.#", fn, route_kind::binary}.
  template <class F>
  route(std::string pattern_, F&& f, route_kind accepts_, bool replace_ = false)
      : pattern(std::move(pattern_)), fn(wrap(std::forward<F>(f))), replace(replace_), accepts(accepts_) {}

  std::string pattern;
  function fn;
  bool replace = false; ///< Replace an existing route with the same pattern instead of failing.
  route_kind accepts = route_kind::text; ///< Which messages it takes; others are invalid for it.

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
  /// (Two overloads rather than one by value: the copy then happens inside the
  /// library, which keeps g++ 12 -O3 -Wmaybe-uninitialized false positives out
  /// of callers' coroutines.)
  route_handle add(route&& r);
  route_handle add(const route& r);
  /// Receives envelopes no route matched.
  void set_fallback(route::function fn);
  /// The registered patterns, sorted.
  std::vector<std::string> patterns() const;

private:
  friend class handler;
  std::shared_ptr<route_handle::table> table_;
};

/// Per message settings of send().
struct send_options {
  /// Time to live: replaces send_timeout for this message. Past it a message
  /// still queued is withdrawn (never written, on this connection or a later
  /// one) and its send fails with error::send_timeout.
  std::optional<std::chrono::milliseconds> ttl{};
};

/// A message that left the offline queue without being written
/// (handler_options::on_drop): the overflow policy withdrew it (reason
/// queue_full) or its TTL / send_timeout passed (reason send_timeout).
struct dropped_message {
  std::string_view payload; ///< The encoded frame, as it would have been written (valid during the call only).
  bool binary = false;
  std::error_code reason;
};

/// How handler::request() waits for its reply (docs/handler.md, "Acknowledged requests").
struct request_options {
  /// From the call to the reply, queueing and re-sending included; after it
  /// the request fails with error::request_timeout and a late reply is dropped.
  std::chrono::milliseconds timeout{10000};
  /// Safe to carry out twice: when the connection ends after the request was
  /// written and before its reply, it is sent again (same id) after the
  /// reconnect, until its timeout, instead of failing with outcome_unknown.
  bool idempotent = false;
};

/// request()'s error reply: the server answered {"reply_to": id, "error": "..."}.
/// code() is error::request_failed; error_text() is the server's text (what()
/// is "TEXT: " followed by the code's message).
class TETHER_API request_error : public std::system_error {
public:
  explicit request_error(envelope reply);
  /// The reply's `error` text.
  const std::string& error_text() const noexcept { return text_; }
  /// The reply's optional `error_code` string (docs/protocol.md); empty if absent.
  const std::string& remote_code() const noexcept { return remote_code_; }
  /// The whole reply (its data, extra fields).
  const envelope& reply() const noexcept { return reply_; }

private:
  envelope reply_;
  std::string text_;
  std::string remote_code_;
};

/// A token bucket for outgoing envelopes (handler_options::send_rate and
/// route_send_rates; docs/handler.md, "Rate limiting"): in any span of time t
/// at most burst + per_second × t envelopes are written.
struct rate_limit {
  double per_second = 0;  ///< Envelopes per second; 0 (or less) = no limit.
  std::size_t burst = 1;  ///< Envelopes that may go out back to back (the bucket's size, at least 1).
};

/// A rate limit for the outgoing envelopes whose path matches `pattern` (the
/// router's patterns: "orders.*", "md.#"); the most specific pattern applies.
struct route_rate_limit {
  std::string pattern;
  rate_limit limit;
};

/// Outgoing batching (handler_options::batch; docs/protocol.md, "Batches"):
/// text envelopes queued together go out as one frame holding a JSON array.
struct batch_options {
  bool enabled = false;                       ///< Off by default.
  std::size_t max_count = 64;                 ///< Envelopes per frame.
  std::size_t max_bytes = 64 * 1024;          ///< Bytes per frame (one larger envelope goes alone).
  /// How long the oldest queued envelope may wait for others to join it; 0
  /// batches only what is queued already when the writer runs.
  std::chrono::milliseconds max_delay{5};
};

/// A consistent snapshot of the handler (see docs/handler.md for the fields).
struct status {
  bool connected = false;
  std::string state;
  std::uint64_t retries = 0;          ///< Failures in a row (as state_change::attempt).
  std::uint64_t reconnects = 0;       ///< Successful reconnects in total.
  std::uint64_t messages_sent = 0;    ///< Data messages written to the socket (a batch is one).
  std::uint64_t messages_received = 0;
  std::uint64_t bytes_sent = 0;       ///< Payload bytes of those messages.
  std::uint64_t bytes_received = 0;
  std::optional<std::int64_t> last_ping; ///< Unix epoch milliseconds.
  std::optional<std::int64_t> last_pong;
  std::optional<std::int64_t> rtt_ms;
  std::uint64_t queued = 0;           ///< Messages waiting to be written.
  std::uint64_t queued_bytes = 0;     ///< Their encoded size.
  std::uint64_t dropped = 0;          ///< Messages withdrawn from the queue unwritten (on_drop's calls).
  /// Why the most recent connection or attempt ended, unless our own close()
  /// ended it: the same text as state_change::reason. A successful reconnect
  /// keeps it (connected says the link is up); null until something ended.
  std::optional<std::string> last_error;
  std::uint64_t invalid_messages = 0; ///< Frames the codec rejected, and messages of a kind their route does not take.
  std::uint64_t unrouted = 0;         ///< Envelopes no route matched.
  std::uint64_t pending_requests = 0; ///< request() calls awaiting their reply.
  std::uint64_t late_replies = 0;     ///< Replies to requests that had timed out or were cancelled (dropped).
  std::uint64_t subscriptions = 0;    ///< Topics subscribed to (acknowledged, or awaiting the acknowledgement).
  std::uint64_t refused_subscriptions = 0; ///< Subscriptions the server refused (at subscribe() or re-subscribing).
  std::uint64_t publications = 0;     ///< Publications handed to a subscription's function.
  std::uint64_t throttled = 0;        ///< Envelopes that waited for the rate limit before being written.
  std::uint64_t rate_limited = 0;     ///< Sends refused with error::rate_limited (fail_when_rate_limited).
  std::uint64_t batches = 0;          ///< Frames that carried more than one envelope (batch_options).
  /// The extension the server accepted on the latest connection, as its
  /// Sec-WebSocket-Extensions value ("permessage-deflate; ..."); null if none.
  std::optional<std::string> extensions;

  /// The JSON object with exactly the documented field names.
  TETHER_API json to_json() const;
};

/// Everything a handler can be configured with (docs/options.md).
struct handler_options {
  bool reconnect = true;
  /// Attempts after the first failure (N = N retries); negative = no limit.
  int max_retries = 10;
  tether::backoff backoff = tether::backoff::exponential;
  // The backoff's settings follow it (moved after 0.1.0, CHANGELOG.md): designated
  // initialisers must keep this order.
  std::chrono::milliseconds backoff_base{500};    ///< First delay (linear: the step).
  std::chrono::milliseconds max_delay{30000};     ///< Longest delay.
  double jitter = 1.0;                            ///< 1 = full jitter, 0 = none.
  std::chrono::milliseconds ping_interval{30000}; ///< Heartbeat ping period; 0 disables.
  std::chrono::milliseconds pong_timeout{10000};  ///< No pong nor any frame by then: dead.
  /// A connection must last this long to reset the failure count; one that ends
  /// sooner counts as a failed attempt (the backoff grows, max_retries applies).
  std::chrono::milliseconds stable_after{10000};
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
  /// Every message the offline queue withdraws by its own rules, with the
  /// reason (on the strand, before its send fails): the overflow policy's
  /// victim (drop_oldest, drop_newest: queue_full) and a queued message past
  /// its TTL or send_timeout (send_timeout). Not called for a send refused
  /// before it was queued (policy fail, or policy wait running out of time),
  /// nor when close() or the handler's failure fails the whole queue.
  std::function<void(const dropped_message&)> on_drop{};
  /// After a reconnect, how long the re-subscriptions' acknowledgements are
  /// awaited before queued messages flow anyway (docs/handler.md, "Subscriptions").
  std::chrono::milliseconds resubscribe_timeout{10000};
  /// The handler's limit on outgoing envelopes (requests, subscriptions and
  /// the envelopes inside batches count one each). Default: none.
  rate_limit send_rate{};
  /// Limits per path pattern, on top of send_rate (throws
  /// std::system_error(invalid_pattern / route_conflict) from the constructor).
  std::vector<route_rate_limit> route_send_rates{};
  /// Over the rate at the time of the call, send() and request() fail with
  /// error::rate_limited instead of waiting for their turn.
  bool fail_when_rate_limited = false;
  /// Outgoing batching; off by default. Applies with tether's own codecs
  /// (json_codec, field_codec), whose text frames may hold an array.
  batch_options batch{};
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
  /// when the first connection is open. Once the policy gives up it throws the
  /// last error: code() is that error (its condition tells transport, tls,
  /// handshake, ...); what() names the attempt, the URL (never its userinfo)
  /// and details such as the HTTP status, e.g. "attempt 4: WebSocket handshake
  /// with ws://h/: HTTP 502 Bad Gateway: server rejected the WebSocket upgrade".
  /// Throws asio::error::already_connected if the handler is already running.
  /// Cancellation: stops connecting. The handler closes (as close() would:
  /// queued sends fail with operation_aborted, state closed) and connect()
  /// fails with operation_aborted; connect() may be called again.
  asio::awaitable<void> connect(std::string url);
  /// connect() without throwing: the error lands in `ec`.
  asio::awaitable<void> connect(std::string url, std::error_code& ec);

  /// Registers a route; throws std::system_error(route_conflict / invalid_pattern).
  route_handle add_route(route&& r);
  route_handle add_route(const route& r);
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
  /// with send_timeout, queue_full, handler_closed, the codec's error (through
  /// the awaitable, like every other error), or the connection's error if the
  /// socket dies while writing it. Paths starting with '$' are the library's
  /// own (subscriptions, docs/protocol.md): sending to one fails with
  /// std::errc::invalid_argument.
  /// Cancellation: a send still in the queue is removed, never sent, and fails
  /// with operation_aborted; one already handed to the socket is not
  /// interrupted: it completes with the write (or the connection's end).
  /// Scheduling: a send from a coroutine on get_executor() with no
  /// cancellation slot, with nothing queued or being written ahead of it (no
  /// batching, no rate limit), is written by the sending coroutine itself; the
  /// first such send after a message arrived may complete without suspending
  /// (as stream::send).
  asio::awaitable<void> send(std::string path, json data);
  asio::awaitable<void> send(std::string path, json data, std::error_code& ec);
  /// Sends `bytes` to `path` as a binary envelope (binary_format::path_prefixed:
  /// the path, then the raw bytes; no base64). With a raw-binary codec the path
  /// is not sent. Otherwise as send(path, data): same queue, order and errors.
  asio::awaitable<void> send_binary(std::string path, std::string bytes);
  asio::awaitable<void> send_binary(std::string path, std::string bytes, std::error_code& ec);
  /// Sends `data` to `path` as a request (an envelope with a fresh `id`) and
  /// completes with the reply's data: the envelope whose `reply_to` is that id.
  /// Fails with request_error (error::request_failed) on an error reply,
  /// error::request_timeout once `timeout` has passed (queueing included; a
  /// reply that comes later is counted in status().late_replies and dropped),
  /// error::outcome_unknown when the connection ends after the request was
  /// written and before its reply (unless idempotent: then it is sent again
  /// after the reconnect, with the same id), or as send() fails before it is
  /// written (queue_full, handler_closed, the codec's error). close() fails
  /// waiting requests with operation_aborted. Completes exactly once.
  /// Cancellation: the request is forgotten (its entry removed; a reply that
  /// comes later is a late reply) and fails with operation_aborted.
  asio::awaitable<json> request(std::string path, json data, request_options options = {});
  asio::awaitable<json> request(std::string path, json data, std::chrono::milliseconds timeout);
  asio::awaitable<json> request(std::string path, json data, request_options options, std::error_code& ec);
  /// Subscribes to `topic` (a dot-separated path, not starting with '$'):
  /// sends {"path":"$subscribe","id":ID,"data":{"topic":topic}} and completes
  /// when the server acknowledges it (docs/protocol.md). From then on every
  /// publication for the topic ({"path":"$publish","topic":...,"seq":...})
  /// goes to `fn` (any route function form; message::path is the topic,
  /// env.extra holds "topic" and "seq"), and after each reconnect the
  /// subscription is renewed before queued messages flow. Fails with
  /// error::subscription_refused on an error reply, route_conflict if the
  /// topic is subscribed already, and as request() fails (request_timeout,
  /// handler_closed, ...); a subscription that fails is not kept.
  /// Cancellation: the subscription is not kept; operation_aborted.
  template <class F>
  asio::awaitable<void> subscribe(std::string topic, F&& fn,
                                  std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    return subscribe_function(std::move(topic), route(std::string(), std::forward<F>(fn)).fn, timeout);
  }
  asio::awaitable<void> subscribe_function(std::string topic, route::function fn, std::chrono::milliseconds timeout);
  /// Ends the subscription to `topic`: its publications stop at once; while
  /// connected the server is told ({"path":"$unsubscribe",...}) and its
  /// acknowledgement awaited (the server forgets every subscription with the
  /// connection, so offline nothing is sent). Returns false if there was no
  /// such subscription. Fails as request() fails.
  asio::awaitable<bool> unsubscribe(std::string topic,
                                    std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  /// The topics subscribed to, sorted.
  std::vector<std::string> topics() const;
  /// send() with per message settings: `o.ttl` replaces send_timeout for it.
  asio::awaitable<void> send(std::string path, json data, send_options o);
  /// Sends a prepared envelope (ids, reply_to, extra fields, binary).
  asio::awaitable<void> send(envelope e);
  asio::awaitable<void> send(envelope e, send_options o);
  asio::awaitable<void> send(envelope e, std::error_code& ec);

  /// Stops the supervisor, fails waiting sends (operation_aborted), runs the
  /// close handshake and returns when the handler's coroutines have ended.
  /// The arguments are checked first, before anything changes, exactly as
  /// stream::close checks them: error::invalid_close_code (1-999, 1004-1006,
  /// 1015-2999, 5000 and above), control_payload_too_big (reason over 123
  /// bytes), invalid_close_reason (reason not UTF-8); code 0 with an empty
  /// reason sends a close frame without a status.
  /// Cancellation: only the wait ends (operation_aborted); the handler still
  /// closes, within stream.close_timeout.
  asio::awaitable<void> close(std::uint16_t code = 1000, std::string reason = {});
  asio::awaitable<void> close(std::uint16_t code, std::string reason, std::error_code& ec);

  /// Sends a ping on the open connection and waits for its pong (at most
  /// pong_timeout); returns the round-trip time and updates status().rtt_ms and
  /// last_pong. The payload is at most 125 bytes (else control_payload_too_big).
  /// Fails with asio::error::not_connected while not open (connecting,
  /// reconnecting), handler_closed after close() or failure, pong_timeout, or
  /// the connection's error if it ends first. Cancellation: stops waiting
  /// (operation_aborted); a pong that comes later is ignored.
  asio::awaitable<std::chrono::nanoseconds> ping(std::string payload = {});
  asio::awaitable<std::chrono::nanoseconds> ping(std::string payload, std::error_code& ec);

  /// A consistent snapshot; safe from any thread.
  tether::status status() const;
  /// The server's answer to the latest opening handshake: 101 and its headers
  /// once connected, or the refusal (status, headers, body) of a failed
  /// attempt; status 0 when the latest attempt got no answer. Safe from any thread.
  handshake_response last_response() const;
  /// Completes when the handler reaches `s` (at once if it is there).
  /// Cancellation: fails with operation_aborted; nothing else changes.
  asio::awaitable<void> wait_for(connection_state s);
  asio::awaitable<void> wait_for(connection_state s, std::error_code& ec);

  /// Called before each attempt (1 = first); may change the URL and headers,
  /// e.g. to refresh a token after a 401. Set hooks before connect(). If it
  /// throws, the attempt fails with error::callback_failed (and is retried
  /// per policy, counting as a failed attempt).
  using connecting_hook = std::function<asio::awaitable<void>(unsigned attempt, std::string& url, http_headers& headers)>;
  void on_connecting(connecting_hook hook);
  /// Steps run in order after each (re)connect, before queued messages flow.
  /// One that throws (say, authentication refused) ends that connection with
  /// error::callback_failed; it counts as a failed attempt.
  using open_step = std::function<asio::awaitable<void>(connection_context&)>;
  void add_on_open(open_step step);

  /// User data that survives reconnects (copied into each connection_context).
  json& metadata();

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace tether
