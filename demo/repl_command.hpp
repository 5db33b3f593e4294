#pragma once
// Reading one command line of tether-repl's handler mode: its words, and the
// checks on its arguments that need no connection. Pure functions.
#include <cstddef>
#include <string>
#include <string_view>

namespace repl {

/// One line split into the command and its arguments.
struct command_line {
  std::string name;  ///< First word; empty for a blank line or a '#' comment.
  std::string arg;   ///< Second word, if any.
  std::string rest;  ///< Everything after the second word, leading and trailing blanks removed.
  std::size_t rest_column = 0; ///< 1-based column of `rest` in the line (0 when empty).
};
command_line split_command(std::string_view line);

/// Everything after the command name: `arg`, then `rest` after one blank.
std::string arguments(const command_line& c);

/// Longest wait/expect timeout: a day.
constexpr long long max_wait_ms = 24LL * 3600 * 1000;

/// Deepest nesting of arrays and objects in JSON text (strings skipped), so
/// too deep a value is refused before the parser recurses into it.
std::size_t json_depth(std::string_view text);

/// Whole milliseconds in 0..max_wait_ms; `out` is written only on success.
bool parse_ms(std::string_view s, long long& out);

/// A close code that may be sent (1000-1003, 1007-1014, 3000-4999); `out` is
/// written only on success.
bool parse_close_code(std::string_view s, long long& out);

/// Bytes written as hex digit pairs, blanks allowed between pairs ("00 ff10").
/// On failure returns false with `bad_column` the 1-based column of the first
/// character that is not part of a pair; `out` is written only on success.
bool parse_hex(std::string_view text, std::string& out, std::size_t& bad_column);

} // namespace repl
