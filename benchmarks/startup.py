"""Start-up and exit of a small program under lockwatch against plain `python`, per process.

    python benchmarks/startup.py               # 15 interleaved rounds
    python benchmarks/startup.py --rounds 31 --python /path/to/python
    python benchmarks/startup.py --instructions  # and each case's instruction count (valgrind)
    python benchmarks/startup.py --core c        # the compiled core only (c, python; default: both)

Each case is one fresh process (start-up, the program, exit and lockwatch's report at exit):

    plain         python empty.py
    cli -q        python -m lockwatch -q empty.py
    cli           python -m lockwatch empty.py           (the text report of an empty run)
    env           LOCKWATCH=1 python empty.py            (threading is never imported: stays off)
    env, 1 lock   LOCKWATCH=1 python one_lock.py         (switches on, text report at exit)
    child         python empty.py with the environment `python -m lockwatch` gives its child
                  processes (read from a run of it: LOCKWATCH=1, LOCKWATCH_JSON into its
                  children's folder, LOCKWATCH_TEXT=0, every other LOCKWATCH_* variable), here
                  with LOCKWATCH_JSON pointed at a folder of the benchmark's (stays off)
    child, 1 lock python one_lock.py, the same: switches on, writes its JSON report at exit
    plain, 1 lock / cli -q, 1 lock   the same program, plain and under the CLI
    import wrapt  python -c "import wrapt": what importing wrapt alone costs. lockwatch patches
                  the factories with wrapt before the program runs (patching.py), so this is
                  the floor of every case that switches lockwatch on

With --core both (the default) every case that runs lockwatch is run twice: as above, with the
core lockwatch chooses (the compiled one where it was built), and again with
LOCKWATCH_PURE_PYTHON=1, as "... [py]": the pure-Python fallback's start-up. --core python keeps
only the second, --core c only the first.

A round runs every case once, in an order that rotates from round to round; the first round is a
warm-up (bytecode written, files cached) and is not counted. Printed per case: the median wall
clock, the spread (min-max) and the median CPU time (user+sys of that process alone, from
os.wait4: less sensitive than wall clock to other processes on a busy machine), then each case's
difference from and ratio to plain. PYTHONDONTWRITEBYTECODE is removed from the children's
environment: with it, every run would compile lockwatch and its dependencies again.

--instructions adds, per case, the instructions one process executes (user space, counted by
valgrind --tool=callgrind after a warm-up run, PYTHONHASHSEED=0): the same from run to run, and
untouched by what else the machine is doing; the clock is not.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ONE_LOCK = "import threading\nlock = threading.Lock()\nwith lock:\n    pass\n"
# Run under `python -m lockwatch`: prints the LOCKWATCH_* variables its child processes inherit.
CHILD_ENV_PROBE = ("import json, os\n"
                   "print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('LOCKWATCH')}))\n")


def child_environ(python: str, folder: str, children: str, base: dict[str, str]) -> dict[str, str]:
    """The environment `python -m lockwatch` gives a child process (settings.to_environ), taken
    from a run of it; its children's folder is gone when the run ends: the JSON goes to ``children``."""
    probe = os.path.join(folder, "child_env_probe.py")
    with open(probe, "w") as f:
        f.write(CHILD_ENV_PROBE)
    out = subprocess.run([python, "-m", "lockwatch", "-q", probe], env=base, cwd=folder,
                         capture_output=True, text=True, check=True).stdout
    given: dict[str, str] = json.loads(out)
    given["LOCKWATCH_JSON"] = os.path.join(children, os.path.basename(given["LOCKWATCH_JSON"]))
    return dict(base, **given)


# The cases that run lockwatch (switched on, or at least imported): the ones --core doubles.
LOCKWATCH_CASES = ("cli -q", "cli", "env", "cli -q, 1 lock", "env, 1 lock", "child", "child, 1 lock")


def cases(python: str, folder: str, core: str = "c") -> dict[str, tuple[list[str], dict[str, str]]]:
    empty = os.path.join(folder, "empty.py")
    one_lock = os.path.join(folder, "one_lock.py")
    with open(empty, "w") as f:
        f.write("")
    with open(one_lock, "w") as f:
        f.write(ONE_LOCK)
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOCKWATCH")}
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    on = dict(base, LOCKWATCH="1")
    child = child_environ(python, folder, os.path.join(folder, "children"), base)
    cli = [python, "-m", "lockwatch"]
    table = {
        "plain": ([python, empty], base),
        "cli -q": ([*cli, "-q", empty], base),
        "cli": ([*cli, empty], base),
        "env": ([python, empty], on),
        "plain, 1 lock": ([python, one_lock], base),
        "cli -q, 1 lock": ([*cli, "-q", one_lock], base),
        "env, 1 lock": ([python, one_lock], on),
        "child": ([python, empty], child),
        "child, 1 lock": ([python, one_lock], child),
        "import wrapt": ([python, "-c", "import wrapt"], base),
    }
    if core == "c":
        return table
    pure = {f"{name} [py]": (argv, dict(env, LOCKWATCH_PURE_PYTHON="1"))
            for name, (argv, env) in table.items() if name in LOCKWATCH_CASES}
    if core == "python":
        table = {name: case for name, case in table.items() if name not in LOCKWATCH_CASES}
    return {**table, **pure}


def run_once(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Wall clock and CPU time (user + sys) of one process, which must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def instructions(argv: list[str], env: dict[str, str], cwd: str) -> int:
    """Instructions executed by one process (callgrind's "Collected" total), in millions."""
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                          env=dict(env, PYTHONHASHSEED="0"), cwd=cwd, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        sys.exit(f"valgrind {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return round(int(found.group(1)) / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--instructions", action="store_true",
                        help="also count each case's instructions with valgrind (slow: ~1 minute)")
    parser.add_argument("--core", choices=("both", "c", "python"), default="both",
                        help="lockwatch's core for the cases that run it: the one it chooses (c: "
                             "compiled where built), the pure-Python one, or both (default)")
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind")
    with tempfile.TemporaryDirectory() as folder:
        children = os.path.join(folder, "children")
        os.mkdir(children)
        table = cases(args.python, folder, args.core)
        names = list(table)
        wall: dict[str, list[float]] = {n: [] for n in names}
        cpu: dict[str, list[float]] = {n: [] for n in names}
        for r in range(args.rounds + 1):
            k = r % len(names)
            for name in names[k:] + names[:k]:  # rotate the order: no case always runs first
                w, c = run_once(*table[name], cwd=folder)
                if r:  # round 0 warms up
                    wall[name].append(w)
                    cpu[name].append(c)
            for leftover in os.listdir(children):  # the children's JSON reports
                os.remove(os.path.join(children, leftover))
        counted = {n: instructions(*table[n], cwd=folder) for n in names} if args.instructions else {}
        # in the folder the cases run in: from the project's root, -c would import its source tree
        version = subprocess.run([args.python, "-c", "import sys, wrapt, click; print(sys.version.split()[0], "
                                  "'wrapt', wrapt.__version__, 'click', click.__version__, end='; ');"
                                  "import lockwatch.proxies as p; print('lockwatch core', p.CORE)"],
                                 capture_output=True, text=True, check=True, cwd=folder).stdout.strip()
    print(f"python {version}; {args.rounds} rounds (+1 warm-up), medians in ms")
    print(f"{'case':21} {'wall':>7} {'(min-max)':>17} {'cpu':>7} {'wall-plain':>11} {'cpu-plain':>10} "
          f"{'wall/plain':>10}" + (f" {'M instr':>8} {'-plain':>7}" if counted else ""))
    plain_w, plain_c = statistics.median(wall["plain"]), statistics.median(cpu["plain"])
    for name in names:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        spread = f"({min(wall[name]) * 1e3:.0f}-{max(wall[name]) * 1e3:.0f})"
        line = (f"{name:21} {w * 1e3:7.1f} {spread:>17} {c * 1e3:7.1f} {(w - plain_w) * 1e3:+11.1f} "
                f"{(c - plain_c) * 1e3:+10.1f} {w / plain_w:9.2f}x")
        if counted:
            line += f" {counted[name]:8d} {counted[name] - counted['plain']:+7d}"
        print(line)


if __name__ == "__main__":
    main()
