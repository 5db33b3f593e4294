#pragma once
// A real third-party WebSocket server (test/peers/echo_server.py or .js) run as
// a child process for interop tests: started on a free port, its stdout read
// line by line ("listening PORT", "closed CODE REASON"), stopped when destroyed.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tether::test {

enum class peer_kind { python, node };

/// Where the source tree is (TETHER_SOURCE_ROOT, set by meson test).
std::string source_root();

/// posix_spawn of argv[0] with `argv` and the environment; `actions` is a
/// posix_spawn_file_actions_t* (or nullptr). Returns the pid; throws
/// std::runtime_error naming the program if it cannot start.
int spawn_process(std::vector<std::string> argv, const void* actions);

class peer_process {
public:
  /// Starts the echo peer of `kind` with extra arguments and waits (≤ 15 s) for
  /// its "listening PORT" line; throws std::runtime_error if it does not come.
  peer_process(peer_kind kind, std::vector<std::string> args = {});
  ~peer_process();
  peer_process(const peer_process&) = delete;
  peer_process& operator=(const peer_process&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  /// ws://127.0.0.1:PORT/ (or wss://, or another host name).
  std::string url(bool tls = false, const std::string& host = "127.0.0.1") const;
  /// The next line the peer printed, waiting at most `timeout`.
  std::optional<std::string> next_line(std::chrono::milliseconds timeout);
  /// The next "closed CODE REASON" line, skipping others.
  std::optional<std::string> next_closed(std::chrono::milliseconds timeout);
  /// Kills the peer with `signal` and reaps it.
  void kill(int signal);

  static const char* name(peer_kind kind) { return kind == peer_kind::python ? "python" : "node"; }

private:
  int pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string pending_;
  std::uint16_t port_ = 0;
};

/// The test PKI made by test/peers/make_certs.sh at build time (TETHER_TEST_CERTS).
const std::string& cert_dir();

} // namespace tether::test
