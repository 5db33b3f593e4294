#pragma once
/// @file
/// The interface a negotiated WebSocket extension implements (RFC 6455 §9).
/// The protocol core takes at most one; it may claim RSV1 on the first frame
/// of a message and transforms payloads chunk by chunk in both directions.

#include <tether/export.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <tether/frame.hpp>

namespace tether {

/// One element of a Sec-WebSocket-Extensions header: a name and its parameters
/// (RFC 6455 §9.1). A parameter without `=value` has no value.
struct extension_offer {
  std::string name;
  std::vector<std::pair<std::string, std::optional<std::string>>> params;

  friend bool operator==(const extension_offer&, const extension_offer&) = default;
};

/// A payload transform negotiated in the opening handshake.
/// Not thread safe; owned by one tether::protocol.
class TETHER_API extension {
public:
  virtual ~extension() = default;

  /// The offers the client sends in Sec-WebSocket-Extensions, most preferred
  /// first (RFC 7692 §5: a fallback offer may follow); all have the same name.
  virtual std::vector<extension_offer> offers() const = 0;

  /// Called with the server's answer for this extension's name; may reject its
  /// parameters (the handshake then fails with handshake_bad_extension).
  virtual std::error_code accept(const extension_offer& response) = 0;

  /// Called before the first frame of an outgoing data message, with that
  /// frame's payload size and whether it is also the last; returning true sets
  /// RSV1 on that frame and routes the message's payload through encode().
  virtual bool begin_encode(opcode type, std::size_t first_frame_size, bool fin) = 0;

  /// Appends the transformed form of `in` to `out`. `fin` marks the message's last chunk.
  virtual std::error_code encode(std::string_view in, bool fin, std::string& out) = 0;

  /// Appends the inverse transform of `in` (a message that arrived with RSV1) to `out`.
  /// Once `out` holds more than `limit` bytes it stops (so a small input cannot
  /// inflate without bound): the protocol delivers the message up to the limit
  /// and fails with 1009 (returning error::message_too_big does the same). On
  /// another error, what `out` holds is delivered before the failure (1007).
  virtual std::error_code decode(std::string_view in, bool fin, std::string& out, std::size_t limit) = 0;
};

} // namespace tether
