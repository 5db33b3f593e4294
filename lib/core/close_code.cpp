// RFC 6455 §7.4 close codes: which may be sent, their names, and the check of
// a close we are asked to send.
#include <tether/protocol.hpp>

#include <tether/error.hpp>

#include "utf8.hpp"

namespace tether {

bool is_valid_close_code(std::uint16_t code) noexcept {
  // RFC 6455 §7.4.1/§7.4.2 and the IANA registry: 1004-1006 and 1015 are
  // reserved or local-only; 1016-2999 are unassigned; 3000-4999 are for apps.
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

std::error_code check_close(unsigned code, std::string_view reason) noexcept {
  if (code == 0)
    return reason.empty() ? std::error_code() : make_error_code(error::invalid_close_code); // §5.5.1: a reason needs a code
  if (code > 0xFFFF || !is_valid_close_code(static_cast<std::uint16_t>(code)))
    return error::invalid_close_code;
  if (reason.size() > 123)
    return error::control_payload_too_big;
  if (!detail::is_valid_utf8(reason))
    return error::invalid_close_reason;
  return {};
}

const char* close_code_name(std::uint16_t code) noexcept {
  switch (code) {
  case close_code::normal: return "normal closure";
  case close_code::going_away: return "going away";
  case close_code::protocol_error: return "protocol error";
  case close_code::unsupported_data: return "unsupported data";
  case close_code::no_status: return "no status code";
  case close_code::abnormal: return "abnormal closure";
  case close_code::invalid_payload: return "invalid payload data";
  case close_code::policy_violation: return "policy violation";
  case close_code::message_too_big: return "message too big";
  case close_code::mandatory_extension: return "mandatory extension";
  case close_code::internal_error: return "internal error";
  case close_code::service_restart: return "service restart";
  case close_code::try_again_later: return "try again later";
  case 1014: return "bad gateway";
  case close_code::tls_handshake: return "TLS handshake failure";
  default: break;
  }
  if (code >= 3000 && code <= 3999)
    return "registered";
  if (code >= 4000 && code <= 4999)
    return "private";
  return "unknown";
}

} // namespace tether
