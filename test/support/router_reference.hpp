// Brute-force path_router reference, independent of the trie: the winner is the matching pattern whose per-segment
// ranks (exact < '*' < '#') compare lexicographically least; invalid paths (an empty segment) match nothing.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::test {

// "a.b" -> {"a", "b"}; empty segments kept ("" -> {""}, "a..b" -> {"a", "", "b"}).
inline std::vector<std::string_view> split_segments(std::string_view s) {
  std::vector<std::string_view> out;
  for (;;) {
    const auto dot = s.find('.');
    out.push_back(s.substr(0, dot));
    if (dot == std::string_view::npos)
      return out;
    s.remove_prefix(dot + 1);
  }
}

struct reference_match {
  std::string_view pattern; // set by reference_match_all
  // One rank per path segment (literal 0, '*' 1, '#' 2), then a final rank: 0 when
  // the pattern ends with the path, 2 when a '#' matched the rest (zero segments included).
  std::vector<int> ranks;
  std::vector<std::string_view> caps; // views into the path
};

// Does the (valid) `pattern` match `path`, with which captures and ranks?
inline std::optional<reference_match> reference_one(std::string_view pattern, std::string_view path) {
  const auto p = split_segments(pattern);
  const auto s = split_segments(path);
  for (const auto seg : s)
    if (seg.empty())
      return std::nullopt; // invalid paths match nothing
  const bool tail = p.back() == "#";
  const std::size_t fixed = tail ? p.size() - 1 : p.size();
  if (tail ? s.size() < fixed : s.size() != fixed)
    return std::nullopt;
  reference_match m;
  m.pattern = pattern;
  std::size_t offset = 0; // where segment i starts in path
  for (std::size_t i = 0; i < fixed; ++i) {
    if (p[i] == "*") {
      m.ranks.push_back(1);
      m.caps.push_back(s[i]);
    } else if (p[i] == s[i]) {
      m.ranks.push_back(0);
    } else {
      return std::nullopt;
    }
    offset += s[i].size() + 1;
  }
  if (tail) {
    m.ranks.insert(m.ranks.end(), s.size() - fixed + 1, 2);
    m.caps.push_back(offset > path.size() ? path.substr(path.size()) : path.substr(offset));
  } else {
    m.ranks.push_back(0);
  }
  return m;
}

// The winner among `patterns`, or nullopt. `key` maps an element to its pattern and must
// return a reference or view into the element (result.pattern points there); on a tie
// (impossible for distinct patterns) the first wins.
template <class Patterns, class Key = std::identity>
std::optional<reference_match> reference_match_all(const Patterns& patterns, std::string_view path, Key key = {}) {
  std::optional<reference_match> best;
  for (const auto& e : patterns) {
    auto m = reference_one(std::string_view(std::invoke(key, e)), path);
    if (m && (!best || m->ranks < best->ranks))
      best = std::move(m);
  }
  return best;
}

} // namespace tether::test
