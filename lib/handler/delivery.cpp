// Acknowledged requests and subscriptions: request entries and idempotent
// re-sends, subscribe / unsubscribe, and the renewal of subscriptions after a
// reconnect.
#include "handler_impl.hpp"

namespace tether {

void handler::impl::set_pending_requests() {
  update_status([n = requests_.size()](tether::status& s) { s.pending_requests = n; });
}

// Renews every acknowledged subscription on a new connection: all the
// $subscribe envelopes are queued at once, ahead of the offline queue and
// past its bound (the library's own, one per topic; paced by the rate limit
// like every envelope, never expired), then their acknowledgements are
// awaited, together at most resubscribe_timeout. A refused topic is reported
// and its subscription ends; a missing acknowledgement is reported and the
// subscription kept. If the connection ends first, what is still queued is
// withdrawn: the next connection renews again.
asio::awaitable<void> handler::impl::resubscribe(std::shared_ptr<impl> self) {
  auto& s = *self;
  auto cs = co_await asio::this_coro::cancellation_state;
  const auto subs = s.subs_.active();
  if (subs.empty())
    co_return;
  const auto deadline = later(steady::now(), s.opts_.resubscribe_timeout);
  struct renewal {
    std::shared_ptr<detail::subscription> sub;
    std::shared_ptr<detail::pending_request> r;
    std::shared_ptr<item> it;
  };
  struct renewals_guard { // no entry or timer outlives this step
    impl& s;
    std::vector<renewal> all;
    bool withdraw = true; // the connection ended: what is still queued is not for the next one
    ~renewals_guard() {
      for (auto& x : all) {
        x.r->timer.cancel();
        s.requests_.close(x.r);
        if (!withdraw || x.it->handed || x.it->done)
          continue;
        const auto before = s.queue_.size();
        s.queue_.erase_if([&x](const std::shared_ptr<item>& q) { return q == x.it; });
        if (s.queue_.size() != before)
          s.queued_bytes_ -= x.it->payload.size();
      }
      s.set_queued();
      s.set_pending_requests();
    }
  } renewals{s, {}};
  for (const auto& sub : subs) {
    auto it = std::make_shared<item>(s.wake_registry_);
    auto r = s.requests_.open(s.strand_, false, deadline);
    renewals.all.push_back({sub, r, it});
    if (s.codec_->encode(subscribe_envelope("$subscribe", sub->topic, r->id), it->payload, it->binary)) {
      s.report(error::invalid_envelope, "re-subscribing: the codec cannot encode a $subscribe envelope");
      co_return;
    }
    it->request = r;
    it->bucket = s.pacer_.bucket_of("$subscribe");
    it->admitted = true;
    it->priority = true;
    it->enqueued = steady::now();
    it->deadline = steady::time_point::max();
    s.enqueue(it);
  }
  s.set_pending_requests();
  for (auto& [sub, r, it] : renewals.all) {
    while (!r->done) {
      auto [tec] = co_await r->timer.async_wait(use_nothrow);
      if (cancelled(cs))
        co_return;
      if (!tec)
        break; // the deadline
    }
    if (!r->done) {
      s.report(error::request_timeout,
               "re-subscribing to '" + sub->topic + "': no acknowledgement within " +
                   std::to_string(s.opts_.resubscribe_timeout.count()) +
                   " ms; the subscription is kept and queued messages flow");
      continue;
    }
    if (r->ec)
      co_return; // the connection ended
    if (r->reply.error) {
      if (s.subs_.remove(sub))
        s.update_status([&](tether::status& st) {
          ++st.refused_subscriptions;
          st.subscriptions = s.subs_.size();
        });
      s.report(error::subscription_refused,
               "re-subscribing to '" + sub->topic + "' after the reconnect: refused: " + *r->reply.error);
    }
  }
  renewals.withdraw = false; // renewals the rate limit still holds go out (their replies come late)
}

envelope handler::impl::subscribe_envelope(std::string path, const std::string& topic, const std::string& id) {
  envelope e;
  e.path = std::move(path);
  e.data = json::object();
  e.data["topic"] = topic;
  if (!id.empty())
    e.id = id;
  return e;
}

// One request from its first send to its reply: sends (again, after a
// reconnect, when idempotent) through the ordered queue, then waits on its
// entry's timer, which a reply, the connection's end or close() cancel.
// `library`: one of the library's own '$' envelopes (subscriptions);
// `still_wanted`, if set, is asked before each re-send of an idempotent one.
asio::awaitable<void> handler::impl::do_request(std::shared_ptr<impl> self, envelope e, request_options o,
                                                std::shared_ptr<json> out, bool library,
                                                std::function<bool()> still_wanted) {
  auto& s = *self;
  if (!library)
    check_user_path(e.path);
  if (s.stopping() || s.state_ == connection_state::failed || s.state_ == connection_state::closed)
    throw std::system_error(error::handler_closed);
  if (o.timeout.count() <= 0)
    throw std::system_error(error::request_timeout, "the request's timeout is not positive");
  const auto deadline = later(steady::now(), o.timeout);
  auto r = s.requests_.open(s.strand_, o.idempotent, deadline);
  struct entry_guard { // no entry or timer outlives its request, however it ends
    impl& s;
    std::shared_ptr<detail::pending_request> r;
    ~entry_guard() {
      r->timer.cancel();
      s.requests_.close(r);
      s.set_pending_requests();
    }
  } guard{s, r};
  s.set_pending_requests();
  e.id = r->id;
  auto cs = co_await asio::this_coro::cancellation_state;
  for (;;) {
    if (r->resend && still_wanted && !still_wanted())
      throw std::system_error(asio::error::operation_aborted); // no longer wanted: not sent again
    auto it = std::make_shared<item>(s.wake_registry_);
    if (auto ec = s.codec_->encode(e, it->payload, it->binary))
      throw std::system_error(ec, "encoding the request for '" + e.path + "'");
    it->cap = deadline;
    it->request = r;
    it->bucket = s.pacer_.bucket_of(e.path);
    it->admitted = library || r->resend; // a re-send was admitted the first time
    r->resend = false;
    std::error_code sent;
    try {
      co_await do_send(self, it);
    } catch (const std::system_error& x) {
      sent = x.code();
    }
    // Cancelled while its write was under way (do_send let the write finish
    // and reset the cancellation state): the caller is gone all the same.
    if (it->caller_cancelled || cancelled(cs))
      throw std::system_error(asio::error::operation_aborted);
    cs = co_await asio::this_coro::cancellation_state;
    if (sent && !r->done) {
      if (sent == asio::error::operation_aborted)
        throw std::system_error(asio::error::operation_aborted);
      if (steady::now() >= deadline)
        throw std::system_error(error::request_timeout);
      if (!it->handed)
        throw std::system_error(sent); // never written: as send() fails
      if (!o.idempotent)
        throw std::system_error(error::outcome_unknown, "the connection ended while writing the request: " +
                                                            sent.message());
      r->resend = true; // its write failed with the connection: again after the reconnect
    }
    while (!r->done && !r->resend) {
      auto [tec] = co_await r->timer.async_wait(use_nothrow);
      if (cancelled(cs))
        throw std::system_error(asio::error::operation_aborted);
      if (!tec && !r->done)
        throw std::system_error(error::request_timeout);
    }
    if (r->done)
      break;
  }
  if (r->ec)
    throw std::system_error(r->ec);
  if (r->reply.error)
    throw request_error(std::move(r->reply));
  *out = std::move(r->reply.data);
}

asio::awaitable<json> handler::impl::request_op(std::shared_ptr<impl> self, envelope e, request_options o,
                                                std::error_code* ec) {
  auto out = std::make_shared<json>();
  auto op = on_strand(self, do_request(self, std::move(e), o, out));
  if (ec)
    co_await into(std::move(op), *ec);
  else
    co_await std::move(op);
  co_return std::move(*out);
}

void handler::impl::check_topic(const std::string& topic) {
  if (topic.empty() || topic.front() == '$')
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "a topic is a non-empty path that does not start with '$': '" + topic + "'");
}

void handler::impl::set_subscriptions() {
  update_status([n = subs_.size()](tether::status& st) { st.subscriptions = n; });
}

// Kept from before the $subscribe goes out, so that a publication the server
// sends right after its acknowledgement (or before it) finds its function.
asio::awaitable<void> handler::impl::do_subscribe(std::shared_ptr<impl> self, std::string topic, route::function fn,
                                                  std::chrono::milliseconds timeout) {
  auto& s = *self;
  check_topic(topic);
  if (s.stopping() || s.state_ == connection_state::failed || s.state_ == connection_state::closed)
    throw std::system_error(error::handler_closed);
  auto sub = s.subs_.add(topic, std::move(fn));
  if (!sub)
    throw std::system_error(error::route_conflict, "already subscribed to '" + topic + "'");
  s.set_subscriptions();
  struct unless_kept { // a subscription that fails, however, is not kept
    impl& s;
    std::shared_ptr<detail::subscription> sub;
    bool kept = false;
    ~unless_kept() {
      if (!kept && s.subs_.remove(sub))
        s.set_subscriptions();
    }
  } guard{s, sub};
  auto reply = std::make_shared<json>();
  std::error_code refused, failed;
  std::string text;
  // Idempotent: subscribing twice is harmless, so a $subscribe whose
  // connection ended is sent again after the reconnect - while still wanted.
  request_options ro;
  ro.timeout = timeout;
  ro.idempotent = true;
  envelope e = subscribe_envelope("$subscribe", topic, std::string());
  std::function<bool()> wanted = [&s, sub] { return s.subs_.find(sub->topic) == sub; };
  try {
    co_await do_request(self, std::move(e), ro, reply, true, std::move(wanted));
  } catch (const request_error& x) {
    refused = error::subscription_refused;
    text = x.error_text();
  } catch (const std::system_error& x) {
    failed = x.code();
  }
  if (refused) {
    s.update_status([](tether::status& st) { ++st.refused_subscriptions; });
    throw std::system_error(refused, "subscribing to '" + topic + "': " + text);
  }
  if (failed) {
    // Timed out or cancelled, perhaps after the server took it: tell it to
    // forget the topic (best effort, in order after the $subscribe).
    if (s.state_ == connection_state::open && s.ctx_.connected && !s.stopping())
      forget_on_server(self, topic);
    throw std::system_error(failed, "subscribing to '" + topic + "'");
  }
  if (s.subs_.find(topic) != sub) // unsubscribed while waiting for the acknowledgement
    throw std::system_error(asio::error::operation_aborted,
                            "unsubscribed from '" + topic + "' before the acknowledgement");
  sub->active = true;
  guard.kept = true;
}

// A $unsubscribe nobody awaits (a subscribe that failed after its write).
void handler::impl::forget_on_server(const std::shared_ptr<impl>& self, const std::string& topic) {
  request_options ro;
  ro.timeout = self->opts_.resubscribe_timeout;
  asio::co_spawn(self->strand_,
                 do_request(self, subscribe_envelope("$unsubscribe", topic, std::string()), ro,
                            std::make_shared<json>(), true),
                 [](std::exception_ptr) {}); // its outcome changes nothing here
}

asio::awaitable<void> handler::impl::do_unsubscribe(std::shared_ptr<impl> self, std::string topic,
                                                    std::chrono::milliseconds timeout, std::shared_ptr<bool> out) {
  auto& s = *self;
  auto sub = s.subs_.find(topic);
  if (!sub || !s.subs_.remove(sub)) {
    *out = false;
    co_return;
  }
  s.set_subscriptions();
  *out = true;
  // An acknowledged subscription lives on the server only as long as the
  // connection; one still awaiting its acknowledgement has a $subscribe on
  // its way, which this $unsubscribe follows in order.
  if (sub->active && !(s.state_ == connection_state::open && s.ctx_.connected))
    co_return;
  auto reply = std::make_shared<json>();
  std::error_code ec;
  request_options ro;
  ro.timeout = timeout;
  envelope e = subscribe_envelope("$unsubscribe", topic, std::string());
  const auto connection = s.ctx_.connection_id;
  try {
    co_await do_request(self, std::move(e), ro, reply, true);
  } catch (const request_error&) {
    throw;
  } catch (const std::system_error& x) {
    ec = x.code();
  }
  // The connection ended under it: the server forgot the subscription with it.
  const bool ended = ec == error::outcome_unknown || s.ctx_.connection_id != connection || !s.ctx_.connected;
  if (ec && !ended)
    throw std::system_error(ec, "unsubscribing from '" + topic + "'");
}

asio::awaitable<bool> handler::impl::unsubscribe_op(std::shared_ptr<impl> self, std::string topic,
                                                    std::chrono::milliseconds timeout) {
  auto out = std::make_shared<bool>(false);
  co_await on_strand(self, do_unsubscribe(self, std::move(topic), timeout, out));
  co_return *out;
}

} // namespace tether
