#pragma once
// Private crypto helpers for the handshake and URL code. Everything here is a
// thin wrapper over OpenSSL: tether never implements a primitive itself.

#include <array>
#include <span>
#include <string>
#include <string_view>

namespace tether::detail {

/// Standard base64 (RFC 4648 §4) with padding.
std::string base64_encode(std::string_view in);

/// Strict base64 decode: length a multiple of 4, alphabet characters only,
/// at most two '=' and only at the end, and the canonical encoding (unused
/// bits zero). On failure returns false and leaves `out` unspecified.
bool base64_decode(std::string_view in, std::string& out);

/// SHA-1 digest of `in` (only for RFC 6455 §4.2.2 Sec-WebSocket-Accept).
/// False if OpenSSL cannot compute it (e.g. a provider configuration that
/// disables SHA-1): callers report error::crypto_failed, never a wrong digest.
/// (No exceptions here: the core also builds with -fno-exceptions.)
[[nodiscard]] bool sha1(std::string_view in, std::array<unsigned char, 20>& digest);

/// Fills `out` from OpenSSL's CSPRNG; false if RAND_bytes fails.
[[nodiscard]] bool random_bytes(std::span<unsigned char> out);

/// The same bytes for small requests (frame masks, handshake nonces), served
/// from a per-thread pool that random_bytes() refills 4 KiB at a time: each
/// RAND_bytes call costs thousands of instructions whatever its size. Bytes
/// are handed out once; a child made by fork() starts with an empty pool,
/// never with its parent's bytes (pthread_atfork: not after a raw clone).
[[nodiscard]] bool pooled_random_bytes(std::span<unsigned char> out);

} // namespace tether::detail
