#pragma once
// Token buckets for outgoing envelopes (handler_options::send_rate and
// route_send_rates), sans-IO: times come in, times to wait until go out.
// Each bucket is the generic cell rate algorithm: an envelope conforms at t
// when t >= tat - (burst - 1) * interval, and taking it moves tat to
// max(tat, t) + interval; in any span t at most burst + t / interval conform.
#include <tether/handler.hpp>
#include <tether/router.hpp>

#include <chrono>
#include <string_view>
#include <vector>

namespace tether::detail {

class token_bucket {
public:
  using clock = std::chrono::steady_clock;
  explicit token_bucket(const rate_limit& limit);
  /// The earliest time, not before `now`, at which one envelope conforms.
  clock::time_point when(clock::time_point now) const;
  /// Takes one envelope at `now` (conforming or not: the caller decided).
  void take(clock::time_point now);

private:
  clock::duration interval_;
  clock::duration tolerance_;
  clock::time_point tat_{}; // theoretical arrival time of the next envelope (long past: a full bucket)
};

class rate_limiter {
public:
  using clock = token_bucket::clock;
  /// Throws std::system_error for a bad or repeated pattern.
  rate_limiter(const rate_limit& all, const std::vector<route_rate_limit>& routes);

  /// False when no limit is set: nothing to check.
  bool active() const noexcept { return all_.has_value() || !routes_.empty(); }
  /// The route limit `path` falls under (-1: none).
  int bucket_of(std::string_view path) const;
  /// When an envelope of bucket `b` (-1: the handler's limit only) may go.
  clock::time_point when(int b, clock::time_point now) const;
  void take(int b, clock::time_point now);

private:
  std::optional<token_bucket> all_;
  std::vector<token_bucket> routes_;
  path_router patterns_;
};

} // namespace tether::detail
