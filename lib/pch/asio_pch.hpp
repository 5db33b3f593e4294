// Precompiled header for the Asio-heavy targets (stream, handler, their tests and tools).
#include <cstdlib> // before Asio: see lib/asio_impl.cpp

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>
