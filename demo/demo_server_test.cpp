// The demo server (demo_server.hpp) in process, driven by tether::stream and
// tether::handler clients on the same io_context: every behaviour of
// docs/protocol.md "The demo server". Each wait is for an event (a message, a
// state), bounded by the run() timeout.
#include <doctest/doctest.h>

#include "demo_server.hpp"
#include "test_server.hpp" // run()

#include <tether/codec.hpp>
#include <tether/error.hpp>
#include <tether/handler.hpp>
#include <tether/stream.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include "asio_compat.hpp"

#include <algorithm>
#include <deque>
#include <memory>
#include <string>

using namespace std::chrono_literals;
using tether::json;

namespace {

/// Connects a stream to the demo server.
asio::awaitable<std::unique_ptr<tether::stream>> open(std::string url) {
  auto ex = co_await asio::this_coro::executor;
  auto ws = std::make_unique<tether::stream>(ex);
  co_await ws->connect(url);
  co_return ws;
}

/// One text message; fails the test for anything else.
asio::awaitable<std::string> read_text(tether::stream& ws) {
  std::string buf;
  auto r = co_await ws.read(buf);
  REQUIRE(r.kind == tether::message_kind::text);
  co_return buf;
}

asio::awaitable<json> read_json(tether::stream& ws) {
  auto text = co_await read_text(ws);
  co_return json::parse(text);
}

asio::awaitable<void> echo_and_errors(std::string url) {
  auto a = co_await open(url);
  // Without an id, echo sends the envelope back, every field.
  co_await a->send(R"({"path":"echo.greeting","data":{"text":"hi"},"x":true})");
  json reply = co_await read_json(*a);
  CHECK(reply == json::parse(R"({"path":"echo.greeting","data":{"text":"hi"},"x":true})"));

  // With an id it is a request: the reply carries reply_to and the data.
  co_await a->send(R"({"path":"echo.greeting","data":{"text":"hi"},"id":7,"x":true})");
  reply = co_await read_json(*a);
  CHECK(reply == json::parse(R"({"path":"echo.greeting","data":{"text":"hi"},"reply_to":7})"));
  // The same id again (a request re-sent after a reconnect): the same reply,
  // counted as a duplicate, not acted on twice.
  co_await a->send(R"({"path":"echo.other","data":"changed","id":7})");
  reply = co_await read_json(*a);
  CHECK(reply == json::parse(R"({"path":"echo.greeting","data":{"text":"hi"},"reply_to":7})"));
  co_await a->send(R"({"path":"server.info","id":"i"})");
  reply = co_await read_json(*a);
  CHECK(reply["data"]["duplicates"] == 1);

  // A batch: one reply per element.
  co_await a->send(R"([{"path":"echo.a","data":1},{"path":"echo.b","data":2}])");
  json first = co_await read_json(*a);
  json second = co_await read_json(*a);
  CHECK(first["path"] == "echo.a");
  CHECK(second["path"] == "echo.b");

  // Binary frames that are not binary envelopes come back as they are.
  co_await a->send(std::string("\x00\x01\xff", 3), tether::message_kind::binary);
  std::string buf;
  auto r = co_await a->read(buf);
  CHECK(r.kind == tether::message_kind::binary);
  CHECK(buf == std::string("\x00\x01\xff", 3));
  // Binary envelopes route like text ones: echo.* echoes, unknown paths get server.error.
  const std::string echo_envelope = std::string("\x00\x06", 2) + "echo.b" + std::string("\x00\xfe", 2);
  co_await a->send(echo_envelope, tether::message_kind::binary);
  r = co_await a->read(buf);
  CHECK(r.kind == tether::message_kind::binary);
  CHECK(buf == echo_envelope);
  const std::string unknown_binary = std::string("\x00\x03", 2) + "x.y" + "z";
  co_await a->send(unknown_binary, tether::message_kind::binary);
  json refused = co_await read_json(*a);
  CHECK(refused["path"] == "server.error");
  CHECK(refused["data"]["path"] == "x.y");

  // Unknown paths, bad requests and non-envelopes get server.error.
  co_await a->send(R"({"path":"nowhere.x","data":null,"id":"q1"})");
  json unknown = co_await read_json(*a);
  CHECK(unknown["path"] == "server.error");
  CHECK(unknown["reply_to"] == "q1");
  CHECK(unknown["data"]["path"] == "nowhere.x");
  CHECK(unknown["error"].get<std::string>().find("unknown path") != std::string::npos);

  co_await a->send(R"({"path":"server.close","data":{"code":1005}})");
  json bad_code = co_await read_json(*a);
  CHECK(bad_code["path"] == "server.error");
  CHECK(bad_code["error"].get<std::string>().find("close code") != std::string::npos);

  co_await a->send(R"({"path":"server.restart","data":{"after_ms":"soon"}})");
  json bad_after = co_await read_json(*a);
  CHECK(bad_after["path"] == "server.error");

  co_await a->send("not json");
  json not_envelope = co_await read_json(*a);
  CHECK(not_envelope["path"] == "server.error");
  CHECK(not_envelope["error"].get<std::string>().find("not an envelope") == 0);

  co_await a->send(R"({"path":"server.info"})");
  json info = co_await read_json(*a);
  CHECK(info["path"] == "server.info");
  CHECK(info["data"]["clients"] == 1);

  // server.garbage: a text message that is not an envelope.
  co_await a->send(R"({"path":"server.garbage"})");
  auto garbage = co_await read_text(*a);
  std::vector<tether::envelope> envs;
  std::string reason;
  CHECK(static_cast<bool>(tether::json_codec().decode(garbage, false, envs, reason)));

  // server.close with a code and reason.
  co_await a->send(R"({"path":"server.close","data":{"code":4001,"reason":"bye"}})");
  auto closed = co_await a->read(buf);
  CHECK(closed.kind == tether::message_kind::close);
  CHECK(closed.close_code == 4001);
  CHECK(closed.close_reason == "bye");
  co_await a->close();
}

asio::awaitable<void> chat_broadcast(std::string url) {
  auto a = co_await open(url);
  auto b = co_await open(url);
  auto c = co_await open(url);
  co_await a->send(R"({"path":"chat.room","data":{"text":"hello"}})");
  // A marker echoed to a after the chat: had the chat come back to a, it would be first.
  co_await a->send(R"({"path":"echo.marker","data":null})");
  json to_b = co_await read_json(*b);
  json to_c = co_await read_json(*c);
  json to_a = co_await read_json(*a);
  CHECK(to_b == json::parse(R"({"path":"chat.room","data":{"text":"hello"}})"));
  CHECK(to_c == to_b);
  CHECK(to_a["path"] == "echo.marker");
  co_await a->close();
  co_await b->close();
  co_await c->close();
}

asio::awaitable<void> drop_and_silence(std::string url) {
  auto a = co_await open(url);
  auto watcher = co_await open(url);
  // In a batch, what follows the drop is ignored: the chat never reaches watcher.
  co_await a->send(R"([{"path":"server.drop","data":{}},{"path":"chat.after","data":1}])");
  std::string buf;
  std::error_code ec;
  co_await a->read(buf, ec);
  CHECK(static_cast<bool>(ec)); // aborted TCP: no close frame
  co_await watcher->send(R"({"path":"echo.marker"})");
  json first = co_await read_json(*watcher);
  CHECK(first["path"] == "echo.marker");
  co_await watcher->close();

  auto b = co_await open(url);
  co_await b->send(R"({"path":"server.silence","data":{}})");
  // The silenced connection answers no ping, and the TCP connection stays open.
  co_await b->ping({}, 200ms, ec);
  CHECK(ec == tether::error::pong_timeout);
  CHECK(b->is_open());
  b->abort();
}

asio::awaitable<void> restart_and_reconnect(std::string url) {
  auto ex = co_await asio::this_coro::executor;
  tether::handler_options o;
  o.backoff_base = 20ms;
  o.max_delay = 100ms;
  o.max_retries = -1;
  o.ping_interval = 0ms;
  auto got = std::make_shared<std::deque<std::string>>();
  auto wake = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
  tether::handler h(ex, o);
  auto on_echo = [got, wake](const json& data, tether::connection_context&) {
    got->push_back(data.get<std::string>());
    wake->cancel();
  };
  h.add_route(tether::route("echo.#", on_echo));
  co_await h.connect(url);
  json restart = {{"after_ms", 100}};
  co_await h.send("server.restart", restart);
  co_await h.wait_for(tether::connection_state::reconnecting);
  co_await h.wait_for(tether::connection_state::open);
  json hello = "after restart";
  co_await h.send("echo.x", hello);
  while (got->empty())
    co_await wake->async_wait(tether::detail::use_nothrow);
  CHECK(got->front() == "after restart");
  CHECK(h.status().reconnects == 1);
  co_await h.close();
}

asio::awaitable<void> subscriptions(std::string url) {
  auto a = co_await open(url);
  auto b = co_await open(url);
  // Refused: an error reply to the $subscribe, with an error_code.
  co_await a->send(R"({"path":"$subscribe","id":"r1","data":{"topic":"news.x"}})");
  json refused = co_await read_json(*a);
  CHECK(refused["path"] == "$subscribe");
  CHECK(refused["reply_to"] == "r1");
  CHECK(refused["error_code"] == "unknown_topic");
  CHECK(refused["error"].get<std::string>().find("news.x") != std::string::npos);

  // Acknowledged with the same path, reply_to and data, then published every
  // 200 ms from the acknowledgement on (the ticker starts with it).
  const auto before = std::chrono::steady_clock::now();
  co_await a->send(R"({"path":"$subscribe","id":"s1","data":{"topic":"ticker.btc"}})");
  json ack = co_await read_json(*a);
  CHECK(ack == json::parse(R"({"path":"$subscribe","reply_to":"s1","data":{"topic":"ticker.btc"}})"));
  for (int seq = 1; seq <= 3; ++seq) {
    json p = co_await read_json(*a);
    CHECK(p["path"] == "$publish");
    CHECK(p["topic"] == "ticker.btc");
    CHECK(p["seq"] == seq);
    CHECK(p["data"]["at_ms"].is_number_integer());
  }
  CHECK(std::chrono::steady_clock::now() - before >= 3 * 200ms);

  // A second subscriber gets the topic's next publications (seq counts the
  // topic's, not the subscriber's); server.info counts a connection's subscriptions.
  co_await b->send(R"({"path":"$subscribe","id":"s2","data":{"topic":"ticker.btc"}})");
  json ack_b = co_await read_json(*b);
  CHECK(ack_b["reply_to"] == "s2");
  json pb = co_await read_json(*b);
  CHECK(pb["seq"].get<int>() > 3);

  co_await a->send(R"({"path":"$unsubscribe","id":"u1","data":{"topic":"ticker.btc"}})");
  // Publications already sent may come before the acknowledgement.
  json un = co_await read_json(*a);
  while (un["path"] == "$publish")
    un = co_await read_json(*a);
  CHECK(un == json::parse(R"({"path":"$unsubscribe","reply_to":"u1","data":{"topic":"ticker.btc"}})"));
  co_await a->send(R"({"path":"server.info","id":"i1"})");
  json info = co_await read_json(*a);
  CHECK(info["data"]["subscriptions"] == 0); // and nothing more published to a
  co_await b->send(R"({"path":"server.info","id":"i2"})");
  json info_b = co_await read_json(*b);
  while (info_b["path"] == "$publish")
    info_b = co_await read_json(*b);
  CHECK(info_b["data"]["subscriptions"] == 1);
  co_await a->close();
  b->abort();
}

// The server remembers the latest 4,096 ids: the oldest is forgotten once
// 4,096 newer ones were answered, and is then acted on as new.
asio::awaitable<void> id_memory(std::string url) {
  auto a = co_await open(url);
  constexpr int remembered = 4096;
  // Sent as batches of 256 requests, one frame each (the replies come one by one).
  for (int first = 0; first <= remembered; first += 256) {
    json batch = json::array();
    for (int i = first; i < std::min(first + 256, remembered + 1); ++i)
      batch.push_back(json{{"path", "echo.n"}, {"data", i}, {"id", "r" + std::to_string(i)}});
    std::string text = batch.dump();
    co_await a->send(text);
    for (std::size_t k = 0; k < batch.size(); ++k) {
      json r = co_await read_json(*a);
      CHECK(r["reply_to"] == batch[k]["id"]);
    }
  }
  // r0 was answered 4,097 requests ago: forgotten, so it is answered anew
  // (with the new data); r4096 is still remembered (the old data, a duplicate).
  co_await a->send(R"({"path":"echo.n","data":"again","id":"r0"})");
  json fresh = co_await read_json(*a);
  CHECK(fresh["data"] == "again");
  co_await a->send(R"({"path":"echo.n","data":"again","id":"r4096"})");
  json remembered_reply = co_await read_json(*a);
  CHECK(remembered_reply["data"] == 4096);
  co_await a->send(R"({"path":"server.info","id":"i"})");
  json info = co_await read_json(*a);
  CHECK(info["data"]["duplicates"] == 1);
  co_await a->close();
}

template <class F>
void with_server(F&& body) {
  asio::io_context ctx;
  tether::demo::demo_server server(ctx.get_executor());
  const std::string url = server.url();
  CHECK(url == "ws://127.0.0.1:" + std::to_string(server.port()));
  tether::test::run(ctx, [&body, url] { return body(url); }, 20s);
  server.stop();
}

} // namespace

TEST_CASE("demo server: echo, batches, binary, errors, garbage, close") { with_server(echo_and_errors); }
TEST_CASE("demo server: chat goes to every other client") { with_server(chat_broadcast); }
TEST_CASE("demo server: drop and silence") { with_server(drop_and_silence); }
TEST_CASE("demo server: request ids are remembered for the latest 4,096, then forgotten") { with_server(id_memory); }
TEST_CASE("demo server: $subscribe is acknowledged or refused; ticker.* topics publish every 200 ms") {
  with_server(subscriptions);
}
TEST_CASE("demo server: restart on the same port; a handler reconnects") { with_server(restart_and_reconnect); }
