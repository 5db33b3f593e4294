// path_router lookups: the cost claims in router.hpp, measured. An exact-only
// table costs the same at 100 and 10,000 routes; wildcards add little; the
// pathological table (a literal and a '*' at every level, failing at the end)
// shows the documented O(2^depth) backtracking.
#include <tether/router.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace {

template <class F>
double ns_per_call(F&& f) {
  using clock = std::chrono::steady_clock;
  std::size_t calls = 0;
  const auto start = clock::now();
  auto now = start;
  do {
    for (int i = 0; i < 256; ++i)
      f();
    calls += 256;
    now = clock::now();
  } while (now - start < std::chrono::milliseconds(300));
  return std::chrono::duration<double, std::nano>(now - start).count() / static_cast<double>(calls);
}

tether::path_router exact_table(int services) {
  tether::path_router r;
  for (int s = 0; s < services; ++s)
    for (int e = 0; e < 100; ++e)
      (void)r.add("svc" + std::to_string(s) + ".evt" + std::to_string(e) + ".done", 1);
  return r;
}

} // namespace

int main() {
  tether::captures caps;
  std::size_t hits = 0;
  for (int services : {1, 100}) {
    auto r = exact_table(services);
    const std::string path = "svc0.evt42.done";
    const double ns = ns_per_call([&] { hits += r.match(path, caps).has_value(); });
    std::printf("exact table, %6zu routes:            %7.1f ns/match\n", r.size(), ns);
    (void)r.add("svc0.*.done", 2);
    (void)r.add("svc0.#", 3);
    (void)r.add("*.*.*", 4);
    const std::string wild = "svc0.evt999.done";
    const double wns = ns_per_call([&] { hits += r.match(wild, caps).has_value(); });
    std::printf("  + wildcards, fallback to '*':        %7.1f ns/match\n", wns);
  }
  for (int depth : {4, 8, 12}) {
    // Every mix of "a" and "*" over `depth` segments, then "x".
    tether::path_router r;
    for (unsigned mask = 0; mask < (1u << depth); ++mask) {
      std::string p;
      for (int i = 0; i < depth; ++i)
        p += (i ? "." : "") + std::string(mask >> i & 1 ? "*" : "a");
      (void)r.add(p + ".x", mask);
    }
    std::string path = "a";
    for (int i = 1; i < depth; ++i)
      path += ".a";
    path += ".y"; // fails at the last segment on every branch
    const double ns = ns_per_call([&] { hits += r.match(path, caps).has_value(); });
    std::printf("pathological, depth %2d (%6zu routes): %9.1f ns/match\n", depth, r.size(), ns);
  }
  return hits == 0 ? 1 : 0;
}
