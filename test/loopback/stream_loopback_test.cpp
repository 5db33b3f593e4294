// tether::stream against our in-process test server: handshake failures,
// protocol violations, limits, timeouts, cancellation and concurrency.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handshake.hpp>
#include <tether/stream.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/write.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <stdlib.h>
#include <unistd.h>
#include <future>
#include <thread>

#include "peer.hpp"
#include "stream/stream_access.hpp"
#include "stream/tls_context.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using asio::awaitable;
using clock_type = std::chrono::steady_clock;

namespace {

// Yields to the executor once, so coroutines started earlier get to run.
awaitable<void> yield() {
  auto ex = co_await asio::this_coro::executor;
  co_await asio::post(ex, asio::use_awaitable);
}

std::chrono::milliseconds since(clock_type::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t);
}

// The error code carried by an operation's exception (empty if it is not a system_error).
std::error_code code_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& x) {
    return x.code();
  } catch (...) {
  }
  return {};
}

// Sends `text` and says whether a handler posted just before it ran before
// the send completed: whether the send gave the executor's others a turn.
// (The flag is shared: a send that completes at once leaves the handler to
// run after this frame is gone.)
awaitable<bool> others_ran_during_send(stream& ws, std::string_view text) {
  auto ran = std::make_shared<bool>(false);
  auto ex = co_await asio::this_coro::executor;
  asio::post(ex, [ran] { *ran = true; });
  co_await ws.send(text);
  co_return *ran;
}

// Timing rule of this project: exact lower bound, loose upper bound (3T + 1 s).
void check_elapsed(std::chrono::milliseconds elapsed, std::chrono::milliseconds t) {
  CHECK(elapsed >= t);
  CHECK(elapsed <= 3 * t + 1s);
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("refused connection names the phase") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    // A port that was just free: bind, remember, close.
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    const auto port = a.local_endpoint().port();
    a.close();
    stream ws(io.get_executor());
    std::error_code ec;
    co_await ws.connect("ws://127.0.0.1:" + std::to_string(port) + "/", ec);
    CHECK(ec == asio::error::connection_refused);
    CHECK(ws.last_error_message().find("connecting to ws://127.0.0.1:") != std::string::npos);
    CHECK_FALSE(ws.is_open());
  });
}

TEST_CASE("bad URLs are refused before any I/O") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    stream ws(io.get_executor());
    std::error_code ec;
    co_await ws.connect("http://127.0.0.1/", ec);
    CHECK(ec == error::url_bad_scheme);
    co_await ws.connect("ws://127.0.0.1:99999/", ec);
    CHECK(ec == error::url_bad_port);
  });
}

TEST_CASE("rejected handshakes surface status, headers and body") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    for (int status : {401, 404, 503}) {
      CAPTURE(status);
      http_headers h;
      if (status == 503)
        h.add("Retry-After", "7");
      server.set_reject(status, h, "go away " + std::to_string(status));
      stream ws(io.get_executor());
      bool threw = false;
      try {
        co_await ws.connect(server.url());
      } catch (const handshake_error& e) {
        threw = true;
        CHECK(e.code() == error::handshake_rejected);
        CHECK(e.status() == status);
        CHECK(e.response().body == "go away " + std::to_string(status));
        if (status == 503) {
          REQUIRE(e.response().headers.find("retry-after"));
          CHECK(*e.response().headers.find("retry-after") == "7");
        }
      }
      CHECK(threw);
      // The non-throwing form reports the same, with the response kept.
      std::error_code ec;
      co_await ws.connect(server.url(), ec);
      CHECK(ec == error::handshake_rejected);
      CHECK(ws.response().status == status);
    }
  });
}

TEST_CASE("a wrong Sec-WebSocket-Accept is refused") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_handshake_raw("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: dGhpcyBpcyBub3QgaXQ=\r\n\r\n");
    stream ws(io.get_executor());
    std::error_code ec;
    co_await ws.connect(server.url(), ec);
    CHECK(ec == error::handshake_bad_accept);
  });
}

TEST_CASE("a first frame in the same packet as the 101 is not lost") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_after_handshake(encode_frame(opcode::text, "early bird"));
    stream ws(io.get_executor());
    co_await ws.connect(server.url());
    std::string buf;
    auto r = co_await ws.read(buf);
    CHECK(r.kind == message_kind::text);
    CHECK(buf == "early bird");
    co_await ws.close();
  });
}

TEST_CASE("a 101 longer than one read, with frames in its last packet and data after the close") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
    const auto url = "ws://127.0.0.1:" + std::to_string(acc.local_endpoint().port()) + "/";
    // The server: a 101 with a 9,000-byte header (the client reads 4 KiB at a
    // time), then a message, a close and bytes after the close in the same write.
    auto serve = [](asio::ip::tcp::acceptor& acc) -> awaitable<void> {
      auto sock = co_await acc.async_accept(asio::use_awaitable);
      request_parser parser;
      std::array<char, 1024> in;
      for (bool done = false; !done;) {
        const auto n = co_await sock.async_read_some(asio::buffer(in), asio::use_awaitable);
        done = parser.feed({in.data(), n}).done;
      }
      auto req = parser.request();
      REQUIRE(!validate_request(req));
      auto answer = build_accept_response(req);
      answer.resize(answer.size() - 2); // before the blank line
      answer += "X-Padding: " + std::string(9000, 'p') + "\r\n\r\n";
      const char close_frame[] = {char(0x88), 2, char(0x03), char(0xE8)}; // close 1000
      answer += encode_frame(opcode::text, "early") + std::string(close_frame, 4);
      answer += std::string(3000, 'z'); // after the close: read until EOF, never parsed
      co_await asio::async_write(sock, asio::buffer(answer), asio::use_awaitable);
      (void)co_await sock.async_read_some(asio::buffer(in), asio::use_awaitable); // the client's close echo
      sock.shutdown(asio::ip::tcp::socket::shutdown_both); // the server ends TCP first (RFC 6455 §7.1.1)
    };
    asio::co_spawn(io, serve(acc), asio::detached);
    stream ws(io.get_executor());
    co_await ws.connect(url);
    CHECK(ws.response().headers.find("X-Padding")->size() == 9000);
    std::string buf;
    auto r = co_await ws.read(buf);
    CHECK(buf == "early");
    r = co_await ws.read(buf);
    CHECK(r.kind == message_kind::close);
    CHECK(r.close_code == 1000);
    co_await ws.close(); // ends cleanly at the server's EOF
    CHECK(!ws.last_error());
  });
}

TEST_CASE("protocol violations by the server: named error, RFC close code sent") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    struct bad {
      const char* name;
      std::string bytes;
      error expect;
      std::uint16_t code;
    };
    const bad cases[] = {
        {"reserved opcode", std::string("\x83\x00", 2), error::unknown_opcode, 1002},
        {"rsv bits", std::string("\xF1\x01x", 3), error::reserved_bits, 1002},
        {"invalid utf-8", encode_frame(opcode::text, "\xC0\xAF"), error::invalid_utf8, 1007},
        {"masked from server", std::string("\x81\x81\x01\x02\x03\x04\x60", 7), error::masked_frame_from_server, 1002},
    };
    std::size_t closed = 0;
    for (const auto& c : cases) {
      CAPTURE(c.name);
      stream ws(io.get_executor());
      co_await ws.connect(server.url());
      server.send_raw(c.bytes);
      std::string buf;
      std::error_code ec;
      co_await ws.read(buf, ec);
      CHECK(ec == c.expect);
      CHECK_FALSE(ws.is_open());
      // The message names the close code, and the violation.
      const auto text = ws.last_error_message();
      CHECK(text.find("close code " + std::to_string(c.code)) != std::string::npos);
      CHECK(text.find(make_error_code(c.expect).message()) != std::string::npos);
      co_await server.wait_closed(++closed);
      REQUIRE(server.closes().size() == closed);
      CHECK(server.closes().back().first == c.code);
    }
  });
}

TEST_CASE("a message over the limit fails with 1009 and loses nothing before it") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    stream_options o;
    o.max_message_size = 1000;
    stream ws(io.get_executor(), o);
    co_await ws.connect(server.url());
    server.send_text("fits");
    server.send_binary(std::string(1001, 'x'));
    std::string buf;
    auto r = co_await ws.read(buf);
    CHECK(buf == "fits");
    std::error_code ec;
    co_await ws.read(buf, ec);
    CHECK(ec == error::message_too_big);
    CHECK(ws.last_error_message() == "close code 1009: " + make_error_code(error::message_too_big).message());
    co_await server.wait_closed(1);
    CHECK(server.closes().back().first == 1009);
  });
}

TEST_CASE("large frames, read straight into the message, are checked as small ones are") {
  // Over 16 KiB of a frame's payload the reader reads into the message itself
  // (protocol::direct_payload); limits and UTF-8 hold there too, at the exact byte.
  // Built by appending: g++ 12 -O2 warns (-Warray-bounds, falsely) on a + b + c here.
  std::string text(300'000, 'a');
  text += "\xC3\xA9";
  text.append(300'000, 'b');
  SUBCASE("whole and fragmented messages arrive intact, in order, in small pieces too") {
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
      test_server server(io.get_executor());
      stream ws(io.get_executor());
      co_await ws.connect(server.url());
      server.send_text(text);
      server.send_raw(encode_frame(opcode::text, text.substr(0, 200'000), false) + encode_frame(opcode::ping, "p") +
                          encode_frame(opcode::continuation, text.substr(200'000), true),
                      7'001, 1ms); // many partial reads, split mid-header and mid-character
      server.send_binary(std::string(100'000, '\0'));
      std::string buf;
      auto r = co_await ws.read(buf);
      CHECK(r.kind == message_kind::text);
      CHECK(buf == text);
      r = co_await ws.read(buf);
      CHECK(buf == text);
      r = co_await ws.read(buf);
      CHECK(r.kind == message_kind::binary);
      CHECK(buf == std::string(100'000, '\0'));
      co_await ws.close();
    });
  }
  SUBCASE("invalid UTF-8 deep in a large frame is 1007") {
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
      test_server server(io.get_executor());
      stream ws(io.get_executor());
      co_await ws.connect(server.url());
      server.send_text("before");
      auto bad = text;
      bad[450'000] = '\xFF';
      server.send_raw(encode_frame(opcode::text, bad), 50'000, 1ms);
      std::string buf;
      co_await ws.read(buf);
      CHECK(buf == "before");
      std::error_code ec;
      co_await ws.read(buf, ec);
      CHECK(ec == error::invalid_utf8);
      co_await server.wait_closed(1);
      CHECK(server.closes().back().first == 1007);
    });
  }
  SUBCASE("a large message over max_message_size is 1009") {
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
      test_server server(io.get_executor());
      stream_options o;
      o.max_message_size = 250'000;
      stream ws(io.get_executor(), o);
      co_await ws.connect(server.url());
      server.send_raw(encode_frame(opcode::binary, std::string(200'000, 'x'), false) +
                      encode_frame(opcode::continuation, std::string(200'000, 'y'), true));
      std::string buf;
      std::error_code ec;
      co_await ws.read(buf, ec);
      CHECK(ec == error::message_too_big);
      co_await server.wait_closed(1);
      CHECK(server.closes().back().first == 1009);
      CHECK(tether::detail::stream_access::buffered_read_bytes(ws) == 0);
    });
  }
}

TEST_CASE("a close from the server while a large write is in flight leaves the bytes being sent in place") {
  // The reader makes the core queue the close's echo while the writer is
  // still sending a 64 MiB frame. Queued into the buffer being sent, the echo
  // reallocated it under the write (ASan's send interceptor saw the freed
  // memory); the writer now owns the bytes it sends (protocol::take_output).
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    stream ws(io.get_executor());
    co_await ws.connect(server.url());
    const std::string big(64 << 20, 'w');
    bool send_done = false;
    asio::steady_timer send_ended(io, asio::steady_timer::time_point::max()); // cancelled when it ends
    asio::co_spawn(io, ws.send(big, message_kind::binary), [&](std::exception_ptr) {
      send_done = true;
      send_ended.cancel();
    });
    co_await yield(); // the send runs until its write waits for the socket
    CHECK_FALSE(send_done);
    server.send_close(1000, "now");
    std::string buf;
    auto r = co_await ws.read(buf);
    CHECK(r.kind == message_kind::close);
    CHECK(r.close_code == 1000);
    while (!send_done) // the write ends: written whole, or cut off by the server's end
      co_await send_ended.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  });
}

TEST_CASE("the server ending TCP mid-frame is connection_lost") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    stream ws(io.get_executor());
    co_await ws.connect(server.url());
    const auto frame = encode_frame(opcode::binary, std::string(5000, 'y'));
    server.send_raw(frame.substr(0, 2500));
    server.drop();
    std::string buf;
    std::error_code ec;
    co_await ws.read(buf, ec);
    CHECK(ec == error::connection_lost);
    CHECK_FALSE(ws.is_open());
  });
}

TEST_CASE("close initiated by the server is echoed and read as a value") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    stream ws(io.get_executor());
    co_await ws.connect(server.url());
    server.send_close(4002, "maintenance");
    std::string buf;
    auto r = co_await ws.read(buf);
    CHECK(r.kind == message_kind::close);
    CHECK(r.close_code == 4002);
    CHECK(r.close_reason == "maintenance");
    co_await server.wait_closed(1);
    CHECK(server.closes().back().first == 4002);
    co_await ws.close(); // nothing left to do, returns at once
    CHECK_FALSE(ws.is_open());
  });
}

TEST_CASE("timing: a server that never answers the handshake") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_handshake(handshake_mode::silent);
    stream_options o;
    o.handshake_timeout = 300ms;
    stream ws(io.get_executor(), o);
    const auto start = clock_type::now();
    std::error_code ec;
    co_await ws.connect(server.url(), ec);
    CHECK(ec == error::handshake_timeout);
    check_elapsed(since(start), o.handshake_timeout);
  });
}

TEST_CASE("timing: a server that never answers our close; the socket is freed") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_answer_close(false);
    stream_options o;
    o.close_timeout = 300ms;
    stream ws(io.get_executor(), o);
    co_await ws.connect(server.url());
    const auto start = clock_type::now();
    std::error_code ec;
    co_await ws.close(1000, "bye", ec);
    CHECK(ec == error::close_timeout);
    check_elapsed(since(start), o.close_timeout);
    CHECK_FALSE(ws.is_open());
    co_await server.wait_closed(1); // our socket is gone
    CHECK(server.connections() == 0);
  });
}

TEST_CASE("timing: a ping that is never answered") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_answer_pings(false);
    stream ws(io.get_executor());
    co_await ws.connect(server.url());
    const auto start = clock_type::now();
    std::error_code ec;
    co_await ws.ping("anyone?", 250ms, ec);
    CHECK(ec == error::pong_timeout);
    check_elapsed(since(start), 250ms);
    server.set_answer_pings(true);
    const auto rtt = co_await ws.ping("now?", 5s);
    CHECK(rtt > std::chrono::nanoseconds(0));
    co_await ws.close();
  });
}

TEST_CASE("cancelled reads lose no data") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    stream ws(io.get_executor());
    co_await ws.connect(server.url());
    std::string buf;
    asio::steady_timer t(io);
    // Nothing arrives: the timer wins and the read is cancelled.
    t.expires_after(50ms);
    auto r1 = co_await (ws.read(buf) || t.async_wait(asio::use_awaitable));
    CHECK(r1.index() == 1);
    // Half a frame arrives, then the read is cancelled, then the rest arrives.
    const auto frame = encode_frame(opcode::text, "split across a cancelled read");
    server.send_raw(frame.substr(0, 10));
    t.expires_after(50ms);
    auto r2 = co_await (ws.read(buf) || t.async_wait(asio::use_awaitable));
    CHECK(r2.index() == 1);
    server.send_raw(frame.substr(10));
    auto r = co_await ws.read(buf);
    CHECK(r.kind == message_kind::text);
    CHECK(buf == "split across a cancelled read");
    co_await ws.close();
  });
}

TEST_CASE("a send cancelled while queued never goes out; one cancelled mid-message fails the connection") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    stream_options o;
    o.max_message_size = 64 << 20;
    stream ws(io.get_executor(), o);
    co_await ws.connect(server.url());

    // A big message keeps the writer busy; B waits behind it and is cancelled.
    const std::string big(8 << 20, 'A');
    bool a_done = false, b_done = false;
    std::exception_ptr b_error;
    asio::co_spawn(io, ws.send(big, message_kind::binary), [&](std::exception_ptr) { a_done = true; });
    asio::cancellation_signal cancel_b;
    asio::co_spawn(io, ws.send("B"),
                   asio::bind_cancellation_slot(cancel_b.slot(), [&](std::exception_ptr e) {
                     b_done = true;
                     b_error = e;
                   }));
    co_await yield();
    cancel_b.emit(asio::cancellation_type::terminal);
    co_await yield();
    CHECK(b_done);
    REQUIRE(b_error);
    CHECK(code_of(b_error) == asio::error::operation_aborted);
    co_await ws.send("C");
    co_await server.wait_messages(2);
    CHECK(a_done); // written before C (its completion handler may run after C's send returns)
    const auto got = server.messages();
    REQUIRE(got.size() == 2);
    CHECK(got[0].second.size() == big.size());
    CHECK(got[1].second == "C"); // B never went out
    CHECK(ws.is_open());

    // Now cancel a message whose first frames are already written.
    server.stall();
    bool c_done = false;
    std::exception_ptr c_error;
    asio::cancellation_signal cancel_c;
    asio::co_spawn(io, ws.send(big, message_kind::binary),
                   asio::bind_cancellation_slot(cancel_c.slot(), [&](std::exception_ptr e) {
                     c_done = true;
                     c_error = e;
                   }));
    // A few executor turns (not time): the writer takes the message and writes
    // its first frames into the socket buffers before the stalled server stops it.
    for (int i = 0; i < 10; ++i)
      co_await yield();
    cancel_c.emit(asio::cancellation_type::terminal);
    for (int i = 0; i < 10 && !c_done; ++i) // a few executor turns, not time
      co_await yield();
    CHECK(c_done);
    REQUIRE(c_error);
    CHECK(code_of(c_error) == error::partial_write_cancelled);
    CHECK_FALSE(ws.is_open());
    CHECK(ws.last_error() == error::partial_write_cancelled);
  });
}

TEST_CASE("cancelling a lone sender while its own write is stalled fails the connection at once") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    stream_options o;
    o.max_message_size = 64 << 20;
    stream ws(io.get_executor(), o);
    co_await ws.connect(server.url());
    std::string buf;
    co_await ws.send("warm-up"); // one message per write: the next lone sender writes for itself
    co_await ws.read(buf);
    server.stall();
    const std::string big(32 << 20, 'A'); // more than the socket buffers hold
    bool done = false;
    std::exception_ptr failure;
    asio::cancellation_signal cancel;
    asio::co_spawn(io, ws.send(big, message_kind::binary), asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) {
                     done = true;
                     failure = e;
                   }));
    for (int i = 0; i < 10; ++i) // executor turns, not time: the write starts and fills the buffers
      co_await yield();
    REQUIRE_FALSE(done);
    cancel.emit(asio::cancellation_type::terminal);
    for (int i = 0; i < 3 && !done; ++i)
      co_await yield();
    CHECK(done);
    REQUIRE(failure);
    CHECK(code_of(failure) == error::partial_write_cancelled);
    CHECK_FALSE(ws.is_open());
  });
}

TEST_CASE("a lone send that the socket takes at once gives other handlers a turn before it completes") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    stream ws(io.get_executor());
    co_await ws.connect(server.url());
    co_await ws.send("warm-up"); // lock-step: each next send writes for itself
    // A loop of such sends must not keep the executor to itself, and senders
    // that start meanwhile must find a write in progress to queue behind.
    for (int i = 0; i < 3; ++i) {
      const bool turn = co_await others_ran_during_send(ws, "small");
      CHECK(turn);
    }
    co_await server.wait_messages(4);
    co_await ws.close();
  });
}

TEST_CASE("the first send after input completes at once; the next one gives other handlers a turn") {
  // A request answered in lock-step need not wait for a pass of the executor;
  // a send with no input since it (the application sending on its own, maybe
  // a burst) still gives others their turn, which lets a burst queue behind it.
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    stream ws(io.get_executor());
    co_await ws.connect(server.url());
    std::string buf;
    for (int round = 0; round < 3; ++round) {
      co_await ws.send("request");
      co_await ws.read(buf); // new input: the echo
      CHECK(buf == "request");
      const bool answer_gave_a_turn = co_await others_ran_during_send(ws, "answer");
      CHECK_FALSE(answer_gave_a_turn);
      const bool more_gave_a_turn = co_await others_ran_during_send(ws, "more");
      CHECK(more_gave_a_turn);
      co_await ws.read(buf);
      CHECK(buf == "answer");
      co_await ws.read(buf);
      CHECK(buf == "more");
    }
    co_await ws.close();
  });
}

TEST_CASE("an IP literal is connected to without a lookup; a name still goes to the resolver") {
  // Asio resolves names on a thread of its own, started by the first lookup
  // of an io_context: a literal must not start it.
  const auto threads = [] {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task"))
      ++n;
    return n;
  };
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    const auto before = threads();
    stream literal(io.get_executor());
    co_await literal.connect(server.url());
    CHECK(server.url().starts_with("ws://127.0.0.1:"));
    CHECK(threads() == before);
    co_await literal.close();
    // An IPv6 literal too (nothing listens there: any error, but no lookup).
    stream v6(io.get_executor());
    std::error_code v6_error;
    co_await v6.connect("ws://[::1]:" + std::to_string(server.port()) + "/", v6_error);
    CHECK(v6_error);
    CHECK(threads() == before);
    stream named(io.get_executor());
    co_await named.connect("ws://localhost:" + std::to_string(server.port()) + "/");
    CHECK(named.is_open());
    CHECK(threads() == before + 1);
    co_await named.close();
  });
}

TEST_CASE("backpressure: senders wait for queue room instead of growing memory") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    stream_options o;
    o.max_send_queue_bytes = 64 * 1024;
    stream ws(io.get_executor(), o);
    co_await ws.connect(server.url());
    // 200 concurrent senders of 16 KiB: all complete, in order.
    const int n = 200;
    int done = 0;
    std::vector<std::string> payloads;
    for (int i = 0; i < n; ++i)
      payloads.push_back(std::to_string(i) + std::string(16 * 1024, '.'));
    for (int i = 0; i < n; ++i)
      asio::co_spawn(io, ws.send(payloads[static_cast<std::size_t>(i)]), [&](std::exception_ptr e) {
        CHECK_FALSE(e);
        ++done;
      });
    co_await server.wait_messages(n);
    const auto got = server.messages();
    REQUIRE(got.size() == static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
      CHECK(got[static_cast<std::size_t>(i)].second == payloads[static_cast<std::size_t>(i)]);
    co_await yield();
    CHECK(done == n);
    co_await ws.close();
  });
}

TEST_CASE("read_some hands over a large message in parts") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    stream_options o;
    o.max_message_size = 64 << 20;
    stream ws(io.get_executor(), o);
    co_await ws.connect(server.url());
    std::string big(12 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i)
      big[i] = static_cast<char>(i % 251);
    co_await ws.send(big, message_kind::binary);
    std::string part, whole;
    int parts = 0;
    for (;;) {
      auto r = co_await ws.read_some(part);
      CHECK(r.kind == message_kind::binary);
      CHECK(r.size == part.size());
      whole += part;
      ++parts;
      if (r.message_end)
        break;
    }
    CHECK(parts > 1);
    CHECK(whole == big);
    co_await ws.close();
  });
}

TEST_CASE("max_read_queue_bytes: a reader that falls behind stops the socket reads; nothing is lost") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    stream_options o;
    o.max_read_queue_bytes = 256 * 1024;
    stream ws(io.get_executor(), o);
    co_await ws.connect(server.url());
    // 32 MiB: far more than the kernel's socket buffers hold on loopback, so
    // a stream that ignored its bound would buffer most of it.
    constexpr std::size_t count = 512, size = 64 * 1024;
    for (std::size_t i = 0; i < count; ++i)
      server.send_binary(std::string(size, static_cast<char>(i % 251)));
    // Past the bound by at most one socket read (1 MiB) and the message it finishes.
    const std::size_t ceiling = o.max_read_queue_bytes + (1 << 20) + size;
    const auto buffered = [&] { return tether::detail::stream_access::buffered_read_bytes(ws); };
    asio::steady_timer tick(io);
    const auto give_up = clock_type::now() + std::chrono::seconds(10);
    while (buffered() < o.max_read_queue_bytes && clock_type::now() < give_up) {
      tick.expires_after(std::chrono::milliseconds(5)); // a poll interval
      co_await tick.async_wait(asio::use_awaitable);
    }
    REQUIRE(buffered() >= o.max_read_queue_bytes);
    // Nobody reads for 300 ms: an observation window (the rule is that nothing
    // more is read), not synchronisation.
    std::size_t most = 0;
    const auto until = clock_type::now() + std::chrono::milliseconds(300);
    while (clock_type::now() < until) {
      most = std::max(most, buffered());
      tick.expires_after(std::chrono::milliseconds(5));
      co_await tick.async_wait(asio::use_awaitable);
    }
    CHECK(most <= ceiling);
    // Reading drains it; every message arrives, in order.
    std::string buf;
    for (std::size_t i = 0; i < count; ++i) {
      auto r = co_await ws.read(buf);
      most = std::max(most, buffered());
      REQUIRE(r.kind == message_kind::binary);
      REQUIRE(buf == std::string(size, static_cast<char>(i % 251)));
    }
    CHECK(most <= ceiling);
    co_await ws.close();
  });
}

TEST_CASE("TLS contexts are shared by streams with the same settings, and rebuilt when a file changes") {
  tls_options a;
  a.ca_file = test::cert_dir() + "/ca.pem";
  std::string why;
  auto first = tether::detail::client_tls_context(a, why);
  auto again = tether::detail::client_tls_context(a, why);
  REQUIRE(first);
  CHECK(first == again);
  tls_options other = a;
  other.insecure_skip_verify = true;
  auto third = tether::detail::client_tls_context(other, why);
  REQUIRE(third);
  CHECK(third != first);

  // A CA file replaced on disk (a rotation) is read again.
  char dir[] = "/tmp/tether-ctx-XXXXXX";
  REQUIRE(mkdtemp(dir));
  const std::string copy = std::string(dir) + "/ca.pem";
  const auto write_copy = [&](const std::string& extra) {
    std::ifstream in(a.ca_file);
    std::ofstream out(copy, std::ios::trunc);
    out << in.rdbuf() << extra;
  };
  write_copy("");
  tls_options rotated;
  rotated.ca_file = copy;
  auto before = tether::detail::client_tls_context(rotated, why);
  write_copy("\n"); // another size: another file as far as the cache knows
  auto after = tether::detail::client_tls_context(rotated, why);
  REQUIRE(before);
  REQUIRE(after);
  CHECK(before != after);

  // A file that cannot be loaded: no context, the reason in the text.
  tls_options missing;
  missing.ca_file = std::string(dir) + "/missing.pem";
  why.clear();
  CHECK(!tether::detail::client_tls_context(missing, why));
  CHECK(why.find("cannot load CA certificates from tls.ca_file") != std::string::npos);
  std::remove(copy.c_str());
  ::rmdir(dir);
}

TEST_CASE("userinfo becomes Authorization; secrets never reach logs or errors") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    std::string logs;
    stream_options o;
    o.headers.add("Cookie", "session=cookie-secret");
    o.log = [&logs](log_level, std::string_view line) {
      logs += line;
      logs += '\n';
    };
    const auto url = "ws://alice:pass-secret@127.0.0.1:" + std::to_string(server.port()) + "/private";
    stream ws(io.get_executor(), o);
    co_await ws.connect(url);
    const auto auth = server.last_request().headers.find("Authorization");
    REQUIRE(auth);
    CHECK(*auth == "Basic YWxpY2U6cGFzcy1zZWNyZXQ="); // base64("alice:pass-secret")
    co_await ws.close();

    server.set_reject(401);
    stream rejected(io.get_executor(), o);
    std::error_code ec;
    co_await rejected.connect(url, ec);
    CHECK(ec == error::handshake_rejected);
    const auto message = rejected.last_error_message();
    CHECK(message.find("127.0.0.1") != std::string::npos);
    for (const auto& text : {logs, message}) {
      CHECK(text.find("pass-secret") == std::string::npos);
      CHECK(text.find("cookie-secret") == std::string::npos);
      CHECK(text.find("YWxpY2U6") == std::string::npos);
    }
    CHECK(logs.find("connecting to ws://127.0.0.1:") != std::string::npos);
  });
}

TEST_CASE("outgoing messages: whole up to fragment_size (1 MiB by default), in frames of it beyond") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
    const auto url = "ws://127.0.0.1:" + std::to_string(acc.local_endpoint().port()) + "/";
    constexpr std::size_t mib = 1024 * 1024;
    // The server reads raw bytes and notes every frame header until `payload`
    // bytes of data frames have arrived.
    std::vector<frame_header> frames;
    auto serve = [](asio::ip::tcp::acceptor& acc, std::vector<frame_header>& frames,
                    std::size_t payload) -> awaitable<void> {
      auto sock = co_await acc.async_accept(asio::use_awaitable);
      request_parser parser;
      std::string in(64 * 1024, '\0');
      std::size_t n = 0;
      for (bool done = false; !done;) {
        n = co_await sock.async_read_some(asio::buffer(in), asio::use_awaitable);
        const auto r = parser.feed({in.data(), n});
        done = r.done;
        in.erase(0, r.consumed); // what follows the request: frames
        n -= std::min(n, r.consumed);
      }
      auto req = parser.request();
      REQUIRE(!validate_request(req));
      co_await asio::async_write(sock, asio::buffer(build_accept_response(req)), asio::use_awaitable);
      std::string wire(in.data(), n);
      std::size_t seen = 0;
      std::size_t pos = 0;
      while (seen < payload) {
        frame_header h;
        const auto r = decode_header({reinterpret_cast<const std::uint8_t*>(wire.data()) + pos, wire.size() - pos}, h);
        REQUIRE(!r.ec);
        if (r.consumed != 0 && wire.size() - pos - r.consumed >= h.length) {
          frames.push_back(h);
          seen += h.length;
          pos += r.consumed + h.length;
          continue;
        }
        in.resize(64 * 1024);
        const auto got = co_await sock.async_read_some(asio::buffer(in), asio::use_awaitable);
        wire.append(in.data(), got);
      }
    };
    bool served = false;
    asio::steady_timer served_signal(io, asio::steady_timer::time_point::max()); // cancelled when it has seen them
    asio::co_spawn(io, serve(acc, frames, 2 * mib + 1), [&](std::exception_ptr e) {
      CHECK_FALSE(e);
      served = true;
      served_signal.cancel();
    });
    stream ws(io.get_executor());
    CHECK(ws.options().fragment_size == mib);
    co_await ws.connect(url);
    const std::string one(mib, 'a');
    const std::string more(mib + 1, 'b');
    co_await ws.send(one);
    co_await ws.send(more, message_kind::binary);
    while (!served)
      co_await served_signal.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    REQUIRE(frames.size() == 3);
    CHECK((frames[0].op == opcode::text && frames[0].fin && frames[0].length == mib));
    CHECK((frames[1].op == opcode::binary && !frames[1].fin && frames[1].length == mib));
    CHECK((frames[2].op == opcode::continuation && frames[2].fin && frames[2].length == 1));
    ws.abort();
  });
}

TEST_CASE("pings during a large frame are answered after it, and the frame arrives whole") {
  // The writer masks a large frame piece by piece (protocol::begin_frame);
  // the core queues the pongs meanwhile. A pong inside the frame's payload
  // would be a violation the server fails the connection for.
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    stream_options o;
    o.fragment_size = 0; // one frame, however large
    stream ws(io.get_executor(), o);
    co_await ws.connect(server.url());
    std::string big(12 << 20, '\0'); // more than the socket buffers hold, under the server's 16 MiB limit
    for (std::size_t i = 0; i < big.size(); ++i)
      big[i] = static_cast<char>(i * 7 % 251);
    bool send_done = false;
    asio::co_spawn(io, ws.send(big, message_kind::binary), [&](std::exception_ptr e) {
      CHECK_FALSE(e);
      send_done = true;
    });
    co_await yield(); // the send runs until its write waits for the socket
    CHECK_FALSE(send_done);
    for (int i = 0; i < 3; ++i)
      server.send_ping("p" + std::to_string(i));
    co_await server.wait_messages(1);
    const auto got = server.messages();
    REQUIRE(got.size() == 1);
    CHECK(got[0].first == opcode::binary);
    CHECK(got[0].second == big);
    co_await server.wait_pongs(3); // answered once the frame is out
    CHECK(ws.is_open());
    co_await ws.close();
  });
}

TEST_CASE("large messages read into one reused buffer come out exact, longer or shorter than the last") {
  // The stream recycles the caller's old buffer for the next message and reads
  // large payloads into it without zeroing it first: nothing of an earlier
  // message may show, whole or through read_some.
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    stream ws(io.get_executor());
    co_await ws.connect(server.url());
    const std::vector<std::pair<std::size_t, char>> sizes = {
        {1 << 20, 'a'}, {700 << 10, 'b'}, {1200 << 10, 'c'}, {100 << 10, 'd'}, {1 << 20, 'e'}, {900 << 10, 'f'}};
    for (const auto& [size, fill] : sizes)
      server.send_binary(std::string(size, fill));
    std::string buf;
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
      CAPTURE(i);
      const auto r = co_await ws.read(buf);
      CHECK(r.size == sizes[i].first);
      CHECK(buf == std::string(sizes[i].first, sizes[i].second));
    }
    // The last in pieces: each piece is only the message's bytes.
    std::string whole;
    for (;;) {
      const auto r = co_await ws.read_some(buf);
      CHECK(buf.size() == r.size);
      whole += buf;
      if (r.message_end)
        break;
    }
    CHECK(whole == std::string(sizes.back().first, sizes.back().second));
    co_await ws.close();
  });
}

TEST_CASE("timing: a TCP connect that is never accepted") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    // A listener with a full accept queue: Linux drops further SYNs, so the
    // next connect hangs until our connect_timeout.
    asio::ip::tcp::acceptor a(io);
    const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    a.open(ep.protocol());
    a.bind(ep);
    a.listen(0);
    std::vector<asio::ip::tcp::socket> fill;
    for (int i = 0; i < 4; ++i)
      fill.emplace_back(io);
    asio::steady_timer t(io);
    for (auto& s : fill) {
      t.expires_after(100ms);
      auto r = co_await (s.async_connect(a.local_endpoint(), asio::use_awaitable) || t.async_wait(asio::use_awaitable));
      if (r.index() == 1)
        break; // the queue is full: this one already hangs
    }
    stream_options o;
    o.connect_timeout = 300ms;
    stream ws(io.get_executor(), o);
    const auto start = clock_type::now();
    std::error_code ec;
    co_await ws.connect("ws://127.0.0.1:" + std::to_string(a.local_endpoint().port()) + "/", ec);
    CHECK(ec == error::connect_timeout);
    check_elapsed(since(start), o.connect_timeout);
  });
}

TEST_CASE("timing: a server that accepts TCP but never speaks TLS") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket peer(io);
    a.async_accept(peer, [](std::error_code) {});
    stream_options o;
    o.tls_timeout = 300ms;
    stream ws(io.get_executor(), o);
    const auto start = clock_type::now();
    std::error_code ec;
    co_await ws.connect("wss://127.0.0.1:" + std::to_string(a.local_endpoint().port()) + "/", ec);
    CHECK(ec == error::tls_timeout);
    check_elapsed(since(start), o.tls_timeout);
  });
}

TEST_CASE("a burst of pings is answered with a bounded number of pongs") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    stream_options o;
    o.max_pong_backlog = 4;
    stream ws(io.get_executor(), o);
    co_await ws.connect(server.url());
    // 50 pings in one write: the reader sees them all before the writer runs.
    std::string burst;
    for (int i = 0; i < 50; ++i)
      burst += encode_frame(opcode::ping, std::to_string(i));
    server.send_raw(burst + encode_frame(opcode::text, "after"));
    std::string buf;
    co_await ws.read(buf);
    CHECK(buf == "after");
    co_await ws.send("flush"); // written after the pongs
    co_await server.wait_messages(1);
    CHECK(server.pongs() >= 1);
    CHECK(server.pongs() <= o.max_pong_backlog); // the core drops unwritten pongs past the backlog
    co_await ws.close();
  });
}

} // TEST_SUITE
