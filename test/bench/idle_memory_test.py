#!/usr/bin/python3
"""Holds the heap of an idle open connection to its budget.

    /usr/bin/python3 idle_memory_test.py BENCH_IDLE_MEMORY BENCH_ECHO_SERVER

Opens connections with bench-idle-memory to bench-echo-server (another
process, so its memory is not counted), at the stream layer and at the
handler layer (300 idle ones; 100 after large messages), and fails if one
costs more heap than its budget:

- an idle stream (no TLS, no compression): 4.5 KiB, under the pipeline
  issue's floor of 8 KiB and 0.9 KB above what it takes today (3.7 KB),
  so that a reader or writer coroutine parked per stream again (5.0 and
  6.1 KB) fails;
- an idle handler: 16 KiB, about 1.8 KB above today's 14.5 KB, so that the
  nested `||` loops of before (22.8 KB) fail;
- an idle stream that first exchanged two 512 KiB messages and then two
  short ones (`--after-large`, 100 connections): the pipeline issue's 8 KiB
  (4.6 KB today). Before, such a stream kept two of the large message
  buffers, two output buffers and a read buffer of the size large reads had
  grown to: 987 KB.
- an idle handler after the same exchange, as envelopes echoed to a route:
  20 KiB (16.2 KB today, 1.7 MB before);
- an idle stream after the two large messages alone (`--then-small 0`): one
  buffer of their size plus 24 KiB (538.8 KB today; 922 KB when the output
  buffers of a large message written by its sender were kept).

docs/benchmarks.md has the figures.

Prints both JSON lines. Every wait is bounded by meson's timeout.
"""
import json
import subprocess
import sys

CONNECTIONS = 300
# (name, layer, extra arguments, connections, budget in bytes)
CASES = [
    ("stream", "stream", [], CONNECTIONS, 4608),
    ("handler", "handler", ["--handler"], CONNECTIONS, 16 * 1024),
    ("stream after large messages", "stream", ["--after-large", str(512 * 1024)], 100, 8 * 1024),
    ("handler after large messages", "handler", ["--handler", "--after-large", str(512 * 1024)], 100, 20 * 1024),
    # No short messages after them: the stream keeps one buffer of the last
    # one's size for the next message, and nothing else large.
    ("stream after large messages and silence", "stream",
     ["--after-large", str(512 * 1024), "--then-small", "0"], 100, 512 * 1024 + 24 * 1024),
]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def main():
    tool, server = sys.argv[1], sys.argv[2]
    echo = subprocess.Popen([server, "--port", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = echo.stdout.readline()
        if not line.startswith("listening "):
            fail("the echo server printed %r instead of 'listening PORT'" % line)
        url = "ws://127.0.0.1:%d/" % int(line.split()[1])
        for name, layer, extra, connections, budget in CASES:
            args = [tool, "--url", url, "--connections", str(connections)] + extra
            run = subprocess.run(args, capture_output=True, text=True, timeout=120)
            if run.returncode != 0:
                fail("%s exited with %d: %s" % (" ".join(args), run.returncode, run.stderr.strip()))
            print(run.stdout.strip())
            r = json.loads(run.stdout.strip().splitlines()[-1])
            if r["layer"] != layer or r["connections"] != connections:
                fail("measured %r, expected layer %s with %d connections" % (r, layer, connections))
            if not 0 < r["per_connection"] <= budget:
                fail("an idle %s holds %d bytes of heap; its budget is %d" % (name, r["per_connection"], budget))
    finally:
        echo.stdin.close()
        echo.kill()
        echo.wait()
    print("ok")


if __name__ == "__main__":
    main()
