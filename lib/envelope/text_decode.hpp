#pragma once
// Decoding a text frame into envelopes (field_codec and json_codec): a fast
// path for the common frame and the full parser behind it. Declared here so the
// codec fuzzer and the unit tests can hold the two against each other.
#include <tether/codec.hpp>

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tether::detail {

/// The fixed field names of a text envelope.
inline constexpr std::string_view id_field = "id";
inline constexpr std::string_view reply_to_field = "reply_to";
inline constexpr std::string_view error_field = "error";

/// The two configurable field names of a text envelope.
struct envelope_fields {
  std::string_view path;
  std::string_view data;

  /// A field the envelope itself carries (not one of `extra`).
  bool reserved(std::string_view key) const noexcept {
    return key == path || key == data || key == id_field || key == reply_to_field || key == error_field;
  }
};

/// The fast path. Decodes `frame` into `e` and returns true when it is one JSON
/// object whose keys are distinct strings without escapes, whose path (and
/// error) is such a string too, and whose every value is valid: the envelope
/// the full parser would make, without building the object first. Returns
/// false for anything else (a batch, an escape in a key, a duplicate key,
/// a value that fails a rule, input that is not JSON), leaving `e` in an
/// unspecified state: the caller then runs decode_text_full, which also says
/// why a bad frame is bad.
bool decode_text_flat(std::string_view frame, envelope_fields names, envelope& e);

/// The full parser: nlohmann's DOM of the whole frame, checked and moved into
/// envelopes (a batch array included). Errors as codec::decode says.
std::error_code decode_text_full(std::string_view frame, envelope_fields names, std::vector<envelope>& out,
                                 std::string& reason);

} // namespace tether::detail
