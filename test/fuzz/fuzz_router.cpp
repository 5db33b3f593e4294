// libFuzzer target for path_router: the input is a script of lines, "+pattern"
// adds, "=pattern" adds with replace, "-pattern" removes, anything else is a
// path to match. After every step the trie must agree with a brute-force model
// (validity, conflicts, removal, the winning pattern and its captures); at the
// end every pattern is also matched as a literal path, and the listing checked.
#include <tether/error.hpp>
#include <tether/router.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_assert.hpp"
#include "router_reference.hpp"

namespace {

// The documented pattern rules, checked one segment at a time.
bool model_valid(std::string_view pattern) {
  if (pattern.empty())
    return false;
  const auto segs = tether::test::split_segments(pattern);
  if (segs.size() > tether::path_router::max_segments)
    return false;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const auto s = segs[i];
    if (s.empty())
      return false;
    if (s == "*" || (s == "#" && i + 1 == segs.size()))
      continue;
    if (s.find_first_of("*#") != std::string_view::npos)
      return false;
  }
  return true;
}

void check_match(const tether::path_router& router, const std::map<std::string, std::uint64_t, std::less<>>& model,
                 std::string_view path) {
  const auto best =
      tether::test::reference_match_all(model, path, [](const auto& e) -> std::string_view { return e.first; });
  tether::captures caps;
  const auto v = router.match(path, caps);
  TETHER_FUZZ_ASSERT(v.has_value() == best.has_value());
  if (!v) {
    TETHER_FUZZ_ASSERT(caps.empty());
    return;
  }
  TETHER_FUZZ_ASSERT(*v == model.find(best->pattern)->second);
  TETHER_FUZZ_ASSERT(caps.size() == best->caps.size());
  for (std::size_t i = 0; i < caps.size(); ++i) {
    TETHER_FUZZ_ASSERT(caps[i] == best->caps[i]);
    // Views into the path, never copies.
    TETHER_FUZZ_ASSERT(caps[i].data() >= path.data() && caps[i].data() + caps[i].size() <= path.data() + path.size());
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view script(reinterpret_cast<const char*>(data), size);
  tether::path_router router;
  std::map<std::string, std::uint64_t, std::less<>> model;
  std::uint64_t next_value = 1;

  while (!script.empty()) {
    const auto nl = script.find('\n');
    const auto line = script.substr(0, nl);
    script.remove_prefix(nl == std::string_view::npos ? script.size() : nl + 1);
    const char op = line.empty() ? '?' : line.front();
    const auto arg = line.empty() ? line : line.substr(1);

    if (op == '+' || op == '=') {
      const bool replace = op == '=';
      const auto value = next_value++;
      const auto ec = router.add(arg, value, replace);
      if (!model_valid(arg)) {
        TETHER_FUZZ_ASSERT(ec == tether::error::invalid_pattern);
      } else if (auto it = model.find(arg); it != model.end() && !replace) {
        TETHER_FUZZ_ASSERT(ec == tether::error::route_conflict);
      } else {
        TETHER_FUZZ_ASSERT(!ec);
        model[std::string(arg)] = value;
      }
    } else if (op == '-') {
      const auto it = model.find(arg);
      const bool present = it != model.end();
      TETHER_FUZZ_ASSERT(router.remove(arg) == present);
      if (present)
        model.erase(it);
      TETHER_FUZZ_ASSERT(!router.contains(arg));
    } else {
      check_match(router, model, line);
    }
    TETHER_FUZZ_ASSERT(router.size() == model.size());
  }

  std::vector<std::string> listed;
  for (const auto& [pattern, value] : model) {
    TETHER_FUZZ_ASSERT(router.contains(pattern));
    check_match(router, model, pattern); // a pattern read as a literal path
    listed.push_back(pattern);
  }
  TETHER_FUZZ_ASSERT(router.patterns() == listed); // std::map order is byte order too
  return 0;
}
