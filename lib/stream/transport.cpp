#include "transport.hpp"

#include <tether/error.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/connect.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read.hpp>
#include <asio/ssl/host_name_verification.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <vector>

#include "asio_compat.hpp"
#include "timeout.hpp"
#include "tls_context.hpp"

namespace tether::detail {

using asio::ip::tcp;

transport::transport(asio::any_io_executor ex) : ex_(std::move(ex)) {}
transport::~transport() = default;

transport::socket_type& transport::socket() noexcept { return tls_ ? tls_->next_layer() : *sock_; }

bool transport::is_open() const noexcept {
  return tls_ ? tls_->next_layer().is_open() : (sock_ && sock_->is_open());
}

asio::awaitable<std::error_code> transport::resolve(const std::string& host, std::uint16_t port,
                                                    std::chrono::milliseconds timeout) {
  // An IP literal needs no lookup: getaddrinfo with AI_NUMERICHOST only parses
  // it, here, without the hop to the resolver thread and back (and refuses a
  // name at once).
  {
    std::error_code not_literal;
    tcp::resolver numeric(ex_);
    auto results = numeric.resolve(host, std::to_string(port),
                                   tcp::resolver::numeric_host | tcp::resolver::numeric_service, not_literal);
    if (!not_literal) {
      endpoints_ = std::move(results);
      co_return std::error_code{};
    }
  }
  // A name: the lookup runs on Asio's resolver thread and cannot be cancelled
  // in 1.22; the shared state lets us stop waiting while it finishes in the background.
  struct state {
    explicit state(const asio::any_io_executor& ex) : resolver(ex), done(ex) {}
    tcp::resolver resolver;
    asio::steady_timer done;
    tcp::resolver::results_type results;
    std::error_code ec;
    bool finished = false;
  };
  auto st = std::make_shared<state>(ex_);
  if (timeout.count() > 0)
    st->done.expires_after(timeout);
  else
    st->done.expires_at(asio::steady_timer::time_point::max());
  st->resolver.async_resolve(host, std::to_string(port),
                             [st](std::error_code ec, tcp::resolver::results_type r) {
                               st->ec = ec;
                               st->results = std::move(r);
                               st->finished = true;
                               st->done.cancel();
                             });
  auto [ec] = co_await st->done.async_wait(use_nothrow);
  if (st->finished) {
    endpoints_ = std::move(st->results);
    co_return st->ec;
  }
  co_return ec ? std::error_code(asio::error::operation_aborted) : std::error_code(error::resolve_timeout);
}

asio::awaitable<std::error_code> transport::open(const url& u, const stream_options& o, std::string& context) {
  if (!o.unix_socket.empty()) {
    std::error_code e = co_await connect_unix(o.unix_socket, o.connect_timeout);
    if (e)
      context = "connecting to unix socket " + o.unix_socket + " for " + u.to_string();
    co_return e;
  }
  std::optional<proxy_url> proxy;
  std::string source;
  const env_lookup env = [](const char* name) { return static_cast<const char*>(std::getenv(name)); };
  if (auto e = select_proxy(u, o.proxy, env, proxy, source)) {
    context = (source.empty() ? "the proxy setting" : source) +
              " is not a proxy URL (http://, socks5:// or socks5h://host:port)";
    co_return e;
  }
  if (!proxy) {
    // One statement per phase: g++ 12 miscompiles co_await inside && chains.
    std::error_code e = co_await resolve(u.host, u.port, o.resolve_timeout);
    if (e) {
      context = "resolving " + u.to_string();
      co_return e;
    }
    e = co_await connect(o.connect_timeout);
    endpoints_ = {}; // needed only to connect: not kept for the connection's life
    if (e)
      context = "connecting to " + u.to_string();
    co_return e;
  }
  const auto via = "proxy " + proxy->display() + (source.empty() ? "" : " (from " + source + ")");
  if (o.log)
    o.log(log_level::info, "connecting to " + u.to_string() + " through " + via);
  std::error_code e = co_await resolve(proxy->host, proxy->port, o.resolve_timeout);
  if (!e)
    e = co_await connect(o.connect_timeout);
  if (e) {
    context = "connecting to " + via + ": " + e.message();
    co_return error::proxy_unreachable;
  }
  std::string why;
  e = co_await tunnel(u, *proxy, o.proxy_timeout, why);
  endpoints_ = {};
  if (e)
    context = "tunnel to " + u.to_string() + " through " + via + (why.empty() ? "" : ": " + why);
  co_return e;
}

asio::awaitable<std::error_code> transport::connect(std::chrono::milliseconds timeout) {
  tls_.reset();
  sock_.emplace(ex_);
  // The generic socket takes any endpoint; async_connect opens it per address family.
  std::vector<socket_type::endpoint_type> endpoints;
  for (const auto& entry : endpoints_)
    endpoints.emplace_back(entry.endpoint());
  auto r = co_await with_timeout(asio::async_connect(*sock_, endpoints, use_nothrow), timeout);
  if (!r) {
    close();
    co_return error::connect_timeout;
  }
  auto [ec, endpoint] = *r;
  if (ec)
    co_return ec;
  sock_->set_option(tcp::no_delay(true), ec);
  tcp_ = true;
  measure_segments();
  co_return std::error_code{};
}

asio::awaitable<std::error_code> transport::connect_unix(const std::string& path, std::chrono::milliseconds timeout) {
  tls_.reset();
  sock_.emplace(ex_);
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    co_return std::make_error_code(std::errc::filename_too_long);
  const socket_type::endpoint_type endpoint{asio::local::stream_protocol::endpoint(path)};
  auto r = co_await with_timeout(sock_->async_connect(endpoint, use_nothrow), timeout);
  if (!r) {
    close();
    co_return error::connect_timeout;
  }
  auto [ec] = *r;
  co_return ec;
}

std::error_code check_tls_files(const tls_options& tls, std::string& what) {
  const std::pair<const char*, const std::string*> files[] = {
      {"tls.ca_file", &tls.ca_file}, {"tls.ca_dir", &tls.ca_dir},
      {"tls.cert_file", &tls.cert_file}, {"tls.key_file", &tls.key_file}};
  for (const auto& [name, path] : files) {
    if (path->empty() || ::access(path->c_str(), R_OK) == 0)
      continue;
    what = std::string(name) + " '" + *path + "'";
    return {errno, std::generic_category()};
  }
  return {};
}

asio::awaitable<std::error_code> transport::start_tls(const url& target, const tls_options& tls,
                                                      std::chrono::milliseconds timeout, std::string& detail) {
  namespace ssl = asio::ssl;
  ctx_ = client_tls_context(tls, detail); // shared by streams with the same settings
  if (!ctx_)
    co_return error::tls_failed;

  tls_ = std::make_unique<ssl::stream<socket_type>>(std::move(*sock_), *ctx_);
  sock_.reset();
  // RFC 6066 §3: SNI carries DNS names only, never IP literals.
  if (!target.host_is_ip)
    SSL_set_tlsext_host_name(tls_->native_handle(), target.host.c_str());

  auto failure = std::make_shared<std::string>();
  if (!tls.insecure_skip_verify) {
    tls_->set_verify_callback(
        [verify = ssl::host_name_verification(target.host), failure, host = target.host](
            bool preverified, ssl::verify_context& ctx) mutable {
          if (!preverified) {
            const int err = X509_STORE_CTX_get_error(ctx.native_handle());
            if (failure->empty())
              *failure = X509_verify_cert_error_string(err);
            return false;
          }
          // Only the leaf certificate names the host.
          if (X509_STORE_CTX_get_error_depth(ctx.native_handle()) > 0)
            return true;
          if (!verify(preverified, ctx)) {
            *failure = "certificate does not match host " + host;
            return false;
          }
          return true;
        });
  }

  auto r = co_await with_timeout(tls_->async_handshake(ssl::stream_base::client, use_nothrow), timeout);
  if (!r) {
    close();
    co_return error::tls_timeout;
  }
  auto [hec] = *r;
  if (hec) {
    detail = failure->empty() ? hec.message() : hec.message() + " (" + *failure + ")";
    co_return error::tls_failed;
  }
  co_return std::error_code{};
}

// Not coroutines: they hand back the operation's own awaitable (no extra frame).
asio::awaitable<std::tuple<std::error_code, std::size_t>> transport::read_some(asio::mutable_buffer buf) {
  if (tls_)
    return tls_->async_read_some(buf, use_nothrow);
  return sock_->async_read_some(buf, use_nothrow);
}

asio::awaitable<std::tuple<std::error_code, std::size_t>> transport::write(asio::const_buffer buf) {
  // Not cancellable by the awaiting coroutine (a sender may write for others:
  // writer.cpp's write loop): half a frame would break the stream. close() ends it.
  if (tls_)
    return asio::async_write(*tls_, buf, asio::bind_cancellation_slot(asio::cancellation_slot(), use_nothrow));
  return asio::async_write(*sock_, buf, asio::bind_cancellation_slot(asio::cancellation_slot(), use_nothrow));
}

void transport::measure_segments() noexcept {
  if (!tcp_ || !sock_ || !sock_->is_open())
    return;
  int mss = 0;
  socklen_t len = sizeof mss;
  if (::getsockopt(sock_->native_handle(), IPPROTO_TCP, TCP_MAXSEG, &mss, &len) == 0 && mss > 0)
    send_chunk_ = std::max<std::size_t>(1, tcp_send_chunk_target / static_cast<std::size_t>(mss)) *
                  static_cast<std::size_t>(mss);
}

std::size_t transport::try_write(asio::const_buffer buf) noexcept {
  if (tls_ || !sock_ || buf.size() == 0)
    return 0;
  // An asynchronous write that the socket completes at once still costs a
  // post and a pass of the executor before the writer resumes: one per
  // message when messages go out one at a time (lock-step request/response).
  // At most send_chunk_ bytes per system call (write() keeps Asio's 64 KiB:
  // it only sends what the kernel did not take here).
  std::size_t total = 0;
  while (total < buf.size()) {
    const auto want = std::min<std::size_t>(buf.size() - total, send_chunk_);
    ssize_t n;
    do
      n = ::send(sock_->native_handle(), static_cast<const char*>(buf.data()) + total, want, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
      break;
    total += static_cast<std::size_t>(n);
    if (static_cast<std::size_t>(n) < want)
      break;
  }
  return total;
}

asio::awaitable<void> transport::shutdown(std::chrono::milliseconds timeout) {
  if (tls_ && tls_->next_layer().is_open()) {
    // Send close_notify; the peer's may never come (EOF or truncation is fine).
    auto done = co_await with_timeout(tls_->async_shutdown(use_nothrow), timeout);
    (void)done;
  }
  close();
}

void transport::close() noexcept {
  std::error_code ignored;
  if (tls_ || sock_) {
    socket().shutdown(socket_type::shutdown_both, ignored);
    socket().close(ignored);
  }
}

} // namespace tether::detail
