#pragma once
// tether-repl's handler mode: a tether::handler driven by commands read one at
// a time (send, route, expect, status, ...). docs/repl.md is the contract.
#include "repl_console.hpp"
#include "repl_options.hpp"

#include <asio/awaitable.hpp>

#include <functional>
#include <optional>
#include <string>

namespace repl {

/// Where commands come from: a pipe/file reader or the line editor.
struct input_source {
  std::function<asio::awaitable<std::optional<std::string>>()> next; ///< Nothing at end of input.
  std::function<void()> stop;                                        ///< Ends the input.
};

/// What main() and its signal handler can reach while a session runs.
struct session_control {
  /// Set by the session while it runs: ends the input and the current command;
  /// queued sends are not waited for, the connection closes cleanly.
  std::function<void()> interrupt;
  /// Called with each route pattern used (for tab completion).
  std::function<void(const std::string&)> pattern_used;
};

/// Connects to `url`, then runs commands from `in` until the end of input or
/// quit; returns the exit status.
asio::awaitable<int> handler_session(options opt, std::string url, console& out, input_source in,
                                     session_control& ctl);

} // namespace repl
