#!/usr/bin/python3
"""Self-test for the echo peers (echo_server.py and echo_server.js) and make_certs.sh.

Run: /usr/bin/python3 test/peers/selftest.py   (exits non-zero on failure)

Starts each peer on 127.0.0.1 with --port 0, reads "listening PORT", and drives
it with a websockets (legacy asyncio API) client: text/binary echo (1 MiB and
16 MiB), ordering, the "!" commands, the "closed CODE REASON" lines,
subprotocol negotiation, --max-size, --tls (trusting ca.pem; other-ca.pem must
fail), and exit on stdin EOF / SIGTERM. Every wait is bounded.
"""
import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time

import websockets
import websockets.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
T = 5.0  # per-step timeout (seconds)
MiB = 1024 * 1024

PEERS = {
    "py": (["/usr/bin/python3", os.path.join(HERE, "echo_server.py")], None),
    "js": (["node", os.path.join(HERE, "echo_server.js")], {"NODE_PATH": "/usr/share/nodejs"}),
}


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


class Peer:
    """One echo server subprocess; stdin is a pipe we hold open."""

    def __init__(self, kind, *args):
        self.kind, self.args = kind, list(args)

    async def __aenter__(self):
        cmd, extra_env = PEERS[self.kind]
        env = dict(os.environ, **(extra_env or {}))
        self.proc = await asyncio.create_subprocess_exec(
            *cmd, "--port", "0", *self.args, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = bytearray()
        self.drain = asyncio.ensure_future(self._drain_stderr())
        line = await self.line()
        check(line.startswith("listening "), "expected 'listening PORT', got %r" % line)
        self.port = int(line.split()[1])
        check(self.port > 0, "bad port")
        return self

    async def _drain_stderr(self):
        while chunk := await self.proc.stderr.read(65536):
            self.stderr += chunk

    async def line(self):
        raw = await asyncio.wait_for(self.proc.stdout.readline(), T)
        check(raw.endswith(b"\n"), "%s peer stdout ended (stderr: %s)"
              % (self.kind, self.stderr.decode(errors="replace")))
        return raw.decode()[:-1]

    async def expect(self, want):
        got = await self.line()
        check(got == want, "%s peer printed %r, expected %r" % (self.kind, got, want))

    async def wait_exit(self):
        return await asyncio.wait_for(self.proc.wait(), T)

    async def __aexit__(self, *exc):
        if self.proc.returncode is None:
            self.proc.kill()
            await asyncio.wait_for(self.proc.wait(), T)
        self.drain.cancel()


def connect(url, **kw):
    kw.setdefault("max_size", None)
    return websockets.connect(url, compression=None, open_timeout=T, close_timeout=T,
                              ping_interval=None, **kw)


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), T)


async def closed(ws):
    await asyncio.wait_for(ws.wait_closed(), T)
    return ws.close_code, ws.close_reason


async def test_echo(kind):
    async with Peer(kind) as peer:
        url = "ws://127.0.0.1:%d/some/path?q=1" % peer.port
        async with connect(url, extra_headers={"X-Tether-Test": "yes"}) as ws:
            for msg in ["hello", "", "héllo ✓ 🎉", b"\x00\xffbin", b"", "!unknown cmd"]:
                await ws.send(msg)
                got = await recv(ws)
                check(got == msg and type(got) is type(msg), "echo of %r gave %r" % (msg, got))
            for size in (MiB, 16 * MiB):
                blob = os.urandom(size)
                await ws.send(blob)
                check(await asyncio.wait_for(ws.recv(), 4 * T) == blob, "binary %d echo" % size)
            big_text = "x" * (2 * MiB)
            await ws.send(big_text)
            check(await recv(ws) == big_text, "2 MiB text echo")
            msgs = [("t%d" % i) if i % 2 else ("b%d" % i).encode() for i in range(200)]
            for m in msgs:
                await ws.send(m)
            check([await recv(ws) for _ in msgs] == msgs, "ordering of 200 messages")
            await ws.send("!subprotocol")
            check(await recv(ws) == "subprotocol ", "no subprotocol expected")
            await ws.send("!headers")
            headers = json.loads(await recv(ws))
            check(headers.get("x-tether-test") == "yes", "headers: %r" % headers)
            check(headers.get("upgrade", "").lower() == "websocket", "headers: %r" % headers)
            check(all(k == k.lower() for k in headers), "header names not lowercase")
            await ws.send("!ping hello ping")
            check(await recv(ws) == "pong hello ping", "!ping -> pong")
            await ws.send("!ping")
            check(await recv(ws) == "pong ", "!ping with empty payload")
            for bad in ["!close 1005 nope", "!close abc", "!close 4000 " + "r" * 124,
                        "!ping " + "p" * 126]:
                await ws.send(bad)
                got = await recv(ws)
                check(got.startswith("error "), "%r -> %r, expected 'error ...'" % (bad[:20], got))
            await ws.send("still open")
            check(await recv(ws) == "still open", "connection usable after error")
            await ws.close(4321, "client bye")
        await peer.expect("closed 4321 client bye")


async def test_close_drop(kind):
    async with Peer(kind) as peer:
        url = "ws://127.0.0.1:%d/" % peer.port
        async with connect(url) as ws:
            await ws.send("!close 4001 bye")
            got = await closed(ws)
            check(got == (4001, "bye"), "client saw %r after !close" % (got,))
        await peer.expect("closed 4001 bye")
        async with connect(url) as ws:
            await ws.send("!close 4002 two words")
            got = await closed(ws)
            check(got == (4002, "two words"), "client saw %r" % (got,))
        await peer.expect("closed 4002 two words")
        async with connect(url) as ws:
            await ws.send("!close")
            check(await closed(ws) == (1000, ""), "bare !close")
        await peer.expect("closed 1000 ")
        async with connect(url) as ws:
            await ws.send("!drop")
            got = await closed(ws)
            check(got[0] == 1006, "client saw %r after !drop" % (got,))
        await peer.expect("closed 1006 ")
        async with connect(url) as ws:  # client vanishes without a close frame
            ws.transport.abort()
        await peer.expect("closed 1006 ")


async def test_subprotocols(kind):
    async with Peer(kind, "--subprotocols", "chat,superchat") as peer:
        url = "ws://127.0.0.1:%d/" % peer.port
        for offered, want in [(["superchat", "chat"], "superchat"), (["x", "chat"], "chat"),
                              (["other"], None), (None, None)]:
            async with connect(url, subprotocols=offered) as ws:
                check(ws.subprotocol == want, "offered %r got %r" % (offered, ws.subprotocol))
                await ws.send("!subprotocol")
                check(await recv(ws) == "subprotocol " + (want or ""), "!subprotocol")
            await peer.expect("closed 1000 ")
    async with Peer(kind) as peer:  # no --subprotocols: never select one
        async with connect("ws://127.0.0.1:%d/" % peer.port, subprotocols=["chat"]) as ws:
            check(ws.subprotocol is None, "selected without --subprotocols")


async def test_max_size(kind):
    async with Peer(kind, "--max-size", "1000") as peer:
        async with connect("ws://127.0.0.1:%d/" % peer.port) as ws:
            await ws.send(b"a" * 1000)
            check(await recv(ws) == b"a" * 1000, "message at the limit")
            await ws.send(b"a" * 1001)
            got = await closed(ws)
            check(got[0] == 1009, "over --max-size: client saw %r" % (got,))
        line = await peer.line()
        check(line.startswith("closed "), "closed line after 1009: %r" % line)


async def test_tls(kind, certs):
    pem = lambda name: os.path.join(certs, name)
    async with Peer(kind, "--tls", pem("server.pem"), pem("server.key")) as peer:
        good = ssl.create_default_context(cafile=pem("ca.pem"))
        for host in ("localhost", "127.0.0.1"):
            async with connect("wss://%s:%d/" % (host, peer.port), ssl=good) as ws:
                blob = os.urandom(MiB)
                await ws.send(blob)
                check(await recv(ws) == blob, "wss echo via %s" % host)
                await ws.send("!close 4003 tls bye")
                check(await closed(ws) == (4003, "tls bye"), "wss !close")
            await peer.expect("closed 4003 tls bye")
        bad = ssl.create_default_context(cafile=pem("other-ca.pem"))
        try:
            async with connect("wss://localhost:%d/" % peer.port, ssl=bad):
                raise Fail("connected although the peer's CA is not trusted")
        except ssl.SSLCertVerificationError:
            pass
        # The failed handshake opened no WebSocket, so it must print no "closed" line.
        async with connect("wss://localhost:%d/" % peer.port, ssl=good) as ws:
            await ws.close(4004, "after bad ca")
        await peer.expect("closed 4004 after bad ca")


async def test_tls_plain_rejected(kind, certs):
    async with Peer(kind, "--tls", os.path.join(certs, "server.pem"),
                    os.path.join(certs, "server.key")) as peer:
        try:
            async with connect("ws://127.0.0.1:%d/" % peer.port):
                raise Fail("plain ws:// handshake succeeded against a wss peer")
        except (websockets.exceptions.InvalidMessage, websockets.exceptions.InvalidHandshake,
                ConnectionError, EOFError, asyncio.TimeoutError):
            pass


async def test_exit(kind):
    async with Peer(kind) as peer:
        async with connect("ws://127.0.0.1:%d/" % peer.port) as ws:
            await ws.send("x")
            await recv(ws)
            peer.proc.stdin.close()
            check(await peer.wait_exit() == 0, "exit code after stdin EOF")
            check((await closed(ws))[0] == 1006, "connection dropped at exit")
    async with Peer(kind) as peer:
        peer.proc.send_signal(signal.SIGTERM)
        check(await peer.wait_exit() == 0, "exit code after SIGTERM")


def test_certs(certs):
    script = os.path.join(HERE, "make_certs.sh")
    r = subprocess.run([script, certs], capture_output=True, timeout=20)
    check(r.returncode == 0 and not r.stdout and not r.stderr, "make_certs.sh: %r" % (r,))
    before = open(os.path.join(certs, "server.pem"), "rb").read()
    r = subprocess.run([script, certs], capture_output=True, timeout=20)
    check(r.returncode == 0 and not r.stdout and not r.stderr, "make_certs.sh rerun: %r" % (r,))
    check(open(os.path.join(certs, "server.pem"), "rb").read() == before, "rerun changed certs")
    r = subprocess.run([script], capture_output=True, timeout=20)
    check(r.returncode != 0, "make_certs.sh without DIR must fail")
    text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                           os.path.join(certs, "server.pem")],
                          capture_output=True, text=True, timeout=20).stdout
    check("DNS:localhost, IP Address:127.0.0.1" in text, "SAN: %r" % text)


async def main():
    failures = 0
    with tempfile.TemporaryDirectory() as certs:
        started = time.monotonic()
        try:
            test_certs(certs)
            print("PASS make_certs.sh (%.1fs)" % (time.monotonic() - started), flush=True)
        except Exception as e:
            failures += 1
            print("FAIL make_certs.sh: %r" % e, flush=True)
        tests = [("echo+commands", test_echo), ("close/drop", test_close_drop),
                 ("subprotocols", test_subprotocols), ("max-size", test_max_size),
                 ("tls", lambda k: test_tls(k, certs)),
                 ("tls-plain-rejected", lambda k: test_tls_plain_rejected(k, certs)),
                 ("exit", test_exit)]
        for kind in PEERS:
            for name, fn in tests:
                started = time.monotonic()
                try:
                    await asyncio.wait_for(fn(kind), 20)
                    print("PASS %s %s (%.1fs)" % (kind, name, time.monotonic() - started), flush=True)
                except Exception as e:
                    failures += 1
                    print("FAIL %s %s: %r" % (kind, name, e), flush=True)
    print("%s (%d failure%s)" % ("FAILED" if failures else "OK", failures, "" if failures == 1 else "s"))
    return 1 if failures else 0

if __name__ == "__main__":
    deadline = 28
    try:
        sys.exit(asyncio.run(asyncio.wait_for(main(), deadline)))
    except asyncio.TimeoutError:
        print("FAIL: selftest exceeded %ds" % deadline)
        sys.exit(1)
