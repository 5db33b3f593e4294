#include "peer.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace tether::test {

std::string source_root() {
  if (const char* root = std::getenv("TETHER_SOURCE_ROOT"))
    return root;
  return ".";
}

int spawn_process(std::vector<std::string> argv, const void* actions) {
  std::vector<char*> cargv;
  for (auto& a : argv)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int pid = -1;
  const int rc = posix_spawn(&pid, cargv[0], static_cast<const posix_spawn_file_actions_t*>(actions), nullptr,
                             cargv.data(), environ);
  if (rc != 0)
    throw std::runtime_error(argv[0] + ": cannot start: " + std::strerror(rc));
  return pid;
}

peer_process::peer_process(peer_kind kind, std::vector<std::string> args) {
  std::vector<std::string> argv;
  if (kind == peer_kind::python) {
    // Debian's interpreter: the python3 on PATH may lack Debian's modules.
    argv = {"/usr/bin/python3", source_root() + "/test/peers/echo_server.py"};
  } else {
    argv = {"/usr/bin/env", "NODE_PATH=/usr/share/nodejs", "node", source_root() + "/test/peers/echo_server.js"};
  }
  argv.insert(argv.end(), args.begin(), args.end());

  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0)
    throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  std::string started;
  try {
    pid_ = spawn_process(argv, &fa);
  } catch (const std::runtime_error& e) {
    started = e.what();
  }
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  stdin_fd_ = in[1]; // kept open: the peer exits when its stdin ends
  stdout_fd_ = out[0];
  if (!started.empty())
    throw std::runtime_error("cannot start peer: " + started);
  auto line = next_line(std::chrono::seconds(15));
  if (!line || line->rfind("listening ", 0) != 0) {
    kill(SIGKILL);
    throw std::runtime_error(std::string(name(kind)) + " peer did not start: " + line.value_or("(no output)"));
  }
  port_ = static_cast<std::uint16_t>(std::stoi(line->substr(10)));
}

peer_process::~peer_process() { kill(SIGTERM); }

std::string peer_process::url(bool tls, const std::string& host) const {
  return std::string(tls ? "wss://" : "ws://") + host + ":" + std::to_string(port_) + "/";
}

std::optional<std::string> peer_process::next_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto nl = pending_.find('\n'); nl != std::string::npos) {
      auto line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || stdout_fd_ < 0)
      return std::nullopt;
    pollfd p{stdout_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0)
      continue;
    char buf[4096];
    const auto n = read(stdout_fd_, buf, sizeof buf);
    if (n <= 0)
      return std::nullopt;
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

std::optional<std::string> peer_process::next_closed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto line = next_line(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (!line)
      return std::nullopt;
    if (line->rfind("closed ", 0) == 0)
      return line;
  }
  return std::nullopt;
}

void peer_process::kill(int signal) {
  if (pid_ > 0) {
    ::kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  if (stdin_fd_ >= 0)
    close(stdin_fd_);
  if (stdout_fd_ >= 0)
    close(stdout_fd_);
  stdin_fd_ = stdout_fd_ = -1;
}

const std::string& cert_dir() {
  // Made at build time by the test-certs target (test/support/meson.build).
  static const std::string dir = [] {
    const char* env = std::getenv("TETHER_TEST_CERTS");
    if (!env)
      throw std::runtime_error("TETHER_TEST_CERTS is not set (run through meson test)");
    return std::string(env);
  }();
  return dir;
}

} // namespace tether::test
