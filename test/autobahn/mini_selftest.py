#!/usr/bin/python3
"""Runs autobahn-client against mini_fuzzingserver.py and checks every case reports ok.

    /usr/bin/python3 mini_selftest.py AUTOBAHN_CLIENT MINI_FUZZINGSERVER

Registered in meson as the 'autobahn-mini' test (suite interop). Every wait is
bounded; the server's stdin is a pipe held open and closed at the end.
"""
import queue
import socket
import subprocess
import sys
import threading

T = 20.0  # seconds per step


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


class Server:
    def __init__(self, script):
        self.proc = subprocess.Popen(["/usr/bin/python3", script, "--port", "0"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        first = self.line()
        if not first.startswith("listening "):
            fail("expected 'listening PORT', got %r" % first)
        self.port = int(first.split()[1])

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self):
        try:
            line = self.lines.get(timeout=T)
        except queue.Empty:
            fail("the server printed nothing for %s s" % T)
        if line is None:
            fail("the server exited")
        return line

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=T)


def run(client, *args):
    r = subprocess.run([client, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=T * 2)
    print("$ autobahn-client %s -> %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def refused_port():
    """A bound port with no listener, so connecting to it is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def main():
    client, server_script = sys.argv[1], sys.argv[2]
    server = Server(server_script)
    url = "ws://127.0.0.1:%d" % server.port

    # Every case, the permessage-deflate matrix (sections 12 and 13) included.
    r = run(client, "--url", url, "--agent", "tether-selftest")
    lines = r.stdout.splitlines()
    count = len(lines)
    want = ["case %d/%d ... ok" % (i, count) for i in range(1, count + 1)]
    if r.returncode != 0 or count < 30 or lines != want:
        fail("expected exit 0 and %d lines 'case i/N ... ok'" % max(count, 30))
    seen = sorted(server.line() for _ in range(count + 1))
    want_server = sorted(["case %d tether-selftest ok" % i for i in range(1, count + 1)] + ["report tether-selftest"])
    if seen != want_server:
        fail("the server saw %r, expected %r" % (seen, want_server))

    r = run(client, "--url", url + "/", "--cases", "3,2")
    if r.returncode != 0 or r.stdout.splitlines() != ["case 3/%d ... ok" % count, "case 2/%d ... ok" % count]:
        fail("--cases 3,2 ran the wrong cases")
    server.stop()

    sock, port = refused_port()
    r = run(client, "--url", "ws://127.0.0.1:%d" % port)
    sock.close()
    if r.returncode != 1 or r.stdout or "case count" not in r.stderr:
        fail("a refused getCaseCount must exit 1 with a message")

    for bad in (["--cases", "1,x"], ["--url"], ["--bogus", "1"]):
        if run(client, *bad).returncode != 2:
            fail("%r must exit 2" % bad)
    print("ok")


if __name__ == "__main__":
    main()
