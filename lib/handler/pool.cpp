// tether::pool: N handlers sharing one route table. Sends pick a member
// round-robin among the open ones (or by a key's hash); subscriptions are
// held by one member each and move when it loses its connection; idempotent
// requests whose member's connection ended move to another member.
#include <tether/pool.hpp>

#include <tether/error.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>

#include "strand.hpp"

namespace tether {

namespace {

using steady = std::chrono::steady_clock;
constexpr std::size_t none = static_cast<std::size_t>(-1);

} // namespace

struct pool::impl : std::enable_shared_from_this<impl> {
  // A pool subscription: which member holds it, and what to subscribe with
  // when it has to move.
  struct held {
    std::shared_ptr<const route::function> fn;
    std::chrono::milliseconds timeout{};
    std::size_t member = 0;
    std::uint64_t generation = 0; // this subscription, not a later one to the same topic
    bool acknowledged = false;    // until then it is not moved
    bool moving = false;          // a move is under way (the holder may report its drop twice)
  };

  // The entry for `topic` if it is still subscription `generation`; callers hold m_.
  held* find(const std::string& topic, std::uint64_t generation) {
    auto it = held_.find(topic);
    return it == held_.end() || it->second.generation != generation ? nullptr : &it->second;
  }

  void report(std::error_code ec, const std::string& what) const {
    if (opts_.member.on_error)
      opts_.member.on_error(ec, what);
  }

  impl(asio::any_io_executor ex, pool_options o)
      : strand_(detail::make_strand(ex)), opts_(std::move(o)), routes_(std::make_shared<route_table>()) {
    if (opts_.size == 0)
      throw std::invalid_argument("pool_options::size must be at least 1");
  }

  // Members are made after the impl is owned by a shared_ptr: their on_state
  // refers to it weakly.
  void make_members(const asio::any_io_executor& ex) {
    open_ = std::make_unique<std::atomic<bool>[]>(opts_.size);
    for (std::size_t i = 0; i < opts_.size; ++i) {
      handler_options o = opts_.member;
      o.routes = routes_;
      o.on_state = [weak = weak_from_this(), i, user = opts_.member.on_state](const state_change& c) {
        auto self = weak.lock();
        if (self)
          self->open_[i].store(c.state == connection_state::open, std::memory_order_relaxed);
        if (user)
          user(c);
        if (self && (c.state == connection_state::reconnecting || c.state == connection_state::failed))
          self->member_dropped(i);
      };
      members_.push_back(std::make_unique<handler>(ex, std::move(o)));
    }
  }

  // Kept by each member's on_state: a send's pick costs no status() snapshot.
  bool is_open(std::size_t i) const { return open_[i].load(std::memory_order_relaxed); }

  // The next open member in turn, other than `exclude`; with none open, the
  // next member in turn (its queue holds the message until it reconnects).
  std::size_t pick(std::size_t exclude = none) {
    const auto n = members_.size();
    for (std::size_t k = 0; k < n; ++k) {
      const auto i = next_.fetch_add(1, std::memory_order_relaxed) % n;
      if (i != exclude && is_open(i))
        return i;
    }
    auto i = next_.fetch_add(1, std::memory_order_relaxed) % n;
    if (i == exclude && n > 1)
      i = (i + 1) % n;
    return i;
  }

  void member_dropped(std::size_t i) {
    {
      std::lock_guard lock(m_);
      if (closing_)
        return;
    }
    asio::co_spawn(strand_, move_subscriptions(shared_from_this(), i), asio::detached);
  }

  // Moves the acknowledged subscriptions member i held to other open
  // members. With no other member open they stay: member i renews them after
  // its reconnect. Each step re-checks that the subscription is still the same
  // one (the user may unsubscribe, or subscribe again, meanwhile).
  static asio::awaitable<void> move_subscriptions(std::shared_ptr<impl> self, std::size_t from) {
    std::vector<std::pair<std::string, std::uint64_t>> topics;
    {
      std::lock_guard lock(self->m_);
      for (const auto& [topic, h] : self->held_)
        if (h.member == from && h.acknowledged && !h.moving)
          topics.emplace_back(topic, h.generation);
    }
    for (const auto& [topic, generation] : topics) {
      const auto to = self->pick(from);
      if (to == from || !self->is_open(to))
        co_return;
      held h;
      {
        std::lock_guard lock(self->m_);
        auto* e = self->find(topic, generation);
        if (!e || e->member != from || e->moving || self->closing_)
          continue; // unsubscribed meanwhile, or moved already
        e->moving = true;
        h = *e;
      }
      try {
        co_await self->members_[from]->unsubscribe(topic, h.timeout); // offline: forgotten locally
      } catch (const std::system_error&) {
      }
      std::exception_ptr failed;
      try {
        co_await self->members_[to]->subscribe_function(topic, *h.fn, h.timeout);
      } catch (...) {
        failed = std::current_exception();
      }
      bool still = false;
      {
        std::lock_guard lock(self->m_);
        if (auto* e = self->find(topic, generation); e && !self->closing_) {
          still = true;
          e->moving = false;
          if (!failed) {
            e->member = to;
            ++self->moved_subscriptions_;
          }
        }
      }
      if (!still) {
        // Unsubscribed (or closed) while moving: undo on the new member.
        if (!failed) {
          try {
            co_await self->members_[to]->unsubscribe(topic, h.timeout);
          } catch (const std::system_error&) {
          }
        }
        continue;
      }
      if (!failed)
        continue;
      // The new member refused or failed: back to the old one, which renews
      // it once it reconnects.
      std::string why;
      try {
        co_await self->members_[from]->subscribe_function(topic, *h.fn, h.timeout);
      } catch (const std::exception& x) {
        why = x.what();
      }
      if (!why.empty()) {
        {
          std::lock_guard lock(self->m_);
          if (self->find(topic, generation))
            self->held_.erase(topic);
        }
        self->report(error::subscription_refused, "pool: the subscription to '" + topic +
                                                      "' could not move to another member nor stay: " + why);
      }
    }
  }

  static asio::awaitable<json> request_op(std::shared_ptr<impl> self, std::string path, json data,
                                          request_options o) {
    const auto now = steady::now();
    const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(steady::time_point::max() - now);
    const auto deadline = o.timeout >= room ? steady::time_point::max() : now + o.timeout; // saturating
    std::size_t exclude = none;
    for (;;) {
      const auto i = self->pick(exclude);
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
      if (left.count() <= 0)
        throw std::system_error(error::request_timeout);
      request_options once{left, false};
      bool moved = false;
      try {
        auto reply = co_await self->members_[i]->request(path, data, once);
        co_return reply;
      } catch (const std::system_error& e) {
        if (e.code() != error::outcome_unknown || !o.idempotent)
          throw;
        moved = true;
      }
      if (moved) {
        std::lock_guard lock(self->m_);
        ++self->moved_requests_;
      }
      exclude = i; // another member, if one is open
    }
  }

  static asio::awaitable<void> subscribe_op(std::shared_ptr<impl> self, std::string topic, route::function fn,
                                            std::chrono::milliseconds timeout) {
    auto shared = std::make_shared<const route::function>(std::move(fn));
    const auto i = self->pick();
    std::uint64_t generation = 0;
    {
      std::lock_guard lock(self->m_);
      if (self->held_.contains(topic))
        throw std::system_error(error::route_conflict, "already subscribed to '" + topic + "'");
      generation = ++self->generations_;
      self->held_[topic] = held{shared, timeout, i, generation, false};
    }
    std::exception_ptr failed;
    try {
      co_await self->members_[i]->subscribe_function(topic, *shared, timeout);
    } catch (...) {
      failed = std::current_exception();
    }
    std::lock_guard lock(self->m_);
    auto* e = self->find(topic, generation);
    if (failed) {
      if (e)
        self->held_.erase(topic);
      std::rethrow_exception(failed);
    }
    if (e)
      e->acknowledged = true;
  }

  static asio::awaitable<bool> unsubscribe_op(std::shared_ptr<impl> self, std::string topic,
                                              std::chrono::milliseconds timeout) {
    std::size_t member = none;
    {
      std::lock_guard lock(self->m_);
      auto it = self->held_.find(topic);
      if (it == self->held_.end())
        co_return false;
      member = it->second.member;
      self->held_.erase(it);
    }
    co_await self->members_[member]->unsubscribe(topic, timeout);
    co_return true;
  }

  static asio::awaitable<void> connect_op(std::shared_ptr<impl> self, std::string url) {
    std::exception_ptr failed;
    for (auto& m : self->members_) {
      try {
        co_await m->connect(url);
      } catch (...) {
        failed = std::current_exception();
      }
      if (failed)
        break;
    }
    if (failed) {
      std::string no_reason;
      co_await close_op(self, 1000, std::move(no_reason));
      std::rethrow_exception(failed);
    }
  }

  static asio::awaitable<void> close_op(std::shared_ptr<impl> self, std::uint16_t code, std::string reason) {
    {
      std::lock_guard lock(self->m_);
      self->closing_ = true;
    }
    std::exception_ptr failed;
    for (auto& m : self->members_) {
      try {
        co_await m->close(code, reason);
      } catch (...) {
        if (!failed)
          failed = std::current_exception();
      }
    }
    if (failed)
      std::rethrow_exception(failed);
  }

  asio::any_io_executor strand_; // detail::make_strand
  pool_options opts_;
  std::shared_ptr<route_table> routes_;
  std::vector<std::unique_ptr<handler>> members_;
  std::unique_ptr<std::atomic<bool>[]> open_; // member i's connection is open (its latest state)
  std::atomic<std::size_t> next_{0};
  mutable std::mutex m_; // guards what follows
  std::map<std::string, held> held_;
  std::uint64_t moved_subscriptions_ = 0;
  std::uint64_t moved_requests_ = 0;
  std::uint64_t generations_ = 0;
  bool closing_ = false;
};

pool::pool(executor_type executor, pool_options options)
    : impl_(std::make_shared<impl>(executor, std::move(options))) {
  impl_->make_members(executor);
}

pool::~pool() {
  std::lock_guard lock(impl_->m_);
  impl_->closing_ = true; // members going away move nothing
}

asio::awaitable<void> pool::connect(std::string url) { return impl::connect_op(impl_, std::move(url)); }

route_handle pool::add_route(route&& r) { return impl_->routes_->add(std::move(r)); }
route_handle pool::add_route(const route& r) { return impl_->routes_->add(r); }
void pool::set_fallback(route::function fn) { impl_->routes_->set_fallback(std::move(fn)); }
route_table& pool::routes() noexcept { return *impl_->routes_; }

asio::awaitable<void> pool::send(std::string path, json data) {
  return impl_->members_[impl_->pick()]->send(std::move(path), std::move(data));
}

asio::awaitable<void> pool::send_keyed(std::string key, std::string path, json data) {
  const auto i = std::hash<std::string>{}(key) % impl_->members_.size();
  return impl_->members_[i]->send(std::move(path), std::move(data));
}

asio::awaitable<json> pool::request(std::string path, json data, request_options options) {
  return impl::request_op(impl_, std::move(path), std::move(data), options);
}

asio::awaitable<void> pool::subscribe_function(std::string topic, route::function fn,
                                               std::chrono::milliseconds timeout) {
  return impl::subscribe_op(impl_, std::move(topic), std::move(fn), timeout);
}

asio::awaitable<bool> pool::unsubscribe(std::string topic, std::chrono::milliseconds timeout) {
  return impl::unsubscribe_op(impl_, std::move(topic), timeout);
}

asio::awaitable<void> pool::close(std::uint16_t code, std::string reason) {
  return impl::close_op(impl_, code, std::move(reason));
}

pool_status pool::status() const {
  pool_status s;
  s.size = impl_->members_.size();
  for (const auto& m : impl_->members_) {
    auto st = m->status();
    s.open += st.connected ? 1 : 0;
    s.messages_sent += st.messages_sent;
    s.messages_received += st.messages_received;
    s.queued += st.queued;
    s.reconnects += st.reconnects;
    s.pending_requests += st.pending_requests;
    s.subscriptions += st.subscriptions;
    s.members.push_back(std::move(st));
  }
  std::lock_guard lock(impl_->m_);
  s.moved_subscriptions = impl_->moved_subscriptions_;
  s.moved_requests = impl_->moved_requests_;
  return s;
}

std::size_t pool::size() const noexcept { return impl_->members_.size(); }

handler& pool::member(std::size_t i) { return *impl_->members_.at(i); }

json pool_status::to_json() const {
  json j = json::object();
  j["size"] = size;
  j["open"] = open;
  j["messages_sent"] = messages_sent;
  j["messages_received"] = messages_received;
  j["queued"] = queued;
  j["reconnects"] = reconnects;
  j["pending_requests"] = pending_requests;
  j["subscriptions"] = subscriptions;
  j["moved_subscriptions"] = moved_subscriptions;
  j["moved_requests"] = moved_requests;
  j["members"] = json::array();
  for (const auto& m : members)
    j["members"].push_back(m.to_json());
  return j;
}

} // namespace tether
