#include "repl_input.hpp"

#include "asio_compat.hpp"

#include <asio/post.hpp>
#include <asio/read_until.hpp>
#include <asio/this_coro.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <system_error>

namespace repl {
namespace {

void strip_cr(std::string& line) {
  if (!line.empty() && line.back() == '\r')
    line.pop_back();
}

} // namespace

line_reader::line_reader(asio::any_io_executor ex) : fd_(ex) {
  struct stat st {};
  if (fstat(STDIN_FILENO, &st) != 0 || S_ISREG(st.st_mode))
    return; // Regular files are always "ready": epoll refuses them.
  saved_flags_ = fcntl(STDIN_FILENO, F_GETFL);
  // A duplicate, so closing fd_ leaves fd 0 alone.
  int fd = dup(STDIN_FILENO);
  if (fd < 0)
    return;
  std::error_code ec;
  fd_.assign(fd, ec); // Fails (EPERM) for /dev/null and other non-pollable files.
  if (ec) {
    close(fd);
    return;
  }
  async_ = true;
}

line_reader::~line_reader() {
  std::error_code ignored;
  fd_.close(ignored);
  if (saved_flags_ != -1)
    fcntl(STDIN_FILENO, F_SETFL, saved_flags_);
}

void line_reader::stop() {
  stopped_ = true;
  std::error_code ignored;
  fd_.cancel(ignored);
}

asio::awaitable<std::optional<std::string>> line_reader::next() {
  if (!async_) {
    // Let the io_context run (print what arrived) between two blocking reads.
    auto ex = co_await asio::this_coro::executor;
    co_await asio::post(ex, asio::use_awaitable);
    std::string line;
    if (stopped_ || !std::getline(std::cin, line))
      co_return std::nullopt;
    strip_cr(line);
    co_return line;
  }
  if (stopped_)
    co_return std::nullopt;
  std::size_t n = 0;
  if (!eof_) {
    auto [ec, size] =
        co_await asio::async_read_until(fd_, asio::dynamic_buffer(buffer_), '\n', tether::detail::use_nothrow);
    if (stopped_ || ec == asio::error::operation_aborted)
      co_return std::nullopt;
    if (ec == asio::error::eof)
      eof_ = true;
    else if (ec)
      throw std::system_error(ec, "reading standard input");
    n = size;
  }
  if (eof_) {
    // Whatever follows the last newline is a line too.
    if (buffer_.empty())
      co_return std::nullopt;
    n = buffer_.find('\n');
    n = n == std::string::npos ? buffer_.size() : n + 1;
  }
  std::string line = buffer_.substr(0, n);
  buffer_.erase(0, n);
  if (!line.empty() && line.back() == '\n')
    line.pop_back();
  strip_cr(line);
  co_return line;
}

} // namespace repl
