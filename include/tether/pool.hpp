#pragma once
/// @file
/// tether::pool — N handlers to one URL, for high-volume feeds and servers
/// that limit each connection's throughput (docs/handler.md, "Connection pools").
///
/// ```cpp
/// tether::pool p{io.get_executor(), {.size = 4}};
/// p.add_route({"md.#", on_market_data});          // on every member
/// co_await p.connect(url);                        // every member open
/// co_await p.send("orders.place", order);         // round-robin over open members
/// co_await p.send_keyed("BTC-USD", "orders.place", order); // same key, same member
/// co_await p.subscribe("ticker.btc", on_tick);    // held by one member at a time
/// ```
///
/// Each member is a tether::handler with its own supervisor: one that loses
/// its connection reconnects by itself while the others carry the traffic.
/// Thread safety: as handler (send, status and close from any thread);
/// callbacks run on the members' strands.

#include <tether/export.hpp>
#include <tether/handler.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace tether {

/// How a pool is set up.
struct pool_options {
  std::size_t size = 4;     ///< Members (connections); at least 1.
  /// Each member's options. `routes` is replaced by the pool's table, and the
  /// pool chains its own watch before `on_state` (which still gets every change).
  handler_options member{};
};

/// The pool's status: sums over the members, and each member's own.
struct pool_status {
  std::size_t size = 0;
  std::size_t open = 0;                  ///< Members whose connection is open.
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t queued = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t pending_requests = 0;
  std::uint64_t subscriptions = 0;
  std::uint64_t moved_subscriptions = 0; ///< Subscriptions moved off a member that lost its connection.
  std::uint64_t moved_requests = 0;      ///< Idempotent requests sent again on another member.
  std::vector<tether::status> members;

  /// {"size", "open", the sums, "members": [each handler's status JSON]}.
  TETHER_API json to_json() const;
};

class TETHER_API pool {
public:
  using executor_type = asio::any_io_executor;

  explicit pool(executor_type executor, pool_options options = {});
  ~pool();
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  /// Connects every member (one after the other) and completes when all are
  /// open; if one member's retry policy gives up, the pool closes and this
  /// throws that member's error.
  asio::awaitable<void> connect(std::string url);

  /// Routes on the pool apply to every member (one shared table).
  route_handle add_route(route&& r);
  route_handle add_route(const route& r);
  void set_fallback(route::function fn);
  route_table& routes() noexcept;

  /// Sends on the next open member in turn (round-robin); with none open, on
  /// the next member, where it waits in the offline queue. As handler::send.
  asio::awaitable<void> send(std::string path, json data);
  /// Sends on the member `key` maps to: the same key, the same member (and so
  /// the same connection while it lives, in order). While that member
  /// reconnects the send waits in its queue, bounded by send_timeout.
  asio::awaitable<void> send_keyed(std::string key, std::string path, json data);

  /// handler::request on the next open member. When that member's connection
  /// ends before the reply, an idempotent request is sent again on another
  /// member (with that member's id), until its timeout; otherwise it fails
  /// with outcome_unknown, as on a handler.
  asio::awaitable<json> request(std::string path, json data, request_options options = {});

  /// handler::subscribe on one open member. The subscription is held by one
  /// member at a time (so publications are not duplicated) and moves to
  /// another open member when its holder loses its connection.
  template <class F>
  asio::awaitable<void> subscribe(std::string topic, F&& fn,
                                  std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    return subscribe_function(std::move(topic), route(std::string(), std::forward<F>(fn)).fn, timeout);
  }
  asio::awaitable<void> subscribe_function(std::string topic, route::function fn, std::chrono::milliseconds timeout);
  /// Ends the subscription on whichever member holds it; false if none does.
  asio::awaitable<bool> unsubscribe(std::string topic,
                                    std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

  /// Closes every member (as handler::close).
  asio::awaitable<void> close(std::uint16_t code = 1000, std::string reason = {});

  pool_status status() const;
  std::size_t size() const noexcept;
  /// Member i (0 <= i < size()), for what the pool does not wrap.
  handler& member(std::size_t i);

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace tether
