#pragma once
/// @file
/// fmt support: `fmt::print("{}\n", handler.status())` prints the status JSON;
/// every public enum prints its to_string() name (`fmt::format("{}", error::closed)`
/// gives "closed"). A separate header so that only users of fmt pay for including it;
/// <tether/tether.hpp> does not include it.

#include <tether/error.hpp>
#include <tether/handler.hpp>

#include <fmt/format.h>

namespace tether::detail {
/// Formats an enum as its name; width, fill and alignment work as for strings.
struct enum_name_formatter : fmt::formatter<fmt::string_view> {
  template <class Enum, class FormatContext>
  auto format(Enum e, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(tether::to_string(e)), ctx);
  }
};
} // namespace tether::detail

template <>
struct fmt::formatter<tether::status> : fmt::formatter<fmt::string_view> {
  template <class FormatContext>
  auto format(const tether::status& s, FormatContext& ctx) const {
    const auto text = s.to_json().dump();
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(text), ctx);
  }
};

template <> struct fmt::formatter<tether::connection_state> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::offline_policy> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::route_kind> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::binary_format> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::backoff> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::message_kind> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::log_level> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::error> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::condition> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::opcode> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::role> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::compression> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::event::kind> : tether::detail::enum_name_formatter {};
template <> struct fmt::formatter<tether::retry_decision::kind> : tether::detail::enum_name_formatter {};
