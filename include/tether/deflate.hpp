#pragma once
/// @file
/// permessage-deflate (RFC 7692) through zlib: the extension the stream
/// negotiates when stream_options::compression allows it. Sans-IO, like the
/// rest of the core; usable with tether::protocol directly.

#include <tether/export.hpp>
#include <tether/extension.hpp>

#include <cstddef>
#include <memory>

namespace tether {

/// Whether a stream offers permessage-deflate.
enum class compression {
  automatic, ///< Offered when tether was built with zlib (the default).
  on,        ///< Offered; connect() fails with error::compression_unavailable without zlib.
  off,       ///< Never offered.
};

/// "automatic", "on" or "off".
TETHER_API const char* to_string(compression c) noexcept;

/// permessage-deflate settings. Our direction (what we compress) defaults to a
/// modest window and memory level, as Python websockets does, so that an open
/// connection costs little; zlib's streams are created on first use.
struct deflate_options {
  int level = 6;            ///< zlib compression level, 0 (store) to 9.
  int mem_level = 5;        ///< zlib memLevel, 1 to 9: compressor memory (5: about 16 KiB).
  int window_bits = 12;     ///< Our compressor's LZ77 window, 9 to 15 (12: 4 KiB, plus 8 KiB of hash).
  /// Messages whose first frame is shorter than this and final go uncompressed
  /// (RFC 7692 allows it per message); 0 compresses everything.
  std::size_t threshold = 32;
  /// Reset our compressor after each message (announced as client_no_context_takeover).
  bool client_no_context_takeover = false;
  /// Ask the server to reset its compressor after each message; our
  /// decompressor then keeps no state between messages.
  bool server_no_context_takeover = false;
  /// Ask the server for a window of at most this many bits (8 to 15; 15 asks
  /// nothing). Saves the server's memory: our decompressor always keeps a
  /// 32 KiB window (docs/options.md says why).
  int server_max_window_bits = 15;
};

/// True when this build has zlib (permessage-deflate can be negotiated).
TETHER_API bool deflate_available() noexcept;

/// The permessage-deflate extension, client role; nullptr without zlib.
/// Throws std::invalid_argument for settings out of range (built with
/// -fno-exceptions: returns nullptr for them too).
TETHER_API std::unique_ptr<extension> make_permessage_deflate(const deflate_options& options = {});

} // namespace tether
