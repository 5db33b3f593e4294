// Error codes: stable values, one condition per code written out here as a
// table (so adding a code cannot silently move another), close code names and
// the close-argument check shared by the protocol, stream and handler.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/protocol.hpp>
#include <tether/router.hpp>

#include <string>
#include <vector>

using namespace tether;

TEST_CASE("every error code has its documented value and condition") {
  struct row {
    error e;
    int value;
    condition c;
  };
  using c = condition;
  const std::vector<row> table{
      {error::reserved_bits, 1, c::protocol_violation},          {error::unknown_opcode, 2, c::protocol_violation},
      {error::fragmented_control, 3, c::protocol_violation},     {error::control_too_big, 4, c::protocol_violation},
      {error::unexpected_continuation, 5, c::protocol_violation}, {error::expected_continuation, 6, c::protocol_violation},
      {error::non_minimal_length, 7, c::protocol_violation},     {error::length_msb_set, 8, c::protocol_violation},
      {error::masked_frame_from_server, 9, c::protocol_violation}, {error::unmasked_frame_from_client, 10, c::protocol_violation},
      {error::bad_close_payload, 11, c::protocol_violation},     {error::bad_close_code, 12, c::protocol_violation},
      {error::invalid_utf8, 13, c::protocol_violation},          {error::invalid_close_reason, 14, c::protocol_violation},
      {error::message_too_big, 15, c::limit_exceeded},           {error::frame_too_big, 16, c::limit_exceeded},
      {error::extension_failed, 17, c::protocol_violation},
      {error::handshake_malformed, 100, c::handshake_failed},    {error::handshake_too_large, 101, c::limit_exceeded},
      {error::handshake_rejected, 102, c::handshake_failed},     {error::handshake_bad_upgrade, 103, c::handshake_failed},
      {error::handshake_bad_connection, 104, c::handshake_failed}, {error::handshake_bad_accept, 105, c::handshake_failed},
      {error::handshake_bad_subprotocol, 106, c::handshake_failed}, {error::handshake_bad_extension, 107, c::handshake_failed},
      {error::handshake_bad_version, 108, c::handshake_failed},  {error::handshake_bad_key, 109, c::handshake_failed},
      {error::handshake_bad_method, 110, c::handshake_failed},
      {error::url_bad_scheme, 200, c::invalid_url},              {error::url_malformed, 201, c::invalid_url},
      {error::url_bad_port, 202, c::invalid_url},                {error::url_userinfo, 203, c::invalid_url},
      {error::invalid_close_code, 300, c::invalid_argument},     {error::control_payload_too_big, 301, c::invalid_argument},
      {error::message_in_progress, 302, c::invalid_argument},    {error::no_message_in_progress, 303, c::invalid_argument},
      {error::closed, 304, c::invalid_argument},
      {error::resolve_timeout, 400, c::timeout},                 {error::connect_timeout, 401, c::timeout},
      {error::tls_timeout, 402, c::timeout},                     {error::handshake_timeout, 403, c::timeout},
      {error::close_timeout, 404, c::timeout},                   {error::pong_timeout, 405, c::timeout},
      {error::write_timeout, 406, c::timeout},                   {error::send_timeout, 407, c::timeout},
      {error::tls_failed, 408, c::transport},                    {error::partial_write_cancelled, 409, c::transport},
      {error::connection_lost, 410, c::transport},               {error::queue_full, 411, c::limit_exceeded},
      {error::route_conflict, 500, c::handler},                  {error::invalid_pattern, 501, c::handler},
      {error::invalid_envelope, 502, c::handler},                {error::retries_exhausted, 503, c::handler},
      {error::handler_closed, 504, c::handler},                  {error::reconnect_stopped, 505, c::handler},
      {error::dead_connection, 506, c::timeout},
      // Appended codes follow the last one; their condition is their own.
      {error::callback_failed, 507, c::handler},                 {error::server_closed, 508, c::transport},
      {error::handshake_no_response, 509, c::handshake_failed},
      {error::compression_unavailable, 510, c::invalid_argument},
      {error::proxy_bad_url, 511, c::invalid_url},
      {error::proxy_unreachable, 512, c::transport},
      {error::proxy_timeout, 513, c::timeout},
      {error::proxy_malformed, 514, c::handshake_failed},
      {error::proxy_auth_required, 515, c::handshake_failed},
      {error::proxy_denied, 516, c::handshake_failed},
      {error::proxy_failed, 517, c::transport},
      {error::socks_auth_failed, 518, c::handshake_failed},
      {error::socks_general_failure, 519, c::transport},
      {error::socks_not_allowed, 520, c::handshake_failed},
      {error::socks_network_unreachable, 521, c::transport},
      {error::socks_host_unreachable, 522, c::transport},
      {error::socks_connection_refused, 523, c::transport},
      {error::socks_ttl_expired, 524, c::transport},
      {error::socks_command_not_supported, 525, c::handshake_failed},
      {error::socks_address_type_not_supported, 526, c::handshake_failed},
      {error::request_timeout, 527, c::timeout},
      {error::outcome_unknown, 528, c::transport},
      {error::request_failed, 529, c::handler},
      {error::subscription_refused, 530, c::handler},
      {error::rate_limited, 531, c::handler},
      {error::crypto_failed, 532, c::transport},
  };
  for (const auto& r : table) {
    CAPTURE(r.value);
    CHECK(static_cast<int>(r.e) == r.value);
    const std::error_code ec = r.e;
    CHECK(ec.default_error_condition() == make_error_condition(r.c));
    CHECK(ec == r.c);
    CHECK(ec.message() != "unknown tether error");
  }
}

TEST_CASE("close codes are named as RFC 6455 §7.4.1 and the IANA registry name them") {
  CHECK(std::string(close_code_name(1000)) == "normal closure");
  CHECK(std::string(close_code_name(1001)) == "going away");
  CHECK(std::string(close_code_name(1002)) == "protocol error");
  CHECK(std::string(close_code_name(1005)) == "no status code");
  CHECK(std::string(close_code_name(1006)) == "abnormal closure");
  CHECK(std::string(close_code_name(1011)) == "internal error");
  CHECK(std::string(close_code_name(1012)) == "service restart");
  CHECK(std::string(close_code_name(1013)) == "try again later");
  CHECK(std::string(close_code_name(1014)) == "bad gateway");
  CHECK(std::string(close_code_name(3000)) == "registered");
  CHECK(std::string(close_code_name(4001)) == "private");
  CHECK(std::string(close_code_name(2000)) == "unknown");
}

TEST_CASE("check_close: the arguments of a close we are asked to send") {
  CHECK_FALSE(check_close(0, ""));
  CHECK_FALSE(check_close(1000, "bye"));
  CHECK_FALSE(check_close(4999, std::string(123, 'x')));
  for (unsigned code : {1u, 999u, 1004u, 1005u, 1006u, 1015u, 1016u, 2999u, 5000u, 65535u, 65536u})
    CHECK(check_close(code, "") == error::invalid_close_code);
  CHECK(check_close(0, "a reason needs a code") == error::invalid_close_code);
  CHECK(check_close(1000, std::string(124, 'x')) == error::control_payload_too_big);
  CHECK(check_close(1000, "\xff") == error::invalid_close_reason);
  // The protocol refuses the same arguments with the same codes.
  protocol p;
  CHECK(p.send_close(1005) == error::invalid_close_code);
  CHECK(p.send_close(1000, "\xc3") == error::invalid_close_reason);
}

TEST_CASE("pattern_problem says why a route pattern is refused") {
  CHECK(pattern_problem("a.*.b") == nullptr);
  CHECK(std::string(pattern_problem("a.#.b")) == "'#' must be the last segment");
  CHECK(std::string(pattern_problem("a..b")) == "a segment is empty (leading, trailing or doubled '.')");
  CHECK(std::string(pattern_problem("a*")) == "'*' and '#' must be whole segments");
  CHECK(std::string(pattern_problem("")) == "the pattern is empty");
}
