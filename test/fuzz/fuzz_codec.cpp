// libFuzzer target for the envelope codecs: the input is decoded as a text
// frame by json_codec and field_codec("type", "payload") and as a binary frame
// (path-prefixed binary envelopes, and raw).
// A rejection appends nothing and gives a short printable reason; every decoded
// envelope encodes, and decoding that frame again gives back exactly it.
// Whatever the text fast path accepts, the full parser decodes to the same envelope.
#include <tether/codec.hpp>
#include <tether/error.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_assert.hpp"
#include "text_decode.hpp"

namespace {

void check(const tether::codec& codec, std::string_view frame, bool binary, bool raw_binary = false) {
  std::vector<tether::envelope> out(1);
  out[0].path = "sentinel";
  std::string reason;
  const auto ec = codec.decode(frame, binary, out, reason);
  if (ec) {
    TETHER_FUZZ_ASSERT(ec == tether::error::invalid_envelope);
    TETHER_FUZZ_ASSERT(!(binary && raw_binary)); // a raw binary frame always decodes
    TETHER_FUZZ_ASSERT(out.size() == 1 && out[0].path == "sentinel");
    TETHER_FUZZ_ASSERT(!reason.empty() && reason.size() <= tether::codec::max_reason_size);
    for (const char c : reason)
      TETHER_FUZZ_ASSERT(c >= 0x20 && c < 0x7f);
    return;
  }
  TETHER_FUZZ_ASSERT(!out.empty() && out[0].path == "sentinel");
  if (binary)
    TETHER_FUZZ_ASSERT(out.size() == 2 && out[1].binary && out[1].data.is_null());
  if (binary && raw_binary)
    TETHER_FUZZ_ASSERT(out[1].bytes == frame && out[1].path.empty());
  if (binary && !raw_binary) // [length][path][payload], nothing lost
    TETHER_FUZZ_ASSERT(2 + out[1].path.size() + out[1].bytes.size() == frame.size());

  for (std::size_t i = 1; i < out.size(); ++i) {
    const auto& e = out[i];
    TETHER_FUZZ_ASSERT(e.binary == binary);
    TETHER_FUZZ_ASSERT(e.extra.is_object());
    std::string encoded = "x"; // encode appends
    bool binary_frame = !e.binary;
    TETHER_FUZZ_ASSERT(!codec.encode(e, encoded, binary_frame));
    TETHER_FUZZ_ASSERT(binary_frame == e.binary && encoded.front() == 'x');
    const std::string_view payload = std::string_view(encoded).substr(1);

    std::vector<tether::envelope> again;
    std::string why;
    TETHER_FUZZ_ASSERT(!codec.decode(payload, binary_frame, again, why));
    TETHER_FUZZ_ASSERT(again.size() == 1 && again[0] == e);

    // Encoding is deterministic: the re-decoded envelope encodes to the same bytes.
    std::string twice;
    TETHER_FUZZ_ASSERT(!codec.encode(again[0], twice, binary_frame));
    TETHER_FUZZ_ASSERT(twice == payload);
  }
}

// The fast path is a shortcut, never a second opinion: on every frame it takes,
// the full parser agrees, envelope for envelope.
void check_flat(std::string_view frame, tether::detail::envelope_fields names) {
  tether::envelope flat;
  if (!tether::detail::decode_text_flat(frame, names, flat))
    return;
  std::vector<tether::envelope> full;
  std::string reason;
  TETHER_FUZZ_ASSERT(!tether::detail::decode_text_full(frame, names, full, reason));
  TETHER_FUZZ_ASSERT(full.size() == 1 && full[0] == flat);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tether::json_codec json_codec;
  static const tether::field_codec typed("type", "payload");
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  check(json_codec, frame, false);
  check(typed, frame, false);
  check_flat(frame, {"path", "data"});
  check_flat(frame, {"type", "payload"});
  check(json_codec, frame, true);
  static const tether::json_codec raw_codec(tether::binary_format::raw);
  check(raw_codec, frame, true, true);
  return 0;
}
