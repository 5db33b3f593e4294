#pragma once
// What tether::handler may do with a stream beyond its public API. Private to lib/.
#include <tether/stream.hpp>

#include <string_view>
#include <system_error>

namespace tether::detail {

struct stream_access {
  /// stream::send of a text message that tether's own codec produced (UTF-8 by
  /// construction: nlohmann's dump with replacement), so it is not validated a
  /// second time. Text from a user's codec goes through stream::send.
  static asio::awaitable<void> send_checked_text(stream& s, std::string_view data, std::error_code& ec);
};

} // namespace tether::detail
