// json_codec and field_codec: exact encodings and field order, round trips
// (extra fields, ids of both types, random envelopes), every decode rejection
// with its reason, batches, field names, binary frames, encode rejections.
#include <ostream> // before doctest, which only forward-declares it: CHECKs print std::error_code

#include <doctest/doctest.h>

#include <tether/codec.hpp>
#include <tether/error.hpp>

#include "seed.hpp"
#include "text_decode.hpp"

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using tether::envelope;
using tether::error;
using tether::json;

namespace {

const tether::json_codec codec;

std::string encode_ok(const envelope& e, const tether::codec& c = codec) {
  std::string out;
  bool binary = true;
  REQUIRE(!c.encode(e, out, binary));
  CHECK(binary == e.binary);
  return out;
}

std::vector<envelope> decode_ok(std::string_view frame, const tether::codec& c = codec, bool binary = false) {
  std::vector<envelope> out;
  std::string reason = "untouched";
  CAPTURE(frame);
  const auto ec = c.decode(frame, binary, out, reason);
  CAPTURE(reason);
  REQUIRE(!ec);
  CHECK(reason == "untouched"); // written only on error
  return out;
}

envelope decode_one(std::string_view frame, const tether::codec& c = codec, bool binary = false) {
  auto out = decode_ok(frame, c, binary);
  REQUIRE(out.size() == 1);
  return std::move(out.front());
}

// The reason for a rejected frame; checks the error code and that nothing was appended.
std::string decode_err(std::string_view frame, const tether::codec& c = codec) {
  std::vector<envelope> out(1);
  out[0].path = "kept";
  std::string reason;
  CAPTURE(frame);
  CHECK(c.decode(frame, false, out, reason) == error::invalid_envelope);
  CHECK(out.size() == 1);
  CHECK(out[0].path == "kept");
  CHECK(!reason.empty());
  CHECK(reason.size() <= tether::codec::max_reason_size);
  for (const char ch : reason)
    CHECK((ch >= 0x20 && ch < 0x7f));
  return reason;
}

envelope round_trip(const envelope& e, const tether::codec& c = codec) {
  const auto frame = encode_ok(e, c);
  CAPTURE(frame);
  auto back = decode_one(frame, c, e.binary);
  CHECK(back == e);
  return back;
}

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

// Whether the text fast path took `frame`; when it did, the full parser must
// have made the same envelope of it.
bool flat_agrees(std::string_view frame, tether::detail::envelope_fields names = {"path", "data"}) {
  CAPTURE(frame);
  envelope flat;
  if (!tether::detail::decode_text_flat(frame, names, flat))
    return false;
  std::vector<envelope> full;
  std::string reason;
  REQUIRE(!tether::detail::decode_text_full(frame, names, full, reason));
  REQUIRE(full.size() == 1);
  CHECK(full[0] == flat);
  return true;
}

} // namespace

TEST_CASE("encoding: exact text and field order") {
  envelope e;
  e.path = "orders.42";
  e.data = {{"qty", 3}, {"side", "buy"}};
  CHECK(encode_ok(e) == R"({"path":"orders.42","data":{"qty":3,"side":"buy"}})");

  e.id = "r-1";
  e.reply_to = 7;
  e.error = "boom";
  e.extra = {{"z", true}, {"b", {1, 2}}};
  CHECK(encode_ok(e) == R"({"path":"orders.42","data":{"qty":3,"side":"buy"},"id":"r-1","reply_to":7,)"
                        R"("error":"boom","b":[1,2],"z":true})");

  // data is always written, null included; strings are escaped.
  envelope n;
  n.path = "a\"b\n";
  CHECK(encode_ok(n) == R"({"path":"a\"b\n","data":null})");

  // encode appends.
  std::string out = "prefix|";
  bool binary = true;
  REQUIRE(!codec.encode(n, out, binary));
  CHECK(!binary);
  CHECK(out == R"(prefix|{"path":"a\"b\n","data":null})");
}

TEST_CASE("round trips") {
  envelope e;
  e.path = "a.b";
  round_trip(e);
  e.data = {{"nested", {{"list", {1, -2, 3.5, "x", nullptr, false}}}}};
  round_trip(e);
  e.extra = {{"ts", 1700000000123}, {"meta", {{"k", "v"}}}, {"arr", json::array()}, {"", "empty key"}};
  round_trip(e);
  e.error = "";
  round_trip(e);
  for (const json& id : {json("abc"), json(""), json(0), json(-42), json(18446744073709551615ull), json(1.25),
                         json(-0.5), json(1e300)}) {
    CAPTURE(id.dump());
    e.id = id;
    e.reply_to = id;
    const auto back = round_trip(e);
    CHECK(back.id->is_string() == id.is_string()); // "0" may come back unsigned: same value
  }
  // Unicode survives as is.
  e.path = "prix.€";
  e.data = "日本語 \u00e9 \U0001F600";
  round_trip(e);
}

TEST_CASE("decoding fills defaults and keeps unknown fields") {
  auto e = decode_one(R"({"path":"p"})");
  CHECK(e.path == "p");
  CHECK(e.data.is_null());
  CHECK(!e.binary);
  CHECK(e.bytes.empty());
  CHECK(!e.id);
  CHECK(!e.reply_to);
  CHECK(!e.error);
  CHECK(e.extra == json::object());

  e = decode_one(R"( {"seq": 9, "data": [1], "path": "", "x": {"y": null}, "id": 5, "error": "e"} )");
  CHECK(e.path.empty()); // an empty path is a valid envelope (the router's fallback sees it)
  CHECK(e.data == json::array({1}));
  CHECK(e.id == json(5));
  CHECK(e.error == "e");
  CHECK(e.extra == json({{"seq", 9}, {"x", {{"y", nullptr}}}}));
  // Re-encoding keeps the unknown fields.
  CHECK(encode_ok(e) == R"({"path":"","data":[1],"id":5,"error":"e","seq":9,"x":{"y":null}})");
}

TEST_CASE("invalid envelopes and their reasons") {
  struct bad {
    std::string frame;
    std::string hint;
  };
  const std::vector<bad> cases = {
      {"", "not JSON at byte 1"},
      {"not json", "not JSON at byte 2"},
      {"{\"path\":", "not JSON at byte"},
      {R"({"path":"a"} trailing)", "expected end of input"},
      {R"({"path":"a",})", "not JSON"},
      {"{\"path\":\"\xff\"}", "not JSON"},
      {R"({"path":"a","data":1e400})", "number overflow"},
      {"42", "not a JSON object (got number)"},
      {R"("path")", "not a JSON object (got string)"},
      {"null", "not a JSON object (got null)"},
      {"true", "(got boolean)"},
      {"{}", R"(missing "path")"},
      {R"({"data":1})", R"(missing "path")"},
      {R"({"path":1})", R"("path" must be a string, got number)"},
      {R"({"path":null})", R"("path" must be a string, got null)"},
      {R"({"path":["a"]})", R"("path" must be a string, got array)"},
      {R"({"path":"a","id":true})", R"("id" must be a string or number, got boolean)"},
      {R"({"path":"a","id":null})", R"("id" must be a string or number, got null)"},
      {R"({"path":"a","id":{}})", R"("id" must be a string or number, got object)"},
      {R"({"path":"a","reply_to":[]})", R"("reply_to" must be a string or number, got array)"},
      {R"({"path":"a","error":5})", R"("error" must be a string, got number)"},
      {R"({"path":"a","error":null})", R"("error" must be a string, got null)"},
      {R"({"path":"a","error":{"code":1}})", R"("error" must be a string, got object)"},
      {R"([{"path":"a"},{"data":1}])", R"(element 1: missing "path")"},
      {R"([{"path":"a"},7])", "element 1: envelope is not a JSON object (got number)"},
      {R"([[{"path":"a"}]])", "element 0: envelope is not a JSON object (got array)"},
      {R"([{"path":"a","id":false}])", R"(element 0: "id" must be a string or number)"},
  };
  for (const auto& c : cases) {
    const auto reason = decode_err(c.frame);
    CAPTURE(reason);
    CHECK(contains(reason, c.hint));
  }
}

TEST_CASE("the fast path takes the common envelope and agrees with the full parser") {
  // Taken: one object, distinct plain keys, a plain path, any valid values.
  for (const std::string_view frame : {
           R"({"path":"chat.message","data":"hello"})",
           " {\n\t\"data\" : {\"a\":[1,2.5,-3e2,true,null,\"x\\\"y\"]} ,\r\"path\":\"p\" } ",
           R"({"path":"a","data":{}})",
           R"({"path":"a"})",
           R"({"path":"","data":null,"id":"req-1","reply_to":7,"error":"nope"})",
           R"({"path":"a","id":-1.5,"seq":9,"x":{"y":[[]]}})",
           "{\"path\":\"caf\xc3\xa9\",\"data\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}",
           R"({"path":"a","data":"escaped \" inside \u00e9"})", // nested: nlohmann parses the value
       })
    CHECK(flat_agrees(frame));
  CHECK(flat_agrees(R"({"type":"t","payload":[1]})", {"type", "payload"}));

  // Declined (the full parser decodes or rejects them): escapes in a key or the
  // path, duplicate keys (the last one wins there), batches, a byte order mark.
  for (const std::string_view frame : {
           R"({"pa\u0074h":"a"})",
           R"({"path":"a\/b"})",
           R"({"path":"a","path":"b"})",
           R"({"path":"a","data":1,"data":2})",
           R"({"path":"a","x":1,"x":2})",
           R"([{"path":"a"}])",
           "\xef\xbb\xbf{\"path\":\"a\"}",
       }) {
    CHECK_FALSE(flat_agrees(frame));
    decode_ok(frame);
  }
  CHECK(decode_one(R"({"path":"a","path":"b"})").path == "b");
  CHECK(decode_one(R"({"path":"a\/b"})").path == "a/b");
  CHECK_FALSE(flat_agrees(R"({"path":"a","data":1})", {"type", "payload"})); // no "type"

  // Invalid frames are never taken: the full parser reports them.
  for (const std::string_view frame : std::initializer_list<std::string_view>{
           "", "{", R"({"path":"a",})", R"({"path":"a"} x)", R"({"path":"a","data":tru})",
           R"({"path":"a","data":1e400})", R"({"path":"a","data":[1,})", R"({"path":"a","id":null})",
           R"({"path":"a","error":5})", "{\"path\":\"\xff\"}", "{\"path\":\"a\x01\"}", R"({"path":"a""data":1})",
           R"({"path":"a","data":01})", R"({"path":"a","data":"x})",
           std::string_view("{\"path\":\"a\",\"id\":7\0}", 20), // nlohmann stops at a NUL: "7\0" alone is 7
       }) {
    CHECK_FALSE(flat_agrees(frame));
    decode_err(frame);
  }
}

TEST_CASE("reasons stay short and printable") {
  // nlohmann quotes the input it choked on: control bytes and length are bounded.
  std::string frame = "{\"path\":\"a\",\"data\":[" + std::string(5000, '1') + "\x01\x02\n\xc3";
  const auto reason = decode_err(frame);
  CHECK(reason.size() <= tether::codec::max_reason_size);
  frame = "\x01\x7f\x80 garbage";
  CHECK(contains(decode_err(frame), "not JSON at byte 1"));
}

TEST_CASE("nesting limit") {
  const auto depth = tether::field_codec::max_depth;
  const auto nested = [](std::size_t levels) {
    std::string data(levels, '[');
    data += std::string(levels, ']');
    return data;
  };
  // The envelope object is one level, so data may nest max_depth - 1 deep.
  auto e = decode_one(R"({"path":"a","data":)" + nested(depth - 1) + "}");
  CHECK(e.data.is_array());
  CHECK(contains(decode_err(R"({"path":"a","data":)" + nested(depth) + "}"), "nested deeper than 128"));
  // Brackets inside strings do not count, escaped quotes included.
  const std::string many(1000, '[');
  e = decode_one(R"({"path":"a","data":")" + many + R"(\"[[[", "x":")" + many + "\"}");
  CHECK(e.data.get<std::string>().size() == 1004);
  // A hostile depth is rejected before parsing.
  CHECK(contains(decode_err(std::string(100000, '[')), "nested deeper"));
}

TEST_CASE("long strings: a character to escape anywhere, across the scanner's blocks, as nlohmann writes and reads it") {
  // The encoder and the fast path scan strings in 1 KiB blocks and with
  // memchr: put the one special character at each edge of those blocks.
  const auto dump = [](const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); };
  for (const char special : {'"', '\\', '\n', '\x01', '\x1f'}) {
    for (const std::size_t at : {0u, 1u, 1023u, 1024u, 1025u, 2047u, 2048u, 2999u}) {
      std::string text(3000, 'x');
      text[at] = special;
      CAPTURE(static_cast<int>(special));
      CAPTURE(at);
      envelope e;
      e.path = "long";
      e.data = text;
      const auto frame = encode_ok(e);
      CHECK(frame == R"({"path":"long","data":)" + dump(json(text)) + "}");
      CHECK(round_trip(e).data.get<std::string>() == text);
      CHECK(flat_agrees(frame)); // the fast path hands the escaped value to nlohmann, and agrees
    }
  }
  // Without one, long ASCII and UTF-8 text are written as they are; invalid
  // UTF-8 is replaced as nlohmann replaces it. The fast path takes all three.
  for (const std::string& text : {std::string(5000, 'a'), "é€😀\x7f" + std::string(3000, 'b') + "😀",
                                  std::string(2000, 'c') + "\xff" + std::string(100, 'd')}) {
    envelope e;
    e.path = "long";
    e.data = text;
    const auto frame = encode_ok(e);
    CHECK(frame == R"({"path":"long","data":)" + dump(json(text)) + "}");
    CHECK(flat_agrees(frame));
  }
  // Many escapes: scanning for the end of such a string is linear. It once
  // searched the rest of the frame again after each escape: 36 s for 1 M
  // escapes, and this 4 M (an 8 MiB frame) outlasts the test's timeout.
  // Terminated, and not.
  std::string escapes;
  for (int i = 0; i < (1 << 22); ++i)
    escapes += "\\n";
  const auto decoded = decode_one(R"({"path":"a","data":")" + escapes + R"("})");
  CHECK(decoded.data.get<std::string>() == std::string(1 << 22, '\n'));
  CHECK(contains(decode_err(R"({"path":"a","data":")" + escapes), "not JSON"));
  // Brackets and backslashes inside a long string do not count as nesting.
  std::string inner;
  for (int i = 0; i < 600; ++i)
    inner += "[{\\\"";
  const auto e = decode_one(R"({"path":"a","data":")" + inner + R"("})");
  CHECK(e.data.get<std::string>().size() == 600 * 3); // \" decodes to one quote
}

TEST_CASE("batches") {
  std::vector<envelope> out(1);
  std::string reason;
  REQUIRE(!codec.decode(R"([{"path":"a"}, {"path":"b","data":2,"id":"x","more":1}])", false, out, reason));
  REQUIRE(out.size() == 3); // appended after what was there
  CHECK(out[1].path == "a");
  CHECK(out[2].path == "b");
  CHECK(out[2].data == 2);
  CHECK(out[2].id == json("x"));
  CHECK(out[2].extra == json({{"more", 1}}));

  CHECK(decode_ok("[]").empty()); // a batch of nothing
  CHECK(decode_ok(" [ ] ").empty());
}

TEST_CASE("field_codec with other field names") {
  const tether::field_codec typed("type", "payload");
  CHECK(typed.path_field() == "type");
  CHECK(typed.data_field() == "payload");

  auto e = decode_one(R"({"type":"trade","payload":{"px":1.5},"path":"not special here","data":0})", typed);
  CHECK(e.path == "trade");
  CHECK(e.data == json({{"px", 1.5}}));
  CHECK(e.extra == json({{"data", 0}, {"path", "not special here"}}));
  CHECK(encode_ok(e, typed) == R"({"type":"trade","payload":{"px":1.5},"data":0,"path":"not special here"})");
  round_trip(e, typed);

  CHECK(contains(decode_err(R"({"path":"a","payload":1})", typed), R"(missing "type")"));
  CHECK(contains(decode_err(R"({"type":3})", typed), R"("type" must be a string, got number)"));

  const tether::field_codec stream("stream", "data");
  e = decode_one(R"({"stream":"btcusdt@trade","data":{"p":"1"}})", stream);
  CHECK(e.path == "btcusdt@trade");
  CHECK(e.extra.empty());

  // Reserved names are per codec: "payload" in extra is refused by `typed` only.
  envelope x;
  x.path = "p";
  x.extra = {{"payload", 1}};
  std::string out;
  bool binary = false;
  CHECK(typed.encode(x, out, binary) == error::invalid_envelope);
  CHECK(!codec.encode(x, out, binary));

  CHECK_THROWS_AS(tether::field_codec("", "data"), std::invalid_argument);
  CHECK_THROWS_AS(tether::field_codec("type", ""), std::invalid_argument);
  CHECK_THROWS_AS(tether::field_codec("same", "same"), std::invalid_argument);
  CHECK_THROWS_AS(tether::field_codec("id", "data"), std::invalid_argument);
  CHECK_THROWS_AS(tether::field_codec("path", "reply_to"), std::invalid_argument);
  CHECK_THROWS_AS(tether::field_codec("error", "data"), std::invalid_argument);
}

TEST_CASE("binary frames, raw: the frame is the payload, routed to the fallback") {
  const std::string raw("\x00\xff{\"path\":\"a\"}\x80", 15);
  const tether::json_codec plain(tether::binary_format::raw);
  const tether::field_codec typed("type", "payload", tether::binary_format::raw);
  const std::vector<const tether::codec*> codecs = {&plain, &typed};
  for (const auto* c : codecs) {
    auto out = decode_ok(raw, *c, true);
    REQUIRE(out.size() == 1);
    CHECK(out[0].binary);
    CHECK(out[0].path.empty()); // no structure: the router's fallback sees it
    CHECK(out[0].bytes == raw);
    CHECK(out[0].data.is_null());
    CHECK(round_trip(out[0], *c).bytes == raw);
  }
  CHECK(decode_ok("", plain, true).at(0).bytes.empty());

  // Only the bytes go out: path and the JSON fields are not representable.
  envelope e;
  e.binary = true;
  e.bytes = raw;
  e.path = "dropped";
  e.data = 1;
  e.id = 2;
  e.extra = {{"k", 1}};
  CHECK(encode_ok(e, plain) == raw);
  CHECK(encode_ok(e, typed) == raw);
  CHECK(std::string(to_string(tether::binary_format::raw)) == "raw");
}

TEST_CASE("binary frames, path_prefixed (the default): [length][path][payload], byte for byte") {
  const tether::field_codec typed("type", "payload");
  CHECK(codec.binary() == tether::binary_format::path_prefixed);
  CHECK(typed.binary() == tether::binary_format::path_prefixed);
  envelope e;
  e.binary = true;
  e.path = "files.up";
  e.bytes = std::string("\x00\x01\xff\x80", 4);
  e.id = 2; // not carried by binary frames
  const std::string wire = std::string("\x00\x08", 2) + "files.up" + std::string("\x00\x01\xff\x80", 4);
  for (const tether::codec* c : {static_cast<const tether::codec*>(&codec), static_cast<const tether::codec*>(&typed)}) {
    CHECK(encode_ok(e, *c) == wire);
    auto back = decode_one(wire, *c, true);
    CHECK(back.binary);
    CHECK(back.path == "files.up");
    CHECK(back.bytes == e.bytes);
    CHECK(back.data.is_null());
    CHECK(!back.id);
  }
  // An empty path and an empty payload are valid.
  CHECK(decode_one(std::string("\x00\x00", 2), codec, true).path.empty());
  CHECK(decode_one(std::string("\x00\x01x", 3), codec, true).bytes.empty());
  // A 300-byte path: the length's high byte counts.
  envelope longer;
  longer.binary = true;
  longer.path = std::string(300, 'p');
  longer.bytes = "z";
  const auto frame = encode_ok(longer);
  CHECK(frame.substr(0, 2) == std::string("\x01\x2c", 2));
  CHECK(decode_one(frame, codec, true).path == longer.path);

  // Malformed frames: invalid_envelope with a reason, nothing appended.
  const std::pair<std::string, const char*> bad[] = {
      {std::string(), "shorter than its 2-byte path length"},
      {std::string("\x05", 1), "shorter than its 2-byte path length"},
      {std::string("\x00\x05" "abc", 5), "path length 5 runs past the 3 bytes that follow"},
      {std::string("\xff\xff", 2), "path length 65535 runs past the 0 bytes that follow"},
      {std::string("\x00\x02\xc3\x28", 4), "the path is not UTF-8"},
  };
  for (const auto& [frame_bytes, why] : bad) {
    CAPTURE(std::string(why));
    std::vector<envelope> out;
    std::string reason;
    CHECK(codec.decode(frame_bytes, true, out, reason) == error::invalid_envelope);
    CHECK(out.empty());
    CHECK(reason.find(why) != std::string::npos);
  }
  // A path that cannot be written: over 65535 bytes, or not UTF-8.
  for (const auto& path : {std::string(65536, 'p'), std::string("\xc3\x28")}) {
    envelope x;
    x.binary = true;
    x.path = path;
    std::string out = "before";
    bool binary_frame = false;
    CHECK(codec.encode(x, out, binary_frame) == error::invalid_envelope);
    CHECK(out == "before");
  }
  CHECK(std::string(to_string(tether::binary_format::path_prefixed)) == "path_prefixed");
}

TEST_CASE("encode rejects what JSON text cannot carry") {
  const auto rejected = [](const envelope& e) {
    std::string out = "before";
    bool binary = true;
    CHECK(codec.encode(e, out, binary) == error::invalid_envelope);
    CHECK(out == "before");
    CHECK(binary);
  };
  envelope e;
  e.path = "p";
  e.extra = json::array();
  rejected(e);
  e.extra = 5;
  rejected(e);
  for (const char* reserved : {"path", "data", "id", "reply_to", "error"}) {
    e.extra = {{reserved, 1}};
    rejected(e);
  }
  e.extra = json::object();
  for (const json& id : {json(true), json(nullptr), json::array(), json::object()}) {
    e.id = id;
    rejected(e);
    e.id.reset();
    e.reply_to = id;
    rejected(e);
    e.reply_to.reset();
  }
  e.data = json::binary({1, 2, 3});
  rejected(e);
  e.data = {{"deep", {1, json(json::value_t::discarded)}}};
  rejected(e);
  e.data = nullptr;
  e.extra = {{"bin", json::binary({1})}};
  rejected(e);
}

TEST_CASE("invalid UTF-8 is replaced on encode") {
  envelope e;
  e.path = "a\xff";
  e.data = "b\xc3";
  e.error = "\xe2\x82";
  e.extra = {{"k\xfe", "v"}};
  const auto frame = encode_ok(e);
  auto back = decode_one(frame);
  CHECK(back.path == "a\xef\xbf\xbd"); // U+FFFD
  CHECK(back.data == "b\xef\xbf\xbd");
  CHECK(back.error == "\xef\xbf\xbd");
  CHECK(back.extra.contains("k\xef\xbf\xbd"));
}

namespace {

json random_value(std::mt19937_64& rng, int depth) {
  switch (rng() % (depth > 3 ? 6 : 8)) {
  case 0: return nullptr;
  case 1: return rng() % 2 == 0;
  case 2: return static_cast<std::int64_t>(rng());
  case 3: return rng();
  case 4: return std::ldexp(static_cast<double>(rng() % 2000000) - 1000000.0, static_cast<int>(rng() % 200) - 100);
  case 5: {
    std::string s;
    const auto n = rng() % 12;
    for (std::size_t i = 0; i < n; ++i)
      s += "ab\"\\\n\x01 é€😀"[rng() % 10]; // bytes; may split a UTF-8 sequence
    return s;
  }
  case 6: {
    json a = json::array();
    for (auto n = rng() % 4; n > 0; --n)
      a.push_back(random_value(rng, depth + 1));
    return a;
  }
  default: {
    json o = json::object();
    for (auto n = rng() % 4; n > 0; --n)
      o["k" + std::to_string(rng() % 6)] = random_value(rng, depth + 1);
    return o;
  }
  }
}

// Strings in a random value may hold split UTF-8; encode replaces those, so
// compare against the value as it survives one dump/parse.
json sanitized(const json& j) {
  return json::parse(j.dump(-1, ' ', false, json::error_handler_t::replace));
}

} // namespace

TEST_CASE("random envelopes round trip") {
  std::mt19937_64 rng(tether::test::seed());
  const tether::field_codec typed("type", "payload");
  for (int i = 0; i < 3000; ++i) {
    envelope e;
    e.path = "p" + std::to_string(rng() % 100);
    e.data = sanitized(random_value(rng, 0));
    if (rng() % 2)
      e.id = rng() % 2 ? json("id" + std::to_string(i)) : json(static_cast<std::int64_t>(rng() % 1000) - 500);
    if (rng() % 3 == 0)
      e.reply_to = json(rng() % 1000);
    if (rng() % 3 == 0)
      e.error = "err";
    if (rng() % 2)
      e.extra = {{"extra" + std::to_string(rng() % 3), sanitized(random_value(rng, 1))}};
    CAPTURE(i);
    const bool with_typed = rng() % 2;
    round_trip(e, with_typed ? typed : static_cast<const tether::codec&>(codec));
    flat_agrees(encode_ok(e, with_typed ? typed : static_cast<const tether::codec&>(codec)),
                with_typed ? tether::detail::envelope_fields{"type", "payload"} : tether::detail::envelope_fields{"path", "data"});
  }
}

TEST_CASE("encoding writes what nlohmann's dump writes, member by member, for any strings") {
  // The encoder writes plain strings itself and the rest through nlohmann's
  // serializer: the text must not change from a reference built with dump().
  std::mt19937_64 rng(tether::test::seed());
  const auto dump = [](const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); };
  for (int i = 0; i < 3000; ++i) {
    envelope e;
    const auto path = random_value(rng, 4); // a string, a number, ... (strings with escapes and split UTF-8)
    e.path = path.is_string() ? path.get<std::string>() : dump(path);
    e.data = random_value(rng, 0);
    std::string want = "{\"path\":" + dump(json(e.path)) + ",\"data\":" + dump(e.data);
    if (rng() % 2) {
      e.error = e.path + "\x7f\x1f";
      want += ",\"error\":" + dump(json(*e.error));
    }
    if (rng() % 2) {
      const auto key = random_value(rng, 4);
      const auto value = random_value(rng, 2);
      if (key.is_string() && !key.get<std::string>().empty() && key.get<std::string>() != "path") {
        e.extra = {{key.get<std::string>(), value}};
        want += "," + dump(key) + ":" + dump(value);
      }
    }
    want += "}";
    CAPTURE(i);
    CHECK(encode_ok(e) == want);
  }
}
