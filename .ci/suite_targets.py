#!/usr/bin/python3
"""Prints the build outputs (relative to BUILD) that the tests of SUITEs need:
each test's executable and the targets it depends on, for `ninja -C BUILD ...`.

    suite_targets.py BUILD SUITE [SUITE ...] [--also TARGET_NAME ...]

CI builds only these under the sanitizers instead of every target of the tree
(the interop tests and tools are not run there); --also adds targets by name.
"""
import json
import os
import subprocess
import sys


def introspect(build, what):
    out = subprocess.run(["meson", "introspect", build, what], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    args = sys.argv[1:]
    build = args.pop(0)
    also = []
    if "--also" in args:
        i = args.index("--also")
        also = args[i + 1:]
        args = args[:i]
    suites = {"tether:" + s for s in args}
    targets = introspect(build, "--targets")
    by_id = {t["id"]: t for t in targets}
    wanted = set()
    for test in introspect(build, "--tests"):
        if not suites.intersection(test["suite"]):
            continue
        wanted.update(test["depends"])
    for t in targets:
        if t["name"] in also:
            wanted.add(t["id"])
    root = os.path.abspath(build)
    outputs = set()
    for target_id in wanted:
        t = by_id.get(target_id)
        if t is None:
            continue
        for f in t["filename"]:
            outputs.add(os.path.relpath(f, root))
    print("\n".join(sorted(outputs)))


if __name__ == "__main__":
    main()
