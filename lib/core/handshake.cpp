// The opening handshake (RFC 6455 §4), sans-IO: extensions, keys and the
// client role (handshake_server.cpp has the server role).
//
// Rules for the two parsers, in one place:
//  1. The header section ends at the first CRLF CRLF. Every line must end in
//     CRLF; a bare LF or CR is handshake_malformed (no guessing at line ends,
//     and no obs-fold continuation lines: RFC 7230 §3.2.4 lets us reject them).
//  2. The header section, counted up to and including the blank line, may be at
//     most max_header_bytes; one byte more is handshake_too_large.
//  3. For a 101 (and for any request) nothing after the blank line is consumed:
//     those bytes are the first WebSocket frames.
//  4. A rejection's body is framed by Content-Length, or read until finish()
//     when there is none or Transfer-Encoding is present (chunked bodies are kept
//     raw, not decoded). Only max_body_bytes of it is kept.
//  5. Errors are sticky: after one, every call returns it again.

#include <tether/error.hpp>
#include <tether/handshake.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "crypto.hpp"
#include "http_fields.hpp"

namespace tether {

using namespace detail; // the HTTP helpers of http_fields.hpp

namespace {

constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

} // namespace

std::optional<std::string_view> http_headers::find(std::string_view name) const noexcept {
  for (const auto& f : fields)
    if (iequals(f.name, name))
      return std::string_view(f.value);
  return std::nullopt;
}

// ---- extensions (RFC 6455 §9.1) ----

std::error_code parse_extensions(std::string_view v, std::vector<extension_offer>& out) {
  const std::error_code bad = error::handshake_bad_extension;
  std::vector<extension_offer> result;
  std::size_t i = 0;
  const auto skip_ows = [&] {
    while (i < v.size() && is_ows(v[i]))
      ++i;
  };
  const auto token = [&] {
    const auto start = i;
    while (i < v.size() && is_tchar(v[i]))
      ++i;
    return v.substr(start, i - start);
  };
  while (true) {
    skip_ows();
    extension_offer offer;
    offer.name = token();
    if (offer.name.empty())
      return bad; // also catches "a, , b" and a trailing comma
    skip_ows();
    while (i < v.size() && v[i] == ';') {
      ++i;
      skip_ows();
      const auto name = token();
      if (name.empty())
        return bad;
      skip_ows();
      std::optional<std::string> value;
      if (i < v.size() && v[i] == '=') {
        ++i;
        skip_ows();
        std::string text;
        if (i < v.size() && v[i] == '"') {
          ++i;
          bool closed = false;
          while (i < v.size() && !closed) {
            char c = v[i++];
            if (c == '"') {
              closed = true;
              continue;
            }
            if (c == '\\') {
              if (i == v.size())
                return bad;
              c = v[i++];
            }
            text += c;
          }
          // RFC 6455 §9.1: the unescaped value must still be a token, which
          // also rules out control characters and quotes inside.
          if (!closed || !is_token(text))
            return bad;
        } else {
          text = token();
          if (text.empty())
            return bad;
        }
        value = std::move(text);
        skip_ows();
      }
      offer.params.emplace_back(std::string(name), std::move(value));
    }
    result.push_back(std::move(offer));
    if (i == v.size())
      break;
    if (v[i] != ',')
      return bad;
    ++i;
  }
  out = std::move(result);
  return {};
}

std::string format_extension(const extension_offer& offer) {
  std::string out = offer.name;
  for (const auto& [name, value] : offer.params) {
    out += "; ";
    out += name;
    if (value) {
      out += '=';
      out += is_token(*value) ? *value : quote(*value);
    }
  }
  return out;
}

// ---- keys ----

std::string generate_key() {
  std::array<unsigned char, 16> nonce{};
  if (!detail::pooled_random_bytes(nonce))
    return {};
  return detail::base64_encode(std::string_view(reinterpret_cast<const char*>(nonce.data()), nonce.size()));
}

std::string compute_accept(std::string_view key) {
  std::string input(key);
  input += websocket_guid;
  std::array<unsigned char, 20> digest{};
  if (!detail::sha1(input, digest))
    return {};
  return detail::base64_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

// ---- client role ----

std::string build_request(const client_request& req, std::string_view key) {
  std::string out;
  out.reserve(256);
  out.append("GET ").append(req.target.empty() ? std::string_view("/") : std::string_view(req.target));
  out.append(" HTTP/1.1\r\n");
  append_field(out, "Host", req.host);
  append_field(out, "Upgrade", "websocket");
  append_field(out, "Connection", "Upgrade");
  append_field(out, "Sec-WebSocket-Key", key);
  append_field(out, "Sec-WebSocket-Version", "13");
  if (!req.origin.empty())
    append_field(out, "Origin", req.origin);
  if (!req.subprotocols.empty()) {
    std::string list;
    for (const auto& p : req.subprotocols) {
      if (!list.empty())
        list += ", ";
      list += p;
    }
    append_field(out, "Sec-WebSocket-Protocol", list);
  }
  if (!req.extensions.empty())
    append_field(out, "Sec-WebSocket-Extensions", join_extensions(req.extensions));
  for (const auto& f : req.headers.fields)
    append_field(out, f.name, f.value);
  out.append(crlf);
  return out;
}

response_parser::result response_parser::fail(std::error_code ec) {
  ec_ = ec;
  return {0, false, ec};
}

std::error_code response_parser::parse_head() {
  std::string_view line;
  if (auto ec = split_head(head_, line, resp_.headers))
    return ec;
  // status-line = HTTP-version SP status-code SP reason-phrase (RFC 7230 §3.1.2);
  // a missing reason (no second SP) is tolerated.
  if (line.size() < 12 || !line.starts_with("HTTP/1.") || (line[7] != '0' && line[7] != '1') || line[8] != ' ')
    return error::handshake_malformed;
  int status = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9')
      return error::handshake_malformed;
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100 || status > 599)
    return error::handshake_malformed;
  if (line.size() > 12 && line[12] != ' ')
    return error::handshake_malformed;
  const auto reason = line.size() > 12 ? line.substr(13) : std::string_view{};
  if (!std::all_of(reason.begin(), reason.end(), is_field_char))
    return error::handshake_malformed;
  // Switching protocols needs HTTP/1.1 (RFC 7230 §6.7); HTTP/1.0 is only
  // accepted so that an old server's rejection can still be reported.
  if (status == 101 && line[7] != '1')
    return error::handshake_malformed;
  resp_.status = status;
  resp_.reason = reason;
  head_.clear();
  head_.shrink_to_fit();

  // Message framing (RFC 7230 §3.3.3). Other 1xx answers are treated as final
  // (a GET without Expect gets no interim response) and, like 204 and 304,
  // have no body.
  if (status < 200 || status == 204 || status == 304) {
    done_ = true;
    return {};
  }
  if (count_fields(resp_.headers, "Transfer-Encoding") > 0) {
    until_eof_ = true; // chunked is not decoded: the raw bytes are kept
    return {};
  }
  bool have_length = false;
  for (const auto& f : resp_.headers.fields) {
    if (!iequals(f.name, "Content-Length"))
      continue;
    std::uint64_t n = 0;
    if (!parse_content_length(f.value, n) || (have_length && n != body_left_))
      return error::handshake_malformed; // conflicting lengths: request smuggling territory
    body_left_ = n;
    have_length = true;
  }
  if (!have_length)
    until_eof_ = true;
  else if (body_left_ == 0)
    done_ = true;
  return {};
}

response_parser::result response_parser::feed(std::string_view in) {
  if (ec_)
    return {0, false, ec_};
  if (done_)
    return {0, true, {}};
  std::size_t pos = 0;
  if (!head_done_) {
    bool complete = false;
    if (auto ec = scan_head(head_, in, limits_.max_header_bytes, pos, complete))
      return fail(ec);
    if (!complete)
      return {pos, false, {}};
    head_done_ = true;
    if (auto ec = parse_head())
      return fail(ec);
    if (done_)
      return {pos, true, {}};
  }
  auto body = in.substr(pos);
  if (!until_eof_ && body.size() > body_left_)
    body = body.substr(0, static_cast<std::size_t>(body_left_));
  const auto room = limits_.max_body_bytes - std::min(limits_.max_body_bytes, resp_.body.size());
  resp_.body.append(body.substr(0, room));
  if (body.size() > room)
    resp_.body_truncated = true; // the rest is consumed and discarded
  pos += body.size();
  if (!until_eof_) {
    body_left_ -= body.size();
    done_ = body_left_ == 0;
  }
  return {pos, done_, {}};
}

response_parser::result response_parser::finish() {
  if (ec_)
    return {0, false, ec_};
  if (done_)
    return {0, true, {}};
  if (!head_done_)
    return fail(error::handshake_malformed); // closed before the header section ended
  // A body cut short of its Content-Length still leaves a usable status and
  // headers: report the response, flagged as truncated.
  if (!until_eof_)
    resp_.body_truncated = true;
  done_ = true;
  return {0, true, {}};
}

std::error_code validate_response(handshake_response& resp, std::string_view key, const client_request& req) {
  if (resp.status != 101)
    return error::handshake_rejected;
  // RFC 6455 §4.1, client steps 2-6.
  if (!has_token(resp.headers, "Upgrade", "websocket"))
    return error::handshake_bad_upgrade;
  if (!has_token(resp.headers, "Connection", "upgrade"))
    return error::handshake_bad_connection;
  const auto accept = resp.headers.find("Sec-WebSocket-Accept");
  const auto expected = compute_accept(key);
  if (expected.empty())
    return error::crypto_failed;
  if (!accept || count_fields(resp.headers, "Sec-WebSocket-Accept") != 1 || *accept != expected)
    return error::handshake_bad_accept;

  std::string subprotocol;
  if (count_fields(resp.headers, "Sec-WebSocket-Protocol") > 0) {
    // Exactly one field naming exactly one offered protocol (compared exactly).
    const auto chosen = *resp.headers.find("Sec-WebSocket-Protocol");
    if (count_fields(resp.headers, "Sec-WebSocket-Protocol") != 1 || chosen.empty() ||
        std::find(req.subprotocols.begin(), req.subprotocols.end(), chosen) == req.subprotocols.end())
      return error::handshake_bad_subprotocol;
    subprotocol = chosen;
  }

  std::vector<extension_offer> extensions;
  if (count_fields(resp.headers, "Sec-WebSocket-Extensions") > 0) {
    if (auto ec = parse_extensions(combined_value(resp.headers, "Sec-WebSocket-Extensions"), extensions))
      return ec;
    for (std::size_t i = 0; i < extensions.size(); ++i) {
      const auto& name = extensions[i].name;
      const bool offered = std::any_of(req.extensions.begin(), req.extensions.end(),
                                       [&](const extension_offer& o) { return o.name == name; });
      const bool repeated = std::any_of(extensions.begin(), extensions.begin() + static_cast<std::ptrdiff_t>(i),
                                        [&](const extension_offer& e) { return e.name == name; });
      if (!offered || repeated)
        return error::handshake_bad_extension;
    }
  }
  resp.subprotocol = std::move(subprotocol);
  resp.extensions = std::move(extensions);
  return {};
}

} // namespace tether
