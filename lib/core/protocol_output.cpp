// tether::protocol, output: frames queued as bytes (a client's payload copied
// and masked in one pass), and the output buffer handed to the I/O layer.
#include <tether/protocol.hpp>

#include <tether/error.hpp>

#include <algorithm>
#include <cstring>

#include "crypto.hpp"

namespace tether {

std::error_code protocol::make_header(opcode op, bool fin, bool rsv1, std::uint64_t size, frame_header& h) {
  h.fin = fin;
  h.rsv1 = rsv1;
  h.op = op;
  h.length = size;
  h.masked = opts_.role == role::client; // §5.1: clients mask every frame
  if (h.masked) {
    if (!detail::pooled_random_bytes(h.key))
      return error::crypto_failed; // no unpredictable mask, no frame (RFC 6455 §5.3)
  }
  return {};
}

std::error_code protocol::queue_frame(opcode op, bool fin, bool rsv1, std::string_view payload) {
  frame_header h;
  if (auto ec = make_header(op, fin, rsv1, payload.size(), h))
    return ec;
  std::array<std::uint8_t, max_header_size> head;
  const auto hn = encode_header(h, head);
  const auto start = out_.size();
  out_.resize(start + hn + payload.size()); // not zeroed: every byte is written below
  auto* dst = out_.data() + start;
  std::memcpy(dst, head.data(), hn);
  if (h.masked) // copy and mask in one pass over the payload
    mask_copy({reinterpret_cast<std::uint8_t*>(dst + hn), payload.size()}, {reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()}, h.key);
  else if (!payload.empty())
    std::memcpy(dst + hn, payload.data(), payload.size());
  return {};
}

// A pong for a ping just parsed. Pongs still waiting at the end of the output
// are a backlog: past max_pong_backlog they are dropped (none of their bytes
// has left) and only this, the latest, is answered (RFC 6455 §5.5.3).
void protocol::queue_auto_pong(std::string_view payload) {
  if (pong_run_count_ == 0 || out_.size() != pong_run_end_) { // something else was queued after them
    pong_run_begin_ = out_.size();
    pong_run_count_ = 0;
  } else if (pong_run_count_ >= std::max<std::size_t>(opts_.max_pong_backlog, 1)) {
    out_.resize(pong_run_begin_);
    pong_run_count_ = 0;
  }
  if (queue_frame(opcode::pong, true, false, payload))
    return; // no mask, no frame: the ping goes unanswered, as a lost one would
  ++pong_run_count_;
  pong_run_end_ = out_.size();
}

std::error_code protocol::send_frame(opcode type, std::string_view payload, bool fin) {
  if (type == opcode::ping)
    return send_ping(payload);
  if (type == opcode::pong)
    return send_pong(payload);
  if (type == opcode::close)
    return send_close(close_code::normal, payload);
  if (auto ec = check_data_frame(type))
    return ec;

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

std::error_code protocol::check_data_frame(opcode type) const noexcept {
  if (close_sent_ || failed_)
    return error::closed;
  if (type == opcode::continuation && !out_message_)
    return error::no_message_in_progress;
  if (type != opcode::continuation && out_message_)
    return error::message_in_progress;
  return {};
}

std::error_code protocol::begin_frame(opcode type, std::uint64_t size, bool fin, payload_mask& mask) {
  if (type != opcode::text && type != opcode::binary && type != opcode::continuation)
    return make_error_code(std::errc::invalid_argument);
  if (ext_)
    return make_error_code(std::errc::operation_not_supported);
  if (auto ec = check_data_frame(type))
    return ec;
  frame_header h;
  if (auto ec = make_header(type, fin, false, size, h))
    return ec;
  std::array<std::uint8_t, max_header_size> head;
  const auto hn = encode_header(h, head);
  out_.insert(out_.end(), head.begin(), head.begin() + static_cast<std::ptrdiff_t>(hn));
  out_message_ = !fin;
  mask = {h.masked, h.key};
  return {};
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
  pong_run_count_ = 0; // handed over: no longer ours to drop
  into.clear();
  if (out_pos_ != 0) { // part of it was consumed already: hand over the rest
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_pos_));
    out_pos_ = 0;
  }
  out_.swap(into);
}

void protocol::consume_output(std::size_t n) noexcept {
  pong_run_count_ = 0; // offsets move; what is left may be half written
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
