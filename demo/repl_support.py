"""What tether-repl's tests share (repl_test.py, repl_handler_test.py): bounded
waits on output lines, tether-repl and tether-demo-server as child processes,
a pseudo-terminal, and peers that refuse. Nothing sleeps to synchronise."""
import json
import os
import pty
import queue
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

T = 20.0  # seconds per step


def fail(msg):
    print("FAIL: " + msg)
    sys.stdout.flush()
    os._exit(1)  # also ends reader threads and leaves no child waiting on us


def check(cond, msg):
    if not cond:
        fail(msg)


class Lines:
    """Lines of a pipe, read by a thread; every wait is bounded.

    wait_for() takes the first line matching a pattern, from the lines read but
    not taken yet and then from new ones, so lines whose order is not fixed (a
    command's "ok" and a message it caused) can be waited for in any order."""

    def __init__(self, pipe, name):
        self.q = queue.Queue()
        self.name = name
        self.seen = []     # every line read so far, in order
        self.pending = []  # read, not taken by wait_for/expect
        self.ended = False
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe):
        for line in pipe:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def _read(self, what):
        if self.ended:
            fail("%s: the output ended while waiting for %s; seen: %r" % (self.name, what, self.seen[-15:]))
        try:
            line = self.q.get(timeout=T)
        except queue.Empty:
            fail("%s: waited %s s for %s; seen: %r" % (self.name, T, what, self.seen[-15:]))
        if line is None:
            self.ended = True
            fail("%s: the output ended while waiting for %s; seen: %r" % (self.name, what, self.seen[-15:]))
        self.seen.append(line)
        print("%s| %s" % (self.name, line))
        sys.stdout.flush()
        return line

    def next(self, what):
        """The oldest line not taken yet."""
        if self.pending:
            return self.pending.pop(0)
        return self._read(what)

    def wait_for(self, pattern):
        """Takes the first line matching the regular expression; returns the match."""
        rx = re.compile(pattern)
        for i, line in enumerate(self.pending):
            m = rx.search(line)
            if m:
                del self.pending[i]
                return m
        while True:
            line = self._read(repr(pattern))
            m = rx.search(line)
            if m:
                return m
            self.pending.append(line)

    def end(self):
        """The output ends, with no line left untaken."""
        rest = self.rest()
        check(rest == [], "%s: unexpected output %r" % (self.name, rest))

    def expect(self, want):
        """The oldest line not taken yet is exactly `want`."""
        got = self.next(repr(want))
        check(got == want, "%s: got %r, expected %r" % (self.name, got, want))

    def rest(self):
        """The lines not taken yet and every line until the output ends."""
        out, self.pending = self.pending, []
        while not self.ended:
            try:
                line = self.q.get(timeout=T)
            except queue.Empty:
                fail("%s: the output did not end; seen: %r" % (self.name, self.seen[-15:]))
            if line is None:
                self.ended = True
                break
            self.seen.append(line)
            print("%s| %s" % (self.name, line))
            out.append(line)
        return out


def clean_close(rest, who="repl"):
    check(rest and rest[-1] == "* closed" and "* closing" in rest, "%s: no clean close at the end: %r" % (who, rest))


class Repl:
    """tether-repl with stdin, stdout and stderr on pipes."""

    def __init__(self, repl, *args, name="repl", env=None):
        e = dict(os.environ)
        e.pop("NO_COLOR", None)
        e.update(env or {})
        self.proc = subprocess.Popen([repl, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, errors="surrogateescape", env=e)
        self.out = Lines(self.proc.stdout, name)
        self.err = Lines(self.proc.stderr, name + "!")
        self.name = name

    def send(self, line):
        print("%s> %s" % (self.name, line))
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def do(self, line, result=r"^(ok|error:)"):
        """Runs a command and returns the match of its result line."""
        self.send(line)
        return self.out.wait_for(result)

    def ok(self, line, detail=None):
        m = self.do(line)
        got = m.string
        want = "ok" if detail is None else "ok " + detail
        check(got == want, "%s: %r answered %r, expected %r" % (self.name, line, got, want))

    def error(self, line, pattern):
        m = self.do(line)
        check(m.string.startswith("error: ") and re.search(pattern, m.string),
              "%s: %r answered %r, expected an error matching %r" % (self.name, line, m.string, pattern))

    def status(self):
        self.send("status")
        line = self.out.wait_for(r"^\{").string
        return json.loads(line)

    def finish(self, code=0):
        """Ends the input and waits for the exit; returns the remaining output."""
        self.proc.stdin.close()
        rest = self.out.rest()
        try:
            rc = self.proc.wait(timeout=T)
        except subprocess.TimeoutExpired:
            fail("%s did not exit" % self.name)
        check(rc == code, "%s: exit status %r, expected %r" % (self.name, rc, code))
        return rest


class DemoServer:
    def __init__(self, binary, *args):
        self.proc = subprocess.Popen([binary, "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out = Lines(self.proc.stdout, "server")
        first = self.out.next("'listening ws://127.0.0.1:PORT'")
        m = re.fullmatch(r"listening (wss?)://127\.0\.0\.1:(\d+)", first)
        check(m is not None, "the demo server's first line is %r" % first)
        self.port = int(m.group(2))
        self.url = "%s://127.0.0.1:%d" % (m.group(1), self.port)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=T)
        except subprocess.TimeoutExpired:
            fail("the demo server ignored SIGTERM")
        check(rc == 0, "the demo server exited %r after SIGTERM" % rc)


def run(repl, *args, input=None, stdin=None, env=None):
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.update(env or {})
    r = subprocess.run([repl, *args], input=input, stdin=stdin, capture_output=True, text=True,
                       errors="surrogateescape", timeout=T * 2, env=e)
    print("$ tether-repl %s -> %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def connected(r, url=None):
    """Waits for the banner of a REPL that connects."""
    m = r.out.wait_for(r"^\* connected to (\S+)$")
    if url:
        check(m.group(1) == url, "connected to %r, expected %r" % (m.group(1), url))
    return m.group(1)


class Pty:
    """A child on a pseudo-terminal; output is collected and searched."""

    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                import fcntl
                import termios
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.buf = b""
        self.pos = 0  # searches start here
        self.status = None

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            return None
        self.buf += data
        return True

    def wait_for(self, pattern, what=None):
        """Reads until the bytes regex matches after the previous match; returns the match."""
        rx = re.compile(pattern)
        deadline = time.time() + T
        while True:
            m = rx.search(self.buf, self.pos)
            if m:
                self.pos = m.end()
                return m
            if time.time() > deadline:
                fail("pty: waited for %s; output since the last match: %r" % (what or pattern, self.buf[self.pos:]))
            if self._read(0.1) is None:
                fail("pty: the output ended while waiting for %s: %r" % (what or pattern, self.buf[self.pos:]))

    def write(self, data):
        os.write(self.fd, data)

    def command(self, line):
        """Types a line once the next prompt shows."""
        self.wait_for(rb"tether> ", "the prompt")
        self.write(line + b"\r")

    def exit_status(self):
        deadline = time.time() + T
        while time.time() < deadline:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                while self._read(0) is True:  # what is left
                    pass
                os.close(self.fd)
                print("pty output (exit %d):" % self.status)
                for line in self.buf.split(b"\n"):
                    print("  %r" % line)
                return self.status
            self._read(0.05)
        fail("pty: the REPL did not exit: %r" % self.buf[self.pos:])


SGR = re.compile(rb"\x1b\[[0-9;]*m")


def dead_port():
    """A port that refuses connections (bound, not listening) and its socket."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def rejecting_server(status_line):
    """A server that answers every opening handshake with `status_line` (no
    WebSocket); returns its port. Its thread ends with the process."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve():
        while True:
            conn, _ = srv.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                conn.sendall(status_line.encode() + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]
