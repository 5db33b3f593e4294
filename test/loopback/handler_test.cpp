// tether::handler against the in-process test server: routing, status,
// reconnects with queued sends, dead connections, the retry table, close races.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/fmt.hpp>
#include <tether/handler.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <asio/detached.hpp>

#include <cstdio>
#include <future>
#include <ostream>
#include <thread>

#include "live.hpp"
#include "handler_support.hpp"
#include "test_server.hpp"

using namespace tether;
using namespace tether::test;
using namespace std::chrono_literals;
using asio::awaitable;

TEST_SUITE("loopback") {

TEST_CASE("handler: the README example against a server routing chat.message and user.status") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    handler_options o = fast();
    o.ping_interval = 30s;
    handler ws{io.get_executor(), o};
    json chat;
    std::string status_path;
    std::uint64_t conn_id = 0;
    ws.add_route({"chat.message", [&](const json& msg, connection_context& ctx) {
                    chat = msg;
                    conn_id = ctx.connection_id;
                  }});
    ws.add_route({"user.status", [&](const message& m, connection_context& ctx) {
                    status_path = std::string(m.path) + "=" + m.data.value("state", "");
                    CHECK(ctx.connected);
                  }});
    co_await ws.connect(server.url());
    json hello = {{"userId", "123"}, {"text", "Hello, world!"}};
    co_await ws.send("chat.message", hello); // echoed back by the server
    server.send_text(envelope_text("user.status", {{"state", "online"}}));
    {
      const bool reached = co_await eventually([&] { return !chat.is_null() && !status_path.empty(); });
      CHECK(reached);
    }
    CHECK(chat == hello);
    CHECK(status_path == "user.status=online");
    CHECK(conn_id == 1);
    auto st = ws.status();
    CHECK(st.connected);
    CHECK(st.state == "open");
    CHECK(st.messages_sent == 1);
    CHECK(st.messages_received == 2);
    CHECK(st.retries == 0);
    const auto j = st.to_json();
    for (const char* field : {"connected", "state", "retries", "reconnects", "messages_sent", "messages_received",
                              "bytes_sent", "bytes_received", "last_ping", "last_pong", "rtt_ms", "queued",
                              "last_error"})
      CHECK(j.contains(field));
    CHECK(j["last_ping"].is_null());
    co_await ws.close(1000, "Normal closure");
    CHECK(ws.status().state == "closed");
    co_await server.wait_closed(1);
    CHECK(server.closes().back().first == 1000);
  });
}

TEST_CASE("handler: wildcards, captures, fallback, invalid messages, a throwing handler") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    std::vector<std::string> errors;
    handler_options o = fast();
    o.on_error = [&](std::error_code, std::string_view what) { errors.emplace_back(what); };
    handler ws{io.get_executor(), o};
    std::vector<std::string> seen;
    ws.add_route({"room.*.message", [&](const message& m, connection_context&) {
                    seen.push_back("star:" + std::string(m.wildcards[0]));
                  }});
    ws.add_route({"room.lobby.message", [&](const json&, connection_context&) { seen.push_back("exact"); }});
    ws.add_route({"boom", [&](const json&, connection_context&) -> void { throw std::runtime_error("kaboom"); }});
    ws.set_fallback(route::json_fn([&](const json&, connection_context&) { seen.push_back("fallback"); }));
    bool threw = false;
    try {
      ws.add_route({"room.*.message", [](const json&, connection_context&) {}});
    } catch (const std::system_error& e) {
      threw = e.code() == error::route_conflict;
    }
    CHECK(threw);
    co_await ws.connect(server.url());
    server.send_text(envelope_text("room.lobby.message", 1));
    server.send_text(envelope_text("room.kitchen.message", 2));
    server.send_text(envelope_text("boom", 3));
    server.send_text("this is not json");
    server.send_text(envelope_text("nobody.listens", 4));
    {
      const bool reached = co_await eventually([&] { return seen.size() == 3; });
      CHECK(reached);
    }
    CHECK(seen == std::vector<std::string>{"exact", "star:kitchen", "fallback"});
    const auto st = ws.status();
    CHECK(st.invalid_messages == 1);
    CHECK(st.unrouted == 1);
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].find("kaboom") != std::string::npos);
    CHECK(errors[1].find("this is not json") != std::string::npos);
    CHECK(ws.status().connected); // none of it closed the connection
    co_await ws.close();
  });
}

TEST_CASE("handler: binary routes share the trie with text routes; a wrong kind is invalid, not fatal") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    std::vector<std::string> errors;
    handler_options o = fast();
    o.on_error = [&](std::error_code ec, std::string_view what) {
      CHECK(ec == error::invalid_envelope);
      errors.emplace_back(what);
    };
    handler ws{io.get_executor(), o};
    std::vector<std::string> seen;
    ws.add_route({"files.*", [&](const message& m, connection_context&) {
                    CHECK(m.binary);
                    CHECK(m.data.is_null());
                    seen.push_back("bin:" + std::string(m.wildcards[0]) + ":" + std::string(m.bytes));
                  }, route_kind::binary});
    ws.add_route({"files.index", [&](const json& d, connection_context&) { seen.push_back("text:" + d.dump()); }});
    ws.add_route({"either", [&](const message& m, connection_context&) {
                    seen.push_back(m.binary ? "either:bin:" + std::string(m.bytes) : "either:text");
                  }, route_kind::any});
    ws.set_fallback(route::message_fn([&](const message& m, connection_context&) {
      seen.push_back("fallback:" + std::string(m.path));
    }));
    co_await ws.connect(server.url());
    const auto binary_envelope = [](std::string_view path, std::string_view bytes) {
      std::string f;
      f += static_cast<char>(path.size() >> 8);
      f += static_cast<char>(path.size() & 0xff);
      f += path;
      f += bytes;
      return f;
    };
    server.send_binary(binary_envelope("files.a", std::string("\x00\xff", 2)));
    server.send_text(envelope_text("files.index", 1));      // the literal beats '*', and is text
    server.send_binary(binary_envelope("files.index", "x")); // binary for a text-only route
    server.send_text(envelope_text("files.b", 2));           // text for a binary-only route
    server.send_binary(binary_envelope("either", "y"));
    server.send_text(envelope_text("either", 3));
    server.send_binary(binary_envelope("nobody", "z"));
    server.send_binary(std::string("\x00", 1));             // not a binary envelope
    {
      const bool reached = co_await eventually([&] { return seen.size() == 5 && errors.size() == 3; });
      CHECK(reached);
    }
    CHECK(seen == std::vector<std::string>{"bin:a:" + std::string("\x00\xff", 2), "text:1", "either:bin:y",
                                           "either:text", "fallback:nobody"});
    REQUIRE(errors.size() == 3);
    CHECK(errors[0].find("binary message for path 'files.index', whose route takes text only") != std::string::npos);
    CHECK(errors[1].find("text message for path 'files.b', whose route takes binary only") != std::string::npos);
    CHECK(errors[2].find("shorter than its 2-byte path length") != std::string::npos);
    const auto st = ws.status();
    CHECK(st.invalid_messages == 3);
    CHECK(st.unrouted == 1);
    CHECK(st.connected); // nothing of it closed the connection

    // send_binary: the path and the raw bytes, no base64, in order with text sends.
    const std::string payload("\x00\x01\x02\xfe\xff", 5);
    co_await ws.send("before", 1);
    co_await ws.send_binary("files.up", payload);
    co_await server.wait_messages(2);
    const auto got = server.messages();
    REQUIRE(got.size() == 2);
    CHECK(got[0].first == opcode::text);
    CHECK(got[1].first == opcode::binary);
    CHECK(got[1].second == binary_envelope("files.up", payload));
    std::error_code ec;
    co_await ws.send_binary(std::string("\xc3\x28"), "x", ec); // a path that is not UTF-8
    CHECK(ec == error::invalid_envelope);
    co_await ws.close();
  });
}

TEST_CASE("handler: a raw-binary codec hands binary frames to the fallback as they are") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    handler_options o = fast();
    o.wire_codec = std::make_shared<json_codec>(binary_format::raw);
    handler ws{io.get_executor(), o};
    std::vector<std::string> seen;
    ws.set_fallback(route::message_fn([&](const message& m, connection_context&) {
      seen.push_back(std::string(m.path) + "|" + std::string(m.bytes));
    }));
    co_await ws.connect(server.url());
    server.send_binary(std::string("\x00\x05" "hello", 7));
    {
      const bool reached = co_await eventually([&] { return seen.size() == 1; });
      CHECK(reached);
    }
    CHECK(seen == std::vector<std::string>{"|" + std::string("\x00\x05" "hello", 7)});
    co_await ws.send_binary("ignored.path", "raw bytes");
    co_await server.wait_messages(1);
    CHECK(server.messages().at(0).second == "raw bytes");
    co_await ws.close();
  });
}

TEST_CASE("handler: coroutine handlers own their message; removal during dispatch is safe") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    std::vector<std::string> errors;
    handler_options o = fast();
    o.on_error = [&](std::error_code, std::string_view what) { errors.emplace_back(what); };
    handler ws{io.get_executor(), o};
    std::vector<int> done;
    route_handle h = ws.add_route(
        {"slow.#", [&](const message& m, connection_context&) -> awaitable<void> {
           const int n = m.data.get<int>();
           const std::string tail(m.wildcards[0]);
           auto this_ex = co_await asio::this_coro::executor;
           asio::steady_timer t(this_ex, std::chrono::milliseconds(30 - 10 * n));
           co_await t.async_wait(asio::use_awaitable);
           CHECK(tail == "a.b");
           done.push_back(n);
         }});
    co_await ws.connect(server.url());
    for (int n = 0; n < 3; ++n)
      server.send_text(envelope_text("slow.a.b", n));
    {
      const bool reached = co_await eventually([&] { return done.size() == 3; });
      CHECK(reached);
    }
    CHECK(done == std::vector<int>{2, 1, 0}); // started in order, ran concurrently
    CHECK(errors.empty());
    for (auto& e : errors)
      MESSAGE(e);
    CHECK(h.remove());
    CHECK_FALSE(h.remove());
    server.send_text(envelope_text("slow.a.b", 9));
    {
      const bool reached = co_await eventually([&] { return ws.status().unrouted == 1; });
      CHECK(reached);
    }
    co_await ws.close();
  });
}

TEST_CASE("handler: the server dies mid-stream; sends made while reconnecting arrive after, in order") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    std::vector<std::string> states;
    handler_options o = fast();
    o.stable_after = 300ms;
    o.on_state = [&](const state_change& c) { states.emplace_back(to_string(c.state)); };
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    co_await ws.send("seq", 0);
    co_await server.wait_messages(1);
    server.stop(); // drops the connection and refuses new ones
    co_await ws.wait_for(connection_state::reconnecting);
    int sent = 0;
    for (int i = 1; i <= 20; ++i)
      asio::co_spawn(io, ws.send("seq", i), [&](std::exception_ptr e) {
        CHECK_FALSE(e);
        ++sent;
      });
    {
      const bool reached = co_await eventually([&] { return ws.status().queued == 20; });
      CHECK(reached);
    }
    CHECK(ws.status().retries >= 1);
    server.restart();
    co_await server.wait_messages(21);
    {
      const bool reached = co_await eventually([&] { return sent == 20; });
      CHECK(reached);
    }
    const auto got = server.messages();
    REQUIRE(got.size() == 21);
    for (int i = 0; i <= 20; ++i)
      CHECK(json::parse(got[static_cast<std::size_t>(i)].second)["data"] == i);
    // The failure count holds until the new connection has lasted stable_after.
    const bool settled = co_await eventually([&] { return ws.status().retries == 0; });
    CHECK(settled);
    const auto st = ws.status();
    CHECK(st.reconnects == 1);
    CHECK(st.queued == 0);
    CHECK(std::find(states.begin(), states.end(), "reconnecting") != states.end());
    co_await ws.close();
  });
}

TEST_CASE("handler timing: a server that stops answering pings is declared dead") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_answer_pings(false);
    std::error_code why;
    handler_options o = fast();
    o.ping_interval = 200ms;
    o.pong_timeout = 300ms;
    o.on_state = [&](const state_change& c) {
      if (c.state == connection_state::reconnecting && c.error)
        why = c.error;
    };
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    const auto start = clock_type::now();
    co_await ws.wait_for(connection_state::reconnecting);
    const auto elapsed = since(start);
    CHECK(why == error::dead_connection);
    CHECK(elapsed >= o.ping_interval + o.pong_timeout);
    CHECK(elapsed <= 3 * (o.ping_interval + o.pong_timeout) + 1s);
    co_await ws.close();
  });
}

TEST_CASE("handler timing: 503 with Retry-After is honoured, then 401 stops") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    http_headers h;
    h.add("Retry-After", "1");
    server.set_reject(503, h, "busy");
    handler ws{io.get_executor(), fast()};
    const auto start = clock_type::now();
    bool switched = false;
    asio::co_spawn(io, [&]() -> awaitable<void> {
      co_await server.wait_request(1);
      server.set_reject(401, {}, "who are you");
      switched = true;
    }, asio::detached);
    std::error_code ec;
    try {
      co_await ws.connect(server.url());
    } catch (const std::system_error& e) {
      ec = e.code();
    }
    CHECK(switched);
    CHECK(ec == error::handshake_rejected);
    CHECK(since(start) >= 1s);
    CHECK(since(start) <= 4s);
    CHECK(server.requests() == 2);
    const auto st = ws.status();
    CHECK(st.state == "failed");
    REQUIRE(st.last_error);
    CHECK(st.last_error->find("401") != std::string::npos);
  });
}

TEST_CASE("handler: close 1012 from the server reconnects; max_retries then fails connect") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    handler_options o = fast();
    o.max_retries = 2;
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    server.send_close(1012, "restarting");
    co_await server.wait_accepted(2);
    co_await ws.wait_for(connection_state::open);
    CHECK(ws.status().reconnects == 1);
    co_await ws.close();

    server.stop();
    handler again{io.get_executor(), o};
    std::error_code ec;
    try {
      co_await again.connect(server.url());
    } catch (const std::system_error& e) {
      ec = e.code();
    }
    CHECK(ec == asio::error::connection_refused);
    const auto st = again.status();
    CHECK(st.state == "failed");
    CHECK(st.retries == 3); // the first attempt and 2 retries
    std::error_code send_ec;
    try {
      co_await again.send("x", 1);
    } catch (const std::system_error& e) {
      send_ec = e.code();
    }
    CHECK(send_ec == error::handler_closed);
  });
}

TEST_CASE("handler: close() during backoff, the WebSocket handshake and the TLS handshake") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    // During a backoff wait: nothing listens.
    {
      asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
      const auto port = a.local_endpoint().port();
      a.close();
      handler_options o = fast();
      o.backoff_base = 10s;
      o.jitter = 0;
      handler ws{io.get_executor(), o};
      asio::co_spawn(io, ws.connect("ws://127.0.0.1:" + std::to_string(port) + "/"), [](std::exception_ptr) {});
      co_await ws.wait_for(connection_state::reconnecting);
      const auto start = clock_type::now();
      co_await ws.close();
      CHECK(since(start) < 2s);
      CHECK(ws.status().state == "closed");
    }
    // During the WebSocket handshake: the server received the request and is silent.
    {
      test_server server(io.get_executor());
      server.set_handshake(handshake_mode::silent);
      handler ws{io.get_executor(), fast()};
      asio::co_spawn(io, ws.connect(server.url()), [](std::exception_ptr) {});
      co_await server.wait_request(1);
      const auto start = clock_type::now();
      co_await ws.close();
      CHECK(since(start) < 2s);
      CHECK(ws.status().state == "closed");
    }
    // During the TLS handshake: a TCP listener that never speaks TLS.
    {
      asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
      asio::ip::tcp::socket peer(io);
      bool accepted = false;
      a.async_accept(peer, [&](std::error_code) { accepted = true; });
      handler ws{io.get_executor(), fast()};
      asio::co_spawn(io, ws.connect("wss://127.0.0.1:" + std::to_string(a.local_endpoint().port()) + "/"),
                     [](std::exception_ptr) {});
      {
        const bool reached = co_await eventually([&] { return accepted; });
        CHECK(reached);
      }
      const auto start = clock_type::now();
      co_await ws.close();
      CHECK(since(start) < 2s);
      CHECK(ws.status().state == "closed");
    }
  });
}

TEST_CASE("handler: 1,000 connect/close cycles and destruction without close leave nothing alive") {
  const long streams_before = tether::detail::live().streams.load();
  const long handlers_before = tether::detail::live().handlers.load();
  {
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
      test_server server(io.get_executor());
      for (int i = 0; i < 1000; ++i) {
        handler ws{io.get_executor(), fast()};
        co_await ws.connect(server.url());
        co_await ws.close();
      }
      co_await server.wait_closed(1000);
      {
        handler dropped{io.get_executor(), fast()};
        co_await dropped.connect(server.url());
      } // destroyed while open: its coroutines end on the executor
      co_await server.wait_closed(1001);
      CHECK(server.connections() == 0);
    }, 300s);
    io.run(); // let the dropped handler's coroutines finish
  }
  CHECK(tether::detail::live().streams.load() == streams_before);
  CHECK(tether::detail::live().handlers.load() == handlers_before);
}

TEST_CASE("handler: status formats with fmt; a route handler may close the handler it runs in") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    handler ws{io.get_executor(), fast()};
    bool closed_from_inside = false;
    ws.add_route({"bye", [&](const json&, connection_context&) -> awaitable<void> {
                    co_await ws.close(1000, "asked to");
                    closed_from_inside = true;
                  }});
    co_await ws.connect(server.url());
    const auto text = fmt::format("{}", ws.status());
    CHECK(json::parse(text) == ws.status().to_json());
    CHECK(fmt::format("{}", connection_state::open) == "open");
    server.send_text(envelope_text("bye", nullptr));
    co_await ws.wait_for(connection_state::closed);
    {
      const bool reached = co_await eventually([&] { return closed_from_inside; });
      CHECK(reached);
    }
    co_await server.wait_closed(1);
    CHECK(server.closes().back().first == 1000);
  });
}

TEST_CASE("handler: one route table shared by two handlers; interceptors run before the router") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    auto table = std::make_shared<route_table>();
    std::vector<std::uint64_t> seen_on; // connection ids, one per handler
    table->add({"news.*", [&](const json&, connection_context& ctx) { seen_on.push_back(ctx.connection_id); }});
    handler_options o = fast();
    o.routes = table;
    handler a{io.get_executor(), o}, b{io.get_executor(), o};
    int intercepted = 0;
    a.add_interceptor([&](envelope& e, connection_context&) {
      if (e.path != "internal.ack")
        return false;
      ++intercepted;
      return true; // consumed: the router never sees it
    });
    co_await a.connect(server.url());
    co_await b.connect(server.url());
    CHECK(b.routes().patterns() == std::vector<std::string>{"news.*"});
    co_await a.send("news.sport", 1); // echoed to a
    co_await b.send("news.tech", 2);  // echoed to b
    co_await a.send("internal.ack", 3);
    {
      const bool reached = co_await eventually([&] { return seen_on.size() == 2 && intercepted == 1; });
      CHECK(reached);
    }
    CHECK(a.status().unrouted == 0);
    co_await a.close();
    co_await b.close();
  });
}

TEST_CASE("handler: a send cancelled while queued is removed and never sent") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    handler ws{io.get_executor(), fast()};
    co_await ws.connect(server.url());
    server.stop();
    co_await ws.wait_for(connection_state::reconnecting);
    asio::cancellation_signal cancel;
    std::error_code ec;
    bool done = false;
    asio::co_spawn(io, ws.send("never", 1), asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) {
                     done = true;
                     try {
                       if (e)
                         std::rethrow_exception(e);
                     } catch (const std::system_error& x) {
                       ec = x.code();
                     }
                   }));
    {
      const bool queued = co_await eventually([&] { return ws.status().queued == 1; });
      CHECK(queued);
    }
    cancel.emit(asio::cancellation_type::terminal);
    {
      const bool finished = co_await eventually([&] { return done; });
      CHECK(finished);
    }
    CHECK(ec == asio::error::operation_aborted);
    CHECK(ws.status().queued == 0);
    server.restart();
    co_await ws.wait_for(connection_state::open);
    co_await ws.send("after", 2);
    co_await server.wait_messages(1);
    const auto got = server.messages();
    REQUIRE(got.size() == 1);
    CHECK(json::parse(got[0].second)["path"] == "after");
    co_await ws.close();
  });
}

TEST_CASE("handler: close() during the close handshake") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_answer_close(false); // the handshake never completes: close_timeout ends it
    handler_options o = fast();
    o.stream.close_timeout = 300ms;
    handler ws{io.get_executor(), o};
    co_await ws.connect(server.url());
    bool first_done = false;
    asio::co_spawn(io, ws.close(1000, "first"), [&](std::exception_ptr e) {
      CHECK_FALSE(e);
      first_done = true;
    });
    co_await ws.wait_for(connection_state::closing);
    const auto start = clock_type::now();
    co_await ws.close(1000, "second"); // joins the close in progress
    CHECK(since(start) <= 300ms * 3 + 1s);
    {
      const bool both = co_await eventually([&] { return first_done; });
      CHECK(both);
    }
    CHECK(ws.status().state == "closed");
  });
}

TEST_CASE("handler hooks: on_connecting may change the URL; on_open steps run before queued sends") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_echo(false);
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    const auto dead = "ws://127.0.0.1:" + std::to_string(a.local_endpoint().port()) + "/";
    a.close();
    handler ws{io.get_executor(), fast()};
    std::vector<unsigned> attempts;
    const std::string good = server.url();
    ws.on_connecting([&](unsigned attempt, std::string& url, http_headers& headers) -> awaitable<void> {
      attempts.push_back(attempt);
      if (attempt >= 2) {
        url = good; // e.g. a refreshed token or another host
        headers.add("X-Attempt", std::to_string(attempt));
      }
      co_return;
    });
    int opened = 0;
    ws.add_on_open([&](connection_context& ctx) -> awaitable<void> {
      ++opened;
      json hello = {{"conn", ctx.connection_id}};
      co_await ws.send("hello", hello); // goes out before anything queued
    });
    co_await ws.connect(dead);
    CHECK(attempts == std::vector<unsigned>{1, 2});
    REQUIRE(server.last_request().headers.find("X-Attempt"));
    CHECK(*server.last_request().headers.find("X-Attempt") == "2");
    co_await ws.send("after", 1);
    co_await server.wait_messages(2);
    const auto got = server.messages();
    CHECK(json::parse(got[0].second)["path"] == "hello");
    CHECK(json::parse(got[1].second)["path"] == "after");
    CHECK(opened == 1);
    co_await ws.close();
  });
}

TEST_CASE("handler offline queue: fail and drop_oldest policies; send_timeout") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    for (auto policy : {offline_policy::fail, offline_policy::drop_oldest}) {
      CAPTURE(static_cast<int>(policy));
      handler_options o = fast();
      o.offline_queue_size = 2;
      o.offline = policy;
      o.send_timeout = 400ms;
      handler ws{io.get_executor(), o};
      co_await ws.connect(server.url());
      server.stop();
      co_await ws.wait_for(connection_state::reconnecting);
      std::vector<std::error_code> results(3);
      int finished = 0;
      for (int i = 0; i < 3; ++i)
        asio::co_spawn(io, ws.send("q", i), [&, i](std::exception_ptr e) {
          ++finished;
          try {
            if (e)
              std::rethrow_exception(e);
          } catch (const std::system_error& x) {
            results[static_cast<std::size_t>(i)] = x.code();
          }
        });
      {
        const bool all = co_await eventually([&] { return finished == 3; }, 5s);
        CHECK(all);
      }
      if (policy == offline_policy::fail) {
        CHECK(results[2] == error::queue_full);     // the newcomer is refused
        CHECK(results[0] == error::send_timeout);   // the others wait, then time out
        CHECK(results[1] == error::send_timeout);
      } else {
        CHECK(results[0] == error::queue_full);     // the oldest makes room
        CHECK(results[1] == error::send_timeout);
        CHECK(results[2] == error::send_timeout);
      }
      co_await ws.close();
      server.restart();
    }
  });
}

TEST_CASE("handler timing: a slow handler pauses reading and the heartbeat deadline with it") {
  asio::io_context io;
  run(io, [&]() -> awaitable<void> {
    test_server server(io.get_executor());
    server.set_answer_pings(false); // no pong will ever come
    handler_options o = fast();
    o.ping_interval = 100ms;
    o.pong_timeout = 200ms;
    o.max_concurrent_handlers = 1;
    std::vector<std::string> states;
    o.on_state = [&](const state_change& c) { states.emplace_back(to_string(c.state)); };
    handler ws{io.get_executor(), o};
    bool slow_done = false;
    ws.add_route({"slow", [&](const json&, connection_context&) -> awaitable<void> {
                    auto ex = co_await asio::this_coro::executor;
                    asio::steady_timer t(ex, 1500ms); // far longer than ping_interval + pong_timeout
                    co_await t.async_wait(asio::use_awaitable);
                    slow_done = true;
                  }});
    co_await ws.connect(server.url());
    server.send_text(envelope_text("slow", 1));
    server.send_text(envelope_text("slow", 2)); // cannot start: reading pauses
    {
      const bool started = co_await eventually([&] { return ws.status().messages_received >= 1; });
      CHECK(started);
    }
    co_await ws.wait_for(connection_state::reconnecting); // only once reading resumed
    CHECK(slow_done); // not declared dead while the handler held reading
    co_await ws.close();
  });
}

} // TEST_SUITE
