// tether-repl: a command-line WebSocket client.
//
//   tether-repl [URL] [options]     (tether-repl --help lists them)
//
// Handler mode (the default, repl_session.cpp) speaks the envelope through
// tether::handler and reads commands; raw mode (--raw, below) sends each line of
// stdin as a text message (awaiting each send before reading the next line) and
// prints every message received while it waits for input; end of input closes
// with 1000. Without a URL both connect to the embedded demo server
// (demo_server.hpp) started in this process. docs/repl.md is the contract;
// repl_options.cpp has the exit statuses.
#include "demo_server.hpp"
#include "repl_command.hpp"
#include "repl_console.hpp"
#include "repl_editor.hpp"
#include "repl_format.hpp"
#include "repl_input.hpp"
#include "repl_options.hpp"
#include "repl_session.hpp"

#include <tether/error.hpp>
#include <tether/stream.hpp>

#include "asio_compat.hpp"
#include "utf8.hpp" // tether's own validator (lib/, via tether_internal_dep)

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/signal_set.hpp>
#include <asio/this_coro.hpp>

#include <fmt/core.h>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace repl {
namespace {

/// Writes what arrives to stdout and diagnostics to stderr, each line flushed;
/// ANSI colour only where allowed. On a terminal, the server's text is made
/// printable as in handler mode (it could retitle the window or clear the
/// screen); into a pipe or file it goes as is.
class printer {
public:
  printer(bool color_out, bool color_err, bool escape_out, bool full_hex)
      : color_out_(color_out), color_err_(color_err), escape_out_(escape_out), full_hex_(full_hex) {}

  void message(tether::message_kind kind, std::string_view data) const {
    if (kind == tether::message_kind::text) {
      const std::string shown = escape_out_ ? printable(data) : std::string(data);
      std::fwrite(shown.data(), 1, shown.size(), stdout);
      std::fputc('\n', stdout);
    } else if (full_hex_) {
      // --binary: the whole message, in the form the input takes.
      fmt::print(stdout, "{}{}{}\n", on(color_out_, cyan), hex_text(data), off(color_out_));
    } else {
      std::string line = fmt::format("<binary {} bytes>", data.size());
      constexpr std::size_t preview = 16;
      for (std::size_t i = 0; i < data.size() && i < preview; ++i)
        line += fmt::format(" {:02x}", static_cast<unsigned char>(data[i]));
      if (data.size() > preview)
        line += " ...";
      fmt::print(stdout, "{}{}{}\n", on(color_out_, cyan), line, off(color_out_));
    }
    std::fflush(stdout);
  }

  /// The server's close, in the echo peers' format ("closed CODE REASON").
  void closed(std::uint16_t code, std::string_view reason) const {
    bool normal = code == 1000 || code == 1001;
    fmt::print(stdout, "{}closed {} {}{}\n", on(color_out_, normal ? yellow : red), code,
               escape_out_ ? printable(reason) : std::string(reason), off(color_out_));
    std::fflush(stdout);
  }

  void info(std::string_view text) const {
    fmt::print(stderr, "{}{}{}\n", on(color_err_, dim), text, off(color_err_));
  }

  void error(std::string_view text) const {
    fmt::print(stderr, "{}tether-repl: {}{}\n", on(color_err_, red), text, off(color_err_));
  }

private:
  static constexpr std::string_view cyan = "\x1b[36m", yellow = "\x1b[33m", red = "\x1b[31m", dim = "\x1b[2m";
  static std::string_view on(bool color, std::string_view code) { return color ? code : std::string_view(); }
  static std::string_view off(bool color) { return color ? "\x1b[0m" : ""; }

  bool color_out_;
  bool color_err_;
  bool escape_out_;
  bool full_hex_;
};

/// What main() and a signal can reach while the session runs.
struct control {
  tether::stream* ws = nullptr;
  std::function<void()> stop; ///< Set while the session runs: ends the input and closes cleanly.
  int interrupts = 0;
};

/// How the session went.
struct state {
  bool closing = false;       ///< We started the close (end of input, --max-messages, --timeout, /close).
  bool server_closed = false; ///< The server started it; close_code is its code.
  std::uint16_t close_code = 0;
  bool failed = false;        ///< An error was reported.
  bool timed_out = false;     ///< --timeout passed first.
  long long messages = 0;     ///< Messages printed (--max-messages).
  // The close the closer coroutine is asked for, and how to wake it.
  bool close_wanted = false;
  std::uint16_t our_code = 1000;
  std::string our_reason;
  bool ended = false;         ///< receive_loop is done: the closer has nothing left to do.
  asio::steady_timer* wake = nullptr;
};

void fail(state& st, const printer& out, std::string_view what) {
  if (!st.failed)
    out.error(what);
  st.failed = true;
}

/// Asks the closer for a clean close (once; later requests keep the first code).
void request_close(state& st, std::uint16_t code = 1000, std::string reason = {}) {
  if (st.close_wanted)
    return;
  st.close_wanted = true;
  st.our_code = code;
  st.our_reason = std::move(reason);
  st.wake->cancel();
}

asio::awaitable<void> receive_loop(tether::stream& ws, line_reader& input, const printer& out, const options& opt,
                                   state& st) {
  std::string buffer;
  for (;;) {
    std::error_code ec;
    auto r = co_await ws.read(buffer, ec);
    if (ec) {
      // While we close, the close() call reports what goes wrong.
      if (!st.closing)
        fail(st, out, fmt::format("connection failed: {}", ec.message()));
      break;
    }
    if (r.kind == tether::message_kind::close) {
      if (!st.closing) {
        st.server_closed = true;
        st.close_code = r.close_code;
        out.closed(r.close_code, r.close_reason);
      }
      break;
    }
    if (opt.max_messages > 0 && st.messages >= opt.max_messages)
      continue; // N printed: the rest is dropped while the close completes
    out.message(r.kind, buffer);
    if (opt.max_messages > 0 && ++st.messages == opt.max_messages) {
      input.stop(); // the session is complete: no more lines are sent
      request_close(st);
    }
  }
  st.ended = true;
  st.wake->cancel();
  input.stop();
}

/// --slash: "/ping [PAYLOAD]" and "/close [CODE [REASON]]"; false for other lines.
asio::awaitable<bool> slash_command(tether::stream& ws, const std::string& line, const printer& out, state& st) {
  if (line.empty() || line.front() != '/')
    co_return false;
  const auto c = split_command(std::string_view(line).substr(1));
  if (c.name == "ping") {
    const std::string payload = arguments(c);
    std::error_code ec;
    const auto rtt = co_await ws.ping(payload, std::chrono::seconds(10), ec);
    if (ec)
      out.error(fmt::format("ping failed: {}", ec.message()));
    else
      out.info(fmt::format("pong in {} ms", rtt_text(rtt)));
  } else if (c.name == "close") {
    long long code = 1000;
    if (!c.arg.empty() && !parse_close_code(c.arg, code)) {
      out.error(fmt::format("/close: '{}' is not a close code that may be sent (1000-1003, 1007-1014, 3000-4999)",
                            printable(c.arg)));
      co_return true;
    }
    if (c.rest.size() > 123 || !tether::detail::is_valid_utf8(c.rest)) {
      out.error("/close: REASON must be UTF-8 of at most 123 bytes");
      co_return true;
    }
    request_close(st, static_cast<std::uint16_t>(code), c.rest);
  } else {
    out.error(fmt::format("unknown command '/{}' (--slash knows /ping and /close)", printable(c.name)));
  }
  co_return true;
}

asio::awaitable<void> send_loop(tether::stream& ws, line_reader& input, const printer& out, const options& opt,
                                state& st) {
  for (;;) {
    std::optional<std::string> line;
    try {
      line = co_await input.next();
    } catch (const std::system_error& e) {
      fail(st, out, e.what());
      ws.abort(); // Ends receive_loop.
      co_return;
    }
    if (!line)
      break;
    if (opt.slash) {
      const bool handled = co_await slash_command(ws, *line, out, st);
      if (handled)
        continue;
    }
    auto kind = tether::message_kind::text;
    if (opt.binary) {
      std::string bytes;
      std::size_t column = 0;
      if (!parse_hex(*line, bytes, column)) {
        out.error(fmt::format("not sent: the line is not hex (column {})", column));
        continue;
      }
      *line = std::move(bytes);
      kind = tether::message_kind::binary;
    } else if (!tether::detail::is_valid_utf8(*line)) {
      // stream::send() does not check outgoing text; the server would fail the
      // connection with 1007 (RFC 6455 §8.1). Skip the line instead.
      out.error("not sent: the line is not valid UTF-8");
      continue;
    }
    std::error_code ec;
    co_await ws.send(*line, kind, ec);
    if (ec == tether::error::closed)
      co_return; // The connection is ending; receive_loop sees why and reports it.
    if (ec) {
      fail(st, out, fmt::format("send failed: {}", ec.message()));
      ws.abort(); // Ends receive_loop.
      co_return;
    }
  }
  // The end of input closes, unless --max-messages waits for the replies.
  if (opt.max_messages == 0)
    request_close(st);
}

/// Runs the one clean close that the end of input, --max-messages, --timeout or
/// /close ask for; ends without closing when the connection ended otherwise.
asio::awaitable<void> closer(tether::stream& ws, const printer& out, state& st) {
  while (!st.close_wanted && !st.ended)
    co_await st.wake->async_wait(tether::detail::use_nothrow);
  if (!st.close_wanted || st.ended || st.server_closed || st.failed)
    co_return;
  st.closing = true;
  std::error_code ec;
  co_await ws.close(st.our_code, st.our_reason, ec);
  if (ec) {
    fail(st, out, fmt::format("close failed: {}", ec.message()));
    ws.abort(); // the session must end: receive_loop sees the abort
  }
}

/// Connects, runs the conversation, closes; returns the exit status.
asio::awaitable<int> session(const options& opt, const printer& out, control& ctl) {
  const std::string shown = without_userinfo(opt.url);
  auto this_ex = co_await asio::this_coro::executor;

  auto so = opt.stream;
  if (opt.verbose)
    so.log = [&out](tether::log_level level, std::string_view text) {
      if (level == tether::log_level::debug)
        out.info(text); // the handshake's lines, secrets redacted by the stream
    };
  tether::stream ws(this_ex, so);
  ctl.ws = &ws;
  state st;
  asio::steady_timer wake(this_ex, asio::steady_timer::time_point::max());
  st.wake = &wake;
  line_reader input(this_ex);
  // --timeout: counted from the start, connecting included.
  asio::steady_timer deadline(this_ex);
  bool connected = false;
  if (opt.timeout.count() > 0) {
    deadline.expires_after(opt.timeout);
    deadline.async_wait([&](std::error_code ec) {
      if (ec)
        return;
      st.timed_out = true;
      out.error(fmt::format("timed out after {} ms (--timeout)", opt.timeout.count()));
      if (!connected) {
        ws.abort(); // connect() fails with operation_aborted
        return;
      }
      input.stop();
      request_close(st);
    });
  }
  std::string connect_error;
  try {
    co_await ws.connect(opt.url);
  } catch (const std::exception& e) {
    connect_error = e.what(); // For TLS it names the verification failure.
  }
  if (!connect_error.empty()) {
    ctl.ws = nullptr;
    deadline.cancel();
    if (st.timed_out)
      co_return exit_timeout;
    out.error(cannot_connect_text(opt.url, connect_error));
    co_return exit_failed;
  }
  connected = true;
  if (ws.subprotocol().empty())
    out.info(fmt::format("connected to {}", shown));
  else
    out.info(fmt::format("connected to {} (subprotocol {})", shown, ws.subprotocol()));

  ctl.stop = [&] {
    input.stop();
    request_close(st);
  };
  if (ctl.interrupts > 0 || st.timed_out)
    ctl.stop();
  {
    using namespace tether::detail::awaitable_operators;
    co_await (receive_loop(ws, input, out, opt, st) && send_loop(ws, input, out, opt, st) && closer(ws, out, st));
  }
  deadline.cancel();
  ctl.stop = nullptr;
  if (st.server_closed) {
    std::error_code ignored; // The server's close is answered; this only waits for TCP to end.
    co_await ws.close(1000, std::string_view(), ignored);
  }
  ctl.ws = nullptr;
  if (st.timed_out)
    co_return exit_timeout;
  if (st.server_closed)
    co_return st.close_code == 1000 || st.close_code == 1001 ? exit_ok : exit_server_close;
  co_return st.failed ? exit_failed : exit_ok;
}

/// SIGINT/SIGTERM: the first ends the input (a clean close follows), the next aborts.
struct on_signal {
  asio::signal_set& signals;
  control& ctl;

  void operator()(const std::error_code& ec, int) const {
    if (ec)
      return;
    if (++ctl.interrupts == 1 && ctl.stop)
      ctl.stop();
    else if (ctl.ws)
      ctl.ws->abort();
    signals.async_wait(*this);
  }
};

bool color_allowed(bool requested, int fd) {
  const char* no_color = std::getenv("NO_COLOR"); // https://no-color.org: set and not empty.
  return requested && isatty(fd) && !(no_color && *no_color);
}

} // namespace
} // namespace repl

namespace repl {
namespace {

/// Raw mode: the stream, lines in and messages out.
int run_raw(asio::io_context& ctx, asio::signal_set& signals, const options& opt, const printer& out, control& ctl,
            tether::demo::demo_server* embedded) {
  signals.async_wait(on_signal{signals, ctl});
  int status = exit_failed;
  auto finished = [&](std::exception_ptr e, int rc) {
    status = rc;
    if (e) {
      out.error(what_of(e));
      status = exit_failed;
    }
    std::error_code ignored;
    signals.cancel(ignored);
    if (embedded)
      embedded->stop();
  };
  asio::co_spawn(ctx, session(opt, out, ctl), finished);
  ctx.run();
  return status;
}

/// Handler mode: commands in (a pipe, a file or the line editor), envelopes out.
int run_handler(asio::io_context& ctx, asio::signal_set& signals, const options& opt, const std::string& url,
                tether::demo::demo_server* embedded) {
  console out(color_allowed(opt.color, STDOUT_FILENO));
  if (embedded)
    out.line(tone::state, fmt::format("* embedded demo server listening on {}", url));

  // A terminal on both ends: libedit (history, completion, output above the
  // prompt). Otherwise lines are read as they come, and no history is kept.
  std::unique_ptr<line_editor> editor;
  std::optional<line_reader> reader;
  session_control ctl;
  input_source in;
  if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && line_editor_available()) {
    try {
      editor = std::make_unique<line_editor>(ctx.get_executor(), "tether> ", default_history_file());
    } catch (const std::exception& e) {
      out.line(tone::problem, fmt::format("! no line editing: {}", e.what()));
    }
  }
  if (editor) {
    auto* ed = editor.get();
    in.next = [ed] { return ed->next(); };
    in.stop = [ed] { ed->stop(); };
    out.set_hook([ed](std::string_view line) { return ed->print_above(line); });
    ctl.pattern_used = [ed](const std::string& p) { ed->add_completion(p); };
    out.line(tone::state, "* type 'help' for the commands, 'quit' or Ctrl-D to leave");
  } else {
    reader.emplace(ctx.get_executor());
    auto* r = &*reader;
    in.next = [r] { return r->next(); };
    in.stop = [r] { r->stop(); };
  }

  // SIGINT/SIGTERM: the first ends the input and the command running (a clean
  // close follows), the next stops at once.
  int status = exit_failed;
  int interrupts = 0;
  std::function<void(const std::error_code&, int)> on_sig = [&](const std::error_code& ec, int) {
    if (ec)
      return;
    if (++interrupts == 1 && ctl.interrupt) {
      ctl.interrupt();
      signals.async_wait(on_sig);
    } else {
      status = exit_failed;
      ctx.stop();
    }
  };
  signals.async_wait(on_sig);

  auto finished = [&](std::exception_ptr e, int rc) {
    status = rc;
    if (e) {
      fmt::print(stderr, "tether-repl: {}\n", what_of(e));
      status = exit_failed;
    }
    std::error_code ignored;
    signals.cancel(ignored);
    if (embedded)
      embedded->stop();
  };
  asio::co_spawn(ctx, handler_session(opt, url, out, in, ctl), finished);
  ctx.run();
  out.set_hook(nullptr);
  return status;
}

} // namespace
} // namespace repl

int main(int argc, char** argv) {
  repl::options opt;
  switch (repl::parse_command_line(argc, argv, opt)) {
  case repl::parse_outcome::exit_success:
    return repl::exit_ok;
  case repl::parse_outcome::usage_error:
    return repl::exit_usage;
  case repl::parse_outcome::run:
    break;
  }
  std::signal(SIGPIPE, SIG_IGN); // A closed stdout must not kill us mid-close.

  asio::io_context ctx(1);
  // Signals that arrive before a mode waits for them are queued by Asio, so a
  // script may interrupt as soon as it sees the first line.
  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  // No URL: the demo server in this process, on this io_context (it is
  // single-threaded and never blocks), so the first run needs no network.
  std::optional<tether::demo::demo_server> embedded;
  if (opt.url.empty()) {
    try {
      embedded.emplace(ctx.get_executor());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tether-repl: cannot start the embedded demo server: %s\n", e.what());
      return repl::exit_failed;
    }
    opt.url = embedded->url();
    // The embedded server is in this process: never through a proxy from the
    // environment (the first run needs no network), unless --proxy says so.
    if (opt.stream.proxy.empty())
      opt.stream.proxy = "none";
  }
  tether::demo::demo_server* server = embedded ? &*embedded : nullptr;
  // --timeout bounds the session: the close handshake after it gets 1 s at most.
  if (opt.timeout.count() > 0)
    opt.stream.close_timeout = std::min<std::chrono::milliseconds>(opt.stream.close_timeout, std::chrono::seconds(1));

  if (opt.raw) {
    const repl::printer out(repl::color_allowed(opt.color, STDOUT_FILENO),
                            repl::color_allowed(opt.color, STDERR_FILENO), isatty(STDOUT_FILENO) != 0, opt.binary);
    if (server)
      out.info(fmt::format("embedded demo server listening on {}", opt.url));
    repl::control ctl;
    return repl::run_raw(ctx, signals, opt, out, ctl, server);
  }
  return repl::run_handler(ctx, signals, opt, opt.url, server);
}
