// The tunnel step between TCP and TLS: HTTP CONNECT or SOCKS5 through a proxy.
// The messages come from the sans-IO core (lib/core/proxy.cpp); this file only
// moves them, under one deadline for the whole exchange.
#include "transport.hpp"

#include <tether/error.hpp>

#include <asio/read.hpp>
#include <asio/write.hpp>

#include <array>

#include "asio_compat.hpp"
#include "timeout.hpp"

namespace tether::detail {

namespace {
// A proxy's answer header section larger than this is not a proxy we understand.
constexpr std::size_t max_connect_response = 16 * 1024;

/// One SOCKS5 step: writes `request`, then reads exactly `n` bytes into `reply`.
template <class Socket>
asio::awaitable<std::error_code> exchange(Socket& s, std::string_view request, unsigned char* reply, std::size_t n) {
  auto [wec, written] = co_await asio::async_write(s, asio::buffer(request), use_nothrow);
  if (wec)
    co_return wec;
  auto [rec, got] = co_await asio::async_read(s, asio::buffer(reply, n), use_nothrow);
  co_return rec;
}
} // namespace

asio::awaitable<std::error_code> transport::tunnel(const url& target, const proxy_url& proxy,
                                                   std::chrono::milliseconds timeout, std::string& detail) {
  auto exchange = proxy.type == proxy_url::kind::http ? http_connect(target, proxy, detail)
                                                      : socks5_connect(target, proxy, detail);
  auto r = co_await with_timeout(std::move(exchange), timeout);
  if (!r) {
    close();
    co_return error::proxy_timeout;
  }
  co_return *r;
}

asio::awaitable<std::error_code> transport::http_connect(const url& target, const proxy_url& proxy,
                                                         std::string& detail) {
  const std::string request = connect_request(target, proxy);
  auto [wec, written] = co_await asio::async_write(socket(), asio::buffer(request), use_nothrow);
  if (wec) {
    detail = "sending CONNECT: " + wec.message();
    co_return error::proxy_unreachable;
  }
  // Read until the blank line. The server behind the tunnel speaks only after
  // we do, so a proxy that sends more than its answer is broken.
  std::string head;
  std::array<char, 2048> buf;
  std::size_t end = std::string::npos;
  while (end == std::string::npos) {
    auto [ec, n] = co_await socket().async_read_some(asio::buffer(buf), use_nothrow);
    if (ec) {
      detail = "the proxy closed the connection after " + std::to_string(head.size()) + " bytes of its answer";
      co_return error::proxy_malformed;
    }
    head.append(buf.data(), n);
    end = head.find("\r\n\r\n");
    if (end == std::string::npos && head.size() > max_connect_response) {
      detail = "its answer's header section is over " + std::to_string(max_connect_response) + " bytes";
      co_return error::proxy_malformed;
    }
  }
  int status = 0;
  std::string reason;
  if (auto ec = parse_connect_response(head, status, reason)) {
    detail = "its answer is not HTTP";
    co_return ec;
  }
  detail = "HTTP " + std::to_string(status) + (reason.empty() ? "" : " " + reason);
  if (auto ec = connect_status_error(status))
    co_return ec;
  if (head.size() > end + 4) {
    detail += ", followed by data before the server spoke";
    co_return error::proxy_malformed;
  }
  detail.clear();
  co_return std::error_code{};
}

asio::awaitable<std::error_code> transport::socks5_connect(const url& target, const proxy_url& proxy,
                                                           std::string& detail) {
  auto& s = socket();
  std::array<unsigned char, 4 + 1 + 255 + 2> reply{};

  const std::string greeting = socks5_greeting(proxy);
  // Each co_await on its own statement: g++ 12 miscompiles it inside larger expressions.
  const std::error_code greeted = co_await exchange(s, greeting, reply.data(), 2);
  if (greeted) {
    detail = "the proxy closed the connection during method selection";
    co_return error::proxy_malformed;
  }
  if (reply[0] != 5) {
    detail = "its answer is not SOCKS5 (version " + std::to_string(reply[0]) + ")";
    co_return error::proxy_malformed;
  }
  if (reply[1] == 0xff || (reply[1] == 2 && !proxy.user)) {
    detail = proxy.user ? "it accepts neither no authentication nor username/password"
                        : "it requires authentication and the proxy URL has no user";
    co_return error::socks_auth_failed;
  }
  if (reply[1] == 2) {
    std::string auth;
    if (auto ec = socks5_auth_request(proxy, auth)) {
      detail = "the user or password is over 255 bytes";
      co_return ec;
    }
    const std::error_code authenticated = co_await exchange(s, auth, reply.data(), 2);
    if (authenticated) {
      detail = "the proxy closed the connection during authentication";
      co_return error::socks_auth_failed;
    }
    if (reply[1] != 0) {
      detail = "it refused the user and password";
      co_return error::socks_auth_failed;
    }
  } else if (reply[1] != 0) {
    detail = "it chose method " + std::to_string(reply[1]) + ", which we did not offer";
    co_return error::proxy_malformed;
  }

  std::string request;
  if (proxy.type == proxy_url::kind::socks5h && !target.host_is_ip) {
    if (target.host.size() > 255) {
      detail = "the host name is over 255 bytes";
      co_return error::url_malformed;
    }
    request = socks5_connect_request(target.host, target.port);
  } else {
    // socks5:// resolves here, as curl does; the first address is used.
    if (auto ec = co_await resolve(target.host, target.port, std::chrono::milliseconds(0))) {
      detail = "resolving " + target.host + ": " + ec.message();
      co_return ec;
    }
    const auto address = endpoints_.begin()->endpoint().address();
    if (address.is_v4()) {
      const auto bytes = address.to_v4().to_bytes();
      request = socks5_connect_request(bytes.data(), bytes.size(), target.port);
    } else {
      const auto bytes = address.to_v6().to_bytes();
      request = socks5_connect_request(bytes.data(), bytes.size(), target.port);
    }
  }
  const std::error_code requested = co_await exchange(s, request, reply.data(), 5);
  if (requested) {
    detail = "the proxy closed the connection before answering CONNECT";
    co_return error::proxy_malformed;
  }
  const std::size_t size = socks5_reply_size(reply.data());
  if (reply[0] != 5 || size == 0) {
    detail = "its CONNECT answer is not SOCKS5";
    co_return error::proxy_malformed;
  }
  if (auto ec = socks5_reply_error(reply[1])) {
    detail = "reply code " + std::to_string(reply[1]);
    co_return ec;
  }
  auto [tec, tn] = co_await asio::async_read(s, asio::buffer(reply.data() + 5, size - 5), use_nothrow);
  if (tec) {
    detail = "the proxy closed the connection inside its CONNECT answer";
    co_return error::proxy_malformed;
  }
  co_return std::error_code{};
}

} // namespace tether::detail
