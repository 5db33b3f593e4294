#pragma once
// The opening handshake as log lines, for stream_options::log at debug level
// (tether-repl -v): "> " request lines, "< " response lines, as curl -v shows
// them. Secrets never reach the log: the values of Authorization,
// Proxy-Authorization, Cookie, Set-Cookie and of any field whose name contains
// auth, cookie, token, key, secret, session or password (Sec-WebSocket-*
// excepted) print as [redacted].
#include <tether/handshake.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace tether::detail {

/// The request text (as build_request wrote it), one line per entry.
std::vector<std::string> request_log_lines(std::string_view request);

/// The parsed response: status line, then each header field.
std::vector<std::string> response_log_lines(const handshake_response& response);

} // namespace tether::detail
