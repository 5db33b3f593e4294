// The demo server: the loopback server (demo/server/test_server) with
// echo off and a message callback that decodes envelopes with tether's own
// json_codec and acts on their path. Everything runs on the server's executor.
#include "demo_server.hpp"

#include "test_server.hpp"

#include <tether/codec.hpp>
#include <tether/protocol.hpp>

#include "utf8.hpp" // tether's validator (lib/, via tether_internal_dep)

#include <asio/steady_timer.hpp>

#include <fmt/core.h>

#include <chrono>
#include <deque>
#include <map>
#include <set>
#include <exception>
#include <unordered_map>
#include <string>
#include <system_error>
#include <vector>

namespace tether::demo {

namespace {

using namespace std::chrono_literals;
using connection_id = test::test_server::connection_id;

/// The text server.garbage sends: a text message that is not JSON.
constexpr std::string_view garbage_text = "this is not an envelope {";
/// server.restart's default and longest pause.
constexpr std::int64_t default_restart_ms = 500;
constexpr std::int64_t max_restart_ms = 600000;
/// While the port cannot be bound again after server.restart, retry this often.
constexpr auto rebind_retry = 250ms;
/// How often each ticker.* topic with subscribers is published.
constexpr auto ticker_period = 200ms;
/// The topics the demo server publishes: ticker.<anything>.
constexpr std::string_view ticker_prefix = "ticker.";

/// The first dot-separated segment of a path, and what follows the first dot.
std::pair<std::string_view, std::string_view> split_first(std::string_view path) {
  const auto dot = path.find('.');
  if (dot == std::string_view::npos)
    return {path, {}};
  return {path.substr(0, dot), path.substr(dot + 1)};
}

/// An integer member of an object `data`, or `fallback` when absent; nullopt when
/// present but not an integer in [lo, hi].
std::optional<std::int64_t> int_field(const json& data, const char* name, std::int64_t fallback, std::int64_t lo,
                                      std::int64_t hi) {
  if (!data.is_object() || !data.contains(name))
    return fallback;
  const auto& v = data[name];
  if (!v.is_number_integer())
    return std::nullopt;
  const auto n = v.get<std::int64_t>();
  if (n < lo || n > hi)
    return std::nullopt;
  return n;
}

} // namespace

struct demo_server::impl : std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor e, demo_server_options o)
      : ex(e), opts(std::move(o)), server(e, make_server_options(opts)), restart_timer(e), ticker(e) {
    server.set_echo(false);
    server.set_record(false); // runs for long: keep nothing
  }

  static test::server_options make_server_options(const demo_server_options& o) {
    test::server_options so;
    so.port = o.port;
    so.cert_file = o.cert_file;
    so.key_file = o.key_file;
    return so;
  }

  asio::any_io_executor ex;
  demo_server_options opts;
  json_codec codec;
  test::test_server server;
  asio::steady_timer restart_timer;
  bool stopped = false;
  // Replies to echo requests by id, the latest max_remembered: a request sent
  // again (an idempotent request after a reconnect) is answered from here, not
  // acted on twice.
  static constexpr std::size_t max_remembered = 4096;
  std::unordered_map<std::string, envelope> answered;
  std::deque<std::string> answered_order;
  std::uint64_t duplicates = 0;
  // Subscriptions: topic → subscribed connections, and each topic's count of
  // publications (seq). A connection's subscriptions end with it.
  asio::steady_timer ticker;
  bool ticking = false;
  std::map<std::string, std::set<connection_id>> subscribers;
  std::map<std::string, std::uint64_t> seq;

  template <class... Args>
  void log(fmt::format_string<Args...> f, Args&&... args) {
    if (opts.log)
      opts.log(fmt::format(f, std::forward<Args>(args)...));
  }

  void send(connection_id to, const envelope& e) {
    std::string out;
    bool binary = false;
    if (auto ec = codec.encode(e, out, binary)) {
      log("connection {}: cannot encode a reply: {}", to, ec.message());
      return;
    }
    if (binary)
      server.send_binary_to(to, std::move(out));
    else
      server.send_text_to(to, std::move(out));
  }

  /// A server.error reply to `to`: what went wrong with the message at `path`.
  void reply_error(connection_id to, std::string_view path, const std::optional<json>& id, std::string why) {
    log("connection {}: error: {}", to, why);
    envelope e;
    e.path = "server.error";
    e.data = json::object();
    e.data["path"] = std::string(path);
    e.error = std::move(why);
    e.reply_to = id;
    send(to, e);
  }

  void on_message(connection_id from, opcode op, std::string_view payload) {
    try {
      std::vector<envelope> envs;
      std::string reason;
      if (op == opcode::binary && codec.decode(payload, true, envs, reason)) {
        // Not a binary envelope (docs/protocol.md): raw bytes come back as they are.
        log("connection {}: binary, {} bytes, not a binary envelope: echoed", from, payload.size());
        server.send_binary_to(from, std::string(payload));
        return;
      }
      if (op != opcode::binary && codec.decode(payload, false, envs, reason)) {
        envelope e;
        e.path = "server.error";
        e.error = "not an envelope: " + reason;
        log("connection {}: {}", from, *e.error);
        send(from, e);
        return;
      }
      for (const auto& e : envs)
        if (!handle(from, e) || stopped)
          break; // the sender's connection ends (drop, silence, close, restart): ignore the rest of a batch
    } catch (const std::exception& x) {
      // A bug here must not take the server down: report it and carry on.
      log("connection {}: failed: {}", from, x.what());
    }
  }

  /// Acts on one envelope; false when the sender's connection is ending.
  bool handle(connection_id from, const envelope& e) {
    const auto [first, rest] = split_first(e.path);
    log("connection {}: {}", from, e.path);
    if (e.path == "$subscribe" || e.path == "$unsubscribe") {
      subscription(from, e);
    } else if (first == "echo") {
      if (e.id)
        answer(from, e);
      else
        send(from, e);
    } else if (first == "chat") {
      std::string out;
      bool binary = false;
      if (!codec.encode(e, out, binary)) {
        if (binary) {
          for (auto id : server.connection_ids())
            if (id != from)
              server.send_binary_to(id, out);
        } else
          server.send_text_except(from, std::move(out));
      }
    } else if (first == "server") {
      return server_command(from, rest, e);
    } else {
      reply_error(from, e.path, e.id, "unknown path '" + e.path + "': use echo.*, chat.* or server.*");
    }
    return true;
  }

  /// $subscribe / $unsubscribe {"topic": T}: acknowledged with the same path,
  /// reply_to and data; topics outside ticker.* are refused with an error reply.
  void subscription(connection_id from, const envelope& e) {
    const bool subscribe = e.path == "$subscribe";
    envelope r;
    r.path = e.path;
    r.data = e.data;
    r.reply_to = e.id;
    if (!e.data.is_object() || !e.data.contains("topic") || !e.data["topic"].is_string()) {
      r.error = "\"data\" must be {\"topic\": \"...\"}";
      r.extra["error_code"] = "bad_request";
      send(from, r);
      return;
    }
    const auto topic = e.data["topic"].get<std::string>();
    if (subscribe && !topic.starts_with(ticker_prefix)) {
      log("connection {}: refused topic '{}'", from, topic);
      r.error = "unknown topic '" + topic + "': the demo server publishes ticker.* topics";
      r.extra["error_code"] = "unknown_topic";
      send(from, r);
      return;
    }
    if (subscribe) {
      subscribers[topic].insert(from); // again after a re-send: still once
      start_ticker();
    } else if (auto it = subscribers.find(topic); it != subscribers.end()) {
      it->second.erase(from);
      if (it->second.empty())
        subscribers.erase(it);
    }
    send(from, r);
  }

  void start_ticker() {
    if (std::exchange(ticking, true))
      return;
    ticker.expires_after(ticker_period);
    std::weak_ptr<impl> weak = shared_from_this();
    ticker.async_wait([weak](std::error_code ec) {
      auto self = weak.lock();
      if (!self)
        return;
      self->ticking = false;
      if (!ec && !self->stopped)
        self->tick();
    });
  }

  /// Publishes every topic to its subscribers that are still connected; keeps
  /// ticking while any topic has one.
  void tick() {
    const auto ids = server.connection_ids();
    const std::set<connection_id> alive(ids.begin(), ids.end());
    for (auto it = subscribers.begin(); it != subscribers.end();) {
      std::erase_if(it->second, [&](connection_id c) { return !alive.contains(c); });
      if (it->second.empty()) {
        it = subscribers.erase(it);
        continue;
      }
      envelope p;
      p.path = "$publish";
      p.extra["topic"] = it->first;
      p.extra["seq"] = ++seq[it->first];
      p.data = json::object();
      p.data["at_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
      for (auto c : it->second)
        send(c, p);
      ++it;
    }
    if (!subscribers.empty())
      start_ticker();
  }

  /// An echo request: {"path", "data", "reply_to": id}, once per id.
  void answer(connection_id from, const envelope& e) {
    const auto key = e.id->dump();
    if (auto it = answered.find(key); it != answered.end()) {
      ++duplicates;
      log("connection {}: request {} again: answered as before", from, key);
      send(from, it->second);
      return;
    }
    envelope r;
    r.path = e.path;
    r.data = e.data;
    r.reply_to = e.id;
    send(from, r);
    answered.emplace(key, r);
    answered_order.push_back(key);
    if (answered_order.size() > max_remembered) {
      answered.erase(answered_order.front());
      answered_order.pop_front();
    }
  }

  /// A server.* envelope; false when it ends the sender's connection.
  bool server_command(connection_id from, std::string_view what, const envelope& e) {
    if (what == "drop") {
      server.drop(from);
      return false;
    } else if (what == "silence") {
      server.silence(from);
      return false;
    } else if (what == "garbage") {
      server.send_text_to(from, std::string(garbage_text));
    } else if (what == "close") {
      const auto code = int_field(e.data, "code", 1000, 0, 65535);
      if (!code || !is_valid_close_code(static_cast<std::uint16_t>(*code))) {
        reply_error(from, e.path, e.id,
                    "\"code\" must be a close code that may be sent (1000-1003, 1007-1014, 3000-4999)");
        return true;
      }
      std::string reason;
      if (e.data.is_object() && e.data.contains("reason")) {
        if (!e.data["reason"].is_string()) {
          reply_error(from, e.path, e.id, "\"reason\" must be a string");
          return true;
        }
        reason = e.data["reason"].get<std::string>();
      }
      if (reason.size() > 123 || !detail::is_valid_utf8(reason)) {
        reply_error(from, e.path, e.id, "\"reason\" must be UTF-8 of at most 123 bytes");
        return true;
      }
      server.send_close_to(from, static_cast<std::uint16_t>(*code), std::move(reason));
      return false;
    } else if (what == "restart") {
      const auto after = int_field(e.data, "after_ms", default_restart_ms, 0, max_restart_ms);
      if (!after) {
        reply_error(from, e.path, e.id, fmt::format("\"after_ms\" must be an integer in 0..{}", max_restart_ms));
        return true;
      }
      restart(std::chrono::milliseconds(*after));
      return false;
    } else if (what == "info") {
      envelope r;
      r.path = "server.info";
      r.data = json::object();
      r.data["connection"] = from;
      r.data["clients"] = server.connection_ids().size();
      r.data["port"] = server.port();
      r.data["duplicates"] = duplicates;
      std::size_t held = 0;
      for (const auto& [topic, ids] : subscribers)
        held += ids.contains(from) ? 1 : 0;
      r.data["subscriptions"] = held;
      r.reply_to = e.id;
      send(from, r);
    } else {
      reply_error(from, e.path, e.id,
                  "unknown server command: use server.drop, server.silence, server.close, server.garbage, "
                  "server.restart or server.info");
    }
    return true;
  }

  void restart(std::chrono::milliseconds after) {
    log("restart: listening again in {} ms", after.count());
    server.stop();
    relisten_after(after);
  }

  void relisten_after(std::chrono::milliseconds after) {
    restart_timer.expires_after(after);
    std::weak_ptr<impl> weak = shared_from_this();
    restart_timer.async_wait([weak](std::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopped)
        return;
      try {
        self->server.restart();
        self->log("listening again on port {}", self->server.port());
      } catch (const std::exception& x) {
        self->log("cannot listen again yet: {}", x.what());
        self->relisten_after(std::chrono::duration_cast<std::chrono::milliseconds>(rebind_retry));
      }
    });
  }
};

demo_server::demo_server(asio::any_io_executor ex, demo_server_options options)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(options))) {
  std::weak_ptr<impl> weak = impl_;
  impl_->server.set_on_message([weak](connection_id id, opcode op, std::string_view payload) {
    if (auto self = weak.lock())
      self->on_message(id, op, payload);
  });
}

demo_server::~demo_server() { stop(); }

std::uint16_t demo_server::port() const { return impl_->server.port(); }

std::string demo_server::url() const {
  auto u = impl_->server.url("/");
  u.pop_back(); // no trailing slash: "ws://127.0.0.1:PORT"
  return u;
}

void demo_server::stop() {
  impl_->stopped = true;
  impl_->restart_timer.cancel();
  impl_->ticker.cancel();
  impl_->server.stop();
}

} // namespace tether::demo
