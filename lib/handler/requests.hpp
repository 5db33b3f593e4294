#pragma once
// The handler's pending acknowledged requests (handler::request): their ids,
// and what a reply, a timeout or the connection's end does to each. Runs on
// the handler's strand; the request's own coroutine waits on the entry's timer
// (set to its deadline) and is woken by cancelling it.
#include <tether/codec.hpp>
#include <tether/error.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <unordered_map>

#include "live.hpp"

namespace tether::detail {

struct pending_request {
  pending_request(const asio::any_io_executor& ex, std::string request_id, bool is_idempotent)
      : id(std::move(request_id)), idempotent(is_idempotent), timer(ex) {}
  live_token live_{detail::live().requests};
  std::string id;
  bool idempotent = false;
  asio::steady_timer timer;     // expires at the deadline; cancelled to wake the request
  std::uint64_t written_on = 0; // the connection that carried the latest copy (0: not written yet)
  bool done = false;            // a reply arrived, or `ec` ended it
  bool resend = false;          // idempotent, and its connection ended before the reply
  envelope reply;
  std::error_code ec;
};

class request_table {
public:
  /// `nonce` makes this handler's ids unique beyond its own lifetime and
  /// connections: "<16 hex digits>.<n>".
  explicit request_table(std::uint64_t nonce);

  /// A new entry with a fresh id, its timer set to `deadline`.
  std::shared_ptr<pending_request> open(const asio::any_io_executor& ex, bool idempotent,
                                        std::chrono::steady_clock::time_point deadline);
  void close(const std::shared_ptr<pending_request>& r) noexcept;

  enum class reply_kind { not_ours, delivered, late };
  /// A message with reply_to: hands it to its request. Ids of this handler
  /// whose request is gone (timed out, cancelled) are late replies.
  reply_kind deliver(envelope& env);

  /// The connection `id` ended: requests it carried fail with outcome_unknown,
  /// or, idempotent, are marked for re-sending.
  void connection_ended(std::uint64_t id);
  /// close(): every pending request fails with `ec`.
  void fail_all(std::error_code ec);

  std::size_t size() const noexcept { return pending_.size(); }

private:
  static void wake(pending_request& r) { r.timer.cancel(); }
  std::string prefix_;
  std::uint64_t next_ = 0;
  std::unordered_map<std::string, std::shared_ptr<pending_request>> pending_;
};

} // namespace tether::detail
