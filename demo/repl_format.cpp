#include "repl_format.hpp"

#include "repl_console.hpp"

#include <tether/error.hpp>
#include <tether/retry.hpp>
#include <tether/url.hpp>

#include <fmt/core.h>


namespace repl {

using tether::json;

std::string path_text(std::string_view path) {
  if (path.empty() || path.find_first_of(" \t") != std::string_view::npos)
    return one_line_json(json(std::string(path)));
  return printable(path);
}

std::string captures_text(const tether::captures& caps) {
  std::string s = "[";
  for (std::size_t i = 0; i < caps.size(); ++i) {
    if (i)
      s += ", ";
    s += caps[i].empty() ? std::string("\"\"") : printable(caps[i]);
  }
  return s + "]";
}

bool has_wildcards(std::string_view pattern) {
  for (std::size_t start = 0;;) {
    const auto dot = pattern.find('.', start);
    const auto seg = pattern.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (seg == "*" || seg == "#")
      return true;
    if (dot == std::string_view::npos)
      return false;
    start = dot + 1;
  }
}

std::string fields_text(const tether::envelope& e) {
  json f = json::object();
  if (e.id)
    f["id"] = *e.id;
  if (e.reply_to)
    f["reply_to"] = *e.reply_to;
  if (e.error)
    f["error"] = *e.error;
  if (e.extra.is_object())
    for (const auto& [k, v] : e.extra.items())
      f[k] = v;
  return f.empty() ? std::string() : " fields=" + one_line_json(f);
}

std::string pattern_error_text(std::string_view pattern, std::error_code ec) {
  const char* why = ec == tether::error::invalid_pattern ? tether::pattern_problem(pattern) : nullptr;
  return fmt::format("invalid pattern '{}': {}", printable(pattern), why ? std::string(why) : ec.message());
}

std::string rtt_text(std::chrono::nanoseconds rtt) { return fmt::format("{:.3f}", rtt.count() / 1e6); }

std::string binary_text(std::string_view bytes) {
  std::string s = fmt::format("binary {} bytes", bytes.size());
  constexpr std::size_t preview = 16;
  for (std::size_t i = 0; i < bytes.size() && i < preview; ++i)
    s += fmt::format("{}{:02x}", i == 0 ? ": " : " ", static_cast<unsigned char>(bytes[i]));
  if (bytes.size() > preview)
    s += " ...";
  return s;
}

std::string hex_text(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    s += digits[b >> 4];
    s += digits[b & 0xf];
  }
  return s;
}

namespace {

/// "N/M" (retry N of --max-retries M), or "N" without a limit.
std::string attempt_text(unsigned attempt, int max_retries) {
  if (max_retries < 0)
    return std::to_string(attempt);
  return fmt::format("{}/{}", attempt, max_retries);
}

std::string seconds_text(std::chrono::milliseconds d) { return fmt::format("{:.1f} s", d.count() / 1000.0); }

} // namespace

std::string state_text(const tether::state_change& c, std::string_view url, int max_retries) {
  using tether::connection_state;
  // Why the attempt or connection ended, as tether words it (the URL, the HTTP
  // status, the close code and its name, OpenSSL's reason). It may quote the
  // server (a close reason): printable, as it comes.
  const auto why = printable(c.reason.empty() ? c.error.message() : c.reason);
  const auto where = without_userinfo(url);
  switch (c.state) {
  case connection_state::idle:
    return {};
  case connection_state::connecting:
    return "* connecting to " + where;
  case connection_state::reconnecting:
    if (c.error)
      return fmt::format("* reconnecting in {} (attempt {}): {}", seconds_text(c.delay),
                         attempt_text(c.attempt, max_retries), why);
    return fmt::format("* reconnecting to {} (attempt {})", where, attempt_text(c.attempt, max_retries));
  case connection_state::open:
    return "* connected to " + where;
  case connection_state::closing:
    return "* closing";
  case connection_state::closed:
    return "* closed";
  case connection_state::failed:
    // The rule says why nothing follows (max_retries reached, reconnect is
    // off, a close or status the policy does not retry); a reconnecting line
    // needs none: its delay and attempt say what follows.
    return c.rule.empty() ? "* failed: " + why : fmt::format("* failed: {}: {}", printable(c.rule), why);
  }
  return {};
}

std::string retry_plan_text(const tether::handler_options& h, unsigned attempt) {
  tether::backoff_policy p;
  p.kind = h.backoff;
  p.base = h.backoff_base;
  p.max_delay = h.max_delay;
  p.jitter = 0; // The un-jittered delays bound the jittered ones.
  if (h.max_retries < 0)
    return fmt::format("* retrying without limit, each wait at most {}; --max-retries N sets a limit",
                       seconds_text(h.max_delay));
  const auto last = static_cast<unsigned>(h.max_retries);
  std::chrono::milliseconds total{0};
  for (unsigned n = attempt; n <= last; ++n)
    total += tether::backoff_delay(p, n, 1.0);
  const unsigned left = last >= attempt ? last - attempt + 1 : 0;
  return fmt::format("* up to {} more attempt{}, waiting at most {} in all; --max-retries 0 fails at once", left,
                     left == 1 ? "" : "s", seconds_text(total));
}

bool names_url(std::string_view details, std::string_view url) {
  if (details.find(without_userinfo(url)) != std::string_view::npos)
    return true;
  tether::url parsed;
  return !tether::parse_url(url, parsed) && details.find(parsed.to_string()) != std::string_view::npos;
}

std::string cannot_connect_text(std::string_view url, std::string_view details) {
  if (names_url(details, url))
    return fmt::format("cannot connect: {}", printable(details));
  return fmt::format("cannot connect to {}: {}", printable(without_userinfo(url)), printable(details));
}

} // namespace repl
