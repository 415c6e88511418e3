"""A creation site is one creating call: two locks made on one line are two sites (two roles), a
loop or comprehension making many from one call is one site and the instance graph decides."""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from support import PROGRAMS, lockwatch

import lockwatch as lw
from lockwatch import config, stacks

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("lockwatch_off")]

HERE = __file__
SITES = PROGRAMS / "sites"


def locks_of(snap, line):
    return sorted((s for s in snap.locks if s.filename == HERE and s.line == line), key=lambda s: s.key)


def test_two_locks_on_one_line_in_a_fixed_order_are_no_cycle(threads, line_of):
    def in_order():
        with a:
            with middle:
                with b:
                    pass

    with lw.watching() as session:
        a, b = threading.Lock(), threading.Lock()  # <fixed>
        middle = threading.Lock()
        threads.run(in_order)
        in_order()
    snap = session.snapshot()
    pair = locks_of(snap, line_of("fixed"))
    assert [s.name for s in pair] == ["a", "b"]
    assert len({s.key for s in pair}) == 2
    assert {s.site for s in pair} == {f"{HERE}:{line_of('fixed')}"}  # the report's site: file:line
    assert session.potential_deadlocks == []


def test_the_same_two_locks_in_both_orders_are_an_instance_cycle(threads, line_of):
    def ab():
        with a:
            with b:
                pass

    def ba():
        with b:
            with a:
                pass

    with lw.watching() as session:
        a, b = threading.Lock(), threading.Lock()  # <both>
        threads.run(ab)
        threads.run(ba)
    [p] = session.potential_deadlocks
    assert p.scope == "instance"
    assert sorted(lk.name for lk in p.locks) == ["a", "b"]


def test_two_roles_of_one_line_in_both_orders_are_a_site_cycle(threads, line_of):
    def pair():
        return threading.Lock(), threading.Lock()  # <roles>

    def nest(outer, inner):
        with outer:
            with inner:
                pass

    with lw.watching() as session:
        x1, y1 = pair()
        x2, y2 = pair()
        threads.run(nest, x1, y1)
        threads.run(nest, y2, x2)  # the other order, on other instances
    [p] = session.potential_deadlocks
    assert p.scope == "site"
    assert len({lk.key for lk in p.locks}) == 2
    assert {lk.site for lk in p.locks} == {f"{HERE}:{line_of('roles')}"}


def test_one_call_making_many_locks_is_one_site(threads, line_of):
    def in_index_order():
        for i in range(len(locks) - 1):
            with locks[i]:
                with locks[i + 1]:
                    pass

    with lw.watching() as session:
        locks = [threading.Lock() for _ in range(3)]  # <many>
        threads.run(in_index_order)
    snap = session.snapshot()
    [one] = locks_of(snap, line_of("many"))
    assert one.instances == 3 and one.name == "locks"
    assert session.potential_deadlocks == []


def test_one_line_in_fixed_order_passes_fail_on_cycle(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    program = SITES / "one_line_fixed_order.py"
    result = lockwatch("--fail-on-cycle", "--json", str(out), str(program), cwd=SITES)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["potential_deadlocks"] == []
    named = {lk["name"]: lk for lk in data["locks"]}
    assert {"first", "second", "locks[0]", "locks[1]", "middle"} <= set(named)
    assert named["first"]["site"] == named["second"]["site"] == f"{program}:5"
    assert named["first"]["key"] != named["second"]["key"]


def test_a_suppression_by_site_pattern_matches_both_roles_of_a_line(threads, line_of):
    def ab():
        with a:
            with b:
                pass

    def ba():
        with b:
            with a:
                pass

    with lw.watching() as session:
        a, b = threading.Lock(), threading.Lock()  # <suppressed>
        threads.run(ab)
        threads.run(ba)
    [p] = session.potential_deadlocks
    sup = config.Suppression(sites=[f"*test_sites.py:{line_of('suppressed')}"], reason="known")
    assert sup.matches(p.fingerprint, [lk.site for lk in p.locks])


@pytest.mark.parametrize("line, names", [
    ("a, b = threading.Lock(), threading.Lock()", ["a", "b"]),
    ("self.a, self.b = threading.Lock(), threading.RLock()", ["a", "b"]),
    ("locks = [threading.Lock(), threading.Lock()]", ["locks[0]", "locks[1]"]),
    ("x = threading.Lock(); y = threading.Lock()", ["x", "y"]),
    ("run(read=threading.Lock(), write=threading.Lock())", ["read", "write"]),
    ("guards = {'in': threading.Lock(), 'out': threading.Lock()}", ["in", "out"]),
    ("x = threading.Lock() if flag else threading.Lock()", [None, None]),
    ("a, *rest = threading.Lock(), threading.Lock()", [None, None]),
])
def test_each_call_of_a_line_gets_its_own_name(tmp_path, line, names):
    src = tmp_path / "roles.py"
    src.write_text(f"import threading\nif True:\n    {line}\n")
    columns = [4 + i for i in range(len(line))  # where each threading.Lock( / RLock( call starts
               if line.startswith(("threading.Lock(", "threading.RLock("), i)]
    assert len(columns) == len(names)
    for i, (col, want) in enumerate(zip(columns, names)):
        assert stacks.role_name(str(src), 3, col, i, len(names)) == want  # 3.11+: by column
        assert stacks.role_name(str(src), 3, None, i, len(names)) == want  # 3.9-3.10: by order


def test_call_positions_tell_the_calls_of_a_line_apart():
    seen = []

    def record():
        frame = sys._getframe(1)
        seen.append(stacks.call_position(frame.f_code, frame.f_lasti, frame.f_lineno))

    for _ in range(2):
        record(), record()  # two calls: two positions, the same in every iteration
    assert seen[0] != seen[1] and seen[:2] == seen[2:]
    assert (seen[0][1] is None) == (sys.version_info < (3, 11))  # the column, where code has positions
