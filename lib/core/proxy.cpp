// Proxy selection and the proxy protocols' messages, without I/O.
//
// Decisions worth knowing:
//  - The proxy URL's host and port are parsed by parse_url (as ws://host:port),
//    so hosts, IPv6 literals and ports follow exactly the rules of WebSocket
//    URLs; the userinfo is split and percent-decoded here (see parse_proxy_url).
//  - An explicit stream_options::proxy ignores the environment entirely
//    (no_proxy included): what the program says wins over what it inherits.
//  - Loopback is not bypassed implicitly, unlike some tools: only no_proxy does.
#include "proxy.hpp"

#include <tether/error.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include "crypto.hpp"
#include "percent.hpp"

namespace tether::detail {

namespace {

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

std::string_view unbracket(std::string_view s) noexcept {
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']')
    return s.substr(1, s.size() - 2);
  return s;
}

// Same address, whatever the spelling ("::1" and "0:0::1").
bool same_ip(std::string_view a, std::string_view b) {
  unsigned char x[16] = {}, y[16] = {};
  const std::string sa(unbracket(a)), sb(unbracket(b));
  for (int family : {AF_INET, AF_INET6})
    if (inet_pton(family, sa.c_str(), x) == 1 && inet_pton(family, sb.c_str(), y) == 1)
      return std::equal(x, x + 16, y);
  return false;
}

void append_host_port(std::string& out, std::string_view host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  if (v6)
    out += '[';
  out += host;
  if (v6)
    out += ']';
  out += ':';
  out += std::to_string(port);
}

} // namespace

std::string proxy_url::display() const {
  std::string out = type == kind::http ? "http://" : type == kind::socks5 ? "socks5://" : "socks5h://";
  append_host_port(out, host, port);
  return out;
}

std::error_code parse_proxy_url(std::string_view text, proxy_url& out) {
  proxy_url p;
  std::string_view rest = text;
  if (const auto sep = text.find("://"); sep != std::string_view::npos) {
    const auto scheme = text.substr(0, sep);
    if (iequals(scheme, "http"))
      p.type = proxy_url::kind::http;
    else if (iequals(scheme, "socks5"))
      p.type = proxy_url::kind::socks5;
    else if (iequals(scheme, "socks5h"))
      p.type = proxy_url::kind::socks5h;
    else
      return error::proxy_bad_url; // https:// proxies (TLS to the proxy) are not supported
    rest = text.substr(sep + 3);
  }
  // The userinfo is split here, before decoding: SOCKS5 (RFC 1929) allows ':'
  // in a user name, which a Basic credential (and so parse_url) cannot carry.
  const auto authority = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = authority.substr(0, at);
    const auto colon = userinfo.find(':');
    std::string user, password;
    if (!percent_decode(userinfo.substr(0, colon), user) ||
        (colon != std::string_view::npos && !percent_decode(userinfo.substr(colon + 1), password)))
      return error::proxy_bad_url;
    const auto control = [](const std::string& v) {
      return std::any_of(v.begin(), v.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
    };
    if (user.empty() || control(user) || control(password) ||
        (p.type == proxy_url::kind::http && user.find(':') != std::string::npos))
      return error::proxy_bad_url;
    p.user = std::move(user);
    p.password = std::move(password);
    rest.remove_prefix(at + 1);
  }
  url u;
  if (parse_url("ws://" + std::string(rest), u) || u.target != "/")
    return error::proxy_bad_url;
  p.host = u.host;
  p.host_is_ip = u.host_is_ip;
  p.port = u.explicit_port ? u.port : 1080;
  out = std::move(p);
  return {};
}

bool no_proxy_matches(std::string_view list, std::string_view host) {
  host = unbracket(host);
  while (!list.empty()) {
    const auto comma = list.find(',');
    auto entry = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (entry.empty())
      continue;
    if (entry == "*")
      return true;
    entry = unbracket(entry);
    if (same_ip(entry, host))
      return true;
    if (entry.front() == '.')
      entry.remove_prefix(1);
    if (iequals(entry, host))
      return true;
    if (host.size() > entry.size() && host[host.size() - entry.size() - 1] == '.' &&
        iequals(host.substr(host.size() - entry.size()), entry))
      return true;
  }
  return false;
}

std::error_code select_proxy(const url& target, std::string_view setting, const env_lookup& env,
                             std::optional<proxy_url>& out, std::string& what) {
  out.reset();
  what.clear();
  if (setting == "none")
    return {};
  std::string_view chosen = setting;
  if (setting.empty()) {
    const char* const names[] = {target.secure ? "https_proxy" : "http_proxy", target.secure ? "HTTPS_PROXY" : nullptr,
                                 "all_proxy", "ALL_PROXY"};
    const char* value = nullptr;
    for (const char* name : names) {
      if (!name)
        continue;
      if (const char* v = env(name); v && *v) {
        value = v;
        what = name;
        break;
      }
    }
    if (!value)
      return {};
    const char* no_proxy = env("no_proxy");
    if (!no_proxy || !*no_proxy)
      no_proxy = env("NO_PROXY");
    if (no_proxy && no_proxy_matches(no_proxy, target.host))
      return {};
    chosen = value;
  }
  proxy_url p;
  if (auto ec = parse_proxy_url(chosen, p))
    return ec;
  out = std::move(p);
  return {};
}

std::string connect_request(const url& target, const proxy_url& proxy) {
  std::string authority;
  append_host_port(authority, target.host, target.port);
  std::string out = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
  if (proxy.user)
    out += "Proxy-Authorization: Basic " + base64_encode(*proxy.user + ":" + proxy.password) + "\r\n";
  out += "\r\n";
  return out;
}

std::error_code parse_connect_response(std::string_view head, int& status, std::string& reason) {
  // "HTTP/1.1 200 Connection established"
  const auto eol = head.find("\r\n");
  const auto line = head.substr(0, eol);
  if (eol == std::string_view::npos || !line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ')
    return error::proxy_malformed;
  int value = 0;
  for (char c : line.substr(9, 3)) {
    if (c < '0' || c > '9')
      return error::proxy_malformed;
    value = value * 10 + (c - '0');
  }
  if (line.size() > 12 && line[12] != ' ')
    return error::proxy_malformed;
  status = value;
  // The reason goes into error texts: printable ASCII only, bounded.
  reason.clear();
  for (char c : trim(line.size() > 12 ? line.substr(13) : std::string_view{}))
    if (c >= 0x20 && c < 0x7f && reason.size() < 100)
      reason += c;
  return {};
}

std::error_code connect_status_error(int status) {
  if (status >= 200 && status < 300)
    return {};
  // 407 is the standard answer; some proxies (tinyproxy) say 401 to wrong credentials.
  if (status == 407 || status == 401)
    return error::proxy_auth_required;
  if (status >= 500)
    return error::proxy_failed;
  return error::proxy_denied;
}

std::string socks5_greeting(const proxy_url& proxy) {
  if (proxy.user)
    return std::string("\x05\x02\x00\x02", 4);
  return std::string("\x05\x01\x00", 3);
}

std::error_code socks5_auth_request(const proxy_url& proxy, std::string& out) {
  const std::string& user = proxy.user ? *proxy.user : std::string();
  if (user.size() > 255 || proxy.password.size() > 255)
    return error::proxy_bad_url;
  out.clear();
  out += '\x01';
  out += static_cast<char>(user.size());
  out += user;
  out += static_cast<char>(proxy.password.size());
  out += proxy.password;
  return {};
}

namespace {
std::string socks5_request_head(char atyp) { return std::string("\x05\x01\x00", 3) + atyp; }
void append_port(std::string& out, std::uint16_t port) {
  out += static_cast<char>(port >> 8);
  out += static_cast<char>(port & 0xff);
}
} // namespace

std::string socks5_connect_request(std::string_view host, std::uint16_t port) {
  auto out = socks5_request_head('\x03');
  out += static_cast<char>(std::min<std::size_t>(host.size(), 255));
  out += host.substr(0, 255); // DNS names are at most 253 bytes
  append_port(out, port);
  return out;
}

std::string socks5_connect_request(const unsigned char* address, std::size_t size, std::uint16_t port) {
  auto out = socks5_request_head(size == 16 ? '\x04' : '\x01');
  out.append(reinterpret_cast<const char*>(address), size);
  append_port(out, port);
  return out;
}

std::size_t socks5_reply_size(const unsigned char* first5) {
  // VER REP RSV ATYP BND.ADDR BND.PORT(2)
  switch (first5[3]) {
  case 1: return 4 + 4 + 2;
  case 3: return 4 + 1 + first5[4] + 2;
  case 4: return 4 + 16 + 2;
  default: return 0;
  }
}

std::error_code socks5_reply_error(unsigned char rep) {
  switch (rep) {
  case 0: return {};
  case 1: return error::socks_general_failure;
  case 2: return error::socks_not_allowed;
  case 3: return error::socks_network_unreachable;
  case 4: return error::socks_host_unreachable;
  case 5: return error::socks_connection_refused;
  case 6: return error::socks_ttl_expired;
  case 7: return error::socks_command_not_supported;
  case 8: return error::socks_address_type_not_supported;
  default: return error::proxy_malformed;
  }
}

} // namespace tether::detail
