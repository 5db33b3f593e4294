#pragma once
// tether-repl's interactive input: libedit's readline interface in callback
// mode, driven by the io_context (fd 0 readiness), so incoming messages print
// above the prompt while the user types. Line editing, history kept in a file,
// tab completion of commands and of the route patterns used so far.
#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace repl {

/// True when this build has libedit (otherwise the REPL reads TTYs like pipes).
bool line_editor_available() noexcept;

/// The interactive line reader. At most one exists at a time (libedit's
/// readline interface is global). Use only on the executor's thread.
class line_editor {
public:
  /// `history_file` empty: no history is read or written. Throws
  /// std::system_error if fd 0 cannot be watched.
  line_editor(asio::any_io_executor ex, std::string prompt, std::string history_file);
  /// Removes the prompt, restores the terminal and writes the history file.
  ~line_editor();
  line_editor(const line_editor&) = delete;
  line_editor& operator=(const line_editor&) = delete;

  /// The next line the user entered (it is added to the history when not empty);
  /// nothing at end of input (Ctrl-D on an empty line) or once stop() was called.
  /// The prompt shows only while a call waits.
  asio::awaitable<std::optional<std::string>> next();

  /// Ends the input: a pending next() completes with nothing, and so do later ones.
  void stop();

  /// Prints `line` (no newline) above the prompt and redraws the prompt and the
  /// text being typed; false (nothing printed) when no prompt is shown.
  bool print_above(std::string_view line);

  /// Words tab completion offers after the command name (route patterns used).
  void add_completion(std::string word);

  struct state;

private:
  std::shared_ptr<state> st_;
};

/// The history file: $TETHER_REPL_HISTORY if set (empty: none), else
/// $HOME/.tether_repl_history (none without HOME).
std::string default_history_file();

} // namespace repl
