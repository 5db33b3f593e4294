// tether-demo-server: the demo server (demo_server.hpp) on its own.
//
//   tether-demo-server [--port N] [--tls CERT KEY] [--verbose] [--help]
//
// Prints "listening ws://127.0.0.1:PORT" (wss:// with --tls) as its first line
// of standard output, then runs until SIGINT or SIGTERM (exit 0). Exit 1 when it
// cannot listen or load the certificate, 2 for a bad command line.
#include "demo_server.hpp"

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <fmt/core.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::string_view usage_line = "usage: tether-demo-server [--port N] [--tls CERT KEY] [--verbose] [--help]\n";

constexpr std::string_view help_text =
    "Runs the tether demo server on 127.0.0.1 (docs/protocol.md): envelopes\n"
    "{\"path\": ..., \"data\": ...} on echo.* come back, chat.* go to every other\n"
    "client, and server.drop, server.silence, server.close {\"code\", \"reason\"},\n"
    "server.garbage, server.restart {\"after_ms\"} and server.info make it misbehave\n"
    "or describe itself. The first line of output is 'listening ws://127.0.0.1:PORT'.\n"
    "\n"
    "  --port N          port to listen on (default 0: a free port)\n"
    "  --tls CERT KEY    serve wss:// with this PEM certificate chain and key\n"
    "  --verbose         log each message and action on stderr\n"
    "  --help            show this help\n"
    "\n"
    "Runs until SIGINT or SIGTERM (exit 0). Exit 1 when it cannot listen or load\n"
    "the certificate, 2 for a bad command line.\n";

int usage_error(std::string_view message) {
  fmt::print(stderr, "tether-demo-server: {}\n{}Try 'tether-demo-server --help'.\n", message, usage_line);
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN); // a client gone mid-write must not kill the server
  tether::demo::demo_server_options opts;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto a = args[i];
    if (a == "--help" || a == "-h") {
      fmt::print("{}\n{}", usage_line, help_text);
      return 0;
    } else if (a == "--verbose") {
      opts.log = [](std::string_view line) { fmt::print(stderr, "tether-demo-server: {}\n", line); };
    } else if (a == "--port") {
      if (i + 1 >= args.size())
        return usage_error("--port needs a value");
      const auto v = args[++i];
      unsigned port = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), port);
      if (ec != std::errc() || end != v.data() + v.size() || port > 65535)
        return usage_error(fmt::format("--port wants a number in 0..65535, got '{}'", v));
      opts.port = static_cast<std::uint16_t>(port);
    } else if (a == "--tls") {
      if (i + 2 >= args.size())
        return usage_error("--tls needs CERT and KEY");
      opts.cert_file = args[++i];
      opts.key_file = args[++i];
      if (opts.cert_file.empty() || opts.key_file.empty())
        return usage_error("--tls needs non-empty CERT and KEY");
    } else {
      return usage_error(fmt::format("unknown argument '{}'", a));
    }
  }

  asio::io_context ctx(1);
  // Before the first line: a script may signal as soon as it reads it (asio
  // queues a signal that arrives before async_wait).
  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  std::optional<tether::demo::demo_server> server;
  try {
    server.emplace(ctx.get_executor(), opts);
  } catch (const std::exception& e) {
    fmt::print(stderr, "tether-demo-server: cannot listen: {}\n", e.what());
    return 1;
  }
  fmt::print("listening {}\n", server->url());
  std::fflush(stdout);

  signals.async_wait([&](const std::error_code& ec, int) {
    if (!ec)
      server->stop();
  });
  ctx.run();
  return 0;
}
