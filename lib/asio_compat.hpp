#pragma once
// Asio spells as_tuple, deferred and the awaitable operators under experimental::
// up to 1.23 (Debian 12 ships 1.22, our minimum); 1.24 moved as_tuple and deferred out.
// Everything in tether uses these names, so only this file knows the version.
#include <asio/version.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#if ASIO_VERSION >= 102400
#include <asio/as_tuple.hpp>
#include <asio/deferred.hpp>
#else
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
#endif

namespace tether::detail {

#if ASIO_VERSION >= 102400
using asio::as_tuple;
using asio::deferred;
#else
using asio::experimental::as_tuple;
using asio::experimental::deferred;
#endif

namespace awaitable_operators = asio::experimental::awaitable_operators;

/// use_awaitable that returns (error_code, ...) instead of throwing.
inline constexpr auto use_nothrow = as_tuple(asio::use_awaitable);

} // namespace tether::detail
