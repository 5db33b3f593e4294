#!/usr/bin/env python3
"""The layers stay layered: lib/core is sans-IO and JSON-free (no Asio, no
nlohmann, no fmt), lib/envelope has no Asio, and public headers never pull in
<asio.hpp>, <asio/ssl.hpp> or fmt. Fails naming each offending include."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
include = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)

rules = [
    ('lib/core', ('asio', 'nlohmann', 'fmt', 'boost')),
    ('lib/envelope', ('asio', 'fmt', 'boost')),
]
problems = []
for folder, banned in rules:
    files = sorted(p for p in (root / folder).rglob('*') if p.suffix in ('.cpp', '.hpp', '.h'))
    if not files:
        problems.append(f'{folder}: no sources found (moved?)')
    for path in files:
        for name in include.findall(path.read_text()):
            if name.split('/')[0].split('.')[0] in banned:
                problems.append(f'{path.relative_to(root)} includes <{name}>')
for path in sorted((root / 'include' / 'tether').glob('*.hpp')):
    for name in include.findall(path.read_text()):
        if name in ('asio.hpp', 'asio/ssl.hpp') or name.startswith('fmt/') and path.name != 'fmt.hpp':
            problems.append(f'{path.relative_to(root)} includes <{name}> (too heavy for a public header)')

for p in problems:
    print(p)
print(f'{len(problems)} layering problems')
sys.exit(1 if problems else 0)
