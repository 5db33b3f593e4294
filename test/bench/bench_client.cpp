// bench-client: echo round trips over C connections against an echo server.
//
//   bench-client --url URL --connections C --messages N --size S --window W [--binary]
//
// Opens all C connections first, then on each sends N messages of S bytes with at
// most W awaiting their echo, and checks every echo (size, first, middle and last
// byte, which differ per message, so reordering shows). The last stdout line is one
// JSON object:
//
//   {"client":"tether","connections":C,"messages":C*N,"size":S,"window":W,"seconds":T,
//    "msgs_per_s":X,"mb_per_s":Y,"p50_us":..,"p99_us":..,"max_rss_kb":..}
//
// T runs from all connections open to the last echo; mb_per_s = C*N*S/T/1e6 (one
// direction); latencies are per-message round trips (send called → echo read).
// Exits 1 on a connection error or a wrong echo, 2 on a bad command line.
// One thread: a single-threaded io_context, like a typical client.
#include <tether/stream.hpp>

#include "asio_compat.hpp"

#include <asio/co_spawn.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/io_context.hpp>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using bench_clock = std::chrono::steady_clock;

struct config {
  std::string url;
  std::size_t connections = 1;
  std::size_t messages = 1000;
  std::size_t size = 64;
  std::size_t window = 1;
  bool binary = false;
};

void usage(std::FILE* to) {
  fmt::print(to,
             "usage: bench-client --url URL --connections C --messages N --size S --window W [--binary]\n"
             "Sends N messages of S bytes on each of C connections to an echo server, at most W\n"
             "in flight per connection; prints one JSON line of results. Defaults: C=1 N=1000 S=64 W=1.\n");
}

/// Permits for messages in flight: the sender puts message i's number in before
/// sending it (waiting while W are taken), the reader takes it out after its echo.
/// (Asio 1.22's channel_traits cannot take void(error_code) alone: ambiguous.)
using window_channel = asio::experimental::channel<void(asio::error_code, std::size_t)>;

struct connection {
  connection(asio::any_io_executor ex, const tether::stream_options& o, const config& cfg)
      : ws(ex, o), window(ex, cfg.window), sent(cfg.messages), rtt_ns(cfg.messages) {}

  tether::stream ws;
  window_channel window;
  std::vector<bench_clock::time_point> sent;
  std::vector<std::int64_t> rtt_ns;
  bench_clock::time_point last_echo;
  std::exception_ptr error;
};

// Message i's first, middle and last bytes: text stays ASCII (valid UTF-8).
char first_byte(const config& cfg, std::size_t i) {
  return cfg.binary ? static_cast<char>(i & 0xff) : static_cast<char>('a' + i % 26);
}
char last_byte(const config& cfg, std::size_t i) {
  return cfg.binary ? static_cast<char>((i >> 8) & 0xff) : static_cast<char>('A' + (i / 26) % 26);
}
char fill_byte(const config& cfg) { return cfg.binary ? static_cast<char>(0xa5) : 'x'; }

void stamp(std::string& payload, const config& cfg, std::size_t i) {
  if (payload.empty())
    return;
  payload.back() = last_byte(cfg, i);
  payload.front() = first_byte(cfg, i);
}

bool echo_matches(const std::string& got, const config& cfg, std::size_t i) {
  if (got.size() != cfg.size)
    return false;
  if (got.empty())
    return true;
  if (got.front() != first_byte(cfg, i))
    return false;
  if (got.size() > 1 && got.back() != last_byte(cfg, i))
    return false;
  return got.size() < 3 || got[got.size() / 2] == fill_byte(cfg);
}

asio::awaitable<void> send_loop(connection& c, const config& cfg) {
  std::string payload(cfg.size, fill_byte(cfg));
  const auto kind = cfg.binary ? tether::message_kind::binary : tether::message_kind::text;
  for (std::size_t i = 0; i < cfg.messages; ++i) {
    co_await c.window.async_send(asio::error_code(), i, asio::use_awaitable);
    stamp(payload, cfg, i); // send() has completed: the buffer is ours again.
    c.sent[i] = bench_clock::now();
    co_await c.ws.send(payload, kind);
  }
}

asio::awaitable<void> read_loop(connection& c, const config& cfg) {
  const auto kind = cfg.binary ? tether::message_kind::binary : tether::message_kind::text;
  std::string buffer;
  for (std::size_t i = 0; i < cfg.messages; ++i) {
    auto r = co_await c.ws.read(buffer);
    auto now = bench_clock::now();
    if (r.kind == tether::message_kind::close)
      throw std::runtime_error(fmt::format("the server closed with {}{}{} after {} of {} echoes", r.close_code,
                                           r.close_reason.empty() ? "" : " ", r.close_reason, i, cfg.messages));
    if (r.kind != kind || !echo_matches(buffer, cfg, i))
      throw std::runtime_error(fmt::format("echo {} does not match what was sent ({} bytes, {})", i, buffer.size(),
                                           r.kind == tether::message_kind::text ? "text" : "binary"));
    c.rtt_ns[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.sent[i]).count();
    c.last_echo = now;
    std::size_t permit = co_await c.window.async_receive(asio::use_awaitable);
    if (permit != i)
      throw std::logic_error(fmt::format("window out of step: echo {} took permit {}", i, permit));
  }
}

/// Runs `loop`, keeping the first failure of the connection: when one loop of `&&`
/// fails, the other ends with operation_aborted, which says nothing.
asio::awaitable<void> first_error_kept(asio::awaitable<void> loop, connection& c) {
  try {
    co_await std::move(loop);
  } catch (...) {
    if (!c.error)
      c.error = std::current_exception();
    throw;
  }
}

asio::awaitable<void> run_connection(connection& c, const config& cfg) {
  using namespace tether::detail::awaitable_operators;
  co_await (first_error_kept(send_loop(c, cfg), c) && first_error_kept(read_loop(c, cfg), c));
  co_await c.ws.close();
}

/// Connects every connection, then starts them all at `start`.
asio::awaitable<void> open_all(std::vector<std::unique_ptr<connection>>& conns, const config& cfg,
                               bench_clock::time_point& start) {
  for (auto& c : conns)
    co_await c->ws.connect(cfg.url);
  start = bench_clock::now();
  for (auto& c : conns) {
    connection* target = c.get();
    auto finished = [target](std::exception_ptr e) {
      if (!target->error)
        target->error = e;
    };
    asio::co_spawn(target->ws.get_executor(), run_connection(*target, cfg), finished);
  }
}

std::string describe(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception";
  }
}

bool parse_size(std::string_view text, std::size_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

/// 0 to go on, else the exit status.
int parse_args(int argc, char** argv, config& cfg) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto a = args[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return -1;
    }
    if (a == "--binary") {
      cfg.binary = true;
      continue;
    }
    std::size_t* number = a == "--connections" ? &cfg.connections
                          : a == "--messages"  ? &cfg.messages
                          : a == "--size"      ? &cfg.size
                          : a == "--window"    ? &cfg.window
                                               : nullptr;
    if ((a != "--url" && !number) || i + 1 >= args.size()) {
      fmt::print(stderr, "bench-client: bad argument '{}'\n", a);
      usage(stderr);
      return 2;
    }
    auto value = args[++i];
    if (!number) {
      cfg.url = value;
    } else if (!parse_size(value, *number) || (*number == 0 && number != &cfg.size)) {
      fmt::print(stderr, "bench-client: {} wants a number{}, got '{}'\n", a, number == &cfg.size ? "" : " above 0",
                 value);
      return 2;
    }
  }
  if (cfg.url.empty()) {
    fmt::print(stderr, "bench-client: --url is required\n");
    usage(stderr);
    return 2;
  }
  return 0;
}

/// x rounded to `scale` steps per unit (10: one decimal); dividing by an exact
/// power of ten gives the double nearest the decimal, so JSON prints it short.
double rounded(double x, double scale) { return std::round(x * scale) / scale; }

/// Nearest-rank percentile of sorted values.
std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

} // namespace

int main(int argc, char** argv) {
  config cfg;
  if (int rc = parse_args(argc, argv, cfg))
    return rc < 0 ? 0 : rc;

  tether::stream_options o;
  o.max_message_size = std::max(o.max_message_size, cfg.size);
  o.max_frame_size = std::max(o.max_frame_size, cfg.size);

  asio::io_context ctx(1);
  std::vector<std::unique_ptr<connection>> conns;
  for (std::size_t i = 0; i < cfg.connections; ++i)
    conns.push_back(std::make_unique<connection>(ctx.get_executor(), o, cfg));

  bench_clock::time_point start;
  std::exception_ptr open_error;
  auto opened = [&open_error](std::exception_ptr e) { open_error = e; };
  asio::co_spawn(ctx, open_all(conns, cfg, start), opened);
  ctx.run();

  if (open_error) {
    fmt::print(stderr, "bench-client: cannot open {} connections to {}: {}\n", cfg.connections, cfg.url,
               describe(open_error));
    return 1;
  }
  int status = 0;
  std::vector<std::int64_t> rtt;
  rtt.reserve(cfg.connections * cfg.messages);
  bench_clock::time_point end = start;
  for (std::size_t i = 0; i < conns.size(); ++i) {
    const auto& c = *conns[i];
    if (c.error) {
      fmt::print(stderr, "bench-client: connection {}: {}\n", i, describe(c.error));
      status = 1;
    }
    rtt.insert(rtt.end(), c.rtt_ns.begin(), c.rtt_ns.end());
    end = std::max(end, c.last_echo);
  }
  if (status != 0)
    return status;

  std::sort(rtt.begin(), rtt.end());
  const double seconds = std::chrono::duration<double>(end - start).count();
  const double total = static_cast<double>(cfg.connections * cfg.messages);
  rusage usage_now{};
  getrusage(RUSAGE_SELF, &usage_now);

  nlohmann::ordered_json result;
  result["client"] = "tether";
  result["connections"] = cfg.connections;
  result["messages"] = cfg.connections * cfg.messages;
  result["size"] = cfg.size;
  result["window"] = cfg.window;
  result["seconds"] = rounded(seconds, 1e6);
  result["msgs_per_s"] = rounded(total / seconds, 10);
  result["mb_per_s"] = rounded(total * static_cast<double>(cfg.size) / seconds / 1e6, 1e3);
  result["p50_us"] = rounded(static_cast<double>(percentile(rtt, 0.50)) / 1e3, 10);
  result["p99_us"] = rounded(static_cast<double>(percentile(rtt, 0.99)) / 1e3, 10);
  result["max_rss_kb"] = usage_now.ru_maxrss;
  fmt::print("{}\n", result.dump());
  return 0;
}
