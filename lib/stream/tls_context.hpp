#pragma once
// One OpenSSL client context per distinct TLS configuration, shared by every
// stream that uses it: an SSL_CTX with a parsed CA bundle is about 18 KiB and
// a file read per connection, for state that is the same (docs/benchmarks.md).
#include <tether/stream.hpp>

#include <asio/ssl/context.hpp>

#include <memory>
#include <string>
#include <system_error>

namespace tether::detail {

/// The client context for `tls` (TLS 1.2 minimum, verification per
/// insecure_skip_verify, CA and client certificate files loaded). Shared while
/// any stream holds it; a file changed on disk (its modification time or size)
/// gives a new context, so rotated certificates are read again. On failure
/// returns null with tls_failed's reason in `detail`. Thread safe.
std::shared_ptr<asio::ssl::context> client_tls_context(const tls_options& tls, std::string& detail);

} // namespace tether::detail
