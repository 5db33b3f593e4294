// UTF-8 validation throughput next to memcpy of the same buffer (the floor: a
// validator must read every byte once), on ASCII and on mixed text, for 1 KiB,
// 64 KiB and 1 MiB. It calls the core's validators by their current names:
//   is_valid_utf8     whole-buffer check (utf8_feed: 8-byte ASCII fast path)
//   utf8_valid_prefix what the receive path runs on each chunk of a text message
// Target (issue 9): ASCII validation >= 0.5 x memcpy.
#if __has_include("utf8.hpp")
#include "utf8.hpp"
#else
#include "core/utf8.hpp"
#endif

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

template <class F>
double gb_per_s(std::size_t bytes_per_call, F&& f) {
  using clock = std::chrono::steady_clock;
  std::size_t calls = 0;
  const auto start = clock::now();
  auto now = start;
  do {
    for (int i = 0; i < 16; ++i)
      f();
    calls += 16;
    now = clock::now();
  } while (now - start < std::chrono::milliseconds(300));
  const double s = std::chrono::duration<double>(now - start).count();
  return static_cast<double>(bytes_per_call * calls) / s / 1e9;
}

/// `size` bytes of valid UTF-8: printable ASCII, or a mix in which about one
/// character in four is 2, 3 or 4 bytes long (Latin, CJK, emoji), as chat text.
std::string make_text(std::size_t size, bool mixed) {
  static const char* const pieces[] = {"hello ", "caf\xc3\xa9 ", "\xe2\x82\xac" "42 ", "\xe4\xb8\xad\xe6\x96\x87 ",
                                       "ok \xf0\x9f\x98\x80 ", "plain words "};
  std::string s;
  std::size_t k = 0;
  while (s.size() < size) {
    std::string piece = mixed ? pieces[k % 6] : std::string(1, static_cast<char>('a' + k % 26));
    if (s.size() + piece.size() > size)
      piece.assign(size - s.size(), ' ');
    s += piece;
    ++k;
  }
  return s;
}

} // namespace

int main() {
  bool ok = true;
  std::printf("%-6s %8s %13s %13s %13s %9s\n", "text", "size", "is_valid GB/s", "prefix GB/s", "memcpy GB/s",
              "best/copy");
  for (bool mixed : {false, true}) {
    for (std::size_t size : {std::size_t{1024}, std::size_t{64 * 1024}, std::size_t{1024 * 1024}}) {
      const std::string text = make_text(size, mixed);
      std::vector<char> dst(size);
      std::size_t valid = 0;
      const double whole = gb_per_s(size, [&] { valid += tether::detail::is_valid_utf8(text); });
      const double prefix = gb_per_s(size, [&] {
        std::uint32_t state = tether::detail::utf8_accept;
        valid += tether::detail::utf8_valid_prefix(state, text) == size && state == tether::detail::utf8_accept;
      });
      const double copy = gb_per_s(size, [&] {
        std::memcpy(dst.data(), text.data(), size);
        asm volatile("" : : "r"(dst.data()) : "memory"); // keep the copy
      });
      ok = ok && valid > 0 && tether::detail::is_valid_utf8(text);
      std::printf("%-6s %8zu %13.2f %13.2f %13.2f %9.3f\n", mixed ? "mixed" : "ascii", size, whole, prefix, copy,
                  std::max(whole, prefix) / copy);
    }
  }
  return ok ? 0 : 1;
}
