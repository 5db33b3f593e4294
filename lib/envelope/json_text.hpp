#pragma once
// Scans over JSON text for the envelope codec, at memory speed on long
// strings: a 1 MiB payload in an envelope is one string, and byte-at-a-time
// loops over it were most of the handler's CPU for large messages.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string_view>

namespace tether::detail {

/// True if `s` holds a byte that a JSON string must escape: '"', '\\' or a
/// control character (below 0x20).
inline bool needs_json_escape(std::string_view s) noexcept {
  // A flag per block, without a branch per byte, so the compiler vectorises
  // the inner loop; the block bounds the scan past the first hit.
  constexpr std::size_t block = 1024;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (std::size_t at = 0; at < s.size(); at += block) {
    const std::size_t n = std::min(block, s.size() - at);
    unsigned char bad = 0; // bytes, not ints: 16 lanes per SSE2 compare instead of 4
    for (std::size_t i = 0; i < n; ++i) {
      const unsigned char c = p[at + i];
      bad |= static_cast<unsigned char>((c < 0x20) | (c == '"') | (c == '\\'));
    }
    if (bad != 0)
      return true;
  }
  return false;
}

/// In `s`, the index of the quote that ends the string whose body starts at
/// `from` (escaped characters skipped), or npos if the string does not end.
/// Linear: each byte is searched once for a quote and once for a backslash
/// (a string of many escapes must not rescan the rest for each one).
inline std::size_t json_string_end(std::string_view s, std::size_t from) noexcept {
  std::size_t quote = 0;
  bool have_quote = false; // `quote` is the first quote at or after some earlier `from`
  while (from < s.size()) {
    if (!have_quote || quote < from) { // none yet, or the one found was escaped
      const auto* q = static_cast<const char*>(std::memchr(s.data() + from, '"', s.size() - from));
      if (!q)
        return std::string_view::npos;
      quote = static_cast<std::size_t>(q - s.data());
      have_quote = true;
    }
    const auto* escape = static_cast<const char*>(std::memchr(s.data() + from, '\\', quote - from));
    if (!escape)
      return quote;
    from = static_cast<std::size_t>(escape - s.data()) + 2; // the backslash and the character it escapes
  }
  return std::string_view::npos;
}

} // namespace tether::detail
