// tether::stream through real proxies (tinyproxy for HTTP CONNECT, microsocks
// for SOCKS5) and over Unix-domain sockets, to the Python websockets server.
// The proxies bind their outgoing connections to 127.0.0.2, and the server's
// "!peer" answer shows the address it saw: proof that the tunnel carried the
// connection. Only this file sets the *_proxy variables (meson's test setup
// empties them for every other test).
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>
#include <tether/stream.hpp>

#include <asio/use_awaitable.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <ostream>
#include <thread>

#include "peer.hpp"
#include "proxy_process.hpp"
#include "run.hpp"

using namespace tether;
using namespace tether::test;
using asio::awaitable;
using kind = proxy_process::kind;

namespace {

/// Sets environment variables for one scope, restoring the previous values.
class scoped_env {
public:
  explicit scoped_env(std::initializer_list<std::pair<std::string, std::string>> vars) {
    for (auto& [name, value] : vars) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~scoped_env() {
    for (auto& [name, old] : saved_) {
      if (old)
        ::setenv(name.c_str(), old->c_str(), 1);
      else
        ::unsetenv(name.c_str());
    }
  }

private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

stream_options tls_options_for_tests(stream_options o = {}) {
  o.tls.ca_file = cert_dir() + "/ca.pem";
  return o;
}

/// Connects, checks an echo, and returns the address the server saw ("peer X").
std::string echo_and_peer(const std::string& url, stream_options options) {
  std::string seen;
  run_async([&](asio::io_context& io) -> awaitable<void> {
    stream ws(io.get_executor(), options);
    co_await ws.connect(url);
    std::string buf;
    co_await ws.send("hello through the tunnel");
    co_await ws.read(buf);
    CHECK(buf == "hello through the tunnel");
    co_await ws.send("!peer");
    co_await ws.read(buf);
    seen = buf;
    co_await ws.close(1000, "done");
  });
  return seen;
}

/// connect() fails: its error, with the stream's text in `text`.
std::error_code connect_error(const std::string& url, stream_options options, std::string* text = nullptr) {
  std::error_code ec;
  run_async([&](asio::io_context& io) -> awaitable<void> {
    stream ws(io.get_executor(), options);
    co_await ws.connect(url, ec);
    if (text)
      *text = ws.last_error_message();
  });
  return ec;
}

stream_options via(const std::string& proxy, stream_options o = {}) {
  o.proxy = proxy;
  return o;
}

const std::string outgoing = "127.0.0.2"; // where the proxies connect from

/// Settings of a proxy that connects from `outgoing`, with a user when `auth`.
proxy_settings bound(bool auth, const char* user, const char* password) {
  proxy_settings ps;
  ps.bind = outgoing;
  if (auth) {
    ps.user = user;
    ps.password = password;
  }
  return ps;
}

} // namespace

TEST_CASE("HTTP CONNECT through tinyproxy: ws:// and wss://, without and with Basic auth") {
  peer_process plain(peer_kind::python);
  peer_process tls(peer_kind::python, {"--tls", cert_dir() + "/server.pem", cert_dir() + "/server.key"});
  for (bool auth : {false, true}) {
    CAPTURE(auth);
    proxy_process proxy(kind::tinyproxy, bound(auth, "alice", "s3cret"));
    CHECK(echo_and_peer(plain.url(), via(proxy.url())) == "peer " + outgoing);
    // TLS runs inside the tunnel, verified against the URL's host name.
    CHECK(echo_and_peer(tls.url(true, "localhost"), via(proxy.url(), tls_options_for_tests())) == "peer " + outgoing);
    CHECK(proxy.log().find("CONNECT localhost:" + std::to_string(tls.port())) != std::string::npos);
  }
  // Without the proxy the server sees us directly: the check above can fail.
  CHECK(echo_and_peer(plain.url(), via("none")) == "peer 127.0.0.1");
}

TEST_CASE("SOCKS5 through microsocks: socks5 and socks5h, ws:// and wss://, without and with a user") {
  peer_process plain(peer_kind::python);
  peer_process tls(peer_kind::python, {"--tls", cert_dir() + "/server.pem", cert_dir() + "/server.key"});
  for (bool auth : {false, true}) {
    CAPTURE(auth);
    proxy_process proxy(kind::microsocks, bound(auth, "bob", "pa:ss@word"));
    for (const char* scheme : {"socks5", "socks5h"}) {
      CAPTURE(scheme);
      // "localhost": resolved here for socks5, by microsocks for socks5h.
      CHECK(echo_and_peer(plain.url(false, "localhost"), via(proxy.url(scheme))) == "peer " + outgoing);
      CHECK(echo_and_peer(tls.url(true, "localhost"), via(proxy.url(scheme), tls_options_for_tests())) ==
            "peer " + outgoing);
    }
  }
}

TEST_CASE("TLS through a tunnel still verifies the server: a host the certificate does not name fails") {
  peer_process tls(peer_kind::python, {"--tls", cert_dir() + "/server.pem", cert_dir() + "/server.key"});
  proxy_settings ps;
  proxy_process proxy(kind::microsocks, ps);
  // 127.0.0.1 is in the certificate, "127.0.0.1.nip" is not a name it has; use
  // a name that resolves (localhost) against a CA that did not sign it instead.
  stream_options o = via(proxy.url("socks5h"));
  o.tls.ca_file = cert_dir() + "/other-ca.pem";
  std::string text;
  CHECK(connect_error(tls.url(true, "localhost"), o, &text) == error::tls_failed);
  CHECK(text.find("certificate verify failed") != std::string::npos);
}

TEST_CASE("proxies from the environment: http_proxy for ws://, https_proxy for wss://, all_proxy, no_proxy") {
  peer_process plain(peer_kind::python);
  peer_process tls(peer_kind::python, {"--tls", cert_dir() + "/server.pem", cert_dir() + "/server.key"});
  proxy_settings ps;
  ps.bind = outgoing;
  proxy_process http(kind::tinyproxy, ps);
  proxy_process socks(kind::microsocks, ps);
  {
    scoped_env env({{"http_proxy", http.url()}, {"https_proxy", socks.url("socks5h")}});
    CHECK(echo_and_peer(plain.url(), {}) == "peer " + outgoing);
    CHECK(echo_and_peer(tls.url(true, "localhost"), tls_options_for_tests()) == "peer " + outgoing);
    // "none" ignores the environment.
    CHECK(echo_and_peer(plain.url(), via("none")) == "peer 127.0.0.1");
  }
  {
    scoped_env env({{"ALL_PROXY", socks.url("socks5")}});
    CHECK(echo_and_peer(plain.url(), {}) == "peer " + outgoing);
  }
  {
    // no_proxy bypasses by name and by address; loopback is not bypassed without it.
    scoped_env env({{"http_proxy", http.url()}, {"no_proxy", "example.com,127.0.0.1"}});
    CHECK(echo_and_peer(plain.url(), {}) == "peer 127.0.0.1");
    CHECK(echo_and_peer(plain.url(false, "localhost"), {}) == "peer " + outgoing);
  }
  {
    scoped_env env({{"http_proxy", http.url()}, {"NO_PROXY", "localhost"}});
    CHECK(echo_and_peer(plain.url(false, "localhost"), {}) == "peer 127.0.0.1");
  }
  {
    scoped_env env({{"http_proxy", "gopher://nope"}});
    std::string text;
    CHECK(connect_error(plain.url(), {}, &text) == error::proxy_bad_url);
    CHECK(text.find("http_proxy") != std::string::npos); // names where the bad value came from
  }
}

TEST_CASE("a refusing HTTP proxy: 407 without or with wrong credentials, 403 for a port it does not allow") {
  peer_process plain(peer_kind::python);
  proxy_settings auth;
  auth.user = "alice";
  auth.password = "s3cret";
  proxy_process needs_auth(kind::tinyproxy, auth);
  std::string text;
  CHECK(connect_error(plain.url(), via("http://127.0.0.1:" + std::to_string(needs_auth.port())), &text) ==
        error::proxy_auth_required);
  CHECK(text.find("HTTP 407") != std::string::npos);
  CHECK(text.find("proxy http://127.0.0.1:" + std::to_string(needs_auth.port())) != std::string::npos);
  const auto wrong = "http://alice:WRONGPASS@127.0.0.1:" + std::to_string(needs_auth.port());
  CHECK(connect_error(plain.url(), via(wrong), &text) == error::proxy_auth_required);
  CHECK(text.find("WRONGPASS") == std::string::npos); // never the password
  CHECK(text.find("alice") == std::string::npos);

  proxy_settings deny;
  deny.deny_connect = true;
  proxy_process denying(kind::tinyproxy, deny);
  const auto ec = connect_error(plain.url(), via(denying.url()), &text);
  CHECK(ec == error::proxy_denied);
  CHECK(ec == condition::handshake_failed);
  CHECK(text.find("HTTP 403") != std::string::npos);

  // The server behind it is down: the proxy answers 5xx.
  const auto down = free_port();
  proxy_process open_proxy(kind::tinyproxy);
  CHECK(connect_error("ws://127.0.0.1:" + std::to_string(down) + "/", via(open_proxy.url())) == error::proxy_failed);
}

TEST_CASE("a refusing SOCKS5 proxy: wrong password, no user when one is required, target refused") {
  peer_process plain(peer_kind::python);
  proxy_settings auth;
  auth.user = "bob";
  auth.password = "right";
  proxy_process proxy(kind::microsocks, auth);
  const auto port = std::to_string(proxy.port());
  std::string text;
  CHECK(connect_error(plain.url(), via("socks5://bob:WRONGPASS@127.0.0.1:" + port), &text) ==
        error::socks_auth_failed);
  CHECK(text.find("WRONGPASS") == std::string::npos);
  CHECK(text.find("socks5://127.0.0.1:" + port) != std::string::npos);
  CHECK(connect_error(plain.url(), via("socks5://127.0.0.1:" + port), &text) == error::socks_auth_failed);
  CHECK(text.find("requires authentication") != std::string::npos);

  proxy_process open_proxy(kind::microsocks);
  const auto down = free_port();
  CHECK(connect_error("ws://127.0.0.1:" + std::to_string(down) + "/", via(open_proxy.url())) ==
        error::socks_connection_refused);
}

TEST_CASE("an unreachable proxy and a silent one: proxy_unreachable at once, proxy_timeout after proxy_timeout") {
  const auto nobody = free_port();
  std::string text;
  const auto ec = connect_error("ws://127.0.0.1:9/", via("http://u:SECRET@127.0.0.1:" + std::to_string(nobody)), &text);
  CHECK(ec == error::proxy_unreachable);
  CHECK(ec == condition::transport);
  CHECK(text.find("Connection refused") != std::string::npos);
  CHECK(text.find("SECRET") == std::string::npos);

  silent_listener silent;
  for (const char* scheme : {"http", "socks5h"}) {
    CAPTURE(scheme);
    stream_options o = via(std::string(scheme) + "://127.0.0.1:" + std::to_string(silent.port()));
    o.proxy_timeout = std::chrono::milliseconds(300);
    const auto start = std::chrono::steady_clock::now();
    CHECK(connect_error("ws://example.com/", o, &text) == error::proxy_timeout);
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(took >= std::chrono::milliseconds(300));
    CHECK(took < std::chrono::milliseconds(3 * 300 + 1000));
    CHECK(text.find("tunnel to ws://example.com/ through proxy") != std::string::npos);
  }
}

/// A one-shot hostile proxy on 127.0.0.1: accepts one connection, reads what
/// the client sends first, answers `reply`, then keeps the connection open
/// until the client leaves.
class scripted_proxy {
public:
  explicit scripted_proxy(std::string reply) : reply_(std::move(reply)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~scripted_proxy() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url(const char* scheme) const { return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_); }

private:
  void serve() {
    const int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0)
      return;
    char buf[4096];
    (void)::recv(c, buf, sizeof buf, 0);
    (void)::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
    while (::recv(c, buf, sizeof buf, 0) > 0) {
    }
    ::close(c);
  }
  std::string reply_;
  std::uint16_t port_ = 0;
  int fd_ = [this] {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 1);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    return fd;
  }();
  std::thread thread_;
};

TEST_CASE("a hostile proxy: not HTTP, an endless header section, data before the server, a bad SOCKS answer") {
  struct row {
    std::string reply;
    const char* scheme;
    error expected;
    const char* says;
  };
  const row rows[] = {
      {"SSH-2.0-OpenSSH_9.2\r\n\r\n", "http", error::proxy_malformed, "its answer is not HTTP"},
      {"HTTP/1.1 200 OK\r\nX: " + std::string(20000, 'a'), "http", error::proxy_malformed, "over 16384 bytes"},
      {"HTTP/1.1 200 OK\r\n\r\nsurprise", "http", error::proxy_malformed, "followed by data before the server spoke"},
      {"HTTP/1.1 200 OK\r\n", "http", error::proxy_timeout, "tunnel to"}, // never ends its header section
      {std::string("\x04\x5a", 2), "socks5", error::proxy_malformed, "is not SOCKS5 (version 4)"},
      {std::string("\x05\xff", 2), "socks5", error::socks_auth_failed, "requires authentication"},
      {std::string("\x05\x00\x05\x02\x00\x01\x00", 7), "socks5h", error::socks_not_allowed, "reply code 2"},
      {std::string("\x05\x00\x05\x00\x00\x09\x00", 7), "socks5h", error::proxy_malformed, "CONNECT answer is not SOCKS5"},
  };
  for (const auto& r : rows) {
    CAPTURE(std::string(r.says));
    scripted_proxy proxy(r.reply);
    stream_options o = via(proxy.url(r.scheme));
    o.proxy_timeout = std::chrono::milliseconds(500);
    std::string text;
    CHECK(connect_error("ws://example.com/", o, &text) == r.expected);
    CHECK(text.find(r.says) != std::string::npos);
  }
}

TEST_CASE("the handler reconnects through a proxy, and a 407 is not retried") {
  peer_process plain(peer_kind::python);
  proxy_settings ps;
  ps.bind = outgoing;
  proxy_process proxy(kind::tinyproxy, ps);
  run_async([&](asio::io_context& io) -> awaitable<void> {
    handler_options o;
    o.stream.proxy = proxy.url();
    handler h(io.get_executor(), o);
    co_await h.connect(plain.url());
    CHECK(h.status().connected);
    co_await h.close();
  });

  proxy_settings auth;
  auth.user = "alice";
  auth.password = "s3cret";
  proxy_process needs_auth(kind::tinyproxy, auth);
  run_async([&](asio::io_context& io) -> awaitable<void> {
    handler_options o;
    o.stream.proxy = "http://127.0.0.1:" + std::to_string(needs_auth.port());
    o.max_retries = 5;
    o.backoff_base = std::chrono::milliseconds(10);
    handler h(io.get_executor(), o);
    std::error_code ec;
    co_await h.connect(plain.url(), ec);
    CHECK(ec == error::proxy_auth_required);
    CHECK(h.status().retries <= 1); // stopped at once: credentials do not change by retrying
  });
}

TEST_CASE("Unix-domain sockets: ws:// and wss:// to websockets' unix_serve") {
  char tmpl[] = "/tmp/tether-unix-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  const std::string dir = tmpl;
  {
    peer_process plain(peer_kind::python, {"--unix", dir + "/ws.sock"});
    peer_process tls(peer_kind::python, {"--unix", dir + "/wss.sock", "--tls", cert_dir() + "/server.pem",
                                         cert_dir() + "/server.key"});
    stream_options o;
    o.unix_socket = dir + "/ws.sock";
    o.proxy = "http://127.0.0.1:1"; // never used with a Unix socket
    CHECK(echo_and_peer("ws://localhost/any/path", o) == "peer unix");
    o.unix_socket = dir + "/wss.sock";
    // TLS over the socket, SNI and verification for the URL's host.
    CHECK(echo_and_peer("wss://localhost/", tls_options_for_tests(o)) == "peer unix");
    std::string text;
    CHECK(connect_error("wss://example.com/", tls_options_for_tests(o), &text) == error::tls_failed);
    CHECK(text.find("does not match host example.com") != std::string::npos);
    o.unix_socket = dir + "/missing.sock";
    const auto ec = connect_error("ws://localhost/", o, &text);
    CHECK(ec.value() == ENOENT);
    CHECK(text.find("unix socket " + dir + "/missing.sock") != std::string::npos);
  }
  ::unlink((dir + "/ws.sock").c_str());
  ::unlink((dir + "/wss.sock").c_str());
  ::rmdir(dir.c_str());
}
