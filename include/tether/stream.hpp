#pragma once
/// @file
/// tether::stream — one WebSocket connection as awaitable Asio coroutines over
/// TCP or TLS: connect, read, send, ping and close. Usable alone (like Beast's
/// websocket::stream); tether::handler builds reconnects on top of it.
///
/// Threading: a stream is not thread safe. Run every operation on the stream's
/// executor; with an io_context run by several threads, give the stream a strand
/// and start the coroutines that use it on that strand.

#include <tether/deflate.hpp>
#include <tether/export.hpp>
#include <tether/handshake.hpp>
#include <tether/protocol.hpp>

// Before any Asio header: Asio picks its aligned allocator from libstdc++'s
// macros, and every translation unit, libtether's included, must pick the same.
#include <cstdlib>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tether {

namespace detail {
struct stream_access; // the handler's way in (lib/stream/stream_access.hpp)
} // namespace detail

/// TLS settings for wss:// (TLS 1.2 or later, verification on by default).
struct tls_options {
  std::string ca_file{};   ///< PEM bundle to trust instead of the system store.
  std::string ca_dir{};    ///< Hashed certificate directory to trust as well.
  std::string cert_file{}; ///< Client certificate (PEM), for mutual TLS.
  std::string key_file{};  ///< Client private key (PEM).
  /// Accept any certificate and host name. Never the default; for tests only.
  /// The stream logs a warning at its first wss:// connect with it set.
  bool insecure_skip_verify = false;
};

/// Severity of a log line passed to stream_options::log.
enum class log_level { debug, info, warning };

/// "debug", "info" or "warning".
TETHER_API const char* to_string(log_level l) noexcept;

/// Everything a stream can be configured with, with its default.
struct stream_options {
  // Timeouts for each phase of connect() and for close(); 0 disables one.
  std::chrono::milliseconds resolve_timeout{10000};
  std::chrono::milliseconds connect_timeout{10000}; ///< TCP, over all resolved addresses.
  std::chrono::milliseconds proxy_timeout{10000}; ///< The CONNECT or SOCKS5 exchange with the proxy.
  std::chrono::milliseconds tls_timeout{10000};
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds close_timeout{5000}; ///< Close handshake plus TCP shutdown.

  /// Largest incoming message (16 MiB, as Beast); over it the connection fails with 1009.
  std::size_t max_message_size = 16 * 1024 * 1024;
  /// Largest incoming frame payload.
  std::size_t max_frame_size = 16 * 1024 * 1024;
  /// Outgoing messages larger than this are sent as several frames of this
  /// size (0: never split). Pings and pongs may go between frames. Small frames
  /// cost the server work per frame: at 64 KiB a 1 MiB echo ran at under half
  /// the rate of whole frames (docs/benchmarks.md).
  std::size_t fragment_size = 1024 * 1024;
  /// Bytes of outgoing messages that may wait; a sender beyond it waits (backpressure).
  /// A message larger than the bound is admitted when the queue is empty.
  std::size_t max_send_queue_bytes = 4 * 1024 * 1024;
  /// Bytes of complete incoming messages buffered while nobody reads; past it the
  /// stream stops reading the socket (backpressure to the server).
  std::size_t max_read_queue_bytes = 4 * 1024 * 1024;
  /// Unwritten pongs kept; past it only the latest is answered (RFC 6455 §5.5.3).
  std::size_t max_pong_backlog = 16;
  handshake_limits handshake{};

  /// permessage-deflate (RFC 7692): offered by default when built with zlib;
  /// the server decides. What it accepted is in response().extensions.
  tether::compression compression = tether::compression::automatic;
  deflate_options deflate{};               ///< Level, windows, threshold, context takeover.

  std::vector<std::string> subprotocols{}; ///< Offered in order; the chosen one is subprotocol().
  http_headers headers{};                  ///< Extra request headers (Authorization, Cookie, ...).
  std::string origin{};                    ///< Origin header, omitted when empty.
  tls_options tls{};

  /// The proxy: empty (the default) reads the environment as curl does:
  /// http_proxy (lower case only) for ws://, https_proxy or HTTPS_PROXY for
  /// wss://, else all_proxy or ALL_PROXY, skipped for hosts in no_proxy or
  /// NO_PROXY. "none" connects directly. Otherwise a proxy URL, used for every
  /// host (the environment is not read): http://[user:password@]host[:port]
  /// (HTTP CONNECT, Basic auth), socks5://... (the target is resolved here) or
  /// socks5h://... (resolved by the proxy); port 1080 if not given. TLS for
  /// wss:// runs inside the tunnel, verified against the URL's host.
  std::string proxy{};
  /// A Unix-domain socket to connect to instead of resolving the URL's host
  /// (no proxy is used). The URL still gives Host, the path and the scheme:
  /// wss:// runs TLS over the socket with SNI and verification for the URL's host.
  std::string unix_socket{};

  /// Receives warnings and state changes; silent by default. At debug level,
  /// the opening handshake line by line ("> " request, "< " response, as curl
  /// -v shows it). Never given the values of Authorization, Cookie, Set-Cookie,
  /// Proxy-Authorization or of fields named like credentials (auth, token,
  /// key, secret, session, password; they show as [redacted]), nor URL userinfo.
  std::function<void(log_level, std::string_view)> log{};
};

/// What a read returned.
enum class message_kind { text, binary, close };

/// "text", "binary" or "close".
TETHER_API const char* to_string(message_kind k) noexcept;

/// The result of read() or read_some().
struct read_result {
  message_kind kind = message_kind::text;
  std::size_t size = 0;          ///< Bytes placed in the caller's buffer.
  bool message_end = true;       ///< read_some(): this chunk ends the message.
  std::uint16_t close_code = 0;  ///< kind == close: the peer's code (1005 if none).
  std::string close_reason;      ///< kind == close: the peer's reason.
};

/// Thrown when the server answers the opening handshake with a status other
/// than 101. code() is error::handshake_rejected.
class TETHER_API handshake_error : public std::system_error {
public:
  explicit handshake_error(handshake_response response);
  const handshake_response& response() const noexcept { return response_; }
  int status() const noexcept { return response_.status; }

private:
  handshake_response response_;
};

/// One WebSocket client connection.
class TETHER_API stream {
public:
  using executor_type = asio::any_io_executor;

  explicit stream(executor_type executor, stream_options options = {});
  ~stream();
  stream(stream&&) noexcept;
  stream& operator=(stream&&) noexcept;

  executor_type get_executor() const noexcept;
  const stream_options& options() const noexcept;

  /// Resolves, connects over TCP (every address in turn), runs TLS for wss://
  /// and the opening handshake. Each phase has its own timeout; errors name it
  /// (error::resolve_timeout, tls_failed, handshake_rejected, ...).
  /// Throws std::system_error, or handshake_error for a non-101 answer.
  /// Cancellation: closes the socket; the stream can connect again.
  asio::awaitable<void> connect(std::string_view url);
  asio::awaitable<void> connect(std::string_view url, std::error_code& ec);

  /// Reads one whole message into `buffer` (replacing its contents; its capacity
  /// is reused). A close from the peer is a result (kind close), not an error;
  /// reading after it returns error::closed. Cancellation loses no data: a later
  /// read returns the message.
  asio::awaitable<read_result> read(std::string& buffer);
  asio::awaitable<read_result> read(std::string& buffer, std::error_code& ec);

  /// Reads the next available part of a message into `buffer` (replacing it), so
  /// a large message need not be held whole; message_end marks its last part.
  asio::awaitable<read_result> read_some(std::string& buffer);
  asio::awaitable<read_result> read_some(std::string& buffer, std::error_code& ec);

  /// Sends one message, fragmented at fragment_size; completes once it is written
  /// to the socket. Text must be UTF-8 (else error::invalid_utf8, nothing sent).
  /// Several coroutines may send at once: messages never interleave.
  /// Buffer lifetime: the stream keeps a view of `data`, not a copy, until the
  /// send completes (also when it fails or is cancelled): keep the bytes alive
  /// and unchanged until then, as with asio::async_write.
  /// Cancellation: a message no byte of which was written never goes out; one
  /// cancelled after that fails the connection (error::partial_write_cancelled).
  /// Scheduling: the first send after a message arrived may complete at once,
  /// without suspending, when the socket takes it whole (an answer in
  /// lock-step); other sends give the executor's other handlers a turn first.
  asio::awaitable<void> send(std::string_view data, message_kind kind = message_kind::text);
  asio::awaitable<void> send(std::string_view data, message_kind kind, std::error_code& ec);

  /// Sends a ping and waits for the matching pong; returns the round-trip time.
  /// Fails with error::pong_timeout after `timeout`, with error::server_closed
  /// as soon as the peer's close frame arrives instead (no pong follows a close).
  asio::awaitable<std::chrono::nanoseconds> ping(std::string_view payload = {},
                                                 std::chrono::milliseconds timeout = std::chrono::seconds{10});
  asio::awaitable<std::chrono::nanoseconds> ping(std::string_view payload, std::chrono::milliseconds timeout,
                                                 std::error_code& ec);

  /// Closes cleanly (RFC 6455 §7.1.1): sends close after the messages already
  /// being sent, waits for the peer's close and for the server to end TCP (and
  /// TLS close_notify), all within close_timeout; past it the socket is closed
  /// hard (error::close_timeout). Closing a stream that is not open does nothing.
  asio::awaitable<void> close(std::uint16_t code = 1000, std::string_view reason = {});
  asio::awaitable<void> close(std::uint16_t code, std::string_view reason, std::error_code& ec);
  /// close(1000) without throwing.
  asio::awaitable<void> close(std::error_code& ec);

  /// Closes the socket at once, without a close handshake. Pending operations
  /// fail with asio::error::operation_aborted.
  void abort() noexcept;

  /// True between a successful connect() and the end of the connection.
  bool is_open() const noexcept;
  /// The handshake response (status, headers; body for a rejection).
  const handshake_response& response() const noexcept;
  /// The subprotocol the server chose, empty if none.
  std::string_view subprotocol() const noexcept;
  /// Why the connection ended, if it has (empty while open).
  std::error_code last_error() const noexcept;
  /// last_error() with its details, such as OpenSSL's verification reason:
  /// last_error_context() + ": " + last_error().message().
  std::string last_error_message() const;
  /// What the stream was doing when it failed, with the details (phase, URL
  /// without userinfo, HTTP status, OpenSSL's reason); empty if there are none.
  std::string last_error_context() const;

  struct impl;

private:
  friend struct detail::stream_access;
  std::shared_ptr<impl> impl_;
};

} // namespace tether
