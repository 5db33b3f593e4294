// libFuzzer target for parse_url: an accepted URL has a sane host, port and
// request target, and its loggable to_string() form parses back (with userinfo
// forbidden, proving none leaked) to the same host, port, target and scheme.
#include <tether/error.hpp>
#include <tether/url.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_assert.hpp"

namespace {

bool visible_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f;
  });
}

bool same(const tether::url& a, const tether::url& b) {
  return a.secure == b.secure && a.host == b.host && a.port == b.port && a.explicit_port == b.explicit_port &&
         a.host_is_ip == b.host_is_ip && a.target == b.target;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  tether::url u;
  const auto ec = tether::parse_url(in, u);

  tether::url strict;
  const auto strict_ec = tether::parse_url(in, strict, {.userinfo_to_authorization = false});
  if (ec) {
    // Forbidding userinfo can only add the url_userinfo error.
    TETHER_FUZZ_ASSERT(strict_ec);
    TETHER_FUZZ_ASSERT(ec.category() == tether::make_error_code(tether::error::url_malformed).category());
    return 0;
  }
  TETHER_FUZZ_ASSERT(u.authorization ? strict_ec == tether::error::url_userinfo : !strict_ec && same(u, strict));

  // Everything that reaches the request line or Host header is printable and CRLF-free.
  TETHER_FUZZ_ASSERT(!u.host.empty() && visible_ascii(u.host));
  TETHER_FUZZ_ASSERT(!u.target.empty() && u.target.front() == '/' && visible_ascii(u.target));
  TETHER_FUZZ_ASSERT(u.target.find('#') == std::string::npos);
  TETHER_FUZZ_ASSERT(u.port != 0);
  TETHER_FUZZ_ASSERT(u.explicit_port || u.port == (u.secure ? 443 : 80));
  TETHER_FUZZ_ASSERT(visible_ascii(u.host_header()));
  if (u.authorization)
    TETHER_FUZZ_ASSERT(u.authorization->starts_with("Basic "));

  const auto text = u.to_string();
  tether::url again;
  TETHER_FUZZ_ASSERT(!tether::parse_url(text, again, {.userinfo_to_authorization = false}));
  TETHER_FUZZ_ASSERT(same(u, again));
  TETHER_FUZZ_ASSERT(again.to_string() == text);
  TETHER_FUZZ_ASSERT(again.host_header() == u.host_header());
  return 0;
}
