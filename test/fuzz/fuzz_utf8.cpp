// libFuzzer target for the fast UTF-8 validator: fed the same bytes, cut into
// the same chunks, it must accept exactly what the reference DFA accepts, fail
// at the same byte and carry the same state between chunks.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_assert.hpp"
#include "utf8.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  // The first byte picks the chunk length (0 = whole), the rest is the text.
  const std::size_t chunk = data[0];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::uint32_t fast = tether::detail::utf8_accept;
  std::uint32_t reference = tether::detail::utf8_accept;
  std::size_t pos = 0;
  do {
    const auto piece = text.substr(pos, chunk == 0 ? std::string_view::npos : chunk);
    const auto a = tether::detail::utf8_valid_prefix(fast, piece);
    const auto b = tether::detail::utf8_valid_prefix_dfa(reference, piece);
    TETHER_FUZZ_ASSERT(a == b);
    TETHER_FUZZ_ASSERT(fast == reference);
    if (a != piece.size())
      break;
    pos += piece.size();
  } while (pos < text.size());
  std::uint32_t whole = tether::detail::utf8_accept;
  std::uint32_t whole_ref = tether::detail::utf8_accept;
  TETHER_FUZZ_ASSERT(tether::detail::utf8_feed(whole, text) ==
                     (tether::detail::utf8_valid_prefix_dfa(whole_ref, text) == text.size()));
  TETHER_FUZZ_ASSERT(whole == whole_ref);
  return 0;
}
