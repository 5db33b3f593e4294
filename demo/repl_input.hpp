#pragma once
// Lines of standard input for tether-repl, read without blocking the io_context
// so incoming messages keep printing while the user types.
#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <optional>
#include <string>

namespace repl {

/// Reads fd 0 line by line. Pipes, TTYs and sockets are read asynchronously
/// through a stream_descriptor; what epoll refuses (regular files, /dev/null)
/// falls back to std::getline, one line per turn of the io_context. Restores
/// fd 0's file status flags on destruction (Asio makes it non-blocking, and a
/// TTY's flags are shared with the shell).
class line_reader {
public:
  explicit line_reader(asio::any_io_executor ex);
  ~line_reader();
  line_reader(const line_reader&) = delete;
  line_reader& operator=(const line_reader&) = delete;

  /// The next line without its "\n" (or "\r\n"); a last line without a newline
  /// counts. Nothing at end of input or once stop() was called.
  /// Throws std::system_error if reading fails.
  asio::awaitable<std::optional<std::string>> next();

  /// Ends the input: a pending next() completes with nothing, and so do later ones.
  void stop();

private:
  asio::posix::stream_descriptor fd_;
  bool async_ = false;
  bool stopped_ = false;
  bool eof_ = false;
  int saved_flags_ = -1;
  std::string buffer_;
};

} // namespace repl
