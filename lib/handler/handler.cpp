// tether::handler: the public API, state changes, close() and wait_for().
// The handler's jobs live beside this file (handler_impl.hpp lists them): one
// supervisor coroutine per handler owns the connection's life (connect → run
// reader, writer and heartbeat → classify the end → back off → reconnect)
// until close() or the retry policy stops it.
#include "handler_impl.hpp"

namespace tether {

// `reason` is why the last attempt or connection ended (status().last_error
// gets the same text); `rule` is the retry decision's reason.
void handler::impl::set_state(connection_state s, unsigned attempt, std::chrono::milliseconds delay, std::error_code ec,
                              std::string reason, std::string rule) {
  {
    std::lock_guard lock(status_mutex_);
    state_ = s;
    st_.state = to_string(s);
    st_.connected = s == connection_state::open;
    st_.retries = attempt;
    if (ec)
      st_.last_error = reason.empty() ? ec.message() : reason;
  }
  if (opts_.on_state) {
    state_change c;
    c.state = s;
    c.attempt = attempt;
    c.delay = delay;
    c.error = ec;
    c.reason = std::move(reason);
    c.rule = std::move(rule);
    opts_.on_state(c);
  }
  notify();
}

// Ends the running connection's loops with `ec` (the first reason wins).
void handler::impl::end_connection(std::error_code ec, std::string text) {
  if (conn_outcome_.error)
    return;
  conn_outcome_.error = ec;
  conn_text_ = std::move(text);
}

asio::awaitable<void> handler::impl::do_close(std::shared_ptr<impl> self, unsigned code, std::string reason) {
  auto& s = *self;
  // Bad arguments fail before anything changes (the same checks as stream::close).
  if (auto ec = check_close(code, reason))
    throw std::system_error(ec);
  // A route handler calling close() is not waited for (it would wait for itself).
  auto cs_now = co_await asio::this_coro::cancellation_state;
  const auto me = cs_now.slot();
  if (!s.supervising() && s.handlers_.empty()) {
    s.life_ = life::closed;
    s.fail_queue(asio::error::operation_aborted);
    if (s.state_ != connection_state::idle)
      s.set_state(connection_state::closed);
    co_return;
  }
  if (!s.stopping()) {
    s.stop_asked();
    s.set_state(connection_state::closing);
    s.backoff_timer_.cancel();
    s.fail_queue(asio::error::operation_aborted);
    for (auto& h : s.handlers_)
      if (!(me.is_connected() && h->slot == me))
        h->cancel.emit(asio::cancellation_type::terminal);
    if (auto ws = s.ws_) {
      // The close handshake runs on its own, so cancelling close() ends only
      // the wait; the stream bounds it with close_timeout.
      if (ws->is_open())
        asio::co_spawn(s.strand_, close_stream(ws, static_cast<std::uint16_t>(code), std::move(reason)),
                       [self](std::exception_ptr) { self->notify(); });
      else
        ws->abort(); // still connecting (resolve, TCP, TLS or handshake)
    }
  }
  for (;;) {
    std::size_t others = 0;
    for (auto& h : s.handlers_)
      if (!(me.is_connected() && h->slot == me))
        ++others;
    if (!s.supervising() && others == 0)
      break;
    if (cancelled(cs_now))
      throw std::system_error(asio::error::operation_aborted);
    co_await s.changed_.wait();
  }
  if (s.state_ != connection_state::closed && s.state_ != connection_state::failed)
    s.set_state(connection_state::closed);
}

asio::awaitable<void> handler::impl::close_stream(std::shared_ptr<stream> ws, std::uint16_t code, std::string reason) {
  std::error_code ignored; // how it ended is the supervisor's to report
  co_await ws->close(code, reason, ignored);
}

asio::awaitable<void> handler::impl::do_wait_for(std::shared_ptr<impl> self, connection_state want) {
  while (self->state_ != want) {
    co_await self->changed_.wait();
    auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
    if (cancelled(cs_now))
      throw std::system_error(asio::error::operation_aborted);
  }
}

// Runs `op` on the strand: inline when already there, else by a hop.
asio::awaitable<void> handler::impl::on_strand(std::shared_ptr<impl> self, asio::awaitable<void> op) {
  if (detail::running_in(self->strand_)) {
    co_await std::move(op);
  } else {
    co_await asio::co_spawn(self->strand_, std::move(op), asio::use_awaitable);
  }
}

// Runs `op`, putting a std::system_error into `ec` instead of throwing it.
asio::awaitable<void> handler::impl::into(asio::awaitable<void> op, std::error_code& ec) {
  ec = {};
  try {
    co_await std::move(op);
  } catch (const std::system_error& e) {
    ec = e.code();
  }
}

// Encodes inside the coroutine, so an encoding error arrives through the
// awaitable like every other send error.
asio::awaitable<void> handler::impl::encode_and_send(std::shared_ptr<impl> self, envelope e, send_options o) {
  check_user_path(e.path);
  auto it = std::make_shared<item>(self->wake_registry_);
  it->ttl = o.ttl;
  it->bucket = self->pacer_.bucket_of(e.path);
  if (auto ec = self->codec_->encode(e, it->payload, it->binary))
    throw std::system_error(ec, "encoding the envelope for '" + e.path + "'");
  // on_strand inlined: one coroutine frame less per message.
  if (detail::running_in(self->strand_))
    co_await do_send(self, std::move(it));
  else
    co_await asio::co_spawn(self->strand_, do_send(self, std::move(it)), asio::use_awaitable);
}

// Paths starting with '$' are the library's own envelopes (docs/protocol.md).
void handler::impl::check_user_path(const std::string& path) {
  if (!path.empty() && path.front() == '$')
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "paths starting with '$' are reserved for the library: '" + path + "'");
}

void handler::impl::shutdown() noexcept {
  stop_asked();
  backoff_timer_.cancel();
  deadline_timer_.cancel();
  writer_timer_.cancel();
  writer_wake_ = steady::time_point::max(); // a later connect() arms it afresh
  for (auto& h : handlers_)
    h->cancel.emit(asio::cancellation_type::terminal);
  fail_queue(asio::error::operation_aborted);
  if (ws_)
    ws_->abort();
  notify();
}

// ---- public API ----

handler::handler(executor_type executor, handler_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {
  impl_->st_.state = to_string(connection_state::idle);
}

handler::~handler() {
  // The coroutines share ownership of impl and end on the strand soon after.
  asio::post(impl_->strand_, [self = impl_] { self->shutdown(); });
}

handler::executor_type handler::get_executor() const noexcept { return impl_->strand_; }

// Public operations are plain functions handing back a static coroutine: no
// member coroutines (see docs/design.md, compiler notes).
asio::awaitable<void> handler::connect(std::string url) {
  return impl::on_strand(impl_, impl::do_connect(impl_, std::move(url)));
}

asio::awaitable<void> handler::connect(std::string url, std::error_code& ec) {
  return impl::into(connect(std::move(url)), ec);
}

route_handle handler::add_route(route&& r) { return impl_->table_->add(std::move(r)); }

route_handle handler::add_route(const route& r) { return impl_->table_->add(r); }

void handler::set_fallback(route::function fn) { impl_->table_->set_fallback(std::move(fn)); }

route_table& handler::routes() noexcept { return *impl_->table_; }

void handler::add_interceptor(interceptor i) { impl_->interceptors_.push_back(std::move(i)); }

asio::awaitable<void> handler::send(std::string path, json data) {
  envelope e;
  e.path = std::move(path);
  e.data = std::move(data);
  return send(std::move(e));
}

asio::awaitable<void> handler::send(std::string path, json data, std::error_code& ec) {
  return impl::into(send(std::move(path), std::move(data)), ec);
}

asio::awaitable<void> handler::send_binary(std::string path, std::string bytes) {
  envelope e;
  e.path = std::move(path);
  e.bytes = std::move(bytes);
  e.binary = true;
  return send(std::move(e));
}

asio::awaitable<void> handler::send_binary(std::string path, std::string bytes, std::error_code& ec) {
  return impl::into(send_binary(std::move(path), std::move(bytes)), ec);
}

asio::awaitable<void> handler::send(envelope e) { return impl::encode_and_send(impl_, std::move(e)); }

asio::awaitable<void> handler::send(envelope e, send_options o) {
  return impl::encode_and_send(impl_, std::move(e), o);
}

asio::awaitable<void> handler::send(std::string path, json data, send_options o) {
  envelope e;
  e.path = std::move(path);
  e.data = std::move(data);
  return impl::encode_and_send(impl_, std::move(e), o);
}

namespace {

envelope request_envelope(std::string path, json data) {
  envelope e;
  e.path = std::move(path);
  e.data = std::move(data);
  return e;
}

std::string reply_text(const envelope& reply) { return reply.error ? *reply.error : std::string(); }

} // namespace

request_error::request_error(envelope reply)
    : std::system_error(make_error_code(error::request_failed), reply_text(reply)), reply_(std::move(reply)),
      text_(reply_text(reply_)) {
  if (auto it = reply_.extra.find("error_code"); it != reply_.extra.end() && it->is_string())
    remote_code_ = it->get<std::string>();
}

asio::awaitable<json> handler::request(std::string path, json data, request_options options) {
  return impl::request_op(impl_, request_envelope(std::move(path), std::move(data)), options, nullptr);
}

asio::awaitable<json> handler::request(std::string path, json data, std::chrono::milliseconds timeout) {
  request_options o;
  o.timeout = timeout;
  return request(std::move(path), std::move(data), o);
}

asio::awaitable<json> handler::request(std::string path, json data, request_options options, std::error_code& ec) {
  return impl::request_op(impl_, request_envelope(std::move(path), std::move(data)), options, &ec);
}

asio::awaitable<void> handler::subscribe_function(std::string topic, route::function fn,
                                                  std::chrono::milliseconds timeout) {
  return impl::on_strand(impl_, impl::do_subscribe(impl_, std::move(topic), std::move(fn), timeout));
}

asio::awaitable<bool> handler::unsubscribe(std::string topic, std::chrono::milliseconds timeout) {
  return impl::unsubscribe_op(impl_, std::move(topic), timeout);
}

std::vector<std::string> handler::topics() const { return impl_->subs_.topics(); }

asio::awaitable<void> handler::send(envelope e, std::error_code& ec) {
  return impl::into(send(std::move(e)), ec);
}

asio::awaitable<void> handler::close(std::uint16_t code, std::string reason) {
  return impl::on_strand(impl_, impl::do_close(impl_, code, std::move(reason)));
}

asio::awaitable<void> handler::close(std::uint16_t code, std::string reason, std::error_code& ec) {
  return impl::into(close(code, std::move(reason)), ec);
}

status handler::status() const {
  std::lock_guard lock(impl_->status_mutex_);
  return impl_->st_;
}

handshake_response handler::last_response() const {
  std::lock_guard lock(impl_->status_mutex_);
  return impl_->response_;
}

asio::awaitable<std::chrono::nanoseconds> handler::ping(std::string payload) {
  return impl::ping_op(impl_, std::move(payload), nullptr);
}

asio::awaitable<std::chrono::nanoseconds> handler::ping(std::string payload, std::error_code& ec) {
  return impl::ping_op(impl_, std::move(payload), &ec);
}

asio::awaitable<void> handler::wait_for(connection_state s) {
  return impl::on_strand(impl_, impl::do_wait_for(impl_, s));
}

asio::awaitable<void> handler::wait_for(connection_state s, std::error_code& ec) {
  return impl::into(wait_for(s), ec);
}

void handler::on_connecting(connecting_hook hook) { impl_->connecting_hook_ = std::move(hook); }

void handler::add_on_open(open_step step) { impl_->open_steps_.push_back(std::move(step)); }

json& handler::metadata() { return impl_->metadata_; }

} // namespace tether
