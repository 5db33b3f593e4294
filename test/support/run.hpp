#pragma once
// Runs one test coroutine on a fresh io_context, bounded in time: a test that
// hangs fails with a clear message instead of stalling the suite.
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <stdexcept>

namespace tether::test {

template <class MakeCoro>
void run_async(MakeCoro&& make, std::chrono::seconds limit = std::chrono::seconds(60)) {
  asio::io_context io;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(io, make(io), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  io.run_for(limit);
  if (!done)
    throw std::runtime_error("test coroutine did not finish in time");
  if (error)
    std::rethrow_exception(error);
}

} // namespace tether::test
