// tether::handler in lock-step: a lone send that nothing is queued or in
// flight ahead of is written by its sender, without the writer's pass and
// the completion's (send_queue.cpp, do_send); whatever is sent meanwhile
// queues behind it, in order; a sender that can be cancelled goes through
// the queue.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/handler.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include <exception>
#include <memory>
#include <string>

#include "handler_support.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;

namespace {

// Sends one envelope and says whether other handlers ran meanwhile (a pass
// through the executor). The flag is shared: a send that completes at once
// ends this coroutine before the posted handler runs.
awaitable<bool> others_ran_during_send(handler& h, int n) {
  auto ran = std::make_shared<bool>(false);
  auto ex = co_await asio::this_coro::executor;
  asio::post(ex, [ran] { *ran = true; });
  co_await h.send("seq", n);
  co_return *ran;
}

} // namespace

TEST_SUITE("loopback") {

TEST_CASE("handler: a lone send after input completes at once; the next one, and a cancellable sender's, take a turn") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor()); // echoes
    handler h{io.get_executor(), fast()};
    wake_event echoed(h.get_executor());
    int echoes = 0;
    h.add_route({"seq", [&](const json&, connection_context&) {
                   ++echoes;
                   echoed.fire();
                 }});
    co_await h.connect(server.url());
    co_await on_handler(h, [&]() -> awaitable<void> {
      for (int round = 0; round < 3; ++round) {
        const int before = echoes;
        co_await h.send("seq", round * 10);
        while (echoes == before)
          co_await echoed.wait(); // new input: the echo
        const bool answer_gave_a_turn = co_await others_ran_during_send(h, round * 10 + 1);
        CHECK_FALSE(answer_gave_a_turn);
        const bool more_gave_a_turn = co_await others_ran_during_send(h, round * 10 + 2);
        CHECK(more_gave_a_turn);
        while (echoes < before + 3)
          co_await echoed.wait();
      }
    });
    // A sender that can be cancelled is queued, even right after input.
    co_await on_handler(
        h,
        [&]() -> awaitable<void> {
          const int before = echoes;
          co_await h.send("seq", 100);
          while (echoes == before)
            co_await echoed.wait();
          const bool gave_a_turn = co_await others_ran_during_send(h, 101);
          CHECK(gave_a_turn);
        },
        true);
    co_await server.wait_messages(11);
    const auto got = server.messages();
    REQUIRE(got.size() == 11);
    const int want[] = {0, 1, 2, 10, 11, 12, 20, 21, 22, 100, 101};
    for (std::size_t i = 0; i < got.size(); ++i)
      CHECK(json::parse(got[i].second)["data"] == want[i]);
    CHECK(h.status().messages_sent == 11);
    co_await h.close();
  });
}

TEST_CASE("handler: sends made while a lone large send is still being written follow it, in order") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    handler h{io.get_executor(), fast()};
    co_await h.connect(server.url());
    const std::string big(8 << 20, 'x'); // more than the socket takes at once
    int done = 0;
    wake_event all_sent(h.get_executor());
    co_await on_handler(h, [&]() -> awaitable<void> {
      auto count = [&](std::exception_ptr e) {
        CHECK_FALSE(e);
        if (++done == 21)
          all_sent.fire();
      };
      asio::co_spawn(h.get_executor(), h.send("big", big), count);
      for (int i = 0; i < 20; ++i)
        asio::co_spawn(h.get_executor(), h.send("seq", i), count);
      co_await all_sent.wait();
    });
    co_await server.wait_messages(21);
    const auto got = server.messages();
    REQUIRE(got.size() == 21);
    CHECK(json::parse(got[0].second)["path"] == "big");
    CHECK(json::parse(got[0].second)["data"].get<std::string>().size() == big.size());
    for (int i = 0; i < 20; ++i)
      CHECK(json::parse(got[static_cast<std::size_t>(i) + 1].second)["data"] == i);
    const auto st = h.status();
    CHECK(st.messages_sent == 21);
    CHECK(st.queued == 0);
    co_await h.close();
  });
}

TEST_CASE("handler: a lone send completes at its own write, not after the messages queued behind it") {
  // The server stops reading once it has the first message: the second stays
  // half written. The first send must have completed all the same; it must
  // not wait for the second's write, nor fail with the connection after it.
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    server.set_on_message([&](test_server::connection_id, opcode, std::string_view) { server.stall(); });
    handler h{io.get_executor(), fast()};
    co_await h.connect(server.url());
    // The first is under the stream's queue limit (4 MiB), so the second is
    // handed to the stream while the first is still being written.
    const std::string first_data(2 << 20, 'x');
    const std::string big(8 << 20, 'x');
    std::shared_ptr<op_result> first, second;
    wake_event first_ended(h.get_executor()), second_ended(h.get_executor());
    co_await on_handler(h, [&]() -> awaitable<void> {
      first = start_detached(h.get_executor(), h.send("first", first_data), [&] { first_ended.fire(); });
      second = start_detached(h.get_executor(), h.send("second", big), [&] { second_ended.fire(); });
      co_return;
    });
    co_await server.wait_messages(1);
    const bool first_done = co_await first_ended.wait_for(5s);
    CHECK(first_done);
    CHECK_FALSE(first->ec);
    CHECK_FALSE(second->done); // stalled half written
    server.drop();
    const bool second_done = co_await second_ended.wait_for(5s);
    CHECK(second_done);
    CHECK(second->ec);
    CHECK(h.status().messages_sent == 1);
    co_await h.close();
  });
}

TEST_CASE("handler: a lone send whose connection dies while its sender writes it fails; what queued behind it goes out after the reconnect") {
  // The sender has no cancellation slot, so it writes the message itself
  // (the first test case fails if that path is gone); the server stops
  // reading, so the write stays half done until the drop. 16 MiB: over the
  // stream's max_send_queue_bytes, so "behind" stays in the handler's queue
  // (handed to the stream it would fail with the connection, design.md).
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    handler h{io.get_executor(), fast()};
    co_await h.connect(server.url());
    server.stall();
    const std::string big(16 << 20, 'x'); // far more than the socket buffers hold
    std::shared_ptr<op_result> first, behind;
    wake_event first_ended(h.get_executor()), behind_ended(h.get_executor());
    co_await on_handler(h, [&]() -> awaitable<void> {
      first = start_detached(h.get_executor(), h.send("big", big), [&] { first_ended.fire(); });
      behind = start_detached(h.get_executor(), h.send("behind", 1), [&] { behind_ended.fire(); });
      co_return;
    });
    CHECK_FALSE(first->done);
    const auto reconnects_before = h.status().reconnects;
    server.drop();
    const bool first_done = co_await first_ended.wait_for(5s);
    REQUIRE(first_done);
    CHECK(first->ec == error::connection_lost); // half written: the connection's error, never success
    const bool behind_done = co_await behind_ended.wait_for(5s);
    REQUIRE(behind_done);
    CHECK_FALSE(behind->ec);
    co_await server.wait_messages(1);
    const auto got = server.messages();
    REQUIRE(got.size() == 1);
    CHECK(json::parse(got[0].second)["path"] == "behind");
    const auto st = h.status();
    CHECK(st.reconnects == reconnects_before + 1);
    CHECK(st.messages_sent == 1);
    CHECK(st.queued == 0);
    co_await h.close();
  });
}

TEST_CASE("handler: close() while a lone send is being written by its sender ends within the close timeout; the send fails") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    const auto o = fast();
    handler h{io.get_executor(), o};
    co_await h.connect(server.url());
    server.stall();
    const std::string big(16 << 20, 'x');
    std::shared_ptr<op_result> sending;
    wake_event ended(h.get_executor());
    co_await on_handler(h, [&]() -> awaitable<void> {
      sending = start_detached(h.get_executor(), h.send("big", big), [&] { ended.fire(); });
      co_return;
    });
    CHECK_FALSE(sending->done);
    const auto started = clock_type::now();
    std::error_code close_ec;
    co_await h.close(1000, "", close_ec);
    const auto took = since(started);
    MESSAGE("close() took " << took.count() << " ms: " << close_ec.message());
    CHECK(took >= o.stream.close_timeout); // the write never ends: only the timeout does
    CHECK(took <= 3 * o.stream.close_timeout + 1s);
    const bool done = co_await ended.wait_for(1s);
    REQUIRE(done);
    CHECK(sending->ec == error::close_timeout);
    CHECK(h.status().state == "closed");
    CHECK(h.status().messages_sent == 0);
  });
}

} // TEST_SUITE
