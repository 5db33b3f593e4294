#!/usr/bin/python3
"""Checks the "Compiler notes" of docs/getting-started.md against the compiler.

  compiler_note_test.py PAGE.md INCLUDE_DIR CXX...

Takes the section's first ```text block (the failing call), puts it into the
section's C++ program in place of the fix (the line with "// not:" and the
line after it), compiles that as main.cpp and checks that g++ 12 prints exactly
the section's second ```text block (the error text the page shows). The fix
itself is compiled and run as a doc example. Other compilers: skipped (77), the
note is about g++ 12.
"""
import os
import re
import subprocess
import sys
import tempfile


def main():
    page, include, cxx = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3:]
    version = subprocess.run(cxx + ['--version'], stdout=subprocess.PIPE, text=True).stdout
    if not re.search(r'^g\+\+.* 12\.', version, re.M) and not re.search(r'^c\+\+.* 12\.', version, re.M):
        print(f'not g++ 12 ({version.splitlines()[0]}): the note does not apply')
        return 77
    text = open(page, encoding='utf-8').read()
    section = text[text.index('## Compiler notes'):]
    section = section[:section.find('\n## ', 1)] if '\n## ' in section[1:] else section
    texts = re.findall(r'^```text\n(.*?)^```$', section, re.S | re.M)
    program = re.search(r'^```cpp\n(.*?)^```$', section, re.S | re.M).group(1)
    failing, expected = texts[0].strip(), texts[1]
    lines = program.splitlines()
    at = next(i for i, line in enumerate(lines) if '// not:' in line)
    lines[at:at + 2] = ['  ' + failing]
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, 'main.cpp'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        p = subprocess.run(cxx + ['-std=c++20', '-fsyntax-only', '-fno-diagnostics-color', '-I' + include,
                                  'main.cpp'], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=dict(os.environ, LC_ALL='C'))
    print(p.stdout)
    if p.returncode == 0:
        print('FAIL: g++ 12 compiled the braced list: the compiler note is wrong')
        return 1
    if p.stdout != expected:
        print('FAIL: the error text differs from the page\'s. The page shows:\n' + expected)
        return 1
    print('the page shows the exact error text')
    return 0


if __name__ == '__main__':
    sys.exit(main())
