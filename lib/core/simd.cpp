// The versions behind simd.hpp. Each loop works on 64-byte blocks: SSE2 in
// four 16-byte registers, AVX2 in two, AVX-512 in one. Written with
// intrinsics rather than left to the compiler, which vectorises the portable
// loops at some optimisation levels and not at others.
#include "simd.hpp"

#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TETHER_X86_SIMD 1
#include <immintrin.h>
#else
#define TETHER_X86_SIMD 0
#endif

namespace tether::detail {
namespace {

constexpr std::uint64_t high_bits = 0x8080808080808080ull;

std::size_t mask_portable(std::uint8_t* out, const std::uint8_t* in, std::size_t n,
                                           std::uint64_t key8) noexcept {
  std::size_t done = 0;
  for (; n - done >= 64; done += 64) {
    std::uint64_t w[8];
    std::memcpy(w, in + done, 64); // the whole block before any store: in may be out
    for (auto& x : w)
      x ^= key8;
    std::memcpy(out + done, w, 64);
  }
  return done;
}

std::size_t ascii_portable(const unsigned char* p, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; n - i >= 64; i += 64) {
    std::uint64_t w[8];
    std::memcpy(w, p + i, 64);
    std::uint64_t any = 0;
    for (const auto x : w)
      any |= x;
    if (any & high_bits)
      break;
  }
  return i;
}

#if TETHER_X86_SIMD

std::size_t mask_sse2(std::uint8_t* out, const std::uint8_t* in, std::size_t n, std::uint64_t key8) noexcept {
  const __m128i k = _mm_set1_epi64x(static_cast<long long>(key8));
  std::size_t done = 0;
  for (; n - done >= 64; done += 64) {
    const auto* s = reinterpret_cast<const __m128i*>(in + done);
    auto* d = reinterpret_cast<__m128i*>(out + done);
    const __m128i a = _mm_loadu_si128(s), b = _mm_loadu_si128(s + 1), c = _mm_loadu_si128(s + 2),
                  e = _mm_loadu_si128(s + 3);
    _mm_storeu_si128(d, _mm_xor_si128(a, k));
    _mm_storeu_si128(d + 1, _mm_xor_si128(b, k));
    _mm_storeu_si128(d + 2, _mm_xor_si128(c, k));
    _mm_storeu_si128(d + 3, _mm_xor_si128(e, k));
  }
  return done;
}

__attribute__((target("avx2"))) std::size_t mask_avx2(std::uint8_t* out, const std::uint8_t* in, std::size_t n,
                                                      std::uint64_t key8) noexcept {
  const __m256i k = _mm256_set1_epi64x(static_cast<long long>(key8));
  std::size_t done = 0;
  for (; n - done >= 64; done += 64) {
    const auto* s = reinterpret_cast<const __m256i*>(in + done);
    auto* d = reinterpret_cast<__m256i*>(out + done);
    const __m256i a = _mm256_loadu_si256(s), b = _mm256_loadu_si256(s + 1);
    _mm256_storeu_si256(d, _mm256_xor_si256(a, k));
    _mm256_storeu_si256(d + 1, _mm256_xor_si256(b, k));
  }
  return done;
}

__attribute__((target("avx512f,avx512bw"))) std::size_t mask_avx512(std::uint8_t* out, const std::uint8_t* in,
                                                                     std::size_t n, std::uint64_t key8) noexcept {
  const __m512i k = _mm512_set1_epi64(static_cast<long long>(key8));
  std::size_t done = 0;
  for (; n - done >= 64; done += 64)
    _mm512_storeu_si512(out + done, _mm512_xor_si512(_mm512_loadu_si512(in + done), k));
  return done;
}

std::size_t ascii_sse2(const unsigned char* p, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; n - i >= 64; i += 64) {
    const auto* q = reinterpret_cast<const __m128i*>(p + i);
    const __m128i any = _mm_or_si128(_mm_or_si128(_mm_loadu_si128(q), _mm_loadu_si128(q + 1)),
                                     _mm_or_si128(_mm_loadu_si128(q + 2), _mm_loadu_si128(q + 3)));
    if (_mm_movemask_epi8(any) != 0)
      break;
  }
  return i;
}

__attribute__((target("avx2"))) std::size_t ascii_avx2(const unsigned char* p, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; n - i >= 64; i += 64) {
    const auto* q = reinterpret_cast<const __m256i*>(p + i);
    if (_mm256_movemask_epi8(_mm256_or_si256(_mm256_loadu_si256(q), _mm256_loadu_si256(q + 1))) != 0)
      break;
  }
  return i;
}

__attribute__((target("avx512f,avx512bw"))) std::size_t ascii_avx512(const unsigned char* p, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; n - i >= 64; i += 64)
    if (_mm512_movepi8_mask(_mm512_loadu_si512(p + i)) != 0)
      break;
  return i;
}

simd_level detect() noexcept {
  __builtin_cpu_init(); // callable before constructors have run
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
    return simd_level::avx512;
  if (__builtin_cpu_supports("avx2"))
    return simd_level::avx2;
  return simd_level::sse2;
}

#else

simd_level detect() noexcept { return simd_level::portable; }

#endif

} // namespace

simd_level best_simd_level() noexcept {
  static const simd_level level = detect();
  return level;
}

std::size_t mask_blocks(simd_level level, std::uint8_t* out, const std::uint8_t* in, std::size_t n,
                        std::uint64_t key8) noexcept {
#if TETHER_X86_SIMD
  switch (level) {
  case simd_level::avx512:
    return mask_avx512(out, in, n, key8);
  case simd_level::avx2:
    return mask_avx2(out, in, n, key8);
  case simd_level::sse2:
    return mask_sse2(out, in, n, key8);
  case simd_level::portable:
    break;
  }
#else
  (void)level;
#endif
  return mask_portable(out, in, n, key8);
}

std::size_t ascii_blocks(simd_level level, const unsigned char* p, std::size_t n) noexcept {
#if TETHER_X86_SIMD
  switch (level) {
  case simd_level::avx512:
    return ascii_avx512(p, n);
  case simd_level::avx2:
    return ascii_avx2(p, n);
  case simd_level::sse2:
    return ascii_sse2(p, n);
  case simd_level::portable:
    break;
  }
#else
  (void)level;
#endif
  return ascii_portable(p, n);
}

} // namespace tether::detail
