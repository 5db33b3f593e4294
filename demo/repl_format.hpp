#pragma once
// The text of tether-repl's lines: messages, captures, state changes, the retry
// plan and connect failures (docs/repl.md, "Output", is the contract). Pure
// functions; everything shown that came from outside is made printable here.
#include <tether/codec.hpp>
#include <tether/handler.hpp>
#include <tether/router.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <system_error>

namespace repl {

/// A path as printed: as is, or as a JSON string when empty or containing a blank.
std::string path_text(std::string_view path);

/// Wildcard captures as "[a, b]"; an empty capture shows as "".
std::string captures_text(const tether::captures& caps);

/// True if the pattern has a '*' or '#' segment (its matches show captures).
bool has_wildcards(std::string_view pattern);

/// " fields={...}" for id, reply_to, error and extra fields; empty when none.
std::string fields_text(const tether::envelope& e);

/// "invalid pattern 'P': WHY", the router's reason when it gives one
/// ("'#' must be the last segment"), else the error's message.
std::string pattern_error_text(std::string_view pattern, std::error_code ec);

/// A round-trip time in milliseconds with three decimals: "0.123".
std::string rtt_text(std::chrono::nanoseconds rtt);

/// "binary N bytes: 00 01 ..." (the first 16 bytes in hex).
std::string binary_text(std::string_view bytes);
/// Every byte as two lowercase hex digits, nothing between ("00ff10"): what
/// raw mode's --binary prints and reads back.
std::string hex_text(std::string_view bytes);

/// The state line for `c` ("* connected to URL", ...), URL without userinfo;
/// empty when the state prints nothing.
std::string state_text(const tether::state_change& c, std::string_view url, int max_retries);

/// What the retry policy will still do after failure number `attempt`:
/// "* up to N more attempts, waiting at most S s in all; --max-retries 0 fails at once".
std::string retry_plan_text(const tether::handler_options& h, unsigned attempt);

/// True if `details` name `url` (without userinfo, as given or as tether writes it).
bool names_url(std::string_view details, std::string_view url);

/// "cannot connect: DETAILS" when DETAILS name the URL (tether's messages do),
/// else "cannot connect to URL: DETAILS"; never the URL's userinfo.
std::string cannot_connect_text(std::string_view url, std::string_view details);

} // namespace repl
