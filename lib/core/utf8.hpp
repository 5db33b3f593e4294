#pragma once
// Incremental UTF-8 validation (RFC 3629), used for text messages and close
// reasons (RFC 6455 §8.1). Fails on the first byte after which the input can no
// longer become valid, also when a sequence is split across chunks.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tether::detail {

inline constexpr std::uint32_t utf8_accept = 0;
inline constexpr std::uint32_t utf8_reject = 12;

/// Advances `state` over `bytes`; returns false (and leaves state == utf8_reject)
/// once the input is invalid. state == utf8_accept means "between characters".
bool utf8_feed(std::uint32_t& state, std::string_view bytes) noexcept;

/// Like utf8_feed, but returns how many bytes were accepted: bytes.size() when
/// all were, else the index of the first byte that made the input invalid.
/// ASCII runs go a machine word at a time (memory speed); multi-byte sequences
/// are range-checked; fuzz-utf8 checks it against utf8_valid_prefix_dfa.
std::size_t utf8_valid_prefix(std::uint32_t& state, std::string_view bytes) noexcept;

/// The same with Höhrmann's DFA one byte at a time: the reference the fast
/// validator is tested against.
std::size_t utf8_valid_prefix_dfa(std::uint32_t& state, std::string_view bytes) noexcept;

/// True if `bytes` is complete, valid UTF-8.
inline bool is_valid_utf8(std::string_view bytes) noexcept {
  std::uint32_t s = utf8_accept;
  return utf8_feed(s, bytes) && s == utf8_accept;
}

} // namespace tether::detail
