#pragma once
// What the peer clients (beast_client.cpp, websocketpp_client.cpp) share with
// bench-client: its command line, its payload stamps and echo check, and its
// JSON line, so every client runs and reports the same workload the same way.
// C++17 (websocketpp's headers compile only as C++17); no tether, no fmt.
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

using clock = std::chrono::steady_clock;

struct config {
  std::string url;
  std::size_t connections = 1;
  std::size_t messages = 1000;
  std::size_t size = 64;
  std::size_t window = 1;
  bool binary = false;
};

/// ws://host[:port][/path], as far as these clients need it.
struct ws_url {
  std::string host;
  std::string port = "80";
  std::string target = "/";
};

inline bool parse_url(const std::string& url, ws_url& out) {
  constexpr std::string_view scheme = "ws://";
  if (url.compare(0, scheme.size(), scheme) != 0)
    return false;
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  if (slash != std::string::npos) {
    out.target = rest.substr(slash);
    rest.resize(slash);
  }
  auto colon = rest.rfind(':');
  if (colon != std::string::npos) {
    out.port = rest.substr(colon + 1);
    rest.resize(colon);
  }
  out.host = rest;
  return !out.host.empty() && !out.port.empty();
}

inline void usage(const char* name, std::FILE* to) {
  std::fprintf(to,
               "usage: %s --url ws://HOST:PORT/ --connections C --messages N --size S --window W [--binary]\n"
               "Sends N messages of S bytes on each of C connections to an echo server, at most W\n"
               "in flight per connection; prints one JSON line of results (as bench-client).\n",
               name);
}

inline bool parse_size(std::string_view text, std::size_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

/// 0 to go on, -1 after --help, else the exit status (2: bad command line).
inline int parse_args(const char* name, int argc, char** argv, config& cfg) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto a = args[i];
    if (a == "--help" || a == "-h") {
      usage(name, stdout);
      return -1;
    }
    if (a == "--binary") {
      cfg.binary = true;
      continue;
    }
    std::size_t* number = a == "--connections" ? &cfg.connections
                          : a == "--messages"  ? &cfg.messages
                          : a == "--size"      ? &cfg.size
                          : a == "--window"    ? &cfg.window
                                               : nullptr;
    if ((a != "--url" && !number) || i + 1 >= args.size()) {
      std::fprintf(stderr, "%s: bad argument '%.*s'\n", name, static_cast<int>(a.size()), a.data());
      usage(name, stderr);
      return 2;
    }
    auto value = args[++i];
    if (!number) {
      cfg.url = std::string(value);
    } else if (!parse_size(value, *number) || (*number == 0 && number != &cfg.size)) {
      std::fprintf(stderr, "%s: %.*s wants a number%s, got '%.*s'\n", name, static_cast<int>(a.size()), a.data(),
                   number == &cfg.size ? "" : " above 0", static_cast<int>(value.size()), value.data());
      return 2;
    }
  }
  ws_url u;
  if (cfg.url.empty() || !parse_url(cfg.url, u)) {
    std::fprintf(stderr, "%s: --url ws://HOST:PORT/ is required\n", name);
    usage(name, stderr);
    return 2;
  }
  return 0;
}

// Message i's first, middle and last bytes, exactly as bench-client stamps them.
inline char first_byte(const config& cfg, std::size_t i) {
  return cfg.binary ? static_cast<char>(i & 0xff) : static_cast<char>('a' + i % 26);
}
inline char last_byte(const config& cfg, std::size_t i) {
  return cfg.binary ? static_cast<char>((i >> 8) & 0xff) : static_cast<char>('A' + (i / 26) % 26);
}
inline char fill_byte(const config& cfg) { return cfg.binary ? static_cast<char>(0xa5) : 'x'; }

inline void stamp(std::string& payload, const config& cfg, std::size_t i) {
  if (payload.empty())
    return;
  payload.back() = last_byte(cfg, i);
  payload.front() = first_byte(cfg, i);
}

inline bool echo_matches(std::string_view got, const config& cfg, std::size_t i) {
  if (got.size() != cfg.size)
    return false;
  if (got.empty())
    return true;
  if (got.front() != first_byte(cfg, i))
    return false;
  if (got.size() > 1 && got.back() != last_byte(cfg, i))
    return false;
  return got.size() < 3 || got[got.size() / 2] == fill_byte(cfg);
}

/// This program's peak resident set, in KiB: VmHWM from /proc/self/status.
/// (getrusage's ru_maxrss would also count the image of the parent this process
/// was forked from: Linux carries the maximum across execve, so every client
/// started by compare.py would report Python's size.)
inline long peak_rss_kb() {
  long kb = -1;
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f))
      if (std::strncmp(line, "VmHWM:", 6) == 0) {
        kb = std::strtol(line + 6, nullptr, 10);
        break;
      }
    std::fclose(f);
  }
  if (kb < 0) {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    kb = ru.ru_maxrss;
  }
  return kb;
}

inline double rounded(double x, double scale) { return std::round(x * scale) / scale; }

inline std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

/// bench-client's JSON result object for `client` (every client's line has
/// these keys in this order); rtt_ns is sorted here.
inline nlohmann::ordered_json result_line(const char* client, std::size_t connections, std::size_t messages,
                                          std::size_t size, std::size_t window, std::vector<std::int64_t>& rtt_ns,
                                          clock::time_point start, clock::time_point end) {
  std::sort(rtt_ns.begin(), rtt_ns.end());
  const double seconds = std::chrono::duration<double>(end - start).count();
  const double total = static_cast<double>(connections * messages);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  nlohmann::ordered_json result;
  result["client"] = client;
  result["connections"] = connections;
  result["messages"] = connections * messages;
  result["size"] = size;
  result["window"] = window;
  result["seconds"] = rounded(seconds, 1e6);
  result["msgs_per_s"] = rounded(total / seconds, 10);
  result["mb_per_s"] = rounded(total * static_cast<double>(size) / seconds / 1e6, 1e3);
  result["p50_us"] = rounded(static_cast<double>(percentile(rtt_ns, 0.50)) / 1e3, 10);
  result["p99_us"] = rounded(static_cast<double>(percentile(rtt_ns, 0.99)) / 1e3, 10);
  result["max_rss_kb"] = peak_rss_kb();
  result["cpu_s"] = rounded(secs(ru.ru_utime) + secs(ru.ru_stime), 1e6);
  return result;
}

/// Prints bench-client's JSON line for `client`.
inline void print_result(const char* client, const config& cfg, std::vector<std::int64_t>& rtt_ns,
                         clock::time_point start, clock::time_point end) {
  const auto result = result_line(client, cfg.connections, cfg.messages, cfg.size, cfg.window, rtt_ns, start, end);
  std::printf("%s\n", result.dump().c_str());
  std::fflush(stdout);
}

} // namespace bench
