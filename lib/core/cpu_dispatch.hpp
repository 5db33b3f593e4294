#pragma once
// Hot loops built for several x86-64 levels, one picked for this CPU when the
// program starts (GCC's function multiversioning, an ifunc): masking and the
// ASCII skip of UTF-8 checking run at memory speed without a -march that would
// make the library unusable on older CPUs. Elsewhere they are compiled once.
#include <cstddef> // defines __GLIBC__ (through <features.h>)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__) && defined(__GLIBC__)
#define TETHER_X86_MULTIVERSION 1
// One body, vectorised by the compiler for AVX-512, AVX2 and the baseline.
#define TETHER_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define TETHER_X86_MULTIVERSION 0
#define TETHER_CPU_CLONES
#endif
