// The umbrella header and the names of the public enums: to_string() and the
// fmt formatters in <tether/fmt.hpp> (logs and scripts print these names).
#include <tether/tether.hpp>

// The umbrella header is the same with or without fmt installed.
#ifdef FMT_VERSION
#error "<tether/tether.hpp> must not include fmt"
#endif

#include <tether/fmt.hpp>

#include <asio/io_context.hpp>
#include <doctest/doctest.h>

#include <set>
#include <string>

using namespace tether;

TEST_CASE("the umbrella header declares the whole public API") {
  // One name from each public header, used the way a program would.
  asio::io_context io;
  handler h(io.get_executor(), handler_options{.backoff = backoff::linear, .backoff_base = std::chrono::milliseconds(10)});
  stream s(io.get_executor());
  path_router r;
  json_codec c;
  url u;
  CHECK(!parse_url("ws://127.0.0.1:9/", u));
  CHECK(h.status().state == "idle");
  CHECK(make_error_code(error::closed).category().name() == std::string("tether"));
  CHECK(is_control(opcode::ping));
  (void)s;
  (void)r;
  (void)c;
}

TEST_CASE("every error code has a name of its own") {
  std::set<std::string> names;
  int listed = 0;
  for (int v = 0; v < 600; ++v) {
    const auto e = static_cast<error>(v);
    const std::string name = to_string(e);
    if (name == "unknown") {
      // A value outside the enum: its message says so too.
      CHECK(make_error_code(e).message().find("unknown") != std::string::npos);
      continue;
    }
    ++listed;
    CHECK_MESSAGE(names.insert(name).second, "duplicate name " << name);
  }
  CHECK(listed == 82); // every enumerator of tether::error (error_test.cpp lists them)
  CHECK(std::string(to_string(error::server_closed)) == "server_closed");
  CHECK(std::string(to_string(error::reserved_bits)) == "reserved_bits");
  CHECK(std::string(to_string(error::handshake_no_response)) == "handshake_no_response");
}

TEST_CASE("conditions, opcodes, roles and the handler's and stream's enums have names") {
  CHECK(std::string(to_string(condition::protocol_violation)) == "protocol_violation");
  CHECK(std::string(to_string(condition::handler)) == "handler");
  CHECK(std::string(to_string(static_cast<condition>(0))) == "unknown");
  CHECK(std::string(to_string(opcode::continuation)) == "continuation");
  CHECK(std::string(to_string(opcode::pong)) == "pong");
  CHECK(std::string(to_string(static_cast<opcode>(0x3))) == "reserved");
  CHECK(std::string(to_string(role::server)) == "server");
  CHECK(std::string(to_string(backoff::exponential)) == "exponential");
  CHECK(std::string(to_string(offline_policy::drop_oldest)) == "drop_oldest");
  CHECK(std::string(to_string(message_kind::binary)) == "binary");
  CHECK(std::string(to_string(route_kind::any)) == "any");
  CHECK(std::string(to_string(binary_format::path_prefixed)) == "path_prefixed");
  CHECK(std::string(to_string(error::socks_address_type_not_supported)) == "socks_address_type_not_supported");
  CHECK(std::string(to_string(log_level::warning)) == "warning");
  CHECK(std::string(to_string(connection_state::reconnecting)) == "reconnecting");
}

TEST_CASE("fmt prints every public enum by name, with string format specs") {
  CHECK(fmt::format("{}", error::queue_full) == "queue_full");
  CHECK(fmt::format("{}", condition::timeout) == "timeout");
  CHECK(fmt::format("{}", opcode::text) == "text");
  CHECK(fmt::format("{}", role::client) == "client");
  CHECK(fmt::format("{}", compression::automatic) == "automatic");
  CHECK(fmt::format("{}", event::kind::message_end) == "message_end");
  CHECK(fmt::format("{}", retry_decision::retry_after) == "retry_after");
  CHECK(fmt::format("{}", backoff::linear) == "linear");
  CHECK(fmt::format("{}", offline_policy::fail) == "fail");
  CHECK(fmt::format("{}", message_kind::close) == "close");
  CHECK(fmt::format("{}", route_kind::binary) == "binary");
  CHECK(fmt::format("{}", binary_format::raw) == "raw");
  CHECK(fmt::format("{}", error::proxy_unreachable) == "proxy_unreachable");
  CHECK(fmt::format("{}", log_level::info) == "info");
  CHECK(fmt::format("{}", connection_state::open) == "open");
  CHECK(fmt::format("[{:>8}]", role::server) == "[  server]");
  CHECK(fmt::format("[{:<6}]", opcode::ping) == "[ping  ]");
}
