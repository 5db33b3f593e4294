// A downstream program: tether found through dependency('tether') (a Meson
// subproject), `pkg-config tether` or CMake's find_package(tether) after
// `meson install` (CMakeLists.txt beside this file), with Asio
// used header-only as any program including <asio/...> gets it.
//
//   consumer URL      connects with tether::handler, adds a route for echo.*,
//                     sends one envelope to an echo server, prints
//                     "routed <path> <data>" when it comes back through the
//                     route, closes with 1000 "done" and prints "closed".
//
// Exit status: 0 on success, 1 on an error (printed), 2 on bad usage,
// 3 when the program's own Asio error codes stopped comparing equal after
// linking libtether (see check_asio_categories).
#include <tether/handler.hpp>

#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <system_error>

namespace {

using namespace std::chrono_literals;

// An error made by this program's own (inlined) Asio code must compare equal to
// the asio::error enumerator. It did not in some programs when libtether carried
// a separately compiled Asio, whose error categories were objects distinct from
// the ones a header-only program uses (lib/meson.build explains the fix). Whether
// this check sees such a mismatch depends on what the compiler inlines (build
// with optimisation); consumer_test.py also checks libtether.a's symbols, exactly.
bool check_asio_categories() {
  asio::error_code ec;
  asio::ip::make_address("not-an-address", ec);
  if (ec == asio::error::invalid_argument)
    return true;
  std::cerr << "asio error categories differ: make_address gave " << ec.category().name() << ':' << ec.value()
            << " (" << ec.message() << "), not asio::error::invalid_argument\n";
  return false;
}

// The coroutine takes what it needs as parameters and binds every co_await
// result to a name (docs/design.md: g++ 12 coroutine rules).
asio::awaitable<void> run(tether::handler& ws, std::string url, int& status) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer arrived(ex);
  arrived.expires_after(10s);
  bool routed = false;

  auto on_echo = [&routed, &arrived](const tether::message& m, tether::connection_context&) {
    std::cout << "routed " << m.path << ' ' << m.data.dump() << std::endl;
    routed = true;
    arrived.cancel();
  };
  tether::route echo_route{"echo.*", on_echo};
  ws.add_route(echo_route);

  co_await ws.connect(url);

  tether::json data = {{"n", 1}, {"text", "hello from a consumer"}};
  co_await ws.send("echo.hello", data);

  // Cancelled by the route when the echo arrives; expires after 10 s otherwise.
  asio::error_code wait_ec;
  co_await arrived.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));

  co_await ws.close(1000, "done");
  if (!routed) {
    std::cerr << "error: no echo routed within 10 s\n";
    status = 1;
    co_return;
  }
  std::cout << "closed" << std::endl;
  status = 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer ws://HOST:PORT/\n";
    return 2;
  }
  if (!check_asio_categories())
    return 3;

  asio::io_context io;
  tether::handler_options options;
  options.reconnect = false; // a test program: fail at once rather than retry
  tether::handler ws{io.get_executor(), options};

  int status = 1;
  // Started on the handler's strand, where route handlers run too.
  asio::co_spawn(ws.get_executor(), run(ws, argv[1], status), [&status](std::exception_ptr e) {
    if (!e)
      return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "error: " << ex.what() << '\n';
    }
    status = 1;
  });
  io.run();
  return status;
}
