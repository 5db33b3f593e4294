// path_router: the precedence table (with backtracking), captures, conflicts,
// invalid patterns, removal and pruning, a 10,000-route table, no allocation per
// match, and agreement with a brute-force matcher on seeded random tables.
#include <ostream> // before doctest, which only forward-declares it: CHECKs print std::error_code

#include <doctest/doctest.h>

#include <tether/error.hpp>
#include <tether/router.hpp>

#include "alloc_counter.hpp"
#include "router_reference.hpp"
#include "seed.hpp"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

using tether::captures;
using tether::error;
using tether::path_router;

namespace {

// Captures (the router's, or the reference's views) as strings.
template <class C>
std::vector<std::string> to_strings(const C& c) {
  return {c.begin(), c.end()};
}

// A router whose values index into `routes`.
path_router make(const std::vector<std::string>& routes) {
  path_router r;
  for (std::size_t i = 0; i < routes.size(); ++i)
    REQUIRE(!r.add(routes[i], i));
  return r;
}

struct row {
  std::vector<std::string> routes;
  std::string path;
  std::string expected; // "" = no match
  std::vector<std::string> caps;
};

} // namespace

TEST_CASE("precedence table") {
  const std::vector<row> rows = {
      // Literals.
      {{"a"}, "a", "a", {}},
      {{"a"}, "b", "", {}},
      {{"a.b"}, "a", "", {}},
      {{"a"}, "a.b", "", {}},
      {{"a.b.c"}, "a.b.c", "a.b.c", {}},
      // '*' is exactly one segment.
      {{"*"}, "x", "*", {"x"}},
      {{"a.*"}, "a", "", {}},
      {{"a.*"}, "a.b.c", "", {}},
      {{"*.*"}, "x.y", "*.*", {"x", "y"}},
      // '#' is zero or more trailing segments, captured as one view.
      {{"#"}, "x", "#", {"x"}},
      {{"#"}, "x.y.z", "#", {"x.y.z"}},
      {{"a.#"}, "a", "a.#", {""}},
      {{"a.#"}, "a.b", "a.#", {"b"}},
      {{"a.#"}, "a.b.c", "a.#", {"b.c"}},
      {{"a.#"}, "b.a", "", {}},
      {{"*.#"}, "a", "*.#", {"a", ""}},
      {{"*.#"}, "a.b.c", "*.#", {"a", "b.c"}},
      // Literal beats '*' beats '#', segment by segment.
      {{"a.*", "a.b"}, "a.b", "a.b", {}},
      {{"a.*", "a.b"}, "a.c", "a.*", {"c"}},
      {{"a.#", "a.*"}, "a.x", "a.*", {"x"}},
      {{"a.#", "a.*"}, "a.x.y", "a.#", {"x.y"}},
      {{"#", "*", "a"}, "a", "a", {}},
      {{"#", "*"}, "a", "*", {"a"}},
      {{"*.b", "a.*"}, "a.b", "a.*", {"b"}}, // decided at the first segment
      {{"*.b.c", "a.#"}, "a.b.c", "a.#", {"b.c"}},
      {{"*.*.c", "*.b.#"}, "a.b.c", "*.b.#", {"a", "c"}},
      {{"a.b.#", "a.#"}, "a.b.c", "a.b.#", {"c"}},
      {{"a.*.#", "a.#"}, "a.b.c", "a.*.#", {"b", "c"}},
      // At the end of the path, ending there beats '#' matching zero segments.
      {{"a", "a.#"}, "a", "a", {}},
      {{"a.#", "a"}, "a", "a", {}},
      {{"a.*", "a.*.#"}, "a.b", "a.*", {"b"}},
      {{"#", "a.#"}, "a", "a.#", {""}},
      // Backtracking: a more specific branch that fails further down.
      {{"a.b.c", "a.*.d"}, "a.b.d", "a.*.d", {"b"}},
      {{"a.b.c", "a.*.d"}, "a.b.c", "a.b.c", {}},
      {{"a.b.c", "a.#"}, "a.b.d", "a.#", {"b.d"}},
      {{"a.b.c.d", "a.*.c.e", "a.#"}, "a.b.c.e", "a.*.c.e", {"b"}},
      {{"a.b.c.d", "a.*.c.e", "a.#"}, "a.b.c.f", "a.#", {"b.c.f"}},
      {{"a.b.*.x", "a.*.c.y"}, "a.b.c.y", "a.*.c.y", {"b"}},
      {{"a.b.*.x", "a.*.c.y", "*.b.c.y"}, "a.b.c.y", "a.*.c.y", {"b"}},
      {{"x.b", "*.b.#"}, "x.b.c", "*.b.#", {"x", "c"}},
      {{"a.b.#", "a.*.c"}, "a.b.c", "a.b.#", {"c"}},
      {{"a.b", "a.*.c"}, "a.b.c", "a.*.c", {"b"}},
      // Paths are literal: '*' and '#' in a path are ordinary characters.
      {{"a.*"}, "a.*", "a.*", {"*"}},
      {{"a.b"}, "a.*", "", {}},
      {{"a.#"}, "a.#.#", "a.#", {"#.#"}},
      // Invalid paths match nothing, not even '#'.
      {{"#"}, "", "", {}},
      {{"#"}, ".", "", {}},
      {{"#"}, "a..b", "", {}},
      {{"#", "*.#"}, ".a", "", {}},
      {{"#"}, "a.", "", {}},
      // Non-ASCII and spaces are ordinary bytes.
      {{"prix.€"}, "prix.€", "prix.€", {}},
      {{"a b.*"}, "a b.c d", "a b.*", {"c d"}},
  };
  for (const auto& r : rows) {
    CAPTURE(r.path);
    CAPTURE(r.expected);
    auto router = make(r.routes);
    captures caps;
    const auto v = router.match(r.path, caps);
    if (r.expected.empty()) {
      CHECK(!v);
      CHECK(caps.empty());
      continue;
    }
    REQUIRE(v);
    CHECK(r.routes.at(*v) == r.expected);
    CHECK(to_strings(caps) == r.caps);
    // The brute force agrees with every row.
    const auto b = tether::test::reference_match_all(r.routes, r.path);
    REQUIRE(b);
    CHECK(b->pattern == r.expected);
    CHECK(to_strings(b->caps) == r.caps);
  }
}

TEST_CASE("captures are views into the path") {
  auto router = make({"a.*.#", "x.#"});
  const std::string path = "a.bb.c.d";
  captures caps;
  REQUIRE(router.match(path, caps) == 0u);
  REQUIRE(caps.size() == 2);
  CHECK(caps[0].data() == path.data() + 2);
  CHECK(caps[1].data() == path.data() + 5);
  CHECK(caps[1] == "c.d");
  // '#' matching zero segments: an empty view at the end of the path.
  const std::string x = "x";
  REQUIRE(router.match(x, caps) == 1u);
  REQUIRE(caps.size() == 1);
  CHECK(caps[0].empty());
  CHECK(caps[0].data() == x.data() + 1);
  // A failed match leaves nothing behind.
  CHECK(!router.match("b.c", caps));
  CHECK(caps.empty());
}

TEST_CASE("more captures than the inline room") {
  auto router = make({"*.*.*.*.*.#", "*.*.*"});
  captures caps;
  REQUIRE(router.match("1.2.3.4.5.6.7", caps) == 0u);
  CHECK(to_strings(caps) == std::vector<std::string>{"1", "2", "3", "4", "5", "6.7"});
  // Reused after spilling: back to the inline storage, still correct.
  REQUIRE(router.match("1.2.3", caps) == 1u);
  CHECK(to_strings(caps) == std::vector<std::string>{"1", "2", "3"});
  // Backtracking pops captures made on a failed branch, even past the inline room.
  auto deep = make({"*.*.*.*.*.*.x", "*.*.*.*.*.#"});
  REQUIRE(deep.match("1.2.3.4.5.6.y", caps) == 1u);
  CHECK(to_strings(caps) == std::vector<std::string>{"1", "2", "3", "4", "5", "6.y"});

  captures c;
  for (int i = 0; i < 10; ++i)
    c.push_back(i == 0 ? "zero" : "n");
  CHECK(c.size() == 10);
  CHECK(c[0] == "zero");
  c.pop_back();
  CHECK(c.size() == 9);
  c.clear();
  CHECK(c.empty());
  CHECK(c.begin() == c.end());
}

TEST_CASE("no allocation per match with up to four captures") {
  auto router = make({"a.b.c", "a.*.d", "*.*.*.#", "svc.*.orders.*"});
  captures caps;
  (void)router.match("a.b.d", caps); // warm-up (nothing to warm, but be fair)
  const auto before = tether::test::allocations();
  long hits = 0;
  for (int i = 0; i < 1000; ++i) {
    hits += router.match("a.b.c", caps).has_value();
    hits += router.match("a.b.d", caps).has_value();
    hits += router.match("x.y.z.w.v", caps).has_value();
    hits += router.match("svc.eu.orders.42", caps).has_value();
    hits += router.match("nope", caps).has_value();
  }
  CHECK(tether::test::allocations() == before);
  CHECK(hits == 4000);
}

TEST_CASE("conflicts and replace") {
  path_router r;
  CHECK(!r.add("a.*", 1));
  CHECK(r.add("a.*", 2) == error::route_conflict);
  captures caps;
  CHECK(r.match("a.b", caps) == 1u); // unchanged by the refused add
  CHECK(!r.add("a.*", 3, true));
  CHECK(r.match("a.b", caps) == 3u);
  CHECK(r.size() == 1);
  // Similar but different patterns do not conflict.
  CHECK(!r.add("a.#", 4));
  CHECK(!r.add("a", 5));
  CHECK(!r.add("*.a", 6));
  CHECK(r.add("a.#", 7) == error::route_conflict);
  CHECK(r.size() == 4);
  // replace on a new pattern simply adds it.
  CHECK(!r.add("b", 8, true));
  CHECK(r.size() == 5);
  CHECK(r.add("a", 9).category() == tether::error_category());
}

TEST_CASE("invalid patterns") {
  const std::vector<std::string> bad = {
      "",       ".",     "..",    ".a",   "a.",     "a..b",  "a*",  "*a",    "a.b*c", "**", "##", "#a", "a#",
      "a.#.b",  "#.a",   "#.#",   "a.#.#", "*.#.*", "x.#y",  "a.*b",
  };
  path_router r;
  for (const auto& p : bad) {
    CAPTURE(p);
    CHECK(r.add(p, 1) == error::invalid_pattern);
    CHECK(!r.contains(p));
    CHECK(!r.remove(p));
  }
  CHECK(r.size() == 0);
  CHECK(r.add("", 1).default_error_condition() == tether::condition::handler);

  // At most max_segments segments.
  std::string longest = "s";
  for (std::size_t i = 1; i < path_router::max_segments; ++i)
    longest += ".s";
  CHECK(!r.add(longest, 2));
  CHECK(r.add(longest + ".s", 3) == error::invalid_pattern);
  captures caps;
  CHECK(r.match(longest, caps) == 2u);
  CHECK(!r.match(longest + ".s", caps));

  // Valid edge cases.
  for (std::string p : {"*", "#", "*.*", "*.#", "a-b_c:d/e", "ü.ñ", " "}) {
    CAPTURE(p);
    CHECK(!r.add(p, 4));
    CHECK(r.contains(p));
  }
}

TEST_CASE("removal prunes and the rest still matches") {
  const std::vector<std::string> routes = {"a.b.c", "a.b.d", "a.*.d", "a.#", "a", "x.*.y.#", "x.*"};
  auto r = make(routes);
  CHECK(r.size() == routes.size());
  CHECK(r.patterns() == std::vector<std::string>{"a", "a.#", "a.*.d", "a.b.c", "a.b.d", "x.*", "x.*.y.#"});
  captures caps;

  CHECK(!r.remove("a.b"));  // a prefix of routes, not a route
  CHECK(!r.remove("a.*"));  // likewise
  CHECK(!r.remove("x.*.y")); // likewise
  CHECK(!r.remove("q"));
  CHECK(r.size() == routes.size());

  CHECK(r.remove("a.b.d"));
  CHECK(!r.remove("a.b.d"));
  CHECK(!r.contains("a.b.d"));
  CHECK(r.contains("a.b.c"));
  CHECK(r.match("a.b.d", caps) == 2u); // now "a.*.d"
  CHECK(r.match("a.b.c", caps) == 0u);

  CHECK(r.remove("a.b.c")); // prunes the "b" branch
  CHECK(r.match("a.b.c", caps) == 3u);
  CHECK(to_strings(caps) == std::vector<std::string>{"b.c"});

  CHECK(r.remove("a.#"));
  CHECK(!r.match("a.b.c", caps));
  CHECK(r.match("a", caps) == 4u);
  CHECK(r.match("a.q.d", caps) == 2u);

  CHECK(r.remove("x.*.y.#")); // the '*' node stays: "x.*" ends there
  CHECK(r.match("x.k", caps) == 6u);
  CHECK(!r.match("x.k.y", caps));

  CHECK(r.size() == 3);
  CHECK(r.patterns() == std::vector<std::string>{"a", "a.*.d", "x.*"});
  for (const auto& p : r.patterns())
    CHECK(r.remove(p));
  CHECK(r.empty());
  CHECK(r.patterns().empty());
  CHECK(!r.match("a", caps));

  // Usable again after emptying, and after a move.
  CHECK(!r.add("a.b", 1));
  path_router moved = std::move(r);
  CHECK(moved.size() == 1);
  CHECK(moved.match("a.b", caps) == 1u);
  CHECK(r.size() == 0); // NOLINT(bugprone-use-after-move): documented as empty
  CHECK(!r.match("a.b", caps));
  CHECK(!r.add("c", 2));
  CHECK(r.match("c", caps) == 2u);
}

TEST_CASE("10,000 routes") {
  path_router r;
  std::vector<std::string> exact;
  for (int s = 0; s < 100; ++s)
    for (int e = 0; e < 90; ++e) {
      exact.push_back("svc" + std::to_string(s) + ".evt" + std::to_string(e) + ".done");
      REQUIRE(!r.add(exact.back(), exact.size() - 1));
    }
  // 1,000 wildcard routes on top: per service a '*' and '#' fallback, and more.
  std::vector<std::string> wild;
  for (int s = 0; s < 100; ++s)
    for (const auto& shape : {"svc{}.*.done", "svc{}.#", "svc{}.*.fail", "svc{}.evt0.*", "svc{}.*.*.*",
                              "*.evt{}.done", "*.evt{}.#", "*.*.x{}", "svc{}.*.done.#", "*.x{}.#"}) {
      std::string p = shape;
      p.replace(p.find("{}"), 2, std::to_string(s));
      if (r.contains(p))
        continue;
      wild.push_back(p);
      REQUIRE(!r.add(p, 100000 + wild.size() - 1));
    }
  CHECK(r.size() == exact.size() + wild.size());
  CHECK(r.size() >= 10000);

  std::vector<std::string> all = exact;
  all.insert(all.end(), wild.begin(), wild.end());
  const auto pattern_of = [&](path_router::value_type v) {
    return v >= 100000 ? wild.at(v - 100000) : exact.at(v);
  };

  captures caps;
  for (std::size_t i = 0; i < exact.size(); ++i) {
    const auto v = r.match(exact[i], caps);
    REQUIRE(v == i);
    CHECK(caps.empty());
  }
  // Paths that fall through to wildcards, checked against the brute force.
  std::mt19937_64 rng(tether::test::seed());
  for (int i = 0; i < 200; ++i) {
    const std::string path = "svc" + std::to_string(rng() % 110) + "." +
                             (rng() % 2 ? "evt" : "x") + std::to_string(rng() % 110) + "." +
                             (rng() % 3 == 0 ? "done" : rng() % 2 ? "fail" : "x" + std::to_string(rng() % 3)) +
                             (rng() % 4 == 0 ? ".more" : "");
    CAPTURE(path);
    const auto v = r.match(path, caps);
    const auto b = tether::test::reference_match_all(all, path);
    REQUIRE(v.has_value() == b.has_value());
    if (v) {
      CHECK(pattern_of(*v) == b->pattern);
      CHECK(to_strings(caps) == to_strings(b->caps));
    }
  }
  const auto listed = r.patterns();
  CHECK(listed.size() == r.size());
  CHECK(std::is_sorted(listed.begin(), listed.end()));
}

namespace {

// Random patterns and paths over a tiny alphabet, so collisions and overlaps are common.
std::string random_pattern(std::mt19937_64& rng) {
  static const char* const segs[] = {"a", "b", "c", "*", "*", "#"};
  const auto n = 1 + rng() % 4;
  std::string p;
  for (std::size_t i = 0; i < n; ++i) {
    std::string seg = segs[rng() % 6];
    if (seg == "#" && i + 1 != n)
      seg = "*";
    p += (i ? "." : "") + seg;
  }
  return p;
}

std::string random_path(std::mt19937_64& rng) {
  static const char* const segs[] = {"a", "b", "c", "d"};
  if (rng() % 50 == 0)
    return rng() % 2 ? "" : "a..b"; // invalid paths now and then
  const auto n = 1 + rng() % 5;
  std::string p;
  for (std::size_t i = 0; i < n; ++i)
    p += std::string(i ? "." : "") + segs[rng() % 4];
  return p;
}

} // namespace

TEST_CASE("trie agrees with the brute force on random tables") {
  std::mt19937_64 rng(tether::test::seed());
  long cases = 0;
  for (int table = 0; table < 500; ++table) {
    path_router r;
    std::vector<std::string> patterns; // values are indexes; removed ones stay as ""
    const auto count = 1 + rng() % 12;
    for (std::size_t i = 0; i < count; ++i) {
      const auto p = random_pattern(rng);
      const bool present = r.contains(p);
      const auto ec = r.add(p, patterns.size());
      CHECK(bool(ec) == present);
      if (!present)
        patterns.push_back(p);
    }
    // Remove a few, so pruned tries are covered.
    for (int i = 0; i < 2 && !patterns.empty(); ++i) {
      const auto k = rng() % patterns.size();
      if (!patterns[k].empty() && rng() % 2) {
        CHECK(r.remove(patterns[k]));
        patterns[k].clear();
      }
    }
    std::vector<std::string> live;
    for (const auto& p : patterns)
      if (!p.empty())
        live.push_back(p);
    REQUIRE(r.size() == live.size());
    std::sort(live.begin(), live.end());
    REQUIRE(r.patterns() == live);

    captures caps;
    for (int i = 0; i < 45; ++i, ++cases) {
      const auto path = random_path(rng);
      const auto v = r.match(path, caps);
      const auto b = tether::test::reference_match_all(live, path);
      CAPTURE(path);
      REQUIRE(v.has_value() == b.has_value());
      if (v) {
        REQUIRE(patterns.at(*v) == b->pattern);
        REQUIRE(to_strings(caps) == to_strings(b->caps));
      }
    }
  }
  CHECK(cases >= 20000);
}
