#pragma once
// The byte transport under a stream: a TCP or Unix-domain socket, optionally
// through a proxy tunnel, optionally wrapped in TLS. Connecting is a chain of
// phases (resolve → connect → tunnel → TLS), each with its own timeout and
// error; the target host (SNI, verification) is kept apart from the endpoint.
#include <tether/stream.hpp>
#include <tether/url.hpp>

#include "proxy.hpp"

#include <asio/buffer.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/write.hpp>

#include <memory>
#include <optional>
#include <string>
#include <tuple>

namespace tether::detail {

/// A TLS file (ca_file, ca_dir, cert_file, key_file) that cannot be read: its
/// error (errno's) with `what` = "tls.ca_file '/path'"; empty if all are readable.
/// A configuration error, checked before any connection and never retried.
std::error_code check_tls_files(const tls_options& tls, std::string& what);

class transport {
public:
  explicit transport(asio::any_io_executor ex);
  ~transport();

  /// The phases up to TLS: the Unix socket (options.unix_socket), or resolve
  /// and TCP to the server, or to the proxy (options.proxy or the environment)
  /// and its tunnel. On failure `context` names the phase, the URL and the
  /// proxy (never its credentials); the route through a proxy is logged first.
  asio::awaitable<std::error_code> open(const url& target, const stream_options& options, std::string& context);

  /// Resolves `host`; a timeout abandons the lookup (Asio 1.22 cannot cancel it).
  asio::awaitable<std::error_code> resolve(const std::string& host, std::uint16_t port,
                                           std::chrono::milliseconds timeout);
  /// Connects to each resolved address in turn; sets TCP_NODELAY.
  asio::awaitable<std::error_code> connect(std::chrono::milliseconds timeout);
  /// Connects to a Unix-domain stream socket at `path` instead.
  asio::awaitable<std::error_code> connect_unix(const std::string& path, std::chrono::milliseconds timeout);
  /// Over the connected socket, asks the proxy for a tunnel to `target` (HTTP
  /// CONNECT or SOCKS5; tunnel.cpp). Errors are proxy_* and socks_*; `detail`
  /// says what the proxy answered.
  asio::awaitable<std::error_code> tunnel(const url& target, const proxy_url& proxy, std::chrono::milliseconds timeout,
                                          std::string& detail);
  /// TLS 1.2+ with SNI for DNS names and host (or IP) verification. On failure
  /// `detail` holds OpenSSL's reason.
  asio::awaitable<std::error_code> start_tls(const url& target, const tls_options& tls,
                                             std::chrono::milliseconds timeout, std::string& detail);

  asio::awaitable<std::tuple<std::error_code, std::size_t>> read_some(asio::mutable_buffer buf);
  asio::awaitable<std::tuple<std::error_code, std::size_t>> write(asio::const_buffer buf);
  /// read_some() with a completion handler, for the stream's reader (reader.cpp).
  template <class Handler>
  void async_read_some(asio::mutable_buffer buf, Handler&& handler) {
    if (tls_)
      tls_->async_read_some(buf, std::forward<Handler>(handler));
    else
      sock_->async_read_some(buf, std::forward<Handler>(handler));
  }
  /// write() with a completion handler instead of an awaitable, for the
  /// stream's writer, which keeps no coroutine (writer.cpp). Not cancellable
  /// either: a plain handler has no cancellation slot.
  template <class Handler>
  void async_write(asio::const_buffer buf, Handler&& handler) {
    if (tls_)
      asio::async_write(*tls_, buf, std::forward<Handler>(handler));
    else
      asio::async_write(*sock_, buf, std::forward<Handler>(handler));
  }
  /// Writes what the socket takes right now, without waiting and without a
  /// pass through the executor; returns how many bytes it took (0 under TLS,
  /// when the socket is full, or on an error, which the write() of the rest
  /// then reports). Only between writes: never while write() is in flight.
  std::size_t try_write(asio::const_buffer buf) noexcept;
  /// The most bytes one system call of try_write() sends, and the size of
  /// the pieces the writer cuts a large frame's payload into: over TCP a whole
  /// number of segments (the size TCP_MAXSEG gives), about 192 KiB. A peer
  /// that echoes payload as it arrives then sends whole segments back too,
  /// which kept w3 out of a slow mode that 128 KiB pieces fell into under
  /// paced congestion control (bbr) on loopback: docs/benchmarks.md. Unix
  /// sockets and TLS: 128 KiB.
  std::size_t send_chunk() const noexcept { return tls_ ? default_send_chunk : send_chunk_; }
  /// Asks the kernel for the segment size again (it starts at half the peer's
  /// first window and grows with it): the writer does so per large frame.
  void measure_segments() noexcept;
  /// Ends the connection politely: TLS close_notify (without insisting on the
  /// peer's), then closes the socket. Bounded by `timeout`.
  asio::awaitable<void> shutdown(std::chrono::milliseconds timeout);
  /// Closes the socket at once; pending reads and writes fail.
  void close() noexcept;

  bool secure() const noexcept { return tls_ != nullptr; }
  int native_handle() noexcept { return socket().native_handle(); }
  bool is_open() const noexcept;

private:
  using socket_type = asio::generic::stream_protocol::socket; // TCP or Unix

  socket_type& socket() noexcept;
  asio::awaitable<std::error_code> http_connect(const url& target, const proxy_url& proxy, std::string& detail);
  asio::awaitable<std::error_code> socks5_connect(const url& target, const proxy_url& proxy, std::string& detail);

  asio::any_io_executor ex_;
  asio::ip::tcp::resolver::results_type endpoints_;
  std::optional<socket_type> sock_;
  // Only for wss://; shared with other streams of the same TLS settings.
  std::shared_ptr<asio::ssl::context> ctx_;
  std::unique_ptr<asio::ssl::stream<socket_type>> tls_;
  // One send of a whole 1 MiB frame cost the kernel about half as much again
  // per byte as sends of 32 to 256 KiB (w3: 533 against 363 µs of CPU per
  // message); over TCP, the target is rounded down to whole segments.
  static constexpr std::size_t default_send_chunk = 128 * 1024;
  static constexpr std::size_t tcp_send_chunk_target = 192 * 1024;
  std::size_t send_chunk_ = default_send_chunk;
  bool tcp_ = false;
};

} // namespace tether::detail
