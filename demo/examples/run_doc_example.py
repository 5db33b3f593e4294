#!/usr/bin/python3
"""Runs one program extracted from the docs against tether-demo-server.

  run_doc_example.py PROGRAM DEMO_SERVER [--expect REGEX]...

Starts the demo server on a free port, runs `PROGRAM ws://127.0.0.1:PORT/`,
and passes when the program exits 0 within 30 s and its output matches every
REGEX (what the docs say it prints).
"""
import argparse
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('program')
    ap.add_argument('server')
    ap.add_argument('--expect', action='append', default=[])
    a = ap.parse_args()
    server = subprocess.Popen([a.server, '--port', '0'], stdout=subprocess.PIPE, text=True)
    try:
        first = server.stdout.readline().split()
        if len(first) != 2 or first[0] != 'listening':
            print(f'the demo server did not print "listening URL": {first}')
            return 1
        url = first[1] + '/'
        print('$', a.program, url, flush=True)
        p = subprocess.run([a.program, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=30)
        print(p.stdout, end='', flush=True)
        if p.returncode != 0:
            print(f'FAIL: exit status {p.returncode}')
            return 1
        missing = [r for r in a.expect if not re.search(r, p.stdout, re.M)]
        if missing:
            print(f'FAIL: the output does not match {missing}')
            return 1
        return 0
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == '__main__':
    sys.exit(main())
