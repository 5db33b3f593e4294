#!/usr/bin/python3
"""tether used the way a downstream project uses it (suite 'consumer').

  consumer_test.py subproject --source-root S --build-root B --work W --meson M --echo-server E
      Copies test/consumer/project to W/src, makes W/src/subprojects/tether a
      symlink to the checkout S, configures it with
        --wrap-mode=nofallback --force-fallback-for=tether -Dtether:compression=disabled
      checks from the configure summary and introspection that tether is a
      subproject with its tests, demo and compression off and that only
      tether's libraries and the consumer are built, builds, checks that no
      Asio define reached consumer.cpp and that libtether.a's Asio symbols are
      those of header-only code, and runs `consumer ws://127.0.0.1:PORT/`
      against the Python echo peer E.

  consumer_test.py install ... [--cxx-flags FLAGS]
      `meson install -C B --no-rebuild --tags devel --destdir W/root`, checks
      the installed headers, libtether.a (its Asio symbols too) and tether.pc
      (Requires, Libs, no Asio define), compiles project/consumer.cpp with
      `c++ -std=c++20 -O2 FLAGS $(pkg-config --cflags --libs tether)` alone
      and runs it against the echo peer. FLAGS are the build's sanitizer or
      coverage flags, which a program linking its libtether.a needs.

  consumer_test.py cmake ... [--cxx-flags FLAGS]
      `meson install -C B --no-rebuild --tags devel --destdir W/root`, checks
      the installed tetherConfig.cmake (find_dependency for every package
      tether.pc requires, no Asio define), configures project/CMakeLists.txt
      with CMAKE_PREFIX_PATH at the staged prefix (the package finds its prefix
      from its own place, so no path mapping is needed), builds and runs it
      against the echo peer; then checks that the version file accepts
      find_package(tether 0.N) of its own minor and refuses 99.0; then builds
      docs/getting-started.md's CMake recipe (its ```cmake block, verbatim)
      with the README's C++ block as main.cpp and runs it against the peer.

W is a scratch directory under the build dir, wiped at each run. Its path is
stable so that ccache (which hashes the paths on the command line) hits on
later runs; the subproject build also sets b_pch=false because ccache, without
its pch sloppiness settings, does not cache compilations that use a
precompiled header.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.join(HERE, 'project')
PYTHON = '/usr/bin/python3'  # Debian's, with python3-websockets (test/peers/README.md)
EXPECTED_ROUTED = 'routed echo.hello {"n":1,"text":"hello from a consumer"}'


class Failure(Exception):
    pass


def log(*args):
    print(*args, flush=True)


def run(cmd, timeout, env=None, cwd=None, echo=True):
    """Runs cmd, echoes its output (unless echo is false), and returns it; Failure
    on a non-zero status (the output is then echoed in any case)."""
    log('$', ' '.join(cmd))
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise Failure(f'timed out after {timeout} s: {" ".join(cmd)}\n{e.output or ""}')
    if echo or p.returncode != 0:
        log(p.stdout.rstrip())
    if p.returncode != 0:
        raise Failure(f'exit status {p.returncode}: {" ".join(cmd)}')
    return p.stdout


class EchoPeer:
    """test/peers/echo_server.py on an ephemeral port, its stdin kept open as a pipe."""

    def __init__(self, script):
        self.proc = subprocess.Popen([PYTHON, script, '--port', '0'], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.lines = []
        self.changed = threading.Condition()
        first = []
        got_first = threading.Event()

        def reader():
            for line in self.proc.stdout:
                with self.changed:
                    self.lines.append(line.rstrip('\n'))
                    self.changed.notify_all()
                if not first:
                    first.append(line.strip())
                    got_first.set()
            got_first.set()
            with self.changed:
                self.changed.notify_all()

        self.thread = threading.Thread(target=reader, daemon=True)
        self.thread.start()
        if not got_first.wait(30) or not first or not first[0].startswith('listening '):
            self.stop()
            raise Failure(f'echo peer did not print "listening PORT": {first}')
        self.port = int(first[0].split()[1])

    def wait_for(self, line, timeout):
        """True once the peer has printed `line` (it prints a connection's
        "closed" line after its handler ends, which can be after our client exits)."""
        with self.changed:
            return self.changed.wait_for(lambda: line in self.lines or self.proc.poll() is not None, timeout) \
                and line in self.lines

    def stop(self):
        """Closes its stdin (the peer exits at EOF) and returns its stdout lines."""
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(timeout=5)
        return self.lines


def run_consumer(exe, echo_script):
    """Runs the consumer program against a fresh echo peer and checks what both print."""
    peer = EchoPeer(echo_script)
    try:
        out = run([exe, f'ws://127.0.0.1:{peer.port}/'], timeout=60)
        peer.wait_for('closed 1000 done', timeout=10)
    finally:
        peer_lines = peer.stop()
    log('echo peer:', peer_lines)
    lines = out.splitlines()
    if EXPECTED_ROUTED not in lines:
        raise Failure(f'expected the line {EXPECTED_ROUTED!r} from the consumer')
    if 'closed' not in lines:
        raise Failure('the consumer did not report a clean close')
    # The peer prints the close code and reason it received (test/peers/README.md).
    if 'closed 1000 done' not in peer_lines:
        raise Failure(f'the echo peer did not see close 1000 "done": {peer_lines}')


def bad_asio_symbol(line):
    """A line of `nm -C` that a header-only Asio never produces: a strong global
    asio:: definition (T, D, B, R), or a function-local static of an asio::
    function bound locally (b, d, r: the function was not inline). Internal
    linkage objects at namespace scope (constants, anonymous namespaces) are
    local in header-only code too and are not counted."""
    m = re.match(r'^\s*[0-9a-f]*\s+([A-Za-z])\s+(asio::.*)$', line)
    if not m:
        return False
    kind, name = m.groups()
    if kind in 'TDBR':
        return True
    if kind not in 'bdr':
        return False
    # The outermost name only: drop template arguments (which may name local
    # lambdas) and anonymous namespaces, then look for `function(...)::variable`.
    name = name.replace('(anonymous namespace)', '_')
    while True:
        shorter = re.sub(r'<[^<>]*>', '', name)
        if shorter == name:
            break
        name = shorter
    return re.search(r'\)( const)?&{0,2}::[A-Za-z_]\w*$', name) is not None


def check_asio_symbols(lib):
    """libtether's Asio must look exactly as a header-only program's: weak
    (COMDAT) functions and unique statics only. Otherwise a separately compiled
    Asio got in, whose error categories (and signal and OpenSSL init state) are
    second copies next to the consumer's (lib/meson.build). consumer.cpp checks
    the effect at run time, but only sees it when the compiler inlines Asio's
    small functions; this check is exact."""
    if not shutil.which('nm'):
        log('nm not found: symbol check skipped')
        return
    p = subprocess.run(['nm', '-C', lib], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                       timeout=120)
    if p.returncode != 0 or not p.stdout:
        raise Failure(f'nm -C {lib} failed')
    bad = [line for line in p.stdout.splitlines() if bad_asio_symbol(line)]
    if bad:
        raise Failure(f'{lib} holds {len(bad)} asio:: symbols a header-only Asio never has '
                      '(strong definitions or local function statics), e.g.\n  ' + '\n  '.join(bad[:10]))
    log(f'{lib}: Asio symbols as in header-only code')


def fresh_dir(path):
    if os.path.lexists(path):
        shutil.rmtree(path)
    os.makedirs(path)


def tether_summary(setup_output):
    """The key: value lines of the 'tether' section of tether's configure summary."""
    values = {}
    in_tether = False
    for line in setup_output.splitlines():
        if re.match(r'^\s{2}\S', line) and not re.match(r'^\s{4}', line):
            in_tether = line.strip() == 'tether'
            continue
        m = re.match(r'^\s{4}(.+?)\s*:\s*(\S+)\s*$', line)
        if in_tether and m:
            values[m.group(1)] = m.group(2)
    return values


def test_subproject(a):
    src = os.path.join(a.work, 'src')
    build = os.path.join(a.work, 'build')
    fresh_dir(a.work)
    os.makedirs(os.path.join(src, 'subprojects'))
    for name in ('meson.build', 'consumer.cpp'):
        shutil.copy(os.path.join(PROJECT, name), src)
    # What a user gets from a wrap or a git submodule: tether's tree under
    # subprojects/tether. A symlink to this checkout tests the working tree as is.
    os.symlink(os.path.abspath(a.source_root), os.path.join(src, 'subprojects', 'tether'))

    out = run([a.meson, 'setup', build, src,
               '--wrap-mode=nofallback', '--force-fallback-for=tether',
               # Release (-O3) with warnings as errors: GCC's optimiser-driven
               # warnings (-Wrestrict, -Wstringop-*) appear only there, and a
               # consumer must never see one from tether's sources.
               '-Dbuildtype=release', '-Dwerror=true', '-Dtether:werror=true', '-Db_pch=false',
               '-Dtether:compression=disabled'], timeout=300)

    summary = tether_summary(out)
    log('tether summary:', summary)
    # Booleans print as True/False (or YES/NO with bool_yn).
    as_bool = {'True': True, 'YES': True, 'False': False, 'NO': False}
    expected = {'subproject': True, 'tests': False, 'demo': False, 'fuzzing': False,
                'compression (zlib)': False}
    for key, value in expected.items():
        if as_bool.get(summary.get(key)) != value:
            raise Failure(f'configure summary: tether "{key}" is {summary.get(key)!r}, expected {value}')

    intro = json.loads(run([a.meson, 'introspect', build, '--buildoptions'], timeout=60, echo=False))
    options = {o['name']: o['value'] for o in intro}
    if options.get('tether:compression') != 'disabled':
        raise Failure(f'-Dtether:compression=disabled did not reach tether: {options.get("tether:compression")!r}')
    if options.get('tether:werror') is not True or options.get('tether:buildtype', options.get('buildtype')) != 'release':
        raise Failure('the consumer build is not a release build with -Werror for tether')

    targets = json.loads(run([a.meson, 'introspect', build, '--targets'], timeout=60, echo=False))
    names = sorted(t['name'] for t in targets)
    if names != sorted(['consumer', 'tether', 'tether_asio', 'tether_core', 'tether_envelope', 'tether_stream',
                        'tether_handler']):
        raise Failure(f'unexpected targets in the consumer build (tests or tools not off?): {names}')

    # ninja shows a command's output only when it prints something: any line
    # naming a warning fails the test even where -Werror does not reach.
    compiled = run([a.meson, 'compile', '-C', build, '-j', '2'], timeout=900)
    warnings = [line for line in compiled.splitlines() if 'warning:' in line]
    if warnings:
        raise Failure('tether warns in a consumer\'s release build:\n' + '\n'.join(warnings[:20]))

    # ASIO_SEPARATE_COMPILATION is tether's own business: the consumer's files
    # must be compiled with Asio header-only.
    with open(os.path.join(build, 'compile_commands.json')) as f:
        commands = json.load(f)
    consumer_cmds = [c['command'] for c in commands if c['file'].endswith('consumer.cpp')]
    if not consumer_cmds:
        raise Failure('consumer.cpp is not in compile_commands.json')
    if any('ASIO_SEPARATE_COMPILATION' in c or 'ASIO_DECL' in c for c in consumer_cmds):
        raise Failure(f'an Asio define leaked into the consumer: {consumer_cmds[0]}')

    check_asio_symbols(os.path.join(build, 'subprojects', 'tether', 'lib', 'libtether.a'))
    run_consumer(os.path.join(build, 'consumer'), a.echo_server)


def fields_prefix(pc_text):
    m = re.search(r'^prefix=(.*)$', pc_text, re.M)
    if not m:
        raise Failure('tether.pc has no prefix variable')
    return m.group(1).strip()


def test_install(a):
    root = os.path.join(a.work, 'root')
    fresh_dir(a.work)
    stage_install(a, root)

    pcs = glob.glob(os.path.join(root, '**', 'pkgconfig', 'tether.pc'), recursive=True)
    if len(pcs) != 1:
        raise Failure(f'expected one installed tether.pc under {root}, found {pcs}')
    pc = pcs[0]
    libdir = os.path.dirname(os.path.dirname(pc))
    if not os.path.exists(os.path.join(libdir, 'libtether.a')):
        raise Failure(f'libtether.a is not installed next to pkgconfig/ in {libdir}')
    check_asio_symbols(os.path.join(libdir, 'libtether.a'))
    headers = glob.glob(os.path.join(root, '**', 'include', 'tether', 'handler.hpp'), recursive=True)
    if len(headers) != 1:
        raise Failure(f'tether/handler.hpp is not installed: {headers}')
    with open(pc) as f:
        pc_text = f.read()
    log(f'--- {pc}\n{pc_text}---')
    if 'ASIO' in pc_text:
        raise Failure('tether.pc exports an Asio define')
    fields = dict(line.split(':', 1) for line in pc_text.splitlines() if re.match(r'^[A-Za-z.]+:', line))
    requires = fields.get('Requires', '')
    for name in ('openssl', 'nlohmann_json'):
        if not re.search(rf'(^|[\s,]){name}([\s,>=<]|$)', requires):
            raise Failure(f'tether.pc Requires lacks {name}: {requires!r}')
    libs = fields.get('Libs', '').split()
    for flag in ('-ltether', '-pthread'):
        if flag not in libs:
            raise Failure(f'tether.pc Libs lacks {flag}: {libs}')

    # pkg-config alone. tether.pc says prefix=/usr/local; --define-variable moves
    # it into the staging directory, so the flags are those of a real install
    # with the paths mapped. (PKG_CONFIG_SYSROOT_DIR would also prefix the
    # /usr/include and /usr/lib paths of openssl.pc and nlohmann_json.pc.)
    prefix = os.path.join(root, fields_prefix(pc_text).lstrip('/'))
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc))
    env.pop('PKG_CONFIG_LIBDIR', None)
    env.pop('PKG_CONFIG_SYSROOT_DIR', None)
    flags = run(['pkg-config', f'--define-variable=prefix={prefix}', '--cflags', '--libs', 'tether'],
                timeout=60, env=env).split()
    if any('ASIO' in f for f in flags):
        raise Failure(f'pkg-config gives an Asio define: {flags}')
    if not any(f.startswith('-I' + root) for f in flags):
        raise Failure(f'pkg-config does not point into the installed copy: {flags}')

    cxx = ['c++']
    if shutil.which('ccache'):
        cxx = ['ccache'] + cxx
    exe = os.path.join(a.work, 'consumer')
    # -O2: the Asio category check in consumer.cpp needs Asio's functions inlined.
    run(cxx + ['-std=c++20', '-O2'] + a.cxx_flags.split() + [os.path.join(PROJECT, 'consumer.cpp')] + flags +
        ['-o', exe], timeout=600, cwd=a.work)
    run_consumer(exe, a.echo_server)


def stage_install(a, root):
    """`meson install --tags devel` of the build into root: what a packager ships."""
    run([a.meson, 'install', '-C', a.build_root, '--no-rebuild', '--tags', 'devel',
         '--destdir', root], timeout=300)


def cmake_command():
    cmake = shutil.which('cmake')
    if not cmake:
        raise Failure('cmake not found: the README\'s set-up command installs it')
    return cmake


def test_cmake(a):
    root = os.path.join(a.work, 'root')
    fresh_dir(a.work)
    stage_install(a, root)
    configs = glob.glob(os.path.join(root, '**', 'cmake', 'tether', 'tetherConfig.cmake'), recursive=True)
    if len(configs) != 1:
        raise Failure(f'expected one installed tetherConfig.cmake under {root}, found {configs}')
    config_dir = os.path.dirname(configs[0])
    if not os.path.exists(os.path.join(config_dir, 'tetherConfigVersion.cmake')):
        raise Failure('tetherConfigVersion.cmake is not installed beside tetherConfig.cmake')
    with open(configs[0]) as f:
        config = f.read()
    log(f'--- {configs[0]}\n{config}---')
    # The same packages as tether.pc's Requires, plus threads.
    pcs = glob.glob(os.path.join(root, '**', 'pkgconfig', 'tether.pc'), recursive=True)
    with open(pcs[0]) as f:
        requires = dict(line.split(':', 1) for line in f.read().splitlines()
                        if re.match(r'^[A-Za-z.]+:', line)).get('Requires', '')
    cmake_name = {'openssl': 'OpenSSL', 'nlohmann_json': 'nlohmann_json', 'zlib': 'ZLIB', 'simdjson': 'simdjson'}
    for pc_name in re.findall(r'([A-Za-z_][\w.-]*)\s*(?:[<>=]+\s*[\w.]+)?', requires):
        if not re.search(rf'^find_dependency\({cmake_name[pc_name]}\b', config, re.M):
            raise Failure(f'tetherConfig.cmake does not find_dependency({cmake_name[pc_name]}) for tether.pc\'s {pc_name}')
    if not re.search(r'^find_dependency\(Threads\)', config, re.M):
        raise Failure('tetherConfig.cmake does not find Threads')
    if re.search(r'ASIO_(SEPARATE_COMPILATION|DECL|NO_DEPRECATED)', config):
        raise Failure('tetherConfig.cmake exports an Asio define')
    # The staged prefix: the directory above <libdir>/cmake/tether.
    m = re.search(r'"\$\{CMAKE_CURRENT_LIST_DIR\}/((?:\.\./?)+)"', config)
    prefix = os.path.normpath(os.path.join(config_dir, m.group(1))) if m else None
    if not prefix or not os.path.isdir(os.path.join(prefix, 'include', 'tether')):
        raise Failure(f'tetherConfig.cmake does not lead to the installed prefix: {prefix}')

    cmake = cmake_command()
    src = os.path.join(a.work, 'src')
    build = os.path.join(a.work, 'build')
    os.makedirs(src)
    for name in ('CMakeLists.txt', 'consumer.cpp'):
        shutil.copy(os.path.join(PROJECT, name), src)
    args = [cmake, '-S', src, '-B', build, f'-DCMAKE_PREFIX_PATH={prefix}', '-DCMAKE_BUILD_TYPE=Release',
            '-DCMAKE_EXPORT_COMPILE_COMMANDS=ON',
            f'-DCMAKE_CXX_FLAGS={a.cxx_flags}', f'-DCMAKE_EXE_LINKER_FLAGS={a.cxx_flags}']
    if shutil.which('ninja'):
        args += ['-G', 'Ninja']
    if shutil.which('ccache'):
        args += ['-DCMAKE_CXX_COMPILER_LAUNCHER=ccache']
    run(args, timeout=300)
    run([cmake, '--build', build, '--verbose'], timeout=600)
    with open(os.path.join(build, 'compile_commands.json')) as f:
        command = json.load(f)[0]['command']
    if 'ASIO_SEPARATE_COMPILATION' in command or 'ASIO_DECL' in command:
        raise Failure(f'an Asio define reached the CMake consumer: {command}')
    if not re.search(r'-std=(c|gnu)\+\+(20|2a|23|2b)', command):
        raise Failure(f'tether::tether did not ask for C++20: {command}')
    run_consumer(os.path.join(build, 'consumer'), a.echo_server)

    # The getting-started recipe as written, with the README's program.
    def first_block(path, lang):
        with open(os.path.join(a.source_root, path), encoding='utf-8') as f:
            m = re.search(rf'^```{lang}\n(.*?)^```$', f.read(), re.S | re.M)
        if not m:
            raise Failure(f'{path} has no ```{lang} block')
        return m.group(1)
    recipe = os.path.join(a.work, 'recipe')
    os.makedirs(recipe)
    with open(os.path.join(recipe, 'CMakeLists.txt'), 'w') as f:
        f.write(first_block('docs/getting-started.md', 'cmake'))
    with open(os.path.join(recipe, 'main.cpp'), 'w') as f:
        f.write(first_block('README.md', 'cpp'))
    run([cmake, '-S', recipe, '-B', os.path.join(recipe, 'build')] + args[5:], timeout=300)
    run([cmake, '--build', os.path.join(recipe, 'build')], timeout=600)
    peer = EchoPeer(a.echo_server)
    try:
        out = run([os.path.join(recipe, 'build', 'app'), f'ws://127.0.0.1:{peer.port}/'], timeout=60)
    finally:
        peer.stop()
    if '"connected":true' not in out or '"messages_sent":1' not in out:
        raise Failure(f'the README program built with the CMake recipe did not print its status: {out!r}')

    # The version file: the same 0.x minor is accepted, a newer version refused.
    version = re.search(r'set\(PACKAGE_VERSION "([0-9]+)\.([0-9]+)', open(os.path.join(
        config_dir, 'tetherConfigVersion.cmake')).read())
    for wanted, accepted in ((f'{version.group(1)}.{version.group(2)}', True), ('99.0', False)):
        check = os.path.join(a.work, 'version-' + wanted)
        os.makedirs(check)
        with open(os.path.join(check, 'CMakeLists.txt'), 'w') as f:
            f.write('cmake_minimum_required(VERSION 3.20)\nproject(version_check LANGUAGES CXX)\n'
                    f'find_package(tether {wanted} CONFIG)\nmessage(STATUS "tether_FOUND=${{tether_FOUND}}")\n')
        out = run([cmake, '-S', check, '-B', os.path.join(check, 'build'), f'-DCMAKE_PREFIX_PATH={prefix}'],
                  timeout=300)
        if (f'tether_FOUND={"1" if accepted else "0"}' not in out):
            raise Failure(f'find_package(tether {wanted}) was {"refused" if accepted else "accepted"}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('mode', choices=['subproject', 'install', 'cmake'])
    ap.add_argument('--source-root', required=True)
    ap.add_argument('--build-root', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--meson', required=True)
    ap.add_argument('--echo-server', required=True)
    ap.add_argument('--cxx-flags', default='',
                    help='extra flags for the pkg-config compile (the build\'s sanitizers, coverage)')
    a = ap.parse_args()
    try:
        {'subproject': test_subproject, 'install': test_install, 'cmake': test_cmake}[a.mode](a)
    except Failure as e:
        log(f'FAIL ({a.mode}): {e}')
        return 1
    log(f'PASS ({a.mode})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
