// permessage-deflate (RFC 7692) over zlib's raw deflate. Compiled with zlib
// when the build has it (TETHER_HAVE_ZLIB); without it only the names and
// deflate_available() == false remain, and the stream never offers it.
#include <tether/deflate.hpp>
#include <tether/error.hpp>

#include <charconv>
#include <stdexcept>
#include <string>
#include <string_view>

#ifdef TETHER_HAVE_ZLIB
#include <zlib.h>
#endif

namespace tether {

const char* to_string(compression c) noexcept {
  switch (c) {
  case compression::automatic: return "automatic";
  case compression::on: return "on";
  case compression::off: return "off";
  }
  return "unknown";
}

#ifndef TETHER_HAVE_ZLIB

bool deflate_available() noexcept { return false; }
std::unique_ptr<extension> make_permessage_deflate(const deflate_options&) { return nullptr; }

#else

bool deflate_available() noexcept { return true; }

namespace {

constexpr std::string_view extension_name = "permessage-deflate";
// What a sync flush ends with; the sender strips it, the receiver appends it (§7.2.1, §7.2.2).
constexpr std::string_view flush_tail{"\x00\x00\xff\xff", 4};
constexpr int inflate_bits = 15;       // our decompressor's window, whatever the server's (see accept)
constexpr std::size_t out_step = 4096; // output grows by this much: small buffers for small messages

/// A window-bits value: "8" to "15", digits only.
bool parse_bits(const std::optional<std::string>& v, int& out) {
  if (!v || v->empty() || v->size() > 2 || (*v)[0] == '0')
    return false;
  int n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size() || n < 8 || n > 15)
    return false;
  out = n;
  return true;
}

class permessage_deflate final : public extension {
public:
  explicit permessage_deflate(const deflate_options& o) : o_(o) {
    send_bits_ = o.window_bits;
    send_reset_ = o.client_no_context_takeover;
  }
  ~permessage_deflate() override {
    if (deflating_)
      deflateEnd(&d_);
    if (inflating_)
      inflateEnd(&i_);
  }
  permessage_deflate(const permessage_deflate&) = delete;
  permessage_deflate& operator=(const permessage_deflate&) = delete;

  std::vector<extension_offer> offers() const override {
    extension_offer first{std::string(extension_name), {}};
    if (o_.server_no_context_takeover)
      first.params.emplace_back("server_no_context_takeover", std::nullopt);
    if (o_.client_no_context_takeover)
      first.params.emplace_back("client_no_context_takeover", std::nullopt);
    if (o_.server_max_window_bits < 15)
      first.params.emplace_back("server_max_window_bits", std::to_string(o_.server_max_window_bits));
    // Our window, so that the server's decompressor can be as small; any
    // smaller window the server names is honoured.
    first.params.emplace_back("client_max_window_bits",
                              o_.window_bits < 15 ? std::optional<std::string>(std::to_string(o_.window_bits))
                                                  : std::nullopt);
    // The fallback for servers that refuse the parameters (RFC 7692 §5).
    return {first, extension_offer{std::string(extension_name), {}}};
  }

  std::error_code accept(const extension_offer& r) override {
    const std::error_code bad = error::handshake_bad_extension;
    bool server_nct = false, client_nct = false, server_bits = false, client_bits = false;
    int send_bits = o_.window_bits;
    for (const auto& [key, value] : r.params) {
      int n = 0;
      if (key == "server_no_context_takeover") {
        if (value || std::exchange(server_nct, true))
          return bad;
      } else if (key == "client_no_context_takeover") {
        if (value || std::exchange(client_nct, true))
          return bad;
      } else if (key == "server_max_window_bits") {
        // At most what we asked for, when we asked.
        if (std::exchange(server_bits, true) || !parse_bits(value, n) || n > o_.server_max_window_bits)
          return bad;
      } else if (key == "client_max_window_bits") {
        // We offered our window: the server may only lower it.
        if (std::exchange(client_bits, true) || !parse_bits(value, n) || n > o_.window_bits)
          return bad;
        send_bits = n;
      } else {
        return bad; // a parameter we did not offer
      }
    }
    // zlib's raw deflate cannot make an 8-bit window: that direction then
    // goes uncompressed, which RFC 7692 allows per message.
    send_bits_ = send_bits >= 9 ? send_bits : 0;
    send_reset_ = client_nct || o_.client_no_context_takeover;
    // The server's window only bounds its compressor: we always
    // inflate with the largest window, which decodes every smaller one. With a
    // smaller window zlib would accept a reference past it while the bytes are
    // still in the current output buffer and refuse it once they are not, so
    // a server breaking its window would fail or pass depending on how TCP
    // split the message.
    recv_reset_ = server_nct;
    return {};
  }

  bool begin_encode(opcode, std::size_t first_frame_size, bool fin) override {
    if (send_bits_ == 0)
      return false;
    return !(fin && first_frame_size < o_.threshold);
  }

  std::error_code encode(std::string_view in, bool fin, std::string& out) override {
    if (!deflating_) {
      if (deflateInit2(&d_, o_.level, Z_DEFLATED, -send_bits_, o_.mem_level, Z_DEFAULT_STRATEGY) != Z_OK)
        return error::extension_failed;
      deflating_ = true;
    }
    const std::size_t start = out.size();
    d_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    d_.avail_in = static_cast<uInt>(in.size());
    do {
      const std::size_t old = out.size();
      out.resize(old + out_step);
      d_.next_out = reinterpret_cast<Bytef*>(out.data() + old);
      d_.avail_out = static_cast<uInt>(out_step);
      const int rc = deflate(&d_, fin ? Z_SYNC_FLUSH : Z_NO_FLUSH);
      out.resize(old + out_step - d_.avail_out);
      if (rc != Z_OK && rc != Z_BUF_ERROR)
        return error::extension_failed;
    } while (d_.avail_out == 0 || d_.avail_in > 0);
    if (fin) {
      const std::string_view produced(out.data() + start, out.size() - start);
      if (produced.size() >= flush_tail.size() && produced.substr(produced.size() - flush_tail.size()) == flush_tail)
        out.resize(out.size() - flush_tail.size());
      if (send_reset_)
        deflateReset(&d_);
    }
    return {};
  }

  std::error_code decode(std::string_view in, bool fin, std::string& out, std::size_t limit) override {
    if (!inflating_) {
      if (inflateInit2(&i_, -inflate_bits) != Z_OK)
        return error::extension_failed;
      inflating_ = true;
    }
    if (auto ec = inflate_some(in, out, limit))
      return ec;
    if (out.size() > limit)
      return {}; // past the limit: the protocol delivers up to it, then fails with 1009
    if (fin) {
      // A message that ended its deflate stream (BFINAL) needs no tail.
      if (!stream_ended_)
        if (auto ec = inflate_some(flush_tail, out, limit))
          return ec;
      stream_ended_ = false;
      if (recv_reset_)
        inflateReset(&i_);
    }
    return {};
  }

private:
  // Inflates `in` into `out`, failing once `out` would exceed `limit` bytes
  // (so a small input cannot inflate without bound).
  std::error_code inflate_some(std::string_view in, std::string& out, std::size_t limit) {
    if (!in.empty())
      stream_ended_ = false;
    i_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    i_.avail_in = static_cast<uInt>(in.size());
    for (;;) {
      if (out.size() > limit)
        return {}; // one byte past the limit is known: stop inflating
      // One byte past the limit is enough to know it is exceeded (npos: no limit).
      const std::size_t left = limit - out.size();
      const std::size_t room = left >= out_step ? out_step : left + 1;
      const std::size_t old = out.size();
      out.resize(old + room);
      i_.next_out = reinterpret_cast<Bytef*>(out.data() + old);
      i_.avail_out = static_cast<uInt>(room);
      const int rc = inflate(&i_, Z_SYNC_FLUSH);
      out.resize(old + room - i_.avail_out);
      if (rc == Z_STREAM_END) {
        restart_stream();
        if (i_.avail_in == 0)
          break;
        stream_ended_ = false; // more deflate data follows in the same message
        continue;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR)
        return error::extension_failed;
      if (i_.avail_in == 0 && i_.avail_out > 0)
        break; // all input used, all output flushed
      if (rc == Z_BUF_ERROR && i_.avail_out > 0)
        break;
    }
    return {};
  }

  // After a block with BFINAL, the next message starts a new deflate stream;
  // with context takeover it may still refer to the old window, so keep it.
  void restart_stream() {
    stream_ended_ = true;
    if (recv_reset_) {
      inflateReset(&i_);
      return;
    }
    std::string window(std::size_t{1} << inflate_bits, '\0');
    uInt n = static_cast<uInt>(window.size());
    inflateGetDictionary(&i_, reinterpret_cast<Bytef*>(window.data()), &n);
    inflateReset(&i_);
    inflateSetDictionary(&i_, reinterpret_cast<const Bytef*>(window.data()), n);
  }

  deflate_options o_;
  int send_bits_ = 0;        // our compressor's window; 0: our direction is not compressed
  bool send_reset_ = false;  // client_no_context_takeover in effect
  bool recv_reset_ = false;  // server_no_context_takeover in effect
  z_stream d_{};
  z_stream i_{};
  bool deflating_ = false;   // d_ initialised (on first use: idle connections pay nothing)
  bool inflating_ = false;
  bool stream_ended_ = false; // the current message's deflate stream ended (BFINAL)
};

} // namespace

std::unique_ptr<extension> make_permessage_deflate(const deflate_options& o) {
  if (o.level < 0 || o.level > 9 || o.mem_level < 1 || o.mem_level > 9 || o.window_bits < 9 || o.window_bits > 15 ||
      o.server_max_window_bits < 8 || o.server_max_window_bits > 15) {
#if defined(__cpp_exceptions)
    throw std::invalid_argument("deflate_options out of range (level 0-9, mem_level 1-9, window_bits 9-15, "
                                "server_max_window_bits 8-15)");
#else
    return nullptr; // a core built without exceptions: no extension (docs/options.md)
#endif
  }
  return std::make_unique<permessage_deflate>(o);
}

#endif

} // namespace tether
