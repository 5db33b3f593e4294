#pragma once
// The handler's and the pool's strand, held as an any_io_executor.
//
// asio::strand<any_io_executor> is too large for any_io_executor's inline
// storage (24 bytes), so every copy of it touched a shared count and every
// post, dispatch and coroutine resumption on it, which derives an executor with
// other properties (blocking.never, relationship.fork, ...), allocated one: about
// eight allocations per routed message. Over an io_context's own executor the
// strand is 24 bytes and stays inline; other executors keep the generic strand.

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>

namespace tether::detail {

using io_strand = asio::strand<asio::io_context::executor_type>;
using any_strand = asio::strand<asio::any_io_executor>;

inline asio::any_io_executor make_strand(const asio::any_io_executor& ex) {
  if (const auto* io = ex.target<asio::io_context::executor_type>())
    return io_strand(*io);
  return any_strand(ex);
}

// True if the caller runs inside `strand` (one made by make_strand).
inline bool running_in(const asio::any_io_executor& strand) noexcept {
  if (const auto* s = strand.target<io_strand>())
    return s->running_in_this_thread();
  return strand.target<any_strand>()->running_in_this_thread();
}

} // namespace tether::detail
