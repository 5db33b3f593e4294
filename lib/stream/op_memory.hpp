#pragma once
// Room inside the stream for the operation of its pending read, as Asio's
// "allocation" example does: the reader's reactor operation is built here
// instead of in a block from Asio's per-thread recycling cache. Those blocks
// are reused whole, so a read op sat in whatever larger block had been freed
// last: 608 bytes per connection on average in w4 (heaptrack), against the
// 256 here (a TCP read's op takes 225 to 256: 224 was too few). An operation
// that does not fit (TLS wraps the read in a larger one), or a second one
// while the room is taken, goes to the heap as before.
#include <cstddef>
#include <memory>
#include <new>

namespace tether::detail {

class op_memory {
public:
  static constexpr std::size_t size = 256;

  void* allocate(std::size_t n) {
    if (!in_use_ && n <= size) {
      in_use_ = true;
      return storage_;
    }
    return ::operator new(n);
  }
  void deallocate(void* p) noexcept {
    if (p == storage_)
      in_use_ = false;
    else
      ::operator delete(p);
  }

private:
  alignas(std::max_align_t) unsigned char storage_[size];
  bool in_use_ = false;
};

/// The allocator that binds a handler to an op_memory (asio::bind_allocator).
template <class T>
class op_allocator {
public:
  using value_type = T;
  explicit op_allocator(op_memory& m) noexcept : memory_(&m) {}
  template <class U>
  op_allocator(const op_allocator<U>& other) noexcept : memory_(other.memory_) {}

  T* allocate(std::size_t n) { return static_cast<T*>(memory_->allocate(sizeof(T) * n)); }
  void deallocate(T* p, std::size_t) noexcept { memory_->deallocate(p); }

  template <class U>
  bool operator==(const op_allocator<U>& other) const noexcept {
    return memory_ == other.memory_;
  }

private:
  template <class>
  friend class op_allocator;
  op_memory* memory_;
};

} // namespace tether::detail
