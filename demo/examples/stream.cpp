// The example in docs/stream.md, compiled and run by the tests against the
// embedded demo server, which echoes echo.* envelopes.
#include <tether/stream.hpp>

#include <cstdio>

#include "run_example.hpp"

asio::awaitable<void> chat(asio::io_context& io, std::string url) {
  tether::stream ws(io.get_executor());
  co_await ws.connect(url);                                   // ws:// or wss://
  co_await ws.send(R"({"path": "echo.hello", "data": 42})");  // text by default
  std::string buf;
  auto r = co_await ws.read(buf);                             // one whole message
  if (r.kind == tether::message_kind::close)
    co_return;                                                // a close is a value
  std::printf("%s\n", buf.c_str());
  co_await ws.close(1000, "done");
}

int main(int argc, char** argv) { return tether::examples::run_example(argc, argv, chat); }
