#!/usr/bin/env bash
# Runs the Python original (async-cache 2.0.3 from PyPI) through the hit, herd, error-storm
# and batching workloads of the Rust runner, in a virtualenv of its own, and writes the
# figures as JSON for the runner's table:
#
#   bench/python/run.sh [OUT.json]     # default: target/bench/python.json
#
# `cargo run --release -p bench` (the runner, bench_table) calls this itself when python3 is
# on the PATH. The virtualenv lives in target/bench/python-venv (override with BENCH_VENV).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/bench/python.json}"
venv="${BENCH_VENV:-$root/target/bench/python-venv}"

mkdir -p "$(dirname "$out")"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c 'import importlib.metadata as m; assert m.version("async-cache") == "2.0.3"' 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'async-cache==2.0.3' >&2
fi
"$venv/bin/python" "$here/bench.py" > "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
