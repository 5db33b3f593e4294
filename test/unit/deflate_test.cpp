// permessage-deflate (RFC 7692): the §7.2.3 examples byte for byte, the
// negotiation's rules, context takeover, the 8-bit window, the threshold, a
// deflate bomb held to the message limit, and random round trips at random
// fragment splits.
#include <doctest/doctest.h>
#include <tether/deflate.hpp>
#include <tether/error.hpp>
#include <tether/handshake.hpp>
#include <tether/protocol.hpp>

#include <zlib.h>

#include <random>
#include <string>
#include <vector>

#include "events.hpp"
#include "seed.hpp"

using namespace tether;
using namespace tether::test;
using kind = event::kind;

namespace {

extension_offer answer(std::vector<std::pair<std::string, std::optional<std::string>>> params = {}) {
  return {"permessage-deflate", std::move(params)};
}

std::unique_ptr<extension> negotiated(const extension_offer& response, deflate_options o = {}) {
  auto ext = make_permessage_deflate(o);
  REQUIRE(ext);
  REQUIRE(!ext->accept(response));
  return ext;
}

protocol client_with(std::unique_ptr<extension> ext, protocol_options o = client_opts()) {
  protocol p(o);
  p.set_extension(std::move(ext));
  return p;
}

/// The text messages a client protocol with permessage-deflate reads from `wire`.
std::vector<std::string> texts(std::string_view wire, const extension_offer& response = answer()) {
  auto p = client_with(negotiated(response));
  std::vector<std::string> got;
  for (const auto& r : run_split(p, wire, {})) {
    REQUIRE_MESSAGE(!r.error, r.error.message());
    if (r.what == kind::message_begin)
      got.emplace_back();
    else if (r.what == kind::data)
      got.back() += r.data;
  }
  return got;
}

/// Our encoder's payload for one whole message.
std::string encode(extension& ext, std::string_view text) {
  std::string out;
  REQUIRE(ext.begin_encode(opcode::text, text.size(), true));
  REQUIRE(!ext.encode(text, true, out));
  return out;
}

} // namespace

TEST_CASE("RFC 7692 §7.2.3: every example inflates to its message") {
  // 7.2.3.1, whole and fragmented.
  CHECK(texts(bytes({0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})) == std::vector<std::string>{"Hello"});
  CHECK(texts(bytes({0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00})) ==
        std::vector<std::string>{"Hello"});
  // 7.2.3.2: the second message refers to the first one's window.
  CHECK(texts(bytes({0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00,
                     0x00})) == std::vector<std::string>{"Hello", "Hello"});
  // 7.2.3.3: a stored (uncompressed) block.
  CHECK(texts(bytes({0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00})) ==
        std::vector<std::string>{"Hello"});
  // 7.2.3.4: a block with BFINAL set, then a message that still uses the window.
  CHECK(texts(bytes({0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0xc1, 0x05, 0xf2, 0x00, 0x11,
                     0x00, 0x00})) == std::vector<std::string>{"Hello", "Hello"});
  // 7.2.3.5: two deflate blocks in one message.
  CHECK(texts(bytes({0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00})) ==
        std::vector<std::string>{"Hello"});
  // 7.2.3.6: an empty message.
  CHECK(texts(bytes({0xc1, 0x01, 0x00})) == std::vector<std::string>{""});
}

TEST_CASE("RFC 7692 §7.2.3.1-2: deflating at zlib's default level and memLevel 8 gives the RFC's bytes") {
  deflate_options o;
  o.level = Z_DEFAULT_COMPRESSION == -1 ? 6 : Z_DEFAULT_COMPRESSION;
  o.mem_level = 8;
  o.window_bits = 15;
  o.threshold = 0;
  auto ext = negotiated(answer(), o);
  CHECK(encode(*ext, "Hello") == bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}));
  CHECK(encode(*ext, "Hello") == bytes({0xf2, 0x00, 0x11, 0x00, 0x00})); // context takeover
  // client_no_context_takeover: each message stands alone.
  auto alone = negotiated(answer({{"client_no_context_takeover", std::nullopt}}), o);
  CHECK(encode(*alone, "Hello") == bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}));
  CHECK(encode(*alone, "Hello") == bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}));
}

TEST_CASE("the offer: our window and a fallback without parameters") {
  auto ext = make_permessage_deflate({});
  const auto offers = ext->offers();
  REQUIRE(offers.size() == 2);
  CHECK(format_extension(offers[0]) == "permessage-deflate; client_max_window_bits=12");
  CHECK(format_extension(offers[1]) == "permessage-deflate");
  deflate_options o;
  o.window_bits = 15;
  o.server_no_context_takeover = true;
  o.client_no_context_takeover = true;
  o.server_max_window_bits = 10;
  CHECK(format_extension(make_permessage_deflate(o)->offers()[0]) ==
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; "
        "client_max_window_bits");
  o.level = 10;
  CHECK_THROWS_AS(make_permessage_deflate(o), std::invalid_argument);
}

TEST_CASE("the server's answer: parameters we did not offer, duplicates and bad windows fail the handshake") {
  deflate_options o;
  o.server_max_window_bits = 12;
  const std::vector<extension_offer> bad{
      answer({{"unknown", std::nullopt}}),
      answer({{"server_no_context_takeover", std::nullopt}, {"server_no_context_takeover", std::nullopt}}),
      answer({{"server_no_context_takeover", "1"}}),
      answer({{"server_max_window_bits", "16"}}),
      answer({{"server_max_window_bits", "7"}}),
      answer({{"server_max_window_bits", "09"}}),
      answer({{"server_max_window_bits", std::nullopt}}),
      answer({{"server_max_window_bits", "13"}}), // more than the 12 we asked for
      answer({{"client_max_window_bits", std::nullopt}}),
      answer({{"client_max_window_bits", "13"}}), // more than our 12
      answer({{"client_max_window_bits", "10"}, {"client_max_window_bits", "10"}}),
  };
  for (const auto& r : bad) {
    CAPTURE(format_extension(r));
    CHECK(make_permessage_deflate(o)->accept(r) == error::handshake_bad_extension);
  }
  const std::vector<extension_offer> good{
      answer(),
      answer({{"server_no_context_takeover", std::nullopt}, {"client_no_context_takeover", std::nullopt}}),
      answer({{"server_max_window_bits", "8"}}),
      answer({{"client_max_window_bits", "9"}}),
  };
  for (const auto& r : good) {
    CAPTURE(format_extension(r));
    CHECK(!make_permessage_deflate(o)->accept(r));
  }
}

TEST_CASE("an 8-bit window for our direction, and short messages, go uncompressed") {
  auto ext = negotiated(answer({{"client_max_window_bits", "8"}}));
  CHECK(!ext->begin_encode(opcode::text, 1000, true));
  auto normal = negotiated(answer());
  CHECK(!normal->begin_encode(opcode::text, 31, true));  // under the default threshold of 32
  CHECK(normal->begin_encode(opcode::text, 32, true));
  CHECK(normal->begin_encode(opcode::binary, 5, false)); // a first fragment: the message may be long
  // Over the wire: no RSV1 on the short message.
  auto client = client_with(negotiated(answer()));
  REQUIRE(!client.send_frame(opcode::text, "short", true));
  CHECK((static_cast<unsigned char>(client.pending_output()[0]) & 0x40) == 0);
}

TEST_CASE("a deflate bomb fails with 1009 while inflating, holding at most the limit") {
  // 8 MiB of zeros deflate to about 8 KiB.
  std::string compressed;
  {
    auto ext = negotiated(answer(), deflate_options{.window_bits = 15, .threshold = 0});
    compressed = encode(*ext, std::string(8 << 20, '\0'));
  }
  REQUIRE(compressed.size() < 64 * 1024);
  std::string wire = bytes({0xc2, 126, static_cast<int>(compressed.size() >> 8),
                             static_cast<int>(compressed.size() & 0xff)});
  wire += compressed;
  auto o = client_opts();
  o.max_message_size = 1 << 20;
  auto p = client_with(negotiated(answer()), o);
  const auto got = run_split(p, wire, {});
  REQUIRE(!got.empty());
  CHECK(got.back().error == error::message_too_big);
  CHECK(got.back().code == 1009);
  std::size_t delivered = 0;
  for (const auto& r : got)
    if (r.what == kind::data)
      delivered += r.data.size();
  CHECK(delivered <= o.max_message_size);
}

TEST_CASE("random messages round-trip at random fragment splits, with and without context takeover") {
  std::mt19937_64 rng(tether::test::seed());
  for (bool takeover : {true, false}) {
    CAPTURE(takeover);
    deflate_options o;
    o.threshold = 0;
    o.client_no_context_takeover = !takeover;
    auto response = takeover ? answer() : answer({{"client_no_context_takeover", std::nullopt}});
    auto client = client_with(negotiated(response, o));
    auto server_o = server_opts();
    server_o.max_message_size = 0;
    auto server = client_with(negotiated(response, o), server_o); // decoding is the same in both roles
    std::vector<std::string> sent;
    for (int m = 0; m < 40; ++m) {
      std::string text;
      const auto n = std::uniform_int_distribution<std::size_t>(0, 20000)(rng);
      const char* alphabet = "abcab ca\n{}\"0123";
      for (std::size_t i = 0; i < n; ++i)
        text.push_back(alphabet[rng() % 16]);
      sent.push_back(text);
      // Random fragments.
      std::size_t pos = 0;
      bool first = true;
      do {
        const auto len = std::min(text.size() - pos, std::uniform_int_distribution<std::size_t>(1, 5000)(rng));
        const bool fin = pos + len == text.size();
        REQUIRE(!client.send_frame(first ? opcode::text : opcode::continuation, std::string_view(text).substr(pos, len),
                                   fin));
        pos += len;
        first = false;
      } while (pos < text.size());
    }
    const std::string wire(client.pending_output());
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0; at < wire.size();) {
      at += std::uniform_int_distribution<std::size_t>(1, 3000)(rng);
      if (at < wire.size())
        cuts.push_back(at);
    }
    std::vector<std::string> got;
    for (const auto& r : run_split(server, wire, cuts)) {
      REQUIRE_MESSAGE(!r.error, r.error.message());
      if (r.what == kind::message_begin)
        got.emplace_back();
      else if (r.what == kind::data)
        got.back() += r.data;
    }
    CHECK(got == sent);
  }
}

TEST_CASE("a server that breaks its agreed window is decoded the same however TCP splits the message") {
  // The server agreed to a 9-bit (512-byte) window and then refers 700 bytes
  // back. We inflate with the full window, so the message decodes; with a
  // 512-byte window zlib would accept the reference only while the bytes were
  // still in its current output buffer, i.e. depending on the split.
  std::mt19937_64 rng(tether::test::seed());
  std::string half;
  for (int i = 0; i < 700; ++i)
    half.push_back(static_cast<char>('a' + rng() % 26));
  const std::string text = half + half;
  std::string compressed;
  {
    auto ext = negotiated(answer(), deflate_options{.window_bits = 15, .threshold = 0});
    compressed = encode(*ext, text);
  }
  REQUIRE(compressed.size() < 1000); // the second half is a back reference
  std::string wire = bytes({0xc1, 126, static_cast<int>(compressed.size() >> 8),
                             static_cast<int>(compressed.size() & 0xff)});
  wire += compressed;
  deflate_options o;
  o.server_max_window_bits = 9;
  const auto response = answer({{"server_max_window_bits", "9"}});
  for (std::size_t cut = 0; cut < wire.size(); ++cut) {
    CAPTURE(cut);
    auto p = client_with(negotiated(response, o));
    const std::vector<std::size_t> cuts = cut ? std::vector<std::size_t>{cut} : std::vector<std::size_t>{};
    std::string got;
    for (const auto& r : run_split(p, wire, cuts)) {
      REQUIRE_MESSAGE(!r.error, r.error.message());
      if (r.what == kind::data)
        got += r.data;
    }
    REQUIRE(got == text);
  }
}
