#pragma once
// Helpers for driving tether::protocol in tests: feed bytes in chosen chunks and
// collect events as plain values, with adjacent data chunks merged (chunking may
// split data events differently; the messages must not change).
#include <tether/protocol.hpp>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tether::test {

struct record {
  event::kind what;
  opcode type = opcode::text;
  std::string data;
  std::uint16_t code = 0;
  std::error_code error;
  friend bool operator==(const record&, const record&) = default;
};

inline std::ostream& operator<<(std::ostream& os, const record& r) {
  static const char* names[] = {"begin", "data", "end", "ping", "pong", "close", "error"};
  os << names[static_cast<int>(r.what)] << "(" << static_cast<int>(r.type) << ", " << r.data.size() << " bytes";
  if (r.code)
    os << ", code " << r.code;
  if (r.error)
    os << ", " << r.error.message();
  return os << ")";
}

/// Pulls every available event from `p` into `out`.
inline void drain(protocol& p, std::vector<record>& out) {
  while (auto ev = p.next_event()) {
    if (ev->what == event::kind::data && !out.empty() && out.back().what == event::kind::data) {
      out.back().data.append(ev->data);
      continue;
    }
    record r{ev->what, ev->type, std::string(ev->data), ev->code, ev->error};
    if (r.what == event::kind::message_end || r.what == event::kind::message_begin)
      r.data.clear();
    out.push_back(std::move(r));
  }
}

/// Feeds `input` cut at the ascending positions `cuts`, draining after each piece.
inline std::vector<record> run_split(protocol& p, std::string_view input, std::span<const std::size_t> cuts) {
  std::vector<record> out;
  std::size_t pos = 0;
  for (auto cut : cuts) {
    p.feed(input.substr(pos, cut - pos));
    drain(p, out);
    pos = cut;
  }
  p.feed(input.substr(pos));
  drain(p, out);
  return out;
}

/// Reads `input` the way tether::stream does: `step` bytes at a time through
/// prepare/commit, except that while the core offers direct_payload() the
/// payload goes into memory of the reader's own (commit_payload), `step` bytes
/// at most per read. Must give the records that feeding the input whole gives.
inline std::vector<record> run_direct(protocol& p, std::string_view input, std::size_t step) {
  std::vector<record> out;
  std::size_t pos = 0;
  std::string own;
  for (;;) {
    drain(p, out);
    if (pos == input.size())
      return out;
    const std::size_t room = std::min(step, input.size() - pos);
    if (const auto direct = p.direct_payload(); direct > 0) {
      own.assign(input.substr(pos, static_cast<std::size_t>(std::min<std::uint64_t>(direct, room))));
      pos += own.size();
      const auto keep = p.commit_payload(own);
      if (keep == 0)
        continue;
      if (out.empty() || out.back().what != event::kind::data) { // drain() merges adjacent chunks too
        auto begin = std::find_if(out.rbegin(), out.rend(), [](const record& r) { return r.what == event::kind::message_begin; });
        out.push_back({event::kind::data, begin == out.rend() ? opcode::text : begin->type, {}, 0, {}});
      }
      out.back().data.append(own, 0, keep);
      continue;
    }
    p.feed(input.substr(pos, room));
    pos += room;
  }
}

inline std::vector<record> run_whole(protocol_options o, std::string_view input) {
  protocol p(o);
  return run_split(p, input, {});
}

inline std::vector<record> run_bytewise(protocol_options o, std::string_view input) {
  protocol p(o);
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < input.size(); ++i)
    cuts.push_back(i);
  return run_split(p, input, cuts);
}

/// Checks that `input` gives `expected` whole, byte by byte and split once at every position.
template <class Check>
void for_every_split(protocol_options o, std::string_view input, Check&& check) {
  check(run_whole(o, input));
  check(run_bytewise(o, input));
  for (std::size_t i = 1; i < input.size(); ++i) {
    protocol p(o);
    const std::size_t cut[] = {i};
    check(run_split(p, input, cut));
  }
}

inline std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b)
    s.push_back(static_cast<char>(c));
  return s;
}

inline protocol_options client_opts() { return {}; }
inline protocol_options server_opts() {
  protocol_options o;
  o.role = role::server;
  return o;
}

} // namespace tether::test
