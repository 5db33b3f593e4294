// Placeholder for tether-repl: reads lines until end of input, framing each as
// a text message with the client-role core, and prints the frame sizes.
#include <tether/protocol.hpp>

#include <iostream>
#include <string>

int main() {
  tether::protocol p;
  std::cout << "tether demo (placeholder): type a line; end of input exits\n";
  std::string line;
  while (std::getline(std::cin, line)) {
    if (auto ec = p.send_message(tether::opcode::text, line)) {
      std::cerr << "error: " << ec.message() << "\n";
      return 1;
    }
    std::cout << "framed " << line.size() << " bytes as " << p.pending_output().size() << " bytes on the wire\n";
    p.consume_output(p.pending_output().size());
  }
  return 0;
}
