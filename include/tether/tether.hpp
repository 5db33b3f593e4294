#pragma once
/// @file
/// The whole public API in one include: the handler (reconnects, routes,
/// heartbeat), the stream (one WebSocket connection), the router and codec,
/// the error codes and retry policy, and the sans-IO core (frames, protocol,
/// handshake, URLs). fmt formatters are in <tether/fmt.hpp>, which this header
/// does not include, so that it compiles the same with or without fmt.

#include <tether/codec.hpp>
#include <tether/deflate.hpp>
#include <tether/error.hpp>
#include <tether/extension.hpp>
#include <tether/frame.hpp>
#include <tether/handler.hpp>
#include <tether/pool.hpp>
#include <tether/handshake.hpp>
#include <tether/protocol.hpp>
#include <tether/retry.hpp>
#include <tether/router.hpp>
#include <tether/stream.hpp>
#include <tether/url.hpp>
