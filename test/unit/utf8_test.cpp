// Incremental UTF-8 validation against Markus Kuhn's UTF-8 decoder stress test
// (sections 1-5), whole, split at every byte, and byte by byte, including where
// validation must fail (fail fast: at the first byte that cannot become valid).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <random>

#include "events.hpp"
#include "seed.hpp"
#include "utf8.hpp"

using tether::detail::utf8_accept;
using tether::detail::utf8_feed;
using tether::test::bytes;

namespace {

struct sample {
  const char* name;
  std::string text;
  int fail_at = -1; // index of the first byte that makes it invalid; -1 = valid
};

// Index at which byte-by-byte feeding fails, -1 if never; -2 if valid but incomplete.
int fail_index(const std::string& s) {
  std::uint32_t state = utf8_accept;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (!utf8_feed(state, std::string_view(s).substr(i, 1)))
      return static_cast<int>(i);
  return state == utf8_accept ? -1 : -2;
}

bool valid_split(const std::string& s, std::size_t cut) {
  std::uint32_t state = utf8_accept;
  return utf8_feed(state, std::string_view(s).substr(0, cut)) && utf8_feed(state, std::string_view(s).substr(cut)) &&
         state == utf8_accept;
}

const std::vector<sample>& valid_samples() {
  static const std::vector<sample> v = {
      {"1 kosme", bytes({0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5})},
      {"2.1.1 U+0000", bytes({0x00})},
      {"2.1.2 U+0080", bytes({0xC2, 0x80})},
      {"2.1.3 U+0800", bytes({0xE0, 0xA0, 0x80})},
      {"2.1.4 U+10000", bytes({0xF0, 0x90, 0x80, 0x80})},
      {"2.2.1 U+007F", bytes({0x7F})},
      {"2.2.2 U+07FF", bytes({0xDF, 0xBF})},
      {"2.2.3 U+FFFF", bytes({0xEF, 0xBF, 0xBF})},
      {"2.3.1 U+D7FF", bytes({0xED, 0x9F, 0xBF})},
      {"2.3.2 U+E000", bytes({0xEE, 0x80, 0x80})},
      {"2.3.3 U+FFFD", bytes({0xEF, 0xBF, 0xBD})},
      {"2.3.4 U+10FFFF", bytes({0xF4, 0x8F, 0xBF, 0xBF})},
      {"5.3.1 U+FFFE (noncharacters are valid UTF-8)", bytes({0xEF, 0xBF, 0xBE})},
      {"5.3.2 U+FFFF", bytes({0xEF, 0xBF, 0xBF})},
      {"ascii longer than a word", std::string("The quick brown fox jumps over the lazy dog 0123456789")},
      {"mixed", std::string("Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!")},
  };
  return v;
}

const std::vector<sample>& invalid_samples() {
  static const std::vector<sample> v = {
      {"2.1.5 5-byte U+200000", bytes({0xF8, 0x88, 0x80, 0x80, 0x80}), 0},
      {"2.1.6 6-byte U+4000000", bytes({0xFC, 0x84, 0x80, 0x80, 0x80, 0x80}), 0},
      {"2.2.4 U+1FFFFF", bytes({0xF7, 0xBF, 0xBF, 0xBF}), 0},
      {"2.3.5 U+110000", bytes({0xF4, 0x90, 0x80, 0x80}), 1},
      {"3.1.1 lone continuation 0x80", bytes({0x80}), 0},
      {"3.1.2 lone continuation 0xBF", bytes({0xBF}), 0},
      {"3.1.3 two continuations", bytes({0x80, 0xBF}), 0},
      {"3.2.1 lonely C0 start", bytes({0xC0, 0x20}), 0},
      {"3.2.1 lonely C2 start", bytes({0xC2, 0x20}), 1},
      {"3.2.2 lonely E0 start", bytes({0xE0, 0x20}), 1},
      {"3.2.3 lonely F0 start", bytes({0xF0, 0x20}), 1},
      {"3.2.4 lonely F8 start", bytes({0xF8, 0x20}), 0},
      {"3.2.5 lonely FC start", bytes({0xFC, 0x20}), 0},
      {"3.3.1 2-byte missing last", bytes({0xC0}), 0},
      {"3.3.2 3-byte missing last", bytes({0xE0, 0x80}), 1},
      {"3.3.6 DF missing last then ASCII", bytes({0xDF, 0x41}), 1},
      {"3.3.7 EF BF missing last then ASCII", bytes({0xEF, 0xBF, 0x41}), 2},
      {"3.3.8 F4 8F BF missing last then ASCII", bytes({0xF4, 0x8F, 0xBF, 0x41}), 3},
      {"3.5.1 FE", bytes({0xFE}), 0},
      {"3.5.2 FF", bytes({0xFF}), 0},
      {"3.5.3 FE FE FF FF", bytes({0xFE, 0xFE, 0xFF, 0xFF}), 0},
      {"4.1.1 overlong '/' 2 bytes", bytes({0xC0, 0xAF}), 0},
      {"4.1.2 overlong '/' 3 bytes", bytes({0xE0, 0x80, 0xAF}), 1},
      {"4.1.3 overlong '/' 4 bytes", bytes({0xF0, 0x80, 0x80, 0xAF}), 1},
      {"4.2.1 max overlong 2 bytes", bytes({0xC1, 0xBF}), 0},
      {"4.2.2 max overlong 3 bytes", bytes({0xE0, 0x9F, 0xBF}), 1},
      {"4.2.3 max overlong 4 bytes", bytes({0xF0, 0x8F, 0xBF, 0xBF}), 1},
      {"4.3.1 overlong NUL 2 bytes", bytes({0xC0, 0x80}), 0},
      {"4.3.2 overlong NUL 3 bytes", bytes({0xE0, 0x80, 0x80}), 1},
      {"5.1.1 U+D800", bytes({0xED, 0xA0, 0x80}), 1},
      {"5.1.2 U+DB7F", bytes({0xED, 0xAD, 0xBF}), 1},
      {"5.1.5 U+DC00", bytes({0xED, 0xB0, 0x80}), 1},
      {"5.1.7 U+DFFF", bytes({0xED, 0xBF, 0xBF}), 1},
      {"5.2.1 U+D800 U+DC00", bytes({0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}), 1},
      {"valid prefix then bad byte", std::string("abcdefghijkl\xCE\xBA\xFF"), 14},
  };
  return v;
}

} // namespace

TEST_CASE("valid samples pass whole, at every split and byte by byte") {
  for (const auto& s : valid_samples()) {
    CAPTURE(s.name);
    CHECK(tether::detail::is_valid_utf8(s.text));
    CHECK(fail_index(s.text) == -1);
    for (std::size_t cut = 0; cut <= s.text.size(); ++cut)
      CHECK(valid_split(s.text, cut));
  }
}

TEST_CASE("invalid samples fail whole, at every split, and as early as possible") {
  for (const auto& s : invalid_samples()) {
    CAPTURE(s.name);
    CHECK_FALSE(tether::detail::is_valid_utf8(s.text));
    CHECK(fail_index(s.text) == s.fail_at);
    for (std::size_t cut = 0; cut <= s.text.size(); ++cut)
      CHECK_FALSE(valid_split(s.text, cut));
  }
}

TEST_CASE("a truncated sequence is incomplete, not invalid, until the message ends") {
  // 3.3.3: F0 80 80 would be overlong; use a valid prefix of U+10000 instead.
  const auto prefix = bytes({0xF0, 0x90, 0x80});
  CHECK(fail_index(prefix) == -2);
  CHECK_FALSE(tether::detail::is_valid_utf8(prefix));
}

TEST_CASE("all 64 continuation bytes alone are invalid; every start byte without continuation is incomplete") {
  for (int b = 0x80; b <= 0xBF; ++b)
    CHECK(fail_index(bytes({b})) == 0);
  for (int b = 0xC2; b <= 0xF4; ++b)
    CHECK(fail_index(bytes({b})) == -2);
}

TEST_CASE("the fast validator agrees with the DFA on random text at random splits") {
  using tether::detail::utf8_valid_prefix;
  using tether::detail::utf8_valid_prefix_dfa;
  std::mt19937_64 rng(tether::test::seed());
  const std::vector<std::string> pieces = {"a", "hello world ", std::string(40, 'x'), "\xc3\xa9", "\xe2\x82\xac",
                                           "\xf0\x9f\x98\x80", "\xed\x9f\xbf", "\xf4\x8f\xbf\xbf", "\xef\xbf\xbf"};
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const int parts = static_cast<int>(rng() % 12);
    for (int i = 0; i < parts; ++i) {
      if (rng() % 8 == 0)
        text.push_back(static_cast<char>(rng() % 256)); // anything, often invalid
      else
        text += pieces[rng() % pieces.size()];
    }
    if (!text.empty() && rng() % 4 == 0)
      text.pop_back(); // often cuts a sequence short
    CAPTURE(text);
    std::uint32_t fast = utf8_accept, reference = utf8_accept;
    std::size_t pos = 0;
    while (pos < text.size()) {
      const std::size_t len = 1 + rng() % (text.size() - pos);
      const auto piece = std::string_view(text).substr(pos, len);
      const auto a = utf8_valid_prefix(fast, piece);
      const auto b = utf8_valid_prefix_dfa(reference, piece);
      REQUIRE(a == b);
      REQUIRE(fast == reference);
      if (a != piece.size())
        break;
      pos += len;
    }
  }
}

// Texts of 288 bytes or more go through a vector loop in 64-byte blocks once
// an ASCII run outlasts 32 bytes: one byte that is not ASCII, at any place of
// a short text or of a long one (several blocks) and after any start offset,
// is found where the DFA finds it, whether it starts a valid sequence or not.
TEST_CASE("one non-ASCII byte anywhere in a long ASCII run is judged as the DFA judges it") {
  using tether::detail::utf8_valid_prefix;
  using tether::detail::utf8_valid_prefix_dfa;
  for (const std::string insert : {"\x80", "\xff", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3"}) {
    for (const std::size_t length : {220, 600}) { // under the vector loop's 288 bytes, and over
      for (std::size_t start = 0; start < 8; ++start) {
        for (std::size_t at = 0; at + insert.size() <= length; ++at) {
          std::string text(start + length, 'a');
          text.replace(start + at, insert.size(), insert);
          const auto view = std::string_view(text).substr(start);
          CAPTURE(insert);
          CAPTURE(length);
          CAPTURE(at);
          std::uint32_t fast = utf8_accept, reference = utf8_accept;
          REQUIRE(utf8_valid_prefix(fast, view) == utf8_valid_prefix_dfa(reference, view));
          REQUIRE(fast == reference);
        }
      }
    }
  }
}
