// libFuzzer target for the opening handshake as a client sees it: the response
// parser fed in two chunks (split at input[0] % size) must agree with the same
// bytes fed whole, never consume more than it was given, stop a 101 exactly at
// the blank line, and anything validate_response accepts must be consistent
// with the request. The same bytes also exercise parse_extensions (reformat and
// reparse) and the server role (request_parser -> build_accept_response ->
// response_parser -> validate_response must succeed).
#include <tether/error.hpp>
#include <tether/handshake.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_assert.hpp"

namespace {

constexpr std::string_view key = "dGhlIHNhbXBsZSBub25jZQ==";
// Small limits so that short inputs reach both of them.
constexpr tether::handshake_limits limits{1024, 64};

const tether::client_request& offered() {
  static const tether::client_request req = [] {
    tether::client_request r;
    r.host = "example.com";
    r.target = "/chat";
    r.subprotocols = {"chat", "superchat"};
    r.extensions = {{"permessage-deflate", {{"client_max_window_bits", std::nullopt}}}, {"x-foo", {}}};
    return r;
  }();
  return req;
}

struct outcome {
  std::size_t consumed = 0;
  bool done = false;
  std::error_code ec;
  tether::handshake_response resp;
};

outcome run(std::string_view in, std::size_t split, bool eof) {
  tether::response_parser parser(limits);
  outcome out;
  for (const auto chunk : {in.substr(0, split), in.substr(split)}) {
    const auto r = parser.feed(chunk);
    TETHER_FUZZ_ASSERT(r.consumed <= chunk.size());
    TETHER_FUZZ_ASSERT(!(r.ec && r.done));
    out.consumed += r.consumed;
    out.done = r.done;
    out.ec = r.ec;
    if (r.ec || r.done)
      break;
    TETHER_FUZZ_ASSERT(r.consumed == chunk.size()); // not done: everything is part of the response
  }
  if (eof && !out.done && !out.ec) {
    const auto r = parser.finish();
    TETHER_FUZZ_ASSERT(r.consumed == 0);
    TETHER_FUZZ_ASSERT(r.done != static_cast<bool>(r.ec));
    out.done = r.done;
    out.ec = r.ec;
  }
  // Errors are sticky.
  if (out.ec)
    TETHER_FUZZ_ASSERT(parser.feed("x").ec == out.ec);
  out.resp = parser.response();
  return out;
}

bool same_headers(const tether::http_headers& a, const tether::http_headers& b) {
  return std::equal(a.fields.begin(), a.fields.end(), b.fields.begin(), b.fields.end(),
                    [](const auto& x, const auto& y) { return x.name == y.name && x.value == y.value; });
}

std::string join(const std::vector<tether::extension_offer>& exts) {
  std::string s;
  for (const auto& e : exts) {
    if (!s.empty())
      s += ", ";
    s += tether::format_extension(e);
  }
  return s;
}

void check_response(std::string_view in, bool eof) {
  const std::size_t split = in.empty() ? 0 : static_cast<unsigned char>(in[0]) % in.size();
  const auto a = run(in, split, eof);
  const auto b = run(in, in.size(), eof);
  TETHER_FUZZ_ASSERT(a.consumed <= in.size());
  // Where the input is split must not matter.
  TETHER_FUZZ_ASSERT(a.done == b.done && a.ec == b.ec);
  if (a.ec)
    return;
  TETHER_FUZZ_ASSERT(a.consumed == b.consumed);
  TETHER_FUZZ_ASSERT(a.resp.status == b.resp.status && a.resp.reason == b.resp.reason);
  TETHER_FUZZ_ASSERT(same_headers(a.resp.headers, b.resp.headers));
  TETHER_FUZZ_ASSERT(a.resp.body == b.resp.body && a.resp.body_truncated == b.resp.body_truncated);
  TETHER_FUZZ_ASSERT(a.resp.body.size() <= limits.max_body_bytes);
  if (!a.done)
    return;

  const auto head_end = in.find("\r\n\r\n");
  TETHER_FUZZ_ASSERT(head_end != std::string_view::npos);
  TETHER_FUZZ_ASSERT(head_end + 4 <= limits.max_header_bytes);
  TETHER_FUZZ_ASSERT(a.resp.status >= 100 && a.resp.status <= 599);
  if (a.resp.status == 101)
    TETHER_FUZZ_ASSERT(a.consumed == head_end + 4 && a.resp.body.empty());

  auto resp = a.resp;
  const auto ec = tether::validate_response(resp, key, offered());
  if (a.resp.status != 101) {
    TETHER_FUZZ_ASSERT(ec == tether::error::handshake_rejected);
    return;
  }
  if (ec) {
    TETHER_FUZZ_ASSERT(resp.subprotocol.empty() && resp.extensions.empty());
    return;
  }
  const auto& req = offered();
  TETHER_FUZZ_ASSERT(resp.headers.find("Sec-WebSocket-Accept") == tether::compute_accept(key));
  TETHER_FUZZ_ASSERT(resp.subprotocol.empty() ||
                     std::find(req.subprotocols.begin(), req.subprotocols.end(), resp.subprotocol) !=
                         req.subprotocols.end());
  for (std::size_t i = 0; i < resp.extensions.size(); ++i) {
    const auto& name = resp.extensions[i].name;
    TETHER_FUZZ_ASSERT(std::any_of(req.extensions.begin(), req.extensions.end(),
                                   [&](const auto& o) { return o.name == name; }));
    for (std::size_t j = 0; j < i; ++j)
      TETHER_FUZZ_ASSERT(resp.extensions[j].name != name);
  }
  // The accepted extensions re-format and re-parse to the same value.
  if (!resp.extensions.empty()) {
    std::vector<tether::extension_offer> again;
    TETHER_FUZZ_ASSERT(!tether::parse_extensions(join(resp.extensions), again));
    TETHER_FUZZ_ASSERT(again == resp.extensions);
  }
}

void check_extensions(std::string_view in) {
  std::vector<tether::extension_offer> out;
  if (tether::parse_extensions(in, out)) {
    TETHER_FUZZ_ASSERT(out.empty()); // untouched on error
    return;
  }
  TETHER_FUZZ_ASSERT(!out.empty());
  std::vector<tether::extension_offer> again;
  TETHER_FUZZ_ASSERT(!tether::parse_extensions(join(out), again));
  TETHER_FUZZ_ASSERT(again == out);
}

void check_server_role(std::string_view in) {
  tether::request_parser parser(limits);
  const auto r = parser.feed(in);
  TETHER_FUZZ_ASSERT(r.consumed <= in.size());
  if (r.ec || !r.done)
    return;
  auto sreq = parser.request();
  if (tether::validate_request(sreq))
    return;
  // Whatever a valid request offered, the answer built from it must satisfy a
  // client that offered the same.
  tether::client_request creq;
  creq.subprotocols = sreq.subprotocols;
  creq.extensions = sreq.extensions;
  const std::string_view chosen = sreq.subprotocols.empty() ? std::string_view{} : sreq.subprotocols.front();
  std::vector<tether::extension_offer> accepted;
  if (!sreq.extensions.empty())
    accepted.push_back(sreq.extensions.front());
  const auto answer = tether::build_accept_response(sreq, chosen, accepted);
  tether::response_parser client;
  const auto cr = client.feed(answer);
  TETHER_FUZZ_ASSERT(cr.done && !cr.ec && cr.consumed == answer.size());
  auto resp = client.response();
  TETHER_FUZZ_ASSERT(!tether::validate_response(resp, sreq.key, creq));
  TETHER_FUZZ_ASSERT(resp.subprotocol == chosen && resp.extensions == accepted);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  check_response(in, false);
  check_response(in, true);
  check_extensions(in);
  check_server_role(in);
  return 0;
}
