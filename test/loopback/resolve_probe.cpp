// Connects to argv[1] with resolve_timeout = argv[2] ms and reports how the
// resolve phase ended. Run by resolve_timeout_test.py inside a network
// namespace whose DNS server never answers, the one way to make a lookup hang.
#include <tether/error.hpp>
#include <tether/stream.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3)
    return 2;
  const std::chrono::milliseconds limit(std::stoi(argv[2]));
  asio::io_context io;
  std::error_code ec;
  long elapsed_ms = -1;
  auto probe = [](asio::io_context& io, std::string url, std::chrono::milliseconds limit, std::error_code& ec,
                  long& elapsed_ms) -> asio::awaitable<void> {
    tether::stream_options o;
    o.resolve_timeout = limit;
    tether::stream ws(io.get_executor(), o);
    const auto start = std::chrono::steady_clock::now();
    co_await ws.connect(url, ec);
    const auto end = std::chrono::steady_clock::now();
    elapsed_ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(end - start).count());
  };
  asio::co_spawn(io, probe(io, argv[1], limit, ec, elapsed_ms), asio::detached);
  io.run(); // returns once the abandoned lookup ends too
  std::printf("%s %ld\n", ec == tether::error::resolve_timeout ? "resolve_timeout" : ec.message().c_str(), elapsed_ms);
  const bool ok = ec == tether::error::resolve_timeout && elapsed_ms >= limit.count() &&
                  elapsed_ms <= 3 * limit.count() + 1000;
  return ok ? 0 : 1;
}
