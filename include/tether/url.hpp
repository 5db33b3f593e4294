#pragma once
/// @file
/// ws:// and wss:// URLs (RFC 6455 §3).

#include <tether/export.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace tether {

/// A parsed WebSocket URL.
struct TETHER_API url {
  bool secure = false;        ///< wss://
  std::string host;           ///< Host name or IP literal, IPv6 without brackets.
  std::uint16_t port = 0;     ///< Explicit port, else 80 (ws) or 443 (wss).
  bool explicit_port = false; ///< The URL named a port.
  bool host_is_ip = false;    ///< IPv4 or IPv6 literal (no SNI, verify by IP).
  std::string target = "/";   ///< Path and query, never empty; the fragment is dropped.
  /// "Basic ..." built from user:password@, when url_options allow it. Never logged.
  std::optional<std::string> authorization;

  /// The Host header value: host (bracketed if IPv6) plus ":port" when not the default.
  std::string host_header() const;
  /// The URL without userinfo, safe to log.
  std::string to_string() const;
};

struct url_options {
  /// user:password@host becomes a Basic Authorization header; when false it is error::url_userinfo.
  bool userinfo_to_authorization = true;
};

/// Parses `text` into `out`; `out` is written only on success. Errors: url_bad_scheme
/// (anything but ws/wss, case-insensitive, including no scheme at all), url_malformed
/// (no "//", empty or invalid host, unclosed bracket, IPv6 zone id, control characters),
/// url_bad_port (empty, 0 or over 65535), url_userinfo. IPv6 hosts are stored in
/// canonical form; path bytes not allowed in a request target are percent-encoded.
TETHER_API std::error_code parse_url(std::string_view text, url& out, const url_options& options = {});

} // namespace tether
