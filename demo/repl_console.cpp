#include "repl_console.hpp"

#include "utf8.hpp" // tether's validator (lib/, via tether_internal_dep)

#include <fmt/core.h>

#include <cstdio>

namespace repl {
namespace {

std::string_view colour_of(tone t) {
  switch (t) {
  case tone::plain: return {};
  case tone::incoming: return "\x1b[36m"; // cyan
  case tone::unrouted: return "\x1b[35m"; // magenta
  case tone::state: return "\x1b[33m";    // yellow
  case tone::problem: return "\x1b[31m";  // red
  case tone::ok: return "\x1b[32m";       // green
  case tone::error: return "\x1b[1;31m";  // bold red
  }
  return {};
}

/// Length of the valid UTF-8 sequence at s[i], 0 if none starts there.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size())
    return 0;
  return tether::detail::is_valid_utf8(s.substr(i, n)) ? n : 0;
}

} // namespace

void console::line(tone t, std::string_view text) {
  std::string out;
  const auto c = color_ ? colour_of(t) : std::string_view();
  out.reserve(text.size() + 16);
  out += c;
  out += text;
  if (!c.empty())
    out += "\x1b[0m";
  if (hook_ && hook_(out))
    return;
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const auto n = utf8_sequence(text, i);
    const bool c1 = n == 2 && c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0;
    if (n == 0 || c < 0x20 || c == 0x7f || c1) {
      // One escape per byte: an unusable byte, a C0/DEL control, or both bytes of a C1 control.
      const std::size_t bytes = c1 ? 2 : 1;
      for (std::size_t k = 0; k < bytes; ++k)
        out += fmt::format("\\x{:02x}", static_cast<unsigned char>(text[i + k]));
      i += bytes;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

std::string without_userinfo(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos)
    return std::string(url);
  const auto start = scheme + 3;
  const auto end = url.find_first_of("/?#", start);
  // The last '@' of the authority ends the userinfo, as tether::parse_url reads it.
  const auto at = url.substr(start, end == std::string_view::npos ? end : end - start).rfind('@');
  if (at == std::string_view::npos)
    return std::string(url);
  return std::string(url.substr(0, start)).append(url.substr(start + at + 1));
}

std::string one_line_json(const tether::json& j) {
  // dump() escapes C0 controls inside strings; DEL and C1 controls are left as
  // they are, and a terminal may act on them, so escape those too (valid JSON).
  const auto s = j.dump(-1, ' ', false, tether::json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0x7f) {
      out += "\\u007f";
    } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) < 0xa0) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(s[i + 1]));
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

} // namespace repl
