// bench-websocketpp-client: bench-client's workload on websocketpp 0.8.2 over
// Boost.Asio (Debian's libwebsocketpp-dev with libboost-dev; not standalone
// Asio), for the comparison in compare.py and docs/benchmarks.md. C++17: the
// websocketpp headers do not compile as C++20.
//
//   bench-websocketpp-client --url URL --connections C --messages N --size S --window W [--binary]
//
// Same command line, echo checks and JSON line as bench-client, with
// "client":"websocketpp". websocketpp is callback-driven: a connection's
// message handler checks each echo and sends the next message, so at most W
// await their echo; the first W go out when every connection is open. The
// client is single-threaded like the others, and configured so: asio_client's
// settings with websocketpp::concurrency::none and enable_multithreading off (no
// strands, no mutexes), access and error logging off, TCP_NODELAY set once TCP
// is connected (tcp_post_init). Each send copies the payload into a message, as
// endpoint::send does; websocketpp writes every message queued at the time of a
// write in one gather write, and validates the UTF-8 of the text it reads.
#include "peer_common.hpp"

#include <websocketpp/client.hpp>
#include <websocketpp/concurrency/none.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>

#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace {

/// asio_client, single-threaded.
struct single_thread_config : websocketpp::config::asio_client {
  typedef single_thread_config type;
  typedef websocketpp::config::asio_client base;

  typedef websocketpp::concurrency::none concurrency_type;
  typedef base::request_type request_type;
  typedef base::response_type response_type;
  typedef base::message_type message_type;
  typedef base::con_msg_manager_type con_msg_manager_type;
  typedef base::endpoint_msg_manager_type endpoint_msg_manager_type;
  typedef base::alog_type alog_type;
  typedef base::elog_type elog_type;
  typedef websocketpp::random::random_device::int_generator<uint32_t, concurrency_type> rng_type;

  static bool const enable_multithreading = false;

  struct transport_config : public base::transport_config {
    typedef type::concurrency_type concurrency_type;
    typedef type::alog_type alog_type;
    typedef type::elog_type elog_type;
    typedef type::request_type request_type;
    typedef type::response_type response_type;
    typedef websocketpp::transport::asio::basic_socket::endpoint socket_type;
    static bool const enable_multithreading = false;
  };

  typedef websocketpp::transport::asio::endpoint<transport_config> transport_type;
};

using client = websocketpp::client<single_thread_config>;

struct connection {
  client::connection_ptr con;
  std::size_t next = 0;   // index of the next message to send
  std::size_t echoes = 0; // echoes read
  std::vector<bench::clock::time_point> sent;
  std::vector<std::int64_t> rtt_ns;
  bench::clock::time_point last_echo;
};

struct run {
  bench::config cfg;
  client endpoint;
  std::vector<connection> conns;
  std::string payload;
  std::size_t opened = 0;
  std::string error;
  bench::clock::time_point start;

  void fail(const std::string& what) {
    if (error.empty())
      error = what;
    endpoint.stop();
  }

  void send_next(connection& c) {
    const std::size_t i = c.next++;
    bench::stamp(payload, cfg, i);
    c.sent[i] = bench::clock::now();
    auto ec = c.con->send(payload, cfg.binary ? websocketpp::frame::opcode::binary : websocketpp::frame::opcode::text);
    if (ec)
      fail("send: " + ec.message());
  }

  void open_next() {
    websocketpp::lib::error_code ec;
    auto con = endpoint.get_connection(cfg.url, ec);
    if (ec) {
      fail("cannot connect to " + cfg.url + ": " + ec.message());
      return;
    }
    const std::size_t index = opened;
    conns[index].con = con;
    con->set_open_handler([this](websocketpp::connection_hdl) {
      if (++opened < cfg.connections) {
        open_next();
        return;
      }
      start = bench::clock::now();
      for (auto& c : conns)
        for (std::size_t k = 0; k < cfg.window && c.next < cfg.messages; ++k)
          send_next(c);
    });
    con->set_message_handler([this, index](websocketpp::connection_hdl, client::message_ptr msg) {
      auto& c = conns[index];
      const auto now = bench::clock::now();
      const std::size_t i = c.echoes;
      const bool binary = msg->get_opcode() == websocketpp::frame::opcode::binary;
      if (i >= cfg.messages || binary != cfg.binary || !bench::echo_matches(msg->get_payload(), cfg, i)) {
        fail("echo " + std::to_string(i) + " does not match what was sent (" + std::to_string(msg->get_payload().size()) +
             " bytes, " + (binary ? "binary" : "text") + ")");
        return;
      }
      c.rtt_ns[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.sent[i]).count();
      c.last_echo = now;
      if (++c.echoes == cfg.messages) {
        websocketpp::lib::error_code ignored;
        c.con->close(websocketpp::close::status::normal, "", ignored);
      } else if (c.next < cfg.messages) {
        send_next(c);
      }
    });
    con->set_fail_handler([this](websocketpp::connection_hdl hdl) {
      auto failed = endpoint.get_con_from_hdl(hdl);
      fail("cannot open a connection to " + cfg.url + ": " + failed->get_ec().message());
    });
    con->set_close_handler([this, index](websocketpp::connection_hdl) {
      auto& c = conns[index];
      if (c.echoes < cfg.messages)
        fail("the server closed with " + std::to_string(c.con->get_remote_close_code()) + " after " +
             std::to_string(c.echoes) + " of " + std::to_string(cfg.messages) + " echoes");
    });
    endpoint.connect(con);
  }
};

} // namespace

int main(int argc, char** argv) {
  auto r = std::make_unique<run>();
  if (int rc = bench::parse_args("bench-websocketpp-client", argc, argv, r->cfg))
    return rc < 0 ? 0 : rc;
  const auto& cfg = r->cfg;
  r->payload.assign(cfg.size, bench::fill_byte(cfg));
  r->conns.resize(cfg.connections);
  for (auto& c : r->conns) {
    c.sent.resize(cfg.messages);
    c.rtt_ns.resize(cfg.messages);
  }

  auto& ep = r->endpoint;
  ep.clear_access_channels(websocketpp::log::alevel::all);
  ep.clear_error_channels(websocketpp::log::elevel::all);
  ep.init_asio();
  ep.set_max_message_size(std::max<std::size_t>(32 * 1024 * 1024, cfg.size));
  ep.set_tcp_post_init_handler([&ep](websocketpp::connection_hdl hdl) {
    ep.get_con_from_hdl(hdl)->get_socket().set_option(boost::asio::ip::tcp::no_delay(true));
  });

  try {
    r->open_next();
    ep.run();
  } catch (const std::exception& e) {
    r->fail(e.what());
  }
  if (!r->error.empty()) {
    std::fprintf(stderr, "bench-websocketpp-client: %s\n", r->error.c_str());
    return 1;
  }

  std::vector<std::int64_t> rtt;
  rtt.reserve(cfg.connections * cfg.messages);
  auto end = r->start;
  for (auto& c : r->conns) {
    rtt.insert(rtt.end(), c.rtt_ns.begin(), c.rtt_ns.end());
    end = std::max(end, c.last_echo);
  }
  bench::print_result("websocketpp", cfg, rtt, r->start, end);
  return 0;
}
