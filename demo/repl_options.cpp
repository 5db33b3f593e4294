#include "repl_options.hpp"

#include <tether/url.hpp>

#include <fmt/core.h>

#include <string_view>
#include <vector>

#ifndef TETHER_REPL_VERSION
#define TETHER_REPL_VERSION "unknown"
#endif

namespace repl {
namespace {

constexpr std::string_view usage_line =
    "usage: tether-repl [--raw] [--ca FILE] [--insecure] [--header 'K: V']... [--subprotocol P]...\n"
    "                   [--no-color] [--help] [--version] URL\n";

constexpr std::string_view help_text =
    "Connects to a WebSocket server (ws:// or wss://), sends each line of standard input\n"
    "as a text message (lines that are not UTF-8 are skipped) and prints every message\n"
    "received: text as is, binary as '<binary N bytes>' and a hex preview. At the end of\n"
    "input (or on Ctrl-C) it closes with 1000; replies the server has not sent by then\n"
    "may never come. 'closed CODE REASON' means the server closed.\n"
    "\n"
    "  --raw               raw mode: lines out, messages in (the default and, for now, only mode)\n"
    "  --ca FILE           trust the PEM certificates in FILE instead of the system store\n"
    "  --insecure          accept any TLS certificate and host name (testing only)\n"
    "  --header 'K: V'     add a request header to the opening handshake (repeatable)\n"
    "  --subprotocol P     offer subprotocol P (repeatable, in order of preference)\n"
    "  --no-color          no ANSI colours (also: NO_COLOR set, or stdout not a terminal)\n"
    "  --help              show this help\n"
    "  --version           show the version\n"
    "\n"
    "Exit status: 0 after a clean close (ours at end of input, or the server's 1000/1001),\n"
    "3 when the server closes with another code, 1 when connecting or the connection\n"
    "fails, 2 for a bad command line.\n";

/// "K: V" → (K, V), surrounding spaces trimmed; false if there is no name.
bool split_header(std::string_view text, std::string& name, std::string& value) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos)
    return false;
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
      s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
      s.remove_suffix(1);
    return s;
  };
  name = trim(text.substr(0, colon));
  value = trim(text.substr(colon + 1));
  return !name.empty() && name.find_first_of(" \t\r\n") == std::string::npos &&
         value.find_first_of("\r\n") == std::string::npos;
}

parse_outcome usage_error(std::string_view message) {
  fmt::print(stderr, "tether-repl: {}\n{}Try 'tether-repl --help'.\n", message, usage_line);
  return parse_outcome::usage_error;
}

} // namespace

parse_outcome parse_command_line(int argc, char** argv, options& out) {
  if (argc <= 1) {
    // The README's Quick start runs the REPL bare: a hint, and success.
    fmt::print("{}Connects to a WebSocket server; 'tether-repl --help' for details.\n", usage_line);
    return parse_outcome::exit_success;
  }
  std::vector<std::string_view> args(argv + 1, argv + argc);
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto a = args[i];
    if (options_done || a.empty() || a.front() != '-') {
      if (!out.url.empty())
        return usage_error(fmt::format("more than one URL ('{}' and '{}')", out.url, a));
      out.url = a;
      continue;
    }
    if (a == "--") {
      options_done = true;
    } else if (a == "--help" || a == "-h") {
      fmt::print("{}\n{}", usage_line, help_text);
      return parse_outcome::exit_success;
    } else if (a == "--version") {
      fmt::print("tether-repl {}\n", TETHER_REPL_VERSION);
      return parse_outcome::exit_success;
    } else if (a == "--raw") {
      out.raw = true;
    } else if (a == "--insecure") {
      out.stream.tls.insecure_skip_verify = true;
    } else if (a == "--no-color") {
      out.color = false;
    } else if (a == "--ca" || a == "--header" || a == "--subprotocol") {
      if (i + 1 >= args.size())
        return usage_error(fmt::format("{} needs a value", a));
      auto value = args[++i];
      if (a == "--ca") {
        out.stream.tls.ca_file = value;
      } else if (a == "--subprotocol") {
        if (value.empty())
          return usage_error("--subprotocol needs a non-empty name");
        out.stream.subprotocols.emplace_back(value);
      } else {
        std::string name, field;
        if (!split_header(value, name, field))
          return usage_error(fmt::format("--header wants 'Name: value', got '{}'", value));
        out.stream.headers.add(std::move(name), std::move(field));
      }
    } else {
      return usage_error(fmt::format("unknown option '{}'", a));
    }
  }
  if (out.url.empty())
    return usage_error("no URL given");
  tether::url parsed;
  if (auto ec = tether::parse_url(out.url, parsed))
    return usage_error(fmt::format("bad URL '{}': {}", out.url, ec.message()));
  return parse_outcome::run;
}

} // namespace repl
