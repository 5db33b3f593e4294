// The reconnect policy: backoff delays (seeded RNG) and the default table.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/retry.hpp>

#include <asio/error.hpp>

#include <ostream>
#include <random>

#include "seed.hpp"

using namespace tether;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

TEST_CASE("backoff without jitter: linear and exponential, capped") {
  const double rng = 0.5; // no jitter: the draw must not matter
  backoff_policy p;
  p.base = 100ms;
  p.max_delay = 1000ms;
  p.jitter = 0;
  p.kind = backoff::linear;
  CHECK(backoff_delay(p, 1, rng) == 100ms);
  CHECK(backoff_delay(p, 2, rng) == 200ms);
  CHECK(backoff_delay(p, 7, rng) == 700ms);
  CHECK(backoff_delay(p, 50, rng) == 1000ms);
  p.kind = backoff::exponential;
  CHECK(backoff_delay(p, 1, rng) == 100ms);
  CHECK(backoff_delay(p, 2, rng) == 200ms);
  CHECK(backoff_delay(p, 4, rng) == 800ms);
  CHECK(backoff_delay(p, 5, rng) == 1000ms);
  CHECK(backoff_delay(p, 1000, rng) == 1000ms); // no overflow
}

TEST_CASE("full jitter stays in [0, d] and is reproducible from the seed") {
  backoff_policy p;
  p.base = 100ms;
  p.max_delay = 10s;
  std::mt19937_64 a(tether::test::seed()), b(tether::test::seed());
  bool varied = false;
  ms first{-1};
  for (unsigned n = 1; n <= 8; ++n) {
    for (int i = 0; i < 200; ++i) {
      const auto d = backoff_delay(p, n, std::generate_canonical<double, 53>(a));
      CHECK(d == backoff_delay(p, n, std::generate_canonical<double, 53>(b)));
      CHECK(d >= 0ms);
      CHECK(d <= ms(100 << (n - 1)));
      if (first.count() >= 0 && d != first)
        varied = true;
      first = d;
    }
  }
  CHECK(varied);
}

TEST_CASE("partial jitter stays in [(1-j)d, d]") {
  backoff_policy p;
  p.base = 1000ms;
  p.jitter = 0.25;
  std::mt19937_64 rng(tether::test::seed());
  for (int i = 0; i < 500; ++i) {
    const auto d = backoff_delay(p, 1, std::generate_canonical<double, 53>(rng));
    CHECK(d >= 750ms);
    CHECK(d <= 1000ms);
  }
}

TEST_CASE("the jitter draw maps [0, 1) onto [(1-j)d, d]") {
  backoff_policy p;
  p.base = 1000ms;
  p.jitter = 0.25;
  CHECK(backoff_delay(p, 1, 0.0) == 750ms);
  CHECK(backoff_delay(p, 1, 0.5) == 875ms);
  CHECK(backoff_delay(p, 1, 0.999999) == 999ms);
  CHECK(backoff_delay(p, 1, 1.0) == 1000ms);
  CHECK(backoff_delay(p, 1, -3.0) == 750ms); // out-of-range draws are clamped
}

namespace {
retry_decision::kind kind_of(outcome o, retry_rules r = {}) { return classify(o, r).what; }
outcome status(int s, std::optional<std::chrono::seconds> ra = {}) {
  outcome o;
  o.error = error::handshake_rejected;
  o.http_status = s;
  o.retry_after = ra;
  return o;
}
outcome closed(std::uint16_t code) {
  outcome o;
  o.close_code = code;
  o.opened = true;
  return o;
}
outcome failed(std::error_code ec) {
  outcome o;
  o.error = ec;
  return o;
}
} // namespace

TEST_CASE("default classification table") {
  using k = retry_decision;
  // Handshake statuses.
  CHECK(kind_of(status(401)) == k::stop);
  CHECK(kind_of(status(403)) == k::stop);
  CHECK(kind_of(status(404)) == k::stop);
  CHECK(kind_of(status(400)) == k::stop);
  CHECK(kind_of(status(301)) == k::stop);
  CHECK(kind_of(status(500)) == k::retry);
  CHECK(kind_of(status(502)) == k::retry);
  CHECK(kind_of(status(503)) == k::retry);
  CHECK(kind_of(status(429)) == k::retry);
  CHECK(kind_of(status(408)) == k::retry);
  auto d = classify(status(503, std::chrono::seconds(7)), {});
  CHECK(d.what == k::retry_after);
  CHECK(d.delay == 7s);
  retry_rules capped;
  capped.retry_after_cap = 2s;
  CHECK(classify(status(429, std::chrono::seconds(3600)), capped).delay == 2s);
  // Close codes.
  CHECK(kind_of(closed(1000)) == k::stop);
  CHECK(kind_of(closed(1001)) == k::stop);
  retry_rules normal;
  normal.reconnect_on_normal_close = true;
  CHECK(kind_of(closed(1000), normal) == k::retry);
  CHECK(kind_of(closed(1001), normal) == k::retry);
  for (std::uint16_t c : {1002, 1011, 1012, 1013, 1014, 4000})
    CHECK(kind_of(closed(c)) == k::retry);
  for (std::uint16_t c : {1003, 1007, 1008, 1009, 1010})
    CHECK(kind_of(closed(c)) == k::stop);
  // Errors.
  CHECK(kind_of(failed(asio::error::connection_refused)) == k::retry);
  CHECK(kind_of(failed(error::connection_lost)) == k::retry);
  CHECK(kind_of(failed(error::dead_connection)) == k::retry);
  CHECK(kind_of(failed(error::handshake_timeout)) == k::retry);
  CHECK(kind_of(failed(error::tls_failed)) == k::retry);
  CHECK(kind_of(failed(error::invalid_utf8)) == k::retry); // our own protocol failure: backoff, not immediate
  CHECK(kind_of(failed(error::url_bad_scheme)) == k::stop);
  // Proxies: what credentials or rules refuse stops; what may pass is retried.
  for (auto e : {error::proxy_bad_url, error::proxy_auth_required, error::proxy_denied, error::socks_auth_failed,
                 error::socks_not_allowed, error::socks_command_not_supported,
                 error::socks_address_type_not_supported}) {
    CAPTURE(to_string(e));
    CHECK(kind_of(failed(e)) == k::stop);
  }
  for (auto e : {error::proxy_unreachable, error::proxy_timeout, error::proxy_malformed, error::proxy_failed,
                 error::socks_general_failure, error::socks_network_unreachable, error::socks_host_unreachable,
                 error::socks_connection_refused, error::socks_ttl_expired}) {
    CAPTURE(to_string(e));
    CHECK(kind_of(failed(e)) == k::retry);
  }
}

TEST_CASE("Retry-After in delta-seconds") {
  CHECK(parse_retry_after("120") == std::chrono::seconds(120));
  CHECK(parse_retry_after(" 5 ") == std::chrono::seconds(5));
  CHECK_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
  CHECK_FALSE(parse_retry_after("-1"));
  CHECK_FALSE(parse_retry_after(""));
}
