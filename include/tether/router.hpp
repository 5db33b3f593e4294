#pragma once
/// @file
/// A pattern → value matcher over dot-separated paths ("orders.*.filled",
/// "ticker.#"): the trie under the handler's message router.

#include <tether/export.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tether {

namespace detail {
struct router_node;
} // namespace detail

/// The wildcard segments captured by one match, in pattern order: a `*` captures
/// its segment, a `#` captures the rest of the path as one view (empty when it
/// matched zero segments). The views point into the matched path: they are valid
/// only while that string lives.
///
/// Room for `inline_capacity` captures is inline, so short patterns never
/// allocate; beyond that the captures spill to a vector whose capacity is kept by
/// clear(), so a reused `captures` object stops allocating after warm-up.
class TETHER_API captures {
public:
  /// Captures held without allocating.
  static constexpr std::size_t inline_capacity = 4;

  /// Number of captured segments.
  std::size_t size() const noexcept { return size_; }
  /// True when nothing was captured.
  bool empty() const noexcept { return size_ == 0; }
  /// The i-th capture; `i < size()` (unchecked).
  std::string_view operator[](std::size_t i) const noexcept { return data()[i]; }
  /// First capture (contiguous storage).
  const std::string_view* begin() const noexcept { return data(); }
  /// One past the last capture.
  const std::string_view* end() const noexcept { return data() + size_; }

  /// Forgets every capture; keeps the overflow capacity.
  void clear() noexcept {
    size_ = 0;
    spilled_ = false;
    overflow_.clear();
  }
  /// Appends a capture; allocates only past inline_capacity.
  void push_back(std::string_view s);
  /// Drops the last capture; `!empty()` (unchecked). Used when the router backtracks.
  void pop_back() noexcept {
    --size_;
    if (spilled_)
      overflow_.pop_back();
  }

private:
  const std::string_view* data() const noexcept { return spilled_ ? overflow_.data() : inline_.data(); }

  std::array<std::string_view, inline_capacity> inline_{};
  std::vector<std::string_view> overflow_; // holds every capture once spilled_
  std::size_t size_ = 0;
  bool spilled_ = false;
};

/// Why `pattern` is not a valid route pattern ("'#' must be the last segment",
/// ...), or nullptr when it is valid. add() and add_route() put it in their errors.
TETHER_API const char* pattern_problem(std::string_view pattern) noexcept;

/// Matches dot-separated paths against registered patterns and returns the value
/// of the most specific one.
///
/// Patterns. Split on '.'; each segment is either
/// - a literal: one or more bytes, none of them '.', '*' or '#';
/// - `*`: exactly one path segment (captured);
/// - `#`: zero or more trailing path segments (captured as one view), allowed only
///   as the whole last segment ("a.#" and "#" are valid; "#.a", "a.#.#" are not).
///
/// add() rejects with error::invalid_pattern: an empty pattern, an empty segment
/// ("a..b", ".a", "a."), '*' or '#' inside a longer segment ("a*", "x#y"), '#'
/// anywhere but the last segment, and more than max_segments segments.
///
/// Paths. Every byte is literal ('*' and '#' in a path are ordinary characters).
/// An empty path or one with an empty segment matches nothing.
///
/// Precedence. Among all patterns that match, the winner is decided segment by
/// segment, left to right: a literal beats `*`, which beats `#`. A more specific
/// branch that fails further down is abandoned for the next one (backtracking):
/// with "a.b.c" and "a.*.d", "a.b.d" matches "a.*.d". At the end of the path a
/// pattern that ends there beats a `#` matching zero segments: with "a" and
/// "a.#", "a" matches "a". Two distinct patterns never tie.
///
/// Cost. add/remove/contains are O(pattern length). match is O(path length) when
/// the table has no wildcards, whatever the number of routes (one hash lookup per
/// segment). With wildcards each level may try the literal branch and then the
/// `*` branch, so a pathological table (a literal and a `*` at every level, every
/// branch failing at the last segment) costs O(2^depth) per match; `#` never adds
/// branching. Each trie node is visited at most once per match, so a match never
/// costs more than the size of the table (test/bench/router_bench.cpp measures
/// both shapes). Recursion depth is bounded by max_segments. match allocates
/// only when more than captures::inline_capacity segments are captured into a
/// fresh `captures`.
///
/// Thread safety: not thread safe. Concurrent const calls (match, contains,
/// patterns, size) are safe; anything concurrent with add/remove needs external
/// synchronisation (the handler wraps its table in its own lock).
class TETHER_API path_router {
public:
  /// The value stored per pattern (for the handler, an index into its callbacks).
  using value_type = std::uint64_t;

  /// Patterns with more segments are invalid (bounds the recursion of match).
  static constexpr std::size_t max_segments = 256;

  /// An empty table; allocates nothing until the first add().
  path_router();
  ~path_router();
  /// Moves the table; the source is left empty and usable.
  path_router(path_router&&) noexcept;
  /// Moves the table; the source is left empty and usable.
  path_router& operator=(path_router&&) noexcept;
  path_router(const path_router&) = delete;
  path_router& operator=(const path_router&) = delete;

  /// Adds `pattern` → `value`. Errors: error::invalid_pattern (see the class
  /// rules), error::route_conflict when `pattern` is present and `replace` is
  /// false (the table is unchanged). With `replace` an existing value is overwritten.
  std::error_code add(std::string_view pattern, value_type value, bool replace = false);

  /// Removes `pattern` (compared as written, not matched); false if absent or
  /// invalid. Prunes the trie nodes left empty.
  bool remove(std::string_view pattern);

  /// The value of the most specific pattern matching `path`, or nullopt. `out` is
  /// cleared first and, on a match, holds that pattern's captures (views into `path`).
  std::optional<value_type> match(std::string_view path, captures& out) const;

  /// Number of patterns.
  std::size_t size() const noexcept { return size_; }
  /// True when there are no patterns.
  bool empty() const noexcept { return size_ == 0; }

  /// True if `pattern` itself (not a path it matches) is registered.
  bool contains(std::string_view pattern) const;

  /// Every pattern, sorted by byte value (for listing and diagnostics).
  std::vector<std::string> patterns() const;

private:
  std::unique_ptr<detail::router_node> root_; // created by the first add()
  std::size_t size_ = 0;
};

} // namespace tether
