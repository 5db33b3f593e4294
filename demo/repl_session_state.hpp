#pragma once
// What a tether-repl handler session shares between its loop and callbacks
// (repl_session.cpp) and its commands (repl_commands.cpp): the session's state
// and the helpers both use. Everything runs on one thread (repl_session.cpp).
#include "repl_command.hpp"
#include "repl_format.hpp"
#include "repl_session.hpp"

#include <tether/handler.hpp>

#include "asio_compat.hpp"

#include <asio/steady_timer.hpp>

#include <fmt/core.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace repl {

using steady = std::chrono::steady_clock;
using tether::json;
using tether::detail::use_nothrow;

inline constexpr auto never = steady::time_point::max();
/// Messages kept for expect (the oldest go first).
inline constexpr std::size_t max_unmatched = 1000;
/// Deepest JSON nesting `send` accepts (as the codec's decode limit).
inline constexpr std::size_t max_json_depth = tether::field_codec::max_depth;

/// A message kept for expect.
struct received {
  std::string path;
  std::string shown; ///< "PATH DATA[ fields={...}]", as printed.
};

/// State shared by the command loop and the handler's callbacks.
struct session : std::enable_shared_from_this<session> {
  session(asio::any_io_executor e, options o, console& c, input_source i, session_control& k)
      : ex(std::move(e)), opt(std::move(o)), out(c), in(std::move(i)), ctl(k), changed(ex, never) {}

  asio::any_io_executor ex;
  options opt;
  console& out;
  input_source in;
  session_control& ctl;
  std::optional<tether::handler> ws; // after construction: its callbacks hold a weak_ptr to us
  std::string url;
  std::map<std::string, tether::route_handle> routes;
  std::deque<received> unmatched;
  asio::steady_timer changed; // a condition variable: notify() wakes the command waiting on it
  tether::connection_state state = tether::connection_state::idle;
  std::size_t pending_sends = 0;
  std::string connection_error; ///< The stream's last "connection error" warning: the details.
  bool interrupted = false;
  bool timed_out = false;     // --timeout passed (exit 5)
  long long printed = 0;      // incoming messages printed (--max-messages)
  bool enough = false;        // --max-messages reached: the session ends
  bool failed = false; // a command failed (--strict)
  bool plan_pending = false; // connecting: say what the retry policy will do at the first failure
  /// Event lines (messages, state changes, notes) wait here while a send runs,
  /// and print after its result: a send's "ok" comes before anything it caused.
  std::vector<std::pair<tone, std::string>> held;
  bool holding = false;

  void notify() { changed.cancel(); }

  /// Prints a line about something that happened, unless a send holds them.
  void event(tone t, std::string text) {
    if (holding)
      held.emplace_back(t, std::move(text));
    else
      out.line(t, text);
  }
  void release() {
    holding = false;
    for (const auto& [t, text] : held)
      out.line(t, text);
    held.clear();
  }

  void ok(std::string_view detail = {}) {
    out.line(tone::ok, detail.empty() ? std::string("ok") : fmt::format("ok {}", detail));
  }
  /// Prints the failure and returns false, for `return s->fail(...)`.
  bool fail(std::string_view why) {
    failed = true;
    out.line(tone::error, fmt::format("error: {}", why));
    return false;
  }
};

// ---- holding event lines ----

/// Holds event lines while a send runs; prints them once it is destroyed
/// (after the send's result line).
struct hold_events {
  explicit hold_events(session& s) : s_(s) { s_.holding = true; }
  ~hold_events() { s_.release(); }
  hold_events(const hold_events&) = delete;
  hold_events& operator=(const hold_events&) = delete;

private:
  session& s_;
};

/// The outcome of an operation started with co_spawn.
struct op_result {
  bool done = false;
  std::string error; ///< Empty on success.
  bool reported = false; ///< The command returned before it finished ("ok queued").
};

// ---- repl_session.cpp ----

/// Prints an incoming message (routed or not) and keeps it for expect.
void print_message(session& s, const tether::message& m, bool routed, bool show_captures);
/// Returns after the next notify() or at `deadline`, whichever comes first.
asio::awaitable<void> wait_change(std::shared_ptr<session> s, steady::time_point deadline);
asio::awaitable<void> send_one(std::shared_ptr<session> s, std::string path, json data);
asio::awaitable<void> send_one_binary(std::shared_ptr<session> s, std::string path, std::string bytes);
/// Connects to s->url (following the retry policy); true once open.
asio::awaitable<bool> connect_now(std::shared_ptr<session> s, std::string& error);
/// Connecting, open, reconnecting or closing.
bool active(tether::connection_state st);

// ---- repl_commands.cpp: one function per command (docs/repl.md) ----

asio::awaitable<void> cmd_send(std::shared_ptr<session> s, command_line c, bool binary);
asio::awaitable<void> cmd_request(std::shared_ptr<session> s, command_line c);
asio::awaitable<void> cmd_sub(std::shared_ptr<session> s, command_line c);
asio::awaitable<void> cmd_unsub(std::shared_ptr<session> s, command_line c);
asio::awaitable<void> cmd_expect(std::shared_ptr<session> s, command_line c);
asio::awaitable<void> cmd_wait(std::shared_ptr<session> s, command_line c);
asio::awaitable<void> cmd_close(std::shared_ptr<session> s, command_line c);
asio::awaitable<void> cmd_connect(std::shared_ptr<session> s, command_line c);
asio::awaitable<void> cmd_ping(std::shared_ptr<session> s, command_line c);
void cmd_route(session& s, const command_line& c);
void cmd_unroute(session& s, const command_line& c);
void cmd_routes(session& s);

} // namespace repl
