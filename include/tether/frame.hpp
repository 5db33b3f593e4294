#pragma once
/// @file
/// RFC 6455 §5.2 frame headers: encode and decode, plus payload masking.

#include <tether/export.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

namespace tether {

/// Frame opcodes (RFC 6455 §5.2).
enum class opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

/// "continuation", "text", "binary", "close", "ping", "pong"; "reserved" for others.
TETHER_API const char* to_string(opcode op) noexcept;

/// True for close, ping and pong (opcodes with the high bit set).
constexpr bool is_control(opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }

/// A frame header as it appears on the wire.
struct frame_header {
  bool fin = true;
  bool rsv1 = false;
  bool rsv2 = false;
  bool rsv3 = false;
  opcode op = opcode::text;
  bool masked = false;
  std::uint64_t length = 0;
  std::array<std::uint8_t, 4> key{};
};

/// Longest possible header: 2 + 8 (length) + 4 (mask key).
inline constexpr std::size_t max_header_size = 14;

/// Writes `h` in its minimal form into `out`; returns the number of bytes written (2..14).
TETHER_API std::size_t encode_header(const frame_header& h, std::span<std::uint8_t, max_header_size> out) noexcept;

/// Result of decode_header: tri-state as in tungstenite.
/// consumed == 0 && !ec → need more bytes; consumed > 0 → header complete; ec → violation.
struct header_result {
  std::size_t consumed = 0;
  std::error_code ec;
};

/// Decodes a header from the front of `in`. Checks what the header alone can tell:
/// unknown opcodes, non-minimal lengths, a 64-bit length with its top bit set,
/// and control frames that are fragmented or over 125 bytes (§5.5). Role, RSV and
/// continuation rules need connection state and live in tether::protocol.
TETHER_API header_result decode_header(std::span<const std::uint8_t> in, frame_header& out) noexcept;

/// XORs `data` with `key`, as if `data` started `offset` bytes into the payload
/// (so a payload can be masked in chunks). Works on 8- or 16-byte words.
TETHER_API void apply_mask(std::span<std::uint8_t> data, std::array<std::uint8_t, 4> key, std::size_t offset = 0) noexcept;

/// Writes `in` masked with `key` to `out` in one pass (as a copy followed by
/// apply_mask, without touching the bytes twice); masks min(out, in) bytes.
/// The spans must not overlap unless they are the same.
TETHER_API void mask_copy(std::span<std::uint8_t> out, std::span<const std::uint8_t> in, std::array<std::uint8_t, 4> key,
                          std::size_t offset = 0) noexcept;

} // namespace tether
