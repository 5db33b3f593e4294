#pragma once
// Percent-decoding (RFC 3986 §2.1), shared by the URL and proxy-URL parsers.
#include <string>
#include <string_view>

namespace tether::detail {

/// The value of a hex digit, or -1.
int hex_digit(char c) noexcept;

/// Decodes %XX escapes into `out`; false on a truncated or non-hex escape.
bool percent_decode(std::string_view in, std::string& out);

} // namespace tether::detail
