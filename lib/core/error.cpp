#include <tether/error.hpp>
#include <tether/protocol.hpp>

#include <string>

namespace tether {
namespace {

const char* message_of(error e) noexcept {
  switch (e) {
  case error::reserved_bits: return "reserved bits set without a negotiated extension";
  case error::unknown_opcode: return "unknown opcode";
  case error::fragmented_control: return "fragmented control frame";
  case error::control_too_big: return "control frame payload over 125 bytes";
  case error::unexpected_continuation: return "continuation frame without a message in progress";
  case error::expected_continuation: return "new data frame inside a fragmented message";
  case error::non_minimal_length: return "payload length not minimally encoded";
  case error::length_msb_set: return "64-bit payload length with the top bit set";
  case error::masked_frame_from_server: return "masked frame from the server";
  case error::unmasked_frame_from_client: return "unmasked frame from the client";
  case error::bad_close_payload: return "close frame with a 1-byte payload";
  case error::bad_close_code: return "invalid close code received";
  case error::invalid_utf8: return "text message is not valid UTF-8";
  case error::invalid_close_reason: return "close reason is not valid UTF-8";
  case error::message_too_big: return "message exceeds max_message_size";
  case error::frame_too_big: return "frame exceeds max_frame_size";
  case error::extension_failed: return "extension could not decode the payload";
  case error::handshake_malformed: return "malformed HTTP in the opening handshake";
  case error::handshake_too_large: return "handshake message exceeds its size limit";
  case error::handshake_rejected: return "server rejected the WebSocket upgrade";
  case error::handshake_bad_upgrade: return "handshake response lacks Upgrade: websocket";
  case error::handshake_bad_connection: return "handshake response lacks Connection: Upgrade";
  case error::handshake_bad_accept: return "Sec-WebSocket-Accept does not match the key";
  case error::handshake_bad_subprotocol: return "server chose a subprotocol that was not offered";
  case error::handshake_bad_extension: return "server accepted an extension that was not offered or is malformed";
  case error::handshake_bad_version: return "Sec-WebSocket-Version is not 13";
  case error::handshake_bad_key: return "Sec-WebSocket-Key missing or invalid";
  case error::handshake_bad_method: return "handshake request is not GET over HTTP/1.1";
  case error::url_bad_scheme: return "URL scheme is not ws:// or wss://";
  case error::url_malformed: return "malformed URL";
  case error::url_bad_port: return "URL port is not in 1..65535";
  case error::url_userinfo: return "URL userinfo is not allowed";
  case error::invalid_close_code: return "close code may not be sent";
  case error::control_payload_too_big: return "control frame payload over 125 bytes";
  case error::message_in_progress: return "a message is already in progress";
  case error::no_message_in_progress: return "continuation without a message in progress";
  case error::closed: return "connection is closed";
  case error::resolve_timeout: return "timed out resolving the host";
  case error::connect_timeout: return "timed out connecting";
  case error::tls_timeout: return "timed out in the TLS handshake";
  case error::handshake_timeout: return "timed out in the WebSocket handshake";
  case error::close_timeout: return "timed out in the close handshake";
  case error::pong_timeout: return "no pong within the timeout";
  case error::write_timeout: return "timed out writing";
  case error::send_timeout: return "send waited too long";
  case error::tls_failed: return "TLS handshake failed";
  case error::partial_write_cancelled: return "send cancelled after part of it was written";
  case error::connection_lost: return "connection lost without a close handshake";
  case error::queue_full: return "outgoing queue is full";
  case error::route_conflict: return "a route with this pattern already exists";
  case error::invalid_pattern: return "invalid route pattern";
  case error::invalid_envelope: return "message is not a valid envelope";
  case error::retries_exhausted: return "reconnect attempts exhausted";
  case error::handler_closed: return "handler is closed";
  case error::reconnect_stopped: return "reconnect stopped by the retry policy";
  case error::dead_connection: return "connection is dead: no pong within pong_timeout";
  case error::callback_failed: return "a user callback threw";
  case error::server_closed: return "the server closed the connection";
  case error::handshake_no_response: return "connection closed before the handshake response";
  case error::compression_unavailable: return "permessage-deflate asked for, but tether was built without zlib";
  case error::proxy_bad_url: return "invalid proxy URL";
  case error::proxy_unreachable: return "cannot reach the proxy";
  case error::proxy_timeout: return "timed out setting up the proxy tunnel";
  case error::proxy_malformed: return "malformed answer from the proxy";
  case error::proxy_auth_required: return "the proxy requires authentication";
  case error::proxy_denied: return "the proxy refused the connection";
  case error::proxy_failed: return "the proxy could not connect to the server";
  case error::socks_auth_failed: return "SOCKS5 authentication failed";
  case error::socks_general_failure: return "SOCKS5: general server failure";
  case error::socks_not_allowed: return "SOCKS5: connection not allowed by ruleset";
  case error::socks_network_unreachable: return "SOCKS5: network unreachable";
  case error::socks_host_unreachable: return "SOCKS5: host unreachable";
  case error::socks_connection_refused: return "SOCKS5: connection refused";
  case error::socks_ttl_expired: return "SOCKS5: TTL expired";
  case error::socks_command_not_supported: return "SOCKS5: command not supported";
  case error::socks_address_type_not_supported: return "SOCKS5: address type not supported";
  case error::request_timeout: return "no reply to the request within its timeout";
  case error::outcome_unknown: return "the connection ended after the request was sent and before its reply: it may or may not have been carried out";
  case error::request_failed: return "the server answered the request with an error";
  case error::subscription_refused: return "the server refused the subscription";
  case error::rate_limited: return "over the send rate limit";
  case error::crypto_failed: return "OpenSSL could not produce random bytes or a SHA-1 digest";
  }
  return "unknown tether error";
}

// One row per code, so adding a code never changes another's condition. A
// missing case is a compiler warning (-Wswitch), an error in CI (-Werror).
condition condition_of(error e) noexcept {
  switch (e) {
  case error::reserved_bits:
  case error::unknown_opcode:
  case error::fragmented_control:
  case error::control_too_big:
  case error::unexpected_continuation:
  case error::expected_continuation:
  case error::non_minimal_length:
  case error::length_msb_set:
  case error::masked_frame_from_server:
  case error::unmasked_frame_from_client:
  case error::bad_close_payload:
  case error::bad_close_code:
  case error::invalid_utf8:
  case error::invalid_close_reason:
  case error::extension_failed:
    return condition::protocol_violation;
  case error::message_too_big:
  case error::frame_too_big:
  case error::handshake_too_large:
  case error::queue_full:
    return condition::limit_exceeded;
  case error::handshake_malformed:
  case error::handshake_rejected:
  case error::handshake_bad_upgrade:
  case error::handshake_bad_connection:
  case error::handshake_bad_accept:
  case error::handshake_bad_subprotocol:
  case error::handshake_bad_extension:
  case error::handshake_bad_version:
  case error::handshake_bad_key:
  case error::handshake_bad_method:
  case error::handshake_no_response:
  case error::proxy_malformed:
  case error::proxy_auth_required:
  case error::proxy_denied:
  case error::socks_auth_failed:
  case error::socks_not_allowed:
  case error::socks_command_not_supported:
  case error::socks_address_type_not_supported:
    return condition::handshake_failed;
  case error::url_bad_scheme:
  case error::url_malformed:
  case error::url_bad_port:
  case error::url_userinfo:
  case error::proxy_bad_url:
    return condition::invalid_url;
  case error::invalid_close_code:
  case error::control_payload_too_big:
  case error::message_in_progress:
  case error::no_message_in_progress:
  case error::closed:
  case error::compression_unavailable:
    return condition::invalid_argument;
  case error::resolve_timeout:
  case error::connect_timeout:
  case error::tls_timeout:
  case error::handshake_timeout:
  case error::close_timeout:
  case error::pong_timeout:
  case error::write_timeout:
  case error::send_timeout:
  case error::dead_connection:
  case error::proxy_timeout:
  case error::request_timeout:
    return condition::timeout;
  case error::tls_failed:
  case error::partial_write_cancelled:
  case error::connection_lost:
  case error::server_closed:
  case error::proxy_unreachable:
  case error::proxy_failed:
  case error::socks_general_failure:
  case error::socks_network_unreachable:
  case error::socks_host_unreachable:
  case error::socks_connection_refused:
  case error::socks_ttl_expired:
  case error::outcome_unknown:
  case error::crypto_failed:
    return condition::transport;
  case error::request_failed:
  case error::subscription_refused:
  case error::rate_limited:
  case error::route_conflict:
  case error::invalid_pattern:
  case error::invalid_envelope:
  case error::retries_exhausted:
  case error::handler_closed:
  case error::reconnect_stopped:
  case error::callback_failed:
    return condition::handler;
  }
  return condition::handler;
}

class error_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "tether"; }
  std::string message(int ev) const override { return message_of(static_cast<error>(ev)); }
  std::error_condition default_error_condition(int ev) const noexcept override {
    return condition_of(static_cast<error>(ev));
  }
};

class condition_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "tether.condition"; }
  std::string message(int ev) const override {
    switch (static_cast<condition>(ev)) {
    case condition::protocol_violation: return "protocol violation";
    case condition::handshake_failed: return "handshake failed";
    case condition::invalid_url: return "invalid URL";
    case condition::invalid_argument: return "invalid argument";
    case condition::timeout: return "timeout";
    case condition::limit_exceeded: return "limit exceeded";
    case condition::transport: return "transport failure";
    case condition::handler: return "handler";
    }
    return "unknown condition";
  }
};

} // namespace

const std::error_category& error_category() noexcept {
  static const error_category_impl instance;
  return instance;
}

const std::error_category& condition_category() noexcept {
  static const condition_category_impl instance;
  return instance;
}

std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), error_category()}; }
std::error_condition make_error_condition(condition c) noexcept { return {static_cast<int>(c), condition_category()}; }

std::uint16_t close_code_for(std::error_code ec) noexcept {
  if (ec.category() != error_category())
    return close_code::internal_error;
  switch (static_cast<error>(ec.value())) {
  case error::invalid_utf8:
  case error::invalid_close_reason:
  case error::extension_failed:
    return close_code::invalid_payload; // RFC 6455 §7.4.1: data inconsistent with its type
  case error::message_too_big:
  case error::frame_too_big:
    return close_code::message_too_big;
  default:
    return ec.value() < 100 ? close_code::protocol_error : close_code::internal_error;
  }
}

} // namespace tether
