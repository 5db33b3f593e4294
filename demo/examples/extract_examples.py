#!/usr/bin/python3
"""Writes each ```cpp block of a Markdown page to its own file, verbatim.

  extract_examples.py PAGE.md OUTDIR NAME COUNT

writes OUTDIR/NAME-1.cpp ... NAME-COUNT.cpp (the build compiles each as a
program). Fails when the page has another number of C++ blocks, so that a block
added to the docs cannot go untested: demo/examples/meson.build lists the count.
"""
import os
import re
import sys


def cpp_blocks(text):
    return re.findall(r'^```cpp\n(.*?)^```$', text, re.S | re.M)


def main():
    page, outdir, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open(page, encoding='utf-8') as f:
        blocks = cpp_blocks(f.read())
    if len(blocks) != count:
        print(f'{page} has {len(blocks)} C++ blocks; demo/examples/meson.build expects {count}: '
              'update the count there and the expected output of the new block', file=sys.stderr)
        return 1
    for i, block in enumerate(blocks, 1):
        if not re.search(r'^int main\(', block, re.M):
            print(f'{page}: C++ block {i} is not a complete program (no "int main(")', file=sys.stderr)
            return 1
        path = os.path.join(outdir, f'{name}-{i}.cpp')
        with open(path + '.tmp', 'w', encoding='utf-8') as f:
            f.write(block)
        os.replace(path + '.tmp', path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
