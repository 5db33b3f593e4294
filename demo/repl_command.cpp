#include "repl_command.hpp"

#include <tether/protocol.hpp>

#include <algorithm>
#include <charconv>

namespace repl {

command_line split_command(std::string_view whole) {
  std::string_view line = whole;
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  auto skip = [&](std::string_view v) {
    while (!v.empty() && blank(v.front()))
      v.remove_prefix(1);
    return v;
  };
  auto word = [&](std::string_view& v) {
    std::size_t n = 0;
    while (n < v.size() && !blank(v[n]))
      ++n;
    auto w = v.substr(0, n);
    v = skip(v.substr(n));
    return std::string(w);
  };
  while (!line.empty() && (blank(line.back()) || line.back() == '\r' || line.back() == '\n'))
    line.remove_suffix(1);
  line = skip(line);
  command_line c;
  if (line.empty() || line.front() == '#')
    return c;
  c.name = word(line);
  c.arg = word(line);
  c.rest = std::string(line);
  if (!line.empty())
    c.rest_column = static_cast<std::size_t>(line.data() - whole.data()) + 1;
  return c;
}

std::string arguments(const command_line& c) { return c.rest.empty() ? c.arg : c.arg + " " + c.rest; }

std::size_t json_depth(std::string_view text) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

bool parse_hex(std::string_view text, std::string& out, std::size_t& bad_column) {
  const auto digit = [](char c) -> int {
    int v = 0;
    auto [end, ec] = std::from_chars(&c, &c + 1, v, 16);
    return ec == std::errc() && end == &c + 1 ? v : -1;
  };
  std::string bytes;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ' ' || text[i] == '\t')
      continue;
    if (digit(text[i]) < 0 || i + 1 >= text.size() || digit(text[i + 1]) < 0) {
      // The offending character, or a lone last digit.
      bad_column = digit(text[i]) < 0 || i + 1 >= text.size() ? i + 1 : i + 2;
      return false;
    }
    bytes += static_cast<char>(digit(text[i]) * 16 + digit(text[i + 1]));
    ++i;
  }
  out = std::move(bytes);
  return true;
}

bool parse_ms(std::string_view s, long long& out) {
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0 || v > max_wait_ms)
    return false;
  out = v;
  return true;
}

bool parse_close_code(std::string_view s, long long& out) {
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0 || v > 65535 ||
      !tether::is_valid_close_code(static_cast<std::uint16_t>(v)))
    return false;
  out = v;
  return true;
}

} // namespace repl
