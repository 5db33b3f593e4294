#include <tether/error.hpp>
#include <tether/router.hpp>

#include <algorithm>
#include <functional>
#include <unordered_map>
#include <utility>

namespace tether {
namespace {

// Walks the '.'-separated segments of a string; the caller has checked that
// there are no empty segments.
class segments {
public:
  explicit segments(std::string_view s) noexcept : rest_(s) {}

  bool next(std::string_view& seg) noexcept {
    if (done_)
      return false;
    const auto dot = rest_.find('.');
    if (dot == std::string_view::npos) {
      seg = rest_;
      done_ = true;
    } else {
      seg = rest_.substr(0, dot);
      rest_.remove_prefix(dot + 1);
    }
    return true;
  }

private:
  std::string_view rest_;
  bool done_ = false;
};

const char* pattern_problem_of(std::string_view pattern) noexcept {
  if (pattern.empty())
    return "the pattern is empty";
  std::size_t count = 0;
  std::size_t start = 0;
  for (;;) {
    const auto dot = pattern.find('.', start);
    const auto seg = pattern.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (seg.empty())
      return "a segment is empty (leading, trailing or doubled '.')";
    if (++count > path_router::max_segments)
      return "more than 256 segments";
    // '*' and '#' are wildcards only as a whole segment; inside one they would be
    // ambiguous with a future glob syntax, so they are refused rather than literal.
    if (seg.size() > 1 && seg.find_first_of("*#") != std::string_view::npos)
      return "'*' and '#' must be whole segments";
    if (dot == std::string_view::npos)
      return nullptr;
    if (seg == "#")
      return "'#' must be the last segment";
    start = dot + 1;
  }
}

bool valid_pattern(std::string_view pattern) noexcept { return pattern_problem_of(pattern) == nullptr; }

bool valid_path(std::string_view path) noexcept {
  return !path.empty() && path.front() != '.' && path.back() != '.' && path.find("..") == std::string_view::npos;
}

} // namespace

void captures::push_back(std::string_view s) {
  if (!spilled_ && size_ < inline_capacity) {
    inline_[size_++] = s;
    return;
  }
  if (!spilled_) {
    overflow_.assign(inline_.begin(), inline_.end());
    spilled_ = true;
  }
  overflow_.push_back(s);
  ++size_;
}

namespace detail {

struct router_node {
  using node = router_node;
  using value_type = path_router::value_type;

  // Transparent hashing, so match() looks segments up as string_views without
  // building a std::string per segment.
  struct segment_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  std::unordered_map<std::string, std::unique_ptr<node>, segment_hash, std::equal_to<>> children;
  std::unique_ptr<node> star;
  std::optional<value_type> value;      // a pattern ends at this node
  std::optional<value_type> hash_value; // the pattern "<this node's prefix>.#"

  bool empty() const noexcept { return children.empty() && !star && !value && !hash_value; }
};

} // namespace detail

namespace {

using node = detail::router_node;
using value_type = path_router::value_type;

// Depth-first in precedence order (literal, '*', '#'), so the first success is
// the most specific match. `pos` is where the next path segment starts; past
// the end once every segment is consumed.
bool match_from(const node& n, std::string_view path, std::size_t pos, captures& out, value_type& result) {
  if (pos > path.size()) {
    if (n.value) {
      result = *n.value;
      return true;
    }
    if (n.hash_value) {
      out.push_back(path.substr(path.size())); // '#' matched zero segments
      result = *n.hash_value;
      return true;
    }
    return false;
  }
  const auto dot = path.find('.', pos);
  const auto end = dot == std::string_view::npos ? path.size() : dot;
  const auto seg = path.substr(pos, end - pos);
  if (!n.children.empty()) {
    const auto it = n.children.find(seg);
    if (it != n.children.end() && match_from(*it->second, path, end + 1, out, result))
      return true;
  }
  if (n.star) {
    out.push_back(seg);
    if (match_from(*n.star, path, end + 1, out, result))
      return true;
    out.pop_back();
  }
  if (n.hash_value) {
    out.push_back(path.substr(pos));
    result = *n.hash_value;
    return true;
  }
  return false;
}

void collect(const node& n, std::string& prefix, std::vector<std::string>& out) {
  const auto old = prefix.size();
  const auto descend = [&](std::string_view seg, const node* child) {
    if (old != 0)
      prefix += '.';
    prefix += seg;
    if (child)
      collect(*child, prefix, out);
    else
      out.push_back(prefix);
    prefix.resize(old);
  };
  if (n.value)
    out.push_back(prefix); // never the root: patterns are non-empty
  if (n.hash_value)
    descend("#", nullptr);
  if (n.star)
    descend("*", n.star.get());
  for (const auto& [seg, child] : n.children)
    descend(seg, child.get());
}

} // namespace

const char* pattern_problem(std::string_view pattern) noexcept { return pattern_problem_of(pattern); }

path_router::path_router() = default;
path_router::~path_router() = default;

path_router::path_router(path_router&& other) noexcept
    : root_(std::move(other.root_)), size_(std::exchange(other.size_, 0)) {}

path_router& path_router::operator=(path_router&& other) noexcept {
  root_ = std::move(other.root_);
  size_ = std::exchange(other.size_, 0);
  return *this;
}

std::error_code path_router::add(std::string_view pattern, value_type value, bool replace) {
  if (!valid_pattern(pattern))
    return error::invalid_pattern;
  if (!root_)
    root_ = std::make_unique<node>();
  node* n = root_.get();
  std::optional<value_type>* slot = nullptr;
  segments segs(pattern);
  std::string_view seg;
  while (segs.next(seg)) {
    if (seg == "#") {
      slot = &n->hash_value;
      break;
    }
    if (seg == "*") {
      if (!n->star)
        n->star = std::make_unique<node>();
      n = n->star.get();
      continue;
    }
    auto it = n->children.find(seg);
    if (it == n->children.end())
      it = n->children.emplace(std::string(seg), std::make_unique<node>()).first;
    n = it->second.get();
  }
  if (!slot)
    slot = &n->value;
  if (*slot) {
    if (!replace)
      return error::route_conflict;
  } else {
    ++size_;
  }
  *slot = value;
  return {};
}

bool path_router::remove(std::string_view pattern) {
  if (!root_ || !valid_pattern(pattern))
    return false;
  // Each step down, so the nodes emptied by the removal can be pruned bottom-up.
  struct step {
    node* parent;
    node* child;
    std::string_view key; // empty for the '*' child
  };
  std::vector<step> steps;
  node* n = root_.get();
  std::optional<value_type>* slot = nullptr;
  segments segs(pattern);
  std::string_view seg;
  while (segs.next(seg)) {
    if (seg == "#") {
      slot = &n->hash_value;
      break;
    }
    node* child = nullptr;
    if (seg == "*") {
      child = n->star.get();
      seg = {};
    } else if (const auto it = n->children.find(seg); it != n->children.end()) {
      child = it->second.get();
    }
    if (!child)
      return false;
    steps.push_back({n, child, seg});
    n = child;
  }
  if (!slot)
    slot = &n->value;
  if (!*slot)
    return false;
  slot->reset();
  --size_;
  for (auto it = steps.rbegin(); it != steps.rend() && it->child->empty(); ++it) {
    if (it->key.empty())
      it->parent->star.reset();
    else
      it->parent->children.erase(it->parent->children.find(it->key));
  }
  return true;
}

std::optional<path_router::value_type> path_router::match(std::string_view path, captures& out) const {
  out.clear();
  value_type result = 0;
  if (!root_ || !valid_path(path) || !match_from(*root_, path, 0, out, result)) {
    out.clear();
    return std::nullopt;
  }
  return result;
}

bool path_router::contains(std::string_view pattern) const {
  if (!root_ || !valid_pattern(pattern))
    return false;
  const node* n = root_.get();
  segments segs(pattern);
  std::string_view seg;
  while (segs.next(seg)) {
    if (seg == "#")
      return n->hash_value.has_value();
    if (seg == "*") {
      n = n->star.get();
    } else {
      const auto it = n->children.find(seg);
      n = it == n->children.end() ? nullptr : it->second.get();
    }
    if (!n)
      return false;
  }
  return n->value.has_value();
}

std::vector<std::string> path_router::patterns() const {
  std::vector<std::string> out;
  out.reserve(size_);
  if (root_) {
    std::string prefix;
    collect(*root_, prefix, out);
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace tether
