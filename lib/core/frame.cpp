#include <tether/frame.hpp>

#include <tether/error.hpp>

namespace tether {

std::size_t encode_header(const frame_header& h, std::span<std::uint8_t, max_header_size> out) noexcept {
  out[0] = static_cast<std::uint8_t>((h.fin ? 0x80 : 0) | (h.rsv1 ? 0x40 : 0) | (h.rsv2 ? 0x20 : 0) |
                                     (h.rsv3 ? 0x10 : 0) | static_cast<std::uint8_t>(h.op));
  const std::uint8_t mask_bit = h.masked ? 0x80 : 0;
  std::size_t n = 2;
  // RFC 6455 §5.2: the minimal number of bytes must be used for the length.
  if (h.length < 126) {
    out[1] = static_cast<std::uint8_t>(mask_bit | h.length);
  } else if (h.length <= 0xFFFF) {
    out[1] = mask_bit | 126;
    out[2] = static_cast<std::uint8_t>(h.length >> 8);
    out[3] = static_cast<std::uint8_t>(h.length);
    n = 4;
  } else {
    out[1] = mask_bit | 127;
    for (int i = 0; i < 8; ++i)
      out[2 + i] = static_cast<std::uint8_t>(h.length >> (56 - 8 * i));
    n = 10;
  }
  if (h.masked) {
    for (std::size_t i = 0; i < 4; ++i)
      out[n + i] = h.key[i];
    n += 4;
  }
  return n;
}

header_result decode_header(std::span<const std::uint8_t> in, frame_header& h) noexcept {
  if (in.size() < 2)
    return {};
  const std::uint8_t b0 = in[0];
  const std::uint8_t b1 = in[1];
  h.fin = (b0 & 0x80) != 0;
  h.rsv1 = (b0 & 0x40) != 0;
  h.rsv2 = (b0 & 0x20) != 0;
  h.rsv3 = (b0 & 0x10) != 0;
  const std::uint8_t op = b0 & 0x0F;
  switch (op) {
  case 0x0: case 0x1: case 0x2: case 0x8: case 0x9: case 0xA:
    break;
  default:
    return {0, error::unknown_opcode};
  }
  h.op = static_cast<opcode>(op);
  h.masked = (b1 & 0x80) != 0;
  const std::uint8_t len7 = b1 & 0x7F;

  if (is_control(h.op)) {
    // §5.5: control frames are never fragmented and carry at most 125 bytes.
    if (!h.fin)
      return {0, error::fragmented_control};
    if (len7 > 125)
      return {0, error::control_too_big};
  }

  std::size_t n = 2;
  if (len7 < 126) {
    h.length = len7;
  } else if (len7 == 126) {
    if (in.size() < 4)
      return {};
    h.length = (std::uint64_t{in[2]} << 8) | in[3];
    if (h.length < 126)
      return {0, error::non_minimal_length};
    n = 4;
  } else {
    if (in.size() < 10)
      return {};
    std::uint64_t len = 0;
    for (std::size_t i = 0; i < 8; ++i)
      len = (len << 8) | in[2 + i];
    if (len >> 63)
      return {0, error::length_msb_set};
    if (len <= 0xFFFF)
      return {0, error::non_minimal_length};
    h.length = len;
    n = 10;
  }
  if (h.masked) {
    if (in.size() < n + 4)
      return {};
    for (std::size_t i = 0; i < 4; ++i)
      h.key[i] = in[n + i];
    n += 4;
  } else {
    h.key = {};
  }
  return {n, {}};
}

} // namespace tether
