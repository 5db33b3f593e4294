#include "rate_limiter.hpp"

#include <tether/error.hpp>

#include <algorithm>
#include <cmath>

namespace tether::detail {

namespace {

using duration = token_bucket::clock::duration;

// 1 / per_second, rounded up to the clock's tick (so the limit is never
// exceeded), at least one tick and at most a day (no overflow for tiny rates).
duration interval_of(double per_second) {
  const double ticks = std::ceil(static_cast<double>(duration::period::den) /
                                 (per_second * static_cast<double>(duration::period::num)));
  const double day = static_cast<double>(std::chrono::duration_cast<duration>(std::chrono::hours(24)).count());
  return duration(static_cast<duration::rep>(std::clamp(ticks, 1.0, day)));
}

// (burst - 1) intervals, burst clamped so that the product stays within a year.
duration tolerance_of(duration interval, std::size_t burst) {
  const auto year = std::chrono::duration_cast<duration>(std::chrono::hours(24 * 365));
  const auto most = static_cast<std::size_t>(year / interval);
  return interval * static_cast<duration::rep>(std::min(std::max<std::size_t>(burst, 1) - 1, most));
}

} // namespace

token_bucket::token_bucket(const rate_limit& limit)
    : interval_(interval_of(limit.per_second)), tolerance_(tolerance_of(interval_, limit.burst)) {}

token_bucket::clock::time_point token_bucket::when(clock::time_point now) const {
  return std::max(now, tat_ - tolerance_);
}

void token_bucket::take(clock::time_point now) {
  tat_ = std::max(tat_, now) + interval_;
}

rate_limiter::rate_limiter(const rate_limit& all, const std::vector<route_rate_limit>& routes) {
  if (all.per_second > 0)
    all_.emplace(all);
  for (const auto& r : routes) {
    if (r.limit.per_second <= 0)
      continue;
    if (auto ec = patterns_.add(r.pattern, routes_.size()))
      throw std::system_error(ec, "route_send_rates: '" + r.pattern + "'");
    routes_.emplace_back(r.limit);
  }
}

int rate_limiter::bucket_of(std::string_view path) const {
  if (routes_.empty())
    return -1;
  captures caps;
  auto v = patterns_.match(path, caps);
  return v ? static_cast<int>(*v) : -1;
}

rate_limiter::clock::time_point rate_limiter::when(int b, clock::time_point now) const {
  auto t = all_ ? all_->when(now) : now;
  if (b >= 0)
    t = std::max(t, routes_[static_cast<std::size_t>(b)].when(now));
  return t;
}

void rate_limiter::take(int b, clock::time_point now) {
  if (all_)
    all_->take(now);
  if (b >= 0)
    routes_[static_cast<std::size_t>(b)].take(now);
}

} // namespace tether::detail
