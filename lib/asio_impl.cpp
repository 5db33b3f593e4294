// Asio and Asio.SSL compiled once, for tether's own targets only: they are built
// with ASIO_SEPARATE_COMPILATION, which is never exported to consumers (a program
// that uses Asio header-only keeps linking against libtether).
// <cstdlib> first: Asio decides ASIO_HAS_STD_ALIGNED_ALLOC from libstdc++'s
// macros, so every TU must see them before Asio or the allocators differ (ODR).
#include <cstdlib>

#include <asio/impl/src.hpp>
#include <asio/ssl/impl/src.hpp>
