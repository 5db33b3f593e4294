#pragma once
// The loopback test server's state (test_server::impl) and one connection's
// (connection), shared by its files: test_server.cpp (the public API and the
// waits), server_accept.cpp (accepting, serving and closing a connection),
// server_read.cpp (the handshake request, then frames and their answers) and
// server_write.cpp (the connection's single writer). Private to demo/server.
#include "test_server.hpp"

#include "asio_compat.hpp"

#include <tether/error.hpp>
#include <tether/protocol.hpp>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <deque>
#include <optional>
#include <string>

namespace tether::test {

void report_failure(const std::string& what);

namespace server_detail {

using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using tether::detail::use_nothrow;

// Bounds on the server's own closing steps, so a client that never answers
// cannot keep a test waiting: TLS handshake, TLS close_notify exchange, and the
// wait for the client's FIN after ours.
constexpr auto tls_handshake_bound = 5s;
constexpr auto tls_shutdown_bound = 500ms;
constexpr auto linger_bound = 1s;

constexpr auto never = asio::steady_timer::time_point::max();

struct out_item {
  std::string bytes;
  std::chrono::milliseconds delay{}; // pause before writing these bytes
};

struct connection {
  connection(tcp::socket s, asio::ssl::context* tls_ctx)
      : plain(s.get_executor()), wake(s.get_executor(), never), park(s.get_executor(), never),
        pace(s.get_executor()) {
    if (tls_ctx)
      tls.emplace(std::move(s), *tls_ctx);
    else
      plain = std::move(s);
  }

  tcp::socket& socket() { return tls ? tls->next_layer() : plain; }

  asio::awaitable<std::tuple<std::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
    if (tls)
      return tls->async_read_some(b, use_nothrow);
    return plain.async_read_some(b, use_nothrow);
  }

  asio::awaitable<std::tuple<std::error_code, std::size_t>> write(std::string_view bytes) {
    if (tls)
      return asio::async_write(*tls, asio::buffer(bytes), use_nothrow);
    return asio::async_write(plain, asio::buffer(bytes), use_nothrow);
  }

  void push(std::string bytes, std::chrono::milliseconds delay = {}) {
    if (bytes.empty() || dead || stalled || silenced)
      return;
    queue.push_back({std::move(bytes), delay});
    wake.cancel();
  }

  // Moves what the protocol core queued (frames, pongs, the close echo) to the
  // write queue; `discard` drops it instead (set_answer_close(false)).
  void take_output(bool discard = false) {
    const auto out = proto->pending_output();
    if (!discard)
      push(std::string(out));
    proto->consume_output(out.size());
  }

  bool can_send() const {
    return proto && !dead && !stalled && !silenced && !proto->close_sent() && !proto->failed();
  }

  // Start the graceful close once the queue is flushed.
  void close_after_flush() {
    closing = true;
    wake.cancel();
  }

  // Stop every pending operation: the loops see `dead` and return.
  void end() {
    dead = true;
    std::error_code ignored;
    socket().cancel(ignored);
    wake.cancel();
    park.cancel();
    pace.cancel();
  }

  // RST instead of FIN: SO_LINGER with a zero timeout, then close.
  void abort() {
    end();
    std::error_code ignored;
    if (socket().is_open()) {
      socket().set_option(asio::socket_base::linger(true, 0), ignored);
      socket().close(ignored);
    }
  }

  tcp::socket plain;
  std::optional<asio::ssl::stream<tcp::socket>> tls;
  asio::steady_timer wake; // the writer waits here; cancel() wakes it
  asio::steady_timer park; // a stalled connection waits here until dropped
  asio::steady_timer pace; // send_raw's pause between pieces
  std::deque<out_item> queue;
  std::optional<protocol> proto; // set when the WebSocket phase starts

  bool dead = false;        // the socket is finished with
  bool closing = false;     // flush, then close gracefully (server closes first, RFC 6455 §7.1.1)
  bool stalled = false;
  bool reader_done = false;
  bool close_seen = false;  // a close frame arrived and is in closes()
  bool close_unanswered = false; // its echo was dropped (set_answer_close(false))
  bool silenced = false;    // silence(id): read on, write nothing, answer nothing
  std::uint64_t id = 0;     // connection_id, in accept order

  opcode msg_type = opcode::text;
  std::string msg;
};

} // namespace server_detail

struct test_server::impl : std::enable_shared_from_this<impl> {
  using connection = server_detail::connection;
  using tcp = server_detail::tcp;

  impl(asio::any_io_executor e, server_options o)
      : ex(std::move(e)), opts(std::move(o)), changed(ex, server_detail::never) {}

  asio::any_io_executor ex;
  server_options opts;
  std::unique_ptr<asio::ssl::context> tls_ctx;
  std::shared_ptr<tcp::acceptor> acceptor;
  std::uint16_t port = 0;
  asio::steady_timer changed; // the waiters' condition variable: cancel() = notify_all

  // Behaviour.
  handshake_mode mode = handshake_mode::accept;
  int reject_status = 503;
  http_headers reject_headers;
  std::string reject_body;
  std::string raw_answer;
  std::string after_handshake;
  bool echo = true;
  bool answer_close = true;
  bool answer_pings = true;
  bool record = true;
  std::function<void(connection_id, opcode, std::string_view)> on_message;
  std::uint64_t next_id = 0;

  // Observations.
  std::size_t accepted = 0;
  std::size_t pongs = 0; // pongs received from clients
  std::size_t requests = 0;
  std::size_t ended = 0;
  server_request last_request;
  std::vector<std::pair<opcode, std::string>> messages;
  std::vector<std::pair<std::uint16_t, std::string>> closes;
  std::vector<std::shared_ptr<connection>> conns;

  std::exception_ptr failure;
  bool failure_reported = false;
  bool destroyed = false;

  void notify() { changed.cancel(); }

  void fail(std::exception_ptr e) {
    if (!failure)
      failure = e;
    notify();
  }

  template <class F> void for_each_connection(F&& f) {
    const auto snapshot = conns; // f may end connections
    for (auto& c : snapshot)
      f(*c);
  }

  std::shared_ptr<connection> find(connection_id id) const {
    for (auto& c : conns)
      if (c->id == id && !c->dead)
        return c;
    return nullptr;
  }

  // Runs f on one connection's protocol core and queues what it produced; false
  // when the connection cannot send (see can_send).
  template <class F> bool with_websocket(connection& c, F&& f) {
    if (!c.can_send())
      return false;
    if (auto ec = f(*c.proto))
      throw std::system_error(ec);
    c.take_output();
    if (c.proto->close_sent() && c.proto->close_received())
      c.close_after_flush(); // our close answered a close we had not answered
    return true;
  }

  template <class F> void for_each_websocket(F&& f) {
    for_each_connection([&](connection& c) {
      if (!c.can_send())
        return;
      if (auto ec = f(*c.proto))
        throw std::system_error(ec);
      c.take_output();
      if (c.proto->close_sent() && c.proto->close_received())
        c.close_after_flush(); // our close answered a close we had not answered
    });
  }

  void listen();
  void stop();

  // ---- server_accept.cpp: a connection's life ----
  static asio::awaitable<void> accept_loop(std::shared_ptr<impl> s, std::shared_ptr<tcp::acceptor> acc);
  static asio::awaitable<void> serve(std::shared_ptr<impl> s, std::shared_ptr<connection> c);
  static asio::awaitable<void> close_gracefully(std::shared_ptr<impl> s, std::shared_ptr<connection> c);
  // ---- server_write.cpp ----
  static asio::awaitable<void> write_side(std::shared_ptr<connection> c);
  // ---- server_read.cpp: the handshake request, then frames and their answers ----
  static asio::awaitable<void> read_side(std::shared_ptr<impl> s, std::shared_ptr<connection> c);
  static asio::awaitable<void> read_connection(std::shared_ptr<impl> s, std::shared_ptr<connection> c);
  static void process_events(impl& s, connection& c);
  // ---- test_server.cpp ----
  static asio::awaitable<void> wait_until(std::shared_ptr<impl> s, std::size_t (*count)(const impl&), std::size_t n);
};

} // namespace tether::test
