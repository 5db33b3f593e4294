#!/usr/bin/python3
"""Runs tether and its peers side by side against bench-echo-server and prints
medians and ratios (docs/benchmarks.md, issue 9's targets).

    /usr/bin/python3 test/bench/compare.py [--build DIR] [--repetitions R]
        [--workloads w1,w2,...] [--scale F] [--no-routed] [--skip NAMES] [--json FILE]
    /usr/bin/python3 test/bench/compare.py --strace [--build DIR]

The echo server runs pinned to CPU 1 (taskset -c 1), each client pinned to
CPU 0 (taskset -c 0). For each workload the clients run interleaved, A B C D A B
C D ..., R times (default 3): tether (bench-client, tether::stream), tether
--routed (the same workload through tether::handler), tether --routed --batch
(the handler batching queued envelopes into one frame), Beast and websocketpp
(when built), and bench-epoll-client: the floor, the same workload with no
library at all (one thread, epoll, one recv per readiness, frames masked into
one buffer; no UTF-8 check), so each ratio can be read against what the kernel
allows. Per client the table shows the medians of: msgs/s, MB/s (one
direction), p50 and p99 round trip, client CPU per message (user + sys over the
whole process ÷ messages), peak RSS, and the echo server's CPU per message and
busy share (server CPU ÷ the client's wall time; near 100 % would mean the server
is the bottleneck: it prints a warning). Ratios are tether's (and the floor's)
median over the peer's (× Beast, × wspp): above 1 is better for msgs/s, below 1 better for p50,
CPU and RSS. Then, round by round, tether's run over the peer's run of the same
round (the median of those ratios and the rounds tether won: runs of one round
are seconds apart, so on a shared VM they mostly see the same phase of the
host), and the issue's targets, each met or missed (from the medians).

Workloads (messages per connection chosen so that a default run of all four
clients takes about 2-4 minutes on 2 cores; --scale multiplies them):
    w1  1 connection,     32 B,  window 1,   20000 messages
    w2  1 connection,     32 B,  window 64, 200000 messages
    w3  1 connection,  1 MiB,    window 4,     500 messages
    w4  1000 connections, 128 B, window 1,     100 messages each

--strace runs w2 (20000 messages) under `strace -c -f` for each client and
prints system calls per message: sendto, sendmsg, write, writev, recvfrom,
recvmsg, read, readv, epoll_wait, epoll_ctl, timerfd_settime, futex, their
errors (EAGAIN) and all calls together. strace slows the client, which changes
batching, so compare the clients with one another rather than with the table.

Binaries come from DIR/test/bench (default: build, else build-bench, under the
source root), or one by one: --echo-server, --tether, --beast, --websocketpp, --epoll.
Exit status 0 when every run succeeded (missed targets are reported, not
failed), 1 when a run failed, 2 on a bad command line or a missing binary.
"""
import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SERVER_CPU = "1"
CLIENT_CPU = "0"
RUN_TIMEOUT = 300

WORKLOADS = {
    "w1": dict(title="1 conn, 32 B, window 1", connections=1, size=32, window=1, messages=20000),
    "w2": dict(title="1 conn, 32 B, window 64", connections=1, size=32, window=64, messages=200000),
    "w3": dict(title="1 conn, 1 MiB, window 4", connections=1, size=1 << 20, window=4, messages=500),
    "w4": dict(title="1000 conns, 128 B, window 1", connections=1000, size=128, window=1, messages=100),
}
STRACE_MESSAGES = 20000
STRACE_CALLS = ["sendto", "sendmsg", "write", "writev", "recvfrom", "recvmsg", "read", "readv", "epoll_wait",
                "epoll_ctl", "timerfd_settime", "futex"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def system_busy_seconds():
    """CPU seconds all processes have used since boot (every CPU), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def die(msg, status=2):
    print("compare.py: " + msg, file=sys.stderr)
    sys.exit(status)


def raise_fd_limit():
    """1000 connections need more than the usual 1024 descriptors; children inherit this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def cpu_seconds(pid):
    """user + system CPU of a running process, from /proc (1/CLK_TCK resolution)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class echo_server:
    def __init__(self, path):
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, path, "--port", "0"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            die("bench-echo-server printed %r instead of 'listening PORT'" % line, 1)
        self.port = int(line.split()[1])
        self.url = "ws://127.0.0.1:%d/" % self.port

    def cpu(self):
        return cpu_seconds(self.proc.pid)  # taskset execs the server: same pid

    def stop(self):
        self.proc.stdin.close()  # EOF: the server prints its report and exits
        try:
            out = self.proc.stdout.read()
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        lines = [l for l in out.splitlines() if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None


def client_args(client, wl, url, messages):
    args = ["--url", url, "--connections", str(wl["connections"]), "--messages", str(messages),
            "--size", str(wl["size"]), "--window", str(wl["window"])]
    return [client["path"]] + args + client["extra"]


def run_client(client, wl, server, messages):
    """One run: the client's JSON line plus the server's CPU over the run."""
    cmd = ["taskset", "-c", CLIENT_CPU] + client_args(client, wl, server.url, messages)
    cpu0, t0 = server.cpu(), time.monotonic()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    wall, server_cpu = time.monotonic() - t0, server.cpu() - cpu0
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        print("compare.py: %s failed (exit %d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()), file=sys.stderr)
        return None
    result = json.loads(lines[-1])
    result["server_cpu_s"] = server_cpu
    result["wall_s"] = wall
    return result


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def summarize(runs):
    """Medians of one client's runs of one workload."""
    n = runs[0]["messages"]
    return {
        "msgs_per_s": median(runs, "msgs_per_s"),
        "mb_per_s": median(runs, "mb_per_s"),
        "p50_us": median(runs, "p50_us"),
        "p99_us": median(runs, "p99_us"),
        "cpu_us_per_msg": statistics.median(r["cpu_s"] / n * 1e6 for r in runs),
        "max_rss_kb": median(runs, "max_rss_kb"),
        "server_cpu_us_per_msg": statistics.median(r["server_cpu_s"] / n * 1e6 for r in runs),
        "server_busy": statistics.median(r["server_cpu_s"] / r["wall_s"] for r in runs),
        "runs": len(runs),
    }


def fmt_num(x):
    if x >= 100:
        return "{:,.0f}".format(x)
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x


def congestion_control():
    """The kernel's TCP congestion control: with bbr, TCP paces its sends even on
    loopback, and w3 runs fast or slow from one run to the next (docs/benchmarks.md)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def ratio(a, b):
    return "%.2f ×" % (a / b) if a is not None and b else "–"


def print_table(results, clients, workloads, repetitions):
    print("\nMedians of %d interleaved runs; × Beast / × wspp = tether's value ÷ the peer's "
          "(msgs/s: higher is better; p50, CPU, RSS: lower is better); epoll is the floor, "
          "a client with no library (bench-epoll-client)." % repetitions)
    print("| workload | client | msgs/s | × Beast | × wspp | MB/s | p50 µs | × Beast | × wspp | p99 µs "
          "| CPU µs/msg | × Beast | × wspp | peak RSS KiB | × Beast | server CPU µs/msg | server busy |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in workloads:
        row = results.get(w, {})
        beast, wspp = row.get("beast"), row.get("websocketpp")
        for name in clients:
            s = row.get(name)
            if not s:
                continue
            own = name.startswith("tether") or name == "epoll"

            def vs(peer, key):
                return ratio(s[key], peer[key]) if own and peer else ""

            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f %% |" % (
                w, name, fmt_num(s["msgs_per_s"]), vs(beast, "msgs_per_s"), vs(wspp, "msgs_per_s"),
                fmt_num(s["mb_per_s"]), fmt_num(s["p50_us"]), vs(beast, "p50_us"), vs(wspp, "p50_us"),
                fmt_num(s["p99_us"]), fmt_num(s["cpu_us_per_msg"]), vs(beast, "cpu_us_per_msg"),
                vs(wspp, "cpu_us_per_msg"), "{:,}".format(int(s["max_rss_kb"])), vs(beast, "max_rss_kb"),
                fmt_num(s["server_cpu_us_per_msg"]), 100 * s["server_busy"]))


def paired(runs, workload, name, peer):
    """Per round, `name`'s run ÷ `peer`'s run of the same round: (msgs/s ratios, CPU/msg ratios)."""
    def of(who):
        return {r["repetition"]: r for r in runs if r["workload"] == workload and r["name"] == who}

    theirs = of(peer)
    speed, cpu = [], []
    for rep, r in of(name).items():
        p = theirs.get(rep)
        if not p:
            continue
        if p["msgs_per_s"]:
            speed.append(r["msgs_per_s"] / p["msgs_per_s"])
        if p["cpu_s"]:
            cpu.append((r["cpu_s"] / r["messages"]) / (p["cpu_s"] / p["messages"]))
    return speed, cpu


def print_paired(runs, workloads):
    """The ratios round by round. A round's runs follow one another within
    seconds, so on a shared VM they mostly run in the same phase of the host;
    the medians above may take tether's and the peer's from different phases."""
    lines = []
    for w in workloads:
        for peer in ("beast", "websocketpp"):
            speed, cpu = paired(runs, w, "tether", peer)
            if not speed:
                continue
            lines.append("| %s | %s | %.2f × (%.2f–%.2f) | %d of %d | %s |" % (
                w, peer, statistics.median(speed), min(speed), max(speed), sum(x > 1 for x in speed), len(speed),
                "%.2f × (%.2f–%.2f)" % (statistics.median(cpu), min(cpu), max(cpu)) if cpu else "–"))
    if not lines:
        return
    print("\nRound by round: each tether run ÷ the peer's run of the same round (adjacent in time), "
          "the median of those ratios (lowest–highest), and the rounds tether was faster in.")
    print("| workload | peer | msgs/s ratio | rounds ahead | CPU/msg ratio |")
    print("|---|---|---:|---:|---:|")
    for line in lines:
        print(line)


def check_targets(results):
    """Issue 9's targets and floors, each with the measured ratio."""
    checks = []

    def get(w, client, key):
        return results.get(w, {}).get(client, {}).get(key)

    def add(text, a, b, op, bound):
        if a is None or b is None or not b:
            checks.append(("n/a", text, "–"))
            return
        r = a / b
        ok = r >= bound if op == ">=" else r <= bound
        checks.append(("met" if ok else "MISSED", text, "%.2f" % r))

    t = "tether"
    add("w1 p50 <= Beast's (ratio <= 1)", get("w1", t, "p50_us"), get("w1", "beast", "p50_us"), "<=", 1.0)
    add("w1 p50 <= websocketpp's (ratio <= 1)", get("w1", t, "p50_us"), get("w1", "websocketpp", "p50_us"), "<=", 1.0)
    add("w2 msgs/s >= 5 x Beast", get("w2", t, "msgs_per_s"), get("w2", "beast", "msgs_per_s"), ">=", 5.0)
    add("w2 msgs/s >= 2 x Beast (floor)", get("w2", t, "msgs_per_s"), get("w2", "beast", "msgs_per_s"), ">=", 2.0)
    add("w2 msgs/s >= 1.5 x websocketpp", get("w2", t, "msgs_per_s"), get("w2", "websocketpp", "msgs_per_s"), ">=", 1.5)
    add("w2 CPU/msg <= 0.25 x Beast", get("w2", t, "cpu_us_per_msg"), get("w2", "beast", "cpu_us_per_msg"), "<=", 0.25)
    add("w2 CPU/msg <= 0.8 x websocketpp", get("w2", t, "cpu_us_per_msg"), get("w2", "websocketpp", "cpu_us_per_msg"),
        "<=", 0.8)
    add("w3 msgs/s >= 1.2 x Beast", get("w3", t, "msgs_per_s"), get("w3", "beast", "msgs_per_s"), ">=", 1.2)
    add("w3 msgs/s >= 1.0 x Beast (floor)", get("w3", t, "msgs_per_s"), get("w3", "beast", "msgs_per_s"), ">=", 1.0)
    add("w3 CPU/msg <= 0.6 x Beast", get("w3", t, "cpu_us_per_msg"), get("w3", "beast", "cpu_us_per_msg"), "<=", 0.6)
    add("w4 msgs/s >= 1.2 x Beast", get("w4", t, "msgs_per_s"), get("w4", "beast", "msgs_per_s"), ">=", 1.2)
    add("w4 msgs/s >= 1.0 x Beast (floor)", get("w4", t, "msgs_per_s"), get("w4", "beast", "msgs_per_s"), ">=", 1.0)
    add("w4 CPU/msg <= 0.7 x Beast", get("w4", t, "cpu_us_per_msg"), get("w4", "beast", "cpu_us_per_msg"), "<=", 0.7)
    add("w4 peak RSS <= Beast's", get("w4", t, "max_rss_kb"), get("w4", "beast", "max_rss_kb"), "<=", 1.0)
    add("routed w2 msgs/s >= 0.5 x raw w2", get("w2", "tether-routed", "msgs_per_s"), get("w2", t, "msgs_per_s"),
        ">=", 0.5)
    add("routed batched w2 msgs/s >= 0.5 x raw w2", get("w2", "tether-routed-batched", "msgs_per_s"),
        get("w2", t, "msgs_per_s"), ">=", 0.5)
    print("\nTargets (issue 9; ratio = tether ÷ peer, or routed ÷ raw):")
    print("| target | ratio | |")
    print("|---|---:|---|")
    for status, text, r in checks:
        print("| %s | %s | %s |" % (text, r, status))
    return checks


def find_binaries(args):
    build = args.build
    if not build:
        for cand in ("build", "build-bench"):
            if os.path.exists(os.path.join(ROOT, cand, "test", "bench", "bench-echo-server")):
                build = os.path.join(ROOT, cand)
                break
    bench_dir = os.path.join(build, "test", "bench") if build else None

    def pick(explicit, name):
        if explicit:
            return explicit
        if bench_dir and os.access(os.path.join(bench_dir, name), os.X_OK):
            return os.path.join(bench_dir, name)
        return None

    server = pick(args.echo_server, "bench-echo-server")
    tether = pick(args.tether, "bench-client")
    if not server or not tether:
        die("bench-echo-server and bench-client are not built: give --build DIR "
            "(meson compile -C DIR test/bench/bench-echo-server test/bench/bench-client)")
    clients = {"tether": {"path": tether, "extra": []}}
    if not args.no_routed:
        clients["tether-routed"] = {"path": tether, "extra": ["--routed"]}
        clients["tether-routed-batched"] = {"path": tether, "extra": ["--routed", "--batch"]}
    for name, exe in (("beast", "bench-beast-client"), ("websocketpp", "bench-websocketpp-client"),
                      ("epoll", "bench-epoll-client")):
        path = pick(getattr(args, name), exe)
        if path:
            clients[name] = {"path": path, "extra": []}
        else:
            print("compare.py: %s is not built (its Debian headers are missing?): skipped" % exe, file=sys.stderr)
    return server, clients


def parse_strace(path):
    """{syscall: (calls, errors)} from `strace -c` output."""
    counts = {}
    with open(path) as f:
        for line in f:
            tokens = line.split()
            if len(tokens) < 5 or not re.match(r"^[\d.]+$", tokens[0]):
                continue
            name = tokens[-1]
            if name == "total":
                counts["total"] = (int(tokens[-3]) if len(tokens) == 6 else int(tokens[-2]), 0)
                continue
            calls, errors = (int(tokens[3]), int(tokens[4])) if len(tokens) == 6 else (int(tokens[3]), 0)
            counts[name] = (calls, errors)
    return counts


def strace_mode(server_path, clients):
    if not shutil.which("strace"):
        die("strace is not installed (apt-get install strace)")
    wl = WORKLOADS["w2"]
    server = echo_server(server_path)
    rows = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, client in clients.items():
                out = os.path.join(tmp, name + ".strace")
                cmd = ["taskset", "-c", CLIENT_CPU, "strace", "-c", "-f", "-o", out, "--"] + \
                    client_args(client, wl, server.url, STRACE_MESSAGES)
                r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT)
                if r.returncode != 0:
                    print("compare.py: %s failed: %s" % (" ".join(cmd), r.stderr.strip()[-2000:]), file=sys.stderr)
                    continue
                rows[name] = parse_strace(out)
    finally:
        server.stop()
    n = wl["connections"] * STRACE_MESSAGES
    print("\nw2 (%s) under strace -c -f, %d messages: system calls per message "
          "(errors, mostly EAGAIN, in parentheses)." % (wl["title"], n))
    names = list(rows)
    print("| syscall | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for call in STRACE_CALLS + ["total"]:
        if not any(rows[c].get(call, (0, 0))[0] / n >= 0.005 for c in names):
            continue  # start-up calls only
        cells = []
        for c in names:
            calls, errors = rows[c].get(call, (0, 0))
            cells.append("%.2f" % (calls / n) + (" (%.2f)" % (errors / n) if errors else ""))
        print("| %s | %s |" % (call, " | ".join(cells)))
    return 0 if len(rows) == len(clients) else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", help="meson build directory holding test/bench/")
    p.add_argument("--echo-server")
    p.add_argument("--tether")
    p.add_argument("--beast")
    p.add_argument("--websocketpp")
    p.add_argument("--epoll")
    p.add_argument("--repetitions", "-r", type=int, default=3)
    p.add_argument("--workloads", default="w1,w2,w3,w4")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every message count")
    p.add_argument("--no-routed", action="store_true", help="skip bench-client --routed")
    p.add_argument("--skip", default="", help="comma-separated clients not to run (tether, tether-routed, tether-routed-batched, "
                   "beast, websocketpp, epoll)")
    p.add_argument("--strace", action="store_true", help="syscalls per message for w2 instead")
    p.add_argument("--json", help="write every run's result to this file")
    args = p.parse_args()
    workloads = args.workloads.split(",")
    if any(w not in WORKLOADS for w in workloads) or args.repetitions < 1 or args.scale <= 0:
        die("--workloads takes names from %s; --repetitions and --scale must be positive" % ",".join(WORKLOADS))
    if not shutil.which("taskset"):
        die("taskset (util-linux) is needed to pin the server and the clients")
    raise_fd_limit()
    server_path, clients = find_binaries(args)
    known = ("tether", "tether-routed", "tether-routed-batched", "beast", "websocketpp", "epoll")
    for name in filter(None, args.skip.split(",")):
        if name not in known:
            die("--skip %s: no such client (%s)" % (name, ", ".join(known)))
        clients.pop(name, None)  # a peer that is not built is skipped anyway
    if os.cpu_count() and os.cpu_count() < 2:
        print("compare.py: fewer than 2 CPUs: the server and the client share one", file=sys.stderr)

    if args.strace:
        return strace_mode(server_path, clients)

    print("compare.py: %s; clients: %s; %d repetitions" % (
        ", ".join(workloads), ", ".join(clients), args.repetitions), file=sys.stderr)
    busy_before = system_busy_seconds()
    server = echo_server(server_path)
    runs, failed = [], False
    try:
        for w in workloads:
            wl = WORKLOADS[w]
            messages = max(1, int(wl["messages"] * args.scale))
            for rep in range(args.repetitions):
                for name, client in clients.items():  # interleaved: A B C D A B C D ...
                    r = run_client(client, wl, server, messages)
                    if r is None:
                        failed = True
                        continue
                    r.update(workload=w, name=name, repetition=rep)
                    runs.append(r)
                    print("# %s %s #%d: %s msgs/s, p50 %s µs, CPU %.2f s, server busy %.0f %%" % (
                        w, name, rep + 1, fmt_num(r["msgs_per_s"]), fmt_num(r["p50_us"]), r["cpu_s"],
                        100 * r["server_cpu_s"] / r["wall_s"]), file=sys.stderr)
    finally:
        report = server.stop()
    if report:
        print("# echo server: %s" % json.dumps(report), file=sys.stderr)

    results = {}
    for w in workloads:
        for name in clients:
            mine = [r for r in runs if r["workload"] == w and r["name"] == name]
            if mine:
                results.setdefault(w, {})[name] = summarize(mine)
    # Whatever else ran meanwhile (a compiler, ...) competed for the two CPUs.
    total_cpu = system_busy_seconds() - busy_before
    ours = sum(r["cpu_s"] + r["server_cpu_s"] for r in runs)
    span = sum(r["wall_s"] for r in runs) or 1
    other = max(0.0, total_cpu - ours)
    print("\nMachine: %d CPUs (%s), TCP congestion control %s. Other processes used %.1f CPU-seconds during "
          "the %.0f s of runs (%.0f %% of one CPU)%s." % (
              os.cpu_count() or 0, cpu_model(), congestion_control(), other, span, 100 * other / span,
              ": the figures are disturbed, run again on a quiet machine" if other / span > 0.1 else ""))
    print("Workloads: " + "; ".join("%s = %s, %d msgs/conn" % (w, WORKLOADS[w]["title"],
                                                               max(1, int(WORKLOADS[w]["messages"] * args.scale)))
                                       for w in workloads))
    print_table(results, list(clients), workloads, args.repetitions)
    print_paired(runs, workloads)
    check_targets(results)
    busy = max((s["server_busy"] for row in results.values() for s in row.values()), default=0)
    if busy > 0.8:
        print("\nWARNING: the echo server was busy %.0f %% of a run: it may be the bottleneck." % (100 * busy))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "medians": results}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
