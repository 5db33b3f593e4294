#!/usr/bin/env bash
# Runs bench-client against the Python and the Node echo peers with a few
# parameter sets and prints one JSON line per run on stdout (what each line was
# run against goes to stderr, as "# ...").
#
#   test/bench/bench_compare.sh [BENCH_CLIENT]     (default: build/test/bench/bench-client)
#
# Run from anywhere; build bench-client first (ninja -C build test/bench/bench-client).
# A peer whose runtime is missing is skipped. Each peer's stdin is a pipe held
# open by this script: the peer exits when the pipe closes (see test/peers/README.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bench=${1:-$root/build/test/bench/bench-client}
[[ -x $bench ]] || { echo "bench_compare.sh: $bench is not built" >&2; exit 2; }

# connections messages size window [--binary]
param_sets=(
  "1 20000 16 1"
  "1 20000 16 32"
  "4 5000 1024 16"
  "16 1000 1024 16 --binary"
  "4 500 65536 4 --binary"
  "2 50 1048576 2 --binary"
)

# run_peer NAME CMD...: starts the peer, runs every parameter set against it, stops it.
run_peer() {
  local name=$1
  shift
  local fifo_dir port line status=0
  fifo_dir=$(mktemp -d)
  mkfifo "$fifo_dir/in" "$fifo_dir/out"
  "$@" --port 0 < "$fifo_dir/in" > "$fifo_dir/out" &
  local pid=$!
  exec {peer_in}> "$fifo_dir/in" {peer_out}< "$fifo_dir/out"
  if ! read -r -t 20 line <&"$peer_out" || [[ $line != listening* ]]; then
    echo "# $name: the peer did not start" >&2
    status=1
  else
    port=${line#listening }
    for set in "${param_sets[@]}"; do
      read -r c n s w bin <<< "$set"
      echo "# $name echo: connections=$c messages/connection=$n size=$s window=$w ${bin:-}" >&2
      # shellcheck disable=SC2086  # $bin is empty or one flag
      if ! "$bench" --url "ws://127.0.0.1:$port" --connections "$c" --messages "$n" --size "$s" --window "$w" $bin \
          | tail -n 1; then
        status=1
      fi
    done
  fi
  exec {peer_in}>&- {peer_out}<&- # stdin EOF: the peer exits
  wait "$pid" || true
  rm -rf "$fifo_dir"
  return $status
}

status=0
run_peer python /usr/bin/python3 "$root/test/peers/echo_server.py" || status=1
if command -v node > /dev/null; then
  NODE_PATH=/usr/share/nodejs run_peer node node "$root/test/peers/echo_server.js" || status=1
else
  echo "# node not found: skipping the Node peer" >&2
fi
exit $status
