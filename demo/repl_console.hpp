#pragma once
// tether-repl's output in handler mode: one line at a time on standard output,
// flushed, coloured by kind when allowed, and printed above the prompt while
// the line editor shows one (so incoming messages never break the typed line).
#include <tether/codec.hpp>

#include <exception>
#include <functional>
#include <string>
#include <string_view>

namespace repl {

/// What a line is; decides its colour (docs/repl.md lists the prefixes).
enum class tone {
  plain,    ///< status JSON, help: never coloured
  incoming, ///< "< PATH DATA" (a routed message)
  unrouted, ///< "< unrouted PATH DATA"
  state,    ///< "* ..." state changes and notes
  problem,  ///< "! ..." incoming trouble: invalid messages, late send failures
  ok,       ///< "ok ..." command results
  error,    ///< "error: ..." command results
};

class console {
public:
  explicit console(bool color) : color_(color) {}

  /// Writes `text` and a newline to stdout (coloured unless tone::plain) and flushes.
  void line(tone t, std::string_view text);

  /// While set, lines go through `hook` (true = it printed them), e.g. the line
  /// editor printing above its prompt; an empty function removes it.
  void set_hook(std::function<bool(std::string_view)> hook) { hook_ = std::move(hook); }

  bool color() const noexcept { return color_; }

private:
  bool color_;
  std::function<bool(std::string_view)> hook_;
};

/// `text` made safe for one line on a terminal: control characters (C0, DEL and
/// the C1 range U+0080..U+009F) become \xNN, invalid UTF-8 bytes too.
std::string printable(std::string_view text);

/// `url` without its userinfo ("ws://user:pw@host/" → "ws://host/"), the rest
/// exactly as given: every URL the REPL prints goes through this.
std::string without_userinfo(std::string_view url);

/// `j` as compact JSON on one line, safe for a terminal (DEL and C1 characters
/// escaped as \u00NN, invalid UTF-8 replaced by U+FFFD).
std::string one_line_json(const tether::json& j);

/// The text of an exception from a coroutine's completion handler.
inline std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
  }
  return "unknown error";
}

} // namespace repl
