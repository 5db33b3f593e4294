#!/usr/bin/python3
"""Runs a benchmark client against an echo peer and validates its JSON line.

    /usr/bin/python3 bench_client_test.py CLIENT PEER [client options...]
    /usr/bin/python3 bench_client_test.py CLIENT PEER --expect-refused
    /usr/bin/python3 bench_client_test.py CLIENT PEER --expect-too-big

CLIENT is bench-client ("client":"tether"), bench-beast-client ("beast") or
bench-websocketpp-client ("websocketpp"): all take the same options and print the
same JSON line (bench-client adds "routed", and "batched" with --batch). PEER is echo_server.py from
test/peers (run with /usr/bin/python3), echo_server.js (run with node,
NODE_PATH=/usr/share/nodejs) or the bench-echo-server executable (run with
--print-closes). The options after it go to the client with --url added.
Prints the client's JSON line, so the same script serves the
'bench-client-python-echo' benchmark. With --expect-refused, checks instead that
the client exits non-zero without JSON when nothing listens; with --expect-too-big,
that it does so when the peer closes (1009) mid-run. Every wait is bounded.
"""
import json
import os
import socket
import subprocess
import sys

T = 20.0  # seconds to wait for the peer
KEYS = ["client", "connections", "messages", "size", "window", "seconds", "msgs_per_s", "mb_per_s",
        "p50_us", "p99_us", "max_rss_kb", "cpu_s"]
CLIENTS = {"bench-client": "tether", "bench-beast-client": "beast", "bench-websocketpp-client": "websocketpp",
           "bench-epoll-client": "epoll"}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def start_peer(script, *args):
    """Starts the peer with a pipe for stdin (it exits when that closes); returns (proc, port)."""
    if script.endswith(".js"):
        cmd, env = ["node", script], dict(os.environ, NODE_PATH="/usr/share/nodejs")
    elif script.endswith(".py"):
        cmd, env = ["/usr/bin/python3", script], None
    else:
        cmd, env = [script, "--print-closes"], None
    proc = subprocess.Popen(cmd + ["--port", "0", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    line = proc.stdout.readline()  # Bounded by the meson timeout; the peer prints it at once.
    if not line.startswith("listening "):
        fail("the peer printed %r instead of 'listening PORT'" % line)
    return proc, int(line.split()[1])


def option(args, name, default=None):
    return int(args[args.index(name) + 1]) if name in args else default


def check_result(line, args, client):
    try:
        r = json.loads(line)
    except ValueError:
        fail("the last line is not JSON: %r" % line)
    keys = KEYS + (["routed"] if client == "tether" else []) + (["batched"] if "--batch" in args else [])
    if list(r) != keys:
        fail("keys %r, expected %r in that order" % (list(r), keys))
    c, n, s, w = (option(args, k) for k in ("--connections", "--messages", "--size", "--window"))
    want = {"client": client, "connections": c, "messages": c * n, "size": s, "window": w}
    if client == "tether":
        want["routed"] = "--routed" in args
        if "--batch" in args:
            want["batched"] = True
    for k, v in want.items():
        if r[k] != v:
            fail("%s is %r, expected %r" % (k, r[k], v))
    t = r["seconds"]
    if not t > 0:
        fail("seconds must be positive")
    if abs(r["msgs_per_s"] - c * n / t) > 0.01 * c * n / t + 0.1:
        fail("msgs_per_s %r is not messages/seconds" % r["msgs_per_s"])
    if abs(r["mb_per_s"] - c * n * s / t / 1e6) > 0.01 * c * n * s / t / 1e6 + 0.001:
        fail("mb_per_s %r is not messages*size/seconds/1e6" % r["mb_per_s"])
    if not 0 < r["p50_us"] <= r["p99_us"] <= t * 1e6 + 1:
        fail("expected 0 < p50_us <= p99_us <= seconds")
    if not (isinstance(r["max_rss_kb"], int) and r["max_rss_kb"] > 0):
        fail("max_rss_kb must be a positive integer")
    if not (isinstance(r["cpu_s"], (int, float)) and 0 <= r["cpu_s"] < 3600):
        fail("cpu_s must be a number of seconds")


def main():
    bench, peer_script, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    client = CLIENTS.get(os.path.basename(bench), "tether")
    if args == ["--expect-refused"]:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))  # Bound but not listening: connecting is refused.
        r = subprocess.run([bench, "--url", "ws://127.0.0.1:%d" % s.getsockname()[1], "--messages", "1"],
                           capture_output=True, text=True, timeout=T)
        s.close()
        print(r.stderr, end="")
        if r.returncode == 0 or r.stdout.strip() or not r.stderr.strip():
            fail("expected a non-zero exit, no JSON and an error message")
        print("ok")
        return

    if args == ["--expect-too-big"]:
        # The peer closes with 1009 on the first message over its limit.
        peer, port = start_peer(peer_script, "--max-size", "1000")
        try:
            r = subprocess.run([bench, "--url", "ws://127.0.0.1:%d" % port, "--size", "1001", "--messages", "5"],
                               capture_output=True, text=True, timeout=T)
        finally:
            peer.stdin.close()
            peer.wait(timeout=T)
        print(r.stderr, end="")
        if r.returncode == 0 or r.stdout.strip() or "1009" not in r.stderr:
            fail("expected a non-zero exit, no JSON and the server's close code 1009")
        print("ok")
        return

    peer, port = start_peer(peer_script)
    try:
        cmd = [bench, "--url", "ws://127.0.0.1:%d/" % port] + args
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)
        if r.returncode == 0:
            # Each connection was closed with 1000 (the peer prints what it received).
            for _ in range(option(args, "--connections", 1)):
                line = peer.stdout.readline()
                if line != "closed 1000 \n":
                    fail("the peer printed %r, expected 'closed 1000 '" % line)
    finally:
        peer.stdin.close()
        peer.wait(timeout=T)
    print(r.stderr, end="", file=sys.stderr)
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        fail("%s exited %d, stdout %r" % (os.path.basename(bench), r.returncode, r.stdout))
    check_result(lines[-1], args, client)
    print(lines[-1])


if __name__ == "__main__":
    main()
