#include "handshake_log.hpp"

#include "http_fields.hpp"

#include <array>

namespace tether::detail {
namespace {

// Authorization, Proxy-Authorization, Cookie, Set-Cookie and any name that
// looks like a credential (X-Api-Key, X-Auth-Token, X-Session-Id, ...); the
// handshake's own Sec-WebSocket-* fields are not secrets.
bool is_secret(std::string_view name) {
  std::string lower(name);
  for (auto& c : lower)
    c = ascii_lower(c);
  if (lower.rfind("sec-websocket-", 0) == 0)
    return false;
  constexpr std::array<std::string_view, 8> marks{"auth", "cookie", "token", "key", "secret", "session", "password",
                                                  "passwd"};
  for (auto m : marks)
    if (lower.find(m) != std::string::npos)
      return true;
  return false;
}

std::string field_line(std::string_view prefix, std::string_view name, std::string_view value) {
  std::string line(prefix);
  line += name;
  line += ": ";
  line += is_secret(name) ? std::string_view("[redacted]") : value;
  return line;
}

} // namespace

std::vector<std::string> request_log_lines(std::string_view request) {
  std::vector<std::string> lines;
  bool first = true;
  while (!request.empty()) {
    const auto end = request.find(crlf);
    const auto line = request.substr(0, end);
    request.remove_prefix(end == std::string_view::npos ? request.size() : end + crlf.size());
    if (line.empty())
      break; // the end of the header section
    const auto colon = line.find(':');
    if (first || colon == std::string_view::npos) {
      lines.push_back("> " + std::string(line));
    } else {
      auto value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      lines.push_back(field_line("> ", line.substr(0, colon), value));
    }
    first = false;
  }
  return lines;
}

std::vector<std::string> response_log_lines(const handshake_response& response) {
  std::vector<std::string> lines;
  std::string status = "< HTTP/1.1 " + std::to_string(response.status);
  if (!response.reason.empty())
    status += " " + response.reason;
  lines.push_back(std::move(status));
  for (const auto& f : response.headers.fields)
    lines.push_back(field_line("< ", f.name, f.value));
  return lines;
}

} // namespace tether::detail
