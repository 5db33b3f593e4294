#include "crypto.hpp"

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstring>

#include <pthread.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace tether::detail {

namespace {

constexpr std::size_t pool_size = 4096;

// Constant-initialised: no guard on each thread's first use.
struct random_pool {
  unsigned char bytes[pool_size];
  std::size_t left; // the unused bytes are the last `left`
};
thread_local random_pool pool{};

// Runs in a forked child, in the thread that forked: its pool is the parent's.
void forget_pool() noexcept {
  pool.left = 0;
}

const unsigned char* bytes(std::string_view s) noexcept {
  return reinterpret_cast<const unsigned char*>(s.data());
}

bool is_base64_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

} // namespace

std::string base64_encode(std::string_view in) {
  // EVP_EncodeBlock takes an int length; feed it multiples of 3 bytes so the
  // pieces concatenate into one valid encoding.
  constexpr std::size_t chunk = 3 * 1024 * 1024;
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  while (!in.empty()) {
    const std::size_t n = std::min(in.size(), chunk);
    const std::size_t at = out.size();
    out.resize(at + (n + 2) / 3 * 4 + 1); // +1: EVP_EncodeBlock writes a NUL
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + at), bytes(in),
                                        static_cast<int>(n));
    out.resize(at + static_cast<std::size_t>(written));
    in.remove_prefix(n);
  }
  return out;
}

bool base64_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 != 0 || in.size() > static_cast<std::size_t>(INT_MAX))
    return false;
  if (in.empty())
    return true;
  // EVP_DecodeBlock skips surrounding whitespace and does not report padding,
  // so the strict checks happen here first.
  std::size_t pad = 0;
  if (in.back() == '=')
    pad = in[in.size() - 2] == '=' ? 2 : 1;
  for (std::size_t i = 0; i < in.size() - pad; ++i)
    if (!is_base64_char(in[i]))
      return false;
  out.resize(in.size() / 4 * 3);
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(in), static_cast<int>(in.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size())
    return false;
  out.resize(out.size() - pad);
  // Reject non-canonical forms ("QR==" for "QQ=="): one key, one spelling.
  return base64_encode(out) == in;
}

bool sha1(std::string_view in, std::array<unsigned char, 20>& digest) {
  unsigned int len = 0;
  return EVP_Digest(in.data(), in.size(), digest.data(), &len, EVP_sha1(), nullptr) == 1 && len == digest.size();
}

bool random_bytes(std::span<unsigned char> out) {
  // RAND_bytes takes an int count.
  constexpr std::size_t chunk = 1 << 30;
  while (!out.empty()) {
    const std::size_t n = std::min(out.size(), chunk);
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1)
      return false;
    out = out.subspan(n);
  }
  return true;
}

bool pooled_random_bytes(std::span<unsigned char> out) {
  if (out.size() > pool_size / 16)
    return random_bytes(out);
  static const bool fork_safe = pthread_atfork(nullptr, nullptr, forget_pool) == 0;
  if (!fork_safe)
    return random_bytes(out);
  // (left > pool_size: a fork from a signal handler mid-draw; start over.)
  if (pool.left < out.size() || pool.left > pool_size) {
    pool.left = 0; // a failed refill leaves nothing to hand out
    if (!random_bytes(pool.bytes))
      return false;
    pool.left = pool_size;
  }
  auto* from = pool.bytes + pool_size - pool.left;
  std::memcpy(out.data(), from, out.size());
  std::memset(from, 0, out.size()); // handed out once: not left behind in memory either
  pool.left -= out.size();
  return true;
}

} // namespace tether::detail
