#pragma once
/// @file
/// TETHER_API marks what the library exports; everything else is built with
/// hidden visibility (smaller tables, faster loading, no accidental ABI).
#if defined(_WIN32)
#define TETHER_API
#else
#define TETHER_API __attribute__((visibility("default")))
#endif
