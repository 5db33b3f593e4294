// Connecting a stream: the transport's phases (resolve, TCP, proxy tunnel,
// TLS), the opening handshake, then the reader and the writer.
#include "stream_impl.hpp"

namespace tether {

// `why` receives what a person needs beyond the code: the status of a
// rejection, how much arrived before TCP closed, a TLS answer to ws://.
asio::awaitable<std::error_code> stream::impl::handshake(const url& u, std::string& why) {
  const auto key = generate_key();
  if (key.empty()) {
    why = "OpenSSL's RAND_bytes failed: no Sec-WebSocket-Key";
    co_return make_error_code(error::crypto_failed);
  }
  client_request req;
  req.host = u.host_header();
  req.target = u.target;
  req.origin = opts_.origin;
  req.subprotocols = opts_.subprotocols;
  req.headers = opts_.headers;
  if (u.authorization && !req.headers.find("Authorization"))
    req.headers.add("Authorization", *u.authorization);
  // permessage-deflate: offered unless off; installed if the server accepts.
  std::unique_ptr<extension> ext;
  if (opts_.compression != compression::off)
    ext = make_permessage_deflate(opts_.deflate);
  if (ext)
    req.extensions = ext->offers();
  const auto text = build_request(req, key);
  if (opts_.log)
    for (const auto& line : detail::request_log_lines(text))
      log(log_level::debug, line);
  if (auto [ec, n] = co_await tr_->write(asio::buffer(text)); ec)
    co_return ec;

  response_parser parser(opts_.handshake);
  // Not zeroed, and freed with this frame once the handshake is done.
  auto buf = std::make_unique_for_overwrite<char[]>(handshake_read);
  char* const head = buf.get();
  std::string_view leftover;
  std::size_t received = 0;
  for (;;) {
    auto [ec, n] = co_await tr_->read_some(asio::buffer(head, handshake_read));
    if (ec) {
      if (is_eof(ec)) {
        auto r = parser.finish();
        if (r.done && !r.ec)
          break;
        if (why.empty())
          why = "the server closed the connection after " + std::to_string(received) + " bytes of response";
        co_return error::handshake_no_response;
      }
      co_return ec;
    }
    // A TLS record (alert 0x15 or handshake 0x16, version 3.x) where HTTP was expected.
    if (received == 0 && !u.secure && n >= 2 && (head[0] == 0x15 || head[0] == 0x16) && head[1] == 0x03)
      why = "the server answered with TLS: try wss://";
    received += n;
    auto r = parser.feed({head, n});
    if (r.ec)
      co_return r.ec;
    if (r.done) {
      leftover = std::string_view(head + r.consumed, n - r.consumed);
      break;
    }
  }
  response_ = std::move(parser.response());
  if (opts_.log)
    for (const auto& line : detail::response_log_lines(response_))
      log(log_level::debug, line);
  if (auto ec = validate_response(response_, key, req)) {
    if (ec == error::handshake_rejected)
      why = "HTTP " + std::to_string(response_.status) + (response_.reason.empty() ? "" : " " + response_.reason);
    co_return ec;
  }
  subprotocol_ = response_.subprotocol;
  for (const auto& accepted : response_.extensions) {
    // validate_response admits only names we offered, each once.
    if (!ext || accepted.name != req.extensions.front().name)
      continue;
    if (auto ec = ext->accept(accepted)) {
      why = "the server's " + format_extension(accepted) + " is not what was offered";
      co_return ec;
    }
    proto_.set_extension(std::move(ext));
  }
  // A server may send its first frames in the same packet as the 101.
  if (!leftover.empty())
    proto_.feed(leftover);
  co_return std::error_code{};
}

asio::awaitable<void> stream::impl::connect_op(std::string_view text, std::error_code& ec) {
  // A connection that already failed may still be winding down: wait for it.
  while ((state_ != state::closed || running_ > 0) && (error_ || ending())) {
    co_await changed_.wait();
    auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
    if (cancelled(cs_now)) {
      ec = asio::error::operation_aborted;
      co_return;
    }
  }
  if (state_ != state::closed || running_ > 0) {
    ec = asio::error::already_connected;
    co_return;
  }
  reset();
  url u;
  if ((ec = parse_url(text, u))) {
    set_error(ec);
    co_return;
  }
  if (opts_.compression == compression::on && !deflate_available()) {
    set_error(error::compression_unavailable);
    ec = error_;
    co_return;
  }
  if (opts_.compression != compression::off) {
    try {
      (void)make_permessage_deflate(opts_.deflate); // settings out of range: fail before connecting
    } catch (const std::invalid_argument& e) {
      set_error(std::make_error_code(std::errc::invalid_argument), e.what());
      ec = error_;
      co_return;
    }
  }
  if (u.secure) {
    std::string bad_file; // before any connection: a configuration error
    if (auto e = detail::check_tls_files(opts_.tls, bad_file)) {
      set_error(e, bad_file);
      ec = error_;
      co_return;
    }
  }
  state_ = state::connecting;
  log(log_level::info, "connecting to " + u.to_string());
  tr_ = std::make_unique<detail::transport>(ex_);
  std::string where;
  std::error_code e = co_await tr_->open(u, opts_, where);
  if (e)
    set_error(e, where);
  if (!e && u.secure && opts_.tls.insecure_skip_verify && !std::exchange(insecure_warned_, true))
    log(log_level::warning, "TLS certificate and host name checks are off (tls.insecure_skip_verify): "
                            "for tests only, anyone on the path can read and change this connection");
  if (!e && u.secure) {
    std::string why;
    e = co_await tr_->start_tls(u, opts_.tls, opts_.tls_timeout, why);
    if (e)
      set_error(e, "TLS with " + u.to_string() + (why.empty() ? "" : ": " + why));
  }
  if (!e) {
    std::string why;
    auto r = co_await detail::with_timeout(handshake(u, why), opts_.handshake_timeout);
    e = r ? *r : make_error_code(error::handshake_timeout);
    if (e)
      set_error(e, "WebSocket handshake with " + u.to_string() + (why.empty() ? "" : ": " + why));
  }
  if (!e && failing()) // aborted as the handshake completed
    e = error_ ? error_ : make_error_code(asio::error::operation_aborted);
  const bool ok = !e;
  if (!ok) {
    ec = error_;
    tr_->close();
    state_ = state::closed;
    co_return;
  }
  state_ = state::open;
  log(log_level::info, "open: " + u.to_string() + (subprotocol_.empty() ? "" : " (" + subprotocol_ + ")"));
  running_ = 2;
  ++run_;
  start_reader();
  start_writer();
}

asio::awaitable<void> stream::impl::do_connect(std::shared_ptr<impl> self, std::string url, std::error_code* out) {
  std::error_code ec;
  co_await self->connect_op(url, ec);
  report(*self, ec, out);
}

} // namespace tether
