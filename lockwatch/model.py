"""The plain data of a run and the JSON report contract (format "lockwatch-report"), both ways."""
from __future__ import annotations

import json
import json.encoder
import re
from collections.abc import Iterator, Sequence
from dataclasses import field
from itertools import islice
from typing import Any, Callable, ClassVar, NoReturn, Optional, TypeVar

from . import histogram
from .errors import UserError
from .jsonfile import read_json
from .records import record

FORMAT = "lockwatch-report"
VERSION = 2  # 2: the whole graph's edges as rows referring to tables (stacks stored once); 1 still read

# Triage labels, most severe first. A cycle can meet several conditions; its label is the one that
# bounds the harm most (guarded: cannot deadlock; timed: stalls, cannot hang; ...).
SEVERITY = ("deadlock", "single-thread", "starvation", "semaphore", "timed", "guarded")
FAILING = {"deadlock", "single-thread", "starvation", "semaphore"}


class ReportError(UserError):
    """A file that is not a lockwatch report this version can read (one line for the user)."""


# -- reading untrusted JSON ----------------------------------------------------------------------

T = TypeVar("T")
# Every number in a report is a count, a serial, an identifier or a duration (or a time) in
# seconds: never negative, never beyond these (NaN, Infinity and 10**400 are damage, not data).
MAX_INT = 2**63 - 1
MAX_SECONDS = 1e15
MAX_DEPTH = 32  # of "meta", the one free-form object
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list", dict: "an object"}


class _Reader:
    """Checked access to one JSON object of a report: a wrong type or a missing key is a
    ReportError naming the file and the field (``where``, e.g. ``deadlocks[0].threads[1]``)."""

    def __init__(self, data: Any, where: str, source: str) -> None:
        self.source = source
        self.where = where
        if not isinstance(data, dict):
            self.fail(f"{where} is not an object")
        self.data: dict[str, Any] = data

    def fail(self, problem: str) -> NoReturn:
        raise ReportError(f"{self.source} is a damaged lockwatch report ({problem})")

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.data

    def _check(self, key: str, value: Any, kind: type) -> Any:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
              else isinstance(value, int) and not isinstance(value, bool) if kind is int
              else isinstance(value, kind))
        if not ok:
            self.fail(f"{self.path(key)} is not {_TYPE_NAMES[kind]}")
        if kind is int and not 0 <= value <= MAX_INT:
            self.fail(f"{self.path(key)} is out of range (0 to {MAX_INT})")
        if kind is float and not 0 <= value <= MAX_SECONDS:  # also NaN
            self.fail(f"{self.path(key)} is out of range (0 to {MAX_SECONDS:g})")
        return value

    def req(self, key: str, kind: type) -> Any:
        if key not in self.data:
            self.fail(f"{self.path(key)} is missing")
        return self._check(key, self.data[key], kind)

    def opt(self, key: str, kind: type, default: Any = None) -> Any:
        value = self.data.get(key)
        return default if value is None else self._check(key, value, kind)

    def strings(self, key: str, required: bool = False) -> list[str]:
        items = self.req(key, list) if required else self.opt(key, list, [])
        for i, item in enumerate(items):
            if not isinstance(item, str):
                self.fail(f"{self.path(key)}[{i}] is not a string")
        return list(items)

    def items(self, key: str, read: Callable[[Any, str, str], T]) -> list[T]:
        return [read(item, f"{self.path(key)}[{i}]", self.source)
                for i, item in enumerate(self.opt(key, list, []))]

    def record(self, key: str, read: Callable[[Any, str, str], T]) -> Optional[T]:
        value = self.data.get(key)
        return None if value is None else read(value, self.path(key), self.source)

    def keys(self, names: Sequence[str]) -> tuple[str, ...]:
        """The keys of ``names`` the object has, in its order."""
        return tuple(k for k in self.data if k in names)


def _written(values: list[tuple[str, Any]], keys: Optional[Sequence[str]]) -> dict[str, Any]:
    """The (key, value) pairs of a record as JSON; for a record read from a report, only the keys
    it had there and in that order (a report from elsewhere is written back as it was read)."""
    if keys is None:
        return dict(values)
    by_key = dict(values)
    return {k: by_key[k] for k in keys}


_COMPACT = (",", ":")
_COMPACT_ENCODER = json.JSONEncoder(separators=_COMPACT)  # json.dumps(x, separators=_COMPACT), made once
_JSON_STRING: Callable[[str], str] = json.encoder.encode_basestring_ascii  # as json.dumps writes a str
_JSON_BOOL = {False: "false", True: "true"}


# -- what the recorder saw -----------------------------------------------------------------------

@record
class Timing:
    """A duration distribution: exact count, total and max; percentiles from the histogram."""

    count: int = 0
    total_ns: int = 0
    max_ns: int = 0
    buckets: dict[int, int] = field(default_factory=dict)  # bucket index -> count, the empty ones left out
    scale: str = histogram.LOG_LINEAR  # what a bucket index means (histogram.SCALES)

    @property
    def mean_ns(self) -> float:
        return self.total_ns / self.count if self.count else 0.0

    def percentile_ns(self, q: float) -> int:
        return histogram.percentile(self.buckets, q, self.max_ns, self.total_ns, self.scale)

    def merge(self, other: Timing) -> None:
        self.count += other.count
        self.total_ns += other.total_ns
        self.max_ns = max(self.max_ns, other.max_ns)
        mine, theirs = self.buckets, other.buckets
        if not theirs:  # an empty histogram is the same in every scale
            pass
        elif not mine:
            self.scale = other.scale
        elif self.scale != other.scale:  # one is from an older report: both in its coarser scale
            mine = mine if self.scale == histogram.SQRT2 else histogram.to_sqrt2(mine)
            theirs = theirs if other.scale == histogram.SQRT2 else histogram.to_sqrt2(theirs)
            self.scale = histogram.SQRT2
        self.buckets = histogram.merged(mine, theirs)

    @property
    def idle(self) -> bool:
        """Nothing counted: written as {"count": 0} (the other fields absent mean 0)."""
        return not (self.count or self.total_ns or self.max_ns or self.buckets)

    def to_dict(self) -> dict[str, Any]:
        # Durations in seconds; the histogram as sparse [bucket, count] pairs so reports can merge,
        # and the scale that says what a bucket is (reports without it: histogram.SQRT2). An idle
        # timing is {"count": 0}: a report lists every lock in the lock-order graph, most of them
        # never contended, and the zeros were 123 bytes a timing (26 MB of benchmarks/scale.py's
        # 100,000-site report).
        if self.idle:
            return {"count": 0}
        s = 1e-9
        return {
            "count": self.count, "total": self.total_ns * s, "mean": self.mean_ns * s, "max": self.max_ns * s,
            "p50": self.percentile_ns(0.5) * s, "p90": self.percentile_ns(0.9) * s,
            "p99": self.percentile_ns(0.99) * s, "histogram": histogram.to_sparse(self.buckets),
            "histogram_scale": self.scale,
        }

    def encoded(self) -> str:
        """``to_dict`` as compact JSON."""
        return '{"count":0}' if self.idle else _COMPACT_ENCODER.encode(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, where: str, source: str) -> Timing:
        r = _Reader(data, where, source)
        # Absent in the reports of lockwatch before the log-linear scale: their buckets are sqrt(2)
        # wide. Absent with the histogram in an idle timing ({"count": 0}): today's scale.
        scale = r.opt("histogram_scale", str, histogram.SQRT2 if r.has("histogram") else histogram.LOG_LINEAR)
        if scale not in histogram.SCALES:
            r.fail(f"{r.path('histogram_scale')} is not one of {', '.join(histogram.SCALES)}")
        sparse = r.opt("histogram", list, [])
        for i, pair in enumerate(sparse):
            if not (isinstance(pair, list) and len(pair) == 2
                    and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_INT for x in pair)):
                r.fail(f"{r.path('histogram')}[{i}] is not a [bucket, count] pair")
            if pair[0] >= histogram.nbuckets(scale):
                r.fail(f"{r.path('histogram')} has a bucket out of range: the {scale} scale's last is "
                       f"{histogram.nbuckets(scale) - 1}")
        return cls(r.opt("count", int, 0), round(r.opt("total", float, 0) * 1e9),
                   round(r.opt("max", float, 0) * 1e9), histogram.from_sparse(sparse), scale)


@record
class LockStats:
    """One creation site (a lock class, in lockdep's terms) and the totals of all its instances."""

    key: str  # "<file>:<line>:<kind>", unique within a report
    name: str
    kind: str
    filename: str
    line: int
    function: str
    named: bool = False  # name given with lockwatch.name(), not derived from the source line
    signal: bool = False  # a semaphore released by other threads than the acquirer: not a lock
    value: int = 0  # for semaphores: the largest initial value (permits)
    stdlib: bool = False  # created by the standard library
    stable_file: str = ""  # the file, machine-independent (stacks.stable_path), for fingerprints
    instances: int = 0
    acquisitions: int = 0
    contended: int = 0
    failed: int = 0
    hold: Timing = field(default_factory=Timing)
    wait: Timing = field(default_factory=Timing)

    @property
    def site(self) -> str:
        return f"{self.filename}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        return {**self._counts(), "hold": self.hold.to_dict(), "wait": self.wait.to_dict()}

    def _counts(self) -> dict[str, Any]:
        """``to_dict`` but for the timings (its last two keys)."""
        return {
            "name": self.name, "kind": self.kind, "site": self.site, "key": self.key, "function": self.function,
            "named": self.named, "signal": self.signal, "value": self.value, "stdlib": self.stdlib,
            "stable_file": self.stable_file,
            "instances": self.instances, "acquisitions": self.acquisitions,
            "contended": self.contended, "failed": self.failed,
        }

    def encoded(self) -> str:
        """``to_dict`` as compact JSON, made faster (a report can list 100,000 locks): the usual
        types written into a template as json.dumps writes them, and an idle timing's text made
        once (``Timing.encoded``)."""
        timings = f'"hold":{self.hold.encoded()},"wait":{self.wait.encoded()}}}'
        if not (type(self.name) is type(self.kind) is type(self.filename) is type(self.key)
                is type(self.function) is type(self.stable_file) is str
                and type(self.line) is type(self.value) is type(self.instances) is type(self.acquisitions)
                is type(self.contended) is type(self.failed) is int
                and type(self.named) is type(self.signal) is type(self.stdlib) is bool):
            return f"{_COMPACT_ENCODER.encode(self._counts())[:-1]},{timings}"
        text = _JSON_STRING
        return (f'{{"name":{text(self.name)},"kind":{text(self.kind)},"site":{text(self.site)},'
                f'"key":{text(self.key)},"function":{text(self.function)},'
                f'"named":{_JSON_BOOL[self.named]},"signal":{_JSON_BOOL[self.signal]},"value":{self.value},'
                f'"stdlib":{_JSON_BOOL[self.stdlib]},"stable_file":{text(self.stable_file)},'
                f'"instances":{self.instances},"acquisitions":{self.acquisitions},'
                f'"contended":{self.contended},"failed":{self.failed},{timings}')

    @classmethod
    def from_dict(cls, data: Any, where: str, source: str) -> LockStats:
        r = _Reader(data, where, source)
        site, kind = r.req("site", str), r.req("kind", str)
        filename, _, line = site.rpartition(":")
        if not _SITE_LINE.match(line):
            r.fail(f"{r.path('site')} is not <file>:<line>")
        return cls(
            key=r.opt("key", str) or f"{site}:{kind}", name=r.req("name", str), kind=kind,
            filename=filename, line=int(line), function=r.opt("function", str, ""),
            named=bool(r.opt("named", bool, False)), signal=bool(r.opt("signal", bool, False)),
            value=r.opt("value", int, 0), stdlib=bool(r.opt("stdlib", bool, False)),
            stable_file=r.opt("stable_file", str, ""), instances=r.opt("instances", int, 0),
            acquisitions=r.opt("acquisitions", int, 0), contended=r.opt("contended", int, 0),
            failed=r.opt("failed", int, 0),
            hold=r.record("hold", Timing.from_dict) or Timing(),
            wait=r.record("wait", Timing.from_dict) or Timing())


@record
class EdgeRecord:
    """Lock-order edge src -> dst: ``thread`` held src (taken at ``held_stack``) and blocked to
    take dst (at ``acquire_stack``). ``src``/``dst`` are LockStats keys; the instance serials
    are set for instance edges."""

    src: str
    dst: str
    thread: str
    held_stack: list[str]
    acquire_stack: list[str]
    count: int = 1
    timed: bool = False
    context: Optional[str] = None  # e.g. the pytest node id during which it was first seen
    src_instance: Optional[int] = None
    dst_instance: Optional[int] = None
    src_name: Optional[str] = None  # per-instance names given with lockwatch.name()
    dst_name: Optional[str] = None
    # Other locks held every time the edge was taken: their keys, and (parallel) instance serials.
    gates: list[str] = field(default_factory=list)
    gate_instances: list[int] = field(default_factory=list)
    thread_id: str = ""  # "<pid>:<ident>" of the first thread that took the edge
    multi: bool = False  # taken by more than one thread
    # An edge through a wait (dst or src is a Thread, Event, Condition, Barrier, Queue or Future):
    # ``wait`` (src held while waiting for dst: join, wait, get, put, task-join, result, ...) or
    # ``wake`` (src was woken while holding dst: set, notify, put, get, task-done, result, arrive;
    # "end": the thread src took dst before it ended).
    wait: Optional[str] = None
    wake: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "thread": self.thread, "held_stack": list(self.held_stack),
                "acquire_stack": list(self.acquire_stack), "count": self.count, "timed": self.timed,
                "context": self.context, "src_instance": self.src_instance, "dst_instance": self.dst_instance,
                "src_name": self.src_name, "dst_name": self.dst_name, "gates": list(self.gates),
                "gate_instances": list(self.gate_instances), "thread_id": self.thread_id, "multi": self.multi,
                **({"wait": self.wait} if self.wait is not None else {}),
                **({"wake": self.wake} if self.wake is not None else {})}

    @classmethod
    def from_dict(cls, data: Any, where: str, source: str) -> EdgeRecord:
        r = _Reader(data, where, source)
        gate_instances = r.opt("gate_instances", list, [])
        for i, g in enumerate(gate_instances):
            if not isinstance(g, int) or isinstance(g, bool):
                r.fail(f"{r.path('gate_instances')}[{i}] is not an integer")
        return cls(
            src=r.req("src", str), dst=r.req("dst", str), thread=r.req("thread", str),
            held_stack=r.strings("held_stack", required=True),
            acquire_stack=r.strings("acquire_stack", required=True),
            count=r.opt("count", int, 1), timed=r.opt("timed", bool, False), context=r.opt("context", str),
            src_instance=r.opt("src_instance", int), dst_instance=r.opt("dst_instance", int),
            src_name=r.opt("src_name", str), dst_name=r.opt("dst_name", str),
            gates=r.strings("gates"), gate_instances=list(gate_instances),
            thread_id=r.opt("thread_id", str, ""), multi=r.opt("multi", bool, False),
            wait=r.opt("wait", str), wake=r.opt("wake", str))


# -- what the watchdog and the declared orders saw -----------------------------------------------

@record
class LockInfo:
    """A lock as a real deadlock, an alert or a violation names it."""

    name: Optional[str] = None
    kind: Optional[str] = None
    site: Optional[str] = None  # "<file>:<line>" where it was created
    keys: Optional[tuple[str, ...]] = field(default=None, compare=False, repr=False)

    FIELDS: ClassVar[tuple[str, ...]] = ("name", "kind", "site")

    def to_dict(self) -> dict[str, Any]:
        return _written([(k, getattr(self, k)) for k in self.FIELDS], self.keys)

    @classmethod
    def from_dict(cls, data: Any, where: str, source: str) -> LockInfo:
        r = _Reader(data, where, source)
        return cls(**{k: r.opt(k, str) for k in cls.FIELDS}, keys=r.keys(cls.FIELDS))


@record
class HeldLock(LockInfo):
    """A lock a deadlocked thread holds, and where its holder took it (a frame)."""

    taken_at: Optional[str] = None

    FIELDS: ClassVar[tuple[str, ...]] = ("name", "kind", "site", "taken_at")

    @classmethod
    def from_dict(cls, data: Any, where: str, source: str) -> HeldLock:
        r = _Reader(data, where, source)
        return cls(**{k: r.opt(k, str) for k in cls.FIELDS}, keys=r.keys(cls.FIELDS))


@record
class DeadlockThread:
    """One thread of a real deadlock: only ``name`` and ``stack`` are promised by the contract.
    ``waiting_for`` is a lock, or (``wait`` says how it waits) a Thread, Event, Condition,
    Barrier, Queue or Future; ``wakers`` are the threads of the deadlock that could end the wait."""

    name: str
    stack: list[str]
    ident: Optional[int] = None
    waiting_for: Optional[LockInfo] = None
    waiting_s: Optional[float] = None
    blocked_by: Optional[str] = None  # the thread holding what this one waits for
    holds: list[HeldLock] = field(default_factory=list)
    wait: Optional[str] = None  # not a lock: join, wait, get, put, task-join, result, exception, ...
    wakers: list[str] = field(default_factory=list)  # threads (of the deadlock) that could end the wait
    keys: Optional[tuple[str, ...]] = field(default=None, compare=False, repr=False)

    FIELDS: ClassVar[tuple[str, ...]] = ("name", "ident", "waiting_for", "waiting_s", "blocked_by", "holds",
                                         "wait", "wakers", "stack")

    def to_dict(self) -> dict[str, Any]:
        pairs: list[tuple[str, Any]] = [
            ("name", self.name), ("ident", self.ident),
            ("waiting_for", self.waiting_for.to_dict() if self.waiting_for else None),
            ("waiting_s", self.waiting_s), ("blocked_by", self.blocked_by),
            ("holds", [h.to_dict() for h in self.holds])]
        if self.wait is not None or (self.keys is not None and "wait" in self.keys):
            pairs += [("wait", self.wait), ("wakers", list(self.wakers))]
        pairs.append(("stack", list(self.stack)))
        return _written(pairs, self.keys)

    @classmethod
    def from_dict(cls, data: Any, where: str, source: str) -> DeadlockThread:
        r = _Reader(data, where, source)
        return cls(r.req("name", str), r.strings("stack", required=True), r.opt("ident", int),
                   r.record("waiting_for", LockInfo.from_dict), r.opt("waiting_s", float),
                   r.opt("blocked_by", str), r.items("holds", HeldLock.from_dict),
                   r.opt("wait", str), r.strings("wakers"), keys=r.keys(cls.FIELDS))


@record
class PoolStarvation:
    """A thread pool every worker of which waits on work queued behind it (a real deadlock)."""

    name: str
    site: Optional[str]
    workers: int
    max_workers: int
    queued: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "site": self.site, "workers": self.workers,
                "max_workers": self.max_workers, "queued": self.queued}

    @classmethod
    def from_dict(cls, data: Any, where: str, source: str) -> PoolStarvation:
        r = _Reader(data, where, source)
        return cls(r.req("name", str), r.opt("site", str), r.opt("workers", int, 0),
                   r.opt("max_workers", int, 0), r.opt("queued", int, 0))


@record
class Deadlock:
    """A real deadlock the watchdog saw: a cycle of threads, each waiting for a lock the next holds."""

    threads: list[DeadlockThread]
    timeout_s: Optional[float] = None
    policy: Optional[str] = None  # "exit", "raise" or "report"
    victim: Optional[str] = None  # the thread that got the DeadlockError ("raise")
    detected_at: Optional[float] = None  # time.time()
    starvation: Optional[PoolStarvation] = None  # the thread pool starved, if that is the deadlock
    keys: Optional[tuple[str, ...]] = field(default=None, compare=False, repr=False)

    FIELDS: ClassVar[tuple[str, ...]] = ("threads", "timeout_s", "policy", "victim", "detected_at", "starvation")

    @property
    def waits_for_itself(self) -> bool:
        """One thread waiting for a lock it holds itself."""
        return (len(self.threads) == 1 and self.threads[0].blocked_by == self.threads[0].name
                and self.threads[0].wait is None)

    def to_dict(self) -> dict[str, Any]:
        pairs: list[tuple[str, Any]] = [
            ("threads", [t.to_dict() for t in self.threads]), ("timeout_s", self.timeout_s),
            ("policy", self.policy), ("victim", self.victim), ("detected_at", self.detected_at)]
        if self.starvation is not None or (self.keys is not None and "starvation" in self.keys):
            pairs.append(("starvation", self.starvation.to_dict() if self.starvation else None))
        return _written(pairs, self.keys)

    @property
    def through_waits(self) -> bool:
        """Some thread waits for something that is not a lock (a join, an Event, a Queue, ...)."""
        return any(t.wait is not None for t in self.threads)

    @classmethod
    def from_dict(cls, data: Any, where: str = "deadlock", source: str = "report") -> Deadlock:
        r = _Reader(data, where, source)
        return cls(r.items("threads", DeadlockThread.from_dict), r.opt("timeout_s", float),
                   r.opt("policy", str), r.opt("victim", str), r.opt("detected_at", float),
                   r.record("starvation", PoolStarvation.from_dict), keys=r.keys(cls.FIELDS))


@record
class Alert:
    """A lock held (``kind`` "long-hold") or waited for ("long-wait") longer than its threshold."""

    kind: str
    lock: LockInfo
    seconds: float
    thread: str
    stack: list[str]
    taken_at: Optional[str] = None  # long-hold: where the lock was taken
    holder: Optional[str] = None  # long-wait: the thread holding the lock
    holder_stack: list[str] = field(default_factory=list)
    keys: Optional[tuple[str, ...]] = field(default=None, compare=False, repr=False)

    FIELDS: ClassVar[tuple[str, ...]] = ("kind", "lock", "seconds", "thread", "taken_at", "stack", "holder",
                                         "holder_stack")

    def to_dict(self) -> dict[str, Any]:
        keys = self.keys
        if keys is None:
            keys = (("kind", "lock", "seconds", "thread", "taken_at", "stack") if self.kind == "long-hold"
                    else ("kind", "lock", "seconds", "thread", "stack", "holder", "holder_stack"))
        return _written([("kind", self.kind), ("lock", self.lock.to_dict()), ("seconds", self.seconds),
                         ("thread", self.thread), ("taken_at", self.taken_at), ("stack", list(self.stack)),
                         ("holder", self.holder), ("holder_stack", list(self.holder_stack))], keys)

    @classmethod
    def from_dict(cls, data: Any, where: str = "alert", source: str = "report") -> Alert:
        r = _Reader(data, where, source)
        return cls(r.req("kind", str), r.record("lock", LockInfo.from_dict) or LockInfo(),
                   r.req("seconds", float), r.req("thread", str), r.strings("stack"),
                   r.opt("taken_at", str), r.opt("holder", str), r.strings("holder_stack"),
                   keys=r.keys(cls.FIELDS))


@record
class Violation:
    """Two locks taken against a declared order (lockwatch.order) or their site's order key."""

    kind: str  # "declared-order" or "order-key"
    declared: list[str]
    held: LockInfo
    acquired: LockInfo
    thread: str
    held_stack: list[str] = field(default_factory=list)
    acquire_stack: list[str] = field(default_factory=list)
    context: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "declared": list(self.declared), "held": self.held.to_dict(),
                "acquired": self.acquired.to_dict(), "thread": self.thread,
                "held_stack": list(self.held_stack), "acquire_stack": list(self.acquire_stack),
                "context": self.context}

    @classmethod
    def from_dict(cls, data: Any, where: str = "violation", source: str = "report") -> Violation:
        r = _Reader(data, where, source)
        held = r.record("held", LockInfo.from_dict)
        acquired = r.record("acquired", LockInfo.from_dict)
        if held is None or acquired is None:
            r.fail(f"{r.path('held' if held is None else 'acquired')} is missing")
        return cls(r.req("kind", str), r.strings("declared", required=True), held, acquired,
                   r.req("thread", str), r.strings("held_stack"), r.strings("acquire_stack"),
                   r.opt("context", str))


@record
class BaselineEntry:
    """A cycle of the CI baseline (see baseline.py), as a report lists those no longer seen."""

    fingerprint: str
    locks: list[str] = field(default_factory=list)
    scope: Optional[str] = None
    triage: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "scope": self.scope, "triage": self.triage,
                "locks": list(self.locks)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "baseline", source: str = "baseline") -> BaselineEntry:
        r = _Reader(data, where, source)
        return cls(r.req("fingerprint", str), r.strings("locks"), r.opt("scope", str), r.opt("triage", str))


@record
class PoolWaitRecord:
    """Tasks of a thread pool (created at ``site``) waited on futures of their own pool: up to
    ``depth`` of its ``max_workers`` workers at once, ``count`` times (potential starvation)."""

    site: str
    name: str
    max_workers: int
    depth: int
    thread: str
    stack: list[str]  # where the first such wait was
    submit_stack: list[str] = field(default_factory=list)  # where its future was submitted
    count: int = 1
    timed: bool = False  # every such wait had a timeout
    function: str = ""
    stable_file: str = ""
    context: Optional[str] = None
    stdlib: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"site": self.site, "name": self.name, "function": self.function, "stable_file": self.stable_file,
                "max_workers": self.max_workers, "depth": self.depth, "count": self.count,
                "thread": self.thread, "stack": list(self.stack), "submit_stack": list(self.submit_stack),
                "timed": self.timed, "context": self.context, "stdlib": self.stdlib}

    @classmethod
    def from_dict(cls, data: Any, where: str, source: str) -> PoolWaitRecord:
        r = _Reader(data, where, source)
        site = r.req("site", str)
        if not _SITE_LINE.match(site.rpartition(":")[2]):
            r.fail(f"{r.path('site')} is not <file>:<line>")
        return cls(site=site, name=r.req("name", str), max_workers=r.opt("max_workers", int, 0),
                   depth=r.opt("depth", int, 0), thread=r.req("thread", str), stack=r.strings("stack"),
                   submit_stack=r.strings("submit_stack"), count=r.opt("count", int, 1),
                   timed=r.opt("timed", bool, False), function=r.opt("function", str, ""),
                   stable_file=r.opt("stable_file", str, ""), context=r.opt("context", str),
                   stdlib=r.opt("stdlib", bool, False))


@record
class Snapshot:
    """What one or more processes recorded: the locks (by creation site), the lock-order edges
    between sites and between instances, and what went with them."""

    locks: list[LockStats] = field(default_factory=list)
    site_edges: list[EdgeRecord] = field(default_factory=list)
    instance_edges: list[EdgeRecord] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    internal_errors: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)  # declared-order violations
    pool_waits: list[PoolWaitRecord] = field(default_factory=list)  # tasks waiting on their own pool
    # file -> line -> its text, as the recording process read it (sources.embed): what reports
    # show of the source, so that nobody reads a file because a report names it
    source_lines: dict[str, dict[int, str]] = field(default_factory=dict)

    def lock(self, key: str) -> Optional[LockStats]:
        for s in self.locks:
            if s.key == key:
                return s
        return None


def merge(snapshots: Sequence[Snapshot]) -> Snapshot:
    """One snapshot from several (processes, test workers, runs). Locks are matched by creation
    site; site edges are united (the first record of an edge is kept, counts add up). Instance
    serials are per process, so each snapshot's instance edges stay among themselves: they are
    renumbered apart, and inversions across processes are found at site scope."""
    out = Snapshot(meta={"merged": len(snapshots), "sources": [s.meta for s in snapshots]})
    locks: dict[str, LockStats] = {}
    edges: dict[tuple[str, str], EdgeRecord] = {}
    offset = 0
    for snap in snapshots:
        for st in snap.locks:
            have = locks.get(st.key)
            if have is None:
                locks[st.key] = LockStats(**{**st.__dict__, "hold": Timing(**st.hold.__dict__),
                                             "wait": Timing(**st.wait.__dict__)})
                continue
            have.instances += st.instances
            have.acquisitions += st.acquisitions
            have.contended += st.contended
            have.failed += st.failed
            have.signal = have.signal or st.signal
            have.named = have.named or st.named
            have.hold.merge(st.hold)
            have.wait.merge(st.wait)
        top = max([i for e in snap.instance_edges for i in (e.src_instance or 0, e.dst_instance or 0)]
                  + [g for e in snap.site_edges for g in e.gate_instances] + [0])
        for e in snap.site_edges:
            have_e = edges.get((e.src, e.dst))
            if have_e is None:
                moved = EdgeRecord(**e.__dict__)
                moved.gate_instances = [g + offset for g in e.gate_instances]
                edges[(e.src, e.dst)] = moved
            else:
                have_e.count += e.count
                have_e.timed = have_e.timed and e.timed
                have_e.multi = have_e.multi or e.multi or have_e.thread_id != e.thread_id
                # a gate counts only if held every time: keep the ones both records have
                theirs = {(k, g + offset) for k, g in zip(e.gates, e.gate_instances)}
                kept = [(k, g) for k, g in zip(have_e.gates, have_e.gate_instances) if (k, g) in theirs]
                have_e.gates = [k for k, _g in kept]
                have_e.gate_instances = [g for _k, g in kept]
        for e in snap.instance_edges:
            moved = EdgeRecord(**e.__dict__)
            if e.src_instance is not None and e.dst_instance is not None:
                moved.src_instance = e.src_instance + offset
                moved.dst_instance = e.dst_instance + offset
            moved.gate_instances = [g + offset for g in e.gate_instances]
            out.instance_edges.append(moved)
        offset += top + 1
        out.internal_errors.extend(snap.internal_errors)
        out.violations.extend(snap.violations)
        for pw in snap.pool_waits:
            same = next((p for p in out.pool_waits if p.site == pw.site), None)
            if same is None:
                out.pool_waits.append(PoolWaitRecord(**{**pw.__dict__, "stack": list(pw.stack),
                                                        "submit_stack": list(pw.submit_stack)}))
            else:
                same.depth = max(same.depth, pw.depth)
                same.max_workers = max(same.max_workers, pw.max_workers)
                same.count += pw.count
                same.timed = same.timed and pw.timed
        for filename, lines in snap.source_lines.items():
            mine = out.source_lines.setdefault(filename, {})
            for line, text in lines.items():
                mine.setdefault(line, text)
    out.locks = list(locks.values())
    out.site_edges = list(edges.values())
    return out


# -- the findings ---------------------------------------------------------------------------------

CONFIRMATION_STATUSES = ("confirmed", "not-reproduced")
MAX_OUTPUT = 200  # lines of a confirmed run's output kept in a report (its end)


@record
class Confirmation:
    """What `--confirm` found for a potential deadlock: the run (of ``runs``) in which the steered
    schedule really deadlocked on this cycle, with that deadlock, or the reason it did not."""

    status: str  # "confirmed" | "not-reproduced"
    runs: int  # runs made (0: none, the reason says why)
    of: Optional[int] = None  # the runs allowed (--confirm-runs)
    run: Optional[int] = None  # the run that deadlocked (confirmed)
    reason: Optional[str] = None  # why it was not reproduced; what a confirmation means (pytest)
    schedule: list[str] = field(default_factory=list)  # the steered schedule, one step a line
    deadlock: Optional[Deadlock] = None  # the real deadlock of the confirmed run
    output: list[str] = field(default_factory=list)  # that run's stdout and stderr lines (the end)
    tests: list[str] = field(default_factory=list)  # pytest: the tests whose bodies were run together

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "runs": self.runs}
        for key, value in (("of", self.of), ("run", self.run), ("reason", self.reason)):
            if value is not None:
                out[key] = value
        for key, lines in (("schedule", self.schedule), ("tests", self.tests), ("output", self.output)):
            if lines:
                out[key] = list(lines)
        if self.deadlock is not None:
            out["deadlock"] = self.deadlock.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str, source: str) -> Confirmation:
        r = _Reader(data, where, source)
        status = r.req("status", str)
        if status not in CONFIRMATION_STATUSES:
            r.fail(f"{r.path('status')} is not one of {', '.join(CONFIRMATION_STATUSES)}")
        return cls(status, r.req("runs", int), r.opt("of", int), r.opt("run", int), r.opt("reason", str),
                   r.strings("schedule"), r.record("deadlock", Deadlock.from_dict), r.strings("output"),
                   r.strings("tests"))


@record
class LockRef:
    """A lock of a potential deadlock's cycle: its site's LockStats key, name, kind and place, and
    its instance's serial when the cycle is one between instances."""

    key: str
    name: str
    kind: str
    filename: str
    line: int
    instance: Optional[int] = None

    @property
    def site(self) -> str:
        return f"{self.filename}:{self.line}"


@record
class PotentialDeadlock:
    """A cycle of the lock-order graph. ``edges[i]`` goes from ``locks[i]`` to ``locks[i+1]``
    (the last back to the first). ``scope`` is "instance" when these very lock objects were taken
    in both orders, "site" when only locks created at these sites were (lockdep's lock classes)."""

    scope: str
    locks: list[LockRef]
    edges: list[EdgeRecord]
    fingerprint: str
    occurrences: int = 1  # instance cycles through the same sites (e.g. many account pairs)
    triage: str = "deadlock"  # deadlock | single-thread | semaphore | timed | guarded
    reasons: list[str] = field(default_factory=list)  # why, one sentence per label that applies
    gate: Optional[str] = None  # for "guarded": the lock held around every edge
    origin: str = "user"  # "stdlib": every lock of the cycle was created by the standard library
    suppressed: Optional[str] = None  # the reason, when a suppression matched
    known: bool = False  # in the CI baseline
    confirmation: Optional[Confirmation] = None  # set by --confirm

    @property
    def threads(self) -> list[str]:
        return sorted({e.thread for e in self.edges})

    @property
    def fails(self) -> bool:
        """Whether this finding fails a run (--fail-on-cycle, the pytest plugin): a risk of a
        real hang in the user's own code, not suppressed and not already in the baseline."""
        return (self.triage in FAILING and self.origin == "user" and self.suppressed is None
                and not self.known)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope, "fingerprint": self.fingerprint, "occurrences": self.occurrences,
            "triage": self.triage, "reasons": self.reasons, "gate": self.gate, "origin": self.origin,
            "suppressed": self.suppressed, "known": self.known, "fails": self.fails,
            "locks": [{"name": lk.name, "kind": lk.kind, "site": lk.site, "key": lk.key,
                       "instance": lk.instance} for lk in self.locks],
            "edges": [e.to_dict() for e in self.edges],
            **({"confirmation": self.confirmation.to_dict()} if self.confirmation is not None else {}),
        }


@record
class Report:
    """A snapshot analysed: its potential deadlocks, the real deadlocks and alerts, and what the
    cycle search, the baseline and the suppressions left out."""

    snapshot: Snapshot
    potential_deadlocks: list[PotentialDeadlock] = field(default_factory=list)
    deadlocks: list[Deadlock] = field(default_factory=list)  # seen by the watchdog
    alerts: list[Alert] = field(default_factory=list)  # long holds and waits
    cycles_not_listed: int = 0  # cycles found (or known of) and not listed: lockwatch.cycles
    cycles_not_listed_at_least: bool = False  # the search was cut short: there may be more
    baseline_gone: list[BaselineEntry] = field(default_factory=list)  # in the baseline, not seen
    # The project's suppressions that matched no potential deadlock of this report, described
    # ("<file>: suppress entry <n>: site = '...' (reason)").
    unused_suppressions: list[str] = field(default_factory=list)

    @property
    def failing(self) -> list[PotentialDeadlock]:
        return [p for p in self.potential_deadlocks if p.fails]

    @property
    def violations(self) -> list[Violation]:
        return self.snapshot.violations

    def most_contended(self, n: int = 5) -> list[LockStats]:
        rows = [s for s in self.snapshot.locks if s.contended]
        rows.sort(key=lambda s: (s.wait.total_ns, s.contended), reverse=True)
        return rows[:n]

    def longest_held(self, n: int = 5) -> list[LockStats]:
        rows = [s for s in self.snapshot.locks if s.hold.count and not s.signal]
        rows.sort(key=lambda s: (s.hold.max_ns, s.hold.total_ns), reverse=True)
        return rows[:n]

    def to_dict(self) -> dict[str, Any]:
        """The report as the JSON contract's plain data (what ``iter_dumps`` writes)."""
        out: dict[str, Any] = {}
        for key, value, big in _sections(self):
            v = value()
            out[key] = list(v) if big or isinstance(v, tuple) else v
        return out


# -- the JSON report, version 2 -------------------------------------------------------------------
#
# The keys the contract names (README, "Reports") keep their meaning and shape. What version 2
# changes is the whole lock-order graph ("lock_order", "instance_edges", most of a large report):
# each edge is a row of values in the order "edge_fields" names, trailing defaults left out, that
# refers by index to tables where each distinct lock key ("sites"), thread ("threads": [name,
# "<pid>:<ident>"]), stack ("stacks": frame indices, innermost last) and frame ("frames":
# "<file>:<line> in <function>") is stored once, as pprof and speedscope do.

EDGE_FIELDS = ("src", "dst", "thread", "held_stack", "acquire_stack", "src_instance", "dst_instance",
               "count", "timed", "multi", "context", "gates", "gate_instances", "src_name", "dst_name",
               "wait", "wake")
_REQUIRED = 5  # src .. acquire_stack: every row has them
_DEFAULTS: tuple[Any, ...] = (None, None, 1, False, False, None, [], [], None, None, None, None)  # src_instance ..


class _Index(dict[Any, int]):
    """A table's index of each distinct value (a dict key), the next one for a new value: a hit
    is one dict lookup in C (a report can have a million edges, each naming five values)."""

    def __missing__(self, value: Any) -> int:
        i = self[value] = len(self)
        return i


class _FrameIndex(dict[str, str]):
    """Each distinct frame's index in "frames", as the JSON text a stack row is made of."""

    def __missing__(self, frame: str) -> str:
        i = self[frame] = str(len(self))
        return i


class _StackIndex(dict[tuple[str, ...], int]):
    """Each distinct stack (a tuple of frames) -> its index in "stacks"; ``rows`` are the stacks'
    rows of frame indices as JSON text, made once, when a stack is first seen."""

    def __init__(self, frames: _FrameIndex) -> None:
        super().__init__()
        self.rows: list[str] = []
        self._frame = frames.__getitem__

    def __missing__(self, stack: tuple[str, ...]) -> int:
        i = self[stack] = len(self.rows)
        self.rows.append(f"[{','.join(map(self._frame, stack))}]")
        return i


class _Tables:
    """The tables edges refer to, filled as the edges are written."""

    def __init__(self) -> None:
        self.sites = _Index()
        self.threads = _Index()  # (name, "<pid>:<ident>") -> index
        self.frames = _FrameIndex()
        self.stacks = _StackIndex(self.frames)

    def stack_rows(self) -> Iterator[list[int]]:
        """The stacks as lists of frame indices (the rows ``encoded_rows`` writes as text)."""
        return (json.loads(text) for text in self.stacks.rows)

    def row(self, e: EdgeRecord) -> list[Any]:
        sites, stacks = self.sites, self.stacks
        row: list[Any] = [sites[e.src], sites[e.dst], self.threads[(e.thread, e.thread_id)],
                          stacks[tuple(e.held_stack)], stacks[tuple(e.acquire_stack)]]
        if not (e.gates or e.gate_instances or e.timed or e.multi or e.count != 1 or e.context is not None
                or e.src_name is not None or e.dst_name is not None
                or e.wait is not None or e.wake is not None):  # the common rows, quickly
            if e.dst_instance is not None and e.src_instance is not None:
                row += (e.src_instance, e.dst_instance)
                return row
            if e.dst_instance is None and e.src_instance is None:
                return row
        tail = (e.src_instance, e.dst_instance, e.count, e.timed, e.multi, e.context,
                [sites[g] for g in e.gates], list(e.gate_instances), e.src_name, e.dst_name,
                e.wait, e.wake)
        n = len(tail)
        while n and tail[n - 1] == _DEFAULTS[n - 1] and type(tail[n - 1]) is type(_DEFAULTS[n - 1]):
            n -= 1
        row.extend(tail[:n])
        return row

    def encoded_rows(self, edges: list[EdgeRecord]) -> Iterator[str]:
        """``row`` of each edge as JSON text: the same values, made faster (a report can have a
        million edges; most rows are five or seven integers)."""
        sites, threads, stacks, row = self.sites, self.threads, self.stacks, self.row
        # _StackIndex.__missing__, inline: most stacks of a large report are new (a call each)
        known, rows, frame = stacks.get, stacks.rows, self.frames.__getitem__
        for e in edges:
            if (e.gates or e.gate_instances or e.context is not None or e.src_name is not None
                    or e.dst_name is not None or (e.src_instance is None) != (e.dst_instance is None)
                    or e.wait is not None or e.wake is not None
                    or type(e.count) is not int):
                yield json.dumps(row(e), separators=_COMPACT)
                continue
            src, dst, thread = sites[e.src], sites[e.dst], threads[(e.thread, e.thread_id)]
            t = tuple(e.held_stack)
            held = known(t)
            if held is None:
                held = stacks[t] = len(rows)
                rows.append(f"[{','.join(map(frame, t))}]")
            t = tuple(e.acquire_stack)
            acquire = known(t)
            if acquire is None:
                acquire = stacks[t] = len(rows)
                rows.append(f"[{','.join(map(frame, t))}]")
            head = f"[{src},{dst},{thread},{held},{acquire}"
            # the values after acquire_stack up to the last one that is not its default
            if e.src_instance is None:
                inst = "null,null"
                if not (e.multi or e.timed or e.count != 1):
                    yield head + "]"
                    continue
            else:
                inst = f"{int(e.src_instance)},{int(e.dst_instance or 0)}"
                if not (e.multi or e.timed or e.count != 1):
                    yield f"{head},{inst}]"
                    continue
            if e.multi:
                yield f"{head},{inst},{e.count},{'true' if e.timed else 'false'},true]"
            elif e.timed:
                yield f"{head},{inst},{e.count},true]"
            else:
                yield f"{head},{inst},{e.count}]"


def _sections(report: Report, encoded: bool = False) -> list[tuple[str, Callable[[], Any], bool]]:
    """The report's top-level keys in order: (key, its value, whether it is a long list written
    one item per line). The edge tables are filled as the edges are made, so they come last.
    ``encoded``: the edges' rows as JSON text already."""
    snap = report.snapshot
    in_graph: Optional[set[str]] = None

    def used(s: LockStats) -> bool:
        """Taken, or in the lock-order graph (whose locks are gathered only when a lock was
        never taken: the graph can be half a million edges)."""
        nonlocal in_graph
        if s.acquisitions or s.failed:
            return True
        if in_graph is None:
            in_graph = {k for e in snap.site_edges for k in (e.src, e.dst)}
        return s.key in in_graph

    tables = _Tables()

    def rows(edges: list[EdgeRecord]) -> Iterator[Any]:
        return tables.encoded_rows(edges) if encoded else (tables.row(e) for e in edges)

    return [
        ("format", lambda: FORMAT, False),
        ("version", lambda: VERSION, False),
        ("meta", lambda: snap.meta, False),
        ("potential_deadlocks", lambda: [p.to_dict() for p in report.potential_deadlocks], False),
        ("cycles_not_listed", lambda: report.cycles_not_listed, False),
        ("cycles_not_listed_at_least", lambda: report.cycles_not_listed_at_least, False),
        ("deadlocks", lambda: [d.to_dict() for d in report.deadlocks], False),
        ("alerts", lambda: [a.to_dict() for a in report.alerts], False),
        ("order_violations", lambda: [v.to_dict() for v in snap.violations], False),
        ("baseline_gone", lambda: [b.to_dict() for b in report.baseline_gone], False),
        ("unused_suppressions", lambda: list(report.unused_suppressions), False),
        ("internal_errors", lambda: snap.internal_errors, False),
        # Locks that were used (modules create many they never take in a given run).
        ("locks", lambda: ((s.encoded() if encoded else s.to_dict()) for s in snap.locks if used(s)), True),
        ("edge_fields", lambda: EDGE_FIELDS, False),
        # The whole site-level lock-order graph, so that reports can be merged and re-analysed.
        ("lock_order", lambda: rows(snap.site_edges), True),
        ("instance_edges", lambda: rows(snap.instance_edges), True),
        *([("pool_waits", lambda: [p.to_dict() for p in snap.pool_waits], False)] if snap.pool_waits else []),
        ("sites", lambda: iter(tables.sites), True),
        ("threads", lambda: ([name, ident] for name, ident in tables.threads), True),
        ("stacks", lambda: iter(tables.stacks.rows) if encoded else tables.stack_rows(), True),
        ("frames", lambda: iter(tables.frames), True),
        *([("source_lines", lambda: {f: {str(n): t for n, t in sorted(lines.items())}
                                     for f, lines in sorted(snap.source_lines.items())}, False)]
          if snap.source_lines else []),
    ]


_ITEM_ENCODERS: dict[str, Callable[[Any], str]] = {
    "locks": str, "lock_order": str, "instance_edges": str, "stacks": str,  # encoded already
    "sites": json.encoder.encode_basestring_ascii,
    "frames": json.encoder.encode_basestring_ascii,
}


def iter_dumps(report: Report) -> Iterator[str]:
    """The JSON report in pieces, never as one string: the findings indented for people, each item
    of the long lists (locks, edges, tables) on a line of its own."""
    yield "{"
    first = True
    for key, value, big in _sections(report, encoded=True):
        yield ("\n  " if first else ",\n  ") + json.dumps(key) + ": "
        first = False
        if not big:
            v = value()
            yield (json.dumps(list(v), separators=(", ", ": ")) if isinstance(v, tuple)  # a short row
                   else json.dumps(v, indent=2).replace("\n", "\n  "))
            continue
        encode = _ITEM_ENCODERS.get(key) or _COMPACT_ENCODER.encode
        # One item per line, not indented: a large report has millions of rows (4 spaces each
        # were 11 MB of the 100,000-site report of benchmarks/scale.py).
        items = value() if encode is str else map(encode, value())
        opened = False
        while True:
            batch = list(islice(items, 4096))
            if not batch:
                break
            yield (",\n" if opened else "[\n") + ",\n".join(batch)
            opened = True
        yield "\n  ]" if opened else "[]"
    yield "\n}\n"


def canonical_rotation(seq: list[Any]) -> list[Any]:
    """The least rotation of ``seq`` (lexicographically), in linear time: a cycle of thousands
    of locks is read from one place without comparing every rotation with every other."""
    n = len(seq)
    if n < 2:
        return list(seq)
    # The two-candidate scan for the minimal rotation (i and j are candidate starts, k the length
    # of their common prefix); a candidate that loses at offset k rules out k + 1 starts.
    i, j, k = 0, 1, 0
    while i < n and j < n and k < n:
        a, b = seq[(i + k) % n], seq[(j + k) % n]
        if a == b:
            k += 1
            continue
        if a > b:
            i += k + 1
        else:
            j += k + 1
        if i == j:
            j += 1
        k = 0
    best = min(i, j)
    return seq[best:] + seq[:best]


def cycle_id(keys: Sequence[str]) -> str:
    """A cycle identified by its locks' keys. Fingerprints are made from paths relative to the
    working directory or sys.path, so a report re-rendered elsewhere gets other ones."""
    return "keys:" + "\n".join(canonical_rotation(list(keys)))


# -- a saved report -------------------------------------------------------------------------------

def check_header(data: Any, source: str, fmt: str, max_version: int, what: str, error: type[Exception],
                 hint: str = "") -> None:
    """``data`` is a ``what`` (its "format" is ``fmt``) of a version from 1 to ``max_version``;
    otherwise ``error`` with one line naming ``source`` (a version is never echoed at length)."""
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise error(f"{source} is not a {what}{hint}")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise error(f"{source} is a damaged {what} (version is not a positive integer)")
    if version > max_version:
        shown = f"version {version}" if version < 10**6 else "a newer version"
        raise error(f"{source} is a {what} of {shown}; this lockwatch reads version {max_version} and older")


@record
class SavedReport:
    """A report read back: its snapshot, the watchdog's findings, and the marks its run's
    suppressions and baseline put on its cycles (kept when it is re-rendered or merged)."""

    snapshot: Snapshot
    deadlocks: list[Deadlock] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    suppressed: dict[str, str] = field(default_factory=dict)  # fingerprint or cycle id -> reason
    known: set[str] = field(default_factory=set)  # fingerprints or cycle ids in the baseline
    baseline_gone: list[BaselineEntry] = field(default_factory=list)
    # (scope, cycle id) -> the fingerprint the recording process gave the cycle
    fingerprints: dict[tuple[str, str], str] = field(default_factory=dict)
    unused_suppressions: list[str] = field(default_factory=list)  # as its run listed them
    confirmations: dict[str, Confirmation] = field(default_factory=dict)  # fingerprint or cycle id ->

    @classmethod
    def from_dict(cls, data: Any, source: str = "report") -> SavedReport:
        """Raises ReportError (one line naming ``source`` and the field) for anything that is not
        a lockwatch report of a version this one reads."""
        check_header(data, source, FORMAT, VERSION, "lockwatch report", ReportError)
        r = _Reader(data, "", source)
        if not _depth(data.get("meta"), MAX_DEPTH):
            r.fail(f"meta nests deeper than {MAX_DEPTH}")
        for key in ("deadlocks", "alerts", "potential_deadlocks", "baseline_gone"):
            if data.get(key) is not None and not isinstance(data[key], list):
                r.fail(f"{key} is not a list")
        if data["version"] >= 2:
            site_edges, instance_edges = _EdgeReader(r).edges()
        else:
            site_edges = r.items("lock_order", EdgeRecord.from_dict)
            instance_edges = r.items("instance_edges", EdgeRecord.from_dict)
        snap = Snapshot(locks=r.items("locks", LockStats.from_dict),
                        site_edges=site_edges, instance_edges=instance_edges,
                        meta=dict(r.opt("meta", dict, {})), internal_errors=r.strings("internal_errors"),
                        violations=r.items("order_violations", Violation.from_dict),
                        pool_waits=r.items("pool_waits", PoolWaitRecord.from_dict),
                        source_lines=_source_lines(r))
        saved = cls(snap, r.items("deadlocks", Deadlock.from_dict), r.items("alerts", Alert.from_dict),
                    baseline_gone=[BaselineEntry.from_dict(e, f"baseline_gone[{i}]", source)
                                   for i, e in enumerate(data.get("baseline_gone") or [])
                                   if isinstance(e, dict)],
                    unused_suppressions=r.strings("unused_suppressions"))
        for i, p in enumerate(data.get("potential_deadlocks") or []):
            # Only the marks are read back: the cycles themselves are found again by analysis.
            if not isinstance(p, dict):
                continue
            confirmation = (Confirmation.from_dict(p["confirmation"], f"potential_deadlocks[{i}].confirmation",
                                                   source) if p.get("confirmation") is not None else None)
            ids = [p["fingerprint"]] if isinstance(p.get("fingerprint"), str) and p["fingerprint"] else []
            locks = p.get("locks")
            if isinstance(locks, list) and all(isinstance(lk, dict) and isinstance(lk.get("key"), str)
                                               and lk["key"] for lk in locks):
                ids.append(cycle_id([lk["key"] for lk in locks]))
                if isinstance(p.get("scope"), str) and isinstance(p.get("fingerprint"), str):
                    saved.fingerprints.setdefault((p["scope"], ids[-1]), p["fingerprint"])
            for ident in ids:
                if isinstance(p.get("suppressed"), str):
                    saved.suppressed[ident] = p["suppressed"]
                if p.get("known"):
                    saved.known.add(ident)
                if confirmation is not None:
                    saved.confirmations[ident] = confirmation
        return saved


class _EdgeReader:
    """The edges of a version 2 report: rows checked against the tables they refer to (every
    index in range, every value of its type), a ReportError naming the row and field otherwise."""

    def __init__(self, r: _Reader) -> None:
        self.r = r
        fields = r.strings("edge_fields", required=True)
        if len(set(fields)) != len(fields):
            r.fail("edge_fields names a field twice")
        missing = [f for f in EDGE_FIELDS[:_REQUIRED] if f not in fields]
        if missing:
            r.fail(f"edge_fields lacks {missing[0]}")
        self.width = len(fields)
        self.pos = [fields.index(f) for f in EDGE_FIELDS[:_REQUIRED]]
        self.optional = sorted(((f, fields.index(f), d) for f, d in zip(EDGE_FIELDS[_REQUIRED:], _DEFAULTS)
                                if f in fields), key=lambda o: o[1])  # by position: stop at a row's end
        self.sites = r.strings("sites")
        frames = r.strings("frames")
        self.stacks: list[list[str]] = []
        for i, row in enumerate(r.opt("stacks", list, [])):
            if not isinstance(row, list):
                r.fail(f"stacks[{i}] is not a list")
            try:
                self.stacks.append([frames[f] for f in row if type(f) is int and f >= 0])
            except IndexError:
                self.stacks.append([])
            if len(self.stacks[-1]) != len(row):
                r.fail(f"stacks[{i}] has a value that is not an index into frames "
                       + (f"(0 to {len(frames) - 1})" if frames else "(frames is empty)"))
        self.threads: list[tuple[str, str]] = []
        for i, pair in enumerate(r.opt("threads", list, [])):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                r.fail(f"threads[{i}] is not a [name, id] pair of strings")
            self.threads.append((pair[0], pair[1]))

    def edges(self) -> tuple[list[EdgeRecord], list[EdgeRecord]]:
        return self.rows("lock_order"), self.rows("instance_edges")

    def _index(self, where: str, name: str, table: str, size: int) -> NoReturn:
        self.r.fail(f"{where} ({name}) is not an index into {table} "
                    + (f"(0 to {size - 1})" if size else f"({table} is empty)"))

    def rows(self, key: str) -> list[EdgeRecord]:
        r, sites, threads, stacks = self.r, self.sites, self.threads, self.stacks
        ns, nt, nk = len(sites), len(threads), len(stacks)
        p_src, p_dst, p_thread, p_held, p_acq = self.pos
        need = max(self.pos) + 1
        out: list[EdgeRecord] = []
        for i, row in enumerate(r.opt(key, list, [])):
            where = f"{key}[{i}]"
            if type(row) is not list or not need <= len(row) <= self.width:
                r.fail(f"{where} is not a row of {need} to {self.width} values (edge_fields)")
            src, dst, thread, held, acq = row[p_src], row[p_dst], row[p_thread], row[p_held], row[p_acq]
            if not (type(src) is int and 0 <= src < ns):
                self._index(where, "src", "sites", ns)
            if not (type(dst) is int and 0 <= dst < ns):
                self._index(where, "dst", "sites", ns)
            if not (type(thread) is int and 0 <= thread < nt):
                self._index(where, "thread", "threads", nt)
            if not (type(held) is int and 0 <= held < nk):
                self._index(where, "held_stack", "stacks", nk)
            if not (type(acq) is int and 0 <= acq < nk):
                self._index(where, "acquire_stack", "stacks", nk)
            e = EdgeRecord(sites[src], sites[dst], threads[thread][0], stacks[held], stacks[acq],
                           thread_id=threads[thread][1])
            if len(row) > need or self.optional and self.optional[0][1] < len(row):
                self._optional(e, row, where)
            out.append(e)
        return out

    def _optional(self, e: EdgeRecord, row: list[Any], where: str) -> None:
        n = len(row)
        for name, p, default in self.optional:
            if p >= n:
                break
            v = row[p]
            if v is None and default is None:
                continue
            bad = ""
            if name in ("src_instance", "dst_instance", "count"):
                bad = "" if type(v) is int and 0 <= v <= MAX_INT else f"an integer from 0 to {MAX_INT}"
            elif name in ("timed", "multi"):
                bad = "" if type(v) is bool else "true or false"
            elif name in ("context", "src_name", "dst_name", "wait", "wake"):
                bad = "" if type(v) is str else "a string or null"
            elif name == "gates":
                if not (type(v) is list and all(type(g) is int and 0 <= g < len(self.sites) for g in v)):
                    self.r.fail(f"{where} (gates) is not a list of indices into sites (0 to {len(self.sites) - 1})")
                v = [self.sites[g] for g in v]
            elif name == "gate_instances":
                bad = ("" if type(v) is list and all(type(g) is int and 0 <= g <= MAX_INT for g in v)
                       else "a list of integers")
            if bad:
                self.r.fail(f"{where} ({name}) is not {bad}")
            setattr(e, name, v)
        if len(e.gates) != len(e.gate_instances):
            self.r.fail(f"{where} has {len(e.gates)} gates and {len(e.gate_instances)} gate_instances")


def _source_lines(r: _Reader) -> dict[str, dict[int, str]]:
    """The "source_lines" of a report: {file: {line: text}}."""
    out: dict[str, dict[int, str]] = {}
    for filename, lines in r.opt("source_lines", dict, {}).items():
        where = f"source_lines[{json.dumps(filename)[:60]}]"
        if not isinstance(lines, dict):
            r.fail(f"{where} is not an object")
        mine = out[filename] = {}
        for line, text in lines.items():
            if not (_LINE_NUMBER.match(line) and isinstance(text, str)):
                r.fail(f"{where} is not an object of line numbers and strings")
            mine[int(line)] = text
    return out


_LINE_NUMBER = re.compile(r"[1-9][0-9]{0,8}\Z")
_SITE_LINE = re.compile(r"[0-9]{1,9}\Z")


def _depth(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests no deeper than ``limit``."""
    if limit < 0:
        return False
    if isinstance(value, dict):
        return all(_depth(v, limit - 1) for v in value.values())
    if isinstance(value, list):
        return all(_depth(v, limit - 1) for v in value)
    return True


def loads(text: str, source: str = "report") -> SavedReport:
    try:
        data = json.loads(text)
    except ValueError:
        raise ReportError(f"{source} is not a lockwatch report (not JSON)") from None
    except RecursionError:
        raise ReportError(f"{source} is not a lockwatch report (JSON nested too deeply)") from None
    return SavedReport.from_dict(data, source)


def load(path: str) -> SavedReport:
    """Read a saved report. Raises ReportError (one line) when it cannot be used."""
    return SavedReport.from_dict(read_json(path, "lockwatch report", ReportError), path)


def dumps(report: Report) -> str:
    return "".join(iter_dumps(report))


def save(path: str, report: Report) -> None:
    """Write ``report`` as JSON, atomically, streamed (never the whole file in memory)."""
    from .files import write_atomic_chunks

    write_atomic_chunks(path, iter_dumps(report))
