// detail::fifo (lib/stream/fifo.hpp), the queue of the stream and the handler,
// against std::deque as the reference, over random operations.
#include <doctest/doctest.h>

#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "seed.hpp"
#include "stream/fifo.hpp"

using tether::detail::fifo;

TEST_CASE("fifo behaves as std::deque under random pushes, pops, erasures and inserts") {
  std::mt19937_64 rng(tether::test::seed());
  fifo<std::string> q;
  std::deque<std::string> ref;
  for (int step = 0; step < 20000; ++step) {
    const auto op = rng() % 10;
    if (op < 5) {
      auto v = std::to_string(step);
      q.push_back(v);
      ref.push_back(v);
    } else if (op < 8 && !ref.empty()) {
      CHECK(q.front() == ref.front());
      q.pop_front();
      ref.pop_front();
    } else if (op == 8 && !ref.empty()) {
      CHECK(q.back() == ref.back());
      q.pop_back();
      ref.pop_back();
    } else if (op == 9) {
      const auto digit = static_cast<char>('0' + rng() % 10);
      q.erase_if([digit](const std::string& s) { return s.back() == digit; });
      std::erase_if(ref, [digit](const std::string& s) { return s.back() == digit; });
      auto pos = q.begin() + static_cast<std::ptrdiff_t>(q.empty() ? 0 : rng() % q.size());
      const auto at = pos - q.begin();
      q.insert(pos, "inserted");
      ref.insert(ref.begin() + at, "inserted");
    }
    REQUIRE(q.size() == ref.size());
    REQUIRE(q.empty() == ref.empty());
  }
  CHECK(std::vector<std::string>(q.begin(), q.end()) == std::vector<std::string>(ref.begin(), ref.end()));
}

TEST_CASE("fifo: a popped element releases what it holds at once, not at the next compaction") {
  fifo<std::shared_ptr<int>> q;
  auto first = std::make_shared<int>(1);
  auto second = std::make_shared<int>(2);
  q.push_back(first);
  q.push_back(second);
  CHECK(first.use_count() == 2);
  q.pop_front(); // its slot stays in the vector until compaction
  CHECK(first.use_count() == 1);
  CHECK(*q.front() == 2);
  q.clear();
  CHECK(second.use_count() == 1);
  CHECK(q.empty());
}
