// tether-repl's commands in handler mode, one function each (docs/repl.md is
// the contract): each runs to its end and prints its result line.
#include "repl_session_state.hpp"

#include <tether/error.hpp>
#include <tether/protocol.hpp>
#include <tether/router.hpp>
#include <tether/url.hpp>

#include "utf8.hpp"

#include <charconv>
#include <exception>

namespace repl {

namespace {

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

/// "NAME: text" for a failed operation (NAME: tether's error name, when it is one).
std::string failure_text(std::error_code ec, std::string_view why) {
  const bool ours = &ec.category() == &tether::error_category();
  return fmt::format("{}{}", ours ? fmt::format("{}: ", tether::to_string(static_cast<tether::error>(ec.value()))) : "",
                     printable(why));
}

} // namespace

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

/// send PATH [JSON], or sendb PATH [HEX] (binary).
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

} // namespace repl
