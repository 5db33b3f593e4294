// The sans-IO protocol core: RFC 6455 §5.7 examples, every §5 violation with its
// close code, control frames, close handling, extensions and buffers.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/protocol.hpp>

#include <algorithm>
#include <array>
#include <set>
#include <cstring>
#include <string>
#include <vector>

#include "events.hpp"

using namespace tether;
using namespace tether::test;
using kind = event::kind;

namespace {

record begin(opcode t) { return {kind::message_begin, t, {}, 0, {}}; }
record data(opcode t, std::string d) { return {kind::data, t, std::move(d), 0, {}}; }
record end(opcode t) { return {kind::message_end, t, {}, 0, {}}; }

std::vector<record> message(opcode t, std::string d) {
  if (d.empty())
    return {begin(t), end(t)};
  return {begin(t), data(t, std::move(d)), end(t)};
}

// Parses what `sender` queued with a peer of the opposite role.
std::vector<record> peer_sees(protocol& sender) {
  auto opts = sender.options().role == role::client ? server_opts() : client_opts();
  opts.max_message_size = 0;
  opts.max_frame_size = 0;
  auto out = run_whole(opts, sender.pending_output());
  return out;
}

// Frame bytes with a given header, for hand-made (possibly invalid) input.
std::string frame(int b0, std::string payload, bool masked = false) {
  std::string s;
  s.push_back(static_cast<char>(b0));
  const std::size_t n = payload.size();
  const char m = masked ? char(0x80) : 0;
  if (n < 126) {
    s.push_back(static_cast<char>(m | static_cast<char>(n)));
  } else if (n <= 0xFFFF) {
    s.push_back(static_cast<char>(m | 126));
    s.push_back(static_cast<char>(n >> 8));
    s.push_back(static_cast<char>(n & 0xFF));
  } else {
    s.push_back(static_cast<char>(m | 127));
    for (int i = 7; i >= 0; --i)
      s.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  }
  if (masked) {
    const char key[4] = {0x11, 0x22, 0x33, 0x44};
    s.append(key, 4);
    for (std::size_t i = 0; i < n; ++i)
      payload[i] = static_cast<char>(payload[i] ^ key[i % 4]);
  }
  return s + payload;
}

std::string close_payload(std::uint16_t code, std::string reason = {}) {
  std::string s{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  return s + reason;
}

// Expects `input` (to a client) to fail with `ec` and close code `code`, and
// checks the close frame queued for the peer.
void expect_violation(std::string_view input, error ec, std::uint16_t code, protocol_options o = client_opts()) {
  CAPTURE(make_error_code(ec).message());
  for_every_split(o, input, [&](const std::vector<record>& got) {
    REQUIRE(!got.empty());
    CHECK(got.back().what == kind::error);
    CHECK(got.back().error == ec);
    CHECK(got.back().code == code);
  });
  protocol p(o);
  p.feed(input);
  std::vector<record> got;
  drain(p, got);
  CHECK(p.failed());
  CHECK(p.close_sent());
  auto peer = peer_sees(p);
  REQUIRE(peer.size() == 1);
  CHECK(peer[0].what == kind::close);
  CHECK(peer[0].code == code);
  // Nothing more comes out, whatever follows, and sends are refused.
  p.feed(frame(0x81, "more"));
  CHECK_FALSE(p.next_event().has_value());
  CHECK(p.send_message(opcode::text, "x") == error::closed);
}

} // namespace

TEST_CASE("RFC 6455 §5.7: a single-frame unmasked text message") {
  const auto in = bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
  for_every_split(client_opts(), in, [](const auto& got) { CHECK(got == message(opcode::text, "Hello")); });
  protocol server(server_opts());
  REQUIRE(!server.send_message(opcode::text, "Hello"));
  CHECK(server.pending_output() == in);
}

TEST_CASE("RFC 6455 §5.7: a single-frame masked text message") {
  const auto in = bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
  for_every_split(server_opts(), in, [](const auto& got) { CHECK(got == message(opcode::text, "Hello")); });
  // A client masks with a fresh key each time; the server still reads "Hello".
  protocol client(client_opts());
  REQUIRE(!client.send_message(opcode::text, "Hello"));
  CHECK(client.pending_output().size() == in.size());
  CHECK(peer_sees(client) == message(opcode::text, "Hello"));
}

TEST_CASE("RFC 6455 §5.7: a fragmented unmasked text message") {
  const auto in = bytes({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f});
  for_every_split(client_opts(), in, [](const auto& got) { CHECK(got == message(opcode::text, "Hello")); });
  protocol server(server_opts());
  REQUIRE(!server.send_frame(opcode::text, "Hel", false));
  REQUIRE(!server.send_frame(opcode::continuation, "lo", true));
  CHECK(server.pending_output() == in);
}

TEST_CASE("RFC 6455 §5.7: unmasked ping and masked pong") {
  const auto ping = bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
  for_every_split(client_opts(), ping, [](const auto& got) {
    REQUIRE(got.size() == 1);
    CHECK(got[0].what == kind::ping);
    CHECK(got[0].data == "Hello");
  });
  const auto pong = bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58});
  for_every_split(server_opts(), pong, [](const auto& got) {
    REQUIRE(got.size() == 1);
    CHECK(got[0].what == kind::pong);
    CHECK(got[0].data == "Hello");
  });
  protocol server(server_opts());
  REQUIRE(!server.send_ping("Hello"));
  CHECK(server.pending_output() == ping);
}

TEST_CASE("RFC 6455 §5.7: 256 bytes and 64 KiB binary messages") {
  for (std::size_t n : {256u, 65536u}) {
    std::string payload(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
      payload[i] = static_cast<char>(i * 7);
    protocol server(server_opts());
    REQUIRE(!server.send_message(opcode::binary, payload));
    const auto wire = std::string(server.pending_output());
    const auto head = n == 256 ? bytes({0x82, 0x7E, 0x01, 0x00}) : bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0});
    CHECK(wire.substr(0, head.size()) == head);
    CHECK(wire.substr(head.size()) == payload);
    CHECK(run_whole(client_opts(), wire) == message(opcode::binary, payload));
    CHECK(run_bytewise(client_opts(), wire) == message(opcode::binary, payload));
  }
}

TEST_CASE("control frames interleave with fragments, and pings are answered in order") {
  const auto in = frame(0x01, "Hel") + frame(0x89, "p1") + frame(0x8A, "q") + frame(0x89, "p2") + frame(0x80, "lo");
  for_every_split(client_opts(), in, [](const auto& got) {
    const std::vector<record> want = {begin(opcode::text), data(opcode::text, "Hel"),
                                      {kind::ping, opcode::ping, "p1", 0, {}},
                                      {kind::pong, opcode::pong, "q", 0, {}},
                                      {kind::ping, opcode::ping, "p2", 0, {}},
                                      data(opcode::text, "lo"), end(opcode::text)};
    CHECK(got == want);
  });
  protocol client(client_opts());
  client.feed(in);
  std::vector<record> ignored;
  drain(client, ignored);
  const std::vector<record> pongs = {{kind::pong, opcode::pong, "p1", 0, {}}, {kind::pong, opcode::pong, "p2", 0, {}}};
  CHECK(peer_sees(client) == pongs);
}

namespace {
record pong(std::string d) { return {kind::pong, opcode::pong, std::move(d), 0, {}}; }
std::string pings(std::initializer_list<const char*> payloads) {
  std::string in;
  for (const auto* p : payloads)
    in += frame(0x89, p);
  return in;
}
} // namespace

TEST_CASE("unwritten automatic pongs are bounded: past max_pong_backlog only the latest ping is answered") {
  auto o = client_opts();
  o.max_pong_backlog = 3;
  protocol client(o);
  client.feed(pings({"p1", "p2", "p3", "p4", "p5"}));
  std::vector<record> got;
  drain(client, got);
  CHECK(got.size() == 5); // every ping is still reported
  // p4 found three pongs waiting: they were dropped, p4 answered; p5 queued after it.
  CHECK(peer_sees(client) == std::vector<record>{pong("p4"), pong("p5")});
}

TEST_CASE("pongs already handed over or followed by another frame are never dropped") {
  auto o = client_opts();
  o.max_pong_backlog = 2;
  std::vector<record> ignored;
  SUBCASE("taken by the writer") {
    protocol client(o);
    client.feed(pings({"a", "b"}));
    drain(client, ignored);
    protocol::output_buffer taken;
    client.take_output(taken);
    client.feed(pings({"c", "d", "e"}));
    drain(client, ignored);
    CHECK(run_whole(server_opts(), {taken.data(), taken.size()}) == std::vector<record>{pong("a"), pong("b")});
    CHECK(peer_sees(client) == std::vector<record>{pong("e")});
  }
  SUBCASE("a message queued after them") {
    protocol client(o);
    client.feed(pings({"a", "b"}));
    drain(client, ignored);
    REQUIRE(!client.send_message(opcode::text, "m"));
    client.feed(pings({"c", "d", "e"}));
    drain(client, ignored);
    auto want = std::vector<record>{pong("a"), pong("b")};
    for (auto& r : message(opcode::text, "m"))
      want.push_back(r);
    want.push_back(pong("e"));
    CHECK(peer_sees(client) == want);
  }
  SUBCASE("partly written") {
    protocol client(o);
    client.feed(pings({"a", "b"}));
    drain(client, ignored);
    client.consume_output(1);
    const std::string left(client.pending_output());
    client.feed(pings({"c", "d"}));
    drain(client, ignored);
    CHECK(client.pending_output().substr(0, left.size()) == left); // nothing written-into was dropped
  }
}

TEST_CASE("empty messages and empty fragments") {
  const auto in = frame(0x81, "") + frame(0x02, "") + frame(0x00, "") + frame(0x80, "x");
  for_every_split(client_opts(), in, [](const auto& got) {
    std::vector<record> want = message(opcode::text, "");
    auto b = message(opcode::binary, "x");
    want.insert(want.end(), b.begin(), b.end());
    CHECK(got == want);
  });
}

TEST_CASE("protocol violations name the error and queue the RFC close code") {
  SUBCASE("reserved bits without an extension") {
    expect_violation(frame(0xC1, "x"), error::reserved_bits, 1002);
    expect_violation(frame(0xA1, "x"), error::reserved_bits, 1002);
    expect_violation(frame(0x91, "x"), error::reserved_bits, 1002);
  }
  SUBCASE("unknown opcodes") {
    expect_violation(frame(0x83, ""), error::unknown_opcode, 1002);
    expect_violation(frame(0x8B, ""), error::unknown_opcode, 1002);
  }
  SUBCASE("fragmented and oversized control frames") {
    expect_violation(frame(0x09, "x"), error::fragmented_control, 1002);
    expect_violation(frame(0x89, std::string(126, 'x')), error::control_too_big, 1002);
  }
  SUBCASE("continuation without a start; data frame inside a fragmented message") {
    expect_violation(frame(0x80, "x"), error::unexpected_continuation, 1002);
    expect_violation(frame(0x01, "a") + frame(0x81, "b"), error::expected_continuation, 1002);
    expect_violation(frame(0x01, "a") + frame(0x82, "b"), error::expected_continuation, 1002);
  }
  SUBCASE("non-minimal lengths and the 64-bit top bit") {
    expect_violation(bytes({0x82, 126, 0, 5}) + "abcde", error::non_minimal_length, 1002);
    expect_violation(bytes({0x82, 127, 0, 0, 0, 0, 0, 0, 1, 0}), error::non_minimal_length, 1002);
    expect_violation(bytes({0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}), error::length_msb_set, 1002);
  }
  SUBCASE("masking that does not fit the role") {
    expect_violation(frame(0x81, "hi", true), error::masked_frame_from_server, 1002);
    expect_violation(frame(0x81, "hi", false), error::unmasked_frame_from_client, 1002, server_opts());
  }
  SUBCASE("invalid UTF-8 fails fast, also across fragments") {
    expect_violation(frame(0x81, "ok\xC0"), error::invalid_utf8, 1007);
    // The first fragment ends mid-sequence (valid so far); the second breaks it.
    expect_violation(frame(0x01, "\xCE") + frame(0x80, "x"), error::invalid_utf8, 1007);
    // Fails before the message ends: no FIN has arrived.
    expect_violation(frame(0x01, "abc\xED\xA0"), error::invalid_utf8, 1007);
    // Incomplete at the end of the message.
    expect_violation(frame(0x81, "\xE2\x82"), error::invalid_utf8, 1007);
  }
  SUBCASE("close frame payloads") {
    expect_violation(frame(0x88, "\x03"), error::bad_close_payload, 1002);
    for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}) {
      CAPTURE(code);
      expect_violation(frame(0x88, close_payload(static_cast<std::uint16_t>(code))), error::bad_close_code, 1002);
    }
    expect_violation(frame(0x88, close_payload(1000, "\xFF")), error::invalid_close_reason, 1007);
  }
  SUBCASE("limits") {
    auto o = client_opts();
    o.max_frame_size = 100;
    expect_violation(frame(0x82, std::string(101, 'x')), error::frame_too_big, 1009, o);
    o = client_opts();
    o.max_message_size = 100;
    expect_violation(frame(0x02, std::string(60, 'x')) + frame(0x80, std::string(41, 'x')), error::message_too_big,
                     1009, o);
  }
}

TEST_CASE("frames at exactly the limits are accepted") {
  auto o = client_opts();
  o.max_frame_size = 100;
  o.max_message_size = 150;
  const auto in = frame(0x02, std::string(100, 'x')) + frame(0x80, std::string(50, 'y'));
  CHECK(run_whole(o, in) == message(opcode::binary, std::string(100, 'x') + std::string(50, 'y')));
}

TEST_CASE("valid close codes are accepted and echoed") {
  for (int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999}) {
    CAPTURE(code);
    protocol client(client_opts());
    client.feed(frame(0x88, close_payload(static_cast<std::uint16_t>(code), "bye")));
    auto ev = client.next_event();
    REQUIRE(ev);
    CHECK(ev->what == kind::close);
    CHECK(ev->code == code);
    CHECK(ev->data == "bye");
    CHECK(client.close_received());
    CHECK(client.close_sent());
    auto echo = peer_sees(client);
    REQUIRE(echo.size() == 1);
    CHECK(echo[0].code == code);
    CHECK_FALSE(client.next_event());
  }
}

TEST_CASE("an empty close reports 1005 and is echoed empty") {
  protocol client(client_opts());
  client.feed(frame(0x88, ""));
  auto ev = client.next_event();
  REQUIRE(ev);
  CHECK(ev->what == kind::close);
  CHECK(ev->code == close_code::no_status);
  auto echo = peer_sees(client);
  REQUIRE(echo.size() == 1);
  CHECK(echo[0].code == close_code::no_status);
}

TEST_CASE("our own close: codes that may not be sent, long reasons, nothing after close") {
  protocol client(client_opts());
  for (std::uint16_t code : {999, 1004, 1005, 1006, 1015, 2000, 5000})
    CHECK(client.send_close(code) == error::invalid_close_code);
  CHECK(client.send_close(1000, std::string(124, 'r')) == error::control_payload_too_big);
  CHECK(client.send_close(1000, "\xFF") == error::invalid_close_reason);
  CHECK_FALSE(client.close_sent());
  REQUIRE(!client.send_close(4000, std::string(123, 'r')));
  CHECK(client.close_sent());
  CHECK(client.send_message(opcode::text, "late") == error::closed);
  CHECK(client.send_ping() == error::closed);
  CHECK(client.send_close() == error::closed);
  auto peer = peer_sees(client);
  REQUIRE(peer.size() == 1);
  CHECK(peer[0].code == 4000);
  CHECK(peer[0].data == std::string(123, 'r'));
  // The peer's answer completes the handshake without a second close from us.
  client.consume_output(client.pending_output().size());
  client.feed(frame(0x88, close_payload(4000)));
  auto ev = client.next_event();
  REQUIRE(ev);
  CHECK(ev->what == kind::close);
  CHECK(client.pending_output().empty());
}

TEST_CASE("local misuse of the send API") {
  protocol client(client_opts());
  CHECK(client.send_frame(opcode::continuation, "x", true) == error::no_message_in_progress);
  REQUIRE(!client.send_frame(opcode::text, "a", false));
  CHECK(client.send_frame(opcode::binary, "b", true) == error::message_in_progress);
  CHECK(client.send_ping(std::string(126, 'p')) == error::control_payload_too_big);
  REQUIRE(!client.send_ping("between fragments"));
  REQUIRE(!client.send_frame(opcode::continuation, "b", true));
  const std::vector<record> want = {begin(opcode::text), data(opcode::text, "a"),
                                    {kind::ping, opcode::ping, "between fragments", 0, {}},
                                    data(opcode::text, "b"), end(opcode::text)};
  CHECK(peer_sees(client) == want);
}

namespace {

// A toy extension that run-length encodes payloads (pairs of count, byte), so a
// small frame decodes into a large message, and which works chunk by chunk.
class rle_extension final : public tether::extension {
public:
  std::vector<extension_offer> offers() const override { return {{"x-rle", {}}}; }
  std::error_code accept(const extension_offer&) override { return {}; }
  bool begin_encode(opcode, std::size_t, bool) override { return true; }
  std::error_code encode(std::string_view in, bool, std::string& out) override {
    for (char c : in) {
      out.push_back(1);
      out.push_back(c);
    }
    return {};
  }
  std::error_code decode(std::string_view in, bool fin, std::string& out, std::size_t limit) override {
    for (char c : in) {
      if (!have_count_) {
        count_ = static_cast<unsigned char>(c);
        have_count_ = true;
        continue;
      }
      have_count_ = false;
      if (out.size() + count_ > limit)
        return error::message_too_big;
      out.append(count_, c);
    }
    if (fin && have_count_)
      return std::make_error_code(std::errc::invalid_argument);
    return {};
  }

private:
  bool have_count_ = false;
  unsigned count_ = 0;
};

protocol with_rle(protocol_options o) {
  protocol p(o);
  p.set_extension(std::make_unique<rle_extension>());
  return p;
}

std::vector<record> run_rle(std::string_view in, protocol_options o = client_opts()) {
  auto p = with_rle(o);
  return run_split(p, in, {});
}

} // namespace

TEST_CASE("an extension claims RSV1 and transforms payloads both ways") {
  auto client = with_rle(client_opts());
  REQUIRE(!client.send_frame(opcode::text, "ab", false));
  REQUIRE(!client.send_frame(opcode::continuation, "c", true));
  const auto wire = std::string(client.pending_output());
  CHECK((static_cast<unsigned char>(wire[0]) & 0x40) != 0); // RSV1 on the first frame
  auto server = with_rle(server_opts());
  CHECK(run_split(server, wire, {}) == message(opcode::text, "abc"));
  // Byte by byte through the decoder.
  auto server2 = with_rle(server_opts());
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < wire.size(); ++i)
    cuts.push_back(i);
  CHECK(run_split(server2, wire, cuts) == message(opcode::text, "abc"));
}

TEST_CASE("extension: limits and UTF-8 apply to the transformed bytes; RSV1 only on a first frame") {
  auto o = client_opts();
  o.max_message_size = 500;
  // 4 pairs of (250, 'a') = 8 wire bytes, 1000 decoded bytes.
  const auto big = frame(0xC2, bytes({250, 'a', 250, 'a', 250, 'a', 250, 'a'}));
  auto got = run_rle(big, o);
  REQUIRE(!got.empty());
  CHECK(got.back().error == error::message_too_big);
  CHECK(got.back().code == 1009);

  got = run_rle(frame(0xC1, bytes({1, 0xFF})));
  REQUIRE(!got.empty());
  CHECK(got.back().error == error::invalid_utf8);

  got = run_rle(frame(0xC1, bytes({1})));
  REQUIRE(!got.empty());
  CHECK(got.back().error == error::extension_failed);
  CHECK(got.back().code == 1007);

  got = run_rle(frame(0x41, bytes({1, 'a'})) + frame(0xC0, bytes({1, 'b'})));
  REQUIRE(!got.empty());
  CHECK(got.back().error == error::reserved_bits);

  got = run_rle(frame(0xC9, ""));
  REQUIRE(!got.empty());
  CHECK(got.back().error == error::reserved_bits);

  // Without RSV1 the extension is bypassed.
  CHECK(run_rle(frame(0x81, "plain")) == message(opcode::text, "plain"));
}

TEST_CASE("the socket can read straight into the core's buffer") {
  protocol client(client_opts());
  const auto in = frame(0x82, std::string(1000, 'z'));
  std::size_t pos = 0;
  std::vector<record> got;
  while (pos < in.size()) {
    auto buf = client.prepare(300);
    REQUIRE(buf.size() >= 300);
    const auto n = std::min<std::size_t>(300, in.size() - pos);
    std::copy_n(in.data() + pos, n, buf.data());
    client.commit(n);
    pos += n;
    drain(client, got);
  }
  CHECK(got == message(opcode::binary, std::string(1000, 'z')));
}

TEST_CASE("payload read into the caller's memory gives the events that feeding gives") {
  // tether::stream reads a large frame's payload straight into the message
  // (direct_payload / commit_payload): the core must check it all the same.
  const std::string text = "h\xC3\xA9llo w\xF0\x9F\x98\x80rld " + std::string(3000, 'x');
  struct input {
    const char* what;
    protocol_options o;
    std::string bytes;
  };
  auto small_limit = client_opts();
  small_limit.max_message_size = 100;
  const std::vector<input> inputs = {
      {"fragmented text, a ping between fragments", client_opts(),
       frame(0x01, text.substr(0, 1000)) + frame(0x89, "p") + frame(0x80, text.substr(1000))},
      {"masked, to a server", server_opts(), frame(0x82, std::string(5000, 'm'), true) + frame(0x81, "next", true)},
      {"invalid UTF-8 in the middle", client_opts(), frame(0x81, std::string(700, 'a') + "\xC0" + std::string(300, 'b'))},
      {"text ending mid-character", client_opts(), frame(0x81, std::string(500, 'a') + "\xC3")},
      {"over max_message_size", small_limit, frame(0x82, std::string(300, 'z'))},
      {"empty frames and a close", client_opts(), frame(0x01, "") + frame(0x80, "") + frame(0x88, close_payload(1000))},
  };
  for (const auto& in : inputs) {
    CAPTURE(in.what);
    const auto want = run_whole(in.o, in.bytes);
    for (std::size_t step : {1u, 3u, 7u, 64u, 1000u, 100000u}) {
      CAPTURE(step);
      protocol p(in.o);
      CHECK(run_direct(p, in.bytes, step) == want);
    }
  }
}

TEST_CASE("direct payload is offered only for a data frame's unbuffered, untransformed payload") {
  protocol p(client_opts());
  const auto wire = frame(0x82, std::string(1000, 'd'));
  p.feed(wire.substr(0, 4)); // the header alone
  std::vector<record> got;
  drain(p, got);
  CHECK(p.direct_payload() == 1000);
  std::string own(300, 'd');
  CHECK(p.commit_payload(own) == 300);
  CHECK(p.direct_payload() == 700);
  p.feed(wire.substr(304, 10)); // buffered bytes come first
  CHECK(p.direct_payload() == 0);
  drain(p, got);
  CHECK(p.direct_payload() == 690);
  std::string rest(690, 'd');
  CHECK(p.commit_payload(rest) == 690);
  CHECK(p.direct_payload() == 0); // the message's end is still to be reported
  drain(p, got);
  // The fed bytes came as an event; the committed ones are the caller's already.
  CHECK(got == std::vector<record>{begin(opcode::binary), data(opcode::binary, std::string(10, 'd')), end(opcode::binary)});

  protocol ctl(client_opts());
  ctl.feed(frame(0x89, "12345").substr(0, 2));
  CHECK(ctl.direct_payload() == 0); // control frames are read whole

  auto rle = with_rle(client_opts());
  rle.feed(frame(0xC2, bytes({250, 'a'})).substr(0, 2));
  drain(rle, got);
  CHECK(rle.direct_payload() == 0); // the extension transforms it
}

TEST_CASE("buffered_input counts what was fed and not yet returned as events") {
  protocol client(client_opts());
  CHECK(client.buffered_input() == 0);
  const auto first = frame(0x81, "one");
  const auto second = frame(0x81, "two");
  client.feed(first + second.substr(0, 1)); // the second frame's header is cut short
  CHECK(client.buffered_input() == first.size() + 1);
  std::vector<record> got;
  drain(client, got); // the first message; the second's first byte waits
  CHECK(got == message(opcode::text, "one"));
  CHECK(client.buffered_input() == 1);
  client.feed(second.substr(1));
  got.clear();
  drain(client, got);
  CHECK(got == message(opcode::text, "two"));
  CHECK(client.buffered_input() == 0);
}

TEST_CASE("take_output hands the pending bytes over; frames queued later go elsewhere") {
  protocol p(client_opts());
  REQUIRE(!p.send_message(opcode::binary, std::string(1000, 'a')));
  const std::string first(p.pending_output());
  p.consume_output(10); // part of it written already
  protocol::output_buffer taken(7, 'x'); // emptied first
  p.take_output(taken);
  CHECK(std::string(taken.data(), taken.size()) == first.substr(10));
  CHECK(p.pending_output().empty());
  p.feed(frame(0x88, close_payload(1000))); // the close's echo is queued now
  std::vector<record> got;
  drain(p, got);
  CHECK(std::string(taken.data(), taken.size()) == first.substr(10));
  auto peer = peer_sees(p);
  REQUIRE(peer.size() == 1);
  CHECK(peer[0].what == kind::close);
}

TEST_CASE("begin_frame: the caller writes the payload in pieces; what the core queues meanwhile follows it") {
  for (const auto r : {role::client, role::server}) {
    CAPTURE(r == role::client);
    protocol p(r == role::client ? client_opts() : server_opts());
    std::string payload(300 * 1000, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i)
      payload[i] = static_cast<char>('a' + i % 26);
    REQUIRE(!p.send_message(opcode::text, "before"));
    protocol::payload_mask mask;
    REQUIRE(!p.begin_frame(opcode::binary, payload.size(), false, mask));
    CHECK(mask.masked == (r == role::client));
    protocol::output_buffer wire;
    p.take_output(wire); // "before" and the header, last
    // A ping arrives while the payload is being written: its pong waits.
    p.feed(frame(0x89, "hi", r == role::server)); // a client gets unmasked frames, a server masked
    std::vector<record> got;
    drain(p, got);
    for (std::size_t off = 0; off < payload.size(); off += 7777) { // odd pieces: the mask's phase moves
      const auto n = std::min<std::size_t>(7777, payload.size() - off);
      const auto at = wire.size();
      wire.resize(at + n);
      auto* out = reinterpret_cast<std::uint8_t*>(wire.data() + at);
      const auto* in = reinterpret_cast<const std::uint8_t*>(payload.data() + off);
      if (mask.masked)
        mask_copy({out, n}, {in, n}, mask.key, off);
      else
        std::copy(in, in + n, out);
    }
    CHECK(p.send_frame(opcode::text, "no", true) == error::message_in_progress); // the message goes on
    REQUIRE(!p.send_frame(opcode::continuation, "end", true));
    protocol::output_buffer rest;
    p.take_output(rest); // the pong, then the last fragment
    wire.insert(wire.end(), rest.begin(), rest.end());

    auto opts = r == role::client ? server_opts() : client_opts();
    opts.max_message_size = 0;
    opts.max_frame_size = 0;
    const auto seen = run_whole(opts, {wire.data(), wire.size()});
    REQUIRE(seen.size() == 8);
    CHECK(seen[1] == data(opcode::text, "before"));
    CHECK(seen[3] == begin(opcode::binary));
    CHECK(seen[4] == data(opcode::binary, payload));
    CHECK(seen[5].what == kind::pong); // the pong for the ping: after the frame, before the next
    CHECK(seen[5].data == "hi");
    CHECK(seen[6] == data(opcode::binary, "end"));
    CHECK(seen[7] == end(opcode::binary));
  }
  // Refusals: control opcodes, after close, with an extension.
  protocol p(client_opts());
  protocol::payload_mask mask;
  CHECK(p.begin_frame(opcode::ping, 1, true, mask) == std::errc::invalid_argument);
  CHECK(p.begin_frame(opcode::continuation, 1, true, mask) == error::no_message_in_progress);
  REQUIRE(!p.send_close());
  CHECK(p.begin_frame(opcode::text, 1, true, mask) == error::closed);
  auto compressed = with_rle(client_opts());
  CHECK(compressed.begin_frame(opcode::text, 1, true, mask) == std::errc::operation_not_supported);
  CHECK(compressed.pending_output().empty());
}

TEST_CASE("buffers start small, grow on demand and shrink back") {
  auto o = client_opts();
  o.max_message_size = 0;
  o.max_frame_size = 0;
  protocol client(o);
  const auto initial = client.input_capacity();
  CHECK(initial == o.initial_buffer_size);
  const auto big = frame(0x82, std::string(1 << 20, 'b'));
  client.feed(big);
  CHECK(client.input_capacity() >= big.size());
  std::vector<record> got;
  drain(client, got);
  CHECK(got == message(opcode::binary, std::string(1 << 20, 'b')));
  client.feed(frame(0x81, "small"));
  drain(client, got);
  CHECK(client.input_capacity() == initial);
}

TEST_CASE("a drained input buffer over twice the latest read shrinks back, also under 64 KiB") {
  // What an idle stream holds after traffic: its reads between messages are
  // small, and the buffer that earlier reads grew follows them down.
  auto o = client_opts();
  o.initial_buffer_size = 512;
  protocol client(o);
  std::string frames;
  while (frames.size() < 16 * 1024)
    frames += frame(0x81, std::string(100, 'a'));
  auto feed_read = [&](std::size_t ask, std::string_view bytes) {
    auto buf = client.prepare(ask);
    REQUIRE(buf.size() >= bytes.size());
    std::memcpy(buf.data(), bytes.data(), bytes.size());
    client.commit(bytes.size());
    std::vector<record> got;
    drain(client, got);
  };
  feed_read(frames.size(), frames);
  const auto grown = client.input_capacity();
  CHECK(grown >= frames.size());
  feed_read(frames.size(), frames); // reads as large as before: no shrinking
  CHECK(client.input_capacity() == grown);
  feed_read(512, frame(0x81, "small"));
  CHECK(client.input_capacity() == 512);
}

TEST_CASE("a failure mid-chunk delivers the valid prefix first, whatever the chunking") {
  // Found by fuzz-protocol-client: chunking must not change the events.
  const auto bad_utf8 = frame(0x81, "ok\xC0rest");
  for_every_split(client_opts(), bad_utf8, [](const auto& got) {
    REQUIRE(got.size() == 3);
    CHECK(got[1] == data(opcode::text, "ok"));
    CHECK(got[2].error == error::invalid_utf8);
  });
  auto o = client_opts();
  o.max_message_size = 5;
  const auto too_big = frame(0x82, "123456789");
  for_every_split(o, too_big, [](const auto& got) {
    REQUIRE(got.size() == 3);
    CHECK(got[1] == data(opcode::binary, "12345"));
    CHECK(got[2].error == error::message_too_big);
  });
}

TEST_CASE("masking keys look random: distinct across connections and frames, every bit balanced") {
  // RFC 6455 §5.3: keys must be unpredictable. They come from OpenSSL's CSPRNG;
  // this catches a constant, a counter or a key reused across connections.
  std::set<std::uint32_t> keys;
  std::array<int, 32> ones{};
  constexpr int connections = 50, frames = 20;
  for (int c = 0; c < connections; ++c) {
    protocol p(client_opts());
    for (int f = 0; f < frames; ++f) {
      REQUIRE(!p.send_message(opcode::text, "x"));
      const auto out = p.pending_output();
      REQUIRE(out.size() == 2 + 4 + 1); // header, key, 1 masked byte
      std::uint32_t key = 0;
      for (int i = 0; i < 4; ++i)
        key = key << 8 | static_cast<unsigned char>(out[2 + i]);
      keys.insert(key);
      for (int bit = 0; bit < 32; ++bit)
        ones[bit] += (key >> bit) & 1;
      p.consume_output(out.size());
    }
  }
  constexpr int total = connections * frames;
  // 1,000 random 32-bit keys collide with probability ~1e-4; two collisions ~1e-8.
  CHECK(keys.size() >= total - 1);
  for (int bit = 0; bit < 32; ++bit) {
    CAPTURE(bit);
    // Binomial(1000, 1/2): standard deviation 15.8; 350..650 is over 9 sigma.
    CHECK(ones[bit] > 350);
    CHECK(ones[bit] < 650);
  }
}
