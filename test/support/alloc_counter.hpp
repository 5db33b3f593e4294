// Counts calls to the global operator new, for "allocates nothing" tests. This header
// DEFINES the replacement operators (which may not be inline): include it from exactly
// one translation unit per executable, or the program will not link.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace tether::test {

inline std::atomic<long> allocation_count{0};

// Calls to operator new so far in this process.
inline long allocations() { return allocation_count.load(); }

} // namespace tether::test

void* operator new(std::size_t n) {
  tether::test::allocation_count.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1))
    return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
