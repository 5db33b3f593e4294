// Property: any sequence of valid messages (fragmented at random, with pings
// between fragments), serialized by one role and parsed by the other with random
// chunk splits, comes back unchanged. Seeded; see seed.hpp.
#include <doctest/doctest.h>
#include <tether/protocol.hpp>

#include <random>
#include <string>
#include <vector>

#include "events.hpp"
#include "seed.hpp"

using namespace tether;
using namespace tether::test;

namespace {

std::string random_text(std::mt19937_64& rng, std::size_t n) {
  // Mix of 1-4 byte characters; stop before exceeding n.
  static const char* pieces[] = {"a", "Z", " ", "\xC3\xA9", "\xCE\xBA", "\xE2\x82\xAC", "\xEF\xBF\xBD", "\xF0\x9F\x98\x80"};
  std::string s;
  while (s.size() < n) {
    const char* p = pieces[rng() % 8];
    if (s.size() + std::char_traits<char>::length(p) > n)
      break;
    s += p;
  }
  return s;
}

std::size_t random_size(std::mt19937_64& rng) {
  static const std::size_t interesting[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
  if (rng() % 4 == 0)
    return interesting[rng() % 8];
  return rng() % 2000;
}

void round_trip(role sender_role, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  protocol_options so;
  so.role = sender_role;
  protocol sender(so);
  std::vector<record> expected;
  const int messages = 1 + static_cast<int>(rng() % 20);
  for (int m = 0; m < messages; ++m) {
    const bool text = rng() % 2;
    const auto type = text ? opcode::text : opcode::binary;
    std::string payload;
    if (text) {
      payload = random_text(rng, random_size(rng));
    } else {
      payload.resize(random_size(rng));
      for (auto& c : payload)
        c = static_cast<char>(rng());
    }
    expected.push_back({event::kind::message_begin, type, {}, 0, {}});
    // Fragment at random points (a text fragment may end mid-character).
    std::size_t pos = 0;
    bool first = true;
    std::vector<record> pings;
    do {
      const std::size_t left = payload.size() - pos;
      const std::size_t n = (rng() % 3 == 0 || left == 0) ? left : rng() % (left + 1);
      const bool fin = pos + n == payload.size();
      REQUIRE(!sender.send_frame(first ? type : opcode::continuation, std::string_view(payload).substr(pos, n), fin));
      first = false;
      pos += n;
      if (!fin && rng() % 4 == 0) {
        const auto ping = std::to_string(rng() % 1000);
        REQUIRE(!sender.send_ping(ping));
        pings.push_back({event::kind::ping, opcode::ping, ping, 0, {}});
      }
    } while (pos < payload.size());
    // Expected events: data (merged), with pings splitting it where they fall.
    // Simpler to compare messages and pings separately; see below.
    expected.push_back({event::kind::data, type, payload, 0, {}});
    expected.insert(expected.end(), pings.begin(), pings.end());
    expected.push_back({event::kind::message_end, type, {}, 0, {}});
  }
  const std::string wire(sender.pending_output());

  protocol_options ro;
  ro.role = sender_role == role::client ? role::server : role::client;
  protocol receiver(ro);
  std::vector<std::size_t> cuts;
  for (std::size_t pos = 0; pos < wire.size();) {
    pos += 1 + rng() % 3000;
    if (pos < wire.size())
      cuts.push_back(pos);
  }
  auto got = run_split(receiver, wire, cuts);

  // Pull the pings out of the message stream and merge data chunks, so the
  // comparison is about content and order, not where pings fell.
  auto normalize = [](const std::vector<record>& in) {
    std::vector<record> msgs, pings;
    for (const auto& r : in) {
      if (r.what == event::kind::ping) {
        pings.push_back(r);
      } else if (r.what == event::kind::data && !msgs.empty() && msgs.back().what == event::kind::data) {
        msgs.back().data += r.data;
      } else if (r.what == event::kind::message_end && msgs.back().what == event::kind::message_begin) {
        msgs.push_back({event::kind::data, r.type, {}, 0, {}});
        msgs.push_back(r);
      } else {
        msgs.push_back(r);
      }
    }
    return std::pair{msgs, pings};
  };
  auto [want_msgs, want_pings] = normalize(expected);
  auto [got_msgs, got_pings] = normalize(got);
  CHECK(got_msgs == want_msgs);
  CHECK(got_pings == want_pings);
}

} // namespace

TEST_CASE("client to server: random messages survive random chunking") {
  const auto base = tether::test::seed();
  for (std::uint64_t i = 0; i < 200; ++i) {
    CAPTURE(base + i);
    round_trip(role::client, base + i);
  }
}

TEST_CASE("server to client: random messages survive random chunking") {
  const auto base = tether::test::seed();
  for (std::uint64_t i = 0; i < 200; ++i) {
    CAPTURE(base + i);
    round_trip(role::server, base + i);
  }
}
