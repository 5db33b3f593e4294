// The fast path for text envelopes: a single-pass scan of the top-level object.
// A routed message of a few dozen bytes cost about 17 allocations through
// nlohmann's DOM (a map node and a string per member, the lexer's buffers),
// a fifth of the handler's CPU per message; here a plain string value is
// copied once and only nested values go through nlohmann's parser.
#include <optional>
#include <string_view>

#include "json_text.hpp"
#include "text_decode.hpp"
#include "utf8.hpp"

namespace tether::detail {
namespace {

constexpr bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// What numbers, true, false and null are made of. The span must stop at any
// other byte: nlohmann ends its input at a NUL, so "7\0..." alone parses as 7.
constexpr bool is_scalar_char(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '+' ||
         c == '.';
}

class scanner {
public:
  explicit scanner(std::string_view s) noexcept : s_(s) {}

  bool eat(char c) noexcept {
    skip_space();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  bool at_end() noexcept {
    skip_space();
    return i_ == s_.size();
  }

  bool at_string() noexcept {
    skip_space();
    return i_ < s_.size() && s_[i_] == '"';
  }

  // The body of a string without escapes or control characters, in valid
  // UTF-8: the decoded string is the body itself. Anything else: nullopt.
  std::optional<std::string_view> plain_string() noexcept {
    if (!at_string())
      return std::nullopt;
    const auto end = s_.find('"', i_ + 1);
    if (end == std::string_view::npos)
      return std::nullopt;
    const auto body = s_.substr(i_ + 1, end - i_ - 1);
    if (needs_json_escape(body) || !is_valid_utf8(body))
      return std::nullopt;
    i_ = end + 1;
    return body;
  }

  // Any value: a plain string directly, else nlohmann parses the span of an
  // escaped string, a balanced object or array, or a scalar.
  std::optional<json> value() {
    if (at_string())
      if (const auto body = plain_string())
        return json(std::string(*body));
    const auto start = i_;
    if (i_ < s_.size() && s_[i_] == '"')
      skip_string();
    else if (i_ < s_.size() && (s_[i_] == '{' || s_[i_] == '['))
      skip_nested();
    else
      while (i_ < s_.size() && is_scalar_char(s_[i_]))
        ++i_;
    if (i_ == start)
      return std::nullopt;
    const auto span = s_.substr(start, i_ - start);
    try {
      return json::parse(span.begin(), span.end());
    } catch (const json::exception&) { // the full parser says what is wrong
      return std::nullopt;
    }
  }

private:
  void skip_space() noexcept {
    while (i_ < s_.size() && is_space(s_[i_]))
      ++i_;
  }

  // Past the closing quote of the string starting here (or to the end).
  void skip_string() noexcept {
    const auto end = json_string_end(s_, i_ + 1);
    i_ = end == std::string_view::npos ? s_.size() : end + 1;
  }

  // Past the matching bracket (or to the end, where the parse will fail).
  void skip_nested() noexcept {
    std::size_t depth = 0;
    for (; i_ < s_.size(); ++i_) {
      const char c = s_[i_];
      if (c == '"') {
        i_ = json_string_end(s_, i_ + 1);
        if (i_ == std::string_view::npos) {
          i_ = s_.size();
          return;
        }
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        ++i_;
        return;
      }
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

} // namespace

bool decode_text_flat(std::string_view frame, envelope_fields names, envelope& e) {
  scanner in(frame);
  if (!in.eat('{'))
    return false;
  bool have_path = false;
  bool have_data = false;
  auto& extra = e.extra.get_ref<json::object_t&>();
  if (!in.eat('}')) {
    do {
      const auto key = in.plain_string();
      if (!key || !in.eat(':'))
        return false;
      if (*key == names.path) {
        const auto path = in.plain_string();
        if (have_path || !path)
          return false;
        e.path.assign(*path);
        have_path = true;
      } else if (*key == error_field) {
        const auto text = in.plain_string();
        if (e.error || !text)
          return false;
        e.error.emplace(*text);
      } else {
        auto v = in.value();
        if (!v)
          return false;
        if (*key == names.data) {
          if (have_data)
            return false;
          e.data = std::move(*v);
          have_data = true;
        } else if (*key == id_field || *key == reply_to_field) {
          auto& id = *key == id_field ? e.id : e.reply_to;
          if (id || !(v->is_string() || v->is_number()))
            return false;
          id = std::move(*v);
        } else if (!extra.emplace(std::string(*key), std::move(*v)).second) {
          return false;
        }
      }
    } while (in.eat(','));
    if (!in.eat('}'))
      return false;
  }
  return have_path && in.at_end();
}

} // namespace tether::detail
