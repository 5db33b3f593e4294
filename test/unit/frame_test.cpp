// Frame header encoding and decoding (RFC 6455 §5.2) and masking (§5.3).
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/frame.hpp>

#include <cstring>
#include <ostream> // doctest prints std::error_code through it
#include <random>
#include <vector>

#include "seed.hpp"

using namespace tether;

namespace {

std::vector<std::uint8_t> encode(const frame_header& h) {
  std::array<std::uint8_t, max_header_size> buf;
  auto n = encode_header(h, buf);
  return {buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)};
}

header_result decode(const std::vector<std::uint8_t>& in, frame_header& h) { return decode_header(in, h); }

} // namespace

TEST_CASE("length forms use the minimal encoding and round-trip") {
  for (std::uint64_t len : {0ull, 1ull, 125ull, 126ull, 127ull, 65535ull, 65536ull, 1ull << 32, (1ull << 63) - 1}) {
    for (bool masked : {false, true}) {
      frame_header h;
      h.op = opcode::binary;
      h.length = len;
      h.masked = masked;
      h.key = {1, 2, 3, 4};
      auto bytes = encode(h);
      const std::size_t expect_len = (len < 126 ? 2 : len <= 0xFFFF ? 4 : 10) + (masked ? 4 : 0);
      CHECK(bytes.size() == expect_len);
      frame_header back;
      auto r = decode(bytes, back);
      REQUIRE(!r.ec);
      CHECK(r.consumed == expect_len);
      CHECK(back.length == len);
      CHECK(back.masked == masked);
      if (masked)
        CHECK(back.key == h.key);
      // Every proper prefix asks for more bytes.
      for (std::size_t i = 0; i < bytes.size(); ++i) {
        std::vector<std::uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(i));
        auto pr = decode(prefix, back);
        CHECK(pr.consumed == 0);
        CHECK(!pr.ec);
      }
    }
  }
}

TEST_CASE("flags and opcodes round-trip") {
  for (auto op : {opcode::continuation, opcode::text, opcode::binary, opcode::close, opcode::ping, opcode::pong}) {
    frame_header h;
    h.op = op;
    h.fin = true;
    h.rsv1 = true;
    h.rsv3 = true;
    auto bytes = encode(h);
    frame_header back;
    REQUIRE(decode(bytes, back).consumed == 2);
    CHECK(back.op == op);
    CHECK(back.fin);
    CHECK(back.rsv1);
    CHECK_FALSE(back.rsv2);
    CHECK(back.rsv3);
  }
}

TEST_CASE("RFC 6455 §5.7 headers byte for byte") {
  frame_header h;
  h.op = opcode::text;
  h.length = 5;
  CHECK(encode(h) == std::vector<std::uint8_t>{0x81, 0x05});
  h.masked = true;
  h.key = {0x37, 0xfa, 0x21, 0x3d};
  CHECK(encode(h) == std::vector<std::uint8_t>{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d});
  frame_header b;
  b.op = opcode::binary;
  b.length = 256;
  CHECK(encode(b) == std::vector<std::uint8_t>{0x82, 0x7E, 0x01, 0x00});
  b.length = 65536;
  CHECK(encode(b) == std::vector<std::uint8_t>{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0});
}

TEST_CASE("header violations") {
  frame_header h;
  SUBCASE("unknown opcodes") {
    for (int op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
      std::vector<std::uint8_t> in{static_cast<std::uint8_t>(0x80 | op), 0};
      CHECK(decode(in, h).ec == error::unknown_opcode);
    }
  }
  SUBCASE("fragmented control") {
    CHECK(decode({0x09, 0x00}, h).ec == error::fragmented_control);
    CHECK(decode({0x08, 0x00}, h).ec == error::fragmented_control);
  }
  SUBCASE("control over 125 bytes") {
    CHECK(decode({0x89, 126}, h).ec == error::control_too_big);
    CHECK(decode({0x8A, 127}, h).ec == error::control_too_big);
  }
  SUBCASE("non-minimal lengths") {
    CHECK(decode({0x82, 126, 0x00, 0x7D}, h).ec == error::non_minimal_length);
    CHECK(decode({0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, h).ec == error::non_minimal_length);
  }
  SUBCASE("64-bit length with the top bit set") {
    CHECK(decode({0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, h).ec == error::length_msb_set);
  }
}

namespace {

const std::array<std::uint8_t, 4> test_key{0x37, 0xfa, 0x21, 0x3d};

std::vector<std::uint8_t> random_payload() {
  std::mt19937_64 rng(tether::test::seed());
  std::vector<std::uint8_t> data(420);
  for (auto& b : data)
    b = static_cast<std::uint8_t>(rng());
  return data;
}

// Calls check(offset, len, start) for every key offset, length under 100 and
// unaligned start within a word.
template <class Check>
void every_masking_case(Check&& check) {
  for (std::size_t offset = 0; offset < 4; ++offset)
    for (std::size_t len = 0; len < 400; ++len) // past 256 bytes frames are masked in 64-byte vector blocks, then words
      for (std::size_t start = 0; start < 9; ++start)
        check(offset, len, start);
}

} // namespace

TEST_CASE("masking matches a byte-wise reference at every offset and length") {
  const auto data = random_payload();
  every_masking_case([&](std::size_t offset, std::size_t len, std::size_t start) {
    auto got = data;
    apply_mask({got.data() + start, len}, test_key, offset);
    auto want = data;
    for (std::size_t i = 0; i < len; ++i)
      want[start + i] ^= test_key[(offset + i) % 4];
    REQUIRE(got == want);
  });
}

TEST_CASE("mask_copy writes what a copy and apply_mask give, and leaves its input alone") {
  auto data = random_payload();
  const auto& key = test_key;
  every_masking_case([&](std::size_t offset, std::size_t len, std::size_t start) {
    // Unaligned sources and targets; nothing written outside [out, out + len).
    std::vector<std::uint8_t> got(len + 16, 0xEE);
    const auto before = data;
    mask_copy({got.data() + (8 - start % 8), len}, {data.data() + start, len}, key, offset);
    std::vector<std::uint8_t> want(len + 16, 0xEE);
    for (std::size_t i = 0; i < len; ++i)
      want[8 - start % 8 + i] = data[start + i] ^ key[(offset + i) % 4];
    REQUIRE(got == want);
    REQUIRE(data == before);
  });
  SUBCASE("in place, as apply_mask") {
    auto a = data;
    auto b = data;
    mask_copy(a, a, key, 3);
    apply_mask(b, key, 3);
    CHECK(a == b);
  }
  SUBCASE("masks only as much as the shorter span") {
    std::vector<std::uint8_t> out(10, 0);
    mask_copy(out, {data.data(), 4}, key);
    CHECK(out[3] == (data[3] ^ key[3]));
    CHECK(out[4] == 0);
  }
}

TEST_CASE("masking in chunks equals masking at once") {
  std::vector<std::uint8_t> data(1000, 0x55);
  auto whole = data;
  const std::array<std::uint8_t, 4> key{9, 8, 7, 6};
  apply_mask(whole, key);
  auto chunked = data;
  std::size_t pos = 0;
  for (std::size_t step : {1u, 3u, 7u, 64u, 5u, 300u, 620u}) {
    apply_mask({chunked.data() + pos, step}, key, pos);
    pos += step;
  }
  REQUIRE(pos == data.size());
  CHECK(chunked == whole);
}
