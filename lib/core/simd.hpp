#pragma once
// The vector loops of masking and UTF-8 checking, one version per x86-64
// level (SSE2, which every x86-64 CPU has, AVX2 and AVX-512), chosen at run
// time for the CPU at hand: the library runs at memory speed without a -march
// that would make it unusable on older CPUs. Off x86-64 a portable version
// (machine words) is used. Every version can be asked for by level, so tests
// check all that this CPU can run, not only the best.
#include <cstddef>
#include <cstdint>

namespace tether::detail {

enum class simd_level { portable, sse2, avx2, avx512 };

/// The best level this CPU (and operating system, for the register state) and
/// this build support; decided once.
simd_level best_simd_level() noexcept;

/// Masks the whole 64-byte blocks of `in` into `out` (which may be `in`) with
/// `key8`, the 4-byte key twice over; returns how many bytes it masked.
/// `level` must not exceed best_simd_level().
std::size_t mask_blocks(simd_level level, std::uint8_t* out, const std::uint8_t* in, std::size_t n,
                        std::uint64_t key8) noexcept;

/// How many of the first `n` bytes at `p` are ASCII, counted in whole 64-byte
/// blocks: it stops at the first block with a byte of 0x80 or over.
std::size_t ascii_blocks(simd_level level, const unsigned char* p, std::size_t n) noexcept;

} // namespace tether::detail
