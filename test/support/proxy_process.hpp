#pragma once
// Real proxies for the proxy tests, from Debian's packages: tinyproxy (HTTP
// CONNECT) run in the foreground with a config of our own, and microsocks
// (SOCKS5), each on a free port of 127.0.0.1, stopped when destroyed.
#include <cstdint>
#include <string>
#include <vector>

namespace tether::test {

struct proxy_settings {
  std::string user;         ///< Require these credentials (tinyproxy BasicAuth, microsocks -u/-P).
  std::string password;
  bool deny_connect = false; ///< tinyproxy: allow CONNECT to port 1 only, so ours gets 403.
  std::string bind;          ///< Outgoing connections from this address (tinyproxy Bind, microsocks -b).
};

class proxy_process {
public:
  enum class kind { tinyproxy, microsocks };

  /// Starts the proxy and waits (≤ 10 s) until its port accepts connections;
  /// throws std::runtime_error (with the proxy's log) if it does not.
  explicit proxy_process(kind k, proxy_settings settings = {});
  ~proxy_process();
  proxy_process(const proxy_process&) = delete;
  proxy_process& operator=(const proxy_process&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  /// scheme://[user:password@]127.0.0.1:PORT, scheme http for tinyproxy.
  std::string url(const std::string& scheme = "") const;
  /// What the proxy logged so far (tinyproxy only; microsocks logs nothing useful).
  std::string log() const;

private:
  kind kind_;
  proxy_settings settings_;
  std::string dir_;
  int pid_ = -1;
  std::uint16_t port_ = 0;
};

/// A free TCP port on 127.0.0.1 (bound, read and released).
std::uint16_t free_port();

/// A TCP listener on 127.0.0.1 that never accepts nor answers: connections
/// complete in the kernel's backlog and then nothing happens (a stalled proxy).
class silent_listener {
public:
  silent_listener();
  ~silent_listener();
  silent_listener(const silent_listener&) = delete;
  silent_listener& operator=(const silent_listener&) = delete;
  std::uint16_t port() const noexcept { return port_; }

private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

} // namespace tether::test
