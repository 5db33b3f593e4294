#pragma once
// Counts live stream and handler states, so tests can check that nothing
// outlives its owner (coroutines share ownership of these states).
#include <atomic>

namespace tether::detail {

struct live_counts {
  std::atomic<long> streams{0};
  std::atomic<long> handlers{0};
  std::atomic<long> requests{0}; // handler::request entries, each with its deadline timer
};

live_counts& live() noexcept;

/// Adds one to `counter` for its lifetime (a member of the counted object).
struct live_token {
  explicit live_token(std::atomic<long>& c) noexcept : counter(c) { counter.fetch_add(1, std::memory_order_relaxed); }
  ~live_token() { counter.fetch_sub(1, std::memory_order_relaxed); }
  live_token(const live_token&) = delete;
  live_token& operator=(const live_token&) = delete;
  std::atomic<long>& counter;
};

} // namespace tether::detail
