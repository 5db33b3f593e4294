#pragma once
// HTTP/1.1 field and header-section helpers for the opening handshake
// (RFC 7230 tokens, lists, OWS, field values; the CRLF CRLF scan). Private to
// lib/handshake.cpp, kept apart so that file holds the handshake rules only.
#include <tether/error.hpp>
#include <tether/handshake.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tether::detail {

inline constexpr std::string_view crlf = "\r\n";

inline char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

// RFC 7230 §3.2.6 tchar.
inline bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  switch (c) {
  case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
  case '-': case '.': case '^': case '_': case '`': case '|': case '~':
    return true;
  default:
    return false;
  }
}

inline bool is_token(std::string_view s) noexcept { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

inline bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

inline std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back()))
    s.remove_suffix(1);
  return s;
}

// field-content / reason-phrase characters: HTAB, SP, VCHAR, obs-text.
inline bool is_field_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return c == '\t' || (u >= 0x20 && u != 0x7f);
}

// Calls f(element) for each non-empty, trimmed element of a #list value. Empty
// elements are skipped, as RFC 7230 §7 asks of recipients.
template <class F> void for_each_list_element(std::string_view value, F&& f) {
  while (true) {
    const auto comma = value.find(',');
    const auto element = trim_ows(value.substr(0, comma));
    if (!element.empty())
      f(element);
    if (comma == std::string_view::npos)
      return;
    value.remove_prefix(comma + 1);
  }
}

// True if any `name` field lists `token` (case-insensitively), e.g. Connection: keep-alive, Upgrade.
inline bool has_token(const http_headers& headers, std::string_view name, std::string_view token) {
  bool found = false;
  for (const auto& f : headers.fields)
    if (iequals(f.name, name))
      for_each_list_element(f.value, [&](std::string_view e) { found = found || iequals(e, token); });
  return found;
}

inline std::size_t count_fields(const http_headers& headers, std::string_view name) {
  return static_cast<std::size_t>(
      std::count_if(headers.fields.begin(), headers.fields.end(), [&](const http_header& f) { return iequals(f.name, name); }));
}

// All `name` fields joined with ", " (RFC 7230 §3.2.2: equivalent to one field).
inline std::string combined_value(const http_headers& headers, std::string_view name) {
  std::string out;
  for (const auto& f : headers.fields) {
    if (!iequals(f.name, name))
      continue;
    if (!out.empty())
      out += ", ";
    out += f.value;
  }
  return out;
}

// Appends the bytes of `in` that belong to the header section to `head`.
// `used` is how many were taken; `complete` is set once the blank line is in.
inline std::error_code scan_head(std::string& head, std::string_view in, std::size_t limit, std::size_t& used,
                          bool& complete) {
  used = 0;
  complete = false;
  while (used < in.size()) {
    const auto nl = in.find('\n', used);
    const auto end = nl == std::string_view::npos ? in.size() : nl + 1;
    if (head.size() + (end - used) > limit)
      return error::handshake_too_large;
    head.append(in.substr(used, end - used));
    used = end;
    if (nl == std::string_view::npos)
      break;
    if (head.size() < 2 || head[head.size() - 2] != '\r')
      return error::handshake_malformed; // bare LF
    if (head.ends_with("\r\n\r\n")) {
      complete = true;
      break;
    }
  }
  return {};
}

// Splits a complete header section into its start line and fields.
inline std::error_code split_head(std::string_view head, std::string_view& start_line, http_headers& out) {
  head.remove_suffix(2); // the blank line's CRLF; every remaining line ends in CRLF
  // A CR must begin a CRLF; LFs were already checked by scan_head.
  for (std::size_t i = 0; i < head.size(); ++i)
    if (head[i] == '\r' && (i + 1 == head.size() || head[i + 1] != '\n'))
      return error::handshake_malformed;
  auto eol = head.find(crlf);
  start_line = head.substr(0, eol);
  head.remove_prefix(eol + 2);
  while (!head.empty()) {
    eol = head.find(crlf);
    const auto line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    // field-name ":" OWS field-value OWS; a leading space (obs-fold) or a space
    // before the colon makes the name a non-token.
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon)))
      return error::handshake_malformed;
    const auto value = trim_ows(line.substr(colon + 1));
    if (!std::all_of(value.begin(), value.end(), is_field_char))
      return error::handshake_malformed;
    out.add(std::string(line.substr(0, colon)), std::string(value));
  }
  return {};
}

// Strict Content-Length: digits only, no overflow.
inline bool parse_content_length(std::string_view s, std::uint64_t& out) {
  if (s.empty())
    return false;
  std::uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (n > (std::numeric_limits<std::uint64_t>::max() - d) / 10)
      return false;
    n = n * 10 + d;
  }
  out = n;
  return true;
}

inline std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

inline void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append(crlf);
}

inline std::string join_extensions(const std::vector<extension_offer>& extensions) {
  std::string out;
  for (const auto& e : extensions) {
    if (!out.empty())
      out += ", ";
    out += format_extension(e);
  }
  return out;
}

} // namespace tether::detail
