// bench-epoll-client: bench-client's workload with no library at all, as the
// floor that the kernel allows on this machine: compare.py runs it beside
// tether, Beast and websocketpp so that every ratio can be read against what
// a client that does nothing but the protocol's bare minimum achieves.
//
//   bench-epoll-client --url URL --connections C --messages N --size S --window W [--binary]
//
// Same command line, echo checks and JSON line as bench-client, with
// "client":"epoll". One thread, level-triggered epoll, non-blocking sockets
// with TCP_NODELAY. Per readiness event one recv (never a second that finds
// the socket empty) into a buffer that is neither zero-filled nor compacted
// until a frame would not fit; every frame read is parsed in place; the
// messages that the window then allows are masked into one buffer and go out
// in one send. The handshake is written and read with blocking calls before
// the clock starts, and checks only the status line: no Sec-WebSocket-Accept,
// no UTF-8 check of the echoes, no fragments, no extensions, no pongs (the
// echo server sends no pings). What a real client adds on
// top of this is the price of being a library.
#include "peer_common.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <memory>

namespace {

struct connection {
  int fd = -1;
  std::size_t sent = 0;     // messages framed
  std::size_t received = 0; // echoes checked
  std::deque<bench::clock::time_point> in_flight;
  // Bytes read, not yet parsed: [in_start, in_len) of `in` (in_cap bytes,
  // not zero-filled: only what a read writes is touched).
  std::unique_ptr<char[]> in;
  std::size_t in_cap = 0, in_start = 0, in_len = 0;
  std::string out;          // bytes framed, not yet sent: [out_off, size)
  std::size_t out_off = 0;
  bool want_out = false;    // EPOLLOUT registered
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench-epoll-client: %s\n", what.c_str());
  std::exit(1);
}

std::uint64_t next_random(std::uint64_t& s) { // xorshift64: mask keys need no more here
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

// A masked frame carrying message `i` (bench-client's stamps), appended to `out`.
void append_frame(std::string& out, const bench::config& cfg, const std::string& payload, std::size_t i,
                  std::uint64_t& rng) {
  unsigned char head[14];
  std::size_t h = 0;
  head[h++] = static_cast<unsigned char>(0x80 | (cfg.binary ? 0x2 : 0x1));
  const auto n = payload.size();
  if (n < 126) {
    head[h++] = static_cast<unsigned char>(0x80 | n);
  } else if (n <= 0xffff) {
    head[h++] = 0x80 | 126;
    head[h++] = static_cast<unsigned char>(n >> 8);
    head[h++] = static_cast<unsigned char>(n);
  } else {
    head[h++] = 0x80 | 127;
    for (int b = 7; b >= 0; --b)
      head[h++] = static_cast<unsigned char>(static_cast<std::uint64_t>(n) >> (8 * b));
  }
  const auto key = static_cast<std::uint32_t>(next_random(rng));
  std::memcpy(head + h, &key, 4);
  h += 4;
  const auto at = out.size();
  out.append(reinterpret_cast<const char*>(head), h);
  out.resize(at + h + n);
  char* dst = out.data() + at + h;
  // Eight bytes at a time; the key's bytes in wire order, twice.
  std::uint64_t key8;
  std::memcpy(&key8, head + h - 4, 4);
  std::memcpy(reinterpret_cast<char*>(&key8) + 4, head + h - 4, 4);
  std::size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    std::uint64_t w;
    std::memcpy(&w, payload.data() + k, 8);
    w ^= key8;
    std::memcpy(dst + k, &w, 8);
  }
  for (; k < n; ++k)
    dst[k] = static_cast<char>(payload[k] ^ head[h - 4 + k % 4]);
  // The stamps, masked in place of the fill bytes (the first wins for one byte, as in bench::stamp).
  if (n != 0) {
    dst[n - 1] = static_cast<char>(bench::last_byte(cfg, i) ^ head[h - 4 + (n - 1) % 4]);
    dst[0] = static_cast<char>(bench::first_byte(cfg, i) ^ head[h - 4]);
  }
}

int open_connection(const bench::ws_url& u, std::string& extra) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &res); rc != 0)
    die("cannot resolve " + u.host + ": " + gai_strerror(rc));
  int fd = -1;
  std::string error = "no address";
  for (auto* a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
      break;
    error = std::strerror(errno);
    if (fd >= 0)
      close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    die("connect to " + u.host + ":" + u.port + ": " + error);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const std::string request = "GET " + u.target + " HTTP/1.1\r\nHost: " + u.host + ":" + u.port +
                              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    die("handshake: send failed");
  // Read in chunks up to the blank line; bytes after it are the first frames
  // and stay in `extra` for the connection's input.
  std::string response;
  std::size_t end;
  while ((end = response.find("\r\n\r\n")) == std::string::npos) {
    if (response.size() > 16 * 1024)
      die("handshake: response headers over 16 KiB");
    char buf[4096];
    const auto n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      die("handshake: the server closed the connection");
    response.append(buf, static_cast<std::size_t>(n));
  }
  extra = response.substr(end + 4);
  response.resize(end + 4);
  if (response.compare(0, 12, "HTTP/1.1 101") != 0)
    die("handshake refused: " + response.substr(0, response.find('\r')));
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

class client {
public:
  client(const bench::config& cfg, int epfd) : cfg_(cfg), ep_(epfd), payload_(cfg.size, bench::fill_byte(cfg)) {}

  // Frames what the window allows and sends it (a failed send ends the program).
  void fill_and_send(connection& c) {
    while (c.sent < cfg_.messages && c.sent - c.received < cfg_.window) {
      append_frame(c.out, cfg_, payload_, c.sent, rng_);
      c.in_flight.push_back(bench::clock::now());
      ++c.sent;
    }
    flush(c);
  }

  void flush(connection& c) {
    while (c.out_off < c.out.size()) {
      const auto n = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno != EAGAIN)
        die(std::string("send: ") + std::strerror(errno));
      if (n < 0)
        break;
      c.out_off += static_cast<std::size_t>(n);
    }
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
    }
    const bool want = c.out_off < c.out.size();
    if (want != c.want_out) {
      epoll_event ev{};
      ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
      ev.data.ptr = &c;
      epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_out = want;
    }
  }

  // Room for a whole frame of this workload after the unparsed bytes: the
  // tail moves to the front only when a frame would not fit behind it.
  void make_room(connection& c) const {
    const std::size_t want = std::max<std::size_t>(cfg_.size + 14, 16 * 1024);
    if (c.in_cap - c.in_len >= want)
      return;
    const std::size_t tail = c.in_len - c.in_start;
    if (c.in_cap < tail + want) {
      // Doubling: a fresh buffer per frame would cost a page fault per 4 KiB.
      const auto cap = std::max(2 * c.in_cap, tail + want);
      auto bigger = std::unique_ptr<char[]>(new char[cap]); // not zero-filled
      std::memcpy(bigger.get(), c.in.get() + c.in_start, tail);
      c.in = std::move(bigger);
      c.in_cap = cap;
    } else {
      std::memmove(c.in.get(), c.in.get() + c.in_start, tail);
    }
    c.in_start = 0;
    c.in_len = tail;
  }

  // One recv, then every whole frame in the buffer. Returns echoes checked.
  std::size_t on_readable(connection& c) {
    make_room(c);
    const auto n = recv(c.fd, c.in.get() + c.in_len, c.in_cap - c.in_len, 0);
    if (n == 0)
      die("the server closed the connection");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        return 0;
      die(std::string("recv: ") + std::strerror(errno));
    }
    c.in_len += static_cast<std::size_t>(n);
    return parse(c);
  }

  // Every whole frame in [in_start, in_len): echoes are checked, a close ends
  // the program. Returns echoes checked.
  std::size_t parse(connection& c) {
    std::size_t done = 0;
    for (;;) {
      const auto* p = reinterpret_cast<const unsigned char*>(c.in.get() + c.in_start);
      const std::size_t avail = c.in_len - c.in_start;
      if (avail < 2)
        break;
      if ((p[1] & 0x80) || (p[0] & 0x70))
        die("the server sent a masked frame or reserved bits");
      std::size_t h = 2;
      std::uint64_t len = p[1] & 0x7f;
      if (len == 126) {
        h = 4;
        if (avail < h)
          break;
        len = (std::uint64_t{p[2]} << 8) | p[3];
      } else if (len == 127) {
        h = 10;
        if (avail < h)
          break;
        len = 0;
        for (int b = 2; b < 10; ++b)
          len = (len << 8) | p[b];
      }
      if (len > cfg_.size + 125) // nothing this workload receives is longer
        die("the server sent a frame of " + std::to_string(len) + " bytes");
      if (avail < h + len)
        break;
      const unsigned op = p[0] & 0x0f;
      const std::string_view body(reinterpret_cast<const char*>(p + h), static_cast<std::size_t>(len));
      if (op == 0x8) {
        const unsigned code = len >= 2 ? (unsigned{p[h]} << 8) | p[h + 1] : 1005;
        die("the server closed with " + std::to_string(code));
      }
      if (op == 0x1 || op == 0x2) {
        if (!(p[0] & 0x80) || op != (cfg_.binary ? 0x2u : 0x1u) || c.in_flight.empty() ||
            !bench::echo_matches(body, cfg_, c.received))
          die("echo " + std::to_string(c.received) + " does not match what was sent");
        rtt_ns_.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(bench::clock::now() -
                                                                               c.in_flight.front())
                              .count());
        c.in_flight.pop_front();
        ++c.received;
        ++done;
      }
      c.in_start += h + static_cast<std::size_t>(len); // pings and pongs: the echo server sends none
    }
    if (c.in_start == c.in_len)
      c.in_start = c.in_len = 0;
    return done;
  }

  std::vector<std::int64_t>& latencies() { return rtt_ns_; }

private:
  const bench::config& cfg_;
  int ep_;
  std::string payload_;
  std::uint64_t rng_ = 0x9e3779b97f4a7c15ull ^ static_cast<std::uint64_t>(getpid());
  std::vector<std::int64_t> rtt_ns_;
};

// Sends close 1000 and waits (bounded) for the server's close or EOF.
void close_connection(connection& c) {
  fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) & ~O_NONBLOCK);
  timeval limit{5, 0};
  setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  const unsigned char frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8}; // code 1000, mask key 0
  if (send(c.fd, frame, sizeof frame, MSG_NOSIGNAL) == sizeof frame) {
    char buf[256];
    while (recv(c.fd, buf, sizeof buf, 0) > 0) {
    }
  }
  close(c.fd);
}

} // namespace

int main(int argc, char** argv) {
  bench::config cfg;
  if (int rc = bench::parse_args("bench-epoll-client", argc, argv, cfg); rc != 0)
    return rc < 0 ? 0 : rc;
  bench::ws_url u;
  bench::parse_url(cfg.url, u);

  const int ep = epoll_create1(0);
  std::vector<std::unique_ptr<connection>> conns;
  for (std::size_t i = 0; i < cfg.connections; ++i) {
    auto c = std::make_unique<connection>();
    std::string extra;
    c->fd = open_connection(u, extra);
    if (!extra.empty()) { // frames that came with the handshake: parsed with the first read
      c->in.reset(new char[extra.size()]);
      std::memcpy(c->in.get(), extra.data(), extra.size());
      c->in_cap = c->in_len = extra.size();
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c.get();
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    conns.push_back(std::move(c));
  }
  client cl(cfg, ep);
  cl.latencies().reserve(cfg.connections * cfg.messages);

  const auto start = bench::clock::now();
  for (auto& c : conns)
    cl.fill_and_send(*c);
  std::size_t left = cfg.connections * cfg.messages;
  epoll_event events[256];
  while (left != 0) {
    const int n = epoll_wait(ep, events, 256, 30'000);
    if (n == 0)
      die("no echo for 30 s");
    if (n < 0 && errno != EINTR)
      die(std::string("epoll_wait: ") + std::strerror(errno));
    for (int k = 0; k < n; ++k) {
      auto& c = *static_cast<connection*>(events[k].data.ptr);
      // Reading first: a close that arrived is reported before a send fails.
      if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        const auto got = cl.on_readable(c);
        left -= got;
        if (got != 0)
          cl.fill_and_send(c);
      }
      if (events[k].events & EPOLLOUT)
        cl.flush(c);
    }
  }
  const auto end = bench::clock::now();
  for (auto& c : conns)
    close_connection(*c);
  bench::print_result("epoll", cfg, cl.latencies(), start, end);
  return 0;
}
