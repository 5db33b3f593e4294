#pragma once
// Runs one documented example: against the URL given as argv[1], or, with no
// argument, against the embedded demo server (as the tests run them).
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "demo_server.hpp"

namespace tether::examples {

inline int run_example(int argc, char** argv,
                       std::function<asio::awaitable<void>(asio::io_context&, std::string)> body) {
  asio::io_context io;
  std::unique_ptr<demo::demo_server> server;
  std::string url = argc > 1 ? argv[1] : "";
  if (url.empty()) {
    server = std::make_unique<demo::demo_server>(io.get_executor());
    url = server->url() + "/";
  }
  int status = 0;
  asio::co_spawn(io, body(io, url), [&](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::fprintf(stderr, "example failed: %s\n", x.what());
      }
      status = 1;
    }
    if (server)
      server->stop();
  });
  io.run();
  return status;
}

} // namespace tether::examples
