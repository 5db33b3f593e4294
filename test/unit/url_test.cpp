// ws:// and wss:// URL parsing (RFC 6455 §3): defaults, literals, targets,
// userinfo, every error, and the Host header / loggable forms.
#include <ostream> // before doctest, which only forward-declares it: CHECKs print std::error_code

#include <doctest/doctest.h>

#include <tether/error.hpp>
#include <tether/url.hpp>

#include <string>

using tether::error;

namespace {

tether::url parse_ok(std::string_view text, const tether::url_options& options = {}) {
  tether::url u;
  const auto ec = tether::parse_url(text, u, options);
  CAPTURE(text);
  REQUIRE(!ec);
  return u;
}

std::error_code parse_err(std::string_view text, const tether::url_options& options = {}) {
  tether::url u;
  u.host = "untouched";
  const auto ec = tether::parse_url(text, u, options);
  CHECK(u.host == "untouched"); // out is only written on success
  return ec;
}

} // namespace

TEST_CASE("ws and wss defaults") {
  auto u = parse_ok("ws://example.com");
  CHECK(!u.secure);
  CHECK(u.host == "example.com");
  CHECK(u.port == 80);
  CHECK(!u.explicit_port);
  CHECK(!u.host_is_ip);
  CHECK(u.target == "/");
  CHECK(!u.authorization);
  CHECK(u.host_header() == "example.com");
  CHECK(u.to_string() == "ws://example.com/");

  u = parse_ok("wss://example.com/");
  CHECK(u.secure);
  CHECK(u.port == 443);
  CHECK(u.target == "/");
  CHECK(u.to_string() == "wss://example.com/");
}

TEST_CASE("explicit ports") {
  auto u = parse_ok("ws://example.com:9001/chat");
  CHECK(u.port == 9001);
  CHECK(u.explicit_port);
  CHECK(u.host_header() == "example.com:9001");
  CHECK(u.to_string() == "ws://example.com:9001/chat");

  // The default port named explicitly is left out of Host.
  u = parse_ok("wss://example.com:443");
  CHECK(u.port == 443);
  CHECK(u.explicit_port);
  CHECK(u.host_header() == "example.com");
  CHECK(parse_ok("ws://example.com:80").host_header() == "example.com");
  // ...but not when it is the other scheme's default.
  CHECK(parse_ok("ws://example.com:443").host_header() == "example.com:443");
  CHECK(parse_ok("wss://example.com:80").host_header() == "example.com:80");

  CHECK(parse_ok("ws://h:1").port == 1);
  CHECK(parse_ok("ws://h:65535").port == 65535);
  CHECK(parse_ok("ws://h:00080").port == 80);
}

TEST_CASE("IP literals") {
  auto u = parse_ok("ws://127.0.0.1:8080/x");
  CHECK(u.host == "127.0.0.1");
  CHECK(u.host_is_ip);
  CHECK(u.port == 8080);
  CHECK(u.host_header() == "127.0.0.1:8080");

  u = parse_ok("ws://[::1]:9001");
  CHECK(u.host == "::1");
  CHECK(u.host_is_ip);
  CHECK(u.port == 9001);
  CHECK(u.target == "/");
  CHECK(u.host_header() == "[::1]:9001");
  CHECK(u.to_string() == "ws://[::1]:9001/");

  u = parse_ok("wss://[2001:DB8:0:0:0:0:0:1]/");
  CHECK(u.host == "2001:db8::1"); // canonical form
  CHECK(u.port == 443);
  CHECK(u.host_header() == "[2001:db8::1]");

  u = parse_ok("ws://[::ffff:192.0.2.1]");
  CHECK(u.host_is_ip);
  CHECK(u.host == "::ffff:192.0.2.1");

  CHECK(!parse_ok("ws://example.com").host_is_ip);
  CHECK(!parse_ok("ws://1.example").host_is_ip);
}

TEST_CASE("path, query and fragment") {
  CHECK(parse_ok("ws://h/a/b?c=d&e").target == "/a/b?c=d&e");
  CHECK(parse_ok("ws://h?q=1").target == "/?q=1");
  CHECK(parse_ok("ws://h:81?q").target == "/?q");
  CHECK(parse_ok("ws://h/path#frag").target == "/path");
  CHECK(parse_ok("ws://h/p?q#frag?x").target == "/p?q");
  CHECK(parse_ok("ws://h#frag").target == "/");
  CHECK(parse_ok("ws://h/a%20b").target == "/a%20b");
  // Bytes that may not appear in a request target are percent-encoded.
  CHECK(parse_ok("ws://h/a b?c\"d").target == "/a%20b?c%22d");
  CHECK(parse_ok("ws://h/caf\xc3\xa9").target == "/caf%C3%A9");
  // '@' in the path is not userinfo.
  auto u = parse_ok("ws://h/user@x");
  CHECK(u.target == "/user@x");
  CHECK(!u.authorization);
  CHECK(u.host == "h");
}

TEST_CASE("scheme and host are case-insensitive") {
  auto u = parse_ok("WSS://Example.COM:8443/Path?Q");
  CHECK(u.secure);
  CHECK(u.host == "example.com");
  CHECK(u.target == "/Path?Q"); // the path keeps its case
  CHECK(u.to_string() == "wss://example.com:8443/Path?Q");
  CHECK(parse_ok("Ws://h").port == 80);
}

TEST_CASE("userinfo") {
  SUBCASE("becomes a Basic Authorization header") {
    auto u = parse_ok("ws://user:pa%20ss@h/");
    REQUIRE(u.authorization);
    CHECK(*u.authorization == "Basic dXNlcjpwYSBzcw=="); // base64("user:pa ss")
    CHECK(u.host == "h");
    CHECK(u.to_string() == "ws://h/");
    CHECK(u.host_header() == "h");

    CHECK(*parse_ok("ws://user@h").authorization == "Basic dXNlcjo="); // "user:"
    CHECK(*parse_ok("ws://u:p:q@h").authorization == "Basic dTpwOnE="); // the password may hold ':'
  }
  SUBCASE("is an error when not allowed") {
    const tether::url_options no_userinfo{.userinfo_to_authorization = false};
    CHECK(parse_err("ws://user:pass@h/", no_userinfo) == error::url_userinfo);
    CHECK(parse_err("ws://user@h/", no_userinfo) == error::url_userinfo);
    CHECK(!parse_ok("ws://h/a@b", no_userinfo).authorization);
  }
  SUBCASE("malformed userinfo") {
    CHECK(parse_err("ws://@h/") == error::url_malformed);
    CHECK(parse_err("ws://a@b@h/") == error::url_malformed);
    CHECK(parse_err("ws://us%zzer@h/") == error::url_malformed);
    CHECK(parse_err("ws://user:pa%2@h/") == error::url_malformed);
    CHECK(parse_err("ws://us er@h/") == error::url_malformed);
    CHECK(parse_err("ws://a%3Ab:c@h/") == error::url_malformed); // RFC 7617: no ':' in a user-id
  }
}

TEST_CASE("errors") {
  CHECK(parse_err("http://example.com/") == error::url_bad_scheme);
  CHECK(parse_err("https://example.com/") == error::url_bad_scheme);
  CHECK(parse_err("ftp://example.com/") == error::url_bad_scheme);
  CHECK(parse_err("wsx://example.com/") == error::url_bad_scheme);
  CHECK(parse_err("example.com") == error::url_bad_scheme); // no scheme at all
  CHECK(parse_err("example.com:80") == error::url_bad_scheme);
  CHECK(parse_err("") == error::url_bad_scheme);
  CHECK(parse_err("ws:example.com") == error::url_malformed);
  CHECK(parse_err("ws:/example.com") == error::url_malformed);

  CHECK(parse_err("ws://") == error::url_malformed);
  CHECK(parse_err("ws:///path") == error::url_malformed);
  CHECK(parse_err("ws://:80/") == error::url_malformed);
  CHECK(parse_err("ws://?q") == error::url_malformed);
  CHECK(parse_err("ws://user@/") == error::url_malformed);

  CHECK(parse_err("ws://h:0/") == error::url_bad_port);
  CHECK(parse_err("ws://h:65536/") == error::url_bad_port);
  CHECK(parse_err("ws://h:99999999999999999999/") == error::url_bad_port);
  CHECK(parse_err("ws://h:abc/") == error::url_bad_port);
  CHECK(parse_err("ws://h:-1/") == error::url_bad_port);
  CHECK(parse_err("ws://h:/") == error::url_bad_port);
  CHECK(parse_err("ws://h:80:81/") == error::url_bad_port);
  CHECK(parse_err("ws://[::1]:0/") == error::url_bad_port);

  CHECK(parse_err("ws://[::1/") == error::url_malformed);
  CHECK(parse_err("ws://[::1") == error::url_malformed);
  CHECK(parse_err("ws://[]/") == error::url_malformed);
  CHECK(parse_err("ws://[::1]x/") == error::url_malformed);
  CHECK(parse_err("ws://[not-ip]/") == error::url_malformed);
  CHECK(parse_err("ws://[127.0.0.1]/") == error::url_malformed);
  CHECK(parse_err("ws://[fe80::1%25eth0]/") == error::url_malformed); // zone ids are rejected
  CHECK(parse_err("ws://::1/") == error::url_malformed);
  CHECK(parse_err("ws://ho]st/") == error::url_malformed);

  CHECK(parse_err("ws://256.0.0.1/") == error::url_malformed);
  CHECK(parse_err("ws://127.1/") == error::url_malformed);
  CHECK(parse_err("ws://1234/") == error::url_malformed);
  CHECK(parse_err("ws://ex ample.com/") == error::url_malformed);
  CHECK(parse_err("ws://ex%41mple.com/") == error::url_malformed);
  CHECK(parse_err("ws://h/\r\nX-Injected: 1") == error::url_malformed);
  CHECK(parse_err("ws://h/\x7f") == error::url_malformed);
  CHECK(parse_err(std::string_view("ws://h/\0", 8)) == error::url_malformed);
  CHECK(parse_err("ws://h\t/") == error::url_malformed);
}

TEST_CASE("to_string never shows userinfo and parses back") {
  for (auto text : {"ws://user:secret@example.com:8080/a?b", "wss://secret@[::1]/", "ws://a:b@1.2.3.4:1/x#y",
                    "WSS://Alice:pw@Example.org?q"}) {
    CAPTURE(text);
    const auto u = parse_ok(text);
    const auto s = u.to_string();
    CHECK(s.find("secret") == std::string::npos);
    CHECK(s.find('@') == std::string::npos);
    CHECK(s.find("pw") == std::string::npos);
    const auto v = parse_ok(s, {.userinfo_to_authorization = false});
    CHECK(v.host == u.host);
    CHECK(v.port == u.port);
    CHECK(v.target == u.target);
    CHECK(v.secure == u.secure);
    CHECK(v.host_is_ip == u.host_is_ip);
    CHECK(!v.authorization);
  }
}

TEST_CASE("to_string and host_header round-trip the canonical form") {
  CHECK(parse_ok("ws://h").to_string() == "ws://h/");
  CHECK(parse_ok("ws://h/a?b=1").to_string() == "ws://h/a?b=1");
  CHECK(parse_ok("wss://h:9/x").to_string() == "wss://h:9/x");
  CHECK(parse_ok("ws://[::1]:8080/").to_string() == "ws://[::1]:8080/");
  CHECK(parse_ok("ws://[::1]:8080/").host_header() == "[::1]:8080");
  CHECK(parse_ok("ws://h:80/").host_header() == "h");
  CHECK(parse_ok("ws://u:p@h/").to_string() == "ws://h/"); // never the userinfo
  CHECK(parse_ok("ws://h?q").target == "/?q");
}
