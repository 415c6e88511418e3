#!/usr/bin/env bash
# Run CPython's threading, thread, queue, logging, concurrent.futures and multiprocessing (spawn,
# forkserver: a subset) suites with the interpreter's own regrtest, with and without lockwatch,
# serially and with -j0, and compare the sets of failing tests: exits 1 when a test fails under
# lockwatch that passes without it (see scripts/cpython_suites.py for the details).
#   scripts/cpython_suites.sh [python] [--modes serial,j0] [--suites a,b] [--timeout S] [--confirm K]
# python defaults to python3 and must have lockwatch installed. Takes 10-30 minutes per
# interpreter on two cores; be kind to a shared machine: nice -n 19 scripts/cpython_suites.sh ...
set -u
here=$(cd "$(dirname "$0")" && pwd)
PY=${1:-python3}
[ $# -gt 0 ] && shift
exec "$PY" "$here/cpython_suites.py" "$PY" "$@"
