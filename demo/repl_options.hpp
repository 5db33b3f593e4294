#pragma once
// tether-repl's command line: what it accepts, its usage text and exit rules.
#include <tether/stream.hpp>

#include <cstdio>
#include <string>

namespace repl {

/// Everything the command line sets.
struct options {
  std::string url;                 ///< Empty: none given.
  bool raw = true;                 ///< --raw; the only mode for now.
  bool color = true;               ///< False with --no-color (the TTY and NO_COLOR are checked later).
  tether::stream_options stream;   ///< --ca, --insecure, --header, --subprotocol.
};

/// What main() does after parsing.
enum class parse_outcome {
  run,          ///< Connect to options::url.
  exit_success, ///< --help, --version, or no arguments at all (a usage hint was printed).
  usage_error,  ///< Wrong arguments: the message was printed to stderr; exit 2.
};

/// Parses argv. Prints --help/--version/the hint to stdout and errors to stderr.
parse_outcome parse_command_line(int argc, char** argv, options& out);

} // namespace repl
