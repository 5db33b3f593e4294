#pragma once
/// @file
/// The opening handshake (RFC 6455 §4): client request builder and response
/// validator, server request validator and response builder. Sans-IO.

#include <tether/export.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <tether/extension.hpp>

namespace tether {

/// One HTTP header field as received or to be sent.
struct http_header {
  std::string name;
  std::string value;
};

/// An ordered list of header fields with case-insensitive lookup.
struct TETHER_API http_headers {
  std::vector<http_header> fields;

  /// The first value of `name`, compared case-insensitively.
  std::optional<std::string_view> find(std::string_view name) const noexcept;
  void add(std::string name, std::string value) { fields.push_back({std::move(name), std::move(value)}); }
};

/// Splits a Sec-WebSocket-Extensions value into offers (RFC 6455 §9.1 grammar,
/// quoted-string values unquoted). Returns handshake_bad_extension on bad syntax,
/// including empty list elements; `out` is replaced on success and untouched on error.
TETHER_API std::error_code parse_extensions(std::string_view value, std::vector<extension_offer>& out);
/// The inverse of parse_extensions for one offer.
TETHER_API std::string format_extension(const extension_offer& offer);

/// 16 random bytes from OpenSSL's CSPRNG, base64-encoded (RFC 6455 §4.1);
/// empty if the CSPRNG fails (the stream then fails with error::crypto_failed).
TETHER_API std::string generate_key();
/// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) (RFC 6455 §4.2.2);
/// empty if OpenSSL cannot compute SHA-1 (validate_response: error::crypto_failed).
TETHER_API std::string compute_accept(std::string_view key);

/// What the client asks for.
struct client_request {
  std::string host;                  ///< Host header value (see url::host_header).
  std::string target = "/";          ///< Request target: path and query.
  std::string origin;                ///< Origin header, omitted when empty.
  std::vector<std::string> subprotocols;
  std::vector<extension_offer> extensions;
  http_headers headers;              ///< Extra headers (Authorization, Cookie, ...).
};

/// Builds the HTTP request for `req` using `key` (from generate_key()). Values are
/// copied verbatim: the caller must not pass CR or LF in them (parse_url never yields any).
TETHER_API std::string build_request(const client_request& req, std::string_view key);

/// Limits for parsing an HTTP message during the handshake.
struct handshake_limits {
  std::size_t max_header_bytes = 16 * 1024; ///< Status line plus headers.
  std::size_t max_body_bytes = 64 * 1024;   ///< Body kept from a rejection; the rest is discarded.
};

/// The server's answer to the opening handshake.
struct handshake_response {
  int status = 0;
  std::string reason;
  http_headers headers;
  std::string body;                          ///< For non-101 answers, capped at max_body_bytes.
  bool body_truncated = false;
  std::string subprotocol;                   ///< Chosen subprotocol, empty if none.
  std::vector<extension_offer> extensions;   ///< Accepted extensions, parsed.
};

/// Incremental parser for the handshake response. Feed bytes as they arrive; it
/// says how many it consumed, so bytes after the header section (the first frames)
/// stay with the caller for the protocol core.
class TETHER_API response_parser {
public:
  explicit response_parser(handshake_limits limits = {}) : limits_(limits) {}

  struct result {
    std::size_t consumed = 0; ///< Bytes of `in` that belong to the HTTP response.
    bool done = false;        ///< The response is complete.
    std::error_code ec;       ///< handshake_malformed or handshake_too_large.
  };

  /// Consumes bytes of the response. For a 101 it stops right after the blank line;
  /// otherwise it reads the body by Content-Length (or chunked is not supported:
  /// until EOF), capped by the limits.
  result feed(std::string_view in);
  /// Tells the parser the connection ended: completes a body read until EOF. EOF inside
  /// the header section is handshake_malformed; inside a Content-Length body the response
  /// is complete with body_truncated set.
  result finish();

  const handshake_response& response() const noexcept { return resp_; }
  handshake_response& response() noexcept { return resp_; }

private:
  std::error_code parse_head();
  result fail(std::error_code ec);
  handshake_limits limits_;
  handshake_response resp_;
  std::string head_;
  std::error_code ec_; // sticky: every call after an error repeats it
  bool head_done_ = false;
  bool done_ = false;
  bool until_eof_ = false;
  std::uint64_t body_left_ = 0;
};

/// Checks a complete response against the request: status 101 (else
/// handshake_rejected), Upgrade/Connection tokens, Sec-WebSocket-Accept,
/// subprotocol and extensions among those offered. Fills resp.subprotocol and
/// resp.extensions.
TETHER_API std::error_code validate_response(handshake_response& resp, std::string_view key, const client_request& req);

// ---- server role (test and demo servers) ----

/// A parsed client request.
struct server_request {
  std::string method;
  std::string target;
  std::string version;                       ///< "HTTP/1.1" (the request line's HTTP-version).
  http_headers headers;
  std::string key;                           ///< Sec-WebSocket-Key.
  std::vector<std::string> subprotocols;     ///< Offered, in order.
  std::vector<extension_offer> extensions;   ///< Offered, in order.
};

/// Incremental parser for the client's request (server role), same contract as response_parser.
class TETHER_API request_parser {
public:
  explicit request_parser(handshake_limits limits = {}) : limits_(limits) {}
  struct result {
    std::size_t consumed = 0;
    bool done = false;
    std::error_code ec;
  };
  result feed(std::string_view in);
  const server_request& request() const noexcept { return req_; }

private:
  handshake_limits limits_;
  server_request req_;
  std::string head_;
  std::error_code ec_; // sticky: every call after an error repeats it
  bool done_ = false;
};

/// Checks method and version (handshake_bad_method), exactly one Host (handshake_malformed),
/// Upgrade, Connection, Sec-WebSocket-Version 13 and the key (16 bytes in strict base64),
/// and parses the offered subprotocols (tokens) and extensions. Fills key,
/// subprotocols and extensions on success.
TETHER_API std::error_code validate_request(server_request& req);

/// The 101 response accepting `req`, with an optional subprotocol and extensions.
TETHER_API std::string build_accept_response(const server_request& req, std::string_view subprotocol = {},
                                  const std::vector<extension_offer>& extensions = {});
/// A non-101 response with the given headers and body (Content-Length added; one in
/// `headers` is dropped).
TETHER_API std::string build_reject_response(int status, std::string_view reason, const http_headers& headers = {},
                                  std::string_view body = {});

} // namespace tether
