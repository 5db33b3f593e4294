#pragma once
/// @file
/// tether's error codes and the coarse conditions a caller's policy switches on.

#include <tether/export.hpp>

#include <cstdint>
#include <system_error>

namespace tether {

/// Fine-grained error codes. Values are stable: they appear in logs and tests.
enum class error {
  // Peer protocol violations (RFC 6455 §5); close code 1002 unless noted.
  reserved_bits = 1,          ///< RSV1-3 set without a negotiated extension claiming it.
  unknown_opcode,             ///< Opcode 3-7 or 0xB-0xF.
  fragmented_control,         ///< Control frame with FIN clear (§5.5).
  control_too_big,            ///< Control frame payload over 125 bytes (§5.5).
  unexpected_continuation,    ///< Continuation frame with no message in progress.
  expected_continuation,      ///< New data frame inside a fragmented message.
  non_minimal_length,         ///< Payload length not in its shortest form (§5.2).
  length_msb_set,             ///< 64-bit payload length with the most significant bit set.
  masked_frame_from_server,   ///< A client received a masked frame (§5.1).
  unmasked_frame_from_client, ///< A server received an unmasked frame (§5.1).
  bad_close_payload,          ///< Close frame payload of exactly one byte (§5.5.1).
  bad_close_code,             ///< Received close code that may not be sent (§7.4).
  invalid_utf8,               ///< Text message is not UTF-8 (close code 1007).
  invalid_close_reason,       ///< Close reason is not UTF-8 (close code 1007).
  message_too_big,            ///< Message over max_message_size (close code 1009).
  frame_too_big,              ///< Frame over max_frame_size (close code 1009).
  extension_failed,           ///< The negotiated extension rejected a payload (1007).

  // Opening handshake.
  handshake_malformed = 100,  ///< Not parseable as an HTTP/1.1 message.
  handshake_too_large,        ///< Header section or body over its limit.
  handshake_rejected,         ///< Status other than 101 (see handshake_error for details).
  handshake_bad_upgrade,      ///< Missing or wrong Upgrade: websocket.
  handshake_bad_connection,   ///< Missing or wrong Connection: Upgrade.
  handshake_bad_accept,       ///< Sec-WebSocket-Accept does not match our key.
  handshake_bad_subprotocol,  ///< Server chose a subprotocol we did not offer.
  handshake_bad_extension,    ///< Server accepted an extension we did not offer, or bad params.
  handshake_bad_version,      ///< (server role) Sec-WebSocket-Version is not 13.
  handshake_bad_key,          ///< (server role) Sec-WebSocket-Key missing or not 16 bytes.
  handshake_bad_method,       ///< (server role) Not a GET request with HTTP/1.1.

  // URL parsing.
  url_bad_scheme = 200,       ///< Scheme other than ws:// or wss://.
  url_malformed,              ///< Not a URL (missing host, bad brackets, bad characters).
  url_bad_port,               ///< Port not a number in 1..65535.
  url_userinfo,               ///< user:pass@ present and not allowed by the options.

  // Local misuse (never the peer's fault).
  invalid_close_code = 300,   ///< We were asked to send a code that may not be sent.
  control_payload_too_big,    ///< Ping/pong/close payload over 125 bytes.
  message_in_progress,        ///< New message started before the previous one ended.
  no_message_in_progress,     ///< Continuation sent with no message started.
  closed,                     ///< Operation after the close frame was sent or the connection failed.

  // I/O layer (stream and handler).
  resolve_timeout = 400,
  connect_timeout,
  tls_timeout,
  handshake_timeout,
  close_timeout,
  pong_timeout,
  write_timeout,               ///< Deprecated, never produced: a stalled write ends through pong_timeout (dead_connection).
  send_timeout,
  tls_failed,                 ///< TLS handshake failed; the message carries OpenSSL's reason.
  partial_write_cancelled,    ///< A send was cancelled after part of it was written.
  connection_lost,            ///< TCP ended without a close handshake (reported as 1006).
  queue_full,                 ///< Outgoing queue over its bound with the fail policy.

  // Handler, router and codec.
  route_conflict = 500,       ///< add_route: the pattern is already registered.
  invalid_pattern,            ///< add_route: empty segment, '#' not last, bad characters.
  invalid_envelope,           ///< A message is not a valid envelope (not JSON, no path, wrong types).
  retries_exhausted,          ///< Deprecated, never produced: when the policy gives up, the code is the last error (docs/errors.md).
  handler_closed,             ///< The handler was closed; operations fail at once.
  reconnect_stopped,          ///< Deprecated, never produced: when the policy stops, the code is the last error.
  dead_connection,            ///< No pong nor any frame within pong_timeout (half-open TCP).

  // Appended after the groups above: values never move (docs/errors.md).
  callback_failed,            ///< A user callback (hook, on_open step, interceptor, route handler) threw.
  server_closed,              ///< The server closed the connection with a close frame (code and reason in the text).
  handshake_no_response,      ///< TCP closed before a complete handshake response arrived.
  compression_unavailable,    ///< compression::on in a build without zlib.
  proxy_bad_url,              ///< stream_options::proxy or a *_proxy variable is not a proxy URL.
  proxy_unreachable,          ///< The proxy could not be resolved or connected to (the text says why).
  proxy_timeout,              ///< The proxy did not complete the tunnel within proxy_timeout.
  proxy_malformed,            ///< The proxy's answer is neither HTTP nor SOCKS5, or it closed mid-answer.
  proxy_auth_required,        ///< HTTP 407 (or 401): the proxy wants (other) credentials.
  proxy_denied,               ///< The proxy refused CONNECT with a 4xx other than 407 (403: not allowed).
  proxy_failed,               ///< The proxy answered CONNECT with 5xx: it could not reach the server.
  socks_auth_failed,          ///< SOCKS5: no acceptable method, or the user/password was refused.
  socks_general_failure,      ///< SOCKS5 reply 1: general server failure.
  socks_not_allowed,          ///< SOCKS5 reply 2: connection not allowed by ruleset.
  socks_network_unreachable,  ///< SOCKS5 reply 3.
  socks_host_unreachable,     ///< SOCKS5 reply 4.
  socks_connection_refused,   ///< SOCKS5 reply 5: the server refused the proxy's connection.
  socks_ttl_expired,          ///< SOCKS5 reply 6.
  socks_command_not_supported,     ///< SOCKS5 reply 7.
  socks_address_type_not_supported, ///< SOCKS5 reply 8 (a socks5h:// name the proxy cannot take).
  request_timeout,            ///< handler::request: no reply within its timeout.
  outcome_unknown,            ///< handler::request: the connection ended after the request was written, before its reply.
  request_failed,             ///< handler::request: the server answered with an error reply (request_error).
  subscription_refused,       ///< handler::subscribe: the server refused the topic (also reported when a re-subscription is refused).
  rate_limited,               ///< handler::send: over the rate limit, with handler_options::fail_when_rate_limited.
  crypto_failed,              ///< OpenSSL could not make a random key or mask, or a SHA-1 digest.
};

/// Coarse groups of errors, for retry policies and user code.
enum class condition {
  protocol_violation = 1, ///< The peer broke RFC 6455.
  handshake_failed,       ///< The opening handshake did not complete.
  invalid_url,
  invalid_argument,       ///< Local misuse.
  timeout,
  limit_exceeded,         ///< A configured size limit was exceeded.
  transport,              ///< TCP/TLS level failure.
  handler,                ///< Handler, router or codec misuse and states.
};

/// The category of tether::error values (name "tether").
TETHER_API const std::error_category& error_category() noexcept;
/// The category of tether::condition values (name "tether.condition").
TETHER_API const std::error_category& condition_category() noexcept;

TETHER_API std::error_code make_error_code(error e) noexcept;
/// The enumerator's name ("server_closed"); "unknown" for a value not listed.
/// The error's description is make_error_code(e).message().
TETHER_API const char* to_string(error e) noexcept;
/// The enumerator's name ("timeout", "transport", ...).
TETHER_API const char* to_string(condition c) noexcept;
TETHER_API std::error_condition make_error_condition(condition c) noexcept;

/// The close code RFC 6455 §7.4.1 assigns to a peer violation; 1002 for
/// anything unknown, 1011 for non-protocol errors.
TETHER_API std::uint16_t close_code_for(std::error_code ec) noexcept;

} // namespace tether

template <> struct std::is_error_code_enum<tether::error> : std::true_type {};
template <> struct std::is_error_condition_enum<tether::condition> : std::true_type {};
