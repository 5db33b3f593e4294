// Fuzzes the protocol core in one role (TETHER_FUZZ_SERVER). Properties checked:
// parsing never crashes; chunking never changes the events (whole input versus
// cuts chosen by the input); after an error nothing more is emitted; no message
// exceeds the configured limit; a failure always queues a close frame.
#include <tether/protocol.hpp>

#include <cstdint>
#include <string_view>
#include <vector>

#include "events.hpp"
#include "fuzz_assert.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2)
    return 0;
  tether::protocol_options o;
  o.role = TETHER_FUZZ_SERVER ? tether::role::server : tether::role::client;
  o.max_message_size = 1u << (data[0] % 20); // small limits reach the limit paths
  o.max_frame_size = 1u << (data[1] % 20);
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);

  const auto whole = tether::test::run_whole(o, input);

  // Cuts derived from the input itself, so the fuzzer explores chunkings too.
  std::vector<std::size_t> cuts;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < input.size() && cuts.size() < 64; i += 7) {
    pos += 1 + static_cast<unsigned char>(input[i]) % 13;
    if (pos >= input.size())
      break;
    cuts.push_back(pos);
  }
  tether::protocol p(o);
  const auto split = tether::test::run_split(p, input, cuts);
  TETHER_FUZZ_ASSERT(whole == split);

  bool errored = false;
  std::size_t message = 0;
  for (const auto& r : whole) {
    TETHER_FUZZ_ASSERT(!errored); // nothing after an error
    if (r.what == tether::event::kind::error)
      errored = true;
    if (r.what == tether::event::kind::message_begin)
      message = 0;
    if (r.what == tether::event::kind::data)
      message += r.data.size();
    TETHER_FUZZ_ASSERT(message <= o.max_message_size);
  }
  if (p.failed())
    TETHER_FUZZ_ASSERT(p.close_sent() && !p.pending_output().empty());
  return 0;
}
