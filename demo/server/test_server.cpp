// The loopback test server. One coroutine per connection runs the handshake and
// then a reader and a writer side by side; every write on a socket goes through
// that connection's queue and its single writer, so two writes never overlap.
#include "test_server.hpp"

#include "asio_compat.hpp"

#include <tether/error.hpp>
#include <tether/protocol.hpp>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <deque>
#include <optional>
#include <stdexcept>
#include <system_error>

namespace tether::test {

namespace {

// Where unreported server errors go: stderr, or what the tests install.
std::function<void(const std::string&)>& failure_reporter() {
  static std::function<void(const std::string&)> fn;
  return fn;
}

void report_failure(const std::string& what) {
  if (auto& fn = failure_reporter())
    fn(what);
  else
    std::fprintf(stderr, "%s\n", what.c_str());
}

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

const char* reason_phrase(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 426: return "Upgrade Required";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return status >= 300 && status < 400 ? "Redirect" : "Error";
  }
}

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
    if (tls) {
      auto result = co_await tls->async_read_some(b, use_nothrow);
      co_return result;
    }
    {
      auto result = co_await plain.async_read_some(b, use_nothrow);
      co_return result;
    }
  }

  asio::awaitable<std::tuple<std::error_code, std::size_t>> write(std::string_view bytes) {
    if (tls) {
      auto result = co_await asio::async_write(*tls, asio::buffer(bytes), use_nothrow);
      co_return result;
    }
    {
      auto result = co_await asio::async_write(plain, asio::buffer(bytes), use_nothrow);
      co_return result;
    }
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

} // namespace

std::string encode_frame(opcode op, std::string_view payload, bool fin) {
  frame_header h;
  h.fin = fin;
  h.op = op;
  h.length = payload.size();
  std::array<std::uint8_t, max_header_size> head{};
  const auto n = encode_header(h, head);
  std::string out(reinterpret_cast<const char*>(head.data()), n);
  out.append(payload);
  return out;
}

struct test_server::impl : std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor e, server_options o) : ex(std::move(e)), opts(std::move(o)), changed(ex, never) {}

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

  void listen() {
    auto acc = std::make_shared<tcp::acceptor>(ex);
    const tcp::endpoint ep(asio::ip::address_v4::loopback(), port ? port : opts.port);
    acc->open(ep.protocol());
    acc->set_option(asio::socket_base::reuse_address(true));
    acc->bind(ep);
    acc->listen();
    port = acc->local_endpoint().port();
    acceptor = acc;
    auto self = shared_from_this();
    asio::co_spawn(ex, accept_loop(self, acc), [self](std::exception_ptr e) {
      if (e)
        self->fail(e);
    });
  }

  void stop() {
    if (acceptor) {
      std::error_code ignored;
      acceptor->close(ignored);
      acceptor.reset();
    }
    for (auto& c : conns)
      c->abort();
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

  static asio::awaitable<void> accept_loop(std::shared_ptr<impl> s, std::shared_ptr<tcp::acceptor> acc) {
    for (;;) {
      auto [ec, sock] = co_await acc->async_accept(use_nothrow);
      if (!acc->is_open() || ec == asio::error::operation_aborted)
        co_return; // stop()
      if (ec) {
        if (ec == asio::error::connection_aborted)
          continue; // the client gave up before we accepted
        throw std::system_error(ec, "test_server: accept");
      }
      ++s->accepted;
      auto c = std::make_shared<connection>(std::move(sock), s->tls_ctx.get());
      c->id = ++s->next_id;
      s->conns.push_back(c);
      s->notify();
      asio::co_spawn(s->ex, serve(s, c), [s](std::exception_ptr e) {
        if (e)
          s->fail(e);
      });
    }
  }

  static asio::awaitable<void> serve(std::shared_ptr<impl> s, std::shared_ptr<connection> c) {
    using namespace tether::detail::awaitable_operators;
    try {
      bool ok = true;
      if (c->tls) {
        asio::steady_timer watchdog(s->ex, tls_handshake_bound);
        watchdog.async_wait([c](std::error_code ec) {
          if (!ec)
            c->end();
        });
        auto [ec] = co_await c->tls->async_handshake(asio::ssl::stream_base::server, use_nothrow);
        ok = !ec && !c->dead && !c->stalled;
      }
      if (ok)
        co_await (read_side(s, c) && write_side(c));
      if (c->stalled && !c->dead)
        co_await c->park.async_wait(use_nothrow); // until drop() or stop()
      else if (ok && c->closing && !c->dead)
        co_await close_gracefully(s, c);
    } catch (...) {
      s->fail(std::current_exception());
    }
    std::error_code ignored;
    c->socket().close(ignored);
    c->dead = true;
    if (c->proto && !c->close_seen && s->record)
      s->closes.emplace_back(close_code::abnormal, std::string());
    ++s->ended;
    std::erase(s->conns, c);
    s->notify();
  }

  // RFC 6455 §7.1.1: after the close handshake the server closes TCP first. Our
  // FIN goes out, then we read until the client's FIN so that no unread bytes
  // turn our close into a reset that could destroy the response in flight.
  static asio::awaitable<void> close_gracefully(std::shared_ptr<impl> s, std::shared_ptr<connection> c) {
    if (c->tls) {
      asio::steady_timer bound(s->ex, tls_shutdown_bound);
      bound.async_wait([c](std::error_code ec) {
        if (!ec) {
          std::error_code ignored;
          c->socket().cancel(ignored);
        }
      });
      co_await c->tls->async_shutdown(use_nothrow); // sends close_notify; errors do not matter here
    }
    if (c->dead)
      co_return;
    asio::steady_timer bound(s->ex, linger_bound);
    bound.async_wait([c](std::error_code ec) {
      if (!ec)
        c->abort();
    });
    std::error_code ignored;
    c->socket().shutdown(tcp::socket::shutdown_send, ignored);
    std::array<char, 4096> sink;
    for (;;) {
      auto [ec, n] = co_await c->socket().async_read_some(asio::buffer(sink), use_nothrow);
      if (ec || c->dead)
        break;
    }
  }

  static asio::awaitable<void> write_side(std::shared_ptr<connection> c) {
    for (;;) {
      if (c->dead || c->stalled)
        break;
      if (!c->queue.empty()) {
        auto item = std::move(c->queue.front());
        c->queue.pop_front();
        if (item.delay.count() > 0) {
          c->pace.expires_after(item.delay);
          co_await c->pace.async_wait(use_nothrow);
          if (c->dead || c->stalled)
            break;
        }
        if (c->silenced)
          continue; // silence() after this item was taken
        auto [ec, n] = co_await c->write(item.bytes);
        if (ec && !c->stalled)
          c->end();
        continue;
      }
      if (c->closing || c->reader_done) {
        // Flushed. A reader still blocked in a read (our close answered the
        // peer's) is woken by cancelling it; it sees `closing` and returns.
        if (!c->reader_done) {
          std::error_code ignored;
          c->socket().cancel(ignored);
        }
        break;
      }
      co_await c->wake.async_wait(use_nothrow);
    }
  }

  static asio::awaitable<void> read_side(std::shared_ptr<impl> s, std::shared_ptr<connection> c) {
    co_await read_connection(s, c);
    c->reader_done = true;
    c->wake.cancel();
  }

  // Returns with c->closing set to close gracefully, c->dead on EOF or error,
  // or c->stalled.
  static asio::awaitable<void> read_connection(std::shared_ptr<impl> s, std::shared_ptr<connection> c) {
    std::array<char, 4096> buf;
    request_parser parser;
    std::string rest; // bytes after the request: the client's first frames

    // ---- the handshake request ----
    for (;;) {
      if (c->dead || c->stalled)
        co_return; // stall() or drop() before this coroutine first ran
      auto [ec, n] = co_await c->read_some(asio::buffer(buf));
      if (c->dead || c->stalled)
        co_return;
      if (ec) {
        c->end();
        co_return;
      }
      const std::string_view in(buf.data(), n);
      const auto r = parser.feed(in);
      if (r.ec) {
        c->push(build_reject_response(400, reason_phrase(400), {}, r.ec.message()));
        c->close_after_flush();
        co_return;
      }
      if (r.done) {
        rest.assign(in.substr(r.consumed));
        break;
      }
    }
    ++s->requests;
    s->last_request = parser.request();
    s->notify();

    switch (s->mode) {
    case handshake_mode::reject:
      c->push(build_reject_response(s->reject_status, reason_phrase(s->reject_status), s->reject_headers,
                                    s->reject_body));
      c->close_after_flush();
      co_return;
    case handshake_mode::silent:
      for (;;) { // keep TCP open, ignore whatever arrives
        auto [ec, n] = co_await c->read_some(asio::buffer(buf));
        if (c->dead || c->stalled)
          co_return;
        if (ec) {
          c->end();
          co_return;
        }
      }
    case handshake_mode::raw:
      c->push(s->raw_answer + s->after_handshake);
      break;
    case handshake_mode::accept: {
      server_request req = parser.request();
      if (auto ec = validate_request(req)) {
        c->push(build_reject_response(400, reason_phrase(400), {}, ec.message()));
        c->close_after_flush();
        co_return;
      }
      std::string chosen;
      for (const auto& offered : req.subprotocols)
        if (std::find(s->opts.subprotocols.begin(), s->opts.subprotocols.end(), offered) !=
            s->opts.subprotocols.end()) {
          chosen = offered;
          break;
        }
      c->push(build_accept_response(req, chosen) + s->after_handshake);
      break;
    }
    }

    // ---- WebSocket ----
    protocol_options po;
    po.role = role::server;
    po.auto_pong = false; // answered below, so set_answer_pings applies to open connections
    c->proto.emplace(po);
    c->proto->feed(rest);
    for (;;) {
      process_events(*s, *c);
      if (c->proto->failed() ||
          (c->proto->close_sent() && c->proto->close_received() && !c->close_unanswered)) {
        c->close_after_flush();
        co_return;
      }
      auto [ec, n] = co_await c->read_some(asio::buffer(buf));
      if (c->dead || c->stalled || c->closing)
        co_return;
      if (ec) {
        c->end();
        co_return;
      }
      c->proto->feed({buf.data(), n});
    }
  }

  static void process_events(impl& s, connection& c) {
    auto& p = *c.proto;
    for (;;) {
      if (c.dead)
        break; // dropped by an on_message callback
      const bool close_sent_before = p.close_sent();
      auto ev = p.next_event();
      if (!ev)
        break;
      if (c.silenced) {
        // Nothing goes out: no echo, pong or close answer (kept open until the
        // client drops TCP). A close is still observed.
        if (ev->what == event::kind::close) {
          c.close_seen = true;
          c.close_unanswered = true;
          if (s.record)
            s.closes.emplace_back(ev->code, std::string(ev->data));
          s.notify();
        }
        c.take_output(true);
        continue;
      }
      bool discard = false;
      switch (ev->what) {
      case event::kind::message_begin:
        c.msg_type = ev->type;
        c.msg.clear();
        break;
      case event::kind::data:
        c.msg.append(ev->data);
        break;
      case event::kind::message_end:
        if (s.record)
          s.messages.emplace_back(c.msg_type, c.msg);
        s.notify();
        if (s.echo && !p.close_sent())
          p.send_message(c.msg_type, c.msg);
        if (s.on_message) {
          c.take_output(); // the echo (if any) goes out before what the callback sends
          const auto fn = s.on_message; // the callback may replace itself
          fn(c.id, c.msg_type, c.msg);
        }
        break;
      case event::kind::ping:
        if (s.answer_pings && !p.close_sent()) {
          const std::string payload(ev->data);
          p.send_pong(payload);
        }
        break;
      case event::kind::pong:
        ++s.pongs;
        s.notify();
        break;
      case event::kind::close:
        c.close_seen = true;
        if (s.record)
          s.closes.emplace_back(ev->code, std::string(ev->data));
        s.notify();
        // The core queued the echo with this event; dropping it leaves the core
        // believing it answered, so close_unanswered keeps the connection open.
        discard = !s.answer_close && !close_sent_before;
        c.close_unanswered = discard;
        break;
      case event::kind::error:
        break; // the core queued its close frame; the loop closes after the flush
      }
      c.take_output(discard);
    }
  }

  static asio::awaitable<void> wait_until(std::shared_ptr<impl> s, std::size_t (*count)(const impl&), std::size_t n) {
    for (;;) {
      if (s->failure) {
        s->failure_reported = true;
        std::rethrow_exception(s->failure);
      }
      if (count(*s) >= n)
        co_return;
      if (s->destroyed)
        throw std::logic_error("test_server destroyed while a wait was pending");
      co_await s->changed.async_wait(use_nothrow);
      // A notify and a cancellation both end the wait with operation_aborted;
      // only the cancellation state tells them apart.
      const auto cs = co_await asio::this_coro::cancellation_state;
      if (cs.cancelled() != asio::cancellation_type::none)
        throw std::system_error(asio::error::operation_aborted, "test_server wait cancelled");
    }
  }
};

test_server::test_server(asio::any_io_executor ex, server_options options)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(options))) {
  auto& o = impl_->opts;
  if (!o.cert_file.empty() || !o.key_file.empty()) {
    impl_->tls_ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    impl_->tls_ctx->use_certificate_chain_file(o.cert_file);
    impl_->tls_ctx->use_private_key_file(o.key_file, asio::ssl::context::pem);
  }
  impl_->listen();
}

void set_failure_reporter(std::function<void(const std::string&)> fn) { failure_reporter() = std::move(fn); }

test_server::~test_server() {
  impl_->on_message = nullptr; // it may refer to the owner of *this
  impl_->stop();
  impl_->destroyed = true;
  if (impl_->failure && !impl_->failure_reported) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(impl_->failure);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    report_failure("test_server failed: " + what);
  }
}

std::uint16_t test_server::port() const { return impl_->port; }

std::string test_server::url(std::string_view target) const {
  std::string u = impl_->tls_ctx ? "wss://127.0.0.1:" : "ws://127.0.0.1:";
  u += std::to_string(impl_->port);
  u += target;
  return u;
}

void test_server::set_handshake(handshake_mode m) { impl_->mode = m; }

void test_server::set_reject(int status, http_headers headers, std::string body) {
  impl_->mode = handshake_mode::reject;
  impl_->reject_status = status;
  impl_->reject_headers = std::move(headers);
  impl_->reject_body = std::move(body);
}

void test_server::set_handshake_raw(std::string bytes) {
  impl_->mode = handshake_mode::raw;
  impl_->raw_answer = std::move(bytes);
}

void test_server::set_after_handshake(std::string raw_bytes) { impl_->after_handshake = std::move(raw_bytes); }
void test_server::set_echo(bool on) { impl_->echo = on; }
void test_server::set_answer_close(bool on) { impl_->answer_close = on; }
void test_server::set_answer_pings(bool on) { impl_->answer_pings = on; }

void test_server::send_raw(std::string bytes, std::size_t chunk, std::chrono::milliseconds pace) {
  impl_->for_each_connection([&](connection& c) {
    if (chunk == 0 || chunk >= bytes.size()) {
      c.push(bytes);
      return;
    }
    for (std::size_t i = 0; i < bytes.size(); i += chunk)
      c.push(bytes.substr(i, chunk), i == 0 ? std::chrono::milliseconds{} : pace);
  });
}

void test_server::send_text(std::string payload) {
  impl_->for_each_websocket([&](protocol& p) { return p.send_message(opcode::text, payload); });
}

void test_server::send_binary(std::string payload) {
  impl_->for_each_websocket([&](protocol& p) { return p.send_message(opcode::binary, payload); });
}

void test_server::send_close(std::uint16_t code, std::string reason) {
  impl_->for_each_websocket([&](protocol& p) { return p.send_close(code, reason); });
}

void test_server::send_ping(std::string payload) {
  impl_->for_each_websocket([&](protocol& p) { return p.send_ping(payload); });
}

void test_server::drop() {
  impl_->for_each_connection([](connection& c) { c.abort(); });
}

void test_server::stall() {
  impl_->for_each_connection([](connection& c) {
    if (c.dead)
      return;
    c.stalled = true;
    c.queue.clear();
    std::error_code ignored;
    c.socket().cancel(ignored);
    c.wake.cancel();
    c.pace.cancel();
  });
}

void test_server::stop() { impl_->stop(); }

void test_server::set_on_message(std::function<void(connection_id, opcode, std::string_view)> fn) {
  impl_->on_message = std::move(fn);
}

void test_server::set_record(bool on) { impl_->record = on; }

std::vector<test_server::connection_id> test_server::connection_ids() const {
  std::vector<connection_id> ids;
  for (auto& c : impl_->conns)
    if (c->proto && !c->dead)
      ids.push_back(c->id);
  return ids;
}

bool test_server::send_text_to(connection_id id, std::string payload) {
  auto c = impl_->find(id);
  return c && impl_->with_websocket(*c, [&](protocol& p) { return p.send_message(opcode::text, payload); });
}

bool test_server::send_binary_to(connection_id id, std::string payload) {
  auto c = impl_->find(id);
  return c && impl_->with_websocket(*c, [&](protocol& p) { return p.send_message(opcode::binary, payload); });
}

bool test_server::send_close_to(connection_id id, std::uint16_t code, std::string reason) {
  auto c = impl_->find(id);
  return c && impl_->with_websocket(*c, [&](protocol& p) { return p.send_close(code, reason); });
}

std::size_t test_server::send_text_except(connection_id id, std::string payload) {
  std::size_t n = 0;
  const auto snapshot = impl_->conns; // with_websocket may end connections
  for (auto& c : snapshot)
    if (c->id != id && impl_->with_websocket(*c, [&](protocol& p) { return p.send_message(opcode::text, payload); }))
      ++n;
  return n;
}

bool test_server::drop(connection_id id) {
  auto c = impl_->find(id);
  if (!c)
    return false;
  c->abort();
  return true;
}

bool test_server::silence(connection_id id) {
  auto c = impl_->find(id);
  if (!c)
    return false;
  c->silenced = true;
  c->queue.clear();
  return true;
}

void test_server::restart() {
  if (!impl_->acceptor)
    impl_->listen();
}

asio::awaitable<void> test_server::wait_accepted(std::size_t n) {
  return impl::wait_until(impl_, [](const impl& s) { return s.accepted; }, n);
}

asio::awaitable<void> test_server::wait_request(std::size_t n) {
  return impl::wait_until(impl_, [](const impl& s) { return s.requests; }, n);
}

asio::awaitable<void> test_server::wait_closed(std::size_t n) {
  return impl::wait_until(impl_, [](const impl& s) { return s.ended; }, n);
}

asio::awaitable<void> test_server::wait_messages(std::size_t n) {
  return impl::wait_until(impl_, [](const impl& s) { return s.messages.size(); }, n);
}

std::size_t test_server::accepted() const { return impl_->accepted; }
std::size_t test_server::requests() const { return impl_->requests; }
std::size_t test_server::pongs() const { return impl_->pongs; }
std::size_t test_server::connections() const { return impl_->conns.size(); }
const server_request& test_server::last_request() const { return impl_->last_request; }
std::vector<std::pair<opcode, std::string>> test_server::messages() const { return impl_->messages; }
std::vector<std::pair<std::uint16_t, std::string>> test_server::closes() const { return impl_->closes; }

} // namespace tether::test
