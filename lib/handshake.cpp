// The opening handshake (RFC 6455 §4), sans-IO.
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

namespace tether {

namespace {

constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr std::string_view crlf = "\r\n";

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

// RFC 7230 §3.2.6 tchar.
bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  switch (c) {
  case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
  case '-': case '.': case '^': case '_': case '`': case '|': case '~':
    return true;
  default:
    return false;
  }
}

bool is_token(std::string_view s) noexcept { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back()))
    s.remove_suffix(1);
  return s;
}

// field-content / reason-phrase characters: HTAB, SP, VCHAR, obs-text.
bool is_field_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return c == '\t' || (u >= 0x20 && u != 0x7f);
}

// Calls f(element) for each non-empty, trimmed element of a #list value. Empty
// elements are skipped, as RFC 7230 §7 asks of recipients.
template <class F> void for_each_list_element(std::string_view value, F&& f) {
  while (true) {
    const auto comma = value.find(',');
    const auto element = trim_ows(value.substr(0, comma));
    if (!element.empty())
      f(element);
    if (comma == std::string_view::npos)
      return;
    value.remove_prefix(comma + 1);
  }
}

// True if any `name` field lists `token` (case-insensitively), e.g. Connection: keep-alive, Upgrade.
bool has_token(const http_headers& headers, std::string_view name, std::string_view token) {
  bool found = false;
  for (const auto& f : headers.fields)
    if (iequals(f.name, name))
      for_each_list_element(f.value, [&](std::string_view e) { found = found || iequals(e, token); });
  return found;
}

std::size_t count_fields(const http_headers& headers, std::string_view name) {
  return static_cast<std::size_t>(
      std::count_if(headers.fields.begin(), headers.fields.end(), [&](const http_header& f) { return iequals(f.name, name); }));
}

// All `name` fields joined with ", " (RFC 7230 §3.2.2: equivalent to one field).
std::string combined_value(const http_headers& headers, std::string_view name) {
  std::string out;
  for (const auto& f : headers.fields) {
    if (!iequals(f.name, name))
      continue;
    if (!out.empty())
      out += ", ";
    out += f.value;
  }
  return out;
}

// Appends the bytes of `in` that belong to the header section to `head`.
// `used` is how many were taken; `complete` is set once the blank line is in.
std::error_code scan_head(std::string& head, std::string_view in, std::size_t limit, std::size_t& used,
                          bool& complete) {
  used = 0;
  complete = false;
  while (used < in.size()) {
    const auto nl = in.find('\n', used);
    const auto end = nl == std::string_view::npos ? in.size() : nl + 1;
    if (head.size() + (end - used) > limit)
      return error::handshake_too_large;
    head.append(in.substr(used, end - used));
    used = end;
    if (nl == std::string_view::npos)
      break;
    if (head.size() < 2 || head[head.size() - 2] != '\r')
      return error::handshake_malformed; // bare LF
    if (head.ends_with("\r\n\r\n")) {
      complete = true;
      break;
    }
  }
  return {};
}

// Splits a complete header section into its start line and fields.
std::error_code split_head(std::string_view head, std::string_view& start_line, http_headers& out) {
  head.remove_suffix(2); // the blank line's CRLF; every remaining line ends in CRLF
  // A CR must begin a CRLF; LFs were already checked by scan_head.
  for (std::size_t i = 0; i < head.size(); ++i)
    if (head[i] == '\r' && (i + 1 == head.size() || head[i + 1] != '\n'))
      return error::handshake_malformed;
  auto eol = head.find(crlf);
  start_line = head.substr(0, eol);
  head.remove_prefix(eol + 2);
  while (!head.empty()) {
    eol = head.find(crlf);
    const auto line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    // field-name ":" OWS field-value OWS; a leading space (obs-fold) or a space
    // before the colon makes the name a non-token.
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon)))
      return error::handshake_malformed;
    const auto value = trim_ows(line.substr(colon + 1));
    if (!std::all_of(value.begin(), value.end(), is_field_char))
      return error::handshake_malformed;
    out.add(std::string(line.substr(0, colon)), std::string(value));
  }
  return {};
}

// Strict Content-Length: digits only, no overflow.
bool parse_content_length(std::string_view s, std::uint64_t& out) {
  if (s.empty())
    return false;
  std::uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (n > (std::numeric_limits<std::uint64_t>::max() - d) / 10)
      return false;
    n = n * 10 + d;
  }
  out = n;
  return true;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append(crlf);
}

std::string join_extensions(const std::vector<extension_offer>& extensions) {
  std::string out;
  for (const auto& e : extensions) {
    if (!out.empty())
      out += ", ";
    out += format_extension(e);
  }
  return out;
}

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
  detail::random_bytes(nonce);
  return detail::base64_encode(std::string_view(reinterpret_cast<const char*>(nonce.data()), nonce.size()));
}

std::string compute_accept(std::string_view key) {
  std::string input(key);
  input += websocket_guid;
  const auto digest = detail::sha1(input);
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
  if (!accept || count_fields(resp.headers, "Sec-WebSocket-Accept") != 1 || *accept != compute_accept(key))
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

// ---- server role ----

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
