// tether-repl's handler mode: the session's loop and callbacks (the commands
// are in repl_commands.cpp). One coroutine reads a command, runs it to the end
// and prints its result, then reads the next; route handlers, the fallback and
// the handler's callbacks print what arrives meanwhile. Everything runs on one
// thread (the io_context has one, the handler's strand is on it), so the
// session's state needs no lock. Coroutines are static and take
// shared_ptr<session> (docs/design.md, compiler notes).
#include "repl_session_state.hpp"

#include <tether/error.hpp>
#include <tether/url.hpp>

#include <asio/co_spawn.hpp>
#include <asio/this_coro.hpp>

#include <exception>

namespace repl {

namespace {

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

/// --max-messages: the N-th message printed ends the input, as quit would.
void count_message(session& s) {
  if (s.opt.max_messages > 0 && ++s.printed == s.opt.max_messages) {
    s.enough = true;
    s.in.stop();
    s.notify();
  }
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

asio::awaitable<void> connect_one(std::shared_ptr<session> s, std::string url) {
  co_await s->ws->connect(std::move(url));
}

} // namespace

// ---- shared with the commands (repl_session_state.hpp) ----

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

namespace {

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
