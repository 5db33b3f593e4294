// autobahn-client: drives Autobahn|Testsuite's fuzzingserver (docs/conformance.md).
//
//   autobahn-client [--url ws://127.0.0.1:9001] [--agent tether] [--cases N,M,...]
//
// Asks URL/getCaseCount, runs every case (or the listed ones) as an echo client
// on URL/runCase?case=i&agent=NAME, then asks URL/updateReports?agent=NAME to
// write the reports. stdout has exactly one line per case:
//
//   case 17/517 ... ok            the server closed with 1000
//   case 17/517 ... closed CODE   the server closed with another code (1005: none)
//   case 17/517 ... error MSG     the connection failed (for a case that sends a
//                                 protocol violation, that is the expected outcome)
//
// Whether a case passed is decided by the fuzzingserver and lands in its report;
// these lines are progress only. Exit status: 0, unless getCaseCount fails (1)
// or the command line is wrong (2).
#include <tether/stream.hpp>

#include "asio_compat.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>

#include <fmt/core.h>

#include <charconv>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

constexpr std::size_t mib = 1024 * 1024;

struct options {
  std::string url = "ws://127.0.0.1:9001";
  std::string agent = "tether";
  std::vector<int> cases; ///< Empty: all of them.
};

void usage(std::FILE* to) {
  fmt::print(to,
             "usage: autobahn-client [--url ws://127.0.0.1:9001] [--agent tether] [--cases N,M,...]\n"
             "Runs Autobahn|Testsuite fuzzingserver cases as an echo client; see docs/conformance.md.\n");
}

bool parse_int(std::string_view text, int& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && out > 0;
}

bool parse_cases(std::string_view list, std::vector<int>& out) {
  while (!list.empty()) {
    auto comma = list.find(',');
    int n = 0;
    if (!parse_int(list.substr(0, comma), n))
      return false;
    out.push_back(n);
    if (comma == std::string_view::npos)
      break;
    list.remove_prefix(comma + 1);
  }
  return !out.empty();
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for the agent name).
std::string query_escape(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved)
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

tether::stream_options stream_options() {
  tether::stream_options o;
  // Case 9.x sends messages and frames of up to 16 MiB.
  o.max_message_size = 64 * mib;
  o.max_frame_size = 64 * mib;
  o.max_read_queue_bytes = 64 * mib;
  // Sections 12 and 13: offer permessage-deflate with a bare
  // client_max_window_bits, so the fuzzingserver may pick any window for us
  // (cases 13.x answer 9 to 15), and compress every message.
  o.compression = tether::compression::automatic;
  o.deflate.window_bits = 15;
  o.deflate.threshold = 0;
  return o;
}

/// Finishes the close handshake the server started; its outcome no longer matters.
asio::awaitable<void> finish_close(tether::stream& ws) {
  std::error_code ignored;
  co_await ws.close(1000, std::string_view(), ignored);
}

asio::awaitable<int> case_count(const options& opt) {
  auto this_ex = co_await asio::this_coro::executor;
  tether::stream ws(this_ex, stream_options());
  co_await ws.connect(opt.url + "/getCaseCount");
  std::string buffer;
  int count = 0;
  for (;;) {
    auto r = co_await ws.read(buffer);
    if (r.kind == tether::message_kind::close)
      break;
    if (!parse_int(buffer, count))
      throw std::runtime_error(fmt::format("getCaseCount: not a case count: '{}'", buffer));
  }
  co_await finish_close(ws);
  if (count == 0)
    throw std::runtime_error("getCaseCount: the server closed without sending a count");
  co_return count;
}

/// Echoes every message of one case until the server closes; returns the line's verdict.
asio::awaitable<std::string> run_case(const options& opt, int index) {
  std::string verdict;
  try {
    auto this_ex = co_await asio::this_coro::executor;
    tether::stream ws(this_ex, stream_options());
    co_await ws.connect(fmt::format("{}/runCase?case={}&agent={}", opt.url, index, query_escape(opt.agent)));
    std::string buffer;
    for (;;) {
      auto r = co_await ws.read(buffer);
      if (r.kind == tether::message_kind::close) {
        verdict = r.close_code == 1000 ? std::string("ok") : fmt::format("closed {}", r.close_code);
        break;
      }
      co_await ws.send(buffer, r.kind);
    }
    co_await finish_close(ws);
  } catch (const std::exception& e) {
    verdict = fmt::format("error {}", e.what());
  }
  co_return verdict;
}

/// Asks the server to write its reports; they are written before it answers our close.
asio::awaitable<void> update_reports(const options& opt) {
  auto o = stream_options();
  o.close_timeout = std::chrono::seconds(120); // Report generation for all cases takes a while.
  auto this_ex = co_await asio::this_coro::executor;
  tether::stream ws(this_ex, o);
  co_await ws.connect(fmt::format("{}/updateReports?agent={}", opt.url, query_escape(opt.agent)));
  co_await ws.close();
}

asio::awaitable<int> run(const options& opt) {
  int count = 0;
  try {
    count = co_await case_count(opt);
  } catch (const std::exception& e) {
    fmt::print(stderr, "autobahn-client: cannot get the case count from {}: {}\n", opt.url, e.what());
    co_return 1;
  }
  std::vector<int> cases = opt.cases;
  if (cases.empty()) {
    for (int i = 1; i <= count; ++i)
      cases.push_back(i);
  }
  fmt::print(stderr, "autobahn-client: {} of {} cases as agent '{}'\n", cases.size(), count, opt.agent);
  for (int index : cases) {
    std::string verdict = co_await run_case(opt, index);
    fmt::print("case {}/{} ... {}\n", index, count, verdict);
    std::fflush(stdout);
  }
  try {
    co_await update_reports(opt);
    fmt::print(stderr, "autobahn-client: reports updated\n");
  } catch (const std::exception& e) {
    fmt::print(stderr, "autobahn-client: updateReports failed: {}\n", e.what());
  }
  co_return 0;
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto a = args[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    }
    if (i + 1 >= args.size() || (a != "--url" && a != "--agent" && a != "--cases")) {
      fmt::print(stderr, "autobahn-client: bad argument '{}'\n", a);
      usage(stderr);
      return 2;
    }
    auto value = args[++i];
    if (a == "--url") {
      opt.url = value;
    } else if (a == "--agent") {
      opt.agent = value;
    } else if (!parse_cases(value, opt.cases)) {
      fmt::print(stderr, "autobahn-client: --cases wants positive numbers separated by commas, got '{}'\n", value);
      return 2;
    }
  }
  while (!opt.url.empty() && opt.url.back() == '/')
    opt.url.pop_back();

  asio::io_context ctx(1);
  int status = 1;
  auto done = [&status](std::exception_ptr e, int rc) {
    status = rc;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        fmt::print(stderr, "autobahn-client: {}\n", x.what());
      }
      status = 1;
    }
  };
  asio::co_spawn(ctx, run(opt), done);
  ctx.run();
  return status;
}
