#include "proxy_process.hpp"

#include "peer.hpp"

#include <arpa/inet.h>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace tether::test {

namespace {

int listener(std::uint16_t& port, int backlog) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error(std::string("cannot listen on 127.0.0.1: ") + std::strerror(errno));
  port = ntohs(a.sin_port);
  return fd;
}

bool accepts(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

} // namespace

std::uint16_t free_port() {
  std::uint16_t port = 0;
  ::close(listener(port, 1));
  return port;
}

proxy_process::proxy_process(kind k, proxy_settings settings) : kind_(k), settings_(std::move(settings)) {
  char tmpl[] = "/tmp/tether-proxy-XXXXXX";
  if (!mkdtemp(tmpl))
    throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  port_ = free_port();
  std::vector<std::string> argv;
  if (k == kind::tinyproxy) {
    // Our own config: never the packaged daemon's (port 8888, ConnectPort 443/563).
    std::ofstream conf(dir_ + "/tinyproxy.conf");
    conf << "Port " << port_ << "\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\nLogLevel Info\n";
    if (!settings_.user.empty())
      conf << "BasicAuth " << settings_.user << " " << settings_.password << "\n";
    if (settings_.deny_connect)
      conf << "ConnectPort 1\n";
    if (!settings_.bind.empty())
      conf << "Bind " << settings_.bind << "\n";
    argv = {"/usr/bin/tinyproxy", "-d", "-c", dir_ + "/tinyproxy.conf"};
  } else {
    argv = {"/usr/bin/microsocks", "-i", "127.0.0.1", "-p", std::to_string(port_)};
    if (!settings_.user.empty())
      argv.insert(argv.end(), {"-u", settings_.user, "-P", settings_.password});
    if (!settings_.bind.empty())
      argv.insert(argv.end(), {"-b", settings_.bind});
  }
  if (::access(argv[0].c_str(), X_OK) != 0)
    throw std::runtime_error(argv[0] + " is not installed: run the README's set-up command");

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  const std::string log_path = dir_ + "/log";
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  try {
    pid_ = spawn_process(argv, &fa);
  } catch (...) {
    posix_spawn_file_actions_destroy(&fa);
    throw;
  }
  posix_spawn_file_actions_destroy(&fa);
  // Neither proxy says when it listens: poll its port (an event, not a sleep
  // standing in for one), giving up after 10 s or when the process exits.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!accepts(port_)) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error(argv[0] + " exited at start: " + log());
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      throw std::runtime_error(argv[0] + " did not listen within 10 s: " + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

proxy_process::~proxy_process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  std::remove((dir_ + "/log").c_str());
  std::remove((dir_ + "/tinyproxy.conf").c_str());
  ::rmdir(dir_.c_str());
}

std::string proxy_process::url(const std::string& scheme) const {
  std::string s = scheme.empty() ? (kind_ == kind::tinyproxy ? "http" : "socks5") : scheme;
  s += "://";
  // Userinfo is percent-encoded: passwords may hold ':' or '@'.
  auto encode = [](const std::string& in) {
    std::string out;
    for (unsigned char c : in) {
      if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
        out += static_cast<char>(c);
      } else {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", c);
        out += hex;
      }
    }
    return out;
  };
  if (!settings_.user.empty())
    s += encode(settings_.user) + ":" + encode(settings_.password) + "@";
  return s + "127.0.0.1:" + std::to_string(port_);
}

std::string proxy_process::log() const {
  std::ifstream in(dir_ + "/log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

silent_listener::silent_listener() { fd_ = listener(port_, 16); }
silent_listener::~silent_listener() { ::close(fd_); }

} // namespace tether::test
