// The loopback test server's public API (test_server.hpp): settings, scripted
// misbehaviour and observations, each forwarded to the server's state; and the
// waits. Its jobs live beside this file (server_impl.hpp lists them).
#include "server_impl.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <stdexcept>
#include <system_error>

namespace tether::test {

using namespace server_detail;

namespace {

// Where unreported server errors go: stderr, or what the tests install.
std::function<void(const std::string&)>& failure_reporter() {
  static std::function<void(const std::string&)> fn;
  return fn;
}

} // namespace

void report_failure(const std::string& what) {
  if (auto& fn = failure_reporter())
    fn(what);
  else
    std::fprintf(stderr, "%s\n", what.c_str());
}

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

asio::awaitable<void> test_server::impl::wait_until(std::shared_ptr<impl> s, std::size_t (*count)(const impl&),
                                                  std::size_t n) {
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

asio::awaitable<void> test_server::wait_pongs(std::size_t n) {
  return impl::wait_until(impl_, [](const impl& s) { return s.pongs; }, n);
}

std::size_t test_server::accepted() const { return impl_->accepted; }
std::size_t test_server::requests() const { return impl_->requests; }
std::size_t test_server::pongs() const { return impl_->pongs; }
std::size_t test_server::connections() const { return impl_->conns.size(); }
const server_request& test_server::last_request() const { return impl_->last_request; }
std::vector<std::pair<opcode, std::string>> test_server::messages() const { return impl_->messages; }
std::vector<std::pair<std::uint16_t, std::string>> test_server::closes() const { return impl_->closes; }

} // namespace tether::test
