// tether::status as JSON, connection_state and offline_policy names: the formats scripts read
// (docs/handler.md has the table).
#include <tether/handler.hpp>

namespace tether {

const char* to_string(connection_state s) noexcept {
  switch (s) {
  case connection_state::idle: return "idle";
  case connection_state::connecting: return "connecting";
  case connection_state::open: return "open";
  case connection_state::reconnecting: return "reconnecting";
  case connection_state::closing: return "closing";
  case connection_state::closed: return "closed";
  case connection_state::failed: return "failed";
  }
  return "unknown";
}

const char* to_string(offline_policy p) noexcept {
  switch (p) {
  case offline_policy::wait: return "wait";
  case offline_policy::fail: return "fail";
  case offline_policy::drop_oldest: return "drop_oldest";
  case offline_policy::drop_newest: return "drop_newest";
  }
  return "unknown";
}

const char* to_string(route_kind k) noexcept {
  switch (k) {
  case route_kind::text: return "text";
  case route_kind::binary: return "binary";
  case route_kind::any: return "any";
  }
  return "unknown";
}

json status::to_json() const {
  auto opt = [](const auto& v) -> json { return v ? json(*v) : json(nullptr); };
  json j = json::object();
  j["connected"] = connected;
  j["state"] = state;
  j["retries"] = retries;
  j["reconnects"] = reconnects;
  j["messages_sent"] = messages_sent;
  j["messages_received"] = messages_received;
  j["bytes_sent"] = bytes_sent;
  j["bytes_received"] = bytes_received;
  j["last_ping"] = opt(last_ping);
  j["last_pong"] = opt(last_pong);
  j["rtt_ms"] = opt(rtt_ms);
  j["extensions"] = opt(extensions);
  j["queued"] = queued;
  j["queued_bytes"] = queued_bytes;
  j["dropped"] = dropped;
  j["last_error"] = opt(last_error);
  j["invalid_messages"] = invalid_messages;
  j["unrouted"] = unrouted;
  j["pending_requests"] = pending_requests;
  j["late_replies"] = late_replies;
  j["subscriptions"] = subscriptions;
  j["refused_subscriptions"] = refused_subscriptions;
  j["publications"] = publications;
  j["throttled"] = throttled;
  j["rate_limited"] = rate_limited;
  j["batches"] = batches;
  return j;
}

} // namespace tether
