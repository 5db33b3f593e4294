#pragma once
// A first-in first-out queue over one std::vector: nothing is allocated until
// the first push, and a drained queue keeps its capacity. std::deque allocates
// its map and a 512-byte node at construction, which six queues per connection
// turned into 3.4 KiB of every idle connection (docs/benchmarks.md).
#include <algorithm>
#include <cstddef>
#include <iterator>
#include <utility>
#include <vector>

namespace tether::detail {

template <class T>
class fifo {
public:
  using iterator = typename std::vector<T>::iterator;

  bool empty() const noexcept { return head_ == items_.size(); }
  std::size_t size() const noexcept { return items_.size() - head_; }

  T& front() noexcept { return items_[head_]; }
  const T& front() const noexcept { return items_[head_]; }
  T& back() noexcept { return items_.back(); }
  const T& back() const noexcept { return items_.back(); }
  iterator begin() noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  iterator end() noexcept { return items_.end(); }

  template <class... Args>
  T& emplace_back(Args&&... args) {
    compact();
    return items_.emplace_back(std::forward<Args>(args)...);
  }
  void push_back(T v) { emplace_back(std::move(v)); }

  void pop_front() {
    items_[head_] = T(); // release what it holds now, not at the next compaction
    if (++head_ == items_.size())
      clear();
  }
  void pop_back() {
    items_.pop_back();
    if (empty())
      clear();
  }
  iterator insert(iterator pos, T v) { return items_.insert(pos, std::move(v)); }
  template <class It>
  iterator insert(iterator pos, It first, It last) {
    return items_.insert(pos, first, last);
  }
  iterator erase(iterator it) { return items_.erase(it); }
  iterator erase(iterator first, iterator last) { return items_.erase(first, last); }
  template <class Pred>
  void erase_if(Pred pred) {
    items_.erase(std::remove_if(begin(), end(), pred), end());
  }
  void clear() noexcept {
    items_.clear();
    head_ = 0;
  }

private:
  // Drops the popped slots once they are the larger part, so each element is
  // moved O(1) times on average and memory stays bounded by twice the content.
  void compact() {
    if (head_ > 16 && head_ * 2 > items_.size()) {
      items_.erase(items_.begin(), begin());
      head_ = 0;
    }
  }

  std::vector<T> items_;
  std::size_t head_ = 0;
};

} // namespace tether::detail
