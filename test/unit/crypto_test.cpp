// The core's random bytes (lib/core/crypto): the per-thread pool behind frame
// masks and handshake nonces hands each byte out once, in every thread and in
// a forked child.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <set>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "crypto.hpp"

using tether::detail::pooled_random_bytes;

namespace {
using key = std::array<unsigned char, 16>;

key draw() {
  key k{};
  REQUIRE(pooled_random_bytes(k));
  return k;
}
} // namespace

TEST_CASE("pooled_random_bytes: no two draws alike, across refills of the pool") {
  std::set<key> seen;
  for (int i = 0; i < 1000; ++i) // 16 KB: four refills of the 4 KiB pool
    CHECK(seen.insert(draw()).second);
}

TEST_CASE("pooled_random_bytes: threads draw from pools of their own, never the same bytes") {
  std::vector<key> a(300), b(300);
  std::thread other([&b] {
    for (auto& k : b)
      k = draw();
  });
  for (auto& k : a)
    k = draw();
  other.join();
  std::set<key> seen(a.begin(), a.end());
  CHECK(seen.size() == a.size());
  for (const auto& k : b)
    CHECK(seen.insert(k).second);
}

TEST_CASE("pooled_random_bytes: a forked child never hands out its parent's next bytes") {
  (void)draw(); // the pool now holds bytes the parent has not used yet
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    key k{};
    const bool ok = pooled_random_bytes(k);
    const bool sent = write(fds[1], k.data(), k.size()) == static_cast<ssize_t>(k.size());
    _exit(ok && sent ? 0 : 1);
  }
  close(fds[1]);
  const key parent = draw();
  key child{};
  const auto n = read(fds[0], child.data(), child.size());
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(n == static_cast<ssize_t>(child.size()));
  CHECK(child != parent);
}

TEST_CASE("pooled_random_bytes: a large request is filled whole") {
  std::vector<unsigned char> big(64 * 1024, 0);
  REQUIRE(pooled_random_bytes(big));
  // 64 KiB of zeros from a CSPRNG would be a broken generator; expect about 256 zero bytes.
  CHECK(std::count(big.begin(), big.end(), 0) < 1024);
}
