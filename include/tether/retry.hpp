#pragma once
/// @file
/// The reconnect policy: backoff delays and the default classification of how a
/// connection attempt or a connection ended (docs/errors.md has the table).
/// Pure functions, no I/O: unit-tested with a seeded RNG.

#include <tether/export.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace tether {

/// How the delay grows between attempts.
enum class backoff {
  linear,      ///< base × attempt
  exponential, ///< base × 2^(attempt−1)
};

/// "linear" or "exponential".
TETHER_API const char* to_string(backoff b) noexcept;

/// Backoff settings. The delay before attempt n (n ≥ 1) is
/// min(max_delay, growth(n)), then jittered: with jitter j the result is drawn
/// uniformly from [(1−j)·d, d] (j = 1: "full jitter", the default).
struct backoff_policy {
  tether::backoff kind = tether::backoff::exponential;
  std::chrono::milliseconds base{500};
  std::chrono::milliseconds max_delay{30000};
  double jitter = 1.0;
};

/// The delay before attempt `attempt` (1-based). `draw` is the jitter's random
/// number, uniform in [0, 1) (std::generate_canonical, say): 0 gives (1−j)·d, values
/// towards 1 give d. A pure function of its inputs; it takes a number rather than
/// a generator so that this header need not include <random>.
TETHER_API std::chrono::milliseconds backoff_delay(const backoff_policy& p, unsigned attempt, double draw);

/// How one connection attempt or one connection ended.
struct outcome {
  std::error_code error;                      ///< What failed (connect error, connection_lost, ...); empty for a close frame.
  int http_status = 0;                        ///< Handshake status when the server refused the upgrade.
  std::optional<std::chrono::seconds> retry_after; ///< Parsed Retry-After (delta-seconds) of a 429/503.
  std::uint16_t close_code = 0;               ///< Close code the server sent (0 if none).
  std::string close_reason;                   ///< The reason the server sent with it.
  bool opened = false;                        ///< The connection had been open (a drop, not a failed attempt).
};

/// What to do next.
struct retry_decision {
  enum kind { retry, retry_after, stop } what = retry; ///< to_string(kind): "retry", "retry_after", "stop".
  std::chrono::milliseconds delay{0}; ///< For retry_after: the server's delay (capped).
  std::string reason;                 ///< Why, for logs and docs.
};

/// "retry", "retry_after" or "stop".
TETHER_API const char* to_string(retry_decision::kind k) noexcept;

/// Settings the default classification reads.
struct retry_rules {
  bool reconnect_on_normal_close = false;     ///< 1000/1001 from the server: reconnect?
  std::chrono::milliseconds retry_after_cap{60000}; ///< Longest Retry-After honoured.
};

/// The default table (docs/errors.md): transport and TLS errors, timeouts,
/// 5xx/429/408 and abnormal drops retry; 429/503 with Retry-After wait for it
/// (capped); 401/403/404 and other 4xx stop; close 1000/1001 stop unless
/// configured; 1011/1012/1013/1006 retry; 1008/1003/1007/1009/1010 stop; our own
/// protocol failures retry with backoff; a bad URL stops.
TETHER_API retry_decision classify(const outcome& o, const retry_rules& rules);

/// Parses a Retry-After value given in delta-seconds (HTTP dates are ignored).
TETHER_API std::optional<std::chrono::seconds> parse_retry_after(std::string_view value);

} // namespace tether
