// tether::protocol, input: bytes read from the socket parsed into events,
// with every check RFC 6455 asks of a peer's frames (output: protocol_output.cpp).
#include <tether/protocol.hpp>

#include <tether/error.hpp>

#include <algorithm>
#include <cstring>

#include "utf8.hpp"

namespace tether {
namespace {


// Designated initializers with omitted members trip -Wmissing-field-initializers on g++ 12.
event make_event(event::kind what, opcode type, std::string_view data = {}, std::uint16_t code = 0,
                 std::error_code ec = {}) {
  event e;
  e.what = what;
  e.type = type;
  e.data = data;
  e.code = code;
  e.error = ec;
  return e;
}

std::span<const std::uint8_t> as_bytes(const char* p, std::size_t n) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(p), n};
}

} // namespace

protocol::protocol(protocol_options options) : opts_(options) { in_.resize(opts_.initial_buffer_size); }
protocol::~protocol() = default;
protocol::protocol(protocol&&) noexcept = default;
protocol& protocol::operator=(protocol&&) noexcept = default;

void protocol::set_extension(std::unique_ptr<tether::extension> ext) { ext_ = std::move(ext); }

// ---- input ----

void protocol::release_consumed() noexcept {
  in_begin_ += pending_release_;
  pending_release_ = 0;
  if (in_begin_ == in_end_) {
    in_begin_ = in_end_ = 0;
    // Shrink only when the reads have become small again: a buffer drained
    // between the reads of one large message would otherwise be freed and
    // faulted in again every time. No floor of shrink_threshold here: the
    // caller's read sizes say what it needs (an idle stream reads with a
    // small buffer), and a drained buffer over twice that is given back.
    if (in_.size() > std::max(opts_.initial_buffer_size, 2 * last_prepare_)) {
      decltype(in_)(opts_.initial_buffer_size).swap(in_);
    }
  }
}

std::span<char> protocol::prepare(std::size_t n) {
  last_prepare_ = n;
  release_consumed();
  if (in_.size() - in_end_ < n) {
    // Move unread bytes to the front before growing.
    if (in_begin_ > 0) {
      std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
      in_end_ -= in_begin_;
      in_begin_ = 0;
    }
    if (in_.size() - in_end_ < n)
      in_.resize(std::max(in_end_ + n, in_.size() * 2));
  }
  return {in_.data() + in_end_, in_.size() - in_end_};
}

void protocol::commit(std::size_t n) noexcept { in_end_ += std::min(n, in_.size() - in_end_); }

void protocol::feed(std::string_view bytes) {
  auto buf = prepare(bytes.size());
  std::memcpy(buf.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

std::error_code protocol::check_header(const frame_header& h) const {
  if (opts_.role == role::client && h.masked)
    return error::masked_frame_from_server;
  if (opts_.role == role::server && !h.masked)
    return error::unmasked_frame_from_client;
  // RSV2/RSV3 are never claimed; RSV1 only by an extension, on a message's first frame.
  if (h.rsv2 || h.rsv3)
    return error::reserved_bits;
  if (h.rsv1 && (!ext_ || is_control(h.op) || h.op == opcode::continuation))
    return error::reserved_bits;
  if (h.op == opcode::continuation && !in_message_)
    return error::unexpected_continuation;
  if ((h.op == opcode::text || h.op == opcode::binary) && in_message_)
    return error::expected_continuation;
  if (opts_.max_frame_size != 0 && h.length > opts_.max_frame_size)
    return error::frame_too_big;
  return {};
}

std::optional<event> protocol::next_event() {
  release_consumed();
  if (done_)
    return std::nullopt;
  if (pending_error_)
    return fail(std::exchange(pending_error_, {}));
  if (end_pending_) {
    end_pending_ = false;
    in_message_ = false;
    return make_event(event::kind::message_end, message_type_);
  }
  for (;;) {
    release_consumed();
    const std::size_t available = in_end_ - in_begin_;
    if (!in_frame_) {
      frame_header h;
      const auto r = decode_header(as_bytes(in_.data() + in_begin_, available), h);
      if (r.ec)
        return fail(r.ec);
      if (r.consumed == 0)
        return std::nullopt;
      if (auto ec = check_header(h))
        return fail(ec);
      in_begin_ += r.consumed;
      in_frame_ = true;
      frame_ = h;
      frame_remaining_ = h.length;
      if (h.op == opcode::text || h.op == opcode::binary) {
        in_message_ = true;
        message_type_ = h.op;
        message_compressed_ = h.rsv1;
        message_size_ = 0;
        utf8_ = detail::utf8_accept;
        return make_event(event::kind::message_begin, h.op);
      }
      continue;
    }
    if (is_control(frame_.op)) {
      if (available < frame_remaining_)
        return std::nullopt; // at most 125 bytes: wait for the whole payload
      auto* p = in_.data() + in_begin_;
      const auto n = static_cast<std::size_t>(frame_remaining_);
      if (frame_.masked)
        apply_mask({reinterpret_cast<std::uint8_t*>(p), n}, frame_.key);
      in_frame_ = false;
      pending_release_ = n;
      return control_event({p, n});
    }
    if (frame_remaining_ > 0 && available == 0)
      return std::nullopt;
    if (auto ev = data_event(available))
      return ev;
    if (done_)
      return std::nullopt;
  }
}

// Emits the next chunk of a data frame. Returns nothing when the chunk produced
// no bytes (an empty frame, or an extension still buffering); the caller loops.
std::optional<event> protocol::data_event(std::size_t available) {
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(available, frame_remaining_));
  auto* p = in_.data() + in_begin_;
  if (frame_.masked)
    apply_mask({reinterpret_cast<std::uint8_t*>(p), n}, frame_.key,
               static_cast<std::size_t>(frame_.length - frame_remaining_));
  frame_remaining_ -= n;
  pending_release_ = n;
  const bool frame_end = frame_remaining_ == 0;
  const bool message_end = frame_end && frame_.fin;
  if (frame_end)
    in_frame_ = false;

  std::string_view chunk{p, n};
  std::error_code ext_err; // reported after the bytes decoded before it, like the checks below
  if (message_compressed_) {
    decoded_.clear();
    const std::size_t limit =
        opts_.max_message_size == 0 ? std::string::npos : opts_.max_message_size - static_cast<std::size_t>(message_size_);
    if (auto ec = ext_->decode(chunk, message_end, decoded_, limit))
      ext_err = ec == error::message_too_big ? ec : make_error_code(error::extension_failed);
    chunk = decoded_;
  }
  std::error_code err;
  const auto keep = admit(chunk, message_end, ext_err, err);
  if (err) {
    if (keep == 0)
      return fail(err);
    pending_error_ = err;
    end_pending_ = false;
    return make_event(event::kind::data, message_type_, chunk.substr(0, keep));
  }
  if (chunk.empty()) {
    if (!message_end)
      return std::nullopt;
    in_message_ = false;
    return make_event(event::kind::message_end, message_type_);
  }
  end_pending_ = message_end;
  return make_event(event::kind::data, message_type_, chunk);
}

// Limits and UTF-8 fail at the exact byte: whatever came before it is
// delivered first, so every chunking of the input gives the same events.
// Returns how many bytes of `chunk` the message keeps; `err` names what
// follows them (a violation, or the extension's `ext_err`).
std::size_t protocol::admit(std::string_view chunk, bool message_end, std::error_code ext_err, std::error_code& err) {
  std::size_t keep = chunk.size();
  if (opts_.max_message_size != 0 && message_size_ + chunk.size() > opts_.max_message_size) {
    keep = opts_.max_message_size - static_cast<std::size_t>(message_size_);
    err = error::message_too_big;
  }
  if (message_type_ == opcode::text && opts_.validate_utf8) {
    const auto valid = detail::utf8_valid_prefix(utf8_, chunk.substr(0, keep));
    if (valid < keep) {
      keep = valid;
      err = error::invalid_utf8;
    } else if (!err && !ext_err && message_end && utf8_ != detail::utf8_accept) {
      err = error::invalid_utf8; // ends mid-character
    }
  }
  if (!err && ext_err)
    err = ext_err;
  message_size_ += keep;
  return keep;
}

std::uint64_t protocol::direct_payload() const noexcept {
  const bool buffered = in_end_ - in_begin_ != pending_release_;
  if (done_ || !in_frame_ || is_control(frame_.op) || message_compressed_ || end_pending_ || pending_error_ || buffered)
    return 0;
  return frame_remaining_;
}

std::size_t protocol::commit_payload(std::span<char> bytes) {
  release_consumed();
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), direct_payload()));
  if (n == 0)
    return 0;
  if (frame_.masked)
    apply_mask({reinterpret_cast<std::uint8_t*>(bytes.data()), n}, frame_.key,
               static_cast<std::size_t>(frame_.length - frame_remaining_));
  frame_remaining_ -= n;
  const bool message_end = frame_remaining_ == 0 && frame_.fin;
  if (frame_remaining_ == 0)
    in_frame_ = false;
  std::error_code err;
  const auto keep = admit({bytes.data(), n}, message_end, {}, err);
  if (err)
    pending_error_ = err; // next_event() reports it (and fails the connection)
  else
    end_pending_ = message_end; // next_event() reports the message's end
  return keep;
}

std::optional<event> protocol::control_event(std::string_view payload) {
  switch (frame_.op) {
  case opcode::ping:
    if (opts_.auto_pong && !close_sent_)
      queue_auto_pong(payload);
    return make_event(event::kind::ping, opcode::ping, payload);
  case opcode::pong:
    return make_event(event::kind::pong, opcode::pong, payload);
  default:
    break;
  }
  // Close (RFC 6455 §5.5.1, §7.4).
  std::uint16_t code = close_code::no_status;
  std::string_view reason;
  if (payload.size() == 1)
    return fail(error::bad_close_payload);
  if (payload.size() >= 2) {
    code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                      static_cast<unsigned char>(payload[1]));
    if (!is_valid_close_code(code))
      return fail(error::bad_close_code);
    reason = payload.substr(2);
    if (opts_.validate_utf8 && !detail::is_valid_utf8(reason))
      return fail(error::invalid_close_reason);
  }
  close_received_ = true;
  done_ = true; // nothing may follow a close frame (§5.5.1)
  if (!close_sent_) {
    // Echo the code we received (§5.5.1), without the reason.
    send_close(code == close_code::no_status ? 0 : code);
  }
  return make_event(event::kind::close, opcode::close, reason, code);
}

std::optional<event> protocol::fail(std::error_code ec) {
  failed_ = true;
  done_ = true;
  const auto code = close_code_for(ec);
  if (!close_sent_) {
    close_sent_ = true;
    char payload[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
    queue_frame(opcode::close, true, false, {payload, 2});
  }
  return make_event(event::kind::error, opcode::close, {}, code, ec);
}

} // namespace tether
