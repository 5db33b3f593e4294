// The names of the stream's public enums, for logs and fmt.
#include <tether/stream.hpp>

namespace tether {

const char* to_string(log_level l) noexcept {
  switch (l) {
  case log_level::debug: return "debug";
  case log_level::info: return "info";
  case log_level::warning: return "warning";
  }
  return "unknown";
}

const char* to_string(message_kind k) noexcept {
  switch (k) {
  case message_kind::text: return "text";
  case message_kind::binary: return "binary";
  case message_kind::close: return "close";
  }
  return "unknown";
}

} // namespace tether
