// The example in README.md and docs/getting-started.md, compiled and run by the
// tests against the embedded demo server (so the docs cannot rot).
#include <tether/fmt.hpp>
#include <tether/handler.hpp>

#include <fmt/core.h>

#include "run_example.hpp"

using namespace std::chrono_literals;
using tether::json;

asio::awaitable<void> run(asio::io_context& io, std::string url) {
  tether::handler ws{io.get_executor(), {.reconnect = true, .max_retries = 5,
                                         .backoff = tether::backoff::exponential,
                                         .ping_interval = 30s}};
  ws.add_route({"chat.message", [](const json& msg, tether::connection_context& ctx) {
                  fmt::print("chat on connection {}: {}\n", ctx.connection_id, msg.dump());
                }});
  ws.add_route({"user.status", [](const tether::message& m, tether::connection_context&) {
                  fmt::print("{} is {}\n", m.path, m.data.dump());
                }});
  co_await ws.connect(url);
  json hello = {{"userId", "123"}, {"text", "Hello, world!"}}; // g++ 12: bind braced lists first
  co_await ws.send("chat.message", hello);
  fmt::print("{}\n", ws.status()); // connected, retries, messages_sent, messages_received, last_ping
  co_await ws.close(1000, "Normal closure");
}

int main(int argc, char** argv) { return tether::examples::run_example(argc, argv, run); }
