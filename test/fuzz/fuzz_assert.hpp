// The property check shared by the libFuzzer targets: a violation traps, so libFuzzer
// records the input (and a corpus replay in an ordinary build fails its test).
#pragma once

#define TETHER_FUZZ_ASSERT(x) \
  do {                        \
    if (!(x))                 \
      __builtin_trap();       \
  } while (0)
