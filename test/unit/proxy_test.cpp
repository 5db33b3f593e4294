// Proxy selection (curl's environment rules) and the proxy messages, sans-IO.
#include <doctest/doctest.h>
#include <tether/error.hpp>

#include <map>
#include <ostream>
#include <string>

#include "proxy.hpp"

using namespace tether;
using namespace tether::detail;

namespace {

url parse(const char* text) {
  url u;
  REQUIRE(!parse_url(text, u));
  return u;
}

/// select_proxy with a fake environment; "" when no proxy, else its display().
std::string chosen(const char* target, std::map<std::string, std::string> env, std::string_view setting = {},
                   std::error_code* ec_out = nullptr) {
  const env_lookup lookup = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  std::optional<proxy_url> p;
  std::string what;
  auto ec = select_proxy(parse(target), setting, lookup, p, what);
  if (ec_out)
    *ec_out = ec;
  return p ? p->display() : std::string();
}

} // namespace

TEST_CASE("proxy URLs: schemes, default port 1080, userinfo decoded, anything else refused") {
  proxy_url p;
  REQUIRE(!parse_proxy_url("http://alice:s%3Acret@proxy.example:3128", p));
  CHECK(p.type == proxy_url::kind::http);
  CHECK(p.host == "proxy.example");
  CHECK(p.port == 3128);
  CHECK(p.user == "alice");
  CHECK(p.password == "s:cret");
  CHECK(p.display() == "http://proxy.example:3128"); // never the password

  REQUIRE(!parse_proxy_url("SOCKS5H://[::1]", p));
  CHECK(p.type == proxy_url::kind::socks5h);
  CHECK(p.port == 1080);
  CHECK(p.host_is_ip);
  CHECK(p.display() == "socks5h://[::1]:1080");
  CHECK(!p.user);

  REQUIRE(!parse_proxy_url("proxy:8080", p)); // no scheme: HTTP, as curl
  CHECK(p.type == proxy_url::kind::http);
  CHECK(p.port == 8080);
  REQUIRE(!parse_proxy_url("socks5://bob@127.0.0.1:1081/", p));
  CHECK(p.user == "bob");
  CHECK(p.password.empty());

  // SOCKS5 user names may hold ':' (RFC 1929); a Basic credential cannot.
  REQUIRE(!parse_proxy_url("socks5://a%3Ab:p%40ss@h:1", p));
  CHECK(p.user == "a:b");
  CHECK(p.password == "p@ss");
  for (const char* bad : {"https://proxy:443", "ftp://x", "http://", "http://proxy:0", "http://proxy:99999",
                          "http://proxy/path", "http://pro xy:1", "socks4://h:1", "http://a%3Ab:p@h:1",
                          "http://u%0D%0AX:p@h:1", "socks5://:p@h:1", "http://u:%zz@h:1"}) {
    CAPTURE(bad);
    CHECK(parse_proxy_url(bad, p) == error::proxy_bad_url);
  }
}

TEST_CASE("proxy from the environment, as curl reads it") {
  // ws:// reads http_proxy in lower case only (the CGI HTTP_PROXY problem).
  CHECK(chosen("ws://h/", {{"http_proxy", "http://p:1"}}) == "http://p:1");
  CHECK(chosen("ws://h/", {{"HTTP_PROXY", "http://p:1"}}).empty());
  // wss:// reads https_proxy, then HTTPS_PROXY; lower case wins.
  CHECK(chosen("wss://h/", {{"HTTPS_PROXY", "http://upper:1"}}) == "http://upper:1");
  CHECK(chosen("wss://h/", {{"https_proxy", "http://lower:1"}, {"HTTPS_PROXY", "http://upper:1"}}) ==
        "http://lower:1");
  CHECK(chosen("wss://h/", {{"http_proxy", "http://p:1"}}).empty()); // not the other scheme's
  // all_proxy / ALL_PROXY are the fallback for both.
  CHECK(chosen("ws://h/", {{"ALL_PROXY", "socks5h://s:2"}}) == "socks5h://s:2");
  CHECK(chosen("wss://h/", {{"all_proxy", "socks5://s:2"}, {"ALL_PROXY", "http://x:3"}}) == "socks5://s:2");
  CHECK(chosen("ws://h/", {{"http_proxy", "http://p:1"}, {"all_proxy", "socks5://s:2"}}) == "http://p:1");
  // An empty variable counts as unset.
  CHECK(chosen("ws://h/", {{"http_proxy", ""}, {"all_proxy", "socks5://s:2"}}) == "socks5://s:2");
  CHECK(chosen("ws://h/", {}).empty());
  // Loopback is not bypassed implicitly.
  CHECK(chosen("ws://127.0.0.1:9/", {{"http_proxy", "http://p:1"}}) == "http://p:1");
  CHECK(chosen("ws://localhost:9/", {{"http_proxy", "http://p:1"}}) == "http://p:1");
}

TEST_CASE("no_proxy: names with their subdomains, leading dots, IP addresses, '*', either case") {
  const std::map<std::string, std::string> base = {{"http_proxy", "http://p:1"}};
  auto with = [&](const char* list, bool upper = false) {
    auto env = base;
    env[upper ? "NO_PROXY" : "no_proxy"] = list;
    return env;
  };
  CHECK(chosen("ws://example.com/", with("example.com")).empty());
  CHECK(chosen("ws://api.example.com/", with("example.com")).empty());
  CHECK(chosen("ws://api.example.com/", with(".example.com")).empty());
  CHECK(!chosen("ws://badexample.com/", with("example.com")).empty()); // a suffix, not a label
  CHECK(chosen("ws://EXAMPLE.com/", with("Example.COM")).empty());
  CHECK(chosen("ws://127.0.0.1:80/", with("localhost, 127.0.0.1")).empty());
  CHECK(!chosen("ws://127.0.0.2/", with("127.0.0.1")).empty());
  CHECK(chosen("ws://[::1]/", with("[0:0::1]")).empty());
  CHECK(chosen("ws://[::1]/", with("::1")).empty());
  CHECK(chosen("ws://anything/", with("*")).empty());
  CHECK(chosen("ws://other/", with(" , a.b ,c", true)) == "http://p:1");
  CHECK(chosen("ws://c/", with(" , a.b ,c", true)).empty()); // NO_PROXY too
  auto both = with("nothing");
  both["NO_PROXY"] = "h";
  CHECK(chosen("ws://h/", both) == "http://p:1"); // no_proxy, when set, wins over NO_PROXY
}

TEST_CASE("an explicit proxy setting: 'none', a URL that ignores the environment, a bad URL") {
  const std::map<std::string, std::string> env = {{"http_proxy", "http://env:1"}, {"no_proxy", "*"}};
  CHECK(chosen("ws://h/", env, "none").empty());
  CHECK(chosen("ws://h/", env, "socks5://mine:9") == "socks5://mine:9");
  std::error_code ec;
  CHECK(chosen("ws://h/", env, "gopher://x", &ec).empty());
  CHECK(ec == error::proxy_bad_url);
  CHECK(ec == condition::invalid_url);
  CHECK(chosen("ws://h/", {{"http_proxy", "::bad::"}}, {}, &ec).empty());
  CHECK(ec == error::proxy_bad_url);
}

TEST_CASE("HTTP CONNECT: the request, Basic credentials, the answer's status") {
  proxy_url p;
  REQUIRE(!parse_proxy_url("http://alice:s3cret@p:1", p));
  CHECK(connect_request(parse("wss://example.com/x"), p) ==
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
        "Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n");
  REQUIRE(!parse_proxy_url("http://p:1", p));
  CHECK(connect_request(parse("ws://[::1]:8080/"), p) == "CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");

  int status = 0;
  std::string reason;
  REQUIRE(!parse_connect_response("HTTP/1.0 200 Connection established\r\nX: y\r\n\r\n", status, reason));
  CHECK(status == 200);
  CHECK(reason == "Connection established");
  REQUIRE(!parse_connect_response("HTTP/1.1 407\r\n\r\n", status, reason));
  CHECK(status == 407);
  CHECK(reason.empty());
  REQUIRE(!parse_connect_response("HTTP/1.1 403 No\x01\xff way\r\n\r\n", status, reason));
  CHECK(reason == "No way"); // printable only: it goes into error texts
  for (const char* bad : {"SSH-2.0-OpenSSH\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/2 200\r\n\r\n",
                          "HTTP/1.1 2000 OK\r\n\r\n", "\x05\x00"}) {
    CAPTURE(bad);
    CHECK(parse_connect_response(bad, status, reason) == error::proxy_malformed);
  }
  CHECK(!connect_status_error(200));
  CHECK(!connect_status_error(204));
  CHECK(connect_status_error(407) == error::proxy_auth_required);
  CHECK(connect_status_error(401) == error::proxy_auth_required); // tinyproxy, for wrong credentials
  CHECK(connect_status_error(403) == error::proxy_denied);
  CHECK(connect_status_error(301) == error::proxy_denied);
  CHECK(connect_status_error(502) == error::proxy_failed);
  CHECK(connect_status_error(500) == condition::transport);
}

TEST_CASE("SOCKS5: method selection, RFC 1929 credentials, CONNECT by name and by address, replies") {
  proxy_url p;
  REQUIRE(!parse_proxy_url("socks5h://p:1", p));
  CHECK(socks5_greeting(p) == std::string("\x05\x01\x00", 3));
  REQUIRE(!parse_proxy_url("socks5h://u:pw@p:1", p));
  CHECK(socks5_greeting(p) == std::string("\x05\x02\x00\x02", 4));
  std::string auth;
  REQUIRE(!socks5_auth_request(p, auth));
  CHECK(auth == std::string("\x01\x01u\x02pw", 6));
  p.password = std::string(256, 'x');
  CHECK(socks5_auth_request(p, auth) == error::proxy_bad_url);

  CHECK(socks5_connect_request("example.com", 443) == std::string("\x05\x01\x00\x03\x0b" "example.com\x01\xbb", 18));
  const unsigned char v4[] = {127, 0, 0, 1};
  CHECK(socks5_connect_request(v4, 4, 8080) == std::string("\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x90", 10));
  const unsigned char v6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const auto r6 = socks5_connect_request(v6, 16, 80);
  CHECK(r6.size() == 4 + 16 + 2);
  CHECK(r6[3] == '\x04');

  const unsigned char ipv4_reply[5] = {5, 0, 0, 1, 0};
  CHECK(socks5_reply_size(ipv4_reply) == 10);
  const unsigned char name_reply[5] = {5, 0, 0, 3, 7};
  CHECK(socks5_reply_size(name_reply) == 4 + 1 + 7 + 2);
  const unsigned char ipv6_reply[5] = {5, 0, 0, 4, 0};
  CHECK(socks5_reply_size(ipv6_reply) == 22);
  const unsigned char bad_reply[5] = {5, 0, 0, 9, 0};
  CHECK(socks5_reply_size(bad_reply) == 0);

  CHECK(!socks5_reply_error(0));
  const error expected[] = {error::socks_general_failure,      error::socks_not_allowed,
                            error::socks_network_unreachable,  error::socks_host_unreachable,
                            error::socks_connection_refused,   error::socks_ttl_expired,
                            error::socks_command_not_supported, error::socks_address_type_not_supported};
  for (unsigned char rep = 1; rep <= 8; ++rep) {
    CAPTURE(int(rep));
    CHECK(socks5_reply_error(rep) == expected[rep - 1]);
  }
  CHECK(socks5_reply_error(9) == error::proxy_malformed);
}
