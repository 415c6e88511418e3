#!/usr/bin/env bash
# Run CPython's own threading, queue, concurrent.futures (thread pool) and logging test suites
# with and without lockwatch, and compare: lockwatch must not change how they pass.
#   scripts/cpython_suites.sh [python]      (default: python3; lockwatch must be installed in it)
# Takes a few minutes per interpreter; the output of every run is kept in a temporary folder
# (printed at the end). Exits non-zero if a suite passes without lockwatch and
# fails with it. lockwatch runs with its defaults (the watchdog on); --fail-env-changed makes a
# test that leaves a thread (or anything else) behind a failure, with and without lockwatch.
# Run it in the foreground: a background job starts with SIGINT ignored, and test_threading's
# interrupt_main tests then fail with and without lockwatch alike.
set -u
PY=${1:-python3}
tests=(test_threading test_queue test_logging)
# test_concurrent_futures is a package from 3.12 on, a module before; only its thread-pool parts
# (as_completed() and wait() hold the locks of every future they are given) and Future itself.
if "$PY" -c "import test.test_concurrent_futures.test_thread_pool" 2>/dev/null; then
  tests+=(test_concurrent_futures.test_thread_pool test_concurrent_futures.test_future
          "test_concurrent_futures.test_as_completed test_concurrent_futures.test_wait -m *ThreadPool*")
elif "$PY" -c "import test.test_concurrent_futures" 2>/dev/null; then
  tests+=("test_concurrent_futures -m *ThreadPool*")
fi
logs=$(mktemp -d "${TMPDIR:-/tmp}/cpython_suites.XXXXXX")  # each run's output, kept
status=0
for t in "${tests[@]}"; do
  name=${t%% *}
  # shellcheck disable=SC2086
  "$PY" -m test --fail-env-changed $t >"$logs/$name.plain.log" 2>&1; plain=$?
  # shellcheck disable=SC2086
  "$PY" -m lockwatch -q -m test --fail-env-changed $t >"$logs/$name.lockwatch.log" 2>&1; watched=$?
  verdict=ok
  if [ "$plain" -eq 0 ] && [ "$watched" -ne 0 ]; then verdict="FAILS UNDER LOCKWATCH"; status=1; fi
  printf '%-50s python: %-3s  python -m lockwatch: %-3s  %s\n' "$t" "$plain" "$watched" "$verdict"
done
echo "output of each run: $logs"
exit $status
