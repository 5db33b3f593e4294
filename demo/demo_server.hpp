#pragma once
/// @file
/// The demo server behind tether-demo-server and tether-repl's embedded server:
/// the loopback test server (demo/server/test_server) speaking the envelope
/// protocol of docs/protocol.md.
///
/// - `echo.*` envelopes go back to the sender (with `reply_to` when they carry an `id`);
/// - `$subscribe` / `$unsubscribe` {"topic": T} are acknowledged for topics
///   under `ticker.` (others refused); each such topic with subscribers is
///   published every 200 ms: {"path":"$publish","topic":T,"seq":N,"data":{"at_ms":...}};
/// - `chat.*` envelopes go to every other client;
/// - `server.*` envelopes make it misbehave on purpose (drop, silence, close,
///   garbage, restart) or describe it (info);
/// - anything else, and frames that are not envelopes, get a `server.error`
///   reply; binary frames are echoed.
///
/// Single-threaded like the test server: construct it, call its members and run
/// its executor on one thread.

#include <asio/any_io_executor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace tether::demo {

/// How the demo server is set up.
struct demo_server_options {
  std::uint16_t port = 0;           ///< 0 = a free port.
  std::string cert_file, key_file;  ///< Both set: wss:// (TLS).
  /// One line per connection, action and error (tether-demo-server --verbose);
  /// silent when empty.
  std::function<void(std::string_view)> log;
};

/// The demo server. Binds 127.0.0.1 at construction.
class demo_server {
public:
  /// Throws std::system_error if binding or loading the certificate fails.
  explicit demo_server(asio::any_io_executor ex, demo_server_options options = {});
  /// Stops listening and drops every connection.
  ~demo_server();
  demo_server(const demo_server&) = delete;
  demo_server& operator=(const demo_server&) = delete;

  /// The bound port (stays the same across server.restart).
  std::uint16_t port() const;
  /// "ws://127.0.0.1:PORT" (wss:// with TLS), without a trailing slash.
  std::string url() const;
  /// Stops listening, drops every connection and cancels a pending restart.
  /// Idempotent; the executor's run() returns once the server's work is done.
  void stop();

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace tether::demo
