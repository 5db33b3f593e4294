#pragma once
/// @file
/// fmt support: `fmt::print("{}\n", handler.status())` prints the status JSON.
/// A separate header so that only users of fmt pay for including it.

#include <tether/handler.hpp>

#include <fmt/format.h>

template <>
struct fmt::formatter<tether::status> : fmt::formatter<fmt::string_view> {
  template <class FormatContext>
  auto format(const tether::status& s, FormatContext& ctx) const {
    const auto text = s.to_json().dump();
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(text), ctx);
  }
};

template <>
struct fmt::formatter<tether::connection_state> : fmt::formatter<fmt::string_view> {
  template <class FormatContext>
  auto format(tether::connection_state s, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(tether::to_string(s), ctx);
  }
};
