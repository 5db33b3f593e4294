#include "repl_options.hpp"

#include "repl_console.hpp"

#include <tether/url.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <string_view>
#include <vector>

#ifndef TETHER_REPL_VERSION
#define TETHER_REPL_VERSION "unknown"
#endif

namespace repl {
namespace {

constexpr std::string_view usage_line =
    "usage: tether-repl [--raw] [--reconnect|--no-reconnect] [--max-retries N] [--backoff linear|exponential]\n"
    "                   [--ping-interval MS] [--pong-timeout MS] [--send-timeout MS] [--expect-timeout MS]\n"
    "                   [--request-timeout MS]\n"
    "                   [--strict] [--max-messages N] [--timeout MS] [--slash] [--binary] [-v|--verbose]\n"
    "                   [--ca FILE] [-k|--insecure] [-H|--header 'K: V']... [-s|--subprotocol P]...\n"
    "                   [--deflate|--no-deflate] [--proxy URL|--no-proxy] [--unix-socket PATH]\n"
    "                   [--no-color] [--help] [--version] [URL]\n";

constexpr std::string_view help_text =
    "Connects to a WebSocket server (ws:// or wss://). Without a URL it starts the\n"
    "embedded demo server on 127.0.0.1 (a free port, printed) and connects to it.\n"
    "\n"
    "Handler mode (the default) speaks the envelope {\"path\": ..., \"data\": ...}\n"
    "(docs/protocol.md) through tether::handler, which reconnects by itself, and\n"
    "reads commands from standard input, one per line:\n"
    "  send PATH [JSON]          send an envelope (data null without JSON)\n"
    "  sendb PATH [HEX]          send a binary envelope: PATH and the bytes in hex ('00 ff 10')\n"
    "  route PATTERN             print messages matching PATTERN with their captures\n"
    "  unroute PATTERN           remove that route\n"
    "  routes                    list the routes\n"
    "  status                    the handler's status as one line of JSON\n"
    "  wait MS                   do nothing for MS milliseconds (messages still print)\n"
    "  expect PATTERN [MS]       wait for a message matching PATTERN (default: --expect-timeout)\n"
    "  close [CODE] [REASON]     close the connection (default 1000)\n"
    "  connect [URL]             (re)connect, to URL or to the last one\n"
    "  ping [PAYLOAD]            ping the server and print the round-trip time\n"
    "  help                      list the commands\n"
    "  quit                      send what is queued, close cleanly and exit\n"
    "Every message received prints as '< PATH DATA' ('< unrouted PATH DATA' when no\n"
    "route matches), state changes as '* ...', commands answer 'ok ...' or\n"
    "'error: ...'. On a terminal: line editing, history (~/.tether_repl_history)\n"
    "and tab completion. docs/repl.md has the details.\n"
    "\n"
    "Raw mode (--raw) sends each line of standard input as a text message (lines\n"
    "that are not UTF-8 are skipped) and prints every message received: text as is\n"
    "(on a terminal, control characters as \\xNN), binary as '<binary N bytes>' and\n"
    "a hex preview. At the end of input (or on Ctrl-C) it closes with 1000; replies\n"
    "the server has not sent by then may never come (--max-messages waits for them).\n"
    "'closed CODE REASON' means the server closed. With --slash, '/ping [PAYLOAD]'\n"
    "prints the round-trip time and '/close [CODE [REASON]]' closes.\n"
    "\n"
    "  --raw                 raw mode: lines out, messages in\n"
    "  --reconnect           reconnect after a drop (the default)\n"
    "  --no-reconnect        do not reconnect\n"
    "  --max-retries N       attempts after the first failure, -1 = no limit, 0 = fail at once (default 10)\n"
    "  --backoff KIND        linear or exponential (default exponential, from 500 ms, capped at 30 s)\n"
    "  --ping-interval MS    heartbeat ping period, 0 = none (default 30000)\n"
    "  --pong-timeout MS     no pong nor any frame by then: the connection is dead (default 10000)\n"
    "  --send-timeout MS     longest wait of a message in the offline queue (default 30000)\n"
    "  --expect-timeout MS   expect's default timeout (default 10000)\n"
    "  --request-timeout MS  request's default timeout (default 10000)\n"
    "  --strict              a failed command makes the exit status 4\n"
    "  --max-messages N      the end of input does not close: exit 0 once N messages have printed\n"
    "  --timeout MS          exit with status 5 when the session has run MS milliseconds\n"
    "  --slash               raw mode: /ping and /close are commands, not text\n"
    "  --binary              raw mode: each input line is hex ('00ff10', blanks allowed) sent as one\n"
    "                        binary message; each binary message received prints as one full hex line\n"
    "  -v, --verbose         print the handshake's request and response headers; credential headers\n"
    "                        (Authorization, Cookie, names with auth/token/key/secret/session/password)\n"
    "                        show as [redacted]; the URL's query string is shown as it is\n"
    "  --ca FILE             trust the PEM certificates in FILE instead of the system store\n"
    "  -k, --insecure        accept any TLS certificate and host name (testing only)\n"
    "  -H, --header 'K: V'   add a request header to the opening handshake (repeatable)\n"
    "  -s, --subprotocol P   offer subprotocol P (repeatable, in order of preference)\n"
    "  --deflate             require permessage-deflate support (offered by default when built with zlib)\n"
    "  --no-deflate          do not offer permessage-deflate\n"
    "  --proxy URL           connect through this proxy: http://[user:pass@]host[:port] (HTTP CONNECT),\n"
    "                        socks5://... (resolves here) or socks5h://... (the proxy resolves); port\n"
    "                        1080 if not given. Without it: http_proxy (ws://), https_proxy/HTTPS_PROXY\n"
    "                        (wss://), all_proxy/ALL_PROXY, except hosts in no_proxy/NO_PROXY\n"
    "  --no-proxy            connect directly, whatever the environment says\n"
    "  --unix-socket PATH    connect to the Unix-domain socket PATH; the URL still gives Host, path, ws/wss\n"
    "  --no-color            no ANSI colours (also: NO_COLOR set, or output not a terminal)\n"
    "  -h, --help            show this help\n"
    "  --version             show the version\n"
    "The handler options apply to handler mode only.\n"
    "\n"
    "Exit status: 0 after a clean end (in raw mode also the server's close with\n"
    "1000/1001), 1 when connecting fails (and in raw mode when the connection\n"
    "fails), 2 for a bad command line, 3 in raw mode when the server closes with\n"
    "another code, 4 with --strict when a command failed, 5 when --timeout passed.\n";

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
  auto token_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  };
  auto control = [](char c) { return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f; };
  return !name.empty() && std::all_of(name.begin(), name.end(), token_char) &&
         std::none_of(value.begin(), value.end(), control);
}

/// Headers the opening handshake writes itself: a second copy breaks it.
bool reserved_header(std::string_view name) {
  std::string lower(name);
  for (auto& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "host" || lower == "upgrade" || lower == "connection" || lower.rfind("sec-websocket-", 0) == 0;
}

parse_outcome usage_error(std::string_view message) {
  fmt::print(stderr, "tether-repl: {}\n{}Try 'tether-repl --help'.\n", message, usage_line);
  return parse_outcome::usage_error;
}

/// A whole decimal integer in [lo, hi].
bool parse_int(std::string_view s, long long lo, long long hi, long long& out) {
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi)
    return false;
  out = v;
  return true;
}

} // namespace

parse_outcome parse_command_line(int argc, char** argv, options& out) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  bool options_done = false;
  constexpr long long max_ms = 24LL * 3600 * 1000; // a day: larger values are mistakes
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto a = args[i];
    if (options_done || a.empty() || a.front() != '-') {
      if (!out.url.empty())
        return usage_error(
            fmt::format("more than one URL ('{}' and '{}')", without_userinfo(out.url), without_userinfo(a)));
      if (a.empty())
        return usage_error("empty URL");
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
    } else if (a == "--insecure" || a == "-k") {
      out.stream.tls.insecure_skip_verify = true;
    } else if (a == "--no-color") {
      out.color = false;
    } else if (a == "--reconnect") {
      out.handler.reconnect = true;
    } else if (a == "--no-reconnect") {
      out.handler.reconnect = false;
    } else if (a == "--strict") {
      out.strict = true;
    } else if (a == "--verbose" || a == "-v") {
      out.verbose = true;
    } else if (a == "--slash") {
      out.slash = true;
    } else if (a == "--binary") {
      out.binary = true;
    } else if (a == "--deflate") {
      out.stream.compression = tether::compression::on;
    } else if (a == "--no-deflate") {
      out.stream.compression = tether::compression::off;
    } else if (a == "--no-proxy") {
      out.stream.proxy = "none";
    } else if (a == "--ca" || a == "--header" || a == "-H" || a == "--subprotocol" || a == "-s" ||
               a == "--max-retries" || a == "--backoff" || a == "--ping-interval" || a == "--pong-timeout" ||
               a == "--send-timeout" || a == "--expect-timeout" || a == "--request-timeout" || a == "--max-messages" || a == "--timeout" ||
               a == "--proxy" || a == "--unix-socket") {
      if (i + 1 >= args.size())
        return usage_error(fmt::format("{} needs a value", a));
      auto value = args[++i];
      // The short forms are the long ones (wscat's and curl's letters).
      if (a == "-H")
        a = "--header";
      else if (a == "-s")
        a = "--subprotocol";
      long long n = 0;
      if (a == "--ca") {
        out.stream.tls.ca_file = value;
      } else if (a == "--proxy") {
        if (value.empty() || value == "none") // "none" is --no-proxy
          return usage_error("--proxy wants http://, socks5:// or socks5h://[user:password@]host[:port]");
        out.stream.proxy = value; // connect() checks the rest (proxy_bad_url, exit 1)
      } else if (a == "--unix-socket") {
        if (value.empty())
          return usage_error("--unix-socket needs a path");
        out.stream.unix_socket = value;
      } else if (a == "--subprotocol") {
        if (value.empty())
          return usage_error("--subprotocol needs a non-empty name");
        out.stream.subprotocols.emplace_back(value);
      } else if (a == "--header") {
        std::string name, field;
        // Never echo the value: it is often a credential.
        if (!split_header(value, name, field))
          return usage_error("--header wants 'Name: value' (a token, a colon, a value without control characters)");
        if (reserved_header(name))
          return usage_error(fmt::format("--header cannot set {}: tether writes it (use -s for subprotocols, "
                                         "--deflate/--no-deflate for extensions)",
                                         name));
        out.stream.headers.add(std::move(name), std::move(field));
      } else if (a == "--max-retries") {
        if (!parse_int(value, -1, std::numeric_limits<int>::max(), n))
          return usage_error(fmt::format("--max-retries wants a number, -1 for no limit, got '{}'", value));
        out.handler.max_retries = static_cast<int>(n);
      } else if (a == "--max-messages") {
        if (!parse_int(value, 1, std::numeric_limits<int>::max(), n))
          return usage_error(fmt::format("--max-messages wants a number of messages (1 or more), got '{}'", value));
        out.max_messages = n;
      } else if (a == "--backoff") {
        if (value == "linear")
          out.handler.backoff = tether::backoff::linear;
        else if (value == "exponential")
          out.handler.backoff = tether::backoff::exponential;
        else
          return usage_error(fmt::format("--backoff wants linear or exponential, got '{}'", value));
      } else {
        const bool zero_ok = a == "--ping-interval";
        if (!parse_int(value, zero_ok ? 0 : 1, max_ms, n))
          return usage_error(
              fmt::format("{} wants milliseconds ({}..{}), got '{}'", a, zero_ok ? 0 : 1, max_ms, value));
        const std::chrono::milliseconds ms(n);
        if (a == "--ping-interval")
          out.handler.ping_interval = ms;
        else if (a == "--pong-timeout")
          out.handler.pong_timeout = ms;
        else if (a == "--send-timeout")
          out.handler.send_timeout = ms;
        else if (a == "--timeout")
          out.timeout = ms;
        else if (a == "--request-timeout")
          out.request_timeout = ms;
        else
          out.expect_timeout = ms;
      }
    } else {
      return usage_error(fmt::format("unknown option '{}'", a));
    }
  }
  if (!out.url.empty()) {
    tether::url parsed;
    if (auto ec = tether::parse_url(out.url, parsed))
      return usage_error(fmt::format("bad URL '{}': {}", without_userinfo(out.url), ec.message()));
  }
  return parse_outcome::run;
}

} // namespace repl
