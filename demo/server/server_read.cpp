// The loopback test server: a connection's reader. The handshake request and
// the scripted answer (accept, reject, raw, silent), then frames through our
// core in server role, and what the server answers to each event.
#include "server_impl.hpp"

namespace tether::test {

using namespace server_detail;

namespace {

const char* reason_phrase(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 426: return "Upgrade Required";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return status >= 300 && status < 400 ? "Redirect" : "Error";
  }
}

// One read while the handshake is answered; nullopt once this reader must
// stop: the connection was stalled or dropped meanwhile, or TCP ended (end()).
asio::awaitable<std::optional<std::size_t>> read_once(std::shared_ptr<connection> c, asio::mutable_buffer b) {
  auto [ec, n] = co_await c->read_some(b);
  if (c->dead || c->stalled)
    co_return std::nullopt;
  if (ec) {
    c->end();
    co_return std::nullopt;
  }
  co_return n;
}

} // namespace

asio::awaitable<void> test_server::impl::read_side(std::shared_ptr<impl> s, std::shared_ptr<connection> c) {
  co_await read_connection(s, c);
  c->reader_done = true;
  c->wake.cancel();
}

// Returns with c->closing set to close gracefully, c->dead on EOF or error,
// or c->stalled.
asio::awaitable<void> test_server::impl::read_connection(std::shared_ptr<impl> s, std::shared_ptr<connection> c) {
  std::array<char, 4096> buf;
  request_parser parser;
  std::string rest; // bytes after the request: the client's first frames

  // ---- the handshake request ----
  for (;;) {
    if (c->dead || c->stalled)
      co_return; // stall() or drop() before this coroutine first ran
    const auto n = co_await read_once(c, asio::buffer(buf));
    if (!n)
      co_return;
    const std::string_view in(buf.data(), *n);
    const auto r = parser.feed(in);
    if (r.ec) {
      c->push(build_reject_response(400, reason_phrase(400), {}, r.ec.message()));
      c->close_after_flush();
      co_return;
    }
    if (r.done) {
      rest.assign(in.substr(r.consumed));
      break;
    }
  }
  ++s->requests;
  s->last_request = parser.request();
  s->notify();

  switch (s->mode) {
  case handshake_mode::reject:
    c->push(build_reject_response(s->reject_status, reason_phrase(s->reject_status), s->reject_headers,
                                  s->reject_body));
    c->close_after_flush();
    co_return;
  case handshake_mode::silent:
    for (;;) // keep TCP open, ignore whatever arrives
      if (!co_await read_once(c, asio::buffer(buf)))
        co_return;
  case handshake_mode::raw:
    c->push(s->raw_answer + s->after_handshake);
    break;
  case handshake_mode::accept: {
    server_request req = parser.request();
    if (auto ec = validate_request(req)) {
      c->push(build_reject_response(400, reason_phrase(400), {}, ec.message()));
      c->close_after_flush();
      co_return;
    }
    std::string chosen;
    for (const auto& offered : req.subprotocols)
      if (std::find(s->opts.subprotocols.begin(), s->opts.subprotocols.end(), offered) !=
          s->opts.subprotocols.end()) {
        chosen = offered;
        break;
      }
    c->push(build_accept_response(req, chosen) + s->after_handshake);
    break;
  }
  }

  // ---- WebSocket ----
  protocol_options po;
  po.role = role::server;
  po.auto_pong = false; // answered below, so set_answer_pings applies to open connections
  c->proto.emplace(po);
  c->proto->feed(rest);
  for (;;) {
    process_events(*s, *c);
    if (c->proto->failed() ||
        (c->proto->close_sent() && c->proto->close_received() && !c->close_unanswered)) {
      c->close_after_flush();
      co_return;
    }
    auto [ec, n] = co_await c->read_some(asio::buffer(buf));
    if (c->dead || c->stalled || c->closing)
      co_return;
    if (ec) {
      c->end();
      co_return;
    }
    c->proto->feed({buf.data(), n});
  }
}

void test_server::impl::process_events(impl& s, connection& c) {
  auto& p = *c.proto;
  for (;;) {
    if (c.dead)
      break; // dropped by an on_message callback
    const bool close_sent_before = p.close_sent();
    auto ev = p.next_event();
    if (!ev)
      break;
    if (c.silenced) {
      // Nothing goes out: no echo, pong or close answer (kept open until the
      // client drops TCP). A close is still observed.
      if (ev->what == event::kind::close) {
        c.close_seen = true;
        c.close_unanswered = true;
        if (s.record)
          s.closes.emplace_back(ev->code, std::string(ev->data));
        s.notify();
      }
      c.take_output(true);
      continue;
    }
    bool discard = false;
    switch (ev->what) {
    case event::kind::message_begin:
      c.msg_type = ev->type;
      c.msg.clear();
      break;
    case event::kind::data:
      c.msg.append(ev->data);
      break;
    case event::kind::message_end:
      if (s.record)
        s.messages.emplace_back(c.msg_type, c.msg);
      s.notify();
      if (s.echo && !p.close_sent())
        p.send_message(c.msg_type, c.msg);
      if (s.on_message) {
        c.take_output(); // the echo (if any) goes out before what the callback sends
        const auto fn = s.on_message; // the callback may replace itself
        fn(c.id, c.msg_type, c.msg);
      }
      break;
    case event::kind::ping:
      if (s.answer_pings && !p.close_sent()) {
        const std::string payload(ev->data);
        p.send_pong(payload);
      }
      break;
    case event::kind::pong:
      ++s.pongs;
      s.notify();
      break;
    case event::kind::close:
      c.close_seen = true;
      if (s.record)
        s.closes.emplace_back(ev->code, std::string(ev->data));
      s.notify();
      // The core queued the echo with this event; dropping it leaves the core
      // believing it answered, so close_unanswered keeps the connection open.
      discard = !s.answer_close && !close_sent_before;
      c.close_unanswered = discard;
      break;
    case event::kind::error:
      break; // the core queued its close frame; the loop closes after the flush
    }
    c.take_output(discard);
  }
}

} // namespace tether::test
