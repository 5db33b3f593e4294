// The token buckets behind handler_options::send_rate and route_send_rates,
// with made-up times: an envelope goes as soon as it conforms, and then in
// every span of length t at most burst + rate × t envelopes go out.
#include <doctest/doctest.h>
#include <tether/error.hpp>

#include <chrono>
#include <random>
#include <vector>

#include "handler/rate_limiter.hpp"
#include "seed.hpp"
#include "spans.hpp"

using namespace tether;
using namespace std::chrono_literals;
using clock_type = detail::rate_limiter::clock;
using tether::test::most_within;

namespace {

/// Sends `n` envelopes of bucket `b`, each as soon as it may go, no earlier
/// than its own arrival; returns the times they went.
std::vector<clock_type::time_point> drain(detail::rate_limiter& l, int b, const std::vector<clock_type::time_point>& arrivals) {
  std::vector<clock_type::time_point> out;
  auto t = arrivals.front();
  for (auto a : arrivals) {
    t = l.when(b, std::max(t, a));
    l.take(b, t);
    out.push_back(t);
  }
  return out;
}

} // namespace

TEST_CASE("1,000 envelopes at 200/s with a burst of 100: 100 at once, then one every 5 ms") {
  detail::rate_limiter l({.per_second = 200, .burst = 100}, {});
  REQUIRE(l.active());
  const auto t0 = clock_type::now();
  const auto at = drain(l, -1, std::vector<clock_type::time_point>(1000, t0));
  for (std::size_t i = 0; i < 100; ++i)
    CHECK(at[i] == t0);
  CHECK(at[100] - t0 == 5ms);
  CHECK(at[999] - t0 == 900 * 5ms); // 4.5 s
  for (auto span : {0ms, 1ms, 5ms, 12ms, 100ms, 1000ms, 4000ms}) {
    CAPTURE(span.count());
    const auto allowed = 100 + static_cast<std::size_t>(200 * std::chrono::duration<double>(span).count());
    CHECK(most_within(at, span) <= allowed);
  }
}

TEST_CASE("random arrivals: never more than burst + rate × t in any span t; idle time refills the bucket") {
  std::mt19937_64 rng(tether::test::seed());
  for (int round = 0; round < 20; ++round) {
    const double rate = std::uniform_real_distribution<double>(5, 2000)(rng);
    const auto burst = std::uniform_int_distribution<std::size_t>(1, 50)(rng);
    CAPTURE(rate);
    CAPTURE(burst);
    detail::rate_limiter l({.per_second = rate, .burst = burst}, {});
    std::vector<clock_type::time_point> arrivals;
    auto t = clock_type::now();
    for (int i = 0; i < 2000; ++i) {
      t += std::chrono::microseconds(std::uniform_int_distribution<int>(0, 2000)(rng) *
                                     (rng() % 50 == 0 ? 100 : 1)); // now and then a long pause
      arrivals.push_back(t);
    }
    const auto at = drain(l, -1, arrivals);
    for (std::size_t i = 0; i < at.size(); ++i)
      REQUIRE(at[i] >= arrivals[i]);
    for (auto span_us : {0, 300, 1000, 7000, 50000, 400000}) {
      const auto span = std::chrono::microseconds(span_us);
      const auto allowed = burst + static_cast<std::size_t>(rate * std::chrono::duration<double>(span).count() + 1e-9);
      CHECK(most_within(at, span) <= allowed);
    }
  }
  // After a pause of burst / rate the whole burst may go at once again.
  detail::rate_limiter l({.per_second = 10, .burst = 3}, {});
  const auto t0 = clock_type::now();
  auto first = drain(l, -1, std::vector<clock_type::time_point>(3, t0));
  CHECK(first.back() == t0);
  CHECK(l.when(-1, t0) == t0 + 100ms);
  CHECK(l.when(-1, t0 + 300ms) == t0 + 300ms);
  const auto later = t0 + 300ms;
  for (int i = 0; i < 3; ++i) {
    CHECK(l.when(-1, later) == later);
    l.take(-1, later);
  }
  CHECK(l.when(-1, later) > later);
}

TEST_CASE("route limits: the most specific pattern, on top of the handler's limit; bad patterns throw") {
  detail::rate_limiter l({.per_second = 1000, .burst = 10},
                         {{"orders.*", {.per_second = 2, .burst = 1}}, {"orders.cancel", {.per_second = 100, .burst = 5}}});
  const int orders = l.bucket_of("orders.place");
  const int cancel = l.bucket_of("orders.cancel");
  CHECK(orders >= 0);
  CHECK(cancel >= 0);
  CHECK(orders != cancel);
  CHECK(l.bucket_of("md.trades") == -1);
  const auto t0 = clock_type::now();
  l.take(orders, t0);
  CHECK(l.when(orders, t0) == t0 + 500ms); // orders.*: 2/s
  CHECK(l.when(cancel, t0) == t0);         // its own bucket
  CHECK(l.when(-1, t0) == t0);             // only the handler's
  // The handler's bucket counts every envelope: 10 back to back, then 1 ms apart.
  for (int i = 0; i < 9; ++i)
    l.take(-1, t0);
  CHECK(l.when(-1, t0) == t0 + 1ms);
  CHECK(l.when(cancel, t0) == t0 + 1ms);

  CHECK_THROWS_AS(detail::rate_limiter({}, {{"a.#.b", {.per_second = 1}}}), std::system_error);
  CHECK_THROWS_AS(detail::rate_limiter({}, {{"a", {.per_second = 1}}, {"a", {.per_second = 2}}}), std::system_error);
  CHECK(!detail::rate_limiter({}, {}).active());
  CHECK(!detail::rate_limiter({.per_second = 0, .burst = 5}, {{"a", {.per_second = 0}}}).active());
}
