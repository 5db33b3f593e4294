// Masking throughput against memcpy on the same buffer (the floor: masking must
// touch every byte once; issue 9's target: >= 0.8 x memcpy at 64 KiB and 1 MiB),
// in place (apply_mask) and as the copy into the output buffer (mask_copy).
// Also the frame parse rate: a server-role protocol core reading masked text
// frames of 32 B, 1 KiB and 64 KiB (what an echo server's receive path does).
#include <tether/frame.hpp>
#include <tether/protocol.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

template <class F>
double gb_per_s(std::size_t bytes_per_call, F&& f) {
  using clock = std::chrono::steady_clock;
  // Run for at least 0.5 s to get past frequency ramps and cache warm-up.
  std::size_t calls = 0;
  const auto start = clock::now();
  auto now = start;
  do {
    for (int i = 0; i < 64; ++i)
      f();
    calls += 64;
    now = clock::now();
  } while (now - start < std::chrono::milliseconds(500));
  const double s = std::chrono::duration<double>(now - start).count();
  return static_cast<double>(bytes_per_call * calls) / s / 1e9;
}

} // namespace

int main() {
  for (std::size_t size : {std::size_t{1024}, std::size_t{64 * 1024}, std::size_t{1024 * 1024}}) {
    std::vector<std::uint8_t> buf(size, 0x5A), dst(size);
    const std::array<std::uint8_t, 4> key{0x37, 0xfa, 0x21, 0x3d};
    const double mask = gb_per_s(size, [&] { tether::apply_mask(buf, key, 1); });
    const double copy = gb_per_s(size, [&] {
      std::memcpy(dst.data(), buf.data(), size);
      asm volatile("" : : "r"(dst.data()) : "memory"); // keep the copy
    });
    const double mask_copy = gb_per_s(size, [&] {
      tether::mask_copy(dst, buf, key, 1); // what a client's send does: copy into the output and mask
      asm volatile("" : : "r"(dst.data()) : "memory");
    });
    std::printf("size %8zu: apply_mask %6.2f GB/s, mask_copy %6.2f GB/s, memcpy %6.2f GB/s, ratio %.2f / %.2f\n", size,
                mask, mask_copy, copy, mask / copy, mask_copy / copy);
  }

  // Parse throughput: a server-role core fed ~1 MiB of masked text frames at a time.
  for (std::size_t size : {std::size_t{32}, std::size_t{1024}, std::size_t{64 * 1024}}) {
    tether::protocol client;
    const std::string payload(size, 'a');
    const std::size_t frames = std::max<std::size_t>(1, 1024 * 1024 / size);
    for (std::size_t i = 0; i < frames; ++i)
      (void)client.send_message(tether::opcode::text, payload);
    const std::string wire(client.pending_output());
    tether::protocol_options so;
    so.role = tether::role::server;
    tether::protocol server(so);
    std::size_t messages = 0;
    const double parse = gb_per_s(wire.size(), [&] {
      server.feed(wire);
      while (auto ev = server.next_event())
        messages += ev->what == tether::event::kind::message_end;
    });
    const double frames_per_s = parse * 1e9 / static_cast<double>(wire.size()) * static_cast<double>(frames);
    std::printf("parse %6zu B masked text frames: %6.2f GB/s, %10.0f frames/s\n", size, parse, frames_per_s);
    if (messages == 0)
      return 1;
  }
  return 0;
}
