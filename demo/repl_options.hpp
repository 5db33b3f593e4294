#pragma once
// tether-repl's command line: what it accepts, its usage text and exit rules.
#include <tether/handler.hpp>
#include <tether/stream.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace repl {

/// Exit statuses (docs/repl.md).
enum exit_status : int {
  exit_ok = 0,           ///< Clean end (ours at end of input, or the server's 1000/1001 in raw mode).
  exit_failed = 1,       ///< Connecting or the connection failed (raw), cannot connect at start (handler).
  exit_usage = 2,        ///< Bad command line.
  exit_server_close = 3, ///< Raw mode: the server closed with a code other than 1000/1001.
  exit_strict = 4,       ///< Handler mode with --strict: at least one command failed.
  exit_timeout = 5,      ///< --timeout passed before the session ended otherwise.
};

/// Everything the command line sets.
struct options {
  std::string url;                 ///< Empty: none given (the embedded demo server).
  bool raw = false;                ///< --raw: lines out, messages in; else handler mode (envelopes, commands).
  bool color = true;               ///< False with --no-color (the TTY and NO_COLOR are checked later).
  bool strict = false;             ///< --strict: a failed command makes the exit status 4.
  std::chrono::milliseconds expect_timeout{10000}; ///< Default TIMEOUT_MS of expect.
  std::chrono::milliseconds request_timeout{10000}; ///< Default TIMEOUT_MS of request.
  bool verbose = false;            ///< -v: the handshake's request and response headers (secrets redacted).
  bool binary = false;             ///< --binary: raw mode reads hex lines as binary messages and prints binary as hex.
  bool slash = false;              ///< --slash: raw mode reads /ping and /close as commands.
  /// --max-messages N: the end of input does not close; the session ends after
  /// N incoming messages have been printed (0 = no such limit).
  long long max_messages = 0;
  /// --timeout MS: the session ends with exit_timeout when it runs this long (0 = never).
  std::chrono::milliseconds timeout{0};
  tether::stream_options stream;   ///< --ca, --insecure, --header, --subprotocol.
  /// Handler mode: --reconnect/--no-reconnect, --max-retries, --backoff,
  /// --ping-interval, --pong-timeout, --send-timeout (the rest as the library's defaults).
  tether::handler_options handler;
};

/// What main() does after parsing.
enum class parse_outcome {
  run,          ///< Connect to options::url (or the embedded server when it is empty).
  exit_success, ///< --help or --version was printed.
  usage_error,  ///< Wrong arguments: the message was printed to stderr; exit 2.
};

/// Parses argv. Prints --help/--version to stdout and errors to stderr.
parse_outcome parse_command_line(int argc, char** argv, options& out);

} // namespace repl
