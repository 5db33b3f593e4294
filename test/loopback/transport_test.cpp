// detail::transport's write size (lib/stream/transport.hpp): over TCP a whole
// number of segments, measured again as the connection's segment size grows;
// 128 KiB over a Unix socket.
#include <doctest/doctest.h>

#include <asio/ip/tcp.hpp>
#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "asio_compat.hpp"
#include "stream/transport.hpp"
#include "test_server.hpp"

using namespace std::chrono_literals;
using asio::awaitable;
using tether::detail::transport;
using tether::detail::use_nothrow;

namespace {

std::size_t segment_size(int fd) {
  int mss = 0;
  socklen_t len = sizeof mss;
  REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len) == 0);
  REQUIRE(mss > 0);
  return static_cast<std::size_t>(mss);
}

// What a user's large frames are cut into: whole segments, near 192 KiB.
void check_whole_segments(transport& t) {
  const auto mss = segment_size(t.native_handle());
  const auto chunk = t.send_chunk();
  CAPTURE(mss);
  CAPTURE(chunk);
  CHECK(chunk % mss == 0);
  CHECK(chunk <= 192 * 1024);
  CHECK(chunk + mss > 192 * 1024);
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("transport: over TCP, writes are whole segments, measured again as the segment size grows") {
  asio::io_context io;
  tether::test::run(io, [&]() -> awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::acceptor acceptor(ex, {asio::ip::make_address("127.0.0.1"), 0});
    transport t(ex);
    auto rec = co_await t.resolve("127.0.0.1", acceptor.local_endpoint().port(), 5s);
    REQUIRE_FALSE(rec);
    auto cec = co_await t.connect(5s);
    REQUIRE_FALSE(cec);
    auto [aec, peer] = co_await acceptor.async_accept(use_nothrow);
    REQUIRE_FALSE(aec);
    check_whole_segments(t);
    const auto at_connect = segment_size(t.native_handle());

    // A megabyte each way opens the windows: Linux starts the segment size
    // at half the peer's first window, and it grows with the window.
    const std::string data(1 << 20, 'x');
    std::vector<char> in(data.size());
    std::size_t sent = 0;
    std::size_t received = 0;
    while (received < data.size()) {
      if (sent < data.size())
        sent += t.try_write(asio::buffer(data.data() + sent, data.size() - sent));
      auto [rec2, n] = co_await peer.async_read_some(asio::buffer(in.data() + received, in.size() - received),
                                                     use_nothrow);
      REQUIRE_FALSE(rec2);
      received += n;
    }
    t.measure_segments();
    check_whole_segments(t);
    MESSAGE("segment size at connect " << at_connect << ", after a megabyte " << segment_size(t.native_handle()));
    t.close();
  });
}

TEST_CASE("transport: over a Unix socket, writes of 128 KiB") {
  asio::io_context io;
  const std::string path = "/tmp/tether-transport-test-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  tether::test::run(io, [&]() -> awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    asio::local::stream_protocol::acceptor acceptor(ex, asio::local::stream_protocol::endpoint(path));
    transport t(ex);
    auto cec = co_await t.connect_unix(path, 5s);
    REQUIRE_FALSE(cec);
    CHECK(t.send_chunk() == 128 * 1024);
    t.measure_segments(); // no segments on a Unix socket
    CHECK(t.send_chunk() == 128 * 1024);
    t.close();
  });
  ::unlink(path.c_str());
}

} // TEST_SUITE
