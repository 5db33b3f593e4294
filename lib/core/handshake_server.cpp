// The opening handshake's server role (RFC 6455 §4.2), sans-IO: parsing and
// checking a client's request, and the 101 answer. The parsing rules are the
// client role's (handshake.cpp's header comment); the HTTP helpers are
// http_fields.hpp's. Used by the loopback and demo servers.
#include <tether/error.hpp>
#include <tether/handshake.hpp>

#include <string>
#include <vector>

#include "crypto.hpp"
#include "http_fields.hpp"

namespace tether {

using namespace detail; // the HTTP helpers of http_fields.hpp

request_parser::result request_parser::feed(std::string_view in) {
  if (ec_)
    return {0, false, ec_};
  if (done_)
    return {0, true, {}};
  std::size_t used = 0;
  bool complete = false;
  auto ec = scan_head(head_, in, limits_.max_header_bytes, used, complete);
  if (!ec && !complete)
    return {used, false, {}};
  std::string_view line;
  if (!ec)
    ec = split_head(head_, line, req_.headers);
  // request-line = method SP request-target SP HTTP-version (RFC 7230 §3.1.1)
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (!ec && sp2 == std::string_view::npos)
    ec = error::handshake_malformed;
  if (!ec) {
    const auto method = line.substr(0, sp1);
    const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const auto version = line.substr(sp2 + 1);
    const bool target_ok = !target.empty() && std::all_of(target.begin(), target.end(), [](char c) {
      return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
    });
    const bool version_ok = version.size() == 8 && version.starts_with("HTTP/") && version[5] >= '0' &&
                            version[5] <= '9' && version[6] == '.' && version[7] >= '0' && version[7] <= '9';
    if (!is_token(method) || !target_ok || !version_ok)
      ec = error::handshake_malformed;
    else {
      req_.method = method;
      req_.target = target;
      req_.version = version;
    }
  }
  if (ec) {
    ec_ = ec;
    return {0, false, ec};
  }
  head_.clear();
  head_.shrink_to_fit();
  done_ = true;
  return {used, true, {}};
}

std::error_code validate_request(server_request& req) {
  // RFC 6455 §4.2.1, in order.
  if (req.method != "GET" || req.version != "HTTP/1.1")
    return error::handshake_bad_method;
  if (count_fields(req.headers, "Host") != 1)
    return error::handshake_malformed; // RFC 7230 §5.4: exactly one Host
  if (!has_token(req.headers, "Upgrade", "websocket"))
    return error::handshake_bad_upgrade;
  if (!has_token(req.headers, "Connection", "upgrade"))
    return error::handshake_bad_connection;
  const auto version = req.headers.find("Sec-WebSocket-Version");
  if (!version || count_fields(req.headers, "Sec-WebSocket-Version") != 1 || *version != "13")
    return error::handshake_bad_version;
  const auto key = req.headers.find("Sec-WebSocket-Key");
  std::string nonce;
  if (!key || count_fields(req.headers, "Sec-WebSocket-Key") != 1 || !detail::base64_decode(*key, nonce) ||
      nonce.size() != 16)
    return error::handshake_bad_key;

  std::vector<std::string> subprotocols;
  bool subprotocols_ok = true;
  for (const auto& f : req.headers.fields)
    if (iequals(f.name, "Sec-WebSocket-Protocol"))
      for_each_list_element(f.value, [&](std::string_view p) {
        subprotocols_ok = subprotocols_ok && is_token(p);
        subprotocols.emplace_back(p);
      });
  if (!subprotocols_ok)
    return error::handshake_bad_subprotocol;

  std::vector<extension_offer> extensions;
  if (count_fields(req.headers, "Sec-WebSocket-Extensions") > 0)
    if (auto ec = parse_extensions(combined_value(req.headers, "Sec-WebSocket-Extensions"), extensions))
      return ec;

  req.key = *key;
  req.subprotocols = std::move(subprotocols);
  req.extensions = std::move(extensions);
  return {};
}

std::string build_accept_response(const server_request& req, std::string_view subprotocol,
                                  const std::vector<extension_offer>& extensions) {
  std::string out = "HTTP/1.1 101 Switching Protocols\r\n";
  append_field(out, "Upgrade", "websocket");
  append_field(out, "Connection", "Upgrade");
  append_field(out, "Sec-WebSocket-Accept", compute_accept(req.key));
  if (!subprotocol.empty())
    append_field(out, "Sec-WebSocket-Protocol", subprotocol);
  if (!extensions.empty())
    append_field(out, "Sec-WebSocket-Extensions", join_extensions(extensions));
  out.append(crlf);
  return out;
}

std::string build_reject_response(int status, std::string_view reason, const http_headers& headers,
                                  std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out.append(reason).append(crlf);
  for (const auto& f : headers.fields)
    if (!iequals(f.name, "Content-Length")) // ours is the only one that can be right
      append_field(out, f.name, f.value);
  append_field(out, "Content-Length", std::to_string(body.size()));
  out.append(crlf);
  out.append(body);
  return out;
}

} // namespace tether
