#!/usr/bin/python3
"""Checks bench-echo-server's RFC 6455 server side with raw frames.

    /usr/bin/python3 echo_server_test.py BENCH_ECHO_SERVER

The handshake (RFC 6455 §4.2.2's sample key), echoes with the same opcode and
boundaries (text, binary over 64 KiB, a fragmented message with a ping between
its fragments, a frame fed one byte at a time), the close echo followed by the
server closing TCP, 1002 for violations, 400 for a request that is not an
upgrade; then stdin EOF ends the server and its last line is the CPU report.
"""
import json
import os
import socket
import struct
import subprocess
import sys

T = 20.0


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def frame(opcode, payload, fin=True, mask=True, rsv=0):
    b0 = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


class conn:
    def __init__(self, port, request=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=T)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.s.sendall(request or (b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                   b"Connection: keep-alive, Upgrade\r\n"
                                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                   b"Sec-WebSocket-Version: 13\r\n\r\n"))
        while b"\r\n\r\n" not in self.buf:
            self.more()
        self.response, _, self.buf = self.buf.partition(b"\r\n\r\n")

    def more(self):
        data = self.s.recv(1 << 20)
        if not data:
            raise EOFError
        self.buf += data

    def take(self, n):
        while len(self.buf) < n:
            self.more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        b0, b1 = self.take(2)
        if b1 & 0x80:
            fail("the server masked a frame")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.take(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.take(8))[0]
        return b0, self.take(n)

    def expect(self, b0, payload, what):
        got = self.read_frame()
        if got != (b0, payload):
            fail("%s: got (%#x, %r...), expected (%#x, %r...)" % (what, got[0], got[1][:40], b0, payload[:40]))

    def expect_eof(self, what):
        try:
            self.more()
        except EOFError:
            return
        except OSError:
            return
        fail("%s: the server did not close TCP" % what)


def main():
    server = subprocess.Popen([sys.argv[1], "--port", "0", "--print-closes"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        if not line.startswith("listening "):
            fail("expected 'listening PORT', got %r" % line)
        port = int(line.split()[1])

        c = conn(port)
        if not c.response.startswith(b"HTTP/1.1 101 ") or \
                b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" not in c.response:
            fail("handshake response %r" % c.response)
        c.s.sendall(frame(1, b"hello"))
        c.expect(0x81, b"hello", "text echo")
        big = os.urandom(70000)
        c.s.sendall(frame(2, big))
        c.expect(0x82, big, "binary echo over 64 KiB")
        c.s.sendall(frame(2, b""))
        c.expect(0x82, b"", "empty binary echo")
        # Fragments keep their opcodes; a ping between them is answered in order.
        c.s.sendall(frame(1, b"ab", fin=False) + frame(9, b"p") + frame(0, b"cd", fin=False) + frame(0, b"ef"))
        c.expect(0x01, b"ab", "first fragment")
        c.expect(0x8A, b"p", "pong")
        c.expect(0x00, b"cd", "middle fragment")
        c.expect(0x80, b"ef", "last fragment")
        c.s.sendall(frame(10, b"unsolicited"))  # a pong needs no answer
        for byte in frame(1, b"one byte at a time"):
            c.s.send(bytes([byte]))
        c.expect(0x81, b"one byte at a time", "echo of a frame fed byte by byte")
        c.s.sendall(frame(8, struct.pack("!H", 1000) + b"bye"))
        c.expect(0x88, struct.pack("!H", 1000), "close echo")
        c.expect_eof("after the close echo")

        violations = {
            "unmasked frame": frame(1, b"x", mask=False),
            "RSV1 without an extension": frame(1, b"x", rsv=4),
            "reserved opcode 3": frame(3, b"x"),
            "continuation without a message": frame(0, b"x"),
            "text frame inside a fragmented message": frame(1, b"a", fin=False) + frame(1, b"b"),
            "fragmented ping": frame(9, b"x", fin=False),
            "ping over 125 bytes": frame(9, b"x" * 126),
            "close with a 1-byte payload": frame(8, b"\x03"),
            "close code 1005 on the wire": frame(8, struct.pack("!H", 1005)),
        }
        for what, data in violations.items():
            c = conn(port)
            c.s.sendall(data)
            try:
                got = c.read_frame()
            except (EOFError, OSError) as e:
                fail("%s: no close frame (%r)" % (what, e))
            while got[0] != 0x88:  # the echo of a fragment sent before the violation
                got = c.read_frame()
            if got[1][:2] != struct.pack("!H", 1002):
                fail("%s: expected close 1002, got %r" % (what, got))
            c.expect_eof(what)

        c = conn(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        if not c.response.startswith(b"HTTP/1.1 400 "):
            fail("a request without Upgrade got %r" % c.response)

        server.stdin.close()  # EOF: the server exits after its report
        out = server.stdout.read()  # bounded by the meson timeout
        server.wait(timeout=T)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    lines = out.strip().splitlines()
    closes = [l for l in lines if l.startswith("closed ")]
    if closes[:1] != ["closed 1000 bye"] or len(closes) != 1 + len(violations) + 1:
        fail("close lines %r" % closes)
    report = json.loads(lines[-1])
    if report.get("server") != "bench-echo-server" or not report["cpu_s"] >= 0 or report["connections"] != len(closes):
        fail("exit report %r" % report)
    print("ok")


if __name__ == "__main__":
    main()
