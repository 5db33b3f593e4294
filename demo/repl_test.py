#!/usr/bin/python3
"""Runs tether-repl in raw mode (--raw) for real against test/peers/echo_server.py.

    /usr/bin/python3 repl_test.py TETHER_REPL ECHO_SERVER_PY SCENARIO

Scenarios (each a meson test in suite 'interop'):
  echo          three lines piped in are echoed in order (a fourth, not UTF-8,
                is skipped with a message); at the end of input
                it exits 0 and the peer sees close 1000; input from a regular
                file and from /dev/null
  options       --subprotocol and --header reach the server
  server-close  incoming messages print while stdin stays open (ping → pong); the
                server's close prints "closed CODE REASON" and sets the exit status
                (1001 → 0, 4001 → 3); a dropped connection exits 1
  binary        binary messages print as "<binary N bytes>" and a hex preview
                (from a websockets server inside this script); with --binary as
                one full hex line each, and hex input lines go out as binary
                messages (a line that is not hex is not sent, with its column)
  refused       a refused connection exits 1 with the error on stderr
  usage         no arguments → the embedded demo server, a clean close at the end of
                input, exit 0 (also with --raw); bad arguments → exit 2; --help, --version
  tls           wss:// with --ca, without it (verification fails, reason shown),
                with the wrong CA, and with --insecure
  escape        control characters from the server (ESC, OSC, BEL, C1, DEL, tab)
                in messages and close reasons: escaped like handler mode when
                stdout is a terminal (a pseudo-terminal), byte for byte in a
                pipe; the URL's userinfo is never printed
  oneshot       --max-messages: `--max-messages 1 <<<'hello'` prints the echo and
                exits 0 (the end of input does not close first); N lines → N echoes
  timeout       --timeout: exit 5 when the messages do not come (a clean close
                1000 follows), and while the handshake is never answered; the
                time taken has an exact lower bound and a loose upper one
  slash         --slash: /ping prints the round-trip time, /close CODE REASON
                closes with them, an unknown /command is an error; without
                --slash the same lines go out as text
  verbose       -v prints the handshake's request and response headers on
                stderr with Authorization redacted; -H and -s are --header and
                --subprotocol
  deflate       --deflate against a peer with permessage-deflate: -v shows the
                offer and the server's answer, a long line round-trips, handler
                mode's status names the extension; --no-deflate offers nothing
  proxy         --proxy through tinyproxy (the server sees the proxy's address),
                http_proxy from the environment, --no-proxy ignoring it, an
                unreachable proxy (exit 1, its password never printed), a bad
                proxy URL (exit 1), an empty --proxy (exit 2); without a URL the
                embedded server is reached directly whatever http_proxy says
  unix          --unix-socket to a websockets server on a Unix-domain socket;
                a missing socket exits 1 naming its path
Every wait is bounded; peers get a stdin pipe that is closed at the end.
"""
import json
import os
import pty
import re
import queue
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from repl_support import T, Lines, check, run

class Peer:
    def __init__(self, script, *args):
        self.proc = subprocess.Popen(["/usr/bin/python3", script, "--port", "0", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.lines = Lines(self.proc.stdout, "peer")
        first = self.lines.next("'listening PORT'")
        check(first.startswith("listening "), "the peer printed %r" % first)
        self.port = int(first.split()[1])

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=T)


def scenario_echo(repl, peer_script):
    peer = Peer(peer_script)
    url = "ws://127.0.0.1:%d/echo" % peer.port
    lines = ["hello", "second line with  spaces ", "\u00fcn\u00efc\u00f6d\u00e9 \u2713 \U0001F600"]
    # All three lines go into the pipe at once. The pipe stays open until the echoes
    # are in: a server may drop replies it has not sent when our close arrives
    # (Python websockets does), so closing stdin earlier would make this racy.
    proc, out = interactive(repl, url)
    # Bytes 0xff 0xfe are not UTF-8: that line is skipped with a message, not sent.
    proc.stdin.write("".join(l + "\n" for l in lines[:1] + ["\udcff\udcfe"] + lines[1:]))
    proc.stdin.flush()
    for line in lines:
        out.expect(line)
    proc.stdin.close()  # End of input: tether-repl closes with 1000.
    check(proc.wait(timeout=T) == 0, "exit status %r" % proc.returncode)
    out.end()
    check("not valid UTF-8" in proc.stderr.read(), "no message for the line that is not UTF-8")
    peer.lines.expect("closed 1000 ")

    # A regular file (no epoll: the getline fallback), CRLF, last line without a
    # newline. Input ends at once, so only a prefix of the echoes may arrive.
    with tempfile.TemporaryFile("w+") as f:
        f.write("from a file\r\nlast")
        f.seek(0)
        r = run(repl, "--raw", url, stdin=f)
    got = r.stdout.splitlines()
    check(r.returncode == 0 and got == ["from a file", "last"][:len(got)], "file input failed")
    peer.lines.expect("closed 1000 ")

    with open(os.devnull) as f:  # A character device epoll refuses, at EOF at once.
        r = run(repl, "--raw", url, stdin=f)
    check(r.returncode == 0 and r.stdout == "", "/dev/null input failed")
    peer.lines.expect("closed 1000 ")
    peer.stop()


def scenario_options(repl, peer_script):
    peer = Peer(peer_script, "--subprotocols", "chat,superchat")
    url = "ws://127.0.0.1:%d" % peer.port
    proc, out = interactive(repl, url, "--subprotocol", "v2.other", "--subprotocol", "superchat",
                            "--header", "X-Tether-Test:  yes ", "--header", "Cookie: a=b")
    send(proc, "!subprotocol")
    out.expect("subprotocol superchat")
    send(proc, "!headers")
    headers = out.next("the headers")
    check('"x-tether-test": "yes"' in headers and '"cookie": "a=b"' in headers, "headers not sent: %r" % headers)
    proc.stdin.close()
    check(proc.wait(timeout=T) == 0, "exit status %r" % proc.returncode)
    check("subprotocol superchat" in proc.stderr.read(), "the chosen subprotocol is not reported")
    peer.stop()


def interactive(repl, url, *args):
    proc = subprocess.Popen([repl, "--raw", *args, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="surrogateescape")
    return proc, Lines(proc.stdout, "repl")


def send(proc, line):
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def echo_once(repl, url, line, *args):
    """Sends one line, waits for its echo, then ends the input: exit 0."""
    proc, out = interactive(repl, url, *args)
    send(proc, line)
    out.expect(line)
    proc.stdin.close()
    check(proc.wait(timeout=T) == 0, "%r: exit status %r" % (args, proc.returncode))


def scenario_server_close(repl, peer_script):
    peer = Peer(peer_script)
    url = "ws://127.0.0.1:%d" % peer.port
    for code, reason, status in ((4001, "bye now", 3), (1001, "going away", 0)):
        proc, out = interactive(repl, url)
        # stdin stays open: what arrives prints while tether-repl waits for input.
        send(proc, "!ping abc")
        out.expect("pong abc")
        send(proc, "hello")
        out.expect("hello")
        send(proc, "!close %d %s" % (code, reason))
        out.expect("closed %d %s" % (code, reason))
        check(proc.wait(timeout=T) == status, "server close %d: exit %r, expected %d" % (code, proc.returncode, status))
        proc.stdin.close()
        peer.lines.next("the peer's closed line")

    proc, out = interactive(repl, url)
    send(proc, "!drop")
    check(proc.wait(timeout=T) == 1, "a dropped connection must exit 1, got %r" % proc.returncode)
    err = proc.stderr.read()
    check("tether-repl:" in err, "no error message for a dropped connection: %r" % err)
    proc.stdin.close()
    peer.stop()


def scenario_binary(repl, _peer_script):
    """The echo peers only echo, so a server of our own sends binary messages."""
    import asyncio
    import websockets

    async def handler(ws, _path):
        await ws.send(bytes(range(20)))
        await ws.send(b"\xff")
        await ws.send(b"")
        await ws.send("text after binary")
        await ws.close(1000, "done")

    started = queue.Queue()

    async def serve():
        server = await websockets.serve(handler, "127.0.0.1", 0, compression=None)
        started.put(server.sockets[0].getsockname()[1])
        await asyncio.Future()  # Until the process ends (daemon thread).

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    port = started.get(timeout=T)
    proc, out = interactive(repl, "ws://127.0.0.1:%d" % port)
    out.expect("<binary 20 bytes> " + " ".join("%02x" % i for i in range(16)) + " ...")
    out.expect("<binary 1 bytes> ff")
    out.expect("<binary 0 bytes>")
    out.expect("text after binary")
    out.expect("closed 1000 done")
    check(proc.wait(timeout=T) == 0, "exit status %r after close 1000" % proc.returncode)
    proc.stdin.close()

    # --binary: full hex lines out; hex lines in go out as binary (the Python
    # echo peer echoes them back, so the output is the input).
    proc, out = interactive(repl, "ws://127.0.0.1:%d" % port, "--binary")
    out.expect("".join("%02x" % i for i in range(20)))
    out.expect("ff")
    out.expect("")
    out.expect("text after binary")
    out.expect("closed 1000 done")
    proc.wait(timeout=T)
    proc.stdin.close()
    peer = Peer(_peer_script)
    r = run(repl, "--raw", "--binary", "--max-messages", "2", "ws://127.0.0.1:%d/" % peer.port,
            input="00 01 ff\nnot hex\nDEADbeef\n")
    check(r.returncode == 0 and r.stdout == "0001ff\ndeadbeef\n", "--binary echo: %r" % r.stdout)
    check("not sent: the line is not hex (column 1)" in r.stderr, "bad hex line: %r" % r.stderr)
    peer.stop()


def scenario_refused(repl, _peer_script):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # Bound but not listening: connecting is refused.
    r = run(repl, "--raw", "ws://127.0.0.1:%d" % s.getsockname()[1], input="never sent\n")
    s.close()
    check(r.returncode == 1, "exit status %d, expected 1" % r.returncode)
    check("cannot connect" in r.stderr and "refused" in r.stderr.lower(), "no useful error: %r" % r.stderr)
    check(r.stdout == "", "nothing may be printed on stdout")


def scenario_usage(repl, _peer_script):
    # No URL: the embedded demo server (handler mode prints its state lines).
    r = run(repl, stdin=subprocess.DEVNULL)
    check(r.returncode == 0 and r.stdout.startswith("* embedded demo server listening on ws://127.0.0.1:"),
          "no arguments: embedded server and exit 0")
    r = run(repl, "--raw", stdin=subprocess.DEVNULL)
    check(r.returncode == 0 and r.stdout == "" and "embedded demo server listening on" in r.stderr,
          "--raw without a URL: embedded server and exit 0")
    r = run(repl, "--help")
    check(r.returncode == 0 and "--subprotocol" in r.stdout, "--help")
    r = run(repl, "--version")
    check(r.returncode == 0 and r.stdout.startswith("tether-repl "), "--version")
    # A malformed header never echoes its value (it is often a credential).
    r = run(repl, "-H", "Authorization Bearer SECRETTOKEN", "ws://x")
    check(r.returncode == 2 and "SECRETTOKEN" not in r.stderr, "-H without a colon: %r" % r.stderr)
    r = run(repl, "-H", "Host: evil", "ws://x")
    check(r.returncode == 2 and "cannot set Host" in r.stderr, "-H Host: %r" % r.stderr)
    for bad in (["--bogus", "ws://x"], ["--header", "no colon", "ws://x"], ["--ca"],
                ["-H", "X-Ctl: a\x01b", "ws://x"], ["-H", "Sec-WebSocket-Key: abc", "ws://x"],
                ["ws://a", "ws://b"], ["http://example.com"], ["--subprotocol", "", "ws://x"]):
        r = run(repl, *bad)
        check(r.returncode == 2 and "usage:" in r.stderr and r.stdout == "", "%r must exit 2 with usage" % bad)


def scenario_tls(repl, peer_script):
    certs = tempfile.mkdtemp(prefix="tether-repl-certs-")
    subprocess.run(["sh", os.path.join(os.path.dirname(peer_script), "make_certs.sh"), certs], check=True, timeout=60)
    peer = Peer(peer_script, "--tls", os.path.join(certs, "server.pem"), os.path.join(certs, "server.key"))
    by_name = "wss://localhost:%d" % peer.port
    by_ip = "wss://127.0.0.1:%d" % peer.port

    echo_once(repl, by_name, "secure", "--ca", os.path.join(certs, "ca.pem"))
    peer.lines.expect("closed 1000 ")
    echo_once(repl, by_ip, "by ip", "--ca", os.path.join(certs, "ca.pem"))
    peer.lines.expect("closed 1000 ")

    for args in ([by_name], ["--ca", os.path.join(certs, "other-ca.pem"), by_name]):
        r = run(repl, "--raw", *args, input="never\n")
        check(r.returncode == 1 and r.stdout == "", "%r must fail" % args)
        check("verif" in r.stderr.lower(), "the verification failure is not explained: %r" % r.stderr)

    echo_once(repl, by_ip, "anyway", "--insecure")
    peer.lines.expect("closed 1000 ")
    echo_once(repl, by_ip, "short flag", "-k")
    peer.lines.expect("closed 1000 ")
    peer.stop()
    shutil.rmtree(certs)


# What a hostile server sends: a window title (OSC ... BEL), CSI as a C1 control,
# DEL, and a tab; and on a terminal, how each line must look.
HOSTILE = "\x1b]0;pwned\x07 \u009b2J \x7f\tend"
HOSTILE_SHOWN = r"\x1b]0;pwned\x07 \xc2\x9b2J \x7f\x09end"


def on_terminal(repl, *args, lines):
    """Runs tether-repl with stdout on a pseudo-terminal and stdin on a pipe;
    writes `lines`, keeps stdin open until the output ends, returns (status,
    stdout bytes, stderr)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([repl, *args], stdin=subprocess.PIPE, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    proc.stdin.write("".join(l + "\n" for l in lines).encode())
    proc.stdin.flush()
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], T)
        check(r, "the terminal output did not end: %r" % out)
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            data = b""
        if not data:
            break
        out += data
    os.close(master)
    status = proc.wait(timeout=T)
    err = proc.stderr.read().decode(errors="replace")
    proc.stdin.close()
    print("$ tether-repl %s (stdout on a terminal) -> %d\n%r\n%s" % (" ".join(args), status, out, err))
    return status, out.replace(b"\r\n", b"\n"), err


def scenario_escape(repl, peer_script):
    peer = Peer(peer_script)
    url = "ws://user:secret@127.0.0.1:%d/echo" % peer.port
    shown = "ws://127.0.0.1:%d/echo" % peer.port

    # A terminal: the echo of the hostile line and the close reason, escaped as
    # handler mode escapes them; the server's close ends the session (exit 3).
    status, out, err = on_terminal(repl, "--raw", "--no-color", url,
                                   lines=[HOSTILE, "!close 4001 " + HOSTILE])
    check(status == 3, "exit status %d after close 4001" % status)
    check(b"\x1b" not in out and b"\x07" not in out and b"\x7f" not in out and b"\xc2\x9b" not in out,
          "control characters reached the terminal: %r" % out)
    check(out.decode().splitlines() == [HOSTILE_SHOWN, "closed 4001 " + HOSTILE_SHOWN], "terminal output %r" % out)
    check("connected to %s\n" % shown in err and "secret" not in err, "stderr %r" % err)
    peer.lines.next("the peer's closed line")

    # A pipe: the same bytes, unchanged.
    proc, lines = interactive(repl, url)
    send(proc, HOSTILE)
    lines.expect(HOSTILE)
    send(proc, "!close 4001 " + HOSTILE)
    lines.expect("closed 4001 " + HOSTILE)
    check(proc.wait(timeout=T) == 3, "pipe: exit status %r" % proc.returncode)
    proc.stdin.close()
    err = proc.stderr.read()
    check("connected to %s\n" % shown in err and "secret" not in err, "stderr %r" % err)
    peer.lines.next("the peer's closed line")
    peer.stop()

    # A refused URL with userinfo: the error names the URL, never the password.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, not listening: refused
    port = s.getsockname()[1]
    r = run(repl, "--raw", "ws://user:secret@127.0.0.1:%d/" % port, input="")
    s.close()
    check(r.returncode == 1, "refused: exit %d" % r.returncode)
    check("cannot connect" in r.stderr and "ws://127.0.0.1:%d/" % port in r.stderr and "secret" not in r.stderr
          and "user" not in r.stderr, "refused: stderr %r" % r.stderr)


def scenario_oneshot(repl, peer_script):
    peer = Peer(peer_script)
    url = "ws://127.0.0.1:%d/" % peer.port
    # The README's one-shot request: stdin ends at once, the reply still comes.
    r = run(repl, "--raw", url, "--max-messages", "1", input="hello\n")
    check(r.returncode == 0 and r.stdout == "hello\n", "one-shot: exit %d, stdout %r" % (r.returncode, r.stdout))
    peer.lines.expect("closed 1000 ")
    r = run(repl, "--raw", url, "--max-messages", "3", input="a\nb\nc\n")
    check(r.returncode == 0 and r.stdout == "a\nb\nc\n", "three: exit %d, stdout %r" % (r.returncode, r.stdout))
    peer.lines.expect("closed 1000 ")
    # More arrive than asked for: exactly N print.
    r = run(repl, "--raw", url, "--max-messages", "1", input="a\nb\nc\n")
    check(r.returncode == 0 and r.stdout == "a\n", "one of three: exit %d, stdout %r" % (r.returncode, r.stdout))
    peer.lines.expect("closed 1000 ")
    for bad in (["--max-messages", "0"], ["--max-messages", "x"], ["--timeout", "-1"], ["--timeout"]):
        r = run(repl, "--raw", url, *bad)
        check(r.returncode == 2 and "usage:" in r.stderr, "%r must exit 2" % bad)
    peer.stop()


def scenario_timeout(repl, peer_script):
    import time
    peer = Peer(peer_script)
    url = "ws://127.0.0.1:%d/" % peer.port
    start = time.monotonic()
    r = run(repl, "--raw", url, "--max-messages", "2", "--timeout", "500", input="only one\n")
    took = time.monotonic() - start
    check(r.returncode == 5, "exit %d, expected 5" % r.returncode)
    check(r.stdout == "only one\n", "stdout %r" % r.stdout)
    check("timed out after 500 ms (--timeout)" in r.stderr, "stderr %r" % r.stderr)
    check(0.5 <= took <= 2.5, "took %.2f s for --timeout 500" % took)  # T ≤ t ≤ 3T + 1 s
    peer.lines.expect("closed 1000 ")  # a clean close, not a drop
    peer.stop()

    # A server that accepts TCP and never answers the handshake.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    start = time.monotonic()
    r = run(repl, "--raw", "ws://127.0.0.1:%d/" % silent.getsockname()[1], "--timeout", "500", input="")
    took = time.monotonic() - start
    silent.close()
    check(r.returncode == 5 and "timed out" in r.stderr, "silent server: exit %d, %r" % (r.returncode, r.stderr))
    check(0.5 <= took <= 2.5, "silent server: took %.2f s" % took)

    # A server that completes the handshake, then never answers anything: the
    # close after the timeout gets 1 s, so the REPL is gone by T + 1 s.
    port = mute_server()
    start = time.monotonic()
    r = run(repl, "--raw", "ws://127.0.0.1:%d/" % port, "--timeout", "500", input="")
    took = time.monotonic() - start
    check(r.returncode == 5, "mute server: exit %d" % r.returncode)
    check(0.5 <= took <= 4.5, "mute server: took %.2f s for --timeout 500 plus the 1 s close" % took)


def mute_server():
    """Accepts WebSocket handshakes, then reads nothing and sends nothing more."""
    import base64
    import hashlib
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    held = []

    def serve():
        while True:
            conn, _ = srv.accept()
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = re.search(rb"Sec-WebSocket-Key: *(\S+)", request, re.I).group(1)
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            held.append(conn)  # kept open, never read again

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def scenario_slash(repl, peer_script):
    peer = Peer(peer_script)
    url = "ws://127.0.0.1:%d/" % peer.port
    proc, out = interactive(repl, url, "--slash")
    send(proc, "/ping abc")
    send(proc, "/nope")
    send(proc, "/close 4000 " + "x" * 124)  # refused: the session goes on
    send(proc, "after")
    out.expect("after")  # stdin is read in order: the /ping is done by now
    send(proc, "/close 4000 see you")
    check(proc.wait(timeout=T) == 0, "our /close: exit %r" % proc.returncode)
    proc.stdin.close()
    err = proc.stderr.read()
    check(re.search(r"^pong in \d+\.\d{3} ms$", err, re.M), "no round-trip time: %r" % err)
    check("unknown command '/nope'" in err, "no error for /nope: %r" % err)
    check("REASON must be UTF-8 of at most 123 bytes" in err, "a long /close reason was not refused: %r" % err)
    peer.lines.expect("closed 4000 see you")
    # Without --slash, the same line is text.
    echo_once(repl, url, "/ping abc")
    peer.lines.expect("closed 1000 ")
    peer.stop()


def scenario_verbose(repl, peer_script):
    peer = Peer(peer_script, "--subprotocols", "chat")
    url = "ws://127.0.0.1:%d/path?q=1" % peer.port
    proc, out = interactive(repl, url, "-v", "-H", "Authorization: Bearer s3cret", "-H", "X-Short: yes",
                            "-s", "chat")
    send(proc, "!headers")
    headers = out.next("the headers")
    check('"x-short": "yes"' in headers and '"authorization": "Bearer s3cret"' in headers,
          "-H did not reach the server: %r" % headers)
    send(proc, "!subprotocol")
    out.expect("subprotocol chat")
    proc.stdin.close()
    check(proc.wait(timeout=T) == 0, "exit status %r" % proc.returncode)
    err = proc.stderr.read()
    for line in ("> GET /path?q=1 HTTP/1.1", "> Authorization: [redacted]", "> X-Short: yes",
                 "> Sec-WebSocket-Protocol: chat", "< HTTP/1.1 101 Switching Protocols",
                 "< Sec-WebSocket-Protocol: chat"):
        check(line + "\n" in err, "-v did not print %r: %r" % (line, err))
    check("s3cret" not in err, "-v printed the secret: %r" % err)
    peer.lines.expect("closed 1000 ")
    peer.stop()


def scenario_deflate(repl, peer_script):
    peer = Peer(peer_script, "--deflate", "on")
    url = "ws://127.0.0.1:%d/" % peer.port
    long_line = "tether compresses " * 6000  # about 100 KiB of text
    r = run(repl, "--raw", url, "--deflate", "-v", "--max-messages", "1", input=long_line + "\n")
    check(r.returncode == 0 and r.stdout == long_line + "\n", "the long line did not come back: exit %d" % r.returncode)
    check("> Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=12, permessage-deflate\n" in r.stderr,
          "-v does not show the offer: %r" % r.stderr)
    check(re.search(r"^< Sec-WebSocket-Extensions: permessage-deflate", r.stderr, re.M), "no answer: %r" % r.stderr)
    peer.lines.expect("closed 1000 ")
    r = run(repl, "--raw", url, "--no-deflate", "-v", input="")
    check(r.returncode == 0 and "Sec-WebSocket-Extensions" not in r.stderr, "--no-deflate offered: %r" % r.stderr)
    peer.lines.expect("closed 1000 ")
    # Handler mode: the status names what the server accepted.
    r = run(repl, url, input="status\n")
    status = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    check(r.returncode == 0 and status and status[0]["extensions"].startswith("permessage-deflate"),
          "status extensions: %r" % status)
    peer.lines.expect("closed 1000 ")
    peer.stop()


def start_tinyproxy(tmp, bind):
    """tinyproxy in the foreground with our own config, outgoing from `bind`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = os.path.join(tmp, "tinyproxy.conf")
    with open(conf, "w") as f:
        f.write("Port %d\nListen 127.0.0.1\nTimeout 60\nBind %s\n" % (port, bind))
    proc = subprocess.Popen(["/usr/bin/tinyproxy", "-d", "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # tinyproxy prints nothing when it listens: try its port until it answers.
    deadline = time.monotonic() + T
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            check(proc.poll() is None and time.monotonic() < deadline, "tinyproxy did not start")
            time.sleep(0.02)


def scenario_proxy(repl, peer_script):
    peer = Peer(peer_script)
    url = "ws://127.0.0.1:%d/" % peer.port
    with tempfile.TemporaryDirectory() as tmp:
        proxy, port = start_tinyproxy(tmp, "127.0.0.2")
        try:
            proxy_url = "http://127.0.0.1:%d" % port
            r = run(repl, "--raw", "--max-messages", "1", "--proxy", proxy_url, url, input="!peer\n")
            check(r.returncode == 0 and r.stdout == "peer 127.0.0.2\n", "--proxy: %r" % r.stdout)
            r = run(repl, "--raw", "--max-messages", "1", url, input="!peer\n", env={"http_proxy": proxy_url})
            check(r.returncode == 0 and r.stdout == "peer 127.0.0.2\n", "http_proxy: %r" % r.stdout)
            r = run(repl, "--raw", "--max-messages", "1", "--no-proxy", url, input="!peer\n",
                    env={"http_proxy": proxy_url})
            check(r.returncode == 0 and r.stdout == "peer 127.0.0.1\n", "--no-proxy: %r" % r.stdout)
        finally:
            proxy.terminate()
            proxy.wait(timeout=T)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    r = run(repl, "--raw", "--proxy", "http://user:SECRET@127.0.0.1:%d" % dead, url, input="")
    check(r.returncode == 1 and "cannot reach the proxy" in r.stderr and "http://127.0.0.1:%d" % dead in r.stderr,
          "unreachable proxy: %r" % r.stderr)
    check("SECRET" not in r.stderr + r.stdout, "the proxy's password was printed")
    r = run(repl, "--raw", "--proxy", "ftp://127.0.0.1:21", url, input="")
    check(r.returncode == 1 and "invalid proxy URL" in r.stderr, "bad proxy URL: %r" % r.stderr)
    r = run(repl, "--raw", "--proxy", "", url, input="")
    check(r.returncode == 2, "empty --proxy: exit %d" % r.returncode)
    # No URL: the embedded demo server, never through a proxy from the environment.
    r = run(repl, "--raw", "--max-messages", "1", input='{"path":"echo.x","data":1}\n',
            env={"http_proxy": "http://127.0.0.1:%d" % dead, "all_proxy": "http://127.0.0.1:%d" % dead})
    check(r.returncode == 0 and '"path":"echo.x"' in r.stdout, "embedded server behind a dead proxy: %r %r" %
          (r.stdout, r.stderr))
    peer.stop()


def scenario_unix(repl, peer_script):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ws.sock")
        peer = Peer(peer_script, "--unix", path)
        r = run(repl, "--raw", "--max-messages", "1", "--unix-socket", path, "ws://localhost/x", input="!peer\n")
        check(r.returncode == 0 and r.stdout == "peer unix\n", "--unix-socket: %r" % r.stdout)
        peer.lines.expect("closed 1000 ")
        missing = os.path.join(tmp, "missing.sock")
        r = run(repl, "--raw", "--unix-socket", missing, "ws://localhost/", input="")
        check(r.returncode == 1 and "unix socket " + missing in r.stderr, "missing socket: %r" % r.stderr)
        peer.stop()


def main():
    repl, peer_script, scenario = sys.argv[1:4]
    globals()["scenario_" + scenario.replace("-", "_")](repl, peer_script)
    print("ok")


if __name__ == "__main__":
    main()
