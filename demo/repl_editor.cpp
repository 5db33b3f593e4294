#include "repl_editor.hpp"

#include "asio_compat.hpp"

#include <asio/posix/stream_descriptor.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <set>
#include <system_error>

#ifdef TETHER_REPL_LIBEDIT
#include <editline/readline.h>
#endif

namespace repl {

/// The commands tab completion offers first (keep in step with repl_session.cpp).
static const char* const command_names[] = {"close", "connect", "expect", "help",    "ping", "quit",
                                            "route", "routes",  "send",   "sendb", "status", "unroute", "wait"};

struct line_editor::state {
  explicit state(asio::any_io_executor ex) : fd(ex) {}

  asio::posix::stream_descriptor fd; // a dup of fd 0, watched for readiness only
  std::string prompt;
  std::string history_file;
  std::deque<std::string> lines;     // entered, not yet taken by next()
  std::set<std::string> words;       // completion words after the command name
  std::string last_added;            // the newest history entry (no duplicates in a row)
  int saved_flags = -1;              // fd 0's file status flags, restored at the end
  bool prompting = false;            // the callback handler is installed: a prompt shows
  bool eof = false;
  bool stopped = false;
};

std::string default_history_file() {
  if (const char* h = std::getenv("TETHER_REPL_HISTORY"))
    return h;
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.tether_repl_history";
  return {};
}

#ifdef TETHER_REPL_LIBEDIT

bool line_editor_available() noexcept { return true; }

namespace {

line_editor::state* active = nullptr; // libedit's callbacks are plain functions

void on_line(char* line) {
  // libedit leaves its raw mode before calling us; the prompt is gone until the
  // next install (so output while a command runs needs no redraw).
  auto* st = active;
  if (!st) {
    std::free(line);
    return;
  }
  st->prompting = false;
  if (!line) {
    st->eof = true; // Ctrl-D on an empty line
    std::fputc('\n', stdout);
    std::fflush(stdout);
    return;
  }
  std::string text(line);
  std::free(line); // ours, as with GNU readline
  if (!text.empty() && text != st->last_added) {
    add_history(text.c_str());
    st->last_added = text;
  }
  st->lines.push_back(std::move(text));
}

// Completion candidates for the word being completed, then one per call.
std::vector<std::string> candidates;
std::size_t next_candidate = 0;

char* generate(const char* text, int state) {
  if (state == 0)
    next_candidate = 0;
  const std::string_view prefix(text);
  while (next_candidate < candidates.size()) {
    const auto& c = candidates[next_candidate++];
    if (c.compare(0, prefix.size(), prefix) == 0)
      return strdup(c.c_str());
  }
  return nullptr;
}

char* no_filenames(const char*, int) { return nullptr; }

char** complete(const char* text, int start, int) {
  candidates.clear();
  std::string_view before(rl_line_buffer, static_cast<std::size_t>(std::max(start, 0)));
  while (!before.empty() && before.front() == ' ')
    before.remove_prefix(1);
  if (before.empty()) {
    candidates.assign(std::begin(command_names), std::end(command_names));
  } else if (active) {
    const auto space = std::min(before.find(' '), before.size());
    const auto word = before.substr(0, space);
    // Only the argument right after these commands is a pattern or a path.
    const bool first_arg = before.find_first_not_of(' ', space) == std::string_view::npos;
    if (first_arg && (word == "route" || word == "unroute" || word == "expect" || word == "send" ||
                      word == "sendb"))
      candidates.assign(active->words.begin(), active->words.end());
  }
  return rl_completion_matches(text, generate);
}

} // namespace

line_editor::line_editor(asio::any_io_executor ex, std::string prompt, std::string history_file)
    : st_(std::make_shared<state>(ex)) {
  st_->prompt = std::move(prompt);
  st_->history_file = std::move(history_file);
  st_->saved_flags = fcntl(STDIN_FILENO, F_GETFL); // shared with the shell: see the destructor
  const int fd = dup(STDIN_FILENO);
  if (fd < 0)
    throw std::system_error(errno, std::generic_category(), "dup(0)");
  std::error_code ec;
  st_->fd.assign(fd, ec);
  if (ec) {
    ::close(fd);
    throw std::system_error(ec, "watching standard input");
  }
  rl_readline_name = "tether-repl"; // for $if in ~/.editrc
  rl_catch_signals = 0;             // SIGINT and SIGTERM belong to the io_context
  rl_attempted_completion_function = complete;
  rl_completion_entry_function = no_filenames;
  using_history();
  stifle_history(1000);
  if (!st_->history_file.empty())
    read_history(st_->history_file.c_str()); // a missing file is fine
  active = st_.get();
}

line_editor::~line_editor() {
  if (st_->prompting) {
    rl_callback_handler_remove();
    st_->prompting = false;
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  if (!st_->history_file.empty() && write_history(st_->history_file.c_str()) == 0)
    ::chmod(st_->history_file.c_str(), 0600); // lines may hold tokens
  std::error_code ignored;
  st_->fd.close(ignored);
  // Asio may have made the (shared) file description non-blocking.
  if (st_->saved_flags != -1)
    fcntl(STDIN_FILENO, F_SETFL, st_->saved_flags);
  if (active == st_.get())
    active = nullptr;
}

namespace {

/// Feeds libedit every byte waiting on fd 0, one at a time, until a line ends.
void feed(line_editor::state& st) {
  while (st.prompting && !st.stopped) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0)
      return;
    int waiting = 0;
    if (!(p.revents & POLLIN) || ::ioctl(STDIN_FILENO, FIONREAD, &waiting) != 0 || waiting <= 0) {
      // Hang-up or an error: the terminal is gone.
      rl_callback_handler_remove();
      st.prompting = false;
      st.eof = true;
      return;
    }
    rl_callback_read_char();
  }
}

asio::awaitable<std::optional<std::string>> read_line(std::shared_ptr<line_editor::state> st) {
  for (;;) {
    if (!st->lines.empty()) {
      std::string line = std::move(st->lines.front());
      st->lines.pop_front();
      co_return line;
    }
    if (st->eof || st->stopped)
      co_return std::nullopt;
    if (!st->prompting) {
      // Shows the prompt and puts the terminal in libedit's mode.
      rl_callback_handler_install(st->prompt.c_str(), on_line);
      st->prompting = true;
    }
    auto [ec] = co_await st->fd.async_wait(asio::posix::descriptor_base::wait_read, tether::detail::use_nothrow);
    if (st->stopped)
      co_return std::nullopt;
    if (ec) {
      if (st->prompting) {
        rl_callback_handler_remove();
        st->prompting = false;
      }
      st->eof = true;
      co_return std::nullopt;
    }
    feed(*st);
  }
}

} // namespace

asio::awaitable<std::optional<std::string>> line_editor::next() { return read_line(st_); }

void line_editor::stop() {
  st_->stopped = true;
  std::error_code ignored;
  st_->fd.cancel(ignored);
  if (st_->prompting) {
    rl_callback_handler_remove();
    st_->prompting = false;
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
}

bool line_editor::print_above(std::string_view line) {
  if (!st_->prompting)
    return false;
  // To column 0, clear the prompt's row, print, then let libedit draw the prompt
  // and the text being typed again on the next row.
  std::fputs("\r\x1b[K", stdout);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  rl_forced_update_display();
  std::fflush(stdout);
  return true;
}

void line_editor::add_completion(std::string word) { st_->words.insert(std::move(word)); }

#else // no libedit: never constructed (line_editor_available() is false)

bool line_editor_available() noexcept { return false; }

line_editor::line_editor(asio::any_io_executor ex, std::string, std::string) : st_(std::make_shared<state>(ex)) {
  throw std::system_error(std::make_error_code(std::errc::not_supported), "built without libedit");
}
line_editor::~line_editor() = default;
asio::awaitable<std::optional<std::string>> line_editor::next() {
  return [](std::shared_ptr<state>) -> asio::awaitable<std::optional<std::string>> { co_return std::nullopt; }(st_);
}
void line_editor::stop() {}
bool line_editor::print_above(std::string_view) { return false; }
void line_editor::add_completion(std::string) {}

#endif

} // namespace repl
