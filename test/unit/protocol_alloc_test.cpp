// "No allocation per frame in the steady state": counts calls to operator new
// while a warmed-up client and server exchange messages.
#include <doctest/doctest.h>
#include <tether/protocol.hpp>

#include "alloc_counter.hpp"

using namespace tether;

namespace {

// Sends `count` messages (some fragmented, with pings) from client to server and
// back; returns the number of events seen.
long exchange(protocol& client, protocol& server, const std::string& payload, int count) {
  long events = 0;
  for (int i = 0; i < count; ++i) {
    (void)client.send_frame(opcode::text, std::string_view(payload).substr(0, 400), false);
    (void)client.send_ping("hb");
    (void)client.send_frame(opcode::continuation, std::string_view(payload).substr(400), true);
    auto out = client.pending_output();
    // Deliver in two pieces, as a socket might.
    auto buf = server.prepare(out.size());
    std::copy(out.begin(), out.end(), buf.begin());
    server.commit(out.size());
    client.consume_output(out.size());
    while (auto ev = server.next_event())
      ++events;
    (void)server.send_message(opcode::binary, payload);
    auto back = server.pending_output();
    client.feed(back);
    server.consume_output(back.size());
    while (auto ev = client.next_event())
      ++events;
    client.consume_output(client.pending_output().size()); // nothing queued, but be sure
  }
  return events;
}

} // namespace

TEST_CASE("steady state allocates nothing per frame") {
  protocol_options so;
  so.role = role::server;
  protocol client, server(so);
  const std::string payload(1000, 'x');
  exchange(client, server, payload, 10); // warm up: buffers reach their working size
  const long before = tether::test::allocations();
  const long events = exchange(client, server, payload, 1000);
  const long after = tether::test::allocations();
  CHECK(events >= 1000 * 7);
  CHECK(after - before == 0);
}
