#pragma once
/// @file
/// Envelopes (path + payload) and the codecs that turn them into WebSocket
/// frames and back. Includes <nlohmann/json.hpp>: only the handler layer and
/// users of envelopes need this header.

#include <tether/export.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tether {

using json = nlohmann::json;

/// One application message: what the router dispatches and the handler sends.
struct TETHER_API envelope {
  std::string path;                  ///< Routing key, dot-separated ("orders.42.filled").
  json data;                         ///< JSON payload (null when binary).
  std::string bytes;                 ///< Payload of a binary frame (binary == true).
  bool binary = false;               ///< Frame type on the wire.
  std::optional<json> id;            ///< Request id (string or number), for acknowledged requests.
  std::optional<json> reply_to;      ///< The id this message answers.
  std::optional<std::string> error;  ///< Error text in a reply.
  json extra = json::object();       ///< Unknown top-level fields, kept and re-sent.

  /// Field-by-field equality (JSON values compared as nlohmann does).
  friend bool operator==(const envelope& a, const envelope& b) noexcept {
    return a.binary == b.binary && a.path == b.path && a.bytes == b.bytes && a.data == b.data && a.id == b.id &&
           a.reply_to == b.reply_to && a.error == b.error && a.extra == b.extra;
  }
};

/// How tether's codecs map binary frames to envelopes (docs/protocol.md).
enum class binary_format {
  /// A binary envelope: the path's length (2 bytes, big-endian), the path
  /// (UTF-8), then the payload's raw bytes. Binary messages route like text.
  path_prefixed,
  /// The frame is the payload, for servers that send unframed binary: it
  /// decodes with path "" (so the fallback sees it); encoding sends `bytes` alone.
  raw,
};

/// "path_prefixed" or "raw".
TETHER_API const char* to_string(binary_format f) noexcept;

/// Turns envelopes into frames and frames into envelopes.
///
/// Implementations return error codes and never throw (std::bad_alloc aside).
/// Thread-compatible: the const methods may run concurrently on one object.
class TETHER_API codec {
public:
  virtual ~codec() = default;

  /// Appends the frame payload for `e` to `out` and sets `binary_frame` to the
  /// frame type to send. On error `out` and `binary_frame` are unchanged.
  virtual std::error_code encode(const envelope& e, std::string& out, bool& binary_frame) const = 0;

  /// Decodes one frame's payload into zero or more envelopes appended to `out`.
  /// On error nothing is appended and `reason` is replaced with why (printable
  /// ASCII, at most max_reason_size bytes, for logs); on success it is untouched.
  virtual std::error_code decode(std::string_view frame, bool binary_frame, std::vector<envelope>& out,
                                 std::string& reason) const = 0;

  /// Upper bound on the length of a decode() reason.
  static constexpr std::size_t max_reason_size = 200;
};

/// The JSON envelope codec with configurable path and data field names
/// (json_codec is the same with "path" and "data").
///
/// Text frames: one JSON object
///   {"<path>": "...", "<data>": ..., "id"?: ..., "reply_to"?: ..., "error"?: "...", ...extra}
/// or a JSON array of such objects, which decodes to one envelope per element
/// (batching; an empty array is zero envelopes). The path and data field names
/// are configurable; "id", "reply_to" and "error" are fixed.
///
/// decode() fails with error::invalid_envelope when the frame is not JSON ("not
/// JSON at byte N: ..."), is nested deeper than max_depth, is neither an object
/// nor an array of objects, lacks the path field or has a non-string path, has
/// an id or reply_to that is not a string or number (null included), or an
/// error that is not a string (null included). A missing data field decodes as
/// null; every other field goes to `extra`. One bad element fails a whole batch.
///
/// encode() writes one object, fields in the order path, data, id, reply_to,
/// error, then `extra` (sorted by key); data is always written, null included.
/// Strings that are not UTF-8 are sent with U+FFFD in place of the bad bytes
/// (nlohmann's error_handler_t::replace). It fails with error::invalid_envelope
/// when `extra` is not an object or names a reserved field, when id or reply_to
/// is not a string or number, or when a value holds a JSON binary or discarded
/// value (not representable in JSON text).
///
/// Binary frames, binary_format::path_prefixed (the default): decode() yields
/// one envelope with binary == true, the path and bytes = the payload, data
/// null; it fails with invalid_envelope when the frame is shorter than 2 bytes,
/// the path length runs past the frame, or the path is not UTF-8. encode() of
/// a binary envelope writes the path's length, the path and `bytes`, and fails
/// with invalid_envelope for a path over 65535 bytes or not UTF-8.
/// binary_format::raw: decode() yields binary == true, path "" and bytes = the
/// frame, so the router's fallback sees it; encode() sends `bytes` alone.
/// Either way id, reply_to, error and extra are not carried by binary frames.
class TETHER_API field_codec final : public codec {
public:
  /// Deepest nesting of arrays/objects decode() accepts, counted over the whole
  /// frame (a batch array is one level): keeps later recursive JSON operations
  /// (copy, dump, comparison) off deep stacks.
  static constexpr std::size_t max_depth = 128;

  /// A codec whose envelopes are {path_field: ..., data_field: ...}; for example
  /// field_codec("type", "payload") or field_codec("stream", "data").
  /// Throws std::invalid_argument when a name is empty, the two are equal, or
  /// either is "id", "reply_to" or "error" (a configuration mistake, caught at startup).
  field_codec(std::string path_field, std::string data_field,
              binary_format binary = binary_format::path_prefixed);

  /// See codec::encode and the class rules.
  std::error_code encode(const envelope& e, std::string& out, bool& binary_frame) const override;
  /// See codec::decode and the class rules.
  std::error_code decode(std::string_view frame, bool binary_frame, std::vector<envelope>& out,
                         std::string& reason) const override;

  /// The name of the path field.
  const std::string& path_field() const noexcept { return path_field_; }
  /// The name of the data field.
  const std::string& data_field() const noexcept { return data_field_; }
  /// How binary frames are read and written.
  binary_format binary() const noexcept { return binary_; }

private:
  std::string path_field_;
  std::string data_field_;
  binary_format binary_;
};

/// The default codec: field_codec("path", "data"), i.e. text frames
/// {"path": "...", "data": ..., "id"?, "reply_to"?, "error"?, ...extra}.
/// See field_codec for the decoding rules, batching and binary frames.
class TETHER_API json_codec final : public codec {
public:
  /// binary_format::raw for servers that send unframed binary.
  explicit json_codec(binary_format binary = binary_format::path_prefixed) noexcept : binary_(binary) {}
  /// See codec::encode and field_codec's rules.
  std::error_code encode(const envelope& e, std::string& out, bool& binary_frame) const override;
  /// See codec::decode and field_codec's rules.
  std::error_code decode(std::string_view frame, bool binary_frame, std::vector<envelope>& out,
                         std::string& reason) const override;
  /// How binary frames are read and written.
  binary_format binary() const noexcept { return binary_; }

private:
  binary_format binary_;
};

} // namespace tether
