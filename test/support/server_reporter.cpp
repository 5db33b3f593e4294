// Makes an error of the loopback server (demo/server/test_server) a doctest
// failure of the test that owned the server. Compiled into every executable
// that uses test_server_dep (a source of the dependency, so the initialiser
// cannot be dropped by the linker).
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "test_server.hpp"

namespace {

const bool installed = [] {
  tether::test::set_failure_reporter([](const std::string& what) {
    if (doctest::is_running_in_test)
      FAIL_CHECK(what);
    else
      std::fprintf(stderr, "%s\n", what.c_str());
  });
  return true;
}();

} // namespace
