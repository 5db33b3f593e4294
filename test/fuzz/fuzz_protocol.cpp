// Fuzzes the protocol core in one role (TETHER_FUZZ_SERVER), optionally with
// permessage-deflate negotiated (TETHER_FUZZ_DEFLATE: a third option byte picks
// context takeover and the server's window). Properties checked: parsing never
// crashes; chunking never changes the events (whole input versus cuts chosen by
// the input), nor does reading payload into the caller's memory (the stream's
// direct reads); after an error nothing more is emitted; no message exceeds the
// configured limit (also when inflating); a failure always queues a close frame.
#include <tether/protocol.hpp>
#if TETHER_FUZZ_DEFLATE
#include <tether/deflate.hpp>
#include <tether/error.hpp>
#endif

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
  std::size_t options = 2;
#if TETHER_FUZZ_DEFLATE
  if (size < 3)
    return 0;
  const std::uint8_t mode = data[2];
  options = 3;
#endif
  const std::string_view input(reinterpret_cast<const char*>(data) + options, size - options);
  auto make = [&] {
    tether::protocol made(o);
#if TETHER_FUZZ_DEFLATE
    tether::extension_offer answer{"permessage-deflate", {}};
    if (mode & 1)
      answer.params.emplace_back("server_no_context_takeover", std::nullopt);
    if (mode & 2)
      answer.params.emplace_back("server_max_window_bits", std::to_string(9 + (mode >> 2) % 7));
    tether::deflate_options d;
    d.server_max_window_bits = 15;
    auto ext = tether::make_permessage_deflate(d);
    TETHER_FUZZ_ASSERT(!ext->accept(answer));
    made.set_extension(std::move(ext));
#endif
    return made;
  };

  auto w = make();
  const auto whole = tether::test::run_split(w, input, {});

  // Cuts derived from the input itself, so the fuzzer explores chunkings too.
  std::vector<std::size_t> cuts;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < input.size() && cuts.size() < 64; i += 7) {
    pos += 1 + static_cast<unsigned char>(input[i]) % 13;
    if (pos >= input.size())
      break;
    cuts.push_back(pos);
  }
  auto p = make();
  const auto split = tether::test::run_split(p, input, cuts);
#if TETHER_FUZZ_DEFLATE
  // zlib notices corrupt deflate data at a point that depends on how the input
  // arrives, so the bytes of a message that fails to inflate (1007) may differ
  // with the chunking; every other event may not.
  auto settled = [](std::vector<tether::test::record> v) {
    if (v.empty() || v.back().error != tether::error::extension_failed)
      return v;
    std::size_t begin = v.size();
    while (begin > 0 && v[begin - 1].what != tether::event::kind::message_begin)
      --begin;
    for (std::size_t i = v.size() - 1; i > begin; --i)
      if (v[i - 1].what == tether::event::kind::data)
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(i - 1));
    return v;
  };
  TETHER_FUZZ_ASSERT(settled(whole) == settled(split));
#else
  TETHER_FUZZ_ASSERT(whole == split);
#endif
  // Reading payload straight into the reader's memory changes nothing either.
  auto d = make();
  const auto direct = tether::test::run_direct(d, input, 1 + data[1] % 64);
#if TETHER_FUZZ_DEFLATE
  TETHER_FUZZ_ASSERT(settled(direct) == settled(whole));
#else
  TETHER_FUZZ_ASSERT(direct == whole);
#endif

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
