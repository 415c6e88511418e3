"""Recorder state: creation sites, per-thread held locks, lock-order edges and per-site statistics."""
from __future__ import annotations

import _thread
import itertools
import os
import sys
import threading
import time
import weakref
from typing import Any

from . import histogram, origins, stacks

# pytest (and tools that follow its convention) leave this module's frames out of a failing
# test's traceback, e.g. a DeadlockError raised in a blocked acquire: the test's code is what to read.
__tracebackhide__ = True

# lockwatch's own bookkeeping lock: a raw _thread lock captured at import, never instrumented.
# Program code can run in the middle of a section that holds it: a finalizer or weakref callback
# (a garbage collection at any allocation), a signal handler (main thread), a trace or profile
# hook (at any line or call). Hence:
# - it is re-entrant: such code takes the mutex again when it drops a used lock, fails a try-lock
#   or takes a semaphore;
# - a thread that holds it gives it up while it blocks for a program lock (waiting_without_mutex):
#   otherwise a hook waiting for a lock held by a thread that then needs the mutex hangs both;
# - so another thread may run a section while this one is suspended in the middle of its own:
#   every section is written as steps that each leave the state consistent (dict.setdefault,
#   list.remove by identity, a counter for site indexes, one-line max updates, copies before
#   iterating), never as a check and an update that program code could come between.
mutex: Any = _thread.RLock()  # Any: typeshed lacks the _is_owned/_release_save/_acquire_restore used below
now = time.perf_counter_ns
get_ident = _thread.get_ident

# Per-thread state. `tls.held` is the hot path's list of locks the thread holds, in order.
tls = _thread._local()

serials = itertools.count(1)  # next() on itertools.count is atomic in CPython (the compiled core's too)
_epochs = itertools.count(1)  # one per State: a Site belongs to the State of its epoch
# Thread identity for triage ("single-thread"): get_ident() values are reused as soon as a thread
# has exited, so two threads that never overlapped would look like one. A serial never is.
_thread_serials = itertools.count(1)

# Kept findings are bounded: a program that inverts millions of pairs still fits in memory.
MAX_KEPT_EDGES = 10_000
MAX_GATES = 4
# A thread holding many locks of one site gets edges into another lock of that site from all of
# them while it holds at most this many, else from the latest one only (proxies._sources):
# as_completed() over n futures records about n edges, not n^2/2.
SAME_SITE_SOURCES = 8


class Site:
    """Where locks were created (the lock class, in lockdep's terms) and the statistics of all its
    instances. Statistics of live instances live on the instances (each protected by its own lock)
    and are folded in here when an instance dies.

    A site is one creating call: its file, line and position in the line (stacks.call_position),
    so `a, b = Lock(), Lock()` makes two sites (two roles), and a loop or comprehension making many
    locks from one call makes one. ``location`` stays "<file>:<line>" (the report's `site`);
    ``key`` tells sites of one line and kind apart ("<file>:<line>:<kind>#<n>")."""

    __slots__ = (
        "index", "filename", "line", "function", "kind", "_name", "explicit_name",
        "made", "acquisitions", "contended", "failed",
        "hold_total", "hold_max", "wait_total", "wait_max", "hold_hist", "wait_hist", "hold_fast",
        "signal", "sem_value", "epoch", "position", "column", "siblings", "owner", "given",
        "__weakref__",
    )

    def __init__(self, index: int, filename: str, line: int, function: str, kind: str,
                 epoch: int = 0, position: tuple[int, int | None] = (0, None),
                 siblings: list[Site] | None = None) -> None:
        self.index = index
        self.epoch = epoch
        self.filename = filename
        self.line = line
        self.function = function
        self.kind = kind
        # The creating call's place in its line (its column on 3.11+, else its index among the
        # calls of the line), and its column when known.
        self.position, self.column = position
        self.siblings = siblings if siblings is not None else [self]  # the sites of this line
        self._name: tuple[int, str | None] | None = None  # (siblings seen, derived name)
        self.explicit_name: str | None = None
        self.made = itertools.count()  # next() per instance made: atomic, no lock needed
        self.acquisitions = 0
        self.contended = 0
        self.failed = 0
        self.hold_total = 0
        self.hold_max = 0
        self.wait_total = 0
        self.wait_max = 0
        self.hold_hist = histogram.new_counters()  # next(hold_hist[bucket]) per hold (histogram.add)
        self.wait_hist = histogram.new_counters()
        # The compiled core's hold counts (lockwatch._core.HoldCounts: a C counter per bucket,
        # one add per release), made by it at its first hold here; its rare paths and the
        # pure-Python core count in hold_hist. hold_counts() reads both.
        self.hold_fast: Any = None
        self.signal = False  # a semaphore released by threads that did not acquire it
        self.sem_value = 0  # the largest initial value of a Semaphore made here
        self.owner: str | None = None  # the class of the creating method (`self._lock` -> `Account._lock`)
        self.given: str | None = None  # a name known when the site was made (a dataclass field)

    def hold_counts(self) -> dict[int, int]:
        """The hold histogram's counts, bucket index -> count, in index order."""
        counts = histogram.read_counters(self.hold_hist)
        fast = self.hold_fast
        if fast is not None:
            counts = dict(sorted(histogram.merged(counts, fast.read()).items()))
        return counts

    def hold_totals(self) -> tuple[int, int]:
        """The holds' total and longest duration (ns): what dead instances folded in, and what the
        compiled core's instances count in hold_fast (_core.c, "hold totals"); live pure-Python
        instances keep theirs (snapshot adds them)."""
        fast = self.hold_fast
        if fast is None:
            return self.hold_total, self.hold_max
        return self.hold_total + fast.total, max(self.hold_max, fast.max)

    @property
    def instances(self) -> int:
        """How many instances were made here (one next(self.made) each)."""
        return histogram.counter_value(self.made)

    @property
    def location(self) -> str:
        return f"{self.filename}:{self.line}"

    def _same_kind(self) -> list[Site]:
        return sorted((s for s in list(self.siblings) if s.kind == self.kind), key=lambda s: s.position)

    def _ordinal(self) -> str:
        """"#n" when other sites of this line and kind exist (n: its place among them), else ""."""
        same = self._same_kind()
        return f"#{same.index(self) + 1}" if len(same) > 1 else ""

    @property
    def key(self) -> str:
        """Unique among the sites of a run: "<file>:<line>:<kind>", with "#n" when one line made
        locks of one kind at several calls."""
        return f"{self.filename}:{self.line}:{self.kind}{self._ordinal()}"

    @property
    def name(self) -> str | None:
        """The variable, attribute, keyword or key the lock goes to on its creation line, if the
        line says (for one of several creating calls on a line, its own target: `a, b = ...`);
        an attribute of `self` in a method is named with its class (`Account._lock`)."""
        if self.given is not None:
            return self.given
        siblings = list(self.siblings)
        cached = self._name
        if cached is not None and cached[0] == len(siblings):
            return cached[1]
        name, on_self = None, False
        if len(siblings) > 1:
            ordered = sorted(siblings, key=lambda s: s.position)
            name, on_self = stacks.role_target(self.filename, self.line, self.column, ordered.index(self),
                                               len(ordered))
        if name is None and len(self._same_kind()) < 2:
            # one such call: the line's name
            name, on_self = stacks.derived_target(self.filename, self.line, self.column)
        if name is not None and on_self and self.owner:
            name = f"{self.owner}.{name}"
        self._name = (len(siblings), name)
        return name

    def display_name(self) -> str:
        return (self.explicit_name or self.name
                or f"{self.kind}@{stacks.short_path(self.filename)}:{self.line}{self._ordinal()}")


class Edge:
    """Lock-order edge X -> Y: a thread holding X blocked to acquire Y. Recorded in full (thread,
    both stacks) the first time; later occurrences only count."""

    __slots__ = (
        "src_serial", "dst_serial", "src_site", "dst_site", "src_name", "dst_name",
        "thread", "held_stack", "acquire_stack", "count", "timed", "context", "gates",
        "thread_id", "held_ref", "multi",
    )

    # lockwatch._core.new_edge makes an Edge without this __init__, setting what it sets in its
    # order (with the compiled core: _record_edges' new_edge): change both.
    def __init__(self, src_serial: int, dst_serial: int, src_site: Site, dst_site: Site,
                 src_name: str | None, dst_name: str | None, thread: str,
                 held_stack: list[str], acquire_stack: list[str], timed: bool,
                 context: str | None, gates: tuple, thread_id: str, held_ref: list | None) -> None:
        self.src_serial = src_serial
        self.dst_serial = dst_serial
        self.src_site = src_site
        self.dst_site = dst_site
        self.src_name = src_name
        self.dst_name = dst_name
        self.thread = thread
        self.held_stack = held_stack
        self.acquire_stack = acquire_stack
        self.count = 1
        self.timed = timed
        self.context = context
        self.gates = gates  # (serial, site) of the other locks held every time so far
        self.thread_id = thread_id  # "<pid>:<thread serial>" (thread_id())
        self.held_ref = held_ref  # the first thread's held list (lists are per thread)
        self.multi = False  # taken by more than one thread


class State:
    """Everything recorded by one session, reset on enable."""

    def __init__(self) -> None:
        self.epoch = next(_epochs)
        self.sites: dict[tuple, Site] = {}  # (file, line, kind, position) -> Site, in creation order
        self.line_sites: dict[tuple[str, int], list[Site]] = {}  # (file, line) -> its sites
        self.site_indexes = itertools.count()  # Site.index: unique, maybe not dense
        self.site_cache: dict[tuple, tuple] = {}  # (id(code), lasti, kind) -> (code, Site)
        # Locks with incoming edges: serial -> their weak reference in `live`; an entry goes when
        # its lock dies (fold_instance). A WeakSet cost a weak reference with a callback and two
        # Python calls per lock (as_completed(): one per future).
        self.edge_owners: dict[int, Any] = {}
        # (src, dst site) -> [first Edge, pairs, (folded: [gates, timed, multi, thread ids])]
        self.site_edges: dict[tuple[Site, Site], list] = {}
        self.kept_edges: dict[tuple[int, int], Edge] = {}  # instance edges of closed 2-cycles
        # (sites, where each lock was taken) -> (held stack, acquire stack): see _edge_stacks
        self.edge_stacks: dict[tuple, tuple] = {}  # -> (held stack, acquire stack, the key's code objects)
        # A stack's key (stacks.chain_key) -> a number of its own, which edge_stacks' keys hold: the
        # long key is hashed once per new-edge call, not once per edge (as_completed: ~8 each).
        self.chains: dict[Any, int] = {}  # (a tuple; bytes from lockwatch._core.chain_key)
        self.chain_numbers = itertools.count()  # never reused: a number outlives a cleared `chains`
        self.ranks: dict[int, tuple[int, int, tuple]] = {}  # site index -> (order id, rank, names)
        self.orders = 0
        self.violations: list[dict[str, Any]] = []  # declared-order violations, as plain data
        self.violation_keys: dict[tuple, Edge] = {}  # the first edge of each violation
        self.started = time.time()
        self.internal_errors: list[str] = []
        self.edges_version = 0  # bumped on every new edge: "has the graph changed?" for free


state = State()
# Per-thread registry for the watchdog: ident -> held list (of the live threads), ident ->
# (lock, since, timed) while blocked on the contended path, ident -> exception to raise there.
threads: dict[int, list] = {}
waiting: dict[int, tuple] = {}
victims: dict[int, BaseException] = {}
watch: Any = None  # the running Watchdog, if any (looked up only on the contended path)
context: str | None = None  # label of what is running (the pytest plugin sets the test id)
recording = True  # edges are recorded only while a session is enabled


def edge_owners(st: State) -> list:
    """The live locks with incoming edges in ``st``. dict() copies the registry in one C call, without
    allocating per item: a finalizer run by the garbage collector (this thread may hold the
    mutex, which is re-entrant) cannot change it under the copy."""
    out = []
    for ref in dict(st.edge_owners).values():
        o = ref()
        if o is not None:
            out.append(o)
    return out


# Called after reset() makes a new State: caches of the old one's sites go (the compiled core's).
reset_hooks: list[Any] = []


def reset() -> None:
    global state
    with mutex:
        state = State()
    for hook in list(reset_hooks):
        hook()


def waiting_without_mutex(wait: Any, *args: Any) -> Any:
    """``wait(*args)``, which blocks for a program lock, with lockwatch's mutex given up for the
    wait if this thread holds it (program code running inside lockwatch's bookkeeping: a hook,
    a finalizer, a signal handler), and taken back after. Without that, the thread holding the
    program lock blocks for the mutex (a try-lock, a semaphore, a new lock) and neither moves."""
    m = mutex
    if not m._is_owned():
        return wait(*args)
    saved = m._release_save()
    try:
        return wait(*args)
    finally:
        m._acquire_restore(saved)


next_serial = serials.__next__  # a lock's serial number

# Every live instance, by serial: what fork resets and snapshots sum up, found without walking the
# heap (gc.get_objects() took over a second per fork with a 354 MB heap). An instance removes
# itself when it dies (fold_instance, from its __del__).
live: dict[int, Any] = {}
weakref_ref = weakref.ref
# The compiled core's Lock and RLock instances are not in `live`: it keeps a registry of its own
# (a list threaded through the instances, lockwatch/_core.c), and this returns them. A compiled
# instance is in `live` too once it has an edge (_record_edges: _drop_edges finds an edge's other
# end by serial there), or if proxies._init set it up.
compiled_live: Any = None


def live_instances() -> list:
    """The instruments alive now (a copy: instances come and go meanwhile)."""
    out = compiled_live() if compiled_live is not None else []
    listed = {id(o) for o in out}
    for ref in list(live.values()):
        o = ref()
        if o is not None and id(o) not in listed:
            out.append(o)
    return out


MAX_SITE_CACHE = 100_000


def site_for(frame: Any, kind: str) -> Site:
    """The Site of a lock created by ``frame`` (the first frame outside lockwatch and threading);
    a factory's caller's (origins.is_factory), a dataclass field's definition."""
    if frame is None:
        return _site_at("<unknown>", 0, "<module>", kind)
    cache = state.site_cache
    for _depth in range(origins.MAX_FACTORY_DEPTH + 1):
        # Lock creation is frequent (a Future makes two): first a cache by the creating
        # instruction, keyed by the code object's id (the entry keeps the code alive, so the id
        # is not reused) and cheap to hash, which saves computing the line number and hashing
        # the file name. A None site: a factory, whose caller's instruction is looked up next.
        # (instruction_site() below, written out: one Python call less per lock.)
        code = frame.f_code
        key = (id(code), frame.f_lasti, kind)
        hit = cache.get(key)
        if hit is not None and hit[0] is code:
            site = hit[1]
        else:
            site = _new_site(frame, kind)
            if len(cache) >= MAX_SITE_CACHE:
                cache.clear()  # code compiled again and again (exec): keep memory bounded
            cache[key] = (code, site)
        if site is not None:
            return site
        caller = stacks.first_outside(frame.f_back)
        if caller is None:
            break
        frame = caller
    return _plain_site(frame, kind)


def instruction_site(frame: Any, kind: str) -> Site | None:
    """The site of a lock created by ``frame``'s current instruction, if that instruction alone
    decides it; None for a factory (origins.is_factory), whose caller decides. The compiled
    core's factories keep what this answers in a cache of their own (_core.c, "creation")."""
    cache = state.site_cache
    code = frame.f_code
    key = (id(code), frame.f_lasti, kind)
    hit = cache.get(key)
    if hit is not None and hit[0] is code:
        site: Site | None = hit[1]
        return site
    site = _new_site(frame, kind)
    if len(cache) >= MAX_SITE_CACHE:
        cache.clear()  # code compiled again and again (exec): keep memory bounded
    cache[key] = (code, site)
    return site


def _new_site(frame: Any, kind: str) -> Site | None:
    """The site made by ``frame``'s current instruction, or None for a factory (its caller's)."""
    code = frame.f_code
    line = frame.f_lineno
    try:
        if origins.is_factory(code, frame.f_lasti, line):
            return None
        field = origins.dataclass_field(frame)
    except Exception:  # noqa: BLE001 - a name is never worth breaking the program: the plain site
        field = None
    if field is not None:
        filename, fline, owner, attr = field
        site = _site_at(filename, fline, owner, kind)
        site.given = f"{owner}.{attr}"
        return site
    if code.co_filename.startswith("<") and code.co_name == "__init__" and frame.f_back is not None:
        # a generated __init__ (dataclasses, attrs) whose field was not found: where the object
        # is made, never "<string>:N", which every such class of the program shares
        caller = stacks.first_outside(frame.f_back)
        if caller is not None and not caller.f_code.co_filename.startswith("<"):
            return None
    return _plain_site(frame, kind)


def _plain_site(frame: Any, kind: str) -> Site:
    code = frame.f_code
    line = frame.f_lineno
    site = _site_at(code.co_filename, line, code.co_name, kind, stacks.call_position(code, frame.f_lasti, line))
    if site.owner is None:
        try:
            site.owner = origins.owner_class(frame)
        except Exception:  # noqa: BLE001 - as above
            pass
    return site


def _site_at(filename: str, line: int, function: str, kind: str,
             position: tuple[int, int | None] = (0, None)) -> Site:
    key = (filename, line, kind, position[0])
    st = state
    site = st.sites.get(key)
    if site is None:
        siblings = st.line_sites.setdefault((filename, line), [])
        new = Site(next(st.site_indexes), filename, line, function, kind, st.epoch, position, siblings)
        site = st.sites.setdefault(key, new)  # another thread may have made it meanwhile
        if site is new:
            siblings.append(new)
    return site


def fold_instance(lock: Any) -> None:
    """Move a dying instance's statistics into its site, and drop its instance edges (both ways,
    folded into their site edge) and its registry entry: what a lock leaves behind is bounded by
    its sites, however many locks come and go (called from the instance's __del__)."""
    live.pop(lock._serial, None)
    state.edge_owners.pop(lock._serial, None)
    if lock._in or lock._out:
        _drop_edges(lock)
    if lock._n or lock._nfail:
        with mutex:
            _fold_into(lock._site, lock)


def _drop_edges(lock: Any) -> None:
    """A long-lived lock taken after (or before) many short-lived ones kept one edge per dead
    one for ever (200,000 requests: 86 MB). Each edge lives in its destination's ``_in``, and
    its source lists the destination in ``_out``: whichever end dies first removes it."""
    serial = lock._serial
    with mutex:
        out, lock._out = lock._out, None
        for d in list(out or ()):
            ref = live.get(d)
            dst = ref() if ref is not None else None
            ins = dst._in if dst is not None else None
            if ins:
                e = ins.pop(serial, None)
                if e is not None:
                    _fold_edge(e)
        ins, lock._in = lock._in, None
        for s, e in list((ins or {}).items()):
            ref = live.get(s)
            src = ref() if ref is not None else None
            if src is not None and src._out:
                src._out.discard(serial)
            _fold_edge(e)


def _fold_edge(e: Edge) -> None:
    """What a dead instance edge told about its site pair: a gate counts only if it was held on
    every edge, the pair is timed only if every edge was, and taken by several threads if any
    edge was or their threads differ (snapshot applies it to the site edge)."""
    entry = state.site_edges.get((e.src_site, e.dst_site))
    if entry is None or entry[0] is e:
        return  # an earlier session's, or the site edge itself (it stays)
    if len(entry) == 2:
        entry.append([set(entry[0].gates), True, False, {entry[0].thread_id}])
    folded = entry[2]
    # Each step only when it can change something: as_completed() drops thousands of edges of
    # one site pair, taken by one thread, ungated after the first few.
    if folded[0]:
        folded[0] &= set(e.gates)
    if folded[1] and not e.timed:
        folded[1] = False
    if e.multi and not folded[2]:
        folded[2] = True
    if len(folded[3]) < 2:
        folded[3].add(e.thread_id)


def _fold_into(site: Site, lock: Any) -> None:
    # Each statement on one line: no other section can come between its test and its update.
    site.acquisitions += lock._n
    site.contended += lock._ncont
    site.failed += lock._nfail
    site.hold_total += lock._hold_tot
    site.wait_total += lock._wait_tot
    if lock._hold_max > site.hold_max: site.hold_max = lock._hold_max  # noqa: E701
    if lock._wait_max > site.wait_max: site.wait_max = lock._wait_max  # noqa: E701


# Releases made by other threads than the holder, by id() of the holder's held list: the list is
# changed only by its own thread, which applies these at its next nested acquisition or
# out-of-order release (drain). Changed under the mutex only, so a reader sees a list and its
# pending releases consistently (holding()).
pending: dict[int, list] = {}


def hand_off(held: list, lock: Any) -> None:
    """``lock``'s hold in another thread's ``held`` list ended (a Lock released by another
    thread, a semaphore's hold ended by another thread's release): tell the owner."""
    with mutex:
        pending.setdefault(id(held), []).append(lock)


def drain(held: list) -> None:
    """Apply the releases handed to this thread (``held`` is its own list)."""
    with mutex:
        locks = pending.pop(id(held), None)
        for lock in locks or ():
            _reconcile(held, lock)


def _reconcile(held: list, lock: Any, owner: Any = None) -> None:
    """Make ``lock``'s entries in ``held`` match what the lock itself records: a Lock or RLock is
    in its holder's list once; a semaphore once per hold of that thread. Extra entries are the
    oldest (stale holds are older than any hold taken since), so those go."""
    at = [i for i, h in enumerate(held) if h is lock]
    for i in reversed(at[:max(0, len(at) - _holds_in(lock, held if owner is None else owner))]):
        del held[i]


def _holds_in(lock: Any, held: list) -> int:
    holders = getattr(lock, "_holders", None)  # a semaphore: one _Hold per acquisition
    if holders is not None:
        return sum(1 for h in list(holders) if h.held is held)
    return 1 if lock._held_in is held else 0


def holding(held: list) -> list:
    """What the thread owning ``held`` holds, read from any thread: a copy (one C call) less the
    releases handed to it and not yet applied. Never index another thread's list."""
    with mutex:
        out = list(held)
        for lock in list(pending.get(id(held), ())):
            _reconcile(out, lock, held)
        return out


class _ThreadEnd:
    """Kept in a thread's local storage: when the thread ends its storage goes, and this drops the
    thread's entries from the per-thread tables (they are bounded by the live threads)."""

    __slots__ = ("ident", "held")

    def __init__(self, ident: int, held: list) -> None:
        self.ident, self.held = ident, held

    def __del__(self) -> None:
        try:
            if threads.get(self.ident) is self.held:
                threads.pop(self.ident, None)
            pending.pop(id(self.held), None)
        except Exception:  # interpreter shutdown
            pass


def thread_start() -> list:
    """First lock event of a thread: give it a held list."""
    held: list = []
    ident = get_ident()
    tls.held = held
    tls.serial = next(_thread_serials)  # unique per thread of this process (idents are reused)
    tls.tid = f"{os.getpid()}:{tls.serial}"  # thread_id(), made once
    tls.busy = False
    tls.end = _ThreadEnd(ident, held)
    threads[ident] = held
    return held


def thread_name() -> str:
    ident = get_ident()
    t = threading._active.get(ident)  # type: ignore[attr-defined]  # never creates a _DummyThread (which would take locks)
    if t is not None:
        return t.name
    return f"thread-{ident}"


def lock_name(lock: Any) -> str | None:
    """The name given to this instance with lockwatch.name(), if any."""
    ann = lock._ann
    return ann.get("name") if ann else None


def annotate(lock: Any, **values: Any) -> None:
    """Per-instance annotations live on the instance (they die with it)."""
    lock._ann = {**(lock._ann or {}), **values}


def thread_id() -> str:
    """The calling thread's identity in this process's edges: "<pid>:<thread serial>" (made by
    thread_start, and again in a forked child: formatting it and os.getpid() cost ~1 us, once per
    new edge, and as_completed() over n futures makes about n)."""
    tid = getattr(tls, "tid", None)
    return tid if tid is not None else f"{os.getpid()}:{get_ident()}"


def _calibrate_abandoned() -> int:
    """The reference count that new_edges() sees for a lock that nothing but the thread's held
    list refers to: the list, the list of new sources proxies._before() passes, new_edges()'s
    loop variable and getrefcount's own. Measured with a replica of that call chain, so it holds
    on every Python version."""

    def inner(srcs: list) -> int:
        for src in srcs:
            return sys.getrefcount(src)
        return -1

    def outer(held: list) -> int:
        fresh = None
        for h in held:
            fresh = [h]
        h = None
        return inner(fresh or [])

    return outer([object()])


_ABANDONED_REFS = _calibrate_abandoned()


def new_edges(srcs: list, dst: Any, held: list, timed: bool, depth: int = 2) -> None:
    """Rare path: the first time each lock of ``srcs`` is held while blocking on ``dst``
    (proxies._before; the compiled core's count_known_edges, with ``depth`` 1: no _before frame
    between this and the acquiring frame). Captures the stacks of each edge (once per place:
    _edge_stacks)."""
    gone = None
    for src in srcs:
        if sys.getrefcount(src) <= _ABANDONED_REFS:
            gone = [src] if gone is None else [*gone, src]
    src = None
    if gone is not None:
        # The program dropped a lock while holding it (lockdep's "held lock freed"): nobody can
        # release it or wait for it, so it orders nothing. Let it go instead of drawing edges
        # from it for the rest of the thread's life.
        for lock in gone:
            for i in range(len(held) - 1, -1, -1):
                if held[i] is lock:
                    del held[i]
        srcs = [s for s in srcs if all(s is not lock for lock in gone)]
    if not srcs or getattr(tls, "busy", False) or not recording:
        return  # a finalizer or signal handler re-entered lockwatch mid-update: skip, never deadlock
    tls.busy = True
    try:
        _record_edges(srcs, dst, held, timed, sys._getframe(depth))
    except Exception as exc:  # lockwatch must never break the program it watches
        state.internal_errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        tls.busy = False


_internal_get = stacks._internal_cache.get  # stacks.is_internal's answers, by file name
# The compiled core's gates(held, dst, n) when it runs (proxies sets it): what _record_edges'
# expression for the gates of a new edge makes, kept while the same locks come first.
gates_of: Any = None
new_edge: Any = Edge  # lockwatch._core.new_edge with the compiled core (proxies sets it)
store_edges: Any = None  # lockwatch._core.store_edges with the compiled core (proxies sets it)


def _record_edges(srcs: list, dst: Any, held: list, timed: bool, frame: Any) -> None:
    """New edges from each of ``srcs`` into ``dst``, which the thread owning ``held`` now blocks
    on in ``frame``. What the edges share is looked up once: the program's frame, the thread, the
    declared orders; each edge still gets its own stacks, gates and names."""
    st = state
    epoch = st.epoch
    dst_site = dst._site
    if dst_site.epoch != epoch:
        return  # created in an earlier session (still held from then): not this session's graph
    # What this shares with stacks.first_outside, thread_name, thread_id and lock_name is
    # written out: as_completed() over n futures calls this about n times, with one new edge each,
    # and a Python call costs about as much as what each of them does.
    internal = _internal_get
    while frame is not None:
        r = internal(frame.f_code.co_filename)
        if r is None:
            r = stacks.is_internal(frame.f_code.co_filename)
        if not r:
            break
        frame = frame.f_back
    # _edge_stacks' key: the whole stack decides what it captures (its number: one hash of it)
    chain = chain_key(frame)
    where = st.chains.get(chain)
    if where is None:
        where = _chain_number(st, chain)
    cache = st.edge_stacks
    ident = get_ident()
    t = threading._active.get(ident)  # type: ignore[attr-defined]  # (thread_name)
    thread = t.name if t is not None else f"thread-{ident}"
    tid = getattr(tls, "tid", None)
    if tid is None:
        tid = f"{os.getpid()}:{ident}"
    dst_serial, ann = dst._serial, dst._ann
    dst_name = ann.get("name") if ann else None
    # Gate candidates: the outermost few other locks held (a gate is taken first); bounded, so
    # a thread holding hundreds of locks does not make every new edge cost O(n). The same for
    # every source that is not one of them. (`in`: identity, the instruments have no __eq__.)
    # The compiled core answers for each source (gates_of: lockwatch._core.gates, its last
    # answer kept).
    gates_c = gates_of
    if gates_c is None:
        outer = held[:MAX_GATES + 2]
        common_gates = tuple([(h._serial, h._site) for h in outer if h is not dst][:MAX_GATES])
    make = new_edge
    made = []
    for src in srcs:
        src_site = src._site
        if src_site.epoch != epoch:
            continue  # as above
        code, lasti = src._at_code, src._at_lasti
        holders = getattr(src, "_holders", None)
        if holders:
            # A Semaphore has several holders, and _at_code is the latest acquirer's (maybe another
            # thread's): take where this thread (its held list) acquired it.
            for hold in list(holders):
                if hold.held is held:
                    code, lasti = hold.code, hold.lasti
                    break
        found = cache.get((src_site, dst_site, id(code), lasti, where))  # _stacks_key, inline
        if found is None:
            found = _edge_stacks(st, src_site, dst_site, code, lasti, frame, where)
        if gates_c is not None:
            gates = gates_c(held, dst, MAX_GATES, src)
        else:
            gates = (common_gates if src not in outer  # identity: the instruments have no __eq__
                     else tuple([(h._serial, h._site) for h in outer if h is not src and h is not dst][:MAX_GATES]))
        ann = src._ann
        e = make(src._serial, dst_serial, src_site, dst_site, ann.get("name") if ann else None, dst_name,
                 thread, found[0], found[1], timed, context, gates, tid, held)
        made.append((src, e))
    if not made:
        return
    if store_edges is not None:  # the compiled core's (lockwatch._core.store_edges), None if it declines
        added = store_edges(st, dst, made, live, mutex, MAX_KEPT_EDGES)
        if added is not None:
            if st.ranks or dst._ann is not None:
                for src, e in added:
                    _check_declared_order(st, src, dst, e)
            return
    fresh: dict = {}
    added = []
    # lockwatch._core.store_edges does what this section does (for the compiled core's
    # instances): change both.
    with mutex:
        if dst._in is None: dst._in = fresh  # noqa: E701  (one line: nothing comes between)
        ins = dst._in
        ref = live.get(dst_serial)
        if ref is None:  # the compiled core's instances are found by serial from now on
            ref = live[dst_serial] = weakref_ref(dst)
        if ins is fresh:
            st.edge_owners[dst_serial] = ref
        site_edges = st.site_edges
        for src, e in made:
            serial = src._serial
            first = ins.setdefault(serial, e)
            if first is not e:  # another thread recorded it meanwhile (or src is twice in srcs)
                first.count += 1
                continue
            if src._out is None: src._out = set()  # noqa: E701  (one line: nothing comes between)
            src._out.add(dst_serial)
            if serial not in live:
                live[serial] = weakref_ref(src)
            st.edges_version += 1
            # Keyed by the Site objects, not their indexes: a lock made in an earlier session (its
            # Site from an earlier State) shared keys with this session's sites, and its edge
            # swallowed theirs (a site cycle went unreported).
            pair = (e.src_site, dst_site)
            entry = site_edges.get(pair)
            if entry is None:
                entry = site_edges.setdefault(pair, [e, 0])
            entry[1] += 1
            # A 2-cycle between instances is the commonest inversion: keep both edges even if the
            # locks die before the report (the rest of the instance graph dies with its locks).
            src_in = src._in
            rev = src_in.get(dst_serial) if src_in else None
            if rev is not None and len(st.kept_edges) < MAX_KEPT_EDGES:
                st.kept_edges[(serial, dst_serial)] = e
                st.kept_edges[(dst_serial, serial)] = rev
            added.append((src, e))
    if st.ranks or dst._ann is not None:  # else no declared order nor order key to check
        for src, e in added:
            _check_declared_order(st, src, dst, e)


MAX_EDGE_STACKS = 20_000


def _edge_stacks(st: State, src_site: Site, dst_site: Site, code: Any, lasti: int,
                 frame: Any, where: int) -> tuple[list[str], list[str]]:
    """The stacks of a new edge: where ``src`` was taken (``code``/``lasti``) and where the
    thread now blocks (``frame``, outside lockwatch). Each edge gets the stacks of its own
    acquisitions: `pay(a, b)` and `refund(b, a)` taking two account locks in opposite orders
    are two edges of one site pair, and the report must show `refund` for the second.

    Capturing (~10 us: formatting every frame) is done once per stack, keyed by the site pair,
    the held lock's acquiring instruction and every instruction of the stack it blocks in
    (stacks.chain_key: what the two captures read): as_completed() over n futures makes ~8n edges
    of one site pair from one place, and captures once, not 8n times (benchmarks/many_futures.py),
    while one line reached from two callers is two stacks (a key of the innermost frames only
    showed the first caller's stack for the second's edge). _record_edges looks the cache up
    itself (_stacks_key), with ``where``, the number of ``frame``'s chain_key, and calls this on
    a miss."""
    key = _stacks_key(src_site, dst_site, code, lasti, where)
    cache = st.edge_stacks
    hit = cache.get(key)
    if hit is not None:
        return hit[0], hit[1]
    found = (stacks.capture_taken_at(code, lasti, frame), stacks.capture(frame))
    if len(cache) >= MAX_EDGE_STACKS:
        cache.clear()  # code compiled again and again (exec): keep memory bounded
    # The entry keeps the code objects of its key alive, so their ids in the key stay theirs.
    cache[key] = (*found, code, stacks.chain_codes(frame))
    return found


chain_key = stacks.chain_key
MAX_CHAINS = 4 * MAX_EDGE_STACKS


def _chain_number(st: State, chain: Any) -> int:
    """The number of a stack's key, given the first time it is seen. Its code objects' ids stay
    theirs while an edge_stacks entry keyed by the number keeps them (chain_codes); a key whose
    code died can be matched again by new code reusing the ids only where no entry holds it."""
    chains = st.chains
    if len(chains) >= MAX_CHAINS:
        chains.clear()  # numbers are not reused: edge_stacks' keys stay right
    return chains.setdefault(chain, next(st.chain_numbers))


def _stacks_key(src_site: Site, dst_site: Site, code: Any, lasti: int, where: int) -> tuple:
    # Code objects by id: hashing a code object hashes its constants each time (~1 us for
    # as_completed's), and a new edge looks the cache up once per held lock.
    return (src_site, dst_site, id(code), lasti, where)


MAX_VIOLATIONS = 1_000


def _check_declared_order(st: State, src: Any, dst: Any, e: Edge) -> None:
    """A lock taken against a declared order (lockwatch.order) or against the order key of its
    site (lockwatch.order_key) is reported at this first acquisition, before the reverse order
    has ever been seen. Called on the new-edge path only (without the mutex: it compares the
    program's order keys, which may run the program's __lt__)."""
    ra, rb = st.ranks.get(src._site.index), st.ranks.get(dst._site.index)
    kind = None
    if ra is not None and rb is not None and ra[0] == rb[0] and ra[1] > rb[1]:
        kind, declared = "declared-order", list(ra[2])
    elif src._site is dst._site:
        ka = (src._ann or {}).get("key")
        kb = (dst._ann or {}).get("key")
        if ka is not None and kb is not None:
            try:
                wrong = not ka < kb
            except TypeError:
                wrong = False
            if wrong:
                kind, declared = "order-key", [f"key {ka!r}", f"key {kb!r}"]
    if kind is None:
        return
    key = (kind, src._site.index, dst._site.index)
    if len(st.violations) >= MAX_VIOLATIONS or st.violation_keys.setdefault(key, e) is not e:
        return  # reported already (by this thread or, meanwhile, another)
    st.violations.append({
        "kind": kind, "declared": declared,
        "held": {"name": lock_name(src) or src._site.display_name(), "kind": src._site.kind,
                 "site": src._site.location},
        "acquired": {"name": lock_name(dst) or dst._site.display_name(), "kind": dst._site.kind,
                     "site": dst._site.location},
        "thread": e.thread, "held_stack": list(e.held_stack),
        "acquire_stack": list(e.acquire_stack), "context": e.context,
    })


def declare_order(sites: list[Site], names: list[str]) -> None:
    """lockwatch.order(a, b, c): locks of a's site are taken before b's, before c's."""
    with mutex:
        st = state
        st.orders += 1
        for rank, site in enumerate(sites):
            st.ranks[site.index] = (st.orders, rank, tuple(names))


def after_fork_in_child() -> None:
    """The child of fork() has one thread. CPython drops the other threads' thread-local state
    itself; the forking thread keeps its held list (those locks stay locked in the child, as
    CPython's do). Our own mutex may have been held by a thread that no longer exists: renew it."""
    global mutex
    mutex = _thread.RLock()  # re-entrant, like the one it replaces
    ident = get_ident()
    serial = getattr(tls, "serial", None)
    if serial is not None:
        tls.tid = f"{os.getpid()}:{serial}"  # thread_id(): the child's pid
    mine = threads.get(ident)
    threads.clear()
    held = getattr(tls, "held", None)
    mine_pending = pending.get(id(held)) if held is not None else None
    pending.clear()
    if mine_pending:
        pending[id(held)] = mine_pending
    waiting.clear()
    victims.clear()
    if mine is not None:
        threads[ident] = mine
    # The child reports what it does itself (its parent reports the rest).
    forget_activity()


def forget_activity() -> None:
    """Drop the recorded edges and counters, keeping the sites, the instances and what each
    thread holds: for a forked child (its parent reports what came before), and for the locks
    that lockwatch's own imports create and take while it switches on."""
    st = state
    with mutex:
        st.site_edges.clear()
        st.kept_edges.clear()
        st.edge_stacks.clear()
        st.chains.clear()
        st.violations.clear()
        st.violation_keys.clear()
        st.internal_errors.clear()
        st.edges_version += 1
        st.edge_owners = {}
        st.started = time.time()
        for site in list(st.sites.values()):
            site.acquisitions = site.contended = site.failed = 0
            site.hold_total = site.hold_max = site.wait_total = site.wait_max = 0
            site.hold_hist.clear()  # in place: live locks point at these dicts
            site.hold_fast = None  # the compiled core makes a new one at the next hold
            site.wait_hist.clear()
            site.made = itertools.count()
        for o in live_instances():  # the instances' own counters and edges (registered when made)
            o._n = o._ncont = o._nfail = 0
            o._hold_tot = o._hold_max = o._wait_tot = o._wait_max = 0
            o._in = o._out = None
            next(o._site.made)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=after_fork_in_child)
