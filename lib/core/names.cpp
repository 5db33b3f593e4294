// The names of the core's public enums, as written in the source: logs, JSON
// and fmt print these (docs/errors.md lists the errors with their meaning).
#include <tether/error.hpp>
#include <tether/frame.hpp>
#include <tether/protocol.hpp>

namespace tether {

const char* to_string(error e) noexcept {
  switch (e) {
  case error::reserved_bits: return "reserved_bits";
  case error::unknown_opcode: return "unknown_opcode";
  case error::fragmented_control: return "fragmented_control";
  case error::control_too_big: return "control_too_big";
  case error::unexpected_continuation: return "unexpected_continuation";
  case error::expected_continuation: return "expected_continuation";
  case error::non_minimal_length: return "non_minimal_length";
  case error::length_msb_set: return "length_msb_set";
  case error::masked_frame_from_server: return "masked_frame_from_server";
  case error::unmasked_frame_from_client: return "unmasked_frame_from_client";
  case error::bad_close_payload: return "bad_close_payload";
  case error::bad_close_code: return "bad_close_code";
  case error::invalid_utf8: return "invalid_utf8";
  case error::invalid_close_reason: return "invalid_close_reason";
  case error::message_too_big: return "message_too_big";
  case error::frame_too_big: return "frame_too_big";
  case error::extension_failed: return "extension_failed";
  case error::handshake_malformed: return "handshake_malformed";
  case error::handshake_too_large: return "handshake_too_large";
  case error::handshake_rejected: return "handshake_rejected";
  case error::handshake_bad_upgrade: return "handshake_bad_upgrade";
  case error::handshake_bad_connection: return "handshake_bad_connection";
  case error::handshake_bad_accept: return "handshake_bad_accept";
  case error::handshake_bad_subprotocol: return "handshake_bad_subprotocol";
  case error::handshake_bad_extension: return "handshake_bad_extension";
  case error::handshake_bad_version: return "handshake_bad_version";
  case error::handshake_bad_key: return "handshake_bad_key";
  case error::handshake_bad_method: return "handshake_bad_method";
  case error::url_bad_scheme: return "url_bad_scheme";
  case error::url_malformed: return "url_malformed";
  case error::url_bad_port: return "url_bad_port";
  case error::url_userinfo: return "url_userinfo";
  case error::invalid_close_code: return "invalid_close_code";
  case error::control_payload_too_big: return "control_payload_too_big";
  case error::message_in_progress: return "message_in_progress";
  case error::no_message_in_progress: return "no_message_in_progress";
  case error::closed: return "closed";
  case error::resolve_timeout: return "resolve_timeout";
  case error::connect_timeout: return "connect_timeout";
  case error::tls_timeout: return "tls_timeout";
  case error::handshake_timeout: return "handshake_timeout";
  case error::close_timeout: return "close_timeout";
  case error::pong_timeout: return "pong_timeout";
  case error::write_timeout: return "write_timeout";
  case error::send_timeout: return "send_timeout";
  case error::tls_failed: return "tls_failed";
  case error::partial_write_cancelled: return "partial_write_cancelled";
  case error::connection_lost: return "connection_lost";
  case error::queue_full: return "queue_full";
  case error::route_conflict: return "route_conflict";
  case error::invalid_pattern: return "invalid_pattern";
  case error::invalid_envelope: return "invalid_envelope";
  case error::retries_exhausted: return "retries_exhausted";
  case error::handler_closed: return "handler_closed";
  case error::reconnect_stopped: return "reconnect_stopped";
  case error::dead_connection: return "dead_connection";
  case error::callback_failed: return "callback_failed";
  case error::server_closed: return "server_closed";
  case error::handshake_no_response: return "handshake_no_response";
  case error::compression_unavailable: return "compression_unavailable";
  case error::proxy_bad_url: return "proxy_bad_url";
  case error::proxy_unreachable: return "proxy_unreachable";
  case error::proxy_timeout: return "proxy_timeout";
  case error::proxy_malformed: return "proxy_malformed";
  case error::proxy_auth_required: return "proxy_auth_required";
  case error::proxy_denied: return "proxy_denied";
  case error::proxy_failed: return "proxy_failed";
  case error::socks_auth_failed: return "socks_auth_failed";
  case error::socks_general_failure: return "socks_general_failure";
  case error::socks_not_allowed: return "socks_not_allowed";
  case error::socks_network_unreachable: return "socks_network_unreachable";
  case error::socks_host_unreachable: return "socks_host_unreachable";
  case error::socks_connection_refused: return "socks_connection_refused";
  case error::socks_ttl_expired: return "socks_ttl_expired";
  case error::socks_command_not_supported: return "socks_command_not_supported";
  case error::socks_address_type_not_supported: return "socks_address_type_not_supported";
  case error::request_timeout: return "request_timeout";
  case error::outcome_unknown: return "outcome_unknown";
  case error::request_failed: return "request_failed";
  case error::subscription_refused: return "subscription_refused";
  case error::rate_limited: return "rate_limited";
  case error::crypto_failed: return "crypto_failed";
  }
  return "unknown";
}

const char* to_string(condition c) noexcept {
  switch (c) {
  case condition::protocol_violation: return "protocol_violation";
  case condition::handshake_failed: return "handshake_failed";
  case condition::invalid_url: return "invalid_url";
  case condition::invalid_argument: return "invalid_argument";
  case condition::timeout: return "timeout";
  case condition::limit_exceeded: return "limit_exceeded";
  case condition::transport: return "transport";
  case condition::handler: return "handler";
  }
  return "unknown";
}

const char* to_string(opcode op) noexcept {
  switch (op) {
  case opcode::continuation: return "continuation";
  case opcode::text: return "text";
  case opcode::binary: return "binary";
  case opcode::close: return "close";
  case opcode::ping: return "ping";
  case opcode::pong: return "pong";
  }
  return "reserved"; // 0x3-0x7, 0xB-0xF: values the RFC leaves undefined
}

const char* to_string(event::kind k) noexcept {
  switch (k) {
  case event::kind::message_begin: return "message_begin";
  case event::kind::data: return "data";
  case event::kind::message_end: return "message_end";
  case event::kind::ping: return "ping";
  case event::kind::pong: return "pong";
  case event::kind::close: return "close";
  case event::kind::error: return "error";
  }
  return "unknown";
}

const char* to_string(role r) noexcept {
  switch (r) {
  case role::client: return "client";
  case role::server: return "server";
  }
  return "unknown";
}

} // namespace tether
