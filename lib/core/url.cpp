// ws:// and wss:// URLs (RFC 6455 §3, RFC 3986 syntax), parsed strictly.
//
// Decisions worth knowing:
//  - Anything without a "ws:" or "wss:" scheme, including text with no scheme at
//    all ("example.com"), is url_bad_scheme; "ws:" not followed by "//" is url_malformed.
//  - Control characters anywhere are url_malformed: CR/LF must never reach the request line.
//  - The fragment is dropped (RFC 6455 §3 forbids it in a WebSocket URI).
//  - Bytes in the path or query that may not appear in a request target (space,
//    non-ASCII, "<>{}|\^`) are percent-encoded; existing %XX is kept as written.
//  - Host names are restricted to RFC 3986 unreserved characters and lowercased;
//    percent-encoded or otherwise exotic host names are url_malformed. A host made
//    only of digits and dots must be a dotted-quad IPv4 address, so that the
//    resolver never reads "127.1" as 127.0.0.1.
//  - IPv6 literals are stored in inet_ntop's canonical form; zone ids ("%eth0")
//    are rejected.
//  - An empty port ("ws://h:/") is url_bad_port.

#include <tether/error.hpp>
#include <tether/url.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>

#include "crypto.hpp"
#include "percent.hpp"

namespace tether {

namespace detail {

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes; false on a truncated or non-hex escape.
bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size())
      return false;
    const int hi = hex_digit(in[i + 1]);
    const int lo = hex_digit(in[i + 2]);
    if (hi < 0 || lo < 0)
      return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

} // namespace detail

namespace {

using detail::percent_decode;

bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }


bool is_unreserved(char c) noexcept { return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~'; }

bool is_sub_delim(char c) noexcept {
  return c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' || c == '+' ||
         c == ',' || c == ';' || c == '=';
}

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

// Bytes that may stand unescaped in an origin-form request target.
bool is_target_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  if (u <= 0x20 || u >= 0x7f)
    return false;
  switch (c) {
  case '"': case '<': case '>': case '\\': case '^': case '`': case '{': case '|': case '}':
    return false;
  default:
    return true;
  }
}

std::uint16_t default_port(bool secure) noexcept { return secure ? 443 : 80; }

std::error_code parse_userinfo(std::string_view userinfo, std::optional<std::string>& authorization) {
  const auto valid = [](char c) { return is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '%'; };
  if (userinfo.empty() || !std::all_of(userinfo.begin(), userinfo.end(), valid))
    return error::url_malformed;
  // Split before decoding so an escaped %3A stays part of the user or password.
  const auto colon = userinfo.find(':');
  std::string user;
  std::string password;
  if (!percent_decode(userinfo.substr(0, colon), user) ||
      (colon != std::string_view::npos && !percent_decode(userinfo.substr(colon + 1), password)))
    return error::url_malformed;
  if (user.find(':') != std::string::npos)
    return error::url_malformed; // RFC 7617 §2: a user-id cannot contain ':'
  authorization = "Basic " + detail::base64_encode(user + ":" + password);
  return {};
}

std::error_code parse_host(std::string_view text, url& u) {
  if (text.starts_with('[')) {
    // IP-literal (RFC 3986 §3.2.2); IPvFuture is not supported.
    auto literal = std::string(text.substr(1, text.size() - 2));
    if (literal.find('%') != std::string::npos)
      return error::url_malformed; // zone ids mean nothing to a remote host
    in6_addr addr{};
    if (inet_pton(AF_INET6, literal.c_str(), &addr) != 1)
      return error::url_malformed;
    char buf[INET6_ADDRSTRLEN] = {};
    if (inet_ntop(AF_INET6, &addr, buf, sizeof buf) == nullptr)
      return error::url_malformed;
    u.host = buf;
    u.host_is_ip = true;
    return {};
  }
  if (text.empty() || !std::all_of(text.begin(), text.end(), is_unreserved))
    return error::url_malformed;
  u.host = lowercase(text);
  if (std::all_of(text.begin(), text.end(), [](char c) { return is_digit(c) || c == '.'; })) {
    in_addr addr{};
    if (inet_pton(AF_INET, u.host.c_str(), &addr) != 1)
      return error::url_malformed;
    u.host_is_ip = true;
  }
  return {};
}

std::error_code parse_port(std::string_view text, url& u) {
  if (text.empty() || text.size() > 5 || !std::all_of(text.begin(), text.end(), is_digit))
    return error::url_bad_port;
  unsigned value = 0;
  for (char c : text)
    value = value * 10 + static_cast<unsigned>(c - '0');
  if (value == 0 || value > 65535)
    return error::url_bad_port;
  u.port = static_cast<std::uint16_t>(value);
  u.explicit_port = true;
  return {};
}

} // namespace

std::error_code parse_url(std::string_view text, url& out, const url_options& options) {
  if (std::any_of(text.begin(), text.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      }))
    return error::url_malformed;

  url u;
  const auto colon = text.find(':');
  if (colon == std::string_view::npos)
    return error::url_bad_scheme;
  const auto scheme = lowercase(text.substr(0, colon));
  if (scheme == "ws")
    u.secure = false;
  else if (scheme == "wss")
    u.secure = true;
  else
    return error::url_bad_scheme;
  auto rest = text.substr(colon + 1);
  if (!rest.starts_with("//"))
    return error::url_malformed;
  rest.remove_prefix(2);

  const auto authority_end = rest.find_first_of("/?#");
  auto authority = rest.substr(0, authority_end);
  const auto tail = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);

  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    if (!options.userinfo_to_authorization)
      return error::url_userinfo;
    if (auto ec = parse_userinfo(authority.substr(0, at), u.authorization))
      return ec;
    authority.remove_prefix(at + 1);
  }

  std::string_view host_text = authority;
  std::string_view port_text;
  bool has_port = false;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos)
      return error::url_malformed;
    host_text = authority.substr(0, close + 1);
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return error::url_malformed;
      has_port = true;
      port_text = after.substr(1);
    }
  } else if (const auto c = authority.find(':'); c != std::string_view::npos) {
    host_text = authority.substr(0, c);
    has_port = true;
    port_text = authority.substr(c + 1);
  }
  if (auto ec = parse_host(host_text, u))
    return ec;
  if (has_port) {
    if (auto ec = parse_port(port_text, u))
      return ec;
  } else {
    u.port = default_port(u.secure);
  }

  // Path and query become the request target; the fragment is dropped.
  std::string target;
  for (char c : tail.substr(0, tail.find('#'))) {
    if (is_target_char(c)) {
      target += c;
    } else {
      constexpr char hex[] = "0123456789ABCDEF";
      const auto b = static_cast<unsigned char>(c);
      target += '%';
      target += hex[b >> 4];
      target += hex[b & 0xf];
    }
  }
  // Appends, not insert(0, ...) or "/" + s: GCC 12 at -O3 warns (-Wrestrict,
  // a false positive) on those, in every consumer's build log.
  u.target.clear();
  if (target.empty() || target.front() != '/')
    u.target += '/';
  u.target += target;

  out = std::move(u);
  return {};
}

namespace {

// IPv6 literals in brackets (RFC 3986 §3.2.2), built by appending: see above.
void append_host(std::string& out, const std::string& host) {
  const bool v6 = host.find(':') != std::string::npos;
  if (v6)
    out += '[';
  out += host;
  if (v6)
    out += ']';
}

void append_port(std::string& out, std::uint16_t port) {
  out += ':';
  out += std::to_string(port);
}

} // namespace

std::string url::host_header() const {
  std::string out;
  append_host(out, host);
  if (explicit_port && port != default_port(secure))
    append_port(out, port);
  return out;
}

std::string url::to_string() const {
  std::string out = secure ? "wss://" : "ws://";
  append_host(out, host);
  if (explicit_port)
    append_port(out, port);
  out += target;
  return out;
}

} // namespace tether
