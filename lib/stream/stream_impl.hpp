#pragma once
// stream::impl: the stream's state and the declarations of its jobs, each
// defined in a file of its own (stream.cpp: state and errors, the public API;
// connect.cpp, reader.cpp, writer.cpp, control.cpp). Private to lib/stream.
//
// Coordination is single-threaded on the stream's executor. Each kind of waiter
// has its own signal (signal.hpp: no timer, no system call): read() waits on
// `readable_` (handoff.hpp: the reader resumes it in place when a
// message completes), connect and close on `changed_`, each sender on its own
// completion signal, senders short of queue room on `room_`. A waiter
// re-checks its condition after waking and tells a real cancellation from a
// wake-up by its coroutine's cancellation state. The reader and the writer are
// no coroutines but state machines: wake_reader() and wake_writer() post
// their next step.
#include <tether/stream.hpp>
#include <tether/error.hpp>
#include <tether/protocol.hpp>
#include <tether/url.hpp>

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/ssl/error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>

#include <algorithm>
#include <stdexcept>

#include "asio_compat.hpp"
#include "fifo.hpp"
#include "handshake_log.hpp"
#include "timeout.hpp"
#include "live.hpp"
#include "op_memory.hpp"
#include "handoff.hpp"
#include "signal.hpp"
#include "stream_access.hpp"
#include "transport.hpp"
#include "utf8.hpp"

namespace tether {

using clock = std::chrono::steady_clock;
using detail::use_nothrow;

namespace { // each of the stream's files has its own copy

// Reads ask for between min_read and max_read bytes: the size doubles while
// reads fill the buffer (a large message arrives in few system calls) and
// halves when they use under a quarter of it. Reads between messages ask for
// less (next_read_size()): the pending read's buffer is all the input memory
// an idle stream has, also after large messages. 512 rather than 1024: an
// idle stream holds 6.4 instead of 7.0 KB, and interleaved w2 and w3 runs did
// not change (docs/benchmarks.md).
constexpr std::size_t min_read = 512;
constexpr std::size_t max_read = 1024 * 1024;
constexpr std::size_t handshake_read = 4096; // the HTTP response: most fit in one read
// Payload left in a frame from which reads go straight into the message
// (protocol::direct_payload): below it, the copy costs less than the extra read.
constexpr std::size_t direct_read_min = 16 * 1024;
// Frames gathered into one write, at most (one system call per batch).
constexpr std::size_t write_batch = 256 * 1024;
// An output buffer up to this size is kept between writes whatever they
// write; a larger one only while writes stay large (wrote(), release_if_idle()).
constexpr std::size_t out_keep = 16 * 1024;
// A data frame over stream_frame_min is not copied whole into the output: the
// writer masks its payload a piece at a time, right before each write
// (protocol::begin_frame), so the kernel copies bytes still in cache. Pieces
// fill writes of transport::send_chunk() bytes (append_frame_piece).
constexpr std::size_t stream_frame_min = 256 * 1024;
// Message buffers kept for the next messages (read() hands the caller's old
// buffer back): at most this many, and one larger than large_spare only while
// the messages delivered are that large too, so that a stream that received
// large messages gives their memory back once messages are small again.
constexpr std::size_t max_spare_buffers = 4;
constexpr std::size_t large_spare = 64 * 1024;
constexpr std::size_t max_spare_signals = 64;
constexpr int max_gather_yields = 16; // passes of the executor before a write (gather())

// Use as `cancelled(co_await asio::this_coro::cancellation_state)`. Not a
// coroutine of its own: Asio throws operation_aborted when a cancelled coroutine
// awaits another awaitable, and the point here is to handle it without throwing.
inline bool cancelled(const asio::cancellation_state& cs) { return cs.cancelled() != asio::cancellation_type::none; }

inline bool is_eof(const std::error_code& ec) {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

inline void throw_if(const std::error_code& ec, const std::string& detail) {
  if (!ec)
    return;
  if (detail.empty())
    throw std::system_error(ec);
  throw std::system_error(ec, detail);
}

} // namespace

struct stream::impl : std::enable_shared_from_this<impl> {
  // The connection's life, one value. Waiters' predicates read it (ending(),
  // failing()); the reader and the writer may still wind down in
  // `closed`'s predecessor states (running_, writer_done_ track them).
  enum class state {
    closed,       // no connection: not yet connected, or ended (error_ says how)
    connecting,   // connect() runs: TCP, TLS, proxy, the HTTP upgrade
    open,         // messages flow both ways
    closing,      // close() was called: queued messages go out, then our close frame; then the peer's
    peer_closing, // the peer's close (or its violation) came first: the core queued our answer
    failing,      // must end now (transport error, abort, close timeout): the socket is closed
  };

  // A message arriving or waiting to be read. While it arrives, `data` may be
  // longer than `size`: the bytes past it are a recycled buffer's old
  // contents, kept so that reading a large payload into it need not zero the
  // memory first (std::string::resize does). Trimmed before it is handed over.
  struct inbound {
    message_kind kind;
    std::string data;
    bool complete = false;
    std::size_t size = 0; // bytes of the message in `data`
  };
  struct outgoing {
    std::uint64_t seq;
    opcode type;
    std::string_view data;
    std::size_t offset = 0;
    bool started = false;
  };
  struct ping_wait {
    explicit ping_wait(const asio::any_io_executor& ex) : timer(ex) {}
    std::string payload;
    asio::steady_timer timer;
    clock::time_point sent{};
    std::chrono::nanoseconds rtt{};
    bool queued = true;
    bool answered = false;
  };

  impl(asio::any_io_executor ex, stream_options o)
      : ex_(std::move(ex)), opts_(std::move(o)), changed_(ex_), readable_(ex_), room_(ex_) {}

  // ---- shared state ----
  detail::live_token live_{detail::live().streams};
  asio::any_io_executor ex_;
  stream_options opts_;
  std::unique_ptr<detail::transport> tr_;
  protocol proto_;
  handshake_response response_;
  std::string subprotocol_;
  state state_ = state::closed;
  std::error_code error_;
  std::string detail_;
  bool insecure_warned_ = false; // tls.insecure_skip_verify is logged once per stream
  int running_ = 0;          // reader (until finish() ends) + writer alive
  std::uint32_t run_ = 0;    // connections so far: a reader's or writer's step posted for one is void in the next
  bool writer_done_ = false; // the writer ended: nothing more will be written

  bool failing() const noexcept { return state_ == state::failing; }
  // A close handshake or a failure is under way: the connection is ending.
  bool ending() const noexcept {
    return state_ == state::closing || state_ == state::peer_closing || state_ == state::failing;
  }

  detail::signal changed_;      // the connection's state: connect and close waiters
  detail::handoff readable_;    // messages, or the connection's state: read() waiters (reader resumes them)
  detail::signal room_;         // room in the send queue: senders held back by backpressure
  // Bounds the close handshake and TCP shutdown. Made at the first close: an
  // open connection does not carry a timer's 120 bytes for it.
  std::unique_ptr<asio::steady_timer> watchdog_;

  // inbound
  detail::fifo<inbound> inbox_;
  std::size_t inbox_bytes_ = 0;
  std::vector<std::string> spare_; // message buffers to reuse (keep_spare)
  bool close_delivered_ = false; // read() returned the peer's close (proto_.close_received())
  int partial_readers_ = 0; // read_some() calls waiting: they take data before a message ends
  std::uint16_t peer_close_code_ = 0;
  std::string peer_close_reason_;

  // outbound
  detail::fifo<outgoing> sendq_;
  std::size_t sendq_bytes_ = 0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t framed_seq_ = 0;  // every message up to here is in the protocol's output
  std::uint64_t written_seq_ = 0; // ... and up to here on the socket
  std::uint64_t last_batch_ = 0;  // messages the latest write completed (gather())
  bool writing_ = false;          // a write loop runs (the writer's or a sender's)
  protocol::output_buffer out_;   // the bytes of the write in flight, taken from the core
  // The frame whose payload the writer is writing piece by piece (the front
  // message's), if any: bytes still to write, bytes written, and its mask.
  std::uint64_t frame_left_ = 0;
  std::uint64_t frame_done_ = 0;
  protocol::payload_mask frame_mask_;
  std::uint64_t writing_framed_ = 0; // framed_seq_ when the write in flight began
  bool writer_idle_ = false;      // the writer waits for work
  // The writer's phase (writer.cpp): waiting for work, a pass posted, in a
  // pass (gathering or writing), waiting for a sender's write before it ends, ended.
  enum class writer_phase { idle, scheduled, busy, ending, done };
  writer_phase writer_ = writer_phase::done;
  bool writer_token_ = false; // woken during a pass: one more pass after it
  int gather_left_ = 0;       // yields left before this pass writes (gather())
  bool fresh_input_ = false;      // the reader took bytes from the socket since the last lone send
  // Senders waiting for their message to be written, in seq order; each is woken
  // alone once the write that carried its last byte completes. A wait is a
  // sender's signal (send()) or a callback (the handler's pipeline, which hands
  // over many messages without a coroutine each).
  struct send_wait {
    std::uint64_t seq;
    detail::signal* done;
    std::function<void(std::error_code)> callback;
  };
  detail::fifo<send_wait> send_waits_;
  std::vector<std::unique_ptr<detail::signal>> spare_signals_;
  detail::fifo<std::shared_ptr<ping_wait>> pings_;
  std::uint16_t close_code_ = 0; // ours, sent once the queue drains (state::closing)
  std::string close_reason_;

  // ---- reader ----

  // The reader's phase (reader.cpp): reading or parsing, paused with its read
  // queue full, a step posted, ended.
  enum class reader_phase { running, paused, scheduled, done };
  reader_phase reader_ = reader_phase::done;
  std::size_t read_size_ = min_read; // adapts between min_read and max_read
  std::size_t last_read_ = 0;        // bytes the latest socket read returned (next_read_size())
  bool last_read_direct_ = false;    // ... into a message (read_direct), not the core's buffer
  std::string direct_body_;          // the message a direct read fills (read_direct)
  detail::op_memory read_memory_;    // the pending read's operation (op_memory.hpp)

  // The newest message in the inbox is still arriving.
  bool message_in_progress() const noexcept { return !inbox_.empty() && !inbox_.back().complete; }

  bool read_paused() const {
    return state_ == state::open && inbox_bytes_ >= opts_.max_read_queue_bytes && !inbox_.empty() &&
           inbox_.front().complete;
  }

  // ---- writer ----

  // The write loop, `while (auto out = next_write(); out.size()) wrote(...)`,
  // runs in whoever holds `writing_`: the writer (writer.cpp), or a sender that
  // found the writer idle (send_op), which saves two hops through the
  // executor per message for a sender that waits for its write anyway. The
  // writer first offers each batch to the socket directly (tr_->try_write) and
  // awaits only the rest. A lone sender awaits Asio's async_write (which also
  // tries the socket at once): the pass of the executor before its completion
  // is when a burst of sends queues behind it and leaves in the writer's next
  // batch (a sender that completed at once kept w2 at one message per system
  // call: 1.1x Beast instead of 4.4x). Except the first lone send after new
  // input (fresh_input_): an answer in lock-step, offered to the socket
  // directly (not under TLS: try_write takes nothing there) and complete
  // without a pass when it takes it all; the next
  // send, with no input in between, waits for its pass again. Written out in
  // both places: a nested coroutine would cost a frame per message.

  // Marks the write loop's holder (however the loop ends).
  struct write_hold {
    impl& s;
    explicit write_hold(impl& owner) : s(owner) { s.writing_ = true; }
    ~write_hold() { s.writing_ = false; }
    write_hold(const write_hold&) = delete;
    write_hold& operator=(const write_hold&) = delete;
  };

  // A sender may write itself: the writer is parked with nothing to
  // do, nobody else writes, no frame sits unwritten, and messages come one at
  // a time (in a burst the writer gathers them into one write instead). A
  // sender the reader resumed while more input waits to be parsed is part of
  // a burst too: the messages still to come will likely be answered as well.
  // Something the write loop would still write: a queued message, the rest of
  // an open large frame, control frames the core queued, or our close.
  bool output_left() const {
    return frame_left_ != 0 || !sendq_.empty() || !proto_.pending_output().empty() || state_ == state::closing;
  }

  bool can_write_inline() const {
    return writer_idle_ && !writing_ && !failing() && last_batch_ < 2 && proto_.pending_output().empty() &&
           proto_.buffered_input() == 0;
  }

  // ---- operations ----

  std::error_code ended_error() const { return error_ ? error_ : make_error_code(error::closed); }

  // ---- stream.cpp (with the public API) ----
  void notify();
  void log(log_level level, const std::string& text) const;
  void reset();
  void set_error(std::error_code ec, std::string detail = {});
  std::string message_of_error() const;
  void fail(std::error_code ec, std::string detail = {});
  static void report(impl& s, std::error_code ec, std::error_code* out);

  // ---- connect.cpp ----
  asio::awaitable<std::error_code> handshake(const url& u, std::string& why);
  asio::awaitable<void> connect_op(std::string_view text, std::error_code& ec);
  static asio::awaitable<void> do_connect(std::shared_ptr<impl> self, std::string url, std::error_code* out);

  // ---- reader.cpp ----
  void arm_watchdog();
  void on_event(const event& ev);
  void start_reader();
  void wake_reader();
  void read_loop();
  template <class Handler>
  void read_socket(asio::mutable_buffer buf, Handler&& handler);
  void count_read(std::size_t n, std::size_t size, bool direct) noexcept;
  void on_read(std::error_code ec, std::size_t n, std::size_t size);
  void reader_failed(const std::string& why);
  void end_reader();
  static asio::awaitable<void> run_finish(std::shared_ptr<impl> self);
  void read_direct();
  void on_read_direct(std::error_code ec, std::size_t n, std::size_t old, std::size_t want);
  void arm_watchdog_if_idle();
  bool take(std::string& buf, bool some, read_result& out, std::error_code& ec);
  bool keep_spare(const std::string& buf, std::size_t delivered) const noexcept;
  std::size_t next_read_size() const noexcept;
  static asio::awaitable<read_result> do_read(std::shared_ptr<impl> self, std::string& buf, std::error_code* out,
                                              bool some);

  // ---- writer.cpp ----
  void complete_written();
  void fill_output();
  void message_framed();
  void append_frame_piece();
  void start_writer();
  void wake_writer();
  void writer_woken();
  void gather();
  void writer_pass();
  void write_more();
  void writes_done();
  void writer_park();
  void release_if_idle();
  void writer_end();
  asio::const_buffer next_write();
  bool wrote(const std::tuple<std::error_code, std::size_t>& result);
  asio::awaitable<void> send_op([[maybe_unused]] std::shared_ptr<impl> keep, std::string_view data, message_kind kind,
                                std::error_code* out, bool utf8_checked);
  std::error_code start_send(std::string_view data, message_kind kind, bool utf8_checked,
                             std::function<void(std::error_code)> done);
  bool remove_unsent(std::uint64_t seq);
  static asio::awaitable<void> do_send(std::shared_ptr<impl> self, std::string_view data, message_kind kind,
                                       std::error_code* out, bool utf8_checked = false);

  // ---- control.cpp ----
  asio::awaitable<void> finish();
  asio::awaitable<std::chrono::nanoseconds> ping_op(std::string_view payload, std::chrono::milliseconds timeout,
                                                    std::error_code& ec);
  bool start_close(unsigned code, std::string_view reason, std::error_code& ec);
  void abort_now() noexcept;
  static asio::awaitable<std::chrono::nanoseconds> do_ping(std::shared_ptr<impl> self, std::string payload,
                                                           std::chrono::milliseconds timeout, std::error_code* out);
  static asio::awaitable<void> do_close(std::shared_ptr<impl> self, unsigned code, std::string reason,
                                        std::error_code* out);
};

} // namespace tether
