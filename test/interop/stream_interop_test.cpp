// tether::stream against real third-party servers: Python websockets and Node ws.
#include <doctest/doctest.h>
#include <tether/error.hpp>
#include <tether/stream.hpp>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <nlohmann/json.hpp>
#include <cstdlib>
#include <stdlib.h>
#include <ostream>
#include <random>

#include "peer.hpp"
#include "run.hpp"
#include "seed.hpp"

using namespace tether;
using namespace tether::test;
using asio::awaitable;

namespace {

std::string pattern(std::size_t n, std::uint64_t salt) {
  std::string s(n, '\0');
  std::mt19937_64 rng(seed() + salt);
  for (auto& c : s)
    c = static_cast<char>(rng());
  return s;
}

stream_options big_limits() {
  stream_options o;
  o.max_message_size = 17 * 1024 * 1024;
  return o;
}

void echo_sizes(peer_kind kind) {
  peer_process peer(kind);
  run_async([&](asio::io_context& io) -> awaitable<void> {
    stream ws(io.get_executor(), big_limits());
    co_await ws.connect(peer.url());
    std::string buf;
    for (std::size_t n : {0u, 1u, 125u, 126u, 65535u, 65536u, 1u << 20, 16u << 20}) {
      CAPTURE(n);
      const auto bin = pattern(n, n);
      co_await ws.send(bin, message_kind::binary);
      auto r = co_await ws.read(buf);
      CHECK(r.kind == message_kind::binary);
      CHECK(buf == bin);
      const std::string text(n, 'x');
      co_await ws.send(text, message_kind::text);
      r = co_await ws.read(buf);
      CHECK(r.kind == message_kind::text);
      CHECK(buf == text);
    }
    co_await ws.close(1000, "done");
  });
  auto closed = peer.next_closed(std::chrono::seconds(5));
  REQUIRE(closed);
  CHECK(*closed == "closed 1000 done");
}

/// Text that compresses well: words from a small vocabulary.
std::string words(std::size_t n, std::uint64_t salt) {
  static const char* vocabulary[] = {"tether ", "deflate ", "window ", "{\"path\": ", "\"data\" ", "42, "};
  std::mt19937_64 rng(seed() + salt);
  std::string s;
  while (s.size() < n)
    s += vocabulary[rng() % 6];
  s.resize(n);
  return s;
}

/// permessage-deflate with a peer started with `--deflate SPEC`: the server's
/// answer has `param` (if not empty), and messages of every size come back.
void deflate_echo(peer_kind kind, const std::string& spec, const std::string& param) {
  CAPTURE(peer_process::name(kind));
  CAPTURE(spec);
  peer_process peer(kind, {"--deflate", spec});
  run_async([&](asio::io_context& io) -> awaitable<void> {
    stream ws(io.get_executor(), big_limits());
    co_await ws.connect(peer.url());
    REQUIRE(ws.response().extensions.size() == 1);
    const auto accepted = format_extension(ws.response().extensions[0]);
    CAPTURE(accepted);
    CHECK(ws.response().extensions[0].name == "permessage-deflate");
    if (!param.empty())
      CHECK(accepted.find(param) != std::string::npos);
    std::string buf;
    for (std::size_t n : {0u, 1u, 31u, 32u, 125u, 4096u, 65536u, 200000u, 1u << 20}) {
      CAPTURE(n);
      const auto text = words(n, n);
      co_await ws.send(text, message_kind::text);
      auto r = co_await ws.read(buf);
      CHECK(r.kind == message_kind::text);
      CHECK(buf == text);
      const auto bin = pattern(n, n); // random: deflate cannot shrink it
      co_await ws.send(bin, message_kind::binary);
      r = co_await ws.read(buf);
      CHECK(r.kind == message_kind::binary);
      CHECK(buf == bin);
    }
    co_await ws.close(1000, "done");
  });
  auto closed = peer.next_closed(std::chrono::seconds(5));
  REQUIRE(closed);
  CHECK(*closed == "closed 1000 done");
}

} // namespace

TEST_SUITE("interop") {

TEST_CASE("permessage-deflate with Python websockets: context takeover, none, small windows") {
  deflate_echo(peer_kind::python, "on", "client_max_window_bits=12");
  deflate_echo(peer_kind::python, "no-context-takeover", "server_no_context_takeover");
  deflate_echo(peer_kind::python, "window=9", "server_max_window_bits=9");
  // (window=8: Python's zlib refuses an 8-bit raw window, so the server fails;
  // the unit tests cover an 8-bit client window.)
}

TEST_CASE("permessage-deflate with Node ws: context takeover, none, small windows") {
  deflate_echo(peer_kind::node, "on", "");
  deflate_echo(peer_kind::node, "no-context-takeover", "client_no_context_takeover");
  deflate_echo(peer_kind::node, "window=9", "server_max_window_bits=9");
}

TEST_CASE("compression off: nothing is offered, the server's deflate stays unused") {
  peer_process peer(peer_kind::python, {"--deflate", "on"});
  run_async([&](asio::io_context& io) -> awaitable<void> {
    auto o = big_limits();
    o.compression = compression::off;
    stream ws(io.get_executor(), o);
    co_await ws.connect(peer.url());
    CHECK(ws.response().extensions.empty());
    co_await ws.send("plain", message_kind::text);
    std::string buf;
    co_await ws.read(buf);
    CHECK(buf == "plain");
    co_await ws.close(1000, "done");
  });
}

TEST_CASE("python: echo text and binary from 0 bytes to 16 MiB") { echo_sizes(peer_kind::python); }
TEST_CASE("node: echo text and binary from 0 bytes to 16 MiB") { echo_sizes(peer_kind::node); }

TEST_CASE("fragmented messages, pings both ways, close from either side") {
  for (auto kind : {peer_kind::python, peer_kind::node}) {
    CAPTURE(peer_process::name(kind));
    peer_process peer(kind);
    run_async([&](asio::io_context& io) -> awaitable<void> {
      stream_options o;
      o.fragment_size = 1000; // 100 KB goes out as 100 frames
      stream ws(io.get_executor(), o);
      co_await ws.connect(peer.url());
      const auto big = pattern(100 * 1000, 7);
      co_await ws.send(big, message_kind::binary);
      std::string buf;
      co_await ws.read(buf);
      CHECK(buf == big);

      const auto rtt = co_await ws.ping("are you there", std::chrono::seconds(5));
      CHECK(rtt.count() > 0);

      // The server pings us; our automatic pong makes it say so.
      co_await ws.send("!ping from-server");
      auto r = co_await ws.read(buf);
      CHECK(r.kind == message_kind::text);
      CHECK(buf == "pong from-server");

      // The server closes: read reports it as a value, with code and reason.
      co_await ws.send("!close 4001 server says bye");
      r = co_await ws.read(buf);
      CHECK(r.kind == message_kind::close);
      CHECK(r.close_code == 4001);
      CHECK(r.close_reason == "server says bye");
      std::error_code ec;
      co_await ws.read(buf, ec);
      CHECK(ec == error::closed);
      co_await ws.close(); // already closing: waits for the end
      CHECK_FALSE(ws.is_open());
    });
    auto closed = peer.next_closed(std::chrono::seconds(5));
    REQUIRE(closed);
    CHECK(closed->rfind("closed 4001", 0) == 0); // we echoed its code (RFC 6455 §5.5.1)
  }
}

TEST_CASE("subprotocol negotiation and extra headers") {
  for (auto kind : {peer_kind::python, peer_kind::node}) {
    CAPTURE(peer_process::name(kind));
    peer_process peer(kind, {"--subprotocols", "chat,superchat"});
    run_async([&](asio::io_context& io) -> awaitable<void> {
      stream_options o;
      o.subprotocols = {"superchat", "chat"};
      o.headers.add("X-Tether-Test", "42");
      stream ws(io.get_executor(), o);
      co_await ws.connect(peer.url());
      CHECK(ws.subprotocol() == "superchat");
      CHECK(ws.response().status == 101);
      std::string buf;
      co_await ws.send("!subprotocol");
      co_await ws.read(buf);
      CHECK(buf == "subprotocol superchat");
      co_await ws.send("!headers");
      co_await ws.read(buf);
      const auto headers = nlohmann::json::parse(buf);
      CHECK(headers.value("x-tether-test", "") == "42");
      co_await ws.close(4000, "bye");
    });
    auto closed = peer.next_closed(std::chrono::seconds(5));
    REQUIRE(closed);
    CHECK(*closed == "closed 4000 bye");
  }
}

TEST_CASE("a server that drops TCP mid-conversation is reported as connection_lost") {
  for (auto kind : {peer_kind::python, peer_kind::node}) {
    CAPTURE(peer_process::name(kind));
    peer_process peer(kind);
    run_async([&](asio::io_context& io) -> awaitable<void> {
      stream ws(io.get_executor());
      co_await ws.connect(peer.url());
      co_await ws.send("!drop");
      std::string buf;
      std::error_code ec;
      co_await ws.read(buf, ec);
      CHECK(ec == error::connection_lost);
      CHECK_FALSE(ws.is_open());
      // A stream that ended can connect again.
      co_await ws.connect(peer.url());
      co_await ws.send("again");
      co_await ws.read(buf);
      CHECK(buf == "again");
      co_await ws.close();
    });
  }
}

TEST_CASE("wss: verification against a test CA, host checks, insecure_skip_verify") {
  const auto& dir = cert_dir();
  for (auto kind : {peer_kind::python, peer_kind::node}) {
    CAPTURE(peer_process::name(kind));
    peer_process peer(kind, {"--tls", dir + "/server.pem", dir + "/server.key"});
    // Same certificate, served on an address it does not name.
    peer_process other(kind, {"--host", "127.0.0.2", "--tls", dir + "/server.pem", dir + "/server.key"});
    run_async([&](asio::io_context& io) -> awaitable<void> {
      stream_options trusted;
      trusted.tls.ca_file = dir + "/ca.pem";
      for (const char* host : {"127.0.0.1", "localhost"}) {
        stream ws(io.get_executor(), trusted);
        co_await ws.connect(peer.url(true, host));
        co_await ws.send("secure");
        std::string buf;
        co_await ws.read(buf);
        CHECK(buf == "secure");
        // Over 256 KiB: one frame masked and written 128 KiB at a time through TLS.
        std::string big(3 << 20, '\0');
        for (std::size_t i = 0; i < big.size(); ++i)
          big[i] = static_cast<char>(i * 31 % 253);
        co_await ws.send(big, message_kind::binary);
        co_await ws.read(buf);
        CHECK(buf == big);
        co_await ws.close();
      }

      stream_options wrong_ca;
      wrong_ca.tls.ca_file = dir + "/other-ca.pem";
      stream untrusted(io.get_executor(), wrong_ca);
      std::error_code ec;
      co_await untrusted.connect(peer.url(true), ec);
      CHECK(ec == error::tls_failed);
      CHECK(untrusted.last_error_message().find("certificate") != std::string::npos);
      MESSAGE("untrusted CA: " << untrusted.last_error_message());

      stream mismatch(io.get_executor(), trusted);
      co_await mismatch.connect(other.url(true, "127.0.0.2"), ec);
      CHECK(ec == error::tls_failed);
      CHECK(mismatch.last_error_message().find("does not match host 127.0.0.2") != std::string::npos);

      // Thrown form carries the reason in what().
      bool threw = false;
      try {
        stream t(io.get_executor(), wrong_ca);
        co_await t.connect(peer.url(true));
      } catch (const std::system_error& e) {
        threw = true;
        CHECK(e.code() == error::tls_failed);
        CHECK(std::string(e.what()).find("certificate") != std::string::npos);
      }
      CHECK(threw);

      // insecure_skip_verify: accepted, and said once per stream at warning level.
      std::vector<std::string> warnings;
      stream_options insecure;
      insecure.tls.insecure_skip_verify = true;
      insecure.log = [&](log_level level, std::string_view text) {
        if (level == log_level::warning)
          warnings.emplace_back(text);
      };
      stream ok(io.get_executor(), insecure);
      co_await ok.connect(other.url(true, "127.0.0.2"));
      co_await ok.close();
      co_await ok.connect(other.url(true, "127.0.0.2"));
      co_await ok.close();
      REQUIRE(warnings.size() == 1);
      CHECK(warnings[0].find("insecure_skip_verify") != std::string::npos);
      // With verification on nothing like it is logged.
      warnings.clear();
      trusted.log = insecure.log;
      stream checked(io.get_executor(), trusted);
      co_await checked.connect(peer.url(true));
      co_await checked.close();
      CHECK(warnings.empty());
    });
  }
}

TEST_CASE("wss: a server that offers at most TLS 1.1 is refused, with no fallback") {
  const auto& dir = cert_dir();
  peer_process peer(peer_kind::python,
                    {"--tls", dir + "/server.pem", dir + "/server.key", "--tls-max-version", "1.1"});
  run_async([&](asio::io_context& io) -> awaitable<void> {
    stream_options o;
    o.tls.ca_file = dir + "/ca.pem";
    stream ws(io.get_executor(), o);
    std::error_code ec;
    co_await ws.connect(peer.url(true), ec);
    // (Python's server ends TCP without a protocol_version alert, so OpenSSL
    // can only say "stream truncated"; the point is that no TLS 1.1 session opens.)
    CHECK(ec == error::tls_failed);
    CHECK(!ws.is_open());
  });
  // The same server at TLS 1.2 is accepted: the refusal is about the version.
  peer_process modern(peer_kind::python,
                      {"--tls", dir + "/server.pem", dir + "/server.key", "--tls-max-version", "1.2"});
  run_async([&](asio::io_context& io) -> awaitable<void> {
    stream_options o;
    o.tls.ca_file = dir + "/ca.pem";
    stream ws(io.get_executor(), o);
    co_await ws.connect(modern.url(true));
    co_await ws.close();
  });
}

TEST_CASE("wss with a client certificate (mutual TLS)") {
  const auto& dir = cert_dir();
  peer_process peer(peer_kind::python,
                    {"--tls", dir + "/server.pem", dir + "/server.key", "--client-ca", dir + "/ca.pem"});
  run_async([&](asio::io_context& io) -> awaitable<void> {
    stream_options with_cert;
    with_cert.tls.ca_file = dir + "/ca.pem";
    with_cert.tls.cert_file = dir + "/client.pem";
    with_cert.tls.key_file = dir + "/client.key";
    stream ws(io.get_executor(), with_cert);
    co_await ws.connect(peer.url(true, "localhost"));
    co_await ws.send("mutual");
    std::string buf;
    co_await ws.read(buf);
    CHECK(buf == "mutual");
    co_await ws.close();

    stream_options without;
    without.tls.ca_file = dir + "/ca.pem";
    stream refused(io.get_executor(), without);
    std::error_code ec;
    co_await refused.connect(peer.url(true, "localhost"), ec);
    CHECK(ec); // the server ends the handshake: TLS alert or closed socket
    CHECK_FALSE(refused.is_open());
  });
}

TEST_CASE("wss trusting a hashed CA directory (tls.ca_dir)") {
  const auto& dir = cert_dir();
  char tmpl[] = "/tmp/tether-cadir-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  const std::string cadir = tmpl;
  const std::string cmd = "cp '" + dir + "/ca.pem' '" + cadir + "/' && openssl rehash '" + cadir + "' >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  peer_process peer(peer_kind::python, {"--tls", dir + "/server.pem", dir + "/server.key"});
  run_async([&](asio::io_context& io) -> awaitable<void> {
    stream_options o;
    o.tls.ca_dir = cadir;
    stream ws(io.get_executor(), o);
    co_await ws.connect(peer.url(true, "localhost"));
    co_await ws.close();
  });
  std::system(("rm -rf '" + cadir + "'").c_str());
}

} // TEST_SUITE
