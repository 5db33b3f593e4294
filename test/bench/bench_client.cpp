// bench-client: echo round trips over C connections against an echo server.
//
//   bench-client --url URL --connections C --messages N --size S --window W [--binary] [--routed] [--batch]
//
// Opens all C connections first, then on each sends N messages of S bytes with at
// most W awaiting their echo, and checks every echo (size, first, middle and last
// byte, which differ per message, so reordering shows). The last stdout line is one
// JSON object:
//
//   {"client":"tether","connections":C,"messages":C*N,"size":S,"window":W,"seconds":T,
//    "msgs_per_s":X,"mb_per_s":Y,"p50_us":..,"p99_us":..,"max_rss_kb":..,"cpu_s":..,
//    "routed":false}
//
// T runs from all connections open to the last echo; mb_per_s = C*N*S/T/1e6 (one
// direction); latencies are per-message round trips (send called → echo read).
// max_rss_kb is the process's peak RSS (VmHWM) and cpu_s its user + system CPU
// seconds over the whole run, connecting included (getrusage), so cpu_s / messages is the
// client's CPU per message. The peer clients (beast_client.cpp,
// websocketpp_client.cpp) print the same line up to cpu_s.
// Exits 1 on a connection error or a wrong echo, 2 on a bad command line.
// One thread: a single-threaded io_context, like a typical client.
//
// Without --routed the workload drives tether::stream: send() / read() of raw
// messages, W sends in flight per connection. Sends do not wait for one
// another's write (each has its own buffer until it completes), as an
// application producing messages does not; the peer clients do the same
// with their own means (Beast: a writer coroutine; websocketpp: its queue).
//
// With --routed the same workload goes through tether::handler, the layer an
// application uses: each message is handler.send("bench.echo", data) where data
// is a JSON string of S bytes (binary: an envelope with S bytes, a binary frame),
// so it measures the envelope encode (nlohmann dump into the json_codec frame),
// the handler's ordered send queue and its hand-off to the stream, and on the
// way back the envelope decode (JSON parse), the route table's trie match of
// "bench.echo" (binary frames: the fallback route), the route's call and the
// status counters — everything an application pays per message above the
// stream. A frame is S plus 31 bytes of envelope ({"path":"bench.echo","data":"…"}).
// With --batch as well, the handler batches the envelopes queued when its
// writer runs into one frame (a JSON array; the echo server sends it back
// whole and the handler dispatches it element by element).
// The window is the same: at most W sends awaiting their echo per connection
// (a send counts from handler.send's call to its echo's dispatch). At the end,
// status() must count C*N messages sent and received. The handler runs with
// reconnect off (a dropped connection fails the run) and its default heartbeat.
#include <tether/handler.hpp>
#include <tether/stream.hpp>

#include "peer_common.hpp"

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
  bool routed = false;
  bool batch = false; // --batch: the handler batches what is queued (handler_options::batch, max_delay 0)
};

void usage(std::FILE* to) {
  fmt::print(to,
             "usage: bench-client --url URL --connections C --messages N --size S --window W [--binary] [--routed]\n"
             "                    [--batch]\n"
             "Sends N messages of S bytes on each of C connections to an echo server, at most W\n"
             "in flight per connection; prints one JSON line of results. Defaults: C=1 N=1000 S=64 W=1.\n"
             "--routed sends through tether::handler (envelopes, routes) instead of tether::stream.\n"
             "--batch (with --routed, text only) lets the handler batch queued envelopes into one frame\n"
             "(handler_options::batch, max_delay 0); the JSON line then ends with \"batched\":true.\n");
}

/// One waiter at a time, woken by notify(), as beast_client.cpp's: the awaiting
/// coroutine's completion handler is stored and posted, so a wait that is not
/// needed costs nothing and a wake-up touches no kernel object. Cancelling the
/// waiter (a failed run's `&&`) completes it with operation_aborted.
class wake_signal {
public:
  template <class Token>
  auto async_wait(Token&& token) {
    return asio::async_initiate<Token, void(asio::error_code)>(
        [this](auto handler) {
          auto slot = asio::get_associated_cancellation_slot(handler);
          waiter_ = std::make_unique<holder<decltype(handler)>>(std::move(handler));
          if (slot.is_connected())
            slot.assign([this](asio::cancellation_type) { complete(asio::error::operation_aborted); });
        },
        token);
  }
  void notify() { complete({}); }

private:
  void complete(asio::error_code ec) {
    if (auto w = std::move(waiter_))
      w->complete(ec);
  }
  struct base {
    virtual ~base() = default;
    virtual void complete(asio::error_code ec) = 0;
  };
  template <class Handler>
  struct holder final : base {
    explicit holder(Handler h) : handler(std::move(h)) {}
    void complete(asio::error_code ec) override {
      asio::get_associated_cancellation_slot(handler).clear();
      auto ex = asio::get_associated_executor(handler);
      asio::post(ex, [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
    }
    Handler handler;
  };
  std::unique_ptr<base> waiter_;
};

struct connection {
  connection(asio::any_io_executor ex, const tether::stream_options& o, const config& cfg)
      : ws(ex, o), sent(cfg.messages), rtt_ns(cfg.messages) {}

  tether::stream ws;
  std::size_t in_flight = 0; // sent, echo not read yet
  wake_signal window_open;   // send_loop waits here while in_flight == W
  std::vector<bench_clock::time_point> sent;
  std::vector<std::int64_t> rtt_ns;
  bench_clock::time_point last_echo;
  std::exception_ptr error;
  // One message buffer per window slot (send_loop), owned here so that they
  // outlive the sends still being written when send_loop returns.
  std::vector<std::string> slots;
  std::vector<char> busy;
  wake_signal freed; // a send completed: for a send_loop waiting for its slot
  bool sender_done = false;
  wake_signal sender_finished; // send_loop ended: run_connection closes after it

  /// Keeps the first failure and ends the connection: the read loop's read
  /// fails, and a send_loop waiting for the window or a slot wakes and stops.
  void fail(std::exception_ptr e) {
    if (!error)
      error = e;
    ws.abort();
    window_open.notify();
    freed.notify();
  }
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

// One send, started without waiting for the one before: how an application
// that produces messages faster than a write completes uses the stream (it
// then gathers what is queued into one write). `busy` marks the buffer's slot;
// `freed` wakes a send_loop waiting for it.
asio::awaitable<void> send_one(tether::stream& ws, std::string_view payload, tether::message_kind kind,
                               char& busy, wake_signal& freed) {
  co_await ws.send(payload, kind);
  busy = 0;
  freed.notify();
}

asio::awaitable<void> send_loop(connection& c, const config& cfg) {
  // One buffer per window slot: the stream keeps a view of a message's bytes
  // until its send completes, and message i reuses slot i % W only after echo
  // i - W arrived, by which time that send has completed (checked).
  auto& slots = c.slots;
  auto& busy = c.busy;
  slots.assign(cfg.window, std::string(cfg.size, fill_byte(cfg)));
  busy.assign(cfg.window, 0);
  const auto kind = cfg.binary ? tether::message_kind::binary : tether::message_kind::text;
  auto ex = co_await asio::this_coro::executor;
  auto& freed = c.freed;
  for (std::size_t i = 0; i < cfg.messages; ++i) {
    while (c.in_flight == cfg.window && !c.error)
      co_await c.window_open.async_wait(asio::use_awaitable);
    ++c.in_flight;
    const auto slot = i % cfg.window;
    // The echo of a large message can arrive before its write completes (the
    // server echoes frames as they stream in): wait for the buffer.
    while (busy[slot] && !c.error)
      co_await freed.async_wait(asio::use_awaitable);
    if (c.error)
      co_return;
    auto& payload = slots[slot];
    stamp(payload, cfg, i);
    c.sent[i] = bench_clock::now();
    if (cfg.window == 1) {
      co_await c.ws.send(payload, kind); // lock-step: nothing to overlap
      continue;
    }
    busy[slot] = 1;
    asio::co_spawn(ex, send_one(c.ws, payload, kind, busy[slot], freed), [&c](std::exception_ptr e) {
      if (e)
        c.fail(e);
    });
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
    --c.in_flight;
    c.window_open.notify();
  }
}

/// As beast_client.cpp does: the send loop in a coroutine of its own, the read
/// loop here; the first failure of either ends the connection (connection::fail).
asio::awaitable<void> run_connection(connection& c, const config& cfg) {
  asio::co_spawn(c.ws.get_executor(), send_loop(c, cfg), [&c](std::exception_ptr e) {
    if (e)
      c.fail(e);
    c.sender_done = true;
    c.sender_finished.notify();
  });
  try {
    co_await read_loop(c, cfg);
  } catch (...) {
    c.fail(std::current_exception());
  }
  while (!c.sender_done)
    co_await c.sender_finished.async_wait(asio::use_awaitable);
  if (!c.error)
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
      if (e)
        target->fail(e); // a failed run leaves nothing open (else run() would wait on it)
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
    if (a == "--routed") {
      cfg.routed = true;
      continue;
    }
    if (a == "--batch") {
      cfg.batch = true;
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
  if (cfg.batch && (!cfg.routed || cfg.binary)) {
    fmt::print(stderr, "bench-client: --batch needs --routed and text messages\n");
    return 2;
  }
  if (cfg.url.empty()) {
    fmt::print(stderr, "bench-client: --url is required\n");
    usage(stderr);
    return 2;
  }
  return 0;
}

/// What a run measured: per-message round trips, the timed span, the first failure.
struct outcome {
  std::vector<std::int64_t> rtt_ns;
  bench_clock::time_point start{}, end{};
  int status = 0; // 0, or the exit status after the errors were printed
};

/// Runs `open` (which opens every connection, sets out.start and starts the
/// workload) and the workload to their end; false (status 1, reported) if the
/// connections could not be opened.
bool open_and_run(asio::io_context& ctx, asio::awaitable<void> open, const config& cfg, outcome& out) {
  std::exception_ptr open_error;
  auto opened = [&open_error](std::exception_ptr e) { open_error = e; };
  asio::co_spawn(ctx, std::move(open), opened);
  ctx.run();
  if (!open_error)
    return true;
  fmt::print(stderr, "bench-client: cannot open {} connections to {}: {}\n", cfg.connections, cfg.url,
             describe(open_error));
  out.status = 1;
  return false;
}

/// The stream workload: raw messages through tether::stream.
outcome run_stream(const config& cfg) {
  tether::stream_options o;
  o.max_message_size = std::max(o.max_message_size, cfg.size);
  o.max_frame_size = std::max(o.max_frame_size, cfg.size);

  asio::io_context ctx(1);
  std::vector<std::unique_ptr<connection>> conns;
  for (std::size_t i = 0; i < cfg.connections; ++i)
    conns.push_back(std::make_unique<connection>(ctx.get_executor(), o, cfg));

  outcome out;
  if (!open_and_run(ctx, open_all(conns, cfg, out.start), cfg, out))
    return out;
  out.rtt_ns.reserve(cfg.connections * cfg.messages);
  out.end = out.start;
  for (std::size_t i = 0; i < conns.size(); ++i) {
    const auto& c = *conns[i];
    if (c.error) {
      fmt::print(stderr, "bench-client: connection {}: {}\n", i, describe(c.error));
      out.status = 1;
    }
    out.rtt_ns.insert(out.rtt_ns.end(), c.rtt_ns.begin(), c.rtt_ns.end());
    out.end = std::max(out.end, c.last_echo);
  }
  return out;
}

// ---- --routed: the same workload through tether::handler ----

constexpr std::string_view echo_path = "bench.echo";

struct routed_connection {
  routed_connection(asio::any_io_executor ex, tether::handler_options o, const config& cfg)
      : ws(ex, watched(std::move(o))), sent(cfg.messages), rtt_ns(cfg.messages) {}

  tether::handler ws;
  std::size_t in_flight = 0; // as connection::in_flight
  wake_signal window_open;   // the send loop waits here while in_flight == W
  wake_signal done;          // the last echo is in (or the run failed)
  std::vector<bench_clock::time_point> sent;
  std::vector<std::int64_t> rtt_ns;
  std::size_t echoes = 0;
  bench_clock::time_point last_echo;
  bool closing = false;     // our own close(): state changes after it are expected
  std::exception_ptr error;

  /// o with an on_state that fails the run when the connection ends before our
  /// close(), instead of leaving it waiting for echoes.
  tether::handler_options watched(tether::handler_options o) {
    o.on_state = [this](const tether::state_change& s) {
      using tether::connection_state;
      if (!closing && (s.state == connection_state::closed || s.state == connection_state::failed ||
                       s.state == connection_state::reconnecting))
        fail(std::make_exception_ptr(std::runtime_error(
            fmt::format("the connection ended ({}): {}", tether::to_string(s.state), s.reason))));
    };
    return o;
  }

  /// Records the first failure and releases the sender and the waiter of `done`.
  void fail(std::exception_ptr e) {
    if (!error)
      error = e;
    window_open.notify();
    done.notify();
  }

  /// An echo arrived (on the handler's strand): checks it, takes back its permit.
  void echoed(std::string_view got, bool binary, const config& cfg) {
    if (error)
      return;
    const auto now = bench_clock::now();
    const std::size_t i = echoes;
    if (i >= cfg.messages || binary != cfg.binary || !echo_matches(std::string(got), cfg, i)) {
      fail(std::make_exception_ptr(std::runtime_error(
          fmt::format("echo {} does not match what was sent ({} bytes, {})", i, got.size(), binary ? "binary" : "text"))));
      return;
    }
    rtt_ns[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent[i]).count();
    last_echo = now;
    ++echoes;
    --in_flight;
    window_open.notify();
    if (echoes == cfg.messages)
      done.notify();
  }
};

// handler.send copies the message into its envelope: sends need not wait for
// one another, as an application producing messages does not.
asio::awaitable<void> routed_send_one(routed_connection& c, tether::envelope e) {
  co_await c.ws.send(std::move(e));
}

asio::awaitable<void> routed_send_loop(routed_connection& c, const config& cfg) {
  std::string payload(cfg.size, fill_byte(cfg));
  auto ex = co_await asio::this_coro::executor;
  for (std::size_t i = 0; i < cfg.messages; ++i) {
    while (c.in_flight == cfg.window && !c.error)
      co_await c.window_open.async_wait(asio::use_awaitable);
    if (c.error)
      break;
    ++c.in_flight;
    stamp(payload, cfg, i);
    c.sent[i] = bench_clock::now();
    tether::envelope e;
    if (cfg.binary) {
      e.binary = true;
      e.bytes = payload;
    } else {
      e.path = echo_path;
      e.data = payload;
    }
    if (cfg.window == 1) {
      co_await c.ws.send(std::move(e)); // lock-step: nothing to overlap
      continue;
    }
    asio::co_spawn(ex, routed_send_one(c, std::move(e)), [&c](std::exception_ptr x) {
      if (x)
        c.fail(x);
    });
  }
  // Every echo in, or the run failed.
  while (c.echoes < cfg.messages && !c.error)
    co_await c.done.async_wait(asio::use_awaitable);
}

asio::awaitable<void> run_routed_connection(routed_connection& c, const config& cfg) {
  try {
    co_await routed_send_loop(c, cfg);
  } catch (...) {
    c.fail(std::current_exception());
  }
  c.closing = true;
  co_await c.ws.close();
}

asio::awaitable<void> open_all_routed(std::vector<std::unique_ptr<routed_connection>>& conns, const config& cfg,
                                      bench_clock::time_point& start) {
  for (auto& c : conns)
    co_await c->ws.connect(cfg.url);
  start = bench_clock::now();
  for (auto& c : conns) {
    routed_connection* target = c.get();
    auto finished = [target](std::exception_ptr e) {
      if (e && !target->error)
        target->error = e;
    };
    // On the handler's strand: no hop between the loop and the handler.
    asio::co_spawn(target->ws.get_executor(), run_routed_connection(*target, cfg), finished);
  }
}

outcome run_routed(const config& cfg) {
  // 64 bytes of headroom over S: the envelope around the data.
  const std::size_t frame = cfg.size + 64;
  asio::io_context ctx(1);
  std::vector<std::unique_ptr<routed_connection>> conns;
  for (std::size_t i = 0; i < cfg.connections; ++i) {
    tether::handler_options o;
    o.reconnect = false;
    if (cfg.batch)
      o.batch = {.enabled = true, .max_count = 64, .max_bytes = 64 * 1024, .max_delay = std::chrono::milliseconds(0)};
    o.stream.max_message_size = std::max(o.stream.max_message_size, frame);
    o.stream.max_frame_size = std::max(o.stream.max_frame_size, frame);
    conns.push_back(std::make_unique<routed_connection>(ctx.get_executor(), std::move(o), cfg));
    routed_connection* c = conns.back().get();
    c->ws.add_route({std::string(echo_path), [c, &cfg](const tether::json& data, tether::connection_context&) {
                       if (!data.is_string())
                         c->echoed("(not a string)", false, cfg);
                       else
                         c->echoed(data.get_ref<const std::string&>(), false, cfg);
                     }});
    tether::route::message_fn other = [c, &cfg](const tether::message& m, tether::connection_context&) {
      if (m.env.binary)
        c->echoed(m.env.bytes, true, cfg);
      else
        c->fail(std::make_exception_ptr(std::runtime_error(fmt::format("unrouted envelope: {}", m.raw))));
    };
    c->ws.set_fallback(other);
  }

  outcome out;
  if (!open_and_run(ctx, open_all_routed(conns, cfg, out.start), cfg, out))
    return out;
  out.rtt_ns.reserve(cfg.connections * cfg.messages);
  out.end = out.start;
  for (std::size_t i = 0; i < conns.size(); ++i) {
    const auto& c = *conns[i];
    const auto st = c.ws.status();
    // Batched, a WebSocket message carries several envelopes: count the echoes.
    const bool counts_ok = cfg.batch ? c.echoes == cfg.messages && st.messages_sent == st.messages_received
                                     : st.messages_sent == cfg.messages && st.messages_received == cfg.messages;
    if (!c.error && !counts_ok)
      fmt::print(stderr, "bench-client: connection {}: status() counts {} sent and {} received, {} echoes, expected {}\n",
                 i, st.messages_sent, st.messages_received, c.echoes, cfg.messages);
    if (c.error)
      fmt::print(stderr, "bench-client: connection {}: {}\n", i, describe(c.error));
    if (c.error || !counts_ok)
      out.status = 1;
    out.rtt_ns.insert(out.rtt_ns.end(), c.rtt_ns.begin(), c.rtt_ns.end());
    out.end = std::max(out.end, c.last_echo);
  }
  return out;
}

} // namespace

int main(int argc, char** argv) {
  config cfg;
  if (int rc = parse_args(argc, argv, cfg))
    return rc < 0 ? 0 : rc;

  outcome out = cfg.routed ? run_routed(cfg) : run_stream(cfg);
  if (out.status != 0)
    return out.status;

  auto result = bench::result_line("tether", cfg.connections, cfg.messages, cfg.size, cfg.window, out.rtt_ns,
                                   out.start, out.end);
  result["routed"] = cfg.routed;
  if (cfg.batch)
    result["batched"] = true; // only with --batch: the default line keeps its keys
  fmt::print("{}\n", result.dump());
  return 0;
}
