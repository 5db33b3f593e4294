#include <cstdlib>

#include "requests.hpp"

#include <cstdio>

namespace tether::detail {

namespace {

// Ids are strings or numbers on the wire; numbers compare by their JSON text.
std::string id_text(const json& id) { return id.is_string() ? id.get<std::string>() : id.dump(); }

} // namespace

request_table::request_table(std::uint64_t nonce) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx.", static_cast<unsigned long long>(nonce));
  prefix_ = buf;
}

std::shared_ptr<pending_request> request_table::open(const asio::any_io_executor& ex, bool idempotent,
                                                     std::chrono::steady_clock::time_point deadline) {
  auto r = std::make_shared<pending_request>(ex, prefix_ + std::to_string(++next_), idempotent);
  r->timer.expires_at(deadline);
  pending_.emplace(r->id, r);
  return r;
}

void request_table::close(const std::shared_ptr<pending_request>& r) noexcept {
  auto it = pending_.find(r->id);
  if (it != pending_.end() && it->second == r)
    pending_.erase(it);
}

request_table::reply_kind request_table::deliver(envelope& env) {
  if (!env.reply_to)
    return reply_kind::not_ours;
  const auto id = id_text(*env.reply_to);
  if (id.compare(0, prefix_.size(), prefix_) != 0)
    return reply_kind::not_ours;
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second->done)
    return reply_kind::late;
  auto& r = *it->second;
  r.reply = std::move(env);
  r.done = true;
  wake(r);
  return reply_kind::delivered;
}

void request_table::connection_ended(std::uint64_t id) {
  for (auto& [key, r] : pending_) {
    if (r->done || r->written_on != id)
      continue;
    if (r->idempotent) {
      r->resend = true;
    } else {
      r->done = true;
      r->ec = make_error_code(error::outcome_unknown);
    }
    wake(*r);
  }
}

void request_table::fail_all(std::error_code ec) {
  for (auto& [key, r] : pending_) {
    if (r->done)
      continue;
    r->done = true;
    r->ec = ec;
    wake(*r);
  }
}

} // namespace tether::detail
