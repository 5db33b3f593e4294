#!/usr/bin/python3
"""WebSocket echo peer for tether's tests (Python `websockets`, legacy asyncio API).

Run with Debian's interpreter: /usr/bin/python3 test/peers/echo_server.py [options]
Same contract as echo_server.js (see README.md in this directory):

  --port N              listen port (default 0 = pick a free one)
  --host H              listen address (default 127.0.0.1)
  --subprotocols a,b    select the first client-offered protocol in this list
  --tls CERT KEY        serve wss:// with this certificate chain and key
  --client-ca FILE      with --tls: require a client certificate signed by FILE
  --tls-max-version V   with --tls: the newest TLS version offered, "1.1" (to test
                        that clients refuse it) or "1.2"
  --max-size N          max incoming message size in bytes (default: unlimited)
  --deflate SPEC        accept permessage-deflate: "on" (the library's defaults),
                        "no-context-takeover" (both directions), or
                        "window=N" (server_max_window_bits and client_max_window_bits N)
  --reply               (this peer only) answer requests instead of echoing them:
                        a text message that is a JSON envelope with an "id" (or a
                        batch, an array of them) gets {"path", "data", "reply_to": id}
                        per request, in one frame; other messages are echoed
  --reply-limit N       with --reply: answer only the first N requests (this
                        process, all connections), then take requests silently

stdout: "listening PORT" once listening; "closed CODE REASON" per ended
connection (the close code/reason received from the client, 1006 if none).
Echoes text as text and binary as binary, in order; compression is off
unless --deflate.
Text messages starting with "!" are commands:
  !close CODE REASON   start a close handshake with CODE (default 1000), REASON
  !ping PAYLOAD        send a ping; on the matching pong send "pong PAYLOAD"
  !drop                abort the TCP connection without a close frame
  !subprotocol         reply "subprotocol NAME" (NAME empty if none)
  !headers             reply with the request headers as JSON (lowercase names)
Other "!..." messages are echoed. A failing command replies "error MESSAGE".
Exits 0 on SIGTERM/SIGINT or when stdin reaches EOF (no orphans).
"""
import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import threading

import websockets
import websockets.exceptions
import websockets.frames

OPTS = None


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def select_subprotocol(client_protocols, server_protocols):
    return next((p for p in client_protocols if p in server_protocols), None)


async def command(ws, text, tasks):
    name, _, arg = text.partition(" ")
    if name == "!close":
        code, _, reason = arg.partition(" ")
        code = int(code) if code else 1000
        # Validate first: an invalid close frame would wedge the connection.
        if len(websockets.frames.Close(code, reason).serialize()) > 125:
            raise ValueError("close reason too long")
        await ws.close(code, reason)
    elif name == "!ping":
        waiter = await ws.ping(arg)

        async def await_pong():
            try:
                await waiter
                await ws.send("pong " + arg)
            except (asyncio.CancelledError, websockets.exceptions.ConnectionClosed):
                pass

        task = asyncio.ensure_future(await_pong())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    elif name == "!drop":
        ws.transport.abort()
    elif name == "!peer":
        # The client's address as the server sees it (a proxy's, through one).
        peer = ws.remote_address
        await ws.send("peer %s" % (peer[0] if isinstance(peer, tuple) else "unix"))
    elif name == "!subprotocol":
        await ws.send("subprotocol " + (ws.subprotocol or ""))
    elif name == "!headers":
        headers = ws.request_headers
        await ws.send(json.dumps(
            {k.lower(): ", ".join(headers.get_all(k)) for k in headers}))
    else:
        await ws.send(text)


ANSWERED = 0  # requests answered by this process (--reply-limit)


def replies(text):
    """--reply: the replies to the requests in an envelope or a batch (the text
    itself if it holds none; None when --reply-limit leaves nothing to answer)."""
    global ANSWERED
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    envs = doc if isinstance(doc, list) else [doc]
    requests = [e for e in envs if isinstance(e, dict) and "id" in e]
    if not requests:
        return text
    if OPTS.reply_limit is not None:
        requests = requests[:max(0, OPTS.reply_limit - ANSWERED)]
    ANSWERED += len(requests)
    out = [{"path": e.get("path"), "data": e.get("data"), "reply_to": e["id"]} for e in requests]
    if not out:
        return None
    return json.dumps(out[0] if len(out) == 1 else out, separators=(",", ":"))


async def handler(ws, _path=None):
    tasks = set()  # keep !ping tasks referenced
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("!"):
                try:
                    await command(ws, msg, tasks)
                except websockets.exceptions.ConnectionClosed:
                    raise
                except Exception as e:  # bad code, ping payload too long, ...
                    await ws.send("error %s" % e)
            elif OPTS.reply and isinstance(msg, str) and (msg.startswith("{") or msg.startswith("[")):
                answer = replies(msg)
                if answer is not None:
                    await ws.send(answer)
            else:
                await ws.send(msg)
    except websockets.exceptions.ConnectionClosed:
        pass
    finally:
        await ws.wait_closed()
        out("closed %d %s" % (ws.close_code, ws.close_reason or ""))


def watch_stdin(loop, stop):
    try:
        while sys.stdin.buffer.read1(65536):
            pass
    except (OSError, ValueError):
        pass
    loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    threading.Thread(target=watch_stdin, args=(loop, stop), daemon=True).start()

    ssl_ctx = None
    if OPTS.tls:
        ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_ctx.load_cert_chain(OPTS.tls[0], OPTS.tls[1])
        if OPTS.tls_max_version:
            version = {"1.1": ssl.TLSVersion.TLSv1_1, "1.2": ssl.TLSVersion.TLSv1_2}[OPTS.tls_max_version]
            ssl_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS 1.1 above level 0
            ssl_ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            ssl_ctx.maximum_version = version
        if OPTS.client_ca:
            ssl_ctx.verify_mode = ssl.CERT_REQUIRED
            ssl_ctx.load_verify_locations(OPTS.client_ca)
    protocols = [p for p in (OPTS.subprotocols or "").split(",") if p]

    extensions = None
    if OPTS.deflate:
        from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
        settings = {}
        if OPTS.deflate == "no-context-takeover":
            settings = dict(server_no_context_takeover=True, client_no_context_takeover=True)
        elif OPTS.deflate.startswith("window="):
            bits = int(OPTS.deflate.split("=")[1])
            settings = dict(server_max_window_bits=bits, client_max_window_bits=bits)
        extensions = [ServerPerMessageDeflateFactory(**settings)]
    common = dict(ssl=ssl_ctx, subprotocols=protocols or None, select_subprotocol=select_subprotocol,
                  compression=None, extensions=extensions, max_size=OPTS.max_size, ping_interval=None)
    if OPTS.unix:
        server = await websockets.unix_serve(handler, OPTS.unix, **common)
        out("listening 0")  # no port: the socket is at --unix PATH
    else:
        server = await websockets.serve(handler, OPTS.host, OPTS.port, **common)
        out("listening %d" % server.sockets[0].getsockname()[1])
    await stop
    # Exit at once, like the Node peer: open connections just vanish.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="WebSocket echo peer (see README.md)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--subprotocols", default="")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--client-ca", metavar="FILE")
    p.add_argument("--tls-max-version", default=None)
    p.add_argument("--max-size", type=int, default=None)
    p.add_argument("--deflate", default=None)
    p.add_argument("--unix", metavar="PATH", help="listen on a Unix-domain socket instead of TCP")
    p.add_argument("--reply", action="store_true", help="answer envelopes with an id (requests)")
    p.add_argument("--reply-limit", type=int, default=None, help="with --reply: answer only the first N requests")
    OPTS = p.parse_args()
    asyncio.run(main())
