// bench-beast-client: bench-client's workload on Boost.Beast (Boost 1.74), the
// way an experienced Beast user writes a fast client, for the comparison in
// compare.py and docs/benchmarks.md.
//
//   bench-beast-client --url URL --connections C --messages N --size S --window W [--binary]
//
// Same command line, echo checks and JSON line as bench-client, with
// "client":"beast". Per connection: websocket::stream<tcp::socket> with
// TCP_NODELAY and Beast's suggested client timeouts, one writer coroutine and
// one reader coroutine (C++20 coroutines, boost::asio::use_awaitable) on a
// single-threaded io_context, one flat_buffer reused for every read. The writer
// sends while fewer than W messages await their echo and otherwise waits on a
// stored completion handler that the reader completes (no timer: waking it costs
// no syscall). Messages go out whole (auto_fragment off) through a 64 KiB write
// buffer (Beast masks client frames in that buffer; its 4 KiB default would
// split a 1 MiB message into 256 writes). permessage-deflate is off, as in the
// other clients; Beast validates the UTF-8 of text it reads.
#include "peer_common.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

/// One waiter at a time, woken by notify(): the awaiting coroutine's completion
/// handler is stored and posted, so waiting and waking touch no kernel object.
class wake_signal {
public:
  template <class Token>
  auto async_wait(Token&& token) {
    return net::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler) { waiter_ = std::make_unique<holder<decltype(handler)>>(std::move(handler)); }, token);
  }
  void notify() {
    if (auto w = std::move(waiter_))
      w->complete();
  }

private:
  struct base {
    virtual ~base() = default;
    virtual void complete() = 0;
  };
  template <class Handler>
  struct holder final : base {
    explicit holder(Handler h) : handler(std::move(h)) {}
    void complete() override {
      auto ex = net::get_associated_executor(handler);
      net::post(ex, beast::bind_front_handler(std::move(handler), boost::system::error_code()));
    }
    Handler handler;
  };
  std::unique_ptr<base> waiter_;
};

struct connection {
  connection(net::io_context& ioc, const bench::config& cfg) : ws(ioc), sent(cfg.messages), rtt_ns(cfg.messages) {}

  websocket::stream<tcp::socket> ws;
  beast::flat_buffer buffer;
  std::size_t in_flight = 0; // sent, echo not read yet
  wake_signal window_open;   // the writer waits here while in_flight == W
  bool writer_done = false;
  wake_signal writer_finished;
  std::vector<bench::clock::time_point> sent;
  std::vector<std::int64_t> rtt_ns;
  bench::clock::time_point last_echo;
};

net::awaitable<void> write_loop(connection& c, const bench::config& cfg) {
  std::string payload(cfg.size, bench::fill_byte(cfg));
  for (std::size_t i = 0; i < cfg.messages; ++i) {
    while (c.in_flight == cfg.window)
      co_await c.window_open.async_wait(net::use_awaitable);
    ++c.in_flight;
    bench::stamp(payload, cfg, i);
    c.sent[i] = bench::clock::now();
    co_await c.ws.async_write(net::buffer(payload), net::use_awaitable);
  }
}

net::awaitable<void> read_loop(connection& c, const bench::config& cfg) {
  for (std::size_t i = 0; i < cfg.messages; ++i) {
    co_await c.ws.async_read(c.buffer, net::use_awaitable);
    const auto now = bench::clock::now();
    std::string_view got(static_cast<const char*>(c.buffer.data().data()), c.buffer.size());
    if (c.ws.got_binary() != cfg.binary || !bench::echo_matches(got, cfg, i))
      throw std::runtime_error("echo " + std::to_string(i) + " does not match what was sent (" +
                               std::to_string(got.size()) + " bytes, " + (c.ws.got_binary() ? "binary" : "text") + ")");
    c.buffer.consume(c.buffer.size());
    c.rtt_ns[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.sent[i]).count();
    c.last_echo = now;
    --c.in_flight;
    c.window_open.notify();
  }
}

net::awaitable<void> run_connection(connection& c, const bench::config& cfg) {
  auto finished = [&c](std::exception_ptr e) {
    if (e)
      std::rethrow_exception(e); // out of io_context::run: main reports it
    c.writer_done = true;
    c.writer_finished.notify();
  };
  net::co_spawn(c.ws.get_executor(), write_loop(c, cfg), finished);
  co_await read_loop(c, cfg);
  while (!c.writer_done)
    co_await c.writer_finished.async_wait(net::use_awaitable);
  co_await c.ws.async_close(websocket::close_code::normal, net::use_awaitable);
}

net::awaitable<void> open_all(std::vector<std::unique_ptr<connection>>& conns, const bench::config& cfg,
                              bench::clock::time_point& start) {
  bench::ws_url u;
  bench::parse_url(cfg.url, u);
  auto ex = co_await net::this_coro::executor;
  tcp::resolver resolver(ex);
  const auto endpoints = co_await resolver.async_resolve(u.host, u.port, net::use_awaitable);
  const std::string host = u.host + ":" + u.port;
  for (auto& c : conns) {
    co_await net::async_connect(c->ws.next_layer(), endpoints, net::use_awaitable);
    c->ws.next_layer().set_option(tcp::no_delay(true));
    c->ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    c->ws.read_message_max(std::max<std::size_t>(16 * 1024 * 1024, cfg.size));
    c->ws.auto_fragment(false);
    c->ws.write_buffer_bytes(64 * 1024);
    c->ws.binary(cfg.binary);
    co_await c->ws.async_handshake(host, u.target, net::use_awaitable);
  }
  start = bench::clock::now();
  for (auto& c : conns) {
    auto rethrow = [](std::exception_ptr e) {
      if (e)
        std::rethrow_exception(e);
    };
    net::co_spawn(ex, run_connection(*c, cfg), rethrow);
  }
}

} // namespace

int main(int argc, char** argv) {
  bench::config cfg;
  if (int rc = bench::parse_args("bench-beast-client", argc, argv, cfg))
    return rc < 0 ? 0 : rc;

  net::io_context ioc(1);
  std::vector<std::unique_ptr<connection>> conns;
  for (std::size_t i = 0; i < cfg.connections; ++i)
    conns.push_back(std::make_unique<connection>(ioc, cfg));

  bench::clock::time_point start;
  auto opened = [](std::exception_ptr e) {
    if (e)
      std::rethrow_exception(e);
  };
  net::co_spawn(ioc, open_all(conns, cfg, start), opened);
  try {
    ioc.run();
  } catch (const boost::system::system_error& e) {
    // A close frame from the server ends a read with websocket::error::closed.
    std::string reason = e.what();
    for (auto& c : conns)
      if (c->ws.reason().code != websocket::close_code::none) {
        reason += " (the server closed with " + std::to_string(c->ws.reason().code) + ")";
        break;
      }
    std::fprintf(stderr, "bench-beast-client: %s\n", reason.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-beast-client: %s\n", e.what());
    return 1;
  }

  std::vector<std::int64_t> rtt;
  rtt.reserve(cfg.connections * cfg.messages);
  auto end = start;
  for (auto& c : conns) {
    rtt.insert(rtt.end(), c->rtt_ns.begin(), c->rtt_ns.end());
    end = std::max(end, c->last_echo);
  }
  bench::print_result("beast", cfg, rtt, start, end);
  return 0;
}
