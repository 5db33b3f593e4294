// The core compiled and run with -fno-exceptions (lib/core's
// tether_core_noexcept): a client handshake key and its accept, a masked
// frame parsed back by a server-role protocol, a violation ending in its close
// code, and deflate options out of range giving no extension. Plain main(),
// no test framework (doctest wants exceptions); exits 1 on the first failure.
#include <tether/deflate.hpp>
#include <tether/error.hpp>
#include <tether/handshake.hpp>
#include <tether/protocol.hpp>

#include <cstdio>
#include <string>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

} // namespace

int main() {
  using namespace tether;
  // RFC 6455 §1.3's example, and a fresh key of 16 random bytes.
  check(compute_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "compute_accept");
  const auto key = generate_key();
  check(key.size() == 24 && key != generate_key(), "generate_key");

  protocol_options co;
  co.role = role::client;
  protocol client(co);
  check(!client.send_frame(opcode::text, "hello", true), "a client frame is queued");
  protocol_options so;
  so.role = role::server;
  protocol server(so);
  server.feed(client.pending_output());
  std::string got;
  bool ended = false;
  while (auto ev = server.next_event()) {
    if (ev->what == event::kind::data)
      got += std::string(ev->data);
    ended = ended || ev->what == event::kind::message_end;
  }
  check(got == "hello" && ended, "the server reads the masked frame");

  // An unmasked frame from a client is a protocol error: 1002.
  protocol strict(so);
  strict.feed(std::string("\x81\x02hi", 4));
  bool closed_1002 = false;
  while (auto ev = strict.next_event())
    closed_1002 = closed_1002 || (ev->what == event::kind::error && ev->code == 1002);
  check(closed_1002, "an unmasked client frame fails with 1002");

  deflate_options bad;
  bad.level = 42;
  check(make_permessage_deflate(bad) == nullptr, "deflate options out of range: no extension");

  if (failures == 0)
    std::puts("ok");
  return failures == 0 ? 0 : 1;
}
