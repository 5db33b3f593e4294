#pragma once
/// @file
/// An in-process WebSocket server for loopback tests: our own protocol core in
/// server role over Asio coroutines, on 127.0.0.1, plain TCP or TLS.
///
/// Every member function and coroutine must be called on the executor the server
/// was built with (tests are single-threaded: one io_context runs the server and
/// the client). Settings apply to connections accepted afterwards unless noted.
/// Actions (send_*, drop, stall) apply to every connection open at the call;
/// the per-connection forms (send_text_to, drop(id), silence, ...) to one.
///
/// Errors inside the server (an accept that fails, a bug) are stored, never
/// swallowed: the wait_* coroutines rethrow the first one and the destructor
/// reports it through the failure reporter (stderr unless set: the tests make it
/// a doctest failure, see test/support/doctest_main.cpp).
///
/// One library, `tether_loopback_server` (demo/server/meson.build), serves the
/// loopback tests and tether-demo-server alike.

#include <tether/frame.hpp>
#include <tether/handshake.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace asio {
class io_context;
} // namespace asio

namespace tether::test {

/// How the server is set up at construction.
struct server_options {
  /// PEM certificate chain and private key; both non-empty → wss:// (TLS).
  std::string cert_file, key_file;
  /// Subprotocols the server supports: it accepts the first one the client
  /// offers that is in this list (client's order), or none.
  std::vector<std::string> subprotocols;
  /// 0 = an ephemeral port. restart() reuses the bound port either way.
  std::uint16_t port = 0;
};

/// What the server answers to a complete handshake request.
enum class handshake_mode {
  accept, ///< Validate the request; 101 if valid (400 if not), then WebSocket.
  reject, ///< The response set with set_reject(), then close TCP.
  silent, ///< Answer nothing, keep TCP open (send_raw still writes).
  raw,    ///< The bytes set with set_handshake_raw() instead of the 101, then WebSocket.
};

/// A frame as a server writes it (unmasked), for send_raw and set_after_handshake.
std::string encode_frame(opcode op, std::string_view payload, bool fin = true);

/// Where a server error that no wait_* coroutine rethrew is reported when the
/// server is destroyed; empty = stderr. Not thread safe: set it before any server.
void set_failure_reporter(std::function<void(const std::string&)> fn);

/// Runs `test` on `ctx` until it finishes, at most `timeout`; rethrows what it
/// throws and throws std::runtime_error on timeout. The context is stopped and
/// restarted around the run, so servers left listening do not keep it busy.
void run(asio::io_context& ctx, std::function<asio::awaitable<void>()> test,
         std::chrono::milliseconds timeout = std::chrono::seconds(20));

/// The test server. Not copyable or movable; destroying it stops everything.
class test_server {
public:
  /// Binds 127.0.0.1 (port() is valid at once) and starts accepting.
  /// Throws std::system_error if binding fails, or if the certificate or key
  /// cannot be loaded.
  explicit test_server(asio::any_io_executor ex, server_options options = {});
  ~test_server();
  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  /// The bound port (also after stop()).
  std::uint16_t port() const;
  /// "ws://127.0.0.1:PORT" + target ("wss://" with TLS). `target` should start with '/'.
  std::string url(std::string_view target = "/") const;

  // ---- handshake behaviour (new connections) ----
  void set_handshake(handshake_mode m);
  /// Sets mode reject with this status, extra headers and body (Content-Length added).
  void set_reject(int status, http_headers headers = {}, std::string body = {});
  /// Sets mode raw: `bytes` go out instead of the 101 (a wrong accept key, garbage, ...).
  void set_handshake_raw(std::string bytes);
  /// Bytes appended to the 101 (or raw answer) in the same write, e.g. a first frame.
  void set_after_handshake(std::string raw_bytes);

  // ---- message behaviour (also applies to open connections) ----
  /// Echo every data message with its type (default true).
  void set_echo(bool on);
  /// Answer a client's close frame (default true). false: never answer it, so the
  /// client's close times out; the connection then ends when the client drops TCP.
  void set_answer_close(bool on);
  /// Answer pings with pongs (default true). false: ignore them.
  void set_answer_pings(bool on);

  // ---- actions on every open connection ----
  /// Writes `bytes` as they are, in pieces of `chunk` bytes (0 = one write) with
  /// `pace` between pieces. Works in any phase, also before the 101 (silent mode).
  void send_raw(std::string bytes, std::size_t chunk = 0, std::chrono::milliseconds pace = {});
  /// Sends proper frames through the protocol core (WebSocket phase only; skips
  /// connections that already sent a close). Throw std::system_error on local
  /// misuse (control payload over 125 bytes, a close code that may not be sent).
  void send_text(std::string payload);
  void send_binary(std::string payload);
  void send_close(std::uint16_t code, std::string reason = {});
  void send_ping(std::string payload = {});
  /// Aborts TCP (RST, no close frame) on every connection.
  void drop();
  /// Stops reading and writing on every connection, keeping TCP open until drop() or stop().
  void stall();
  /// Closes the acceptor and drops every connection. Pending wait_* coroutines keep waiting.
  void stop();
  /// Listens again on the same port after stop(). Throws std::system_error if it cannot bind.
  void restart();

  // ---- per-connection control (used by the demo server, tether-demo-server) ----
  /// Identifies one accepted TCP connection: 1, 2, 3, ... in accept order, never reused.
  using connection_id = std::uint64_t;
  /// Called for every complete data message, after it is recorded and echoed
  /// (turn echo off with set_echo(false) to answer from here instead). The view is
  /// valid during the call only. The callback may call any member function,
  /// including drop(id) or stop() for the connection it is called for; messages
  /// that arrived in the same read after such a drop are not delivered. An empty
  /// function removes it.
  void set_on_message(std::function<void(connection_id, opcode, std::string_view)> fn);
  /// Keep every message and close in messages() and closes() (default true). A
  /// long-running server turns this off so that memory does not grow.
  void set_record(bool on);
  /// The connections open now that are in the WebSocket phase, in accept order.
  std::vector<connection_id> connection_ids() const;
  /// Like send_text/send_binary/send_close, for one connection. False (nothing
  /// sent) when `id` is not open, not yet past the handshake, silenced, or has sent
  /// its close. Throw std::system_error on local misuse, as the broadcast forms do.
  bool send_text_to(connection_id id, std::string payload);
  bool send_binary_to(connection_id id, std::string payload);
  bool send_close_to(connection_id id, std::uint16_t code, std::string reason = {});
  /// send_text to every WebSocket connection except `id`; returns how many got it.
  std::size_t send_text_except(connection_id id, std::string payload);
  /// Aborts TCP (RST, no close frame) on one connection; false if `id` is not open.
  bool drop(connection_id id);
  /// Makes one connection silent: it stops answering pings and close frames and
  /// sends nothing more (what is queued is discarded), while TCP stays open and is
  /// still read, so the connection ends when the client drops it. Incoming
  /// messages are ignored (neither recorded, echoed nor passed to on_message).
  /// False if `id` is not open.
  bool silence(connection_id id);

  // ---- observations ----
  /// Completes once `n` TCP connections were accepted in total (since construction).
  /// Cancellable (e.g. raced with a timer via ||); rethrows a stored server error.
  asio::awaitable<void> wait_accepted(std::size_t n = 1);
  /// Completes once `n` handshake requests were completely received in total.
  asio::awaitable<void> wait_request(std::size_t n = 1);
  /// Completes once `n` connections ended in total.
  asio::awaitable<void> wait_closed(std::size_t n = 1);
  /// Completes once `n` data messages were received in total.
  asio::awaitable<void> wait_messages(std::size_t n);
  /// Completes once `n` pongs were received in total.
  asio::awaitable<void> wait_pongs(std::size_t n);

  std::size_t accepted() const;
  /// Pongs received from clients in total.
  std::size_t pongs() const;
  std::size_t requests() const;
  /// Connections open now.
  std::size_t connections() const;
  /// The latest complete handshake request (empty before the first).
  const server_request& last_request() const;
  /// Every data message received, in order.
  std::vector<std::pair<opcode, std::string>> messages() const;
  /// One entry per connection that got past the handshake and ended or received a
  /// close: the client's code and reason (1005 if none), 1006 if TCP ended without one.
  std::vector<std::pair<std::uint16_t, std::string>> closes() const;

private:
  struct impl;
  std::shared_ptr<impl> impl_; // shared with the server's coroutines, which may outlive *this
};

} // namespace tether::test
