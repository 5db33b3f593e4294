#include <tether/protocol.hpp>

#include <tether/error.hpp>

#include <algorithm>
#include <cstring>

#include "crypto.hpp"
#include "utf8.hpp"

namespace tether {
namespace {

// Buffers larger than this are released once drained, so one large message
// does not pin memory for the rest of the connection.
constexpr std::size_t shrink_threshold = 64 * 1024;

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

bool is_valid_close_code(std::uint16_t code) noexcept {
  // RFC 6455 §7.4.1/§7.4.2 and the IANA registry: 1004-1006 and 1015 are
  // reserved or local-only; 1016-2999 are unassigned; 3000-4999 are for apps.
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

std::error_code check_close(unsigned code, std::string_view reason) noexcept {
  if (code == 0)
    return reason.empty() ? std::error_code() : make_error_code(error::invalid_close_code); // §5.5.1: a reason needs a code
  if (code > 0xFFFF || !is_valid_close_code(static_cast<std::uint16_t>(code)))
    return error::invalid_close_code;
  if (reason.size() > 123)
    return error::control_payload_too_big;
  if (!detail::is_valid_utf8(reason))
    return error::invalid_close_reason;
  return {};
}

const char* close_code_name(std::uint16_t code) noexcept {
  switch (code) {
  case close_code::normal: return "normal closure";
  case close_code::going_away: return "going away";
  case close_code::protocol_error: return "protocol error";
  case close_code::unsupported_data: return "unsupported data";
  case close_code::no_status: return "no status code";
  case close_code::abnormal: return "abnormal closure";
  case close_code::invalid_payload: return "invalid payload data";
  case close_code::policy_violation: return "policy violation";
  case close_code::message_too_big: return "message too big";
  case close_code::mandatory_extension: return "mandatory extension";
  case close_code::internal_error: return "internal error";
  case close_code::service_restart: return "service restart";
  case close_code::try_again_later: return "try again later";
  case 1014: return "bad gateway";
  case close_code::tls_handshake: return "TLS handshake failure";
  default: break;
  }
  if (code >= 3000 && code <= 3999)
    return "registered";
  if (code >= 4000 && code <= 4999)
    return "private";
  return "unknown";
}

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
    // faulted in again every time.
    if (in_.size() > std::max({shrink_threshold, opts_.initial_buffer_size, 2 * last_prepare_})) {
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
      queue_frame(opcode::pong, true, false, payload);
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

// ---- output ----

std::error_code protocol::queue_frame(opcode op, bool fin, bool rsv1, std::string_view payload) {
  frame_header h;
  h.fin = fin;
  h.rsv1 = rsv1;
  h.op = op;
  h.length = payload.size();
  h.masked = opts_.role == role::client; // §5.1: clients mask every frame
  if (h.masked) {
    if (key_pos_ + 4 > key_pool_.size()) {
      if (!detail::random_bytes({key_pool_.data(), key_pool_.size()}))
        return error::crypto_failed; // no unpredictable mask, no frame (RFC 6455 §5.3)
      key_pos_ = 0;
    }
    std::memcpy(h.key.data(), key_pool_.data() + key_pos_, 4);
    key_pos_ += 4;
  }
  std::array<std::uint8_t, max_header_size> head;
  const auto hn = encode_header(h, head);
  const auto start = out_.size();
  out_.resize(start + hn + payload.size()); // not zeroed: every byte is written below
  auto* dst = out_.data() + start;
  std::memcpy(dst, head.data(), hn);
  if (h.masked) // copy and mask in one pass over the payload
    mask_copy({reinterpret_cast<std::uint8_t*>(dst + hn), payload.size()}, as_bytes(payload.data(), payload.size()), h.key);
  else if (!payload.empty())
    std::memcpy(dst + hn, payload.data(), payload.size());
  return {};
}

std::error_code protocol::send_frame(opcode type, std::string_view payload, bool fin) {
  if (type == opcode::ping)
    return send_ping(payload);
  if (type == opcode::pong)
    return send_pong(payload);
  if (type == opcode::close)
    return send_close(close_code::normal, payload);
  if (close_sent_ || failed_)
    return error::closed;
  if (type == opcode::continuation && !out_message_)
    return error::no_message_in_progress;
  if (type != opcode::continuation && out_message_)
    return error::message_in_progress;

  bool rsv1 = false;
  if (type != opcode::continuation) {
    out_compressed_ = ext_ && ext_->begin_encode(type, payload.size(), fin);
    rsv1 = out_compressed_;
  }
  if (out_compressed_) {
    encoded_.clear();
    if (auto ec = ext_->encode(payload, fin, encoded_))
      return ec;
    payload = encoded_;
  }
  out_message_ = !fin;
  return queue_frame(type, fin, rsv1, payload);
}

std::error_code protocol::send_ping(std::string_view payload) {
  if (close_sent_ || failed_)
    return error::closed;
  if (payload.size() > 125)
    return error::control_payload_too_big;
  return queue_frame(opcode::ping, true, false, payload);
}

std::error_code protocol::send_pong(std::string_view payload) {
  if (close_sent_ || failed_)
    return error::closed;
  if (payload.size() > 125)
    return error::control_payload_too_big;
  return queue_frame(opcode::pong, true, false, payload);
}

std::error_code protocol::send_close(std::uint16_t code, std::string_view reason) {
  if (close_sent_ || failed_)
    return error::closed;
  if (auto ec = check_close(code, reason))
    return ec;
  if (code == 0) {
    close_sent_ = true;
    return queue_frame(opcode::close, true, false, {});
  }
  char payload[125];
  payload[0] = static_cast<char>(code >> 8);
  payload[1] = static_cast<char>(code & 0xFF);
  if (!reason.empty())
    std::memcpy(payload + 2, reason.data(), reason.size());
  close_sent_ = true;
  return queue_frame(opcode::close, true, false, {payload, reason.size() + 2});
}

void protocol::take_output(output_buffer& into) noexcept {
  into.clear();
  if (out_pos_ != 0) { // part of it was consumed already: hand over the rest
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_pos_));
    out_pos_ = 0;
  }
  out_.swap(into);
}

void protocol::consume_output(std::size_t n) noexcept {
  out_pos_ += std::min(n, out_.size() - out_pos_);
  if (out_pos_ == out_.size()) {
    // Keep the capacity while batches stay as large (no free-and-fault per write).
    const auto batch = out_.size();
    out_.clear();
    out_pos_ = 0;
    if (out_.capacity() > std::max(shrink_threshold, 2 * batch))
      decltype(out_)().swap(out_);
  } else if (out_pos_ > shrink_threshold && out_pos_ > out_.size() / 2) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_pos_)); // keep the unwritten tail; bounded copying
    out_pos_ = 0;
  }
}

} // namespace tether
