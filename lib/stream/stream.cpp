// tether::stream: the public API, the stream's state and errors. Its jobs live
// beside this file (stream_impl.hpp lists them): a reader and a writer per
// connection (state machines, reader.cpp and writer.cpp) around the sans-IO
// protocol core.
#include "stream_impl.hpp"

namespace tether {

detail::live_counts& detail::live() noexcept {
  static live_counts counts;
  return counts;
}

handshake_error::handshake_error(handshake_response response)
    : std::system_error(make_error_code(error::handshake_rejected),
                        "HTTP " + std::to_string(response.status) + " " + response.reason),
      response_(std::move(response)) {}

// The connection's state changed (close, error, end): every waiter re-checks;
// once the writer can write no more, callbacks learn their message failed.
void stream::impl::notify() {
  changed_.notify_all();
  readable_.notify_all();
  room_.notify_all();
  const bool ended = failing() || writer_done_ || state_ == state::closed;
  std::vector<std::function<void(std::error_code)>> failed; // called after the loop: they may queue more
  for (auto it = send_waits_.begin(); it != send_waits_.end();) {
    if (!it->callback) {
      it->done->notify_one();
      ++it;
    } else if (ended) {
      failed.push_back(std::move(it->callback));
      it = send_waits_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& cb : failed)
    cb(ended_error());
}

void stream::impl::log(log_level level, const std::string& text) const {
  if (opts_.log)
    opts_.log(level, text);
}

void stream::impl::reset() {
  protocol_options po;
  po.role = role::client;
  po.max_message_size = opts_.max_message_size;
  po.max_frame_size = opts_.max_frame_size;
  po.max_pong_backlog = opts_.max_pong_backlog; // the core answers pings, the writer sends its output
  po.initial_buffer_size = min_read; // what the input buffer shrinks back to
  proto_ = protocol(po);
  response_ = {};
  subprotocol_.clear();
  error_ = {};
  detail_.clear();
  writer_done_ = false;
  fresh_input_ = false;
  inbox_.clear();
  inbox_bytes_ = 0;
  close_delivered_ = false;
  peer_close_code_ = 0;
  peer_close_reason_.clear();
  sendq_.clear();
  sendq_bytes_ = 0;
  framed_seq_ = written_seq_ = next_seq_;
  frame_left_ = 0;
  pings_.clear();
}

// Records the first error that ends the connection.
void stream::impl::set_error(std::error_code ec, std::string detail) {
  if (error_)
    return;
  error_ = ec;
  detail_ = std::move(detail);
  log(log_level::warning, "connection error: " + message_of_error());
}

std::string stream::impl::message_of_error() const {
  if (!error_)
    return {};
  return detail_.empty() ? error_.message() : detail_ + ": " + error_.message();
}

// Ends the connection now: the socket closes, reader and writer finish.
void stream::impl::fail(std::error_code ec, std::string detail) {
  set_error(ec, std::move(detail));
  if (state_ != state::closed) // an ended connection stays ended (a late internal error)
    state_ = state::failing;
  if (tr_)
    tr_->close();
  wake_writer();
  wake_reader();
  notify();
}

void stream::impl::report(impl& s, std::error_code ec, std::error_code* out) {
  if (out) {
    *out = ec;
    return;
  }
  if (!ec)
    return;
  if (ec == error::handshake_rejected && s.response_.status != 0)
    throw handshake_error(s.response_);
  throw_if(ec, ec == s.error_ ? s.detail_ : std::string());
}

// `code` is unsigned, not std::uint16_t: g++ 12 miscompiles coroutines that take
// a 16-bit parameter (the frame is resumed uninitialised).
// ---- public API ----

stream::stream(executor_type executor, stream_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {}

stream::~stream() {
  if (impl_)
    impl_->abort_now();
}

stream::stream(stream&&) noexcept = default;
stream& stream::operator=(stream&& other) noexcept {
  if (this != &other) {
    if (impl_)
      impl_->abort_now();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

stream::executor_type stream::get_executor() const noexcept { return impl_->ex_; }
const stream_options& stream::options() const noexcept { return impl_->opts_; }
bool stream::is_open() const noexcept { return impl_->state_ == impl::state::open && !impl_->error_; }
const handshake_response& stream::response() const noexcept { return impl_->response_; }
std::string_view stream::subprotocol() const noexcept { return impl_->subprotocol_; }
std::error_code stream::last_error() const noexcept { return impl_->error_; }
std::string stream::last_error_message() const { return impl_->message_of_error(); }
std::string stream::last_error_context() const { return impl_->detail_; }
void stream::abort() noexcept { impl_->abort_now(); }

// Each public operation hands back the impl's coroutine directly (no wrapper
// frame). With ec == nullptr the coroutine throws instead of reporting.
asio::awaitable<void> stream::connect(std::string_view url, std::error_code& ec) {
  return impl::do_connect(impl_, std::string(url), &ec);
}
asio::awaitable<void> stream::connect(std::string_view url) {
  return impl::do_connect(impl_, std::string(url), nullptr);
}
asio::awaitable<read_result> stream::read(std::string& buffer, std::error_code& ec) {
  return impl::do_read(impl_, buffer, &ec, false);
}
asio::awaitable<read_result> stream::read(std::string& buffer) { return impl::do_read(impl_, buffer, nullptr, false); }
asio::awaitable<read_result> stream::read_some(std::string& buffer, std::error_code& ec) {
  return impl::do_read(impl_, buffer, &ec, true);
}
asio::awaitable<read_result> stream::read_some(std::string& buffer) {
  return impl::do_read(impl_, buffer, nullptr, true);
}
asio::awaitable<void> stream::send(std::string_view data, message_kind kind, std::error_code& ec) {
  return impl::do_send(impl_, data, kind, &ec);
}
asio::awaitable<void> stream::send(std::string_view data, message_kind kind) {
  return impl::do_send(impl_, data, kind, nullptr);
}

asio::awaitable<void> detail::stream_access::send_checked_text(stream& s, std::string_view data,
                                                               std::error_code& ec) {
  return stream::impl::do_send(s.impl_, data, message_kind::text, &ec, true);
}

std::error_code detail::stream_access::start_send(stream& s, std::string_view data, message_kind kind,
                                                  bool utf8_checked, std::function<void(std::error_code)> done) {
  return s.impl_->start_send(data, kind, utf8_checked, std::move(done));
}

bool detail::stream_access::idle_and_open(const stream& s) noexcept {
  const auto& i = *s.impl_;
  return i.state_ == stream::impl::state::open && !i.writer_done_ && !i.failing() && i.sendq_.empty();
}

std::size_t detail::stream_access::queued_bytes(const stream& s) noexcept { return s.impl_->sendq_bytes_; }

std::size_t detail::stream_access::buffered_read_bytes(const stream& s) noexcept { return s.impl_->inbox_bytes_; }
asio::awaitable<std::chrono::nanoseconds> stream::ping(std::string_view payload, std::chrono::milliseconds timeout,
                                                       std::error_code& ec) {
  return impl::do_ping(impl_, std::string(payload), timeout, &ec);
}
asio::awaitable<std::chrono::nanoseconds> stream::ping(std::string_view payload, std::chrono::milliseconds timeout) {
  return impl::do_ping(impl_, std::string(payload), timeout, nullptr);
}
asio::awaitable<void> stream::close(std::uint16_t code, std::string_view reason, std::error_code& ec) {
  return impl::do_close(impl_, code, std::string(reason), &ec);
}
asio::awaitable<void> stream::close(std::error_code& ec) {
  return impl::do_close(impl_, close_code::normal, std::string(), &ec);
}
asio::awaitable<void> stream::close(std::uint16_t code, std::string_view reason) {
  return impl::do_close(impl_, code, std::string(reason), nullptr);
}

} // namespace tether
