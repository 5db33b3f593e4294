#pragma once
// The most events in any span of time: how the rate-limit tests check
// "at most burst + rate x t in any window of length t".
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

namespace tether::test {

/// The most of the ascending times `at` within any span of length `span` (both ends included).
template <class TimePoint, class Duration>
std::size_t most_within(const std::vector<TimePoint>& at, Duration span) {
  std::size_t most = 0;
  for (std::size_t i = 0, j = 0; j < at.size(); ++j) {
    while (at[j] - at[i] > span)
      ++i;
    most = std::max(most, j - i + 1);
  }
  return most;
}

} // namespace tether::test
