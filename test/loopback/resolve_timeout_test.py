#!/usr/bin/python3
"""resolve_timeout, for real: a network namespace whose only DNS server (on its
own 127.0.0.1:53) never answers, so getaddrinfo hangs and the stream's resolve
timeout must fire. Needs root and iproute2; exits 77 (meson: skipped) without."""
import os, shutil, subprocess, sys

probe = sys.argv[1]
if os.geteuid() != 0 or not shutil.which("ip"):
    print("skipped: needs root and iproute2")
    sys.exit(77)
ns = "tether-dns-%d" % os.getpid()
etc = "/etc/netns/" + ns
if subprocess.run(["ip", "netns", "add", ns]).returncode != 0:
    print("skipped: cannot create a network namespace here")
    sys.exit(77)
dns = None
try:
    if subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"]).returncode != 0:
        print("skipped: cannot configure the namespace's loopback")
        sys.exit(77)
    try:
        os.makedirs(etc, exist_ok=True)
        with open(etc + "/resolv.conf", "w") as f:  # `ip netns exec` mounts it over /etc/resolv.conf
            f.write("nameserver 127.0.0.1\noptions timeout:3 attempts:1\n")
    except OSError as e:
        print("skipped: cannot write %s: %s" % (etc, e))
        sys.exit(77)
    silent = ("import socket,sys\n"
              "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('127.0.0.1',53))\n"
              "print('ready',flush=True); sys.stdin.read()\n")
    dns = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", silent],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if dns.stdout.readline().strip() != "ready":
        print("skipped: cannot run a process inside the namespace")
        sys.exit(77)
    r = subprocess.run(["ip", "netns", "exec", ns, probe, "ws://never-answered.tether.test:80/", "300"],
                       capture_output=True, text=True, timeout=30)
    print(r.stdout.strip(), r.stderr.strip())
    sys.exit(r.returncode)
finally:
    if dns:
        dns.stdin.close()
        dns.wait(timeout=10)
    subprocess.run(["ip", "netns", "delete", ns])
    shutil.rmtree(etc, ignore_errors=True)
