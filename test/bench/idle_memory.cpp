// bench-idle-memory: heap held by idle open connections, at the stream or the
// handler layer, measured with mallinfo2 (after malloc_trim) around opening them.
//
//   bench-idle-memory --url URL --connections N [--handler] [--ca FILE]
//                     [--active] [--after-large BYTES [--then-small N]] [--no-deflate]
//                     [--window BITS] [--mem-level N]
//
// Opens N connections to URL (an echo server in another process, so its memory
// is not counted), at most 1,000 handshakes at once, waits until all are
// open, then prints one JSON line:
//
//   {"layer":"stream","tls":false,"connections":N,"heap_bytes":B,"per_connection":B/N,
//    "active":false,"deflate":"permessage-deflate; ..."}
//
// --active (stream layer): each connection first sends one 4 KiB compressible
// text and reads its echo, so a negotiated permessage-deflate has created its
// zlib streams (docs/options.md has the cost at each setting). --window and
// --mem-level set deflate_options::window_bits and mem_level; --no-deflate
// turns compression off. "deflate" is what the last connection negotiated.
//
// --after-large BYTES: each connection first sends two messages of BYTES and
// reads their echoes, then two short ones (--then-small N: N), all into one
// buffer that it then drops: a client that received a file and went back to
// chatting (or, with --then-small 0, went quiet). What the
// stream kept from the large messages counts. With --handler, the messages
// are envelopes whose data is a string of BYTES, echoed to a route.
//
// heap_bytes = allocated memory (mallinfo2(): uordblks, plus hblkhd for large
// blocks that malloc maps on their own) with the connections open minus before
// any was made, both after malloc_trim(0). OpenSSL starts up
// before the first measurement (a key and its accept value): its ~230 KB are
// the process's, not the connections' (at 300 connections they would add
// 0.8 KB to each). Exits 1 if a connection fails, 2 on a bad command line.
// docs/benchmarks.md has the figures.
#include <tether/handler.hpp>
#include <tether/handshake.hpp>
#include <tether/stream.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/core.h>

#include <malloc.h>

#include <charconv>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Allocated bytes: the heap's and those of chunks malloc mapped on their own
// (hblkhd: large buffers, 128 KiB and over by default, are not in uordblks).
std::size_t heap_in_use() {
  malloc_trim(0);
  const auto m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

constexpr std::size_t max_opening = 1000;

struct config {
  std::string url;
  std::size_t connections = 1000;
  bool handler = false;
  std::string ca;
  bool active = false;
  std::size_t large = 0;
  std::size_t small = 2;
  bool deflate = true;
  int window = 12;
  int mem_level = 5;
};

/// What --after-large sends: two messages of `large` bytes, then `small`
/// short ones.
std::vector<std::string> exchange(std::size_t large, std::size_t small) {
  std::vector<std::string> out(2, std::string(large, 'x'));
  for (std::size_t i = 0; i < small; ++i)
    out.push_back("hello " + std::to_string(i));
  return out;
}

/// Connects; with `active`, one compressible message goes out and comes back;
/// with `large`, the exchange above.
asio::awaitable<void> open_stream(tether::stream& ws, std::string url, bool active, std::size_t large,
                                  std::size_t small) {
  co_await ws.connect(url);
  std::string echo;
  if (active) {
    std::string text;
    while (text.size() < 4096)
      text += "tether keeps connections up; ";
    co_await ws.send(text);
    co_await ws.read(echo);
  }
  if (large != 0) {
    for (const auto& text : exchange(large, small)) {
      co_await ws.send(text);
      co_await ws.read(echo);
    }
  }
}

/// Connects a handler; with `large`, the exchange above as envelopes whose
/// data are those strings, and it waits for their echoes (the echo server
/// sends each envelope back, to the route "idle.echo").
asio::awaitable<void> open_handler(tether::handler& h, std::string url, std::size_t large, std::size_t small) {
  if (large == 0) {
    co_await h.connect(url);
    co_return;
  }
  const auto texts = exchange(large, small);
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer all_back(ex, asio::steady_timer::time_point::max()); // cancelled by the last echo
  std::size_t echoes = 0;
  auto route = h.add_route({"idle.echo", [&](const tether::json&, tether::connection_context&) {
                              if (++echoes == texts.size())
                                all_back.cancel();
                            }});
  co_await h.connect(url);
  for (const auto& text : texts)
    co_await h.send("idle.echo", tether::json(text));
  std::error_code cancelled; // operation_aborted: all are back
  if (echoes < texts.size())
    co_await all_back.async_wait(asio::redirect_error(asio::use_awaitable, cancelled));
  route.remove();
}

int parse(int argc, char** argv, config& c) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string_view { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--url") {
      c.url = value();
    } else if (a == "--connections") {
      auto v = value();
      if (std::from_chars(v.data(), v.data() + v.size(), c.connections).ec != std::errc() || c.connections == 0)
        return 2;
    } else if (a == "--handler") {
      c.handler = true;
    } else if (a == "--ca") {
      c.ca = value();
    } else if (a == "--active") {
      c.active = true;
    } else if (a == "--after-large" || a == "--then-small") {
      auto v = value();
      auto& n = a == "--after-large" ? c.large : c.small;
      if (std::from_chars(v.data(), v.data() + v.size(), n).ec != std::errc())
        return 2;
    } else if (a == "--no-deflate") {
      c.deflate = false;
    } else if (a == "--window" || a == "--mem-level") {
      auto v = value();
      int& n = a == "--window" ? c.window : c.mem_level;
      if (std::from_chars(v.data(), v.data() + v.size(), n).ec != std::errc())
        return 2;
    } else {
      return 2;
    }
  }
  return c.url.empty() ? 2 : 0;
}

} // namespace

int main(int argc, char** argv) {
  config cfg;
  if (parse(argc, argv, cfg) != 0) {
    std::fprintf(stderr, "usage: bench-idle-memory --url URL --connections N [--handler] [--ca FILE]\n"
                         "                         [--active] [--after-large BYTES [--then-small N]] [--no-deflate]\n"
                         "                         [--window BITS] [--mem-level N]\n");
    return 2;
  }
  asio::io_context io;
  tether::stream_options so;
  so.tls.ca_file = cfg.ca;
  so.compression = cfg.deflate ? tether::compression::automatic : tether::compression::off;
  so.deflate.window_bits = cfg.window;
  so.deflate.mem_level = cfg.mem_level;
  so.deflate.threshold = 0;
  std::vector<std::unique_ptr<tether::stream>> streams;
  std::vector<std::unique_ptr<tether::handler>> handlers;
  streams.reserve(cfg.connections);
  handlers.reserve(cfg.connections);
  (void)tether::compute_accept(tether::generate_key()); // OpenSSL's start-up: random bytes and SHA-1
  const auto before = heap_in_use();
  std::size_t open = 0;
  bool failed = false;
  // At most max_opening handshakes at once: 10,000 connects at once overflow
  // a server's accept queue (SOMAXCONN), and a stream does not retry.
  std::size_t started = 0;
  auto done = [&](std::exception_ptr e) {
    if (e) {
      failed = true;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::fprintf(stderr, "bench-idle-memory: %s\n", x.what());
      }
    }
    ++open;
  };
  auto start_one = [&] {
    ++started;
    if (cfg.handler) {
      tether::handler_options ho;
      ho.stream = so;
      handlers.push_back(std::make_unique<tether::handler>(io.get_executor(), ho));
      asio::co_spawn(io, open_handler(*handlers.back(), cfg.url, cfg.large, cfg.small), done);
    } else {
      streams.push_back(std::make_unique<tether::stream>(io.get_executor(), so));
      asio::co_spawn(io, open_stream(*streams.back(), cfg.url, cfg.active, cfg.large, cfg.small), done);
    }
  };
  while (open < cfg.connections && !failed) {
    while (started < cfg.connections && started - open < max_opening)
      start_one();
    io.run_one();
  }
  // Let the connections settle (first reads posted, handshake buffers released).
  io.poll();
  if (failed)
    return 1;
  const auto after = heap_in_use();
  const auto heap = after > before ? after - before : 0;
  std::string negotiated;
  if (!streams.empty() && !streams.back()->response().extensions.empty())
    negotiated = tether::format_extension(streams.back()->response().extensions.front());
  fmt::print("{{\"layer\":\"{}\",\"tls\":{},\"connections\":{},\"heap_bytes\":{},\"per_connection\":{},"
             "\"active\":{},\"after_large\":{},\"then_small\":{},\"deflate\":\"{}\"}}\n",
             cfg.handler ? "handler" : "stream", cfg.url.rfind("wss://", 0) == 0, cfg.connections, heap,
             heap / cfg.connections, cfg.active, cfg.large, cfg.large ? cfg.small : 0, negotiated);
  std::fflush(stdout);
  return 0;
}
