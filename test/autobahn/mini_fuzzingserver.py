#!/usr/bin/python3
"""A tiny stand-in for Autobahn|Testsuite's fuzzingserver, to self-check autobahn-client.

Run with Debian's interpreter (python3-websockets, legacy asyncio API):

    /usr/bin/python3 test/autobahn/mini_fuzzingserver.py [--port N] [--host H]

It speaks the fuzzingserver's URL protocol, with 3 plain cases and the
permessage-deflate matrix of Autobahn's sections 12 and 13 after them:

  /getCaseCount                   sends the case count as text, then closes (1000)
  /runCase?case=N&agent=A         cases 1-3: sends a text, a binary and a fragmented
                                  message (case 2 also pings first and waits for the
                                  pong), expects all three echoed with the same type
                                  and content; cases 4 and up: accepts
                                  permessage-deflate with the case's parameters
                                  (section 12: messages of 16 B to 256 KiB, text and
                                  binary, context takeover; section 13:
                                  client_max_window_bits 9-15, no context takeover
                                  either way, a small server window), sends 10
                                  messages and expects them echoed; closes with
                                  1000 if all matched, else 4000 with the reason
  /updateReports?agent=A          closes (1000)

stdout (flushed per line): "listening PORT" first, then "case N AGENT ok|failed
WHY" per case and "report AGENT" per updateReports. Exits 0 on SIGTERM/SIGINT or
when stdin reaches EOF (keep a pipe open), like the echo peers in test/peers.
"""
import argparse
import asyncio
import os
import signal
import sys
import threading
import urllib.parse

import websockets
import websockets.exceptions
import websockets.frames

TIMEOUT = 10.0  # seconds to wait for each echo or pong

# Section 12: sizes x (text, binary), default parameters (context takeover).
DEFLATE_SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072, 262144]
DEFLATE_CASES = [(size, kind, {}) for size in DEFLATE_SIZES for kind in ("text", "binary")]
# Section 13: what the server answers to our offer.
DEFLATE_CASES += [(4096, "text", {"client_max_window_bits": bits}) for bits in range(9, 16)]
DEFLATE_CASES += [
    (4096, "text", {"client_no_context_takeover": True}),
    (4096, "text", {"server_no_context_takeover": True}),
    (4096, "text", {"client_no_context_takeover": True, "server_no_context_takeover": True}),
    (4096, "text", {"client_no_context_takeover": True, "client_max_window_bits": 9}),
    (65536, "binary", {"server_max_window_bits": 9}),
]
CASE_COUNT = 3 + len(DEFLATE_CASES)


def deflate_case(n):
    """(size, kind, factory parameters) of case n >= 4, else None."""
    return DEFLATE_CASES[n - 4] if n >= 4 else None


def compressible(n, seed, kind):
    """A message of n bytes that deflates well but is not a repeat of one word."""
    words = ["tether ", "autobahn ", "deflate ", "window ", "takeover ", "frame "]
    out, x = [], seed
    size = 0
    while size < n:
        x = (x * 1103515245 + 12345) % (1 << 31)
        w = words[x % len(words)]
        out.append(w)
        size += len(w)
    text = "".join(out)[:n]
    return text if kind == "text" else text.encode()


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def case_messages(n):
    """The three messages of case n: (text, binary, fragments of the third)."""
    text = "case %d: h\u00e9llo w\u00f6rld \u2713 \U0001F600" % n
    binary = bytes(range(256)) * (4 * n) + b"\x00\xff"
    if n == 3:
        # Binary, over the 16-bit length limit, split into uneven frames.
        big = bytes((i * 7 + 3) % 256 for i in range(70001))
        fragments = [big[:1], big[1:65536], big[65536:]]
    else:
        # Text fragments split inside a multi-byte UTF-8 sequence are not allowed
        # by websockets (it sends str fragments), so split between characters.
        fragments = ["fragmented ", "\u00fc\u00f1\u00ee", "c\u00f6d\u00e9 %d" % n]
    return text, binary, fragments


async def as_async(items):
    for item in items:
        yield item


async def run_deflate_case(ws, n):
    size, kind, _ = deflate_case(n)
    if not ws.extensions or ws.extensions[0].name != "permessage-deflate":
        return "permessage-deflate was not negotiated"
    # Count the client's compressed first frames (RSV1): autobahn-client
    # compresses every message, with the window this case allowed it.
    ext = ws.extensions[0]
    compressed = [0]
    decode = ext.decode

    def counting(frame, *, max_size=None):
        if frame.opcode in (websockets.frames.Opcode.TEXT, websockets.frames.Opcode.BINARY) and frame.rsv1:
            compressed[0] += 1
        return decode(frame, max_size=max_size)

    ext.decode = counting
    for i in range(10):
        want = compressible(size, n * 100 + i, kind)
        await ws.send(want)
        try:
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        except asyncio.TimeoutError:
            return "no echo of message %d" % i
        if type(got) is not type(want) or got != want:
            return "echo %d differs" % i
    if compressed[0] != 10:
        return "%d of the 10 echoes were compressed" % compressed[0]
    return None


class CaseProtocol(websockets.WebSocketServerProtocol):
    """Accepts permessage-deflate with the parameters of the case in the path."""

    def process_extensions(self, headers, available_extensions):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        try:
            case = deflate_case(int(query.get("case", ["0"])[0]))
        except ValueError:
            case = None
        if case is None:
            return super().process_extensions(headers, None)
        from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
        factory = ServerPerMessageDeflateFactory(**case[2])
        return super().process_extensions(headers, [factory])


async def run_case(ws, n):
    """Returns None when every echo matched, else why not."""
    if deflate_case(n):
        return await run_deflate_case(ws, n)
    if n == 2:
        pong = await ws.ping(b"mini")
        try:
            await asyncio.wait_for(pong, TIMEOUT)
        except asyncio.TimeoutError:
            return "no pong"
    text, binary, fragments = case_messages(n)
    third = fragments[0][:0].join(fragments)
    await ws.send(text)
    await ws.send(binary)
    await ws.send(as_async(fragments))
    for name, want in (("text", text), ("binary", binary), ("fragmented", third)):
        try:
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        except asyncio.TimeoutError:
            return "no %s echo" % name
        if type(got) is not type(want):
            return "%s echo has the wrong type" % name
        if got != want:
            return "%s echo differs" % name
    return None


async def handler(ws, path):
    url = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(url.query)
    agent = query.get("agent", [""])[0]
    try:
        if url.path == "/getCaseCount":
            await ws.send(str(CASE_COUNT))
            await ws.close(1000)
        elif url.path == "/runCase":
            n = int(query.get("case", ["0"])[0])
            if not 1 <= n <= CASE_COUNT or not agent:
                await ws.close(4000, "bad case or agent")
                return
            why = await run_case(ws, n)
            out("case %d %s %s" % (n, agent, "ok" if why is None else "failed " + why))
            if why is None:
                await ws.close(1000)
            else:
                await ws.close(4000, why)
        elif url.path == "/updateReports":
            out("report %s" % agent)
            await ws.close(1000)
        else:
            await ws.close(4000, "unknown path")
    except websockets.exceptions.ConnectionClosed as e:
        if url.path == "/runCase":
            out("case %s %s failed connection closed (%s)" % (query.get("case", ["?"])[0], agent, e))


def watch_stdin(loop, stop):
    try:
        while sys.stdin.buffer.read1(65536):
            pass
    except (OSError, ValueError):
        pass
    loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))


async def main(opts):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    threading.Thread(target=watch_stdin, args=(loop, stop), daemon=True).start()
    server = await websockets.serve(handler, opts.host, opts.port, compression=None,
                                    max_size=None, ping_interval=None, create_protocol=CaseProtocol)
    out("listening %d" % server.sockets[0].getsockname()[1])
    await stop
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Autobahn fuzzingserver stand-in (see module docstring)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    asyncio.run(main(p.parse_args()))
