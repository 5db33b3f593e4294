#pragma once
// Proxies, sans-IO: which proxy a URL goes through (stream_options::proxy or
// the environment, as curl reads it), the HTTP CONNECT request and its answer,
// and the SOCKS5 messages (RFC 1928, RFC 1929). The stream does the I/O.
#include <tether/url.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace tether::detail {

struct proxy_url {
  enum class kind { http, socks5, socks5h };
  kind type = kind::http;
  std::string host;        // IPv6 without brackets
  std::uint16_t port = 1080;
  bool host_is_ip = false;
  std::optional<std::string> user; // from userinfo, percent-decoded; never logged
  std::string password;

  /// scheme://host:port, never the userinfo: what errors and logs name.
  std::string display() const;
};

/// Parses a proxy URL: http://, socks5://, socks5h://, or host[:port] (http),
/// with optional user:password@ (percent-decoded; a ':' in the user only for
/// SOCKS5, as Basic cannot carry it); port 1080 when not given (as curl). A
/// path other than "/" is error::proxy_bad_url; so is any other scheme.
std::error_code parse_proxy_url(std::string_view text, proxy_url& out);

/// Reads an environment variable; nullptr when unset.
using env_lookup = std::function<const char*(const char*)>;

/// The proxy for `target`: none when `setting` is "none"; the URL `setting`
/// names (the environment is not read); when `setting` is empty, curl's
/// variables: http_proxy (lower case only) for ws://, https_proxy then
/// HTTPS_PROXY for wss://, then all_proxy / ALL_PROXY, unless no_proxy /
/// NO_PROXY matches the host. `what` names the variable the proxy came from
/// (left empty for `setting`). Errors: proxy_bad_url.
std::error_code select_proxy(const url& target, std::string_view setting, const env_lookup& env,
                             std::optional<proxy_url>& out, std::string& what);

/// no_proxy matching: comma-separated entries, "*" for every host, a name
/// matching itself and its subdomains (a leading '.' is optional), an IP
/// address matching itself. Case-insensitive; IPv6 with or without brackets.
bool no_proxy_matches(std::string_view list, std::string_view host);

// ---- HTTP CONNECT (RFC 9110 §9.3.6) ----

/// "CONNECT host:port HTTP/1.1" with Host and, given a user, Proxy-Authorization: Basic.
std::string connect_request(const url& target, const proxy_url& proxy);
/// Reads the status of a CONNECT answer's header section (up to and including
/// the blank line): its code and reason. error::proxy_malformed when it is not
/// an HTTP/1.x status line.
std::error_code parse_connect_response(std::string_view head, int& status, std::string& reason);
/// The error for a CONNECT status: none for 2xx, proxy_auth_required for 407 (and 401),
/// proxy_failed for 5xx, proxy_denied for anything else.
std::error_code connect_status_error(int status);

// ---- SOCKS5 ----

/// The method selection message: no authentication, plus username/password when a user is set.
std::string socks5_greeting(const proxy_url& proxy);
/// RFC 1929 username/password request; error::proxy_bad_url if a part is over 255 bytes.
std::error_code socks5_auth_request(const proxy_url& proxy, std::string& out);
/// CONNECT to a domain name (socks5h: the proxy resolves) or to an address
/// given as 4 or 16 bytes (socks5: resolved here).
std::string socks5_connect_request(std::string_view host, std::uint16_t port);
std::string socks5_connect_request(const unsigned char* address, std::size_t size, std::uint16_t port);
/// Bytes of a CONNECT reply, known once its first 5 bytes have arrived (0 for a bad address type).
std::size_t socks5_reply_size(const unsigned char* first5);
/// The error for a reply code (RFC 1928 §6); none for 0 (succeeded).
std::error_code socks5_reply_error(unsigned char rep);

} // namespace tether::detail
