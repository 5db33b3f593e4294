// Reading: the reader loop decodes each message, hands replies to their
// requests and publications to their subscriptions, and dispatches the rest
// to the route table (plain functions inline, coroutines on their own).
#include "handler_impl.hpp"

namespace tether {

asio::awaitable<void> handler::impl::reader(std::shared_ptr<impl> self, std::shared_ptr<stream> ws) {
  auto& s = *self;
  std::string buf;
  std::vector<envelope> envs;
  std::string reason;
  for (;;) {
    // Backpressure: too many coroutine handlers running → stop reading.
    while (s.handlers_.size() >= s.opts_.max_concurrent_handlers && !s.stopping()) {
      s.reader_paused_ = true;
      co_await s.changed_.wait();
      auto cs_now = co_await asio::this_coro::cancellation_state; // named: see design.md
      if (cancelled(cs_now))
        co_return;
    }
    s.reader_paused_ = false;
    std::error_code ec;
    auto r = co_await ws->read(buf, ec);
    if (ec) {
      if (!s.conn_outcome_.error && ec != asio::error::operation_aborted)
        s.conn_outcome_.error = ec;
      co_return;
    }
    if (r.kind == message_kind::close) {
      s.conn_outcome_.close_code = r.close_code;
      s.conn_outcome_.close_reason = r.close_reason;
      co_return;
    }
    s.last_frame_ = steady::now();
    s.ctx_.last_message_at = std::chrono::system_clock::now();
    s.update_status([&](tether::status& st) {
      ++st.messages_received;
      st.bytes_received += buf.size();
    });
    envs.clear();
    reason.clear();
    if (auto dec = s.codec_->decode(buf, r.kind == message_kind::binary, envs, reason)) {
      s.update_status([](tether::status& st) { ++st.invalid_messages; });
      s.report(dec, reason + " | raw: " + buf.substr(0, max_reported_raw));
      continue;
    }
    for (auto& e : envs)
      s.dispatch(self, std::move(e), buf);
  }
}

void handler::impl::dispatch(const std::shared_ptr<impl>& self, envelope env, std::string_view raw) {
  // Replies to request() never reach interceptors or routes.
  switch (requests_.deliver(env)) {
  case detail::request_table::reply_kind::delivered:
    set_pending_requests();
    return;
  case detail::request_table::reply_kind::late:
    update_status([](tether::status& st) { ++st.late_replies; });
    return;
  case detail::request_table::reply_kind::not_ours:
    break;
  }
  // '$' paths are the library's (docs/protocol.md): none reaches a route.
  // Publications go to their subscription; anything else is counted as unrouted.
  if (!env.path.empty() && env.path.front() == '$') {
    if (env.path == "$publish")
      if (auto t = env.extra.find("topic"); t != env.extra.end() && t->is_string())
        if (auto sub = subs_.find(t->get<std::string>())) {
          update_status([](tether::status& st) { ++st.publications; });
          env.path = sub->topic;
          invoke(self, sub->fn, env, {}, raw);
          return;
        }
    update_status([](tether::status& st) { ++st.unrouted; });
    return;
  }
  for (auto& i : interceptors_) {
    try {
      if (i(env, ctx_))
        return;
    } catch (const std::exception& e) {
      report(error::callback_failed, std::string("interceptor threw: ") + e.what());
    }
  }
  captures caps;
  std::shared_ptr<const route::function> fn;
  bool routed = false;
  bool wrong_kind = false;
  {
    std::lock_guard lock(routes_->m);
    if (auto id = routes_->router.match(env.path, caps)) {
      auto it = routes_->fns.find(*id);
      if (it != routes_->fns.end()) {
        const auto accepts = it->second.accepts;
        wrong_kind = accepts != route_kind::any && (accepts == route_kind::binary) != env.binary;
        fn = it->second.fn;
        routed = true;
      }
    }
    if (!fn)
      fn = routes_->fallback;
  }
  if (wrong_kind) {
    // Neither the route's function nor the fallback: the message is not what
    // its route takes, like a frame the codec rejects.
    update_status([](tether::status& st) { ++st.invalid_messages; });
    report(error::invalid_envelope, std::string(env.binary ? "binary" : "text") + " message for path '" +
                                        env.path + "', whose route takes " +
                                        (env.binary ? "text" : "binary") + " only");
    return;
  }
  if (!routed)
    update_status([](tether::status& st) { ++st.unrouted; });
  if (fn)
    invoke(self, fn, env, caps, raw);
}

// Runs a route's (or a subscription's) function on `env`: plain functions
// here, coroutines as their own coroutine (which takes `env` over). `caps`
// point into env.path, so env is not moved before they are turned into offsets.
void handler::impl::invoke(const std::shared_ptr<impl>& self, const std::shared_ptr<const route::function>& fn,
                           envelope& env, const captures& caps, std::string_view raw) {
  try {
    if (auto* f = std::get_if<route::json_fn>(fn.get())) {
      (*f)(env.data, ctx_);
    } else if (auto* g = std::get_if<route::message_fn>(fn.get())) {
      message m{env.path, env.data, env, caps, raw, env.binary, env.bytes};
      (*g)(m, ctx_);
    } else {
      // Offsets, not views: moving a short (SSO) path moves its characters.
      std::vector<std::pair<std::size_t, std::size_t>> spans;
      for (auto c : caps)
        spans.emplace_back(static_cast<std::size_t>(c.data() - env.path.data()), c.size());
      start_coroutine(self, fn, std::move(env), std::move(spans), std::string(raw));
    }
  } catch (const std::exception& e) {
    report(error::callback_failed, std::string("route handler threw: ") + e.what());
  }
}

// Coroutine handlers own their message and context until they complete; the
// captures are re-pointed into the owned copy of the path.
void handler::impl::start_coroutine(const std::shared_ptr<impl>& self, std::shared_ptr<const route::function> fn,
                                    envelope env, std::vector<std::pair<std::size_t, std::size_t>> spans,
                                    std::string raw) {
  auto rec = std::make_shared<running>();
  handlers_.push_back(rec);
  asio::co_spawn(strand_, run_handler(self, rec, std::move(fn), std::move(env), std::move(spans), std::move(raw), ctx_),
                 asio::bind_cancellation_slot(rec->cancel.slot(), [self, rec](std::exception_ptr e) {
                   std::erase(self->handlers_, rec);
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& x) {
                       self->report(error::callback_failed, std::string("route handler threw: ") + x.what());
                     }
                   }
                   self->notify();
                 }));
}

asio::awaitable<void> handler::impl::run_handler(std::shared_ptr<impl> self, std::shared_ptr<running> rec,
                                                 std::shared_ptr<const route::function> fn, envelope env,
                                                 std::vector<std::pair<std::size_t, std::size_t>> spans,
                                                 std::string raw, connection_context ctx) {
  auto cs_now = co_await asio::this_coro::cancellation_state;
  rec->slot = cs_now.slot();
  captures caps;
  for (auto [pos, len] : spans)
    caps.push_back(std::string_view(env.path).substr(pos, len));
  if (auto* f = std::get_if<route::json_coro>(fn.get())) {
    co_await (*f)(env.data, ctx);
  } else if (auto* g = std::get_if<route::message_coro>(fn.get())) {
    message m{env.path, env.data, env, caps, raw, env.binary, env.bytes};
    co_await (*g)(m, ctx);
  }
  (void)self;
}

} // namespace tether
