#!/usr/bin/python3
"""Runs tether-repl in handler mode for real, through pipes and a pseudo-terminal,
against its embedded demo server and against tether-demo-server.

    /usr/bin/python3 repl_handler_test.py TETHER_REPL TETHER_DEMO_SERVER MAKE_CERTS_SH SCENARIO

Scenarios (each a meson test in suite 'interop'):
  pipe         embedded server, commands written one at a time while stdin stays
               open: route, send, expect, status (parsed), unroute/unrouted,
               server.drop → reconnect (state lines, reconnects in status),
               close and connect, quit → clean close, exit 0
  script       the whole script in the pipe at once (each command completes
               before the next: expect sees the echo); a send queued while the
               server restarts is flushed before the close at end of input; a
               regular file as input; no arguments at all (the README's quick start)
  strict       a failed expect: exit 4 with --strict, 0 without; an expect takes
               a message that arrived before it and that no expect took yet
  bad-input    malformed JSON (position reported, the REPL goes on), unknown
               commands, server.garbage, control characters in what arrives,
               bad arguments, invalid UTF-8: never a crash
  chat         two REPLs chat through one tether-demo-server (chat.* goes to
               the other only); the server exits 0 on SIGTERM
  restart      server.restart and server.close through tether-demo-server,
               --no-reconnect, --max-retries, --backoff, and a refused URL
  pty          a pseudo-terminal: prompt, colours, status uncoloured, tab
               completion of commands and route patterns, a message arriving
               while a line is typed (the line is redrawn and still works),
               history written and read back, NO_COLOR, Ctrl-D, Ctrl-C
  demo-server  tether-demo-server's command line: first line, --port, --tls
               (wss://, with tether-repl --ca), --help, bad arguments
  userinfo     a URL with user:password@: no line on stdout or stderr shows
               them (state lines, connect errors, bad URLs, status)
  fail-fast    a dead URL: --max-retries 0 exits 1 at once with one error line;
               the first failure says how many attempts remain and the longest
               total wait; a server answering 503: the error names the URL once,
               with the status and the library's message as it wrote it
  order        many sends whose echoes a route prints, over ws:// and wss://:
               each send's ok comes before its echo
  ping         ping prints 'ok RTT ms' (also with a payload), refuses 126 bytes,
               fails while closed
  oneshot      --max-messages 1: the end of input waits for the message, exit 0;
               --timeout: exit 5 with a '* timed out' line and a clean close;
               -v prints the handshake lines as '* > ' and '* < '
  request      request PATH JSON [MS] against the embedded server: the reply's
               data; an error reply names request_failed and the server's
               text; a silenced server: request_timeout after MS (bounded);
               the status counts pending requests and late replies
  subscribe    sub TOPIC against the embedded server: publications print as
               '< TOPIC DATA fields={"seq":N,...}'; a second sub, a refused
               topic and a missing TOPIC fail by name; after server.restart
               the subscription is renewed and publications resume; unsub
  binary       sendb PATH HEX: tether-demo-server echoes the binary envelope,
               a route prints '< PATH binary N bytes: HEX', expect takes it;
               chat.* in binary reaches the other client; malformed hex names
               its column; nothing of it counts as an invalid message

Nothing sleeps to synchronise: every step waits for a line of output (bounded).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

from repl_support import (SGR, T, DemoServer, Lines, Pty, Repl, check, clean_close, connected, dead_port,
                          rejecting_server, run)

# ---- scenarios ----

def scenario_pipe(repl, server_bin, certs_sh):
    r = Repl(repl, "--ping-interval", "1000")
    banner = r.out.next("the banner")
    m = re.fullmatch(r"\* embedded demo server listening on (ws://127\.0\.0\.1:\d+)", banner)
    check(m is not None, "banner %r" % banner)
    url = m.group(1)
    r.out.expect("* connecting to " + url)
    r.out.expect("* connected to " + url)

    st = r.status()
    check(st["connected"] is True and st["state"] == "open", "status %r" % st)
    for field in ("retries", "reconnects", "messages_sent", "messages_received", "bytes_sent",
                  "bytes_received", "last_ping", "last_pong", "rtt_ms", "queued", "last_error"):
        check(field in st, "status lacks %s" % field)

    r.ok("route echo.*")
    r.ok("routes", "echo.*")
    r.error("route echo.*", "exists")
    r.ok('send echo.greeting {"text": "hi"}')
    r.out.wait_for(r'^< echo\.greeting \{"text":"hi"\} \[greeting\]$')
    r.ok("expect echo.*", 'echo.greeting {"text":"hi"} [greeting]')

    # A route with '#', and messages no route matches.
    r.ok("route echo.deep.#")
    r.ok("send echo.deep.a.b [1,2]")
    r.out.wait_for(r"^< echo\.deep\.a\.b \[1,2\] \[a\.b\]$")
    r.ok("unroute echo.*")
    r.error("unroute echo.*", "no route")
    r.ok("send echo.loose null")
    r.out.wait_for(r"^< unrouted echo\.loose null$")
    r.ok("routes", "echo.deep.#")

    st = r.status()
    check(st["messages_sent"] >= 3 and st["messages_received"] >= 3, "counters %r" % st)
    check(st["unrouted"] >= 1, "unrouted not counted: %r" % st)

    # The server drops us: the handler reconnects by itself and says so.
    r.ok("send server.drop {}")
    m = r.out.wait_for(r"^\* reconnecting in (\d+\.\d) s \(attempt 1/10\): (.+)$")
    r.out.wait_for("^%s$" % re.escape("* reconnecting to %s (attempt 1/10)" % url))
    r.out.wait_for("^%s$" % re.escape("* connected to " + url))
    st = r.status()
    check(st["reconnects"] == 1 and st["state"] == "open", "after the drop: %r" % st)
    r.ok("send echo.again 2")
    r.out.wait_for(r"^< unrouted echo\.again 2$")

    # close, a command that needs a connection, and connect again.
    r.ok("close 4000 see you")
    r.out.wait_for(r"^\* closing$")
    r.out.wait_for(r"^\* closed$")
    r.error("send echo.x 1", r"not connected \(closed\)")
    r.ok("connect")
    r.out.wait_for("^\\* connected to %s$" % re.escape(url))
    r.ok("wait 10")
    r.send("help")
    r.out.wait_for(r"^  expect PATTERN")
    r.send("quit")
    clean_close(r.finish(0))


def scenario_script(repl, server_bin, certs_sh):
    # The whole script at once: each command still completes before the next.
    script = "\n".join([
        "route echo.#",
        'send echo.one {"n": 1}',
        "expect echo.one",
        "send echo.two 2",
        "expect echo.#",
        "status",
        "# a comment, then a blank line",
        "",
        "quit",
        "send never.sent 1",
    ]) + "\n"
    r = run(repl, "--strict", input=script)
    check(r.returncode == 0, "exit status %d" % r.returncode)
    out = r.stdout.splitlines()
    check('ok echo.one {"n":1}' in out, "expect echo.one: %r" % out)
    check("ok echo.two 2 [two]" in out, "expect echo.#: %r" % out)
    status = [json.loads(l) for l in out if l.startswith("{")]
    check(len(status) == 1 and status[0]["messages_sent"] == 2, "status %r" % status)
    clean_close(out)
    check(not any("never.sent" in l for l in out), "a command after quit ran")

    # End of input while a send waits in the offline queue: it goes out after
    # the reconnect, then the REPL closes cleanly.
    r = Repl(repl, "--ping-interval", "0")
    connected(r)
    r.ok('send server.restart {"after_ms": 1500}')
    r.out.wait_for(r"^\* reconnecting in ")
    r.ok("send echo.queued 1", "queued")
    rest = r.finish(0)
    check("* sent echo.queued" in rest, "the queued send was not flushed: %r" % rest)
    check(rest.index("* sent echo.queued") < rest.index("* closing"), "closed before the queue drained")
    clean_close(rest)

    # A regular file as input (no epoll: read line by line).
    with tempfile.TemporaryFile("w+") as f:
        f.write("route echo.*\r\nsend echo.f 1\r\nexpect echo.f\nstatus")  # CRLF, last line without newline
        f.seek(0)
        r = run(repl, "--strict", stdin=f)
    check(r.returncode == 0, "file input: exit %d" % r.returncode)
    check("ok echo.f 1" in r.stdout.splitlines(), "file input: %r" % r.stdout)

    # No arguments and nothing on stdin: the README's quick start.
    r = run(repl, stdin=subprocess.DEVNULL)
    out = r.stdout.splitlines()
    check(r.returncode == 0, "no arguments: exit %d" % r.returncode)
    check(out[0].startswith("* embedded demo server listening on ws://127.0.0.1:"), "no banner: %r" % out)
    clean_close(out)
    check(r.stderr == "", "stderr: %r" % r.stderr)


def scenario_strict(repl, server_bin, certs_sh):
    for args, code in ((["--strict"], 4), ([], 0)):
        r = Repl(repl, *args)
        connected(r)
        r.error("expect nothing.here 50", r"^error: expect nothing\.here: nothing matched within 50 ms$")
        r.finish(code)

    # expect takes messages that arrived before it (and that no expect took yet),
    # oldest first; a message is taken once.
    r = Repl(repl, "--strict")
    connected(r)
    r.ok("send echo.a 1")
    r.ok("send echo.b 2")
    r.out.wait_for(r"^< unrouted echo\.b 2$")
    r.ok("expect echo.b 0", "echo.b 2")
    r.ok("expect echo.* 0", "echo.a 1 [a]")
    r.error("expect echo.* 0", "nothing matched within 0 ms")
    r.error("expect a..b", "invalid pattern")
    r.error("expect echo.* soon", "TIMEOUT_MS")
    r.finish(4)

    # A send that fails under --strict, and a failed connect.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, not listening: refused
    port = s.getsockname()[1]
    r = Repl(repl, "--strict", "--no-reconnect")
    connected(r)
    m = r.do("connect ws://127.0.0.1:%d" % port)
    check(re.fullmatch(r"error: cannot connect: .*refused", m.string, re.I) and m.string.count(":%d" % port) == 1,
          "connect to a refused URL answered %r" % m.string)
    r.error("send echo.x 1", r"not connected \(failed\)")
    r.finish(4)
    s.close()


def scenario_bad_input(repl, server_bin, certs_sh):
    r = Repl(repl)
    connected(r)
    # Malformed JSON: the column in the line, and the REPL goes on.
    r.error('send echo.x {"a": }', r"^error: malformed JSON at column 19: ")
    r.error("send echo.x {\"a\": [1, 2}", r"malformed JSON at column \d+")
    r.error("send echo.x " + "[" * 5000 + "]" * 5000, "nested deeper than 128")
    r.error("send", "send needs PATH")
    r.error("frobnicate now", r"unknown command 'frobnicate'")
    r.error("wait soon", "wait needs MS")
    r.error("close 1005", "not a close code")
    r.error("connect http://example.com", "bad URL")
    r.error("route a..b", r"^error: invalid pattern 'a\.\.b': a segment is empty")
    r.error("route a.#.b", r"^error: invalid pattern 'a\.#\.b': '#' must be the last segment$")
    r.error("expect a.#.b 0", r"^error: invalid pattern 'a\.#\.b': '#' must be the last segment$")
    r.error("route", "route needs one PATTERN")
    # Garbage from the server, an unknown server command, a bad close code.
    r.ok("send server.garbage {}")
    r.out.wait_for(r"^! invalid message: not JSON at byte \d+: .* \| raw: this is not an envelope \{$")
    r.ok('send server.close {"code": 99}')
    r.out.wait_for(r'^< unrouted server\.error \{"path":"server\.close"\} fields=\{"error":"\\"code\\" must be')
    r.ok("send server.nonsense 1")
    r.out.wait_for(r'^< unrouted server\.error \{"path":"server\.nonsense"\}')
    # Terminal control characters arriving are shown escaped, never as they are.
    r.ok('send echo.\x1b[2J "\\u001b]0;title\\u0007 \\u009b \\u007f"')
    line = r.out.wait_for(r"^< unrouted echo\.").string
    check("\x1b" not in line and "\x07" not in line and "\u009b" not in line and "\x7f" not in line,
          "control characters printed raw: %r" % line)
    check(line == r'< unrouted echo.\x1b[2J "\u001b]0;title\u0007 \u009b \u007f"', "escaped as %r" % line)
    # Bytes that are not UTF-8 (in the JSON: refused; in the path: replaced).
    r.error('send echo.x "\udcff"', "malformed JSON")
    r.ok("send echo.\udcff 1")
    r.out.wait_for(r"^< unrouted echo\.\ufffd 1$")
    st = r.status()
    check(st["invalid_messages"] == 1 and st["state"] == "open", "status %r" % st)
    clean_close(r.finish(0))
    check(r.err.rest() == [], "unexpected stderr")

    # Bad command lines.
    for bad in (["--max-retries", "x"], ["--backoff", "fibonacci"], ["--ping-interval", "-5"],
                ["--pong-timeout", "0"], ["--expect-timeout"], ["--bogus"]):
        res = run(repl, *bad)
        check(res.returncode == 2 and "usage:" in res.stderr and res.stdout == "", "%r must exit 2" % bad)
    res = run(repl, "--help")
    for flag in ("--raw", "--reconnect", "--no-reconnect", "--max-retries N", "--backoff", "--ping-interval MS",
                 "--pong-timeout MS", "--send-timeout MS", "--expect-timeout MS", "--strict", "--ca FILE",
                 "--insecure", "--header", "--subprotocol", "--no-color", "--help", "--version"):
        check(flag in res.stdout, "--help does not list %s" % flag)
    for default in ("default 10)", "default exponential", "default 30000)", "default 10000)"):
        check(default in res.stdout, "--help does not give the default %r" % default)
    res = run(repl, "--version")
    check(res.returncode == 0 and re.fullmatch(r"tether-repl \S+\n", res.stdout), "--version: %r" % res.stdout)


def scenario_chat(repl, server_bin, certs_sh):
    server = DemoServer(server_bin)
    a = Repl(repl, server.url, name="alice")
    b = Repl(repl, server.url, name="bob")
    connected(a, server.url)
    connected(b, server.url)
    a.ok("route chat.*")
    b.ok("route chat.*")
    a.ok('send server.info {}')
    a.out.wait_for(r'^< unrouted server\.info \{"clients":2,')
    a.ok('send chat.message {"text": "hello bob"}')
    b.out.wait_for(r'^< chat\.message \{"text":"hello bob"\} \[message\]$')
    b.ok("expect chat.message", 'chat.message {"text":"hello bob"}')
    b.ok('send chat.message {"text": "hi alice"}')
    a.ok("expect chat.*", 'chat.message {"text":"hi alice"} [message]')
    # Alice's own chat never came back to her: her marker echo arrives after it would have.
    a.ok("send echo.marker 1")
    a.out.wait_for(r"^< unrouted echo\.marker 1$")
    check(not any("hello bob" in l for l in a.out.seen if l.startswith("<")), "chat came back to its sender")
    # One drops: the other carries on; the dropped one reconnects and chats again.
    b.ok("send server.drop {}")
    b.out.wait_for(r"^\* reconnecting in ")
    connected(b, server.url)
    b.ok('send chat.message "back"')
    a.ok("expect chat.message", 'chat.message "back"')
    a.send("quit")
    b.send("quit")
    for r in (a, b):
        clean_close(r.finish(0), r.name)
    server.stop()


def scenario_restart(repl, server_bin, certs_sh):
    server = DemoServer(server_bin)
    r = Repl(repl, server.url, "--backoff", "linear", "--max-retries", "-1", "--ping-interval", "0")
    connected(r, server.url)
    r.ok('send server.restart {"after_ms": 400}')
    r.out.wait_for(r"^\* reconnecting in \d+\.\d s \(attempt 1\): ")
    connected(r, server.url)
    st = r.status()
    check(st["reconnects"] == 1, "status %r" % st)
    # A close code the policy retries (application code): the server's code, its
    # name and its reason. Then closes the policy does not retry: the rule, then
    # what the server said.
    r.ok('send server.close {"code": 4001, "reason": "bye"}')
    r.out.wait_for(r"^\* reconnecting in \d+\.\d s \(attempt \d+\): server closed with 4001 \(private\): bye$")
    connected(r, server.url)
    r.ok('send server.close {"code": 1000}')
    r.out.wait_for(r"^\* failed: the server ended the session: server closed with 1000 \(normal closure\)$")
    r.error("send echo.x 1", r"not connected \(failed\)")
    r.ok("connect")
    r.ok('send server.close {"code": 1001, "reason": "going down"}')
    r.out.wait_for(r"^\* failed: the server ended the session: server closed with 1001 \(going away\): going down$")
    r.finish(0)

    # --no-reconnect: a drop is final.
    r = Repl(repl, server.url, "--no-reconnect")
    connected(r, server.url)
    r.ok("send server.drop {}")
    r.out.wait_for(r"^\* failed: reconnect is off: .*connection lost without a close handshake$")
    r.finish(0)

    # A server that is gone: --max-retries bounds the attempts; exit 1, reason on stderr.
    server.stop()
    res = run(repl, server.url, "--max-retries", "2", "--backoff", "linear", input="status\n")
    check(res.returncode == 1, "exit %d for a refused URL" % res.returncode)
    out = res.stdout.splitlines()
    check("* connecting to " + server.url in out, "no connecting line: %r" % out)
    check(any(re.fullmatch(r"\* reconnecting in \d+\.\d s \(attempt 2/2\): .*Connection refused", l) for l in out),
          "no 'reconnecting in ... (attempt 2/2): ... Connection refused' line: %r" % out)
    check(re.fullmatch(r"\* failed: max_retries reached: .*Connection refused", out[-1]), "no failed line: %r" % out)
    check(re.fullmatch(r"tether-repl: cannot connect: .*Connection refused\n", res.stderr) and
          res.stderr.count(server.url[len("ws://"):]) == 1, "stderr %r" % res.stderr)


def scenario_pty(repl, server_bin, certs_sh):
    home = tempfile.mkdtemp(prefix="tether-repl-home-")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "TERM": "xterm"}
    history = os.path.join(home, ".tether_repl_history")

    t = Pty([repl], env)
    m = t.wait_for(rb"embedded demo server listening on (ws://127\.0\.0\.1:\d+)")
    url = m.group(1).decode()
    t.wait_for(rb"\x1b\[33m\* connected to " + re.escape(url).encode(), "a coloured connected line")

    # Each line is typed once the prompt shows: typed earlier, while a command
    # runs, the terminal would echo it once more (cooked mode) before libedit.
    t.command(b"route echo.*")
    t.wait_for(rb"\x1b\[32mok\x1b\[0m\r\n")
    t.command(b"send echo.hi 1")
    t.wait_for(rb"\x1b\[36m< echo\.hi 1 \[hi\]\x1b\[0m", "a coloured message line")

    # status: one uncoloured line between the command and the next prompt.
    t.command(b"status")
    m = t.wait_for(rb"status\r\n([^\r\n]*)\r\n")
    line = m.group(1)
    check(SGR.search(line) is None, "the status line is coloured: %r" % line)
    check(json.loads(line.decode())["state"] == "open", "status %r" % line)

    # Tab completion: a command, then a route pattern used before. libedit
    # redraws with cursor moves, so the result is checked, not the echo:
    # "unrou<TAB>ec<TAB>" must run "unroute echo.*", after which no route is left.
    t.wait_for(rb"tether> ", "the prompt")
    t.write(b"unrou\t")
    t.wait_for(rb"te ", "completion of 'unrou'")
    t.write(b"ec\t")
    t.wait_for(rb"ho\.\*", "completion of the pattern")
    t.write(b"\r")
    m = t.wait_for(rb"(\x1b\[32mok\x1b\[0m|error: [^\r]*)\r\n")
    check(m.group(1) == b"\x1b[32mok\x1b[0m", "the completed unroute answered %r" % m.group(1))
    t.command(b"routes")
    m = t.wait_for(rb"routes\r\n([^\r]*)\r\n")
    check(m.group(1) == b"\x1b[32mok\x1b[0m", "routes after unroute: %r" % m.group(1))

    # A message arriving while a line is typed: printed above, the line redrawn.
    t.wait_for(rb"tether> ", "the prompt")
    t.write(b"send ech")
    t.wait_for(rb"send ech", "the typed text")
    other = Repl(repl, url, name="other")
    connected(other, url)
    other.ok('send chat.note {"n": 1}')
    t.wait_for(rb"\r\x1b\[K\x1b\[35m< unrouted chat\.note \{\"n\":1\}\x1b\[0m\r\n", "the message above the prompt")
    t.wait_for(rb"tether> send ech", "the typed line drawn again")
    t.write(b"o.typed 2\r")
    t.wait_for(rb"< unrouted echo\.typed 2", "the command typed around the message")
    other.send("quit")
    other.finish(0)

    t.command(b"quit")
    t.wait_for(rb"\* closed")
    check(t.exit_status() == 0, "exit status %r" % t.status)
    check(os.path.exists(history), "no history file")
    check(os.stat(history).st_mode & 0o077 == 0, "the history file is readable by others")
    text = open(history, errors="replace").read()
    check("echo.typed" in text and "unroute" in text, "history %r" % text)

    # Second run: NO_COLOR, the history read back (up arrow), Ctrl-D on an empty line.
    t = Pty([repl], dict(env, NO_COLOR="1"))
    t.wait_for(rb"tether> ")
    t.write(b"\x1b[A")
    t.wait_for(rb"quit", "the last history entry")
    t.write(b"\x15")  # Ctrl-U: clear the line
    t.write(b"send echo.nc 1\r")
    t.wait_for(rb"< unrouted echo\.nc 1")
    t.wait_for(rb"tether> ", "the prompt")
    t.write(b"\x04")  # Ctrl-D
    t.wait_for(rb"\* closed")
    check(t.exit_status() == 0, "Ctrl-D: exit status %r" % t.status)
    check(SGR.search(t.buf) is None, "colour with NO_COLOR: %r" % t.buf)

    # Third run: --no-color, and Ctrl-C at the prompt closes cleanly.
    t = Pty([repl, "--no-color"], env)
    t.wait_for(rb"tether> ")
    t.write(b"\x03")
    t.wait_for(rb"\* closed")
    check(t.exit_status() == 0, "Ctrl-C: exit status %r" % t.status)
    check(SGR.search(t.buf) is None, "colour with --no-color: %r" % t.buf)

    # A pipe never reads or writes the history.
    os.remove(history)
    res = run(repl, input="status\n", env={"HOME": home})
    check(res.returncode == 0 and not os.path.exists(history), "a pipe wrote the history file")
    check(SGR.search(res.stdout.encode()) is None, "colour on a pipe")
    shutil.rmtree(home)


def scenario_demo_server(repl, server_bin, certs_sh):
    # --port N: a fixed port works (taken from a free one), and is printed.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([server_bin, "--port", str(port)], stdout=subprocess.PIPE, text=True)
    out = Lines(proc.stdout, "server")
    out.expect("listening ws://127.0.0.1:%d" % port)
    proc.send_signal(signal.SIGINT)
    check(proc.wait(timeout=T) == 0, "SIGINT: exit %r" % proc.returncode)

    r = subprocess.run([server_bin, "--help"], capture_output=True, text=True, timeout=T)
    check(r.returncode == 0 and "--tls CERT KEY" in r.stdout and "--port N" in r.stdout, "--help")
    for bad in (["--port"], ["--port", "x"], ["--port", "70000"], ["--tls", "a"], ["--bogus"]):
        r = subprocess.run([server_bin, *bad], capture_output=True, text=True, timeout=T)
        check(r.returncode == 2 and "usage:" in r.stderr and r.stdout == "", "%r must exit 2" % bad)
    r = subprocess.run([server_bin, "--port", "0", "--tls", "/nonexistent.pem", "/nonexistent.key"],
                       capture_output=True, text=True, timeout=T)
    check(r.returncode == 1 and r.stdout == "" and "tether-demo-server:" in r.stderr, "bad certificate: exit 1")

    # --tls: wss://, trusted through --ca.
    certs = tempfile.mkdtemp(prefix="tether-demo-certs-")
    subprocess.run(["sh", certs_sh, certs], check=True, timeout=60, stdout=subprocess.DEVNULL)
    server = DemoServer(server_bin, "--tls", os.path.join(certs, "server.pem"), os.path.join(certs, "server.key"))
    check(server.url.startswith("wss://"), "TLS server URL %r" % server.url)
    r = Repl(repl, server.url, "--ca", os.path.join(certs, "ca.pem"))
    connected(r, server.url)
    r.ok("send echo.secure 1")
    r.out.wait_for(r"^< unrouted echo\.secure 1$")
    r.send("quit")
    r.finish(0)
    res = run(repl, server.url, "--no-reconnect", input="status\n")
    check(res.returncode == 1 and "verif" in res.stderr.lower(), "an untrusted certificate must fail: %r" % res.stderr)
    server.stop()
    shutil.rmtree(certs)


def scenario_userinfo(repl, server_bin, certs_sh):
    server = DemoServer(server_bin)
    secret_url = server.url.replace("ws://", "ws://alice:s3cret@")
    gone, port = dead_port()
    r = Repl(repl, secret_url, "--max-retries", "1", "--backoff", "linear", "--ping-interval", "0")
    r.out.expect("* connecting to " + server.url)
    r.out.expect("* connected to " + server.url)
    r.ok("send server.drop {}")
    r.out.wait_for("^%s$" % re.escape("* reconnecting to %s (attempt 1/1)" % server.url))
    connected(r, server.url)
    r.error("connect http://alice:s3cret@example.com/", r"^error: bad URL 'http://example\.com/'")
    r.error("connect ws://alice:s3cret@127.0.0.1:%d/" % port, "^error: cannot connect: .*127\\.0\\.0\\.1:%d" % port)
    r.status()
    r.send("quit")
    r.finish(0)
    gone.close()
    server.stop()
    for line in r.out.seen + r.err.seen:
        check("s3cret" not in line and "alice" not in line, "the URL's userinfo was printed: %r" % line)
    for args in (["http://alice:s3cret@x/"], ["ws://alice:s3cret@a/", "ws://alice:s3cret@b/"]):
        res = run(repl, *args)
        check(res.returncode == 2 and "s3cret" not in res.stderr, "bad command line %r: %r" % (args, res.stderr))


def backoff_bound(kind, retries, base=0.5, cap=30.0):
    """The longest total wait of `retries` attempts: the un-jittered delays
    (docs/repl.md: base x attempt or base x 2^(attempt-1), capped)."""
    grow = (lambda n: base * n) if kind == "linear" else (lambda n: base * 2 ** (n - 1))
    return sum(min(cap, grow(n)) for n in range(1, retries + 1))


def scenario_fail_fast(repl, server_bin, certs_sh):
    gone, port = dead_port()
    url = "ws://127.0.0.1:%d" % port

    # --max-retries 0: one attempt, one error line, exit 1.
    res = run(repl, url, "--max-retries", "0", stdin=subprocess.DEVNULL)
    check(res.returncode == 1, "--max-retries 0: exit %d" % res.returncode)
    err = res.stderr.splitlines()
    check(len(err) == 1 and re.fullmatch(r"tether-repl: cannot connect: .*refused", err[0], re.I),
          "--max-retries 0: stderr %r" % res.stderr)
    check(err[0].count("127.0.0.1:%d" % port) == 1, "the URL is not named exactly once: %r" % err[0])
    out = res.stdout.splitlines()
    check(len(out) == 2 and out[0] == "* connecting to " + url and out[1].startswith("* failed: "),
          "--max-retries 0: stdout %r" % out)

    # The first failure says what remains; the session ends after the last attempt.
    res = run(repl, url, "--max-retries", "2", "--backoff", "linear", stdin=subprocess.DEVNULL)
    out = res.stdout.splitlines()
    plan = "* up to 2 more attempts, waiting at most %.1f s in all; --max-retries 0 fails at once" % \
        backoff_bound("linear", 2)
    check(res.returncode == 1 and len(out) > 2 and out[1].startswith("* reconnecting in ") and out[2] == plan,
          "--max-retries 2: %r" % out)
    check(out.count(plan) == 1 and out[-1].startswith("* failed: "), "the plan line once: %r" % out)

    # The defaults (10 retries, exponential): the bound is shown at once; Ctrl-C
    # ends the wait. Likewise without a limit.
    for args, plan in (([], "* up to 10 more attempts, waiting at most %.1f s in all; --max-retries 0 fails at once"
                        % backoff_bound("exponential", 10)),
                       (["--max-retries", "-1"],
                        "* retrying without limit, each wait at most 30.0 s; --max-retries N sets a limit")):
        r = Repl(repl, url, *args)
        r.out.wait_for("^%s$" % re.escape(plan))
        r.proc.send_signal(signal.SIGINT)
        r.finish(1)
    gone.close()

    # A server that refuses the upgrade with 503: the status, the URL once, and
    # the library's message as it wrote it (not re-cased).
    port = rejecting_server("HTTP/1.1 503 Service Unavailable")
    url = "ws://127.0.0.1:%d/" % port
    for args in ([], ["--raw"]):
        res = run(repl, *args, url, "--max-retries", "0", stdin=subprocess.DEVNULL)
        err = res.stderr.splitlines()
        check(res.returncode == 1 and len(err) == 1, "503 %r: exit %d, stderr %r" % (args, res.returncode, err))
        check(err[0].startswith("tether-repl: cannot connect") and "HTTP 503" in err[0] and
              err[0].count(url) == 1, "503 %r: %r" % (args, err[0]))
        check(args or "WebSocket handshake" in err[0], "the library's message re-cased: %r" % err[0])
    r = Repl(repl, "--max-retries", "0")
    connected(r)
    m = r.do("connect " + url)
    check(m.string.startswith("error: cannot connect: ") and "HTTP 503" in m.string and m.string.count(url) == 1,
          "connect to a 503 server answered %r" % m.string)
    r.finish(0)


def scenario_order(repl, server_bin, certs_sh):
    certs = tempfile.mkdtemp(prefix="tether-repl-order-")
    subprocess.run(["sh", certs_sh, certs], check=True, timeout=60, stdout=subprocess.DEVNULL)
    server = DemoServer(server_bin, "--tls", os.path.join(certs, "server.pem"), os.path.join(certs, "server.key"))
    n = 300
    script = "".join(["route echo.#\n"] + ["send echo.n%d %d\n" % (i, i) for i in range(n)])
    for args in ([server.url, "--ca", os.path.join(certs, "ca.pem")], []):
        res = run(repl, "--strict", *args, input=script)
        check(res.returncode == 0, "exit %d" % res.returncode)
        out = res.stdout.splitlines()
        results = [i for i, line in enumerate(out) if line == "ok"]
        check(len(results) == n + 1, "%d results for %d commands" % (len(results), n + 1))
        for i in range(n):
            echo = "< echo.n%d %d [n%d]" % (i, i, i)
            check(echo in out, "no echo %r" % echo)
            check(results[i + 1] < out.index(echo), "%r printed before its send's ok" % echo)
    server.stop()
    shutil.rmtree(certs)


def scenario_binary(repl, server_bin, certs_sh):
    server = DemoServer(server_bin)
    a = Repl(repl, server.url, name="alice")
    b = Repl(repl, server.url, name="bob")
    connected(a, server.url)
    connected(b, server.url)
    a.ok("route echo.*")
    a.ok("sendb echo.file 00 01 fe ff")
    a.out.wait_for(r"^< echo\.file binary 4 bytes: 00 01 fe ff \[file\]$")
    a.ok("expect echo.file", "echo.file binary 4 bytes: 00 01 fe ff")
    a.ok("sendb echo.empty")
    a.out.wait_for(r"^< echo\.empty binary 0 bytes \[empty\]$")
    a.ok("sendb echo.long " + "ab" * 20)
    a.out.wait_for(r"^< echo\.long binary 20 bytes: (ab ){16}\.\.\. \[long\]$")
    a.error("sendb echo.x 0g", r"malformed hex at column 15")
    a.error("sendb echo.x abc", r"malformed hex at column 16")
    a.error("sendb", r"sendb needs PATH \[HEX\]")
    # Binary chat reaches the other client, whose route takes any kind.
    b.ok("route chat.*")
    a.ok("sendb chat.blob 41 42")
    b.out.wait_for(r"^< chat\.blob binary 2 bytes: 41 42 \[blob\]$")
    st = a.status()
    check(st["invalid_messages"] == 0 and st["connected"], "status after binary: %r" % st)
    a.send("quit")
    b.send("quit")
    for r in (a, b):
        clean_close(r.finish(0), r.name)
    server.stop()


def scenario_ping(repl, server_bin, certs_sh):
    r = Repl(repl, "--ping-interval", "0")
    connected(r)
    for line in ("ping", "ping with a payload"):
        m = r.do(line)
        check(re.fullmatch(r"ok \d+\.\d{3} ms", m.string), "%r answered %r" % (line, m.string))
    r.error("ping " + "x" * 126, "at most 125 bytes")
    st = r.status()
    check(st["rtt_ms"] is not None and st["last_pong"] is not None, "ping did not reach the status: %r" % st)
    r.ok("close")
    r.error("ping", r"ping failed: .*closed")
    clean_close(r.finish(0))


def scenario_request(repl, server_bin, certs_sh):
    import time
    r = Repl(repl, "--ping-interval", "0")
    connected(r)
    r.ok('request echo.add {"a": 1, "b": [2, 3]}', '{"a":1,"b":[2,3]}')
    r.ok("request echo.n 5 2000", "5")  # a last number after the JSON is the timeout
    r.ok("request echo.n 5", "5")       # a lone number is the JSON
    r.error("request nowhere.x 1", r"^error: request failed: request_failed: the server answered with an error: "
                                   r"unknown path 'nowhere\.x'")
    r.error("request echo.x {bad", r"malformed JSON at column")
    r.error("request", r"request needs PATH")
    r.error("request $subscribe 1", r"reserved for the library")
    st = r.status()
    check(st["pending_requests"] == 0 and st["late_replies"] == 0, "status after requests: %r" % st)
    r.ok("send server.silence")  # the server answers nothing more
    start = time.monotonic()
    r.error("request echo.x 1 300", r"^error: request failed: request_timeout: no reply within 300 ms$")
    took = time.monotonic() - start
    check(0.3 <= took <= 0.3 * 3 + 1, "a 300 ms request took %.2f s" % took)
    st = r.status()
    check(st["pending_requests"] == 0, "a timed-out request is still pending: %r" % st)
    r.send("quit")
    r.finish(0)


def scenario_subscribe(repl, server_bin, certs_sh):
    r = Repl(repl, "--ping-interval", "0")
    connected(r)
    r.ok("sub ticker.btc")
    # Publications print as routed messages on the topic, with seq.
    r.out.wait_for(r'^< ticker\.btc \{"at_ms":\d+\} fields=\{"seq":1,"topic":"ticker\.btc"\}$')
    r.out.wait_for(r'^< ticker\.btc \{"at_ms":\d+\} fields=\{"seq":2,"topic":"ticker\.btc"\}$')
    r.error("sub ticker.btc", r"^error: sub failed: route_conflict: already subscribed to 'ticker\.btc'")
    r.error("sub news.x", r"^error: sub failed: subscription_refused: subscribing to 'news\.x': unknown topic")
    r.error("sub", r"sub needs one TOPIC")
    st = r.status()
    check(st["subscriptions"] == 1 and st["refused_subscriptions"] == 1 and st["publications"] >= 2,
          "status after sub: %r" % st)
    # The server restarts: the subscription is renewed and publications resume.
    r.ok("send server.restart {\"after_ms\": 100}")
    r.out.wait_for(r"^\* connected to ")
    at_connect = r.status()["publications"]  # the old connection's are all counted by now
    for _ in range(20):  # lines printed before the restart may come first
        r.out.wait_for(r'^< ticker\.btc .*"seq":')
        st = r.status()
        if st["publications"] > at_connect:
            break
    check(st["subscriptions"] == 1 and st["reconnects"] == 1 and st["publications"] > at_connect,
          "no publication after the restart: %r" % st)
    r.ok("unsub ticker.btc")
    r.error("unsub ticker.btc", r"^error: not subscribed to 'ticker\.btc'$")
    st = r.status()
    check(st["subscriptions"] == 0 and st["pending_requests"] == 0, "status after unsub: %r" % st)
    r.send("quit")
    r.finish(0)


def scenario_oneshot(repl, server_bin, certs_sh):
    import time
    # The end of input comes at once; the echo still arrives and ends the session.
    r = run(repl, "--max-messages", "1", input="send echo.one 1\n")
    out = r.stdout.splitlines()
    check(r.returncode == 0, "exit %d" % r.returncode)
    check("< unrouted echo.one 1" in out, "the echo did not print: %r" % out)
    clean_close(out)

    # More messages than asked for: exactly N print.
    r = run(repl, "--max-messages", "2", input="send echo.a 1\nsend echo.b 2\nsend echo.c 3\n")
    shown = [l for l in r.stdout.splitlines() if l.startswith("<")]
    check(r.returncode == 0 and len(shown) == 2, "--max-messages 2 printed %r" % shown)

    start = time.monotonic()
    r = run(repl, "--max-messages", "5", "--timeout", "500", input="send echo.one 1\n")
    took = time.monotonic() - start
    out = r.stdout.splitlines()
    check(r.returncode == 5, "--timeout: exit %d, expected 5" % r.returncode)
    check("* timed out after 500 ms (--timeout)" in out, "no timeout line: %r" % out)
    check(0.5 <= took <= 2.5, "--timeout 500 took %.2f s" % took)
    clean_close(out)

    r = run(repl, "-v", "-H", "Authorization: Bearer s3cret", input="")
    out = r.stdout.splitlines()
    check(r.returncode == 0, "-v: exit %d" % r.returncode)
    for line in ("* > GET / HTTP/1.1", "* > Authorization: [redacted]", "* < HTTP/1.1 101 Switching Protocols"):
        check(line in out, "-v did not print %r: %r" % (line, out))
    check("s3cret" not in r.stdout + r.stderr, "-v printed the secret")


def main():
    repl, server_bin, certs_sh, scenario = sys.argv[1:5]
    globals()["scenario_" + scenario.replace("-", "_")](repl, server_bin, certs_sh)
    print("ok")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
