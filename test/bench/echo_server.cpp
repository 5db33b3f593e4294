// bench-echo-server: the WebSocket echo server the benchmarks measure clients
// against. One thread, level-triggered epoll, hand-written RFC 6455 server
// framing (independent of tether's core, so the server stays the same while
// the library changes). It is meant never to be the bottleneck:
//
//  - Reads go into one shared 1 MiB buffer; payload bytes are unmasked straight
//    from it into the connection's output buffer (one pass, no zero-filling), so
//    a frame is echoed as it streams in, without waiting for its end.
//  - Everything echoed from one read goes out in one send(); a partial send
//    waits for EPOLLOUT. Over 8 MiB of unsent output pauses reading.
//  - Per idle connection: a few hundred bytes (buffers are freed when drained).
//
//   bench-echo-server [--port N] [--host H] [--max-size N] [--print-closes]
//
// Protocol (RFC 6455, server side): the opening handshake (§4.2: GET, Upgrade,
// Sec-WebSocket-Key, version 13; no subprotocol, no extension); client frames
// must be masked (§5.1); text, binary and continuation frames are echoed frame
// by frame with the same opcode and FIN, so message boundaries and types are
// kept (§5.4); a ping is answered with a pong carrying its payload (§5.5.2);
// pongs are ignored; a close is answered with a close carrying the received
// status code (none if it had none), then the server closes TCP (§5.5.1, §7.1.1).
// Violations (RSV bits, unmasked frames, reserved opcodes, bad fragmentation,
// control frames over 125 bytes or fragmented, a close payload of 1 byte or
// with a code that may not be sent) close with 1002; a message over --max-size
// closes with 1009. Text is not checked for UTF-8: the server echoes bytes and
// the client checks what it reads back, so the server's cost stays flat.
//
// stdout: "listening PORT" once listening; with --print-closes, "closed CODE
// REASON" per connection (what the client sent; 1006 without a close frame), as
// the peers in test/peers print; on exit (stdin EOF, SIGTERM or SIGINT) one JSON
// line: {"server":"bench-echo-server","cpu_s":..,"user_s":..,"sys_s":..,
// "connections":..,"messages":..,"max_rss_kb":..}. While it runs, its CPU time
// can also be read from /proc/PID/stat (compare.py does, per client run).
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace {

constexpr std::size_t read_chunk = 1024 * 1024;
constexpr std::size_t output_high_water = 8 * 1024 * 1024;
constexpr std::size_t max_request = 16 * 1024;
constexpr std::uint64_t max_frame = std::uint64_t{1} << 32;

struct settings {
  std::string host = "127.0.0.1";
  unsigned port = 0;
  std::uint64_t max_size = 0; // 0: only max_frame
  bool print_closes = false;
};

/// A growable byte buffer that never zero-fills (std::string::resize would).
class byte_buffer {
public:
  char* data() noexcept { return data_.get() + begin_; }
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }
  std::size_t capacity() const noexcept { return capacity_; }

  /// Makes room for n more bytes and returns where they go; commit() them after.
  char* prepare(std::size_t n) {
    if (capacity_ - end_ < n) {
      const std::size_t used = size();
      if (capacity_ - used >= n && begin_ > 0) {
        std::memmove(data_.get(), data(), used);
      } else {
        std::size_t cap = std::max<std::size_t>(capacity_ * 2, 4096);
        while (cap - used < n)
          cap *= 2;
        std::unique_ptr<char[]> bigger(new char[cap]);
        if (used)
          std::memcpy(bigger.get(), data(), used);
        data_ = std::move(bigger);
        capacity_ = cap;
      }
      begin_ = 0;
      end_ = used;
    }
    return data_.get() + end_;
  }
  void commit(std::size_t n) noexcept { end_ += n; }
  void append(const void* p, std::size_t n) {
    std::memcpy(prepare(n), p, n);
    commit(n);
  }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_)
      begin_ = end_ = 0;
  }
  /// Frees the storage (only when empty).
  void release() noexcept {
    if (empty()) {
      data_.reset();
      capacity_ = begin_ = end_ = 0;
    }
  }

private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0, begin_ = 0, end_ = 0;
};

/// dst[i] = src[i] ^ key[(offset + i) % 4], eight bytes at a time; returns the
/// key offset after n bytes. dst may equal src.
std::size_t unmask_copy(char* dst, const char* src, std::size_t n, const unsigned char key[4],
                        std::size_t offset) noexcept {
  unsigned char k[8];
  for (std::size_t i = 0; i < 8; ++i)
    k[i] = key[(offset + i) & 3];
  std::uint64_t k64;
  std::memcpy(&k64, k, 8);
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    std::uint64_t v[4];
    std::memcpy(v, src + i, 32);
    v[0] ^= k64;
    v[1] ^= k64;
    v[2] ^= k64;
    v[3] ^= k64;
    std::memcpy(dst + i, v, 32);
  }
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, src + i, 8);
    v ^= k64;
    std::memcpy(dst + i, &v, 8);
  }
  for (; i < n; ++i)
    dst[i] = static_cast<char>(src[i] ^ k[i & 7]);
  return (offset + n) & 3;
}

void append_header(byte_buffer& out, unsigned first_byte, std::uint64_t len) {
  unsigned char h[10];
  std::size_t n = 2;
  h[0] = static_cast<unsigned char>(first_byte);
  if (len < 126) {
    h[1] = static_cast<unsigned char>(len);
  } else if (len < 65536) {
    h[1] = 126;
    h[2] = static_cast<unsigned char>(len >> 8);
    h[3] = static_cast<unsigned char>(len);
    n = 4;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; ++i)
      h[2 + i] = static_cast<unsigned char>(len >> (56 - 8 * i));
    n = 10;
  }
  out.append(h, n);
}

bool sendable_close_code(unsigned code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

struct connection {
  int fd = -1;
  enum class phase { handshake, open, closing } state = phase::handshake;
  std::string request; // the handshake request, until its blank line

  // Frame parser: a header being assembled, then the payload streaming through.
  unsigned char header[14];
  std::size_t header_have = 0;
  bool in_payload = false;
  unsigned opcode = 0;
  bool fin = false;
  std::uint64_t remaining = 0;
  unsigned char key[4];
  std::size_t key_offset = 0;
  bool in_message = false;       // a fragmented data message awaits continuations
  std::uint64_t message_size = 0;
  std::string control;           // a control frame's payload (≤ 125 bytes)

  byte_buffer out;
  bool want_write = false;       // EPOLLOUT registered
  bool reading = true;           // EPOLLIN registered
  bool close_code_printed = false;
};

class server {
public:
  explicit server(settings s) : cfg_(std::move(s)), buffer_(new char[read_chunk]) {}

  int run();

private:
  void accept_all();
  void on_readable(connection& c);
  void on_writable(connection& c);
  bool handshake(connection& c);
  void parse(connection& c, const char* p, std::size_t n);
  void control_frame(connection& c);
  void fail(connection& c, unsigned code);
  void flush(connection& c);
  void update_events(connection& c);
  void drop(connection& c);
  void report_close(connection& c, unsigned code, std::string_view reason);

  settings cfg_;
  std::unique_ptr<char[]> buffer_;
  int epoll_ = -1;
  int listener_ = -1;
  int signals_ = -1;
  bool stdin_watched_ = false;
  std::uint64_t connections_ = 0;
  std::uint64_t messages_ = 0;
};

// Tags for the non-connection fds in epoll_event.data.ptr.
char listener_tag, stdin_tag, signal_tag;

void server::report_close(connection& c, unsigned code, std::string_view reason) {
  if (c.close_code_printed)
    return;
  c.close_code_printed = true;
  if (cfg_.print_closes) {
    std::printf("closed %u ", code);
    std::fwrite(reason.data(), 1, reason.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
}

void server::update_events(connection& c) {
  epoll_event ev{};
  ev.events = (c.reading ? EPOLLIN | EPOLLRDHUP : 0u) | (c.want_write ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
}

void server::drop(connection& c) {
  report_close(c, 1006, {});
  epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  delete &c;
}

void server::fail(connection& c, unsigned code) {
  unsigned char payload[2] = {static_cast<unsigned char>(code >> 8), static_cast<unsigned char>(code)};
  append_header(c.out, 0x88, 2);
  c.out.append(payload, 2);
  c.state = connection::phase::closing;
}

void server::accept_all() {
  for (;;) {
    int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        std::fprintf(stderr, "bench-echo-server: accept: %s\n", std::strerror(errno));
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* c = new connection;
    c->fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = c;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      delete c;
      continue;
    }
    ++connections_;
  }
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// True if the comma-separated list `value` holds `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    auto comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token))
      return true;
    if (comma == std::string_view::npos)
      break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

/// Consumes the request once complete; false to drop the connection.
bool server::handshake(connection& c) {
  auto end = c.request.find("\r\n\r\n");
  if (end == std::string::npos)
    return c.request.size() <= max_request;
  std::string_view req(c.request.data(), end + 2);
  std::string_view key;
  bool upgrade = false, connection_upgrade = false, version = false;
  bool get = req.substr(0, 4) == "GET ";
  req.remove_prefix(req.find("\r\n") + 2);
  while (!req.empty()) {
    auto eol = req.find("\r\n");
    auto line = req.substr(0, eol);
    req.remove_prefix(eol + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      continue;
    auto name = line.substr(0, colon);
    auto value = trim(line.substr(colon + 1));
    if (iequals(name, "upgrade"))
      upgrade = has_token(value, "websocket");
    else if (iequals(name, "connection"))
      connection_upgrade = has_token(value, "upgrade");
    else if (iequals(name, "sec-websocket-version"))
      version = value == "13";
    else if (iequals(name, "sec-websocket-key"))
      key = value;
  }
  if (!get || !upgrade || !connection_upgrade || !version || key.size() != 24) {
    static constexpr std::string_view bad =
        "HTTP/1.1 400 Bad Request\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    c.out.append(bad.data(), bad.size());
    c.state = connection::phase::closing;
    c.request.clear();
    return true;
  }
  std::string accept_src(key);
  accept_src += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(accept_src.data()), accept_src.size(), digest);
  unsigned char accept[32];
  EVP_EncodeBlock(accept, digest, SHA_DIGEST_LENGTH); // 28 characters and a NUL
  std::string response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Accept: ";
  response.append(reinterpret_cast<const char*>(accept), 28);
  response += "\r\n\r\n";
  c.out.append(response.data(), response.size());
  c.state = connection::phase::open;
  std::string rest = c.request.substr(end + 4);
  c.request.clear();
  c.request.shrink_to_fit();
  if (!rest.empty())
    parse(c, rest.data(), rest.size());
  return true;
}

void server::control_frame(connection& c) {
  if (c.opcode == 0x9) { // ping → pong with the same payload
    append_header(c.out, 0x8A, c.control.size());
    c.out.append(c.control.data(), c.control.size());
  } else if (c.opcode == 0x8) { // close → echo the status code, then close TCP
    if (c.control.size() == 1) {
      report_close(c, 1002, {});
      fail(c, 1002);
      return;
    }
    unsigned code = 1005;
    std::string_view reason;
    if (c.control.size() >= 2) {
      code = static_cast<unsigned char>(c.control[0]) << 8 | static_cast<unsigned char>(c.control[1]);
      reason = std::string_view(c.control).substr(2);
    }
    const bool has_code = c.control.size() >= 2;
    report_close(c, code, reason);
    if (has_code && !sendable_close_code(code)) {
      fail(c, 1002);
      return;
    }
    append_header(c.out, 0x88, has_code ? 2 : 0);
    if (has_code)
      c.out.append(c.control.data(), 2);
    c.state = connection::phase::closing;
  }
  // Pongs need no answer.
}

void server::parse(connection& c, const char* p, std::size_t n) {
  while (n > 0 && c.state == connection::phase::open) {
    if (!c.in_payload) {
      // Assemble the header: 2 bytes, then the extended length and the mask key.
      std::size_t need = 2;
      if (c.header_have >= 2) {
        unsigned len7 = c.header[1] & 0x7f;
        need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
      }
      std::size_t take = std::min(need - c.header_have, n);
      std::memcpy(c.header + c.header_have, p, take);
      c.header_have += take;
      p += take;
      n -= take;
      if (c.header_have == 2) {
        // What the first two bytes decide, before waiting for the rest (an
        // unmasked frame may be shorter than a masked header).
        const unsigned b0 = c.header[0], b1 = c.header[1];
        const unsigned op = b0 & 0x0f;
        const bool control = op & 0x8;
        if ((b0 & 0x70) || !(b1 & 0x80) || (op > 2 && op < 8) || op > 10 ||
            (control && (!(b0 & 0x80) || (b1 & 0x7f) > 125)) || (op == 0 && !c.in_message) ||
            (op != 0 && !control && c.in_message)) {
          report_close(c, 1002, {});
          fail(c, 1002);
          return;
        }
        continue; // now the full header size is known
      }
      if (c.header_have < need)
        return;
      c.header_have = 0;
      const unsigned b0 = c.header[0], b1 = c.header[1];
      c.fin = b0 & 0x80;
      c.opcode = b0 & 0x0f;
      unsigned len7 = b1 & 0x7f;
      std::uint64_t len = len7;
      std::size_t at = 2;
      if (len7 == 126) {
        len = std::uint64_t{c.header[2]} << 8 | c.header[3];
        at = 4;
      } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; ++i)
          len = len << 8 | c.header[2 + i];
        at = 10;
      }
      std::memcpy(c.key, c.header + at, 4);
      c.key_offset = 0;
      const bool control = c.opcode & 0x8;
      if (!control) {
        c.message_size = c.opcode == 0 ? c.message_size + len : len;
        if (len > max_frame || (cfg_.max_size && c.message_size > cfg_.max_size)) {
          report_close(c, 1009, {});
          fail(c, 1009);
          return;
        }
        c.in_message = !c.fin;
        messages_ += c.fin;
        append_header(c.out, (c.fin ? 0x80u : 0u) | c.opcode, len);
      } else {
        c.control.clear();
      }
      c.remaining = len;
      c.in_payload = true;
    }
    const std::size_t m = static_cast<std::size_t>(std::min<std::uint64_t>(c.remaining, n));
    if (c.opcode & 0x8) {
      const std::size_t old = c.control.size();
      c.control.resize(old + m);
      c.key_offset = unmask_copy(c.control.data() + old, p, m, c.key, c.key_offset);
    } else if (m > 0) {
      c.key_offset = unmask_copy(c.out.prepare(m), p, m, c.key, c.key_offset);
      c.out.commit(m);
    }
    p += m;
    n -= m;
    c.remaining -= m;
    if (c.remaining == 0) {
      c.in_payload = false;
      if (c.opcode & 0x8)
        control_frame(c);
    }
  }
}

void server::flush(connection& c) {
  while (!c.out.empty()) {
    ssize_t w = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      drop(c);
      return;
    }
    c.out.consume(static_cast<std::size_t>(w));
  }
  if (c.out.empty()) {
    c.out.release();
    if (c.state == connection::phase::closing) {
      // Our close (or 400) is out: the server closes the TCP connection first (§7.1.1).
      ::shutdown(c.fd, SHUT_WR);
      drop(c);
      return;
    }
  }
  const bool want_write = !c.out.empty();
  const bool reading = c.state != connection::phase::closing && c.out.size() < output_high_water;
  if (want_write != c.want_write || reading != c.reading) {
    c.want_write = want_write;
    c.reading = reading;
    update_events(c);
  }
}

void server::on_readable(connection& c) {
  // Up to 4 reads while the socket fills the buffer, then echo what they gave.
  for (int round = 0; round < 4 && c.state != connection::phase::closing; ++round) {
    ssize_t r = ::read(c.fd, buffer_.get(), read_chunk);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      drop(c);
      return;
    }
    if (r == 0) {
      drop(c);
      return;
    }
    const auto n = static_cast<std::size_t>(r);
    if (c.state == connection::phase::handshake) {
      c.request.append(buffer_.get(), n);
      if (!handshake(c)) {
        drop(c);
        return;
      }
    } else {
      parse(c, buffer_.get(), n);
    }
    if (n < read_chunk || c.out.size() >= output_high_water)
      break;
  }
  flush(c);
}

void server::on_writable(connection& c) { flush(c); }

int server::run() {
  listener_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(cfg_.port));
  if (inet_pton(AF_INET, cfg_.host.c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "bench-echo-server: --host wants an IPv4 address, got '%s'\n", cfg_.host.c_str());
    return 2;
  }
  if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener_, 4096) != 0) {
    std::fprintf(stderr, "bench-echo-server: cannot listen on %s:%u: %s\n", cfg_.host.c_str(), cfg_.port,
                 std::strerror(errno));
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);

  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &listener_tag;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, listener_, &ev);
  // stdin EOF ends the server (test/peers' contract); /dev/null cannot be polled.
  ev.data.ptr = &stdin_tag;
  stdin_watched_ = epoll_ctl(epoll_, EPOLL_CTL_ADD, 0, &ev) == 0;
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signals_ = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  ev.data.ptr = &signal_tag;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, signals_, &ev);
  signal(SIGPIPE, SIG_IGN);

  std::printf("listening %u\n", static_cast<unsigned>(ntohs(addr.sin_port)));
  std::fflush(stdout);

  epoll_event events[256];
  for (bool running = true; running;) {
    int n = epoll_wait(epoll_, events, 256, -1);
    if (n < 0 && errno != EINTR) {
      std::fprintf(stderr, "bench-echo-server: epoll_wait: %s\n", std::strerror(errno));
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      void* tag = events[i].data.ptr;
      if (tag == &listener_tag) {
        accept_all();
      } else if (tag == &stdin_tag) {
        char sink[256];
        if (::read(0, sink, sizeof sink) <= 0) {
          running = false;
          epoll_ctl(epoll_, EPOLL_CTL_DEL, 0, nullptr);
        }
      } else if (tag == &signal_tag) {
        running = false;
      } else {
        auto& c = *static_cast<connection*>(tag);
        if ((events[i].events & (EPOLLHUP | EPOLLERR)) && c.state == connection::phase::closing)
          drop(c);
        else if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
          on_readable(c); // may drop c
        else if (events[i].events & EPOLLOUT)
          on_writable(c);
      }
    }
  }

  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double user = static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
  const double sys = static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
  std::printf("{\"server\":\"bench-echo-server\",\"cpu_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f,"
              "\"connections\":%llu,\"messages\":%llu,\"max_rss_kb\":%ld}\n",
              user + sys, user, sys, static_cast<unsigned long long>(connections_),
              static_cast<unsigned long long>(messages_), ru.ru_maxrss);
  std::fflush(stdout);
  return 0;
}

bool parse_number(std::string_view text, std::uint64_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

} // namespace

int main(int argc, char** argv) {
  settings cfg;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    std::uint64_t number = 0;
    if (a == "--print-closes") {
      cfg.print_closes = true;
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: bench-echo-server [--port N] [--host IPV4] [--max-size BYTES] [--print-closes]\n");
      return 0;
    } else if (i + 1 < argc && a == "--host") {
      cfg.host = argv[++i];
    } else if (i + 1 < argc && a == "--port" && parse_number(argv[i + 1], number) && number < 65536) {
      cfg.port = static_cast<unsigned>(number);
      ++i;
    } else if (i + 1 < argc && a == "--max-size" && parse_number(argv[i + 1], number)) {
      cfg.max_size = number;
      ++i;
    } else {
      std::fprintf(stderr, "bench-echo-server: bad argument '%s'\n", argv[i]);
      return 2;
    }
  }
  server s(cfg);
  return s.run();
}
