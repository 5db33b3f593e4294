#pragma once
// What tether::handler may do with a stream beyond its public API. Private to lib/.
#include <tether/stream.hpp>

#include <cstddef>
#include <functional>
#include <string_view>
#include <system_error>

namespace tether::detail {

struct stream_access {
  /// stream::send of a text message that tether's own codec produced (UTF-8 by
  /// construction: nlohmann's dump with replacement), so it is not validated a
  /// second time. Text from a user's codec goes through stream::send.
  static asio::awaitable<void> send_checked_text(stream& s, std::string_view data, std::error_code& ec);

  /// Queues a message for the stream's writer without waiting, so that all a
  /// caller hands over before the writer wakes goes out in one write. `done`
  /// runs on the stream's executor once the message is on the socket, or with
  /// the connection's error if it never will be; it runs exactly once, never
  /// from inside start_send. The bytes must stay alive and unchanged until
  /// then. A refused message (invalid_utf8 unless `utf8_checked`, or the
  /// connection has ended) returns its error and `done` never runs.
  static std::error_code start_send(stream& s, std::string_view data, message_kind kind, bool utf8_checked,
                                    std::function<void(std::error_code)> done);

  /// True when a send() now would be queued at once, with nothing ahead of it:
  /// the connection is open and the stream's queue is empty.
  static bool idle_and_open(const stream& s) noexcept;

  /// Bytes queued for the writer and not yet framed (the backpressure measure).
  static std::size_t queued_bytes(const stream& s) noexcept;

  /// Bytes of received messages held for readers (bounded by max_read_queue_bytes).
  static std::size_t buffered_read_bytes(const stream& s) noexcept;
};

} // namespace tether::detail
