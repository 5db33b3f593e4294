// tether-repl's handler mode. One coroutine reads a command, runs it to the end
// and prints its result, then reads the next; route handlers, the fallback and
// the handler's callbacks print what arrives meanwhile. Everything runs on one
// thread (the io_context has one, the handler's strand is on it), so the
// session's state needs no lock. Coroutines are static and take
// shared_ptr<session> (docs/design.md, compiler notes).
#include "repl_session.hpp"

#include "repl_command.hpp"
#include "repl_format.hpp"

#include <tether/error.hpp>
#include <tether/handler.hpp>
#include <tether/protocol.hpp>
#include <tether/router.hpp>
#include <tether/url.hpp>

#include "asio_compat.hpp"
#include "utf8.hpp"

#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include <fmt/core.h>

#include <charconv>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace repl {

namespace {

using steady = std::chrono::steady_clock;
using tether::json;
using tether::detail::use_nothrow;

constexpr auto never = steady::time_point::max();
/// Messages kept for expect (the oldest go first).
constexpr std::size_t max_unmatched = 1000;
/// Deepest JSON nesting `send` accepts (as the codec's decode limit).
constexpr std::size_t max_json_depth = tether::field_codec::max_depth;

const char* const help_lines[] = {
    "commands (one per line; '#' starts a comment):",
    "  send PATH [JSON]          send an envelope; 'ok' once written, 'ok queued' while offline",
    "  sendb PATH [HEX]          send a binary envelope: PATH, then the bytes given in hex ('00 ff 10')",
    "  request PATH [JSON] [MS]  send a request (an id), wait for its reply: 'ok DATA' (MS: timeout)",
    "  sub TOPIC                 subscribe (acknowledged by the server); publications print as '< TOPIC DATA'",
    "  unsub TOPIC               end that subscription",
    "  route PATTERN             print messages matching PATTERN with their captures [a, b]",
    "  unroute PATTERN           remove that route",
    "  routes                    list the routes: 'ok PATTERN...'",
    "  status                    the handler's status as one line of JSON",
    "  wait MS                   pause MS milliseconds while messages print",
    "  expect PATTERN [MS]       wait for a message matching PATTERN that no expect took yet",
    "  close [CODE] [REASON]     close the connection (default 1000)",
    "  connect [URL]             connect again, to URL or to the last URL",
    "  ping [PAYLOAD]            ping the server: 'ok RTT ms'",
    "  help                      this list",
    "  quit                      send what is queued, close and exit (also: end of input)",
    "patterns: dot-separated segments; '*' is one segment, '#' any number at the end",
    "output: '< PATH DATA' routed, '< unrouted PATH DATA', '* ...' state, '! ...' trouble;",
    "        a binary envelope's DATA is 'binary N bytes: HEX ...'",
};

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

// ---- what arrives ----

/// --max-messages: the N-th message printed ends the input, as quit would.
void count_message(session& s) {
  if (s.opt.max_messages > 0 && ++s.printed == s.opt.max_messages) {
    s.enough = true;
    s.in.stop();
    s.notify();
  }
}

void print_message(session& s, const tether::message& m, bool routed, bool show_captures) {
  if (s.enough)
    return; // --max-messages: N printed, the rest is dropped while the session ends
  const auto& e = m.env;
  // A binary envelope shows its path and "binary N bytes: hex preview".
  const std::string path_data = path_text(e.path) + " " + (e.binary ? binary_text(e.bytes) : one_line_json(e.data));
  const std::string fields = fields_text(e);
  std::string line = routed ? "< " : "< unrouted ";
  line += path_data;
  if (routed && show_captures)
    line += " " + captures_text(m.wildcards);
  line += fields;
  s.event(routed ? tone::incoming : tone::unrouted, std::move(line));
  if (s.unmatched.size() >= max_unmatched)
    s.unmatched.pop_front();
  s.unmatched.push_back({e.path, path_data + fields});
  s.notify();
  count_message(s);
}

void on_state(session& s, const tether::state_change& c) {
  using tether::connection_state;
  s.state = c.state;
  auto line = state_text(c, s.url, s.opt.handler.max_retries);
  if (!line.empty())
    s.event(c.state == connection_state::failed ? tone::problem : tone::state, std::move(line));
  if (s.plan_pending && c.state == connection_state::reconnecting && c.error) {
    // A script waiting to connect learns at once how long it may wait.
    s.plan_pending = false;
    s.event(tone::state, retry_plan_text(s.opt.handler, c.attempt));
  }
  s.notify();
}

void on_error(session& s, std::error_code ec, std::string_view what) {
  if (ec == tether::error::invalid_envelope)
    s.event(tone::problem, "! invalid message: " + printable(what));
  else
    s.event(tone::problem, "! " + printable(what));
}

// ---- waiting ----

/// Returns after the next notify() or at `deadline`, whichever comes first.
asio::awaitable<void> wait_change(std::shared_ptr<session> s, steady::time_point deadline) {
  asio::steady_timer alarm(s->ex);
  if (deadline != never) {
    alarm.expires_at(deadline);
    std::weak_ptr<session> weak = s;
    auto ring = [weak](std::error_code ec) {
      if (auto p = weak.lock(); p && !ec)
        p->notify();
    };
    alarm.async_wait(ring);
  }
  co_await s->changed.async_wait(use_nothrow);
}

/// The outcome of an operation started with co_spawn.
struct op_result {
  bool done = false;
  std::string error; ///< Empty on success.
  bool reported = false; ///< The command returned before it finished ("ok queued").
};

asio::awaitable<void> connect_one(std::shared_ptr<session> s, std::string url) {
  co_await s->ws->connect(std::move(url));
}

asio::awaitable<void> send_one(std::shared_ptr<session> s, std::string path, json data) {
  co_await s->ws->send(std::move(path), std::move(data));
}

asio::awaitable<void> send_one_binary(std::shared_ptr<session> s, std::string path, std::string bytes) {
  co_await s->ws->send_binary(std::move(path), std::move(bytes));
}

/// Connects to s->url (following the retry policy); true once open. Gives up
/// waiting when interrupted (the connect then fails with the final close).
asio::awaitable<bool> connect_now(std::shared_ptr<session> s, std::string& error) {
  auto result = std::make_shared<op_result>();
  auto done = [s, result](std::exception_ptr e) {
    result->done = true;
    if (e)
      result->error = what_of(e);
    s->notify();
  };
  s->connection_error.clear();
  s->plan_pending = true;
  asio::co_spawn(s->ex, connect_one(s, s->url), done);
  while (!result->done && !s->interrupted)
    co_await wait_change(s, never);
  s->plan_pending = false;
  if (!result->done) {
    error = "interrupted";
    co_return false;
  }
  error = result->error;
  // tether's message names the URL and the details; where it does not, the
  // stream's last warning has them (the address, OpenSSL's verification reason).
  if (!error.empty() && !names_url(error, s->url) && !s->connection_error.empty())
    error = s->connection_error;
  co_return result->error.empty();
}

bool active(tether::connection_state st) {
  using tether::connection_state;
  return st == connection_state::connecting || st == connection_state::open ||
         st == connection_state::reconnecting || st == connection_state::closing;
}

// ---- commands ----

/// send PATH [JSON], or sendb PATH [HEX] (binary).
/// Parses a command's JSON argument (`column`: where it starts in the line).
/// On failure prints why through `s` (nullptr: silently) and returns false.
bool parse_json_argument(std::string_view text, std::size_t column, json& out, session* s) {
  if (json_depth(text) > max_json_depth) {
    if (s)
      s->fail(fmt::format("malformed JSON: nested deeper than {} levels", max_json_depth));
    return false;
  }
  try {
    out = json::parse(text);
  } catch (const json::parse_error& e) {
    // nlohmann says "[json.exception.parse_error.101] parse error at line 1, column N: why";
    // keep the why, and give the column in the command line.
    if (s) {
      std::string why = e.what();
      if (auto colon = why.find(": "); colon != std::string::npos)
        why.erase(0, colon + 2);
      s->fail(fmt::format("malformed JSON at column {}: {}", column + (e.byte ? e.byte - 1 : 0), printable(why)));
    }
    return false;
  }
  return true;
}

/// request PATH [JSON] [TIMEOUT_MS]: one acknowledged request, 'ok DATA' with
/// the reply's data, or the error (its name: request_timeout, outcome_unknown,
/// request_failed with the server's text).
asio::awaitable<void> cmd_request(std::shared_ptr<session> s, command_line c) {
  if (c.arg.empty()) {
    s->fail("request needs PATH [JSON] [TIMEOUT_MS]");
    co_return;
  }
  json data = nullptr;
  tether::request_options o;
  o.timeout = s->opt.request_timeout;
  std::string_view rest = c.rest;
  // A last word of digits after more text is the timeout, unless the whole rest is JSON.
  const auto last_blank = rest.find_last_of(" \t");
  json whole;
  if (!rest.empty() && last_blank != std::string_view::npos &&
      !parse_json_argument(rest, c.rest_column, whole, nullptr)) {
    const auto word = rest.substr(last_blank + 1);
    if (!word.empty() && word.find_first_not_of("0123456789") == std::string_view::npos) {
      long long ms = 0;
      if (!parse_ms(word, ms) || ms == 0) {
        s->fail(fmt::format("request: TIMEOUT_MS must be milliseconds (1..{}), got '{}'", max_wait_ms,
                            printable(word)));
        co_return;
      }
      o.timeout = std::chrono::milliseconds(ms);
      rest = rest.substr(0, last_blank);
      while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t'))
        rest.remove_suffix(1);
    }
  }
  if (!rest.empty() && !parse_json_argument(rest, c.rest_column, data, &*s))
    co_return;
  if (!active(s->state) || s->state == tether::connection_state::closing) {
    s->fail(fmt::format("not connected ({}); use connect", tether::to_string(s->state)));
    co_return;
  }
  hold_events hold(*s); // until the result line is printed
  std::error_code ec;
  std::string why;
  json reply;
  try {
    auto got = co_await s->ws->request(c.arg, std::move(data), o); // named: see design.md, compiler notes
    reply = std::move(got);
  } catch (const tether::request_error& e) {
    ec = e.code();
    why = "the server answered with an error: " + e.error_text() +
          (e.remote_code().empty() ? "" : " (error_code " + e.remote_code() + ")");
  } catch (const std::system_error& e) {
    ec = e.code();
    why = e.what();
  }
  if (!ec) {
    s->ok(reply.dump());
    co_return;
  }
  const bool ours = &ec.category() == &tether::error_category();
  s->fail(fmt::format("request failed: {}{}", ours ? fmt::format("{}: ", tether::to_string(static_cast<tether::error>(ec.value()))) : "",
                      printable(ec == tether::error::request_timeout
                                    ? fmt::format("no reply within {} ms", o.timeout.count())
                                    : why)));
}

/// "NAME: text" for a failed operation (NAME: tether's error name, when it is one).
std::string failure_text(std::error_code ec, std::string_view why) {
  const bool ours = &ec.category() == &tether::error_category();
  return fmt::format("{}{}", ours ? fmt::format("{}: ", tether::to_string(static_cast<tether::error>(ec.value()))) : "",
                     printable(why));
}

/// sub TOPIC: subscribes; each publication prints as a routed message whose
/// path is the topic ('< TOPIC DATA fields={"seq":N,"topic":...}').
asio::awaitable<void> cmd_sub(std::shared_ptr<session> s, command_line c) {
  if (c.arg.empty() || !c.rest.empty()) {
    s->fail("sub needs one TOPIC");
    co_return;
  }
  if (!active(s->state) || s->state == tether::connection_state::closing) {
    s->fail(fmt::format("not connected ({}); use connect", tether::to_string(s->state)));
    co_return;
  }
  std::weak_ptr<session> weak = s;
  auto print = [weak](const tether::message& m, tether::connection_context&) {
    if (auto p = weak.lock())
      print_message(*p, m, true, false);
  };
  hold_events hold(*s); // until the result line is printed
  std::error_code ec;
  std::string why;
  try {
    co_await s->ws->subscribe(c.arg, print, s->opt.request_timeout);
  } catch (const std::system_error& e) {
    ec = e.code();
    why = e.what();
  }
  if (ec == tether::error::request_timeout)
    s->fail(fmt::format("sub failed: request_timeout: no acknowledgement within {} ms", s->opt.request_timeout.count()));
  else if (ec)
    s->fail("sub failed: " + failure_text(ec, why));
  else
    s->ok();
}

/// unsub TOPIC: ends the subscription ('ok'), or says there was none.
asio::awaitable<void> cmd_unsub(std::shared_ptr<session> s, command_line c) {
  if (c.arg.empty() || !c.rest.empty()) {
    s->fail("unsub needs one TOPIC");
    co_return;
  }
  hold_events hold(*s);
  std::error_code ec;
  std::string why;
  bool ended = false;
  try {
    auto was = co_await s->ws->unsubscribe(c.arg, s->opt.request_timeout); // named: see design.md
    ended = was;
  } catch (const std::system_error& e) {
    ec = e.code();
    why = e.what();
  }
  if (ec)
    s->fail("unsub failed: " + failure_text(ec, why));
  else if (!ended)
    s->fail(fmt::format("not subscribed to '{}'", printable(c.arg)));
  else
    s->ok();
}

asio::awaitable<void> cmd_send(std::shared_ptr<session> s, command_line c, bool binary) {
  if (c.arg.empty()) {
    s->fail(binary ? "sendb needs PATH [HEX]" : "send needs PATH [JSON]");
    co_return;
  }
  json data = nullptr;
  std::string bytes;
  std::size_t bad_column = 0;
  if (binary && !parse_hex(c.rest, bytes, bad_column)) {
    s->fail(fmt::format("malformed hex at column {}: bytes are pairs of hex digits, blanks between them",
                        c.rest_column + bad_column - 1));
    co_return;
  }
  if (!binary && !c.rest.empty() && !parse_json_argument(c.rest, c.rest_column, data, &*s))
    co_return;
  if (!active(s->state) || s->state == tether::connection_state::closing) {
    s->fail(fmt::format("not connected ({}); use connect", tether::to_string(s->state)));
    co_return;
  }
  hold_events hold(*s); // until the result line is printed
  auto result = std::make_shared<op_result>();
  ++s->pending_sends;
  std::string path = c.arg;
  auto done = [s, result, path](std::exception_ptr e) {
    result->done = true;
    --s->pending_sends;
    if (e)
      result->error = what_of(e);
    if (result->reported) {
      // The command said "ok queued" earlier: report how it ended.
      if (e) {
        s->failed = true;
        s->event(tone::problem, fmt::format("! send {} failed: {}", path_text(path), printable(result->error)));
      } else {
        s->event(tone::state, fmt::format("* sent {}", path_text(path)));
      }
    }
    s->notify();
  };
  if (binary)
    asio::co_spawn(s->ex, send_one_binary(s, std::move(c.arg), std::move(bytes)), done);
  else
    asio::co_spawn(s->ex, send_one(s, std::move(c.arg), std::move(data)), done);
  for (;;) {
    if (result->done) {
      if (result->error.empty())
        s->ok();
      else
        s->fail(fmt::format("send failed: {}", printable(result->error)));
      co_return;
    }
    if (s->interrupted) {
      result->reported = true;
      s->ok("queued");
      co_return;
    }
    if (s->state != tether::connection_state::open) {
      // Not open. Once our message waits in the offline queue it is flushed
      // after the reconnect or fails after --send-timeout, and either is printed
      // then: the command is done. Ours is the newest send, so queued > 0 means
      // it is there; 0 means it is being written (it completes with the write)
      // or not yet queued (look again shortly: nothing notifies that step).
      if (s->ws->status().queued > 0) {
        result->reported = true;
        s->ok("queued");
        co_return;
      }
      co_await wait_change(s, steady::now() + std::chrono::milliseconds(20));
      continue;
    }
    co_await wait_change(s, never);
  }
}

asio::awaitable<void> cmd_expect(std::shared_ptr<session> s, command_line c) {
  if (c.arg.empty()) {
    s->fail("expect needs PATTERN [TIMEOUT_MS]");
    co_return;
  }
  long long ms = s->opt.expect_timeout.count();
  if (!c.rest.empty() && !parse_ms(c.rest, ms)) {
    s->fail(fmt::format("expect: TIMEOUT_MS must be milliseconds (0..{}), got '{}'", max_wait_ms, printable(c.rest)));
    co_return;
  }
  tether::path_router matcher;
  if (auto ec = matcher.add(c.arg, 0)) {
    s->fail(pattern_error_text(c.arg, ec));
    co_return;
  }
  const bool wild = has_wildcards(c.arg);
  const auto deadline = steady::now() + std::chrono::milliseconds(ms);
  for (;;) {
    for (auto it = s->unmatched.begin(); it != s->unmatched.end(); ++it) {
      tether::captures caps;
      if (!matcher.match(it->path, caps))
        continue;
      std::string line = it->shown;
      if (wild)
        line += " " + captures_text(caps);
      s->unmatched.erase(it);
      s->ok(line);
      co_return;
    }
    if (s->interrupted) {
      s->fail(fmt::format("expect {}: interrupted", printable(c.arg)));
      co_return;
    }
    if (steady::now() >= deadline) {
      s->fail(fmt::format("expect {}: nothing matched within {} ms", printable(c.arg), ms));
      co_return;
    }
    co_await wait_change(s, deadline);
  }
}

asio::awaitable<void> cmd_wait(std::shared_ptr<session> s, command_line c) {
  long long ms = 0;
  if (!parse_ms(c.arg, ms) || !c.rest.empty()) {
    s->fail(fmt::format("wait needs MS (0..{})", max_wait_ms));
    co_return;
  }
  const auto deadline = steady::now() + std::chrono::milliseconds(ms);
  while (steady::now() < deadline && !s->interrupted)
    co_await wait_change(s, deadline);
  if (s->interrupted)
    s->fail("wait: interrupted");
  else
    s->ok();
}

asio::awaitable<void> cmd_close(std::shared_ptr<session> s, command_line c) {
  long long code = 1000;
  if (!c.arg.empty()) {
    if (!parse_close_code(c.arg, code)) {
      s->fail(fmt::format("close: '{}' is not a close code that may be sent (1000-1003, 1007-1014, 3000-4999)",
                          printable(c.arg)));
      co_return;
    }
  }
  if (c.rest.size() > 123 || !tether::detail::is_valid_utf8(c.rest)) {
    s->fail("close: REASON must be UTF-8 of at most 123 bytes");
    co_return;
  }
  if (!active(s->state)) {
    s->fail(fmt::format("not connected ({})", tether::to_string(s->state)));
    co_return;
  }
  co_await s->ws->close(static_cast<std::uint16_t>(code), c.rest);
  s->ok();
}

asio::awaitable<void> cmd_connect(std::shared_ptr<session> s, command_line c) {
  if (!c.rest.empty()) {
    s->fail("connect takes at most one URL");
    co_return;
  }
  if (!c.arg.empty()) {
    tether::url parsed;
    if (auto ec = tether::parse_url(c.arg, parsed)) {
      s->fail(fmt::format("bad URL '{}': {}", printable(without_userinfo(c.arg)), ec.message()));
      co_return;
    }
  }
  if (active(s->state))
    co_await s->ws->close(1000, {});
  if (!c.arg.empty())
    s->url = c.arg;
  std::string error;
  const bool ok = co_await connect_now(s, error);
  if (ok)
    s->ok();
  else
    s->fail(cannot_connect_text(s->url, error));
}

asio::awaitable<void> cmd_ping(std::shared_ptr<session> s, command_line c) {
  std::string payload = arguments(c);
  if (payload.size() > 125 || !tether::detail::is_valid_utf8(payload)) {
    s->fail("ping: PAYLOAD must be UTF-8 of at most 125 bytes");
    co_return;
  }
  std::error_code ec;
  const auto rtt = co_await s->ws->ping(std::move(payload), ec);
  if (ec)
    s->fail(fmt::format("ping failed: {}", ec == asio::error::not_connected
                                               ? fmt::format("not connected ({})", tether::to_string(s->state))
                                               : printable(ec.message())));
  else
    s->ok(rtt_text(rtt) + " ms");
}

void cmd_route(session& s, const command_line& c) {
  if (c.arg.empty() || !c.rest.empty()) {
    s.fail("route needs one PATTERN");
    return;
  }
  if (s.routes.count(c.arg)) {
    s.fail(fmt::format("route '{}' exists", printable(c.arg)));
    return;
  }
  std::weak_ptr<session> weak = s.weak_from_this();
  const bool wild = has_wildcards(c.arg);
  auto print = [weak, wild](const tether::message& m, tether::connection_context&) {
    if (auto p = weak.lock())
      print_message(*p, m, true, wild);
  };
  try {
    // Text and binary envelopes alike: the REPL shows whatever comes.
    s.routes.emplace(c.arg, s.ws->add_route(tether::route(c.arg, print, tether::route_kind::any)));
  } catch (const std::system_error& e) {
    s.fail(pattern_error_text(c.arg, e.code()));
    return;
  }
  if (s.ctl.pattern_used)
    s.ctl.pattern_used(c.arg);
  s.ok();
}

void cmd_unroute(session& s, const command_line& c) {
  auto it = s.routes.find(c.arg);
  if (c.arg.empty() || !c.rest.empty() || it == s.routes.end()) {
    s.fail(fmt::format("no route '{}'", printable(c.arg)));
    return;
  }
  it->second.remove();
  s.routes.erase(it);
  s.ok();
}

void cmd_routes(session& s) {
  std::string list;
  for (const auto& [pattern, handle] : s.routes)
    list += (list.empty() ? "" : " ") + printable(pattern);
  s.ok(list);
}

/// Runs one command line; false for quit.
asio::awaitable<bool> run_command(std::shared_ptr<session> s, std::string line) {
  auto c = split_command(line);
  if (c.name.empty())
    co_return true;
  if (c.name == "quit" || c.name == "exit")
    co_return false;
  if (c.name == "send" || c.name == "sendb") {
    const bool binary = c.name == "sendb";
    co_await cmd_send(s, std::move(c), binary);
  } else if (c.name == "expect") {
    co_await cmd_expect(s, std::move(c));
  } else if (c.name == "wait") {
    co_await cmd_wait(s, std::move(c));
  } else if (c.name == "close") {
    co_await cmd_close(s, std::move(c));
  } else if (c.name == "connect") {
    co_await cmd_connect(s, std::move(c));
  } else if (c.name == "ping") {
    co_await cmd_ping(s, std::move(c));
  } else if (c.name == "request") {
    co_await cmd_request(s, std::move(c));
  } else if (c.name == "sub") {
    co_await cmd_sub(s, std::move(c));
  } else if (c.name == "unsub") {
    co_await cmd_unsub(s, std::move(c));
  } else if (c.name == "route") {
    cmd_route(*s, c);
  } else if (c.name == "unroute") {
    cmd_unroute(*s, c);
  } else if (c.name == "routes") {
    cmd_routes(*s);
  } else if (c.name == "status") {
    s->out.line(tone::plain, s->ws->status().to_json().dump());
  } else if (c.name == "help") {
    for (const char* h : help_lines)
      s->out.line(tone::plain, h);
  } else {
    s->fail(fmt::format("unknown command '{}' (help lists them)", printable(c.name)));
  }
  co_return true;
}

asio::awaitable<int> run_session(std::shared_ptr<session> s) {
  std::string error;
  const bool connected = co_await connect_now(s, error);
  if (!connected) {
    if (active(s->state))
      co_await s->ws->close(1000, {}); // interrupted while connecting
    if (s->timed_out) {
      fmt::print(stderr, "tether-repl: timed out after {} ms (--timeout) while connecting to {}\n",
                 s->opt.timeout.count(), without_userinfo(s->url));
      co_return exit_timeout;
    }
    fmt::print(stderr, "tether-repl: {}\n", cannot_connect_text(s->url, error));
    co_return exit_failed;
  }
  for (;;) {
    std::optional<std::string> line;
    try {
      auto got = co_await s->in.next(); // named: see design.md, compiler notes
      line = std::move(got);
    } catch (const std::exception& e) {
      s->failed = true;
      s->out.line(tone::problem, fmt::format("! cannot read the input: {}", e.what()));
    }
    if (!line)
      break;
    const bool go_on = co_await run_command(s, std::move(*line));
    if (!go_on || s->enough)
      break;
  }
  // --max-messages: the end of input does not end the session; the N-th
  // message does (or --timeout, or a signal).
  while (s->opt.max_messages > 0 && !s->enough && !s->interrupted)
    co_await wait_change(s, never);
  // End of input or quit: let queued sends go out (each is bounded by
  // send_timeout), then close cleanly.
  while (s->pending_sends > 0 && !s->interrupted)
    co_await wait_change(s, never);
  if (active(s->state))
    co_await s->ws->close(1000, {});
  if (s->timed_out)
    co_return exit_timeout;
  co_return s->opt.strict && s->failed ? exit_strict : exit_ok;
}

} // namespace

asio::awaitable<int> handler_session(options opt, std::string url, console& out, input_source in,
                                     session_control& ctl) {
  auto ex = co_await asio::this_coro::executor;
  auto s = std::make_shared<session>(ex, std::move(opt), out, std::move(in), ctl);
  s->url = std::move(url);
  std::weak_ptr<session> weak = s;
  auto hopts = s->opt.handler;
  hopts.stream = s->opt.stream;
  hopts.on_state = [weak](const tether::state_change& c) {
    if (auto p = weak.lock())
      on_state(*p, c);
  };
  hopts.on_error = [weak](std::error_code ec, std::string_view what) {
    if (auto p = weak.lock())
      on_error(*p, ec, what);
  };
  // The handler's state changes carry error codes; the stream's warnings carry
  // the details, kept for "cannot connect" (never Authorization or Cookie values).
  hopts.stream.log = [weak](tether::log_level level, std::string_view text) {
    constexpr std::string_view prefix = "connection error: ";
    auto p = weak.lock();
    if (p && level == tether::log_level::warning && text.substr(0, prefix.size()) == prefix)
      p->connection_error = std::string(text.substr(prefix.size()));
    // -v: the handshake's "> " request and "< " response lines, secrets redacted
    // by the stream, as state lines (a bare "< " is a message here).
    if (p && p->opt.verbose && level == tether::log_level::debug)
      p->event(tone::state, "* " + printable(text));
  };
  s->ws.emplace(ex, std::move(hopts));
  auto unrouted = [weak](const tether::message& m, tether::connection_context&) {
    if (auto p = weak.lock())
      print_message(*p, m, false, false);
  };
  s->ws->set_fallback(tether::route::message_fn(unrouted));
  ctl.interrupt = [weak] {
    if (auto p = weak.lock()) {
      p->interrupted = true;
      p->in.stop();
      p->notify();
    }
  };
  // --timeout: counted from the start, connecting included; it ends the input
  // and the command running, as a signal does, and the exit status is 5.
  asio::steady_timer deadline(ex);
  if (s->opt.timeout.count() > 0) {
    deadline.expires_after(s->opt.timeout);
    deadline.async_wait([weak](std::error_code ec) {
      auto p = weak.lock();
      if (ec || !p)
        return;
      p->timed_out = true;
      p->event(tone::problem, fmt::format("* timed out after {} ms (--timeout)", p->opt.timeout.count()));
      p->interrupted = true;
      p->in.stop();
      p->notify();
    });
  }
  int status = exit_failed;
  std::exception_ptr error;
  try {
    const int rc = co_await run_session(s);
    status = rc;
  } catch (...) {
    error = std::current_exception();
  }
  ctl.interrupt = nullptr;
  deadline.cancel();
  if (error) {
    // Never leave the handler running: main's io_context would not return.
    if (active(s->state))
      co_await s->ws->close(1011, {});
    std::rethrow_exception(error);
  }
  co_return status;
}

} // namespace repl
