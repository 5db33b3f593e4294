#include <tether/retry.hpp>

#include <tether/error.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace tether {

const char* to_string(backoff b) noexcept {
  switch (b) {
  case backoff::linear: return "linear";
  case backoff::exponential: return "exponential";
  }
  return "unknown";
}

const char* to_string(retry_decision::kind k) noexcept {
  switch (k) {
  case retry_decision::retry: return "retry";
  case retry_decision::retry_after: return "retry_after";
  case retry_decision::stop: return "stop";
  }
  return "unknown";
}

std::chrono::milliseconds backoff_delay(const backoff_policy& p, unsigned attempt, double draw) {
  if (attempt == 0)
    attempt = 1;
  const double base = static_cast<double>(p.base.count());
  const double cap = static_cast<double>(p.max_delay.count());
  double d = p.kind == backoff::linear ? base * attempt : base * std::ldexp(1.0, static_cast<int>(std::min(attempt - 1, 62u)));
  d = std::min(d, cap);
  const double j = std::clamp(p.jitter, 0.0, 1.0);
  if (j > 0)
    d -= j * d * (1.0 - std::clamp(draw, 0.0, 1.0));
  return std::chrono::milliseconds(static_cast<std::int64_t>(d));
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  std::int64_t secs = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
  if (ec != std::errc() || end != value.data() + value.size() || secs < 0)
    return std::nullopt;
  return std::chrono::seconds(secs);
}

namespace {

retry_decision decide(retry_decision::kind k, std::string reason) {
  retry_decision d;
  d.what = k;
  d.reason = std::move(reason);
  return d;
}

retry_decision by_status(const outcome& o, const retry_rules& rules) {
  const int s = o.http_status;
  const auto name = "HTTP " + std::to_string(s);
  if ((s == 429 || s == 503) && o.retry_after) {
    auto d = decide(retry_decision::retry_after, name + " with Retry-After");
    d.delay = std::min<std::chrono::milliseconds>(*o.retry_after, rules.retry_after_cap);
    return d;
  }
  if (s >= 500 || s == 429 || s == 408)
    return decide(retry_decision::retry, name + ": server-side, may pass");
  if (s >= 300 && s < 400)
    return decide(retry_decision::stop, name + ": redirects are reported, not followed");
  return decide(retry_decision::stop, name + ": the request itself is refused"); // 401/403/404/other 4xx
}

retry_decision by_close_code(const outcome& o, const retry_rules& rules) {
  const auto c = o.close_code;
  // The reason is the rule alone: the code and its name are in the outcome and
  // in the handler's description of it ("server closed with 1001 (going away)").
  switch (c) {
  case 1000:
  case 1001:
    return decide(rules.reconnect_on_normal_close ? retry_decision::retry : retry_decision::stop,
                  rules.reconnect_on_normal_close ? "the server ended the session: reconnect_on_normal_close"
                                                  : "the server ended the session");
  case 1002: // the server says we broke the protocol: a new connection may work
  case 1011:
  case 1012:
  case 1013:
  case 1014:
    return decide(retry_decision::retry, "server error or restart");
  case 1003:
  case 1007:
  case 1008:
  case 1009:
  case 1010:
    return decide(retry_decision::stop, "the server rejects what we send");
  default:
    // 3000-4999 are application codes: their meaning is the application's.
    return decide(retry_decision::retry, "application close code");
  }
}

} // namespace

retry_decision classify(const outcome& o, const retry_rules& rules) {
  if (o.http_status != 0 && o.http_status != 101)
    return by_status(o, rules);
  if (o.close_code != 0)
    return by_close_code(o, rules);
  const auto& ec = o.error;
  if (!ec)
    return decide(retry_decision::retry, "connection ended");
  if (ec == condition::invalid_url)
    return decide(retry_decision::stop, "invalid URL");
  if (ec == error::handshake_bad_accept || ec == error::handshake_bad_subprotocol ||
      ec == error::handshake_bad_extension || ec == error::handshake_bad_upgrade ||
      ec == error::handshake_bad_connection)
    return decide(retry_decision::retry, "handshake answer was not WebSocket: may be a proxy or a restart");
  if (ec == error::proxy_auth_required || ec == error::socks_auth_failed)
    return decide(retry_decision::stop, "the proxy refuses our credentials");
  if (ec == error::proxy_denied || ec == error::socks_not_allowed)
    return decide(retry_decision::stop, "the proxy does not allow this connection");
  if (ec == error::socks_command_not_supported || ec == error::socks_address_type_not_supported)
    return decide(retry_decision::stop, "the proxy cannot make this kind of connection");
  if (ec == error::tls_failed)
    return decide(retry_decision::retry, "TLS failed: retried, since certificates rotate");
  // Transport errors, timeouts (including a dead connection) and our own
  // protocol failures: retry with backoff, never immediately.
  return decide(retry_decision::retry, ec.message());
}

} // namespace tether
