#pragma once
/// @file
/// The sans-IO WebSocket connection (RFC 6455 §5-§7): bytes in, events out;
/// frames out as bytes. No sockets, no clocks, no Asio.
///
/// Rules this class keeps (checked by test/unit/protocol_test.cpp):
///  1. It never does I/O: the caller writes pending_output() and feeds what it reads.
///  2. Incoming bytes are parsed incrementally: any chunking gives the same messages.
///  3. A peer violation queues exactly one close frame (its RFC close code) and one
///     error event; after it the core emits nothing more and accepts no sends.
///  4. Pings are answered and a received close is echoed in the output buffer,
///     in arrival order; the core never writes by itself. Unwritten pongs are
///     bounded (max_pong_backlog): past it only the latest ping is answered.
///  5. Steady state allocates nothing per frame: buffers grow on demand, are
///     reused, and shrink back when they drain.

#include <tether/export.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <tether/extension.hpp>
#include <tether/frame.hpp>

namespace tether {

/// Which end of the connection the core plays (RFC 6455 §5.1 masking rules).
enum class role { client, server };

/// "client" or "server".
TETHER_API const char* to_string(role r) noexcept;

/// Limits and behaviour of the protocol core. Every limit has a safe default.
struct protocol_options {
  tether::role role = tether::role::client;
  /// Largest message accepted, after the extension's transform (default 16 MiB, as Beast). 0 = no limit.
  std::size_t max_message_size = 16 * 1024 * 1024;
  /// Largest single frame payload accepted (default 16 MiB). 0 = no limit.
  std::size_t max_frame_size = 16 * 1024 * 1024;
  /// Check that text messages and close reasons are UTF-8 (RFC 6455 §8.1).
  bool validate_utf8 = true;
  /// Answer pings with pongs automatically (RFC 6455 §5.5.2).
  bool auto_pong = true;
  /// Automatic pongs waiting in the output, at most: when a ping arrives with
  /// this many unwritten pongs queued after everything else, they are dropped
  /// and only the latest ping is answered (RFC 6455 §5.5.3), so a ping flood
  /// while the writer is stalled cannot grow the output without bound.
  std::size_t max_pong_backlog = 16;
  /// Capacity the input buffer starts with and shrinks back to.
  std::size_t initial_buffer_size = 4096;
};

/// What the core reports after parsing input.
struct event {
  enum class kind {
    message_begin, ///< A text or binary message starts; `type` says which.
    data,          ///< A chunk of the current message's payload in `data`.
    message_end,   ///< The current message is complete.
    ping,          ///< A ping arrived (already answered if auto_pong); payload in `data`.
    pong,          ///< A pong arrived; payload in `data`.
    close,         ///< The peer sent close: `code` (1005 if none) and `data` = reason.
    error,         ///< The peer broke the protocol: `error`, close frame `code` queued.
  };
  kind what = kind::data;
  opcode type = opcode::text;       ///< For message_begin.
  std::string_view data;            ///< Valid until the next call on the protocol.
  std::uint16_t code = 0;           ///< For close and error.
  std::error_code error;            ///< For error.
};

/// "message_begin", "data", "message_end", "ping", "pong", "close", "error".
TETHER_API const char* to_string(event::kind k) noexcept;

/// Close codes with a meaning in RFC 6455 §7.4.1.
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;
inline constexpr std::uint16_t no_status = 1005;   ///< Reported locally, never sent.
inline constexpr std::uint16_t abnormal = 1006;    ///< Reported locally, never sent.
inline constexpr std::uint16_t invalid_payload = 1007;
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t message_too_big = 1009;
inline constexpr std::uint16_t mandatory_extension = 1010;
inline constexpr std::uint16_t internal_error = 1011;
inline constexpr std::uint16_t service_restart = 1012;
inline constexpr std::uint16_t try_again_later = 1013;
inline constexpr std::uint16_t tls_handshake = 1015; ///< Reported locally, never sent.
} // namespace close_code

/// True if `code` may appear in a close frame on the wire (RFC 6455 §7.4).
TETHER_API bool is_valid_close_code(std::uint16_t code) noexcept;

/// Checks the arguments of a close we are asked to send, before anything is
/// sent: error::invalid_close_code for a code that may not be sent (1-999,
/// 1004-1006, 1015-2999, 5000 and above, or a reason without a code),
/// error::control_payload_too_big for a reason over 123 bytes (§5.5),
/// error::invalid_close_reason for a reason that is not UTF-8 (§5.5.1).
/// Code 0 with an empty reason is allowed: a close frame with no status.
TETHER_API std::error_code check_close(unsigned code, std::string_view reason) noexcept;

/// The meaning of a close code as people read it: "normal closure",
/// "going away", "protocol error", ... (RFC 6455 §7.4.1 and the IANA registry);
/// "registered" for 3000-3999, "private" for 4000-4999, "unknown" otherwise.
TETHER_API const char* close_code_name(std::uint16_t code) noexcept;

/// One WebSocket connection's protocol state. Not thread safe.
class TETHER_API protocol {
public:
  explicit protocol(protocol_options options = {});
  ~protocol();
  protocol(protocol&&) noexcept;
  protocol& operator=(protocol&&) noexcept;

  /// Installs the negotiated extension (may claim RSV1). Call before any data.
  void set_extension(std::unique_ptr<tether::extension> ext);
  tether::extension* extension() const noexcept { return ext_.get(); }
  const protocol_options& options() const noexcept { return opts_; }

  // ---- input ----
  /// A writable region of at least `n` bytes for the socket to read into.
  std::span<char> prepare(std::size_t n);
  /// Marks `n` bytes of the last prepare() region as received.
  void commit(std::size_t n) noexcept;
  /// Copies `bytes` in (prepare + commit).
  void feed(std::string_view bytes);
  /// The next event, or nothing if more input is needed. Views in the event stay
  /// valid until the next call to any member function.
  std::optional<event> next_event();

  /// Zero-copy input (optional: prepare/commit always work). While a data
  /// frame's payload is arriving, nothing is buffered, no extension transforms
  /// it and no event is waiting, the caller may read up to direct_payload()
  /// bytes of it into memory of its own and pass them to commit_payload().
  /// 0: not now (call next_event() and prepare()).
  std::uint64_t direct_payload() const noexcept;
  /// Accounts `bytes`, the next payload bytes of the current frame (at most
  /// direct_payload(); a server's are unmasked in place), with the checks
  /// next_event() applies. Returns how many belong to the message: all of them,
  /// or the prefix before a violation. The message's end and any violation are
  /// reported by the next call to next_event(), as if the bytes had been fed.
  std::size_t commit_payload(std::span<char> bytes);

  // ---- output ----
  /// Queues one data frame. `type` is text or binary for a message's first frame
  /// and continuation for the rest; `fin` ends the message.
  std::error_code send_frame(opcode type, std::string_view payload, bool fin);
  /// Queues a whole text or binary message as one frame.
  std::error_code send_message(opcode type, std::string_view payload) { return send_frame(type, payload, true); }
  /// How the caller of begin_frame masks the payload it writes: when `masked`
  /// (client role), with mask_copy(out, in, key, offset into the payload).
  struct payload_mask {
    bool masked = false;
    std::array<std::uint8_t, 4> key{};
  };
  /// Queues only the header of a data frame of `size` payload bytes whose
  /// payload the caller writes itself, so a large payload is masked piece by
  /// piece right before each write instead of copied whole into the output.
  /// The header is the last byte of the output pending now: the caller takes
  /// that output, then writes exactly `size` payload bytes (masked with `mask`),
  /// and only then takes output again; frames the core queues meanwhile (an
  /// automatic pong, a close after a violation) follow the payload.
  /// Same rules as send_frame; refused with std::errc::operation_not_supported
  /// while an extension is negotiated (it transforms whole payloads).
  std::error_code begin_frame(opcode type, std::uint64_t size, bool fin, payload_mask& mask);
  std::error_code send_ping(std::string_view payload = {});
  std::error_code send_pong(std::string_view payload = {});
  /// Queues a close frame. code 0 sends an empty close payload (reported as 1005).
  std::error_code send_close(std::uint16_t code = close_code::normal, std::string_view reason = {});

  /// Bytes waiting to be written to the socket. The view is invalidated by
  /// the next call that queues a frame, and the core queues some by itself
  /// while parsing input (a close echo, a pong, a close after a violation):
  /// an I/O layer that reads while a write is in flight uses take_output().
  std::string_view pending_output() const noexcept { return {out_.data() + out_pos_, out_.size() - out_pos_}; }
  /// Removes `n` written bytes from the front of pending_output().
  void consume_output(std::size_t n) noexcept;

  /// The output buffer's type: a vector of bytes that is not zeroed on growth.
  struct uninitialized_char_allocator : std::allocator<char> {
    template <class U>
    struct rebind {
      using other = uninitialized_char_allocator;
    };
    void construct(char*) noexcept {}
  };
  using output_buffer = std::vector<char, uninitialized_char_allocator>;
  /// Hands every pending output byte to the caller, without copying: `into`
  /// (emptied first; its capacity is what the core queues into next) and the
  /// output buffer swap places. The bytes are then no longer pending; the
  /// caller owns them while it writes them, and frames the core queues
  /// meanwhile cannot move them.
  void take_output(output_buffer& into) noexcept;

  // ---- state ----
  bool close_sent() const noexcept { return close_sent_; }
  bool close_received() const noexcept { return close_received_; }
  /// A violation was detected (by either side's rules); the connection must end.
  bool failed() const noexcept { return failed_; }
  /// Bytes fed and not yet returned as events (a complete frame, or part of one).
  std::size_t buffered_input() const noexcept { return in_end_ - in_begin_ - pending_release_; }
  /// The input buffer's current capacity (for tests of growth and shrinking).
  std::size_t input_capacity() const noexcept { return in_.size(); }

private:
  // Buffers larger than this are released once drained, so one large message
  // does not pin memory for the rest of the connection.
  static constexpr std::size_t shrink_threshold = 64 * 1024;

  std::optional<event> fail(std::error_code ec);
  std::error_code queue_frame(opcode op, bool fin, bool rsv1, std::string_view payload);
  // Fills the header of a frame of `size` payload bytes, with a fresh mask key in the client role.
  std::error_code make_header(opcode op, bool fin, bool rsv1, std::uint64_t size, frame_header& h);
  // The continuation rules of send_frame and begin_frame.
  std::error_code check_data_frame(opcode type) const noexcept;
  void queue_auto_pong(std::string_view payload);
  std::optional<event> control_event(std::string_view payload);
  std::optional<event> data_event(std::size_t available);
  std::size_t admit(std::string_view chunk, bool message_end, std::error_code ext_err, std::error_code& err);
  std::error_code check_header(const frame_header& h) const;
  void release_consumed() noexcept;

  protocol_options opts_;
  std::unique_ptr<tether::extension> ext_;

  // Bytes read from the socket (and frames queued for it) are written over at
  // once: growing a buffer must not zero it first (std::vector<char> and
  // std::string would, a memset per growth).
  output_buffer in_; // input buffer; [in_begin_, in_end_) holds unread bytes
  std::size_t last_prepare_ = 0;                        // the I/O layer's latest read size
  std::size_t in_begin_ = 0;
  std::size_t in_end_ = 0;
  std::size_t pending_release_ = 0; // bytes of the last event to drop on the next call

  output_buffer out_; // frames are written over at once, as in_
  std::size_t out_pos_ = 0;
  // The automatic pongs at the end of the output, none of them written yet:
  // out_[pong_run_begin_, pong_run_end_), pong_run_count_ frames. Appending
  // anything else, or handing bytes to the writer, ends the run.
  std::size_t pong_run_begin_ = 0;
  std::size_t pong_run_end_ = 0;
  std::size_t pong_run_count_ = 0;

  // Frame parse state.
  bool in_frame_ = false;
  frame_header frame_{};
  std::uint64_t frame_remaining_ = 0;

  // Message state (inbound).
  bool in_message_ = false;
  opcode message_type_ = opcode::text;
  bool message_compressed_ = false;
  std::uint64_t message_size_ = 0;
  std::string decoded_;       // extension output for the current chunk
  std::uint32_t utf8_ = 0;   // incremental UTF-8 validator state
  bool end_pending_ = false;  // message_end to emit after the last data chunk
  std::error_code pending_error_; // a failure to report after its valid prefix

  // Message state (outbound).
  bool out_message_ = false;
  bool out_compressed_ = false;
  std::string encoded_;

  bool close_sent_ = false;
  bool close_received_ = false;
  bool failed_ = false;
  bool done_ = false;         // nothing more to emit
};

} // namespace tether
