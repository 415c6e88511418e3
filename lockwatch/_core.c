/* lockwatch._core: the compiled hot path of lockwatch's Lock and RLock (proxies.py), and of its
 * Condition and semaphores (primitives.py: see the Condition and Semaphore sections below).
 *
 * Base types whose subclasses in lockwatch/proxies.py are the instrumented Lock and RLock when
 * this module is present (and LOCKWATCH_PURE_PYTHON is not set). They record exactly what
 * proxies.py's pure-Python classes (the reference, and the fallback) record:
 *
 * - the same attributes, under the same names (`_held_in`, `_site`, `_serial`, `_in`, `_t`, ...),
 *   read and written by recorder, snapshot, watchdog, confirm and primitives as before;
 * - the same per-thread held list (recorder.tls.held) and the same edge counting as
 *   proxies._before for edges already known.
 *
 * Only the common case is compiled: acquire() without arguments and __enter__ of a lock that is
 * free (or re-entered), release()/__exit__ of the innermost hold by its own thread. Everything
 * else calls the Python code it would have run: proxies._before when an edge is new (or gated,
 * or the held list is long, or releases are pending), proxies._wait when the lock is taken
 * (contention: the watchdog and signals interrupt that wait, in Python), proxies._release_slow,
 * and the pure-Python methods themselves for calls with arguments or by a non-owner.
 *
 * The real lock is used through its C handle where its layout is known (CPython 3.9-3.13,
 * checked once at configure(): a lock acquired through its methods must show in the fields, and
 * the other way round); otherwise through its methods. There a Lock holds the PyThread lock
 * itself, and its _thread.lock object is made only when Python code asks for it ("own handles").
 *
 * The held list is cached in C thread-local storage, keyed by the thread state's unique id: a
 * thread state's tls.held is set once (recorder.thread_start) and never replaced, and a forked
 * child keeps the forking thread's state (and its list); a thread that ends takes its thread
 * state (and id) with it. The cache is used only when recorder.tls is CPython's own
 * _thread._local (gevent's per-greenlet local is looked up every time).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "structmember.h"
#include "frameobject.h"
#include "pythread.h"

#if PY_VERSION_HEX < 0x03090000
#error "lockwatch._core needs CPython 3.9 or later"
#endif
#ifdef Py_GIL_DISABLED
#error "lockwatch._core relies on the GIL: free-threaded builds use the pure-Python core"
#endif

#if defined(_MSC_VER)
#define LW_TLS __declspec(thread)
#define LW_HAVE_TLS 1
#elif defined(__GNUC__) || defined(__clang__)
#define LW_TLS __thread
#define LW_HAVE_TLS 1
#else
#define LW_HAVE_TLS 0
#endif

#define LW_API 14 /* what proxies.py expects: _core.API */

/* ---- the instance ------------------------------------------------------------------------- */

/* An instance's size is what a program with many locks pays for each (tracemalloc counted 399
   bytes per Lock when every field was here and each instance had a weak reference in
   recorder.live: 4.5x a real lock). So what most instances never need is kept apart, allocated
   on first use (LWExt: edges, annotations, contention and failure counts), the serial number is
   a C integer (its int object is made when asked for), `_hh` is read from the site, the
   registry of live instances is a list threaded through the instances themselves (prev/next)
   instead of a weak reference each in a dict, and a Lock holds its PyThread lock itself (no
   _thread.lock object until one is asked for: "own handles"). */
typedef struct {
    PyObject *in;        /* _in: {source serial: Edge}; NULL: None */
    PyObject *out;       /* _out: set of destination serials; NULL: None */
    PyObject *ann;       /* _ann; NULL: None */
    PyObject *serial;    /* _serial as an int, made on first use (edges are keyed by it); or NULL */
    long long ncont, nfail, wait_tot, wait_max;
} LWExt;

typedef struct LW {
    PyObject_HEAD
    union {
        PyObject *real;            /* _real: the _thread lock (see "own handles") */
        PyThread_type_lock handle; /* with LW_OWN: a Lock's lock itself, no object made yet */
    };
    PyObject *site;      /* _site */
    PyObject *held_in;   /* _held_in: the holder's held list, () when not held */
    PyObject *at_code;   /* _at_code */
    PyObject *last;      /* _last: the held list of the thread that released it last (NULL: None) */
    LWExt *ext;          /* NULL until one of its fields is set */
    struct LW *prev, *next; /* the registry of live instances (see "the registry") */
    long long serial;    /* _serial; 0: not set yet (made by __new__, before proxies._init) */
    long long t, n;      /* _n; the holds' total and longest are counted in the site ("hold totals") */
    int at_lasti;
    int flags;
    PyObject *weakreflist;
    long long depth;     /* RLock only: a Lock's instances end before it */
} LW;

#define LW_MAYBE_IN_LIVE 1 /* made by __new__: proxies._init may have put it in recorder.live */
#define LW_OWN 4    /* a Lock holding its PyThread lock in `handle` (see "own handles") */
#define LW_LOCKED 8 /* with LW_OWN: `handle` is taken (the real lock object's `locked`) */

/* The real locks' layouts, CPython 3.9-3.13 (Modules/_threadmodule.c), verified at configure(). */
typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock_lock;
    PyObject *in_weakreflist;
    char locked;
} RealLock;

typedef struct {
    PyObject_HEAD
    PyThread_type_lock rlock_lock;
    unsigned long rlock_owner;
    unsigned long rlock_count;
    PyObject *in_weakreflist;
} RealRLock;

/* ---- configuration (set once by proxies.py) ------------------------------------------------ */

static PyObject *g_tls;             /* recorder.tls */
static PyObject *g_thread_start;    /* recorder.thread_start */
static PyObject *g_before;          /* proxies._before */
static PyObject *g_new_edges;       /* recorder.new_edges */
static PyObject *g_one;             /* 1: new_edges()'s depth from here (no Python frame between) */
static PyObject *g_wait;            /* proxies._wait */
static PyObject *g_release_slow;    /* proxies._release_slow */
static PyObject *g_py_lock_acquire; /* the pure-Python methods, for the other cases */
static PyObject *g_py_rlock_acquire;
static PyObject *g_py_rlock_release;
static PyObject *g_pending;         /* recorder.pending */
static PyObject *g_fold_instance;   /* recorder.fold_instance */
static PyObject *g_count;           /* histogram.add: a bucket's first duration */
static PyTypeObject *g_edge_type;   /* recorder.Edge */
static Py_ssize_t g_off_count, g_off_held_ref, g_off_multi, g_off_timed, g_off_gates;
/* The slots of recorder.Edge in its __init__'s order, then count and multi; their offsets are
   found at configure() (all plain object slots, else new_edge() is not offered: g_edge_new_type NULL). */
static const char *const g_edge_fields[] = {
    "src_serial", "dst_serial", "src_site", "dst_site", "src_name", "dst_name", "thread", "held_stack",
    "acquire_stack", "timed", "context", "gates", "thread_id", "held_ref", "count", "multi",
};
#define LW_EDGE_ARGS 14
#define LW_EDGE_FIELDS 16
static Py_ssize_t g_edge_offs[LW_EDGE_FIELDS];
static PyTypeObject *g_edge_new_type; /* recorder.Edge when new_edge() may make it, else NULL */
static PyObject *g_small_one;
static PyTypeObject *g_lock_type;   /* type(_thread.allocate_lock()) */
static PyTypeObject *g_rlock_type;  /* type(threading.RLock()) as proxies makes them */
static int g_lock_layout, g_rlock_layout; /* the layouts above verified */
static int g_tls_plain;             /* recorder.tls is CPython's _thread._local */
static Py_ssize_t g_same_site_sources = 8;
static int g_configured;

/* Creation (set by configure() and set_fallbacks()): see "creation" below. */
static PyObject *g_allocate_lock;   /* _thread.allocate_lock */
static PyObject *g_real_rlock;      /* the real RLock factory (proxies._real_rlock) */
static PyObject *g_serials;         /* recorder._serials: one next() per instance */
static PyObject *g_site_verdict;    /* patching._site_verdict(frame, kind) */
static PyTypeObject *g_site_type;   /* recorder.Site */
static Py_ssize_t g_off_made, g_off_hold_hist;
static Py_ssize_t g_off_hold_fast;  /* recorder.Site.hold_fast: the site's HoldCounts, or None */
static PyTypeObject *g_lock_cls, *g_rlock_cls; /* proxies.Lock, proxies.RLock (set_fallbacks) */
static PyObject *g_lock_fallback;   /* patching._lock_factory(wrapped, instance, args, kwargs) */
static PyObject *g_rlock_fallback;  /* patching._rlock_for(wrapped, args, kwargs, frame) */

static PyObject *s_held, *s_acquire, *s_release, *s_locked, *s_hold_hist, *s_wrapped, *s_lock, *s_rlock, *g_empty;

static PyTypeObject LockType;
static PyTypeObject RLockType;

/* An instance of this core: its own types, then proxies.Lock and proxies.RLock (what the factories
   make: a pointer comparison each, where PyObject_TypeCheck walks the MRO), then any subclass. */
#define IS_LW(o) (Py_IS_TYPE(o, &LockType) || Py_IS_TYPE(o, &RLockType) || \
                  Py_IS_TYPE(o, g_rlock_cls) || Py_IS_TYPE(o, g_lock_cls) || \
                  PyObject_TypeCheck(o, &LockType) || PyObject_TypeCheck(o, &RLockType))

/* ---- the instance's parts ---------------------------------------------------------------- */

#define SLOT(o, off) (*(PyObject **)((char *)(o) + (off))) /* an object slot at a member's offset */

#define LW_LISTED 2 /* in the registry of live instances */

/* The extension, allocated on first use; NULL with MemoryError. */
static LWExt *
ext_of(LW *self)
{
    if (self->ext == NULL) {
        self->ext = PyMem_Calloc(1, sizeof(LWExt));
        if (self->ext == NULL)
            PyErr_NoMemory();
    }
    return self->ext;
}

/* _serial as an int, kept in the extension (a borrowed reference); NULL with an exception. */
static PyObject *
serial_object(LW *self)
{
    LWExt *x = ext_of(self);
    if (x == NULL)
        return NULL;
    if (x->serial == NULL)
        x->serial = PyLong_FromLongLong(self->serial);
    return x->serial;
}

/* The site's hold histogram (_hh), a new reference. */
static PyObject *
hold_hist_of(LW *self)
{
    PyObject *site = self->site;
    if (site == NULL) {
        PyErr_SetString(PyExc_AttributeError, "instance not initialised (lockwatch.proxies._init)");
        return NULL;
    }
    if (g_site_type != NULL && Py_IS_TYPE(site, g_site_type)) {
        PyObject *hh = SLOT(site, g_off_hold_hist);
        if (hh != NULL) {
            Py_INCREF(hh);
            return hh;
        }
    }
    return PyObject_GetAttr(site, s_hold_hist);
}

/* ---- counters ------------------------------------------------------------------------------ */

/* next() of an itertools.count (recorder.serials, Site.made): its field incremented where its
   layout is known (CPython 3.9-3.13, checked at configure(): the counter's value shows in the
   field and the other way round), else through next(). Under the GIL, as next() itself. */
typedef struct {
    PyObject_HEAD
    Py_ssize_t cnt; /* PY_SSIZE_T_MAX: past the fast range (next() then counts in long_cnt) */
    PyObject *long_cnt;
    PyObject *long_step;
} CountObject;

static PyTypeObject *g_count_type;
static int g_count_layout;

/* 0 with the value taken in *value (if not NULL), -1 with an exception. */
static int
count_next(PyObject *counter, long long *value)
{
    if (g_count_layout && Py_IS_TYPE(counter, g_count_type)) {
        CountObject *c = (CountObject *)counter;
        if (c->cnt != PY_SSIZE_T_MAX) {
            if (value != NULL)
                *value = c->cnt;
            c->cnt++;
            return 0;
        }
    }
    PyObject *v = PyIter_Next(counter);
    if (v == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "a counter ended");
        return -1;
    }
    long long x = value != NULL ? PyLong_AsLongLong(v) : 0;
    Py_DECREF(v);
    if (value != NULL) {
        if (x == -1 && PyErr_Occurred())
            return -1;
        *value = x;
    }
    return 0;
}

static long long
call_count(PyObject *counter)
{
    PyObject *v = PyIter_Next(counter);
    long long x = v != NULL ? PyLong_AsLongLong(v) : -1;
    Py_XDECREF(v);
    return x;
}

/* A counter made through its type shows its value in the field, and a value set in the field
   shows in next(). */
static int
check_count_layout(PyObject *sample)
{
    g_count_layout = 0;
    if (Py_TYPE(sample)->tp_basicsize != (Py_ssize_t)sizeof(CountObject))
        return 0;
    CountObject *c = (CountObject *)sample;
    if (c->cnt != 41 || c->long_cnt != NULL)
        return 0;
    if (call_count(sample) != 41 || c->cnt != 42)
        return PyErr_Occurred() ? -1 : 0;
    c->cnt = 1000;
    if (call_count(sample) != 1000 || c->cnt != 1001)
        return PyErr_Occurred() ? -1 : 0;
    g_count_type = Py_TYPE(sample);
    g_count_layout = 1;
    return 0;
}

/* ---- the registry ------------------------------------------------------------------------- */

/* Every live instance of these types, in a list threaded through the instances (what
   recorder.live, a weak reference each in a dict, is for the pure-Python core): fork and
   snapshots visit it, never the heap. An instance is listed when allocated and leaves when it
   is finalized or freed; only complete ones (their site set) are handed out. The GIL guards it. */
static LW *g_first;
static Py_ssize_t g_listed;

static void
list_add(LW *self)
{
    self->prev = NULL;
    self->next = g_first;
    if (g_first != NULL)
        g_first->prev = self;
    g_first = self;
    self->flags |= LW_LISTED;
    g_listed++;
}

static void
list_remove(LW *self)
{
    if (!(self->flags & LW_LISTED))
        return;
    if (self->prev != NULL)
        self->prev->next = self->next;
    else
        g_first = self->next;
    if (self->next != NULL)
        self->next->prev = self->prev;
    self->prev = self->next = NULL;
    self->flags &= ~LW_LISTED;
    g_listed--;
}

static PyObject *
live_instances(PyObject *mod, PyObject *unused)
{
    for (;;) {
        Py_ssize_t n = g_listed;
        PyObject *list = PyList_New(n);
        if (list == NULL)
            return NULL;
        if (n != g_listed) { /* a collection during the allocation ended some */
            Py_DECREF(list);
            continue;
        }
        Py_ssize_t i = 0;
        for (LW *o = g_first; o != NULL && i < n; o = o->next) {
            if (o->site == NULL || o->serial == 0)
                continue; /* made by __new__, not set up yet */
            Py_INCREF(o);
            PyList_SET_ITEM(list, i, (PyObject *)o);
            i++;
        }
        Py_SET_SIZE(list, i);
        return list;
    }
}

/* ---- the clock: time.perf_counter_ns ------------------------------------------------------ */

static inline long long
now_ns(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    (void)PyTime_PerfCounterRaw(&t);
    return (long long)t;
#else
    return (long long)_PyTime_GetPerfCounter();
#endif
}

/* ---- the held list ------------------------------------------------------------------------ */

#if LW_HAVE_TLS
static LW_TLS uint64_t c_tsid;
static LW_TLS PyObject *c_held; /* borrowed: tls.held of thread state c_tsid */
#endif

/* The calling thread's held list (a new reference) in *out; NULL in *out when it has none and
   `create` is false. Returns -1 with an exception set on error. */
static int
held_list(PyObject **out, int create)
{
#if LW_HAVE_TLS
    uint64_t id = 0;
    if (g_tls_plain) {
        id = PyThreadState_GetID(PyThreadState_Get());
        if (c_held != NULL && c_tsid == id) {
            Py_INCREF(c_held);
            *out = c_held;
            return 0;
        }
    }
#endif
    PyObject *h = PyObject_GetAttr(g_tls, s_held);
    if (h == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        if (!create) {
            *out = NULL;
            return 0;
        }
        h = PyObject_CallNoArgs(g_thread_start);
        if (h == NULL)
            return -1;
    }
#if LW_HAVE_TLS
    if (g_tls_plain && PyList_CheckExact(h)) {
        c_held = h;
        c_tsid = id;
    }
#endif
    *out = h;
    return 0;
}

static PyObject *
forget_held_cache(PyObject *mod, PyObject *unused)
{
#if LW_HAVE_TLS
    c_held = NULL;
    c_tsid = 0;
#endif
    Py_RETURN_NONE;
}

/* ---- the real locks ----------------------------------------------------------------------- */

/* Try to take `real` without blocking: 1 taken, 0 not, -1 error. */
static int
real_trylock(PyObject *real, int rlock)
{
    if (!rlock && g_lock_layout && Py_IS_TYPE(real, g_lock_type)) {
        RealLock *r = (RealLock *)real;
        if (r->locked)
            return 0;
        if (PyThread_acquire_lock_timed(r->lock_lock, 0, 0) != PY_LOCK_ACQUIRED)
            return 0;
        r->locked = 1;
        return 1;
    }
    if (rlock && g_rlock_layout && Py_IS_TYPE(real, g_rlock_type)) {
        RealRLock *r = (RealRLock *)real;
        unsigned long tid = PyThread_get_thread_ident();
        if (r->rlock_count > 0 && r->rlock_owner == tid) {
            unsigned long c = r->rlock_count + 1;
            if (c <= r->rlock_count) {
                PyErr_SetString(PyExc_OverflowError, "Internal lock count overflowed");
                return -1;
            }
            r->rlock_count = c;
            return 1;
        }
        if (PyThread_acquire_lock_timed(r->rlock_lock, 0, 0) != PY_LOCK_ACQUIRED)
            return 0;
        r->rlock_owner = tid;
        r->rlock_count = 1;
        return 1;
    }
    PyObject *res = PyObject_CallMethodOneArg(real, s_acquire, Py_False);
    if (res == NULL)
        return -1;
    int ok = PyObject_IsTrue(res);
    Py_DECREF(res);
    return ok;
}

/* real.acquire() when the calling thread owns the real RLock already (re-entry). */
static int
real_rlock_reenter(PyObject *real)
{
    if (g_rlock_layout && Py_IS_TYPE(real, g_rlock_type)) {
        RealRLock *r = (RealRLock *)real;
        if (r->rlock_count > 0 && r->rlock_owner == PyThread_get_thread_ident()) {
            unsigned long c = r->rlock_count + 1;
            if (c <= r->rlock_count) {
                PyErr_SetString(PyExc_OverflowError, "Internal lock count overflowed");
                return -1;
            }
            r->rlock_count = c;
            return 0;
        }
    }
    PyObject *res = PyObject_CallMethodNoArgs(real, s_acquire);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

/* real.release(), raising what the real lock raises. */
static int
real_release(PyObject *real, int rlock)
{
    if (!rlock && g_lock_layout && Py_IS_TYPE(real, g_lock_type)) {
        RealLock *r = (RealLock *)real;
        if (r->locked) {
            r->locked = 0;
            PyThread_release_lock(r->lock_lock);
            return 0;
        }
    }
    else if (rlock && g_rlock_layout && Py_IS_TYPE(real, g_rlock_type)) {
        RealRLock *r = (RealRLock *)real;
        if (r->rlock_count > 0 && r->rlock_owner == PyThread_get_thread_ident()) {
            if (--r->rlock_count == 0) {
                r->rlock_owner = 0;
                PyThread_release_lock(r->rlock_lock);
            }
            return 0;
        }
    }
    PyObject *res = PyObject_CallMethodNoArgs(real, s_release);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

/* ---- own handles --------------------------------------------------------------------------- */

/* A Lock made by the factories holds its PyThread lock itself (LW_OWN in `flags`, the handle in
   `handle`) where the real lock's layout is verified (RealLock: CPython 3.9-3.13): a _thread.lock
   object for each instance cost 56 bytes and an allocation more (a live Lock was 242 bytes under
   tracemalloc, 2.7x a real one). The object is made when Python code asks for `_real` (a timed or
   non-blocking acquire, a contended one: proxies._wait blocks in its acquire(), a release that is
   not the holder's innermost, repr, copy, fork): a new _thread.lock is given this handle and its
   state, under the GIL, and is used from then on as before. Nothing blocks on an own handle: it
   is only tried without blocking and released, both under the GIL. */

/* real_trylock() of an own handle: 1 taken, 0 not. */
static int
own_trylock(LW *self)
{
    if (self->flags & LW_LOCKED)
        return 0;
    if (PyThread_acquire_lock_timed(self->handle, 0, 0) != PY_LOCK_ACQUIRED)
        return 0;
    self->flags |= LW_LOCKED;
    return 1;
}

/* The real lock object (borrowed), made from the own handle on first use; NULL with an exception. */
static PyObject *
real_of(LW *self)
{
    if (!(self->flags & LW_OWN)) {
        if (self->real == NULL)
            PyErr_SetString(PyExc_AttributeError, "_real");
        return self->real;
    }
    PyObject *obj = PyObject_CallNoArgs(g_allocate_lock);
    if (obj == NULL)
        return NULL;
    if (!(self->flags & LW_OWN)) { /* made meanwhile: the call can run Python code (a collection) */
        Py_DECREF(obj);
        return real_of(self);
    }
    if (!g_lock_layout || !Py_IS_TYPE(obj, g_lock_type) || ((RealLock *)obj)->locked) {
        Py_DECREF(obj);
        PyErr_SetString(PyExc_RuntimeError, "lockwatch._core: allocate_lock() made another kind of lock");
        return NULL;
    }
    RealLock *r = (RealLock *)obj;
    PyThread_type_lock fresh = r->lock_lock;
    r->lock_lock = self->handle;
    r->locked = (self->flags & LW_LOCKED) != 0;
    self->flags &= ~(LW_OWN | LW_LOCKED);
    self->real = obj;
    PyThread_free_lock(fresh); /* new, so free */
    return obj;
}

/* The own handle freed, as the real lock's dealloc frees it (released first if taken). */
static void
own_free(LW *self)
{
    if (!(self->flags & LW_OWN))
        return;
    PyThread_type_lock h = self->handle;
    int taken = (self->flags & LW_LOCKED) != 0;
    self->flags &= ~(LW_OWN | LW_LOCKED);
    self->handle = NULL;
    if (taken)
        PyThread_release_lock(h);
    PyThread_free_lock(h);
}

/* A new Lock's own handle (or, without a verified layout, its real lock object): 0, or -1 with
   an exception (the real lock's). */
static int
own_lock_for(LW *self)
{
    if (!g_lock_layout) {
        self->real = PyObject_CallNoArgs(g_allocate_lock);
        return self->real != NULL ? 0 : -1;
    }
    self->handle = PyThread_allocate_lock();
    if (self->handle == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "can't allocate lock"); /* _thread.error's message */
        return -1;
    }
    self->flags |= LW_OWN;
    return 0;
}

/* A Lock's real_trylock(). */
static int
lock_trylock(LW *self)
{
    if (self->flags & LW_OWN)
        return own_trylock(self);
    PyObject *real = self->real;
    Py_INCREF(real);
    int ok = real_trylock(real, 0);
    Py_DECREF(real);
    return ok;
}

/* real_release() of the instance's lock. */
static int
lw_real_release(LW *self, int rlock)
{
    if ((self->flags & (LW_OWN | LW_LOCKED)) == (LW_OWN | LW_LOCKED)) {
        self->flags &= ~LW_LOCKED;
        PyThread_release_lock(self->handle);
        return 0;
    }
    PyObject *real = real_of(self); /* not taken: the real lock raises */
    if (real == NULL)
        return -1;
    Py_INCREF(real);
    int r = real_release(real, rlock);
    Py_DECREF(real);
    return r;
}

/* ---- recording ---------------------------------------------------------------------------- */

/* A recorded edge the compiled cores may count without Python: a recorder.Edge without gates,
   with a bool `timed` and an int `count` (anything else goes to proxies._before). */
static inline int
plain_known_edge(PyObject *e)
{
    if (!Py_IS_TYPE(e, g_edge_type))
        return 0;
    PyObject *gates = SLOT(e, g_off_gates);
    PyObject *timed = SLOT(e, g_off_timed);
    PyObject *count = SLOT(e, g_off_count);
    return gates != NULL && PyTuple_CheckExact(gates) && PyTuple_GET_SIZE(gates) == 0
           && (timed == Py_True || timed == Py_False) && count != NULL && PyLong_CheckExact(count);
}

/* proxies._sources(self, held) when the thread holds more than g_same_site_sources locks, all of
   them this core's instances: a new list (its new references dropped before new_edges() runs,
   which counts references to tell a dropped lock), or held itself (a new reference); NULL without
   an exception when proxies._before must decide (another kind of lock is held), with one on error. */
static PyObject *
sources_of(LW *self, PyObject *held)
{
    Py_ssize_t n = PyList_GET_SIZE(held);
    PyObject *site = self->site;
    Py_ssize_t same = 0, others = 0;
    PyObject *latest = NULL;
    for (Py_ssize_t i = n - 1; i >= 0 && same <= g_same_site_sources; i--) {
        PyObject *h = PyList_GET_ITEM(held, i);
        if (!IS_LW(h))
            return NULL;
        if (((LW *)h)->site == site) {
            if (latest == NULL)
                latest = h;
            same++;
        }
    }
    if (same <= g_same_site_sources) {
        Py_INCREF(held);
        return held;
    }
    /* the locks of other sites, in order, then the latest of its own */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = PyList_GET_ITEM(held, i);
        if (!IS_LW(h))
            return NULL;
        others += ((LW *)h)->site != site;
    }
    Py_INCREF(latest);
    PyObject *out = PyList_New(others + 1);
    if (out == NULL || PyList_GET_SIZE(held) != n) { /* (an allocation may run a finalizer) */
        Py_DECREF(latest);
        Py_XDECREF(out);
        return NULL;
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n && k < others; i++) {
        PyObject *h = PyList_GET_ITEM(held, i);
        if (((LW *)h)->site != site) {
            Py_INCREF(h);
            PyList_SET_ITEM(out, k++, h);
        }
    }
    if (k != others) {
        Py_DECREF(latest);
        Py_DECREF(out);
        return NULL;
    }
    PyList_SET_ITEM(out, k, latest); /* (takes the reference) */
    return out;
}

/* Is there an edge from h into self (ins: self's _in)? 1 yes, 0 no, -1 error. */
static int
has_edge_from(PyObject *ins, LW *h, PyObject **edge)
{
    *edge = NULL;
    if (ins == NULL || h->ext == NULL)
        return 0; /* no edge out of h yet (its _out would have made the extension) */
    PyObject *serial = serial_object(h);
    if (serial == NULL)
        return -1;
    *edge = PyDict_GetItemWithError(ins, serial);
    if (*edge == NULL)
        return PyErr_Occurred() ? -1 : 0;
    return 1;
}

/* proxies._before(lock, held, False) in C for a thread holding only this core's instances, whose
   known edges into `self` are ungated: their counts, then new_edges() for the new ones (the
   sources are proxies._sources': sources_of). Returns 1 when done, 0 when proxies._before must run
   instead (nothing changed then), -1 on error. */
static int
count_known_edges(LW *self, PyObject *held)
{
    if (!PyList_CheckExact(held) || g_edge_type == NULL)
        return 0;
    if (g_pending != NULL && PyDict_GET_SIZE(g_pending) > 0)
        return 0; /* releases handed over by other threads: _before drains them */
    PyObject *srcs;
    if (PyList_GET_SIZE(held) > g_same_site_sources) {
        if (g_new_edges == NULL)
            return 0;
        srcs = sources_of(self, held);
        if (srcs == NULL)
            return PyErr_Occurred() ? -1 : 0;
    }
    else {
        Py_INCREF(held);
        srcs = held;
    }
    PyObject *ins = self->ext != NULL ? self->ext->in : NULL;
    if (ins != NULL && !PyDict_CheckExact(ins))
        goto python;
    Py_ssize_t fresh = 0, known = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(srcs); i++) {
        PyObject *h = PyList_GET_ITEM(srcs, i);
        if (h == (PyObject *)self)
            continue;
        if (!IS_LW(h))
            goto python;
        PyObject *e;
        int r = has_edge_from(ins, (LW *)h, &e);
        if (r < 0)
            goto error;
        if (r == 0)
            fresh++;
        else if (!plain_known_edge(e))
            goto python; /* gated, or not as this core writes it */
        else
            known++;
    }
    if (fresh > 0 && g_new_edges == NULL)
        goto python;
    /* Nothing above ran Python code: the list and the edges are as checked. But an allocation
       below may collect garbage, and a finalizer run then may change the list or drop an edge (a
       lock dying): hold what is used, and look again each time. */
    if (known > 0) {
        Py_INCREF(ins);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(srcs); i++) {
            PyObject *h = PyList_GET_ITEM(srcs, i);
            if (h == (PyObject *)self || !IS_LW(h) || ((LW *)h)->ext == NULL || ((LW *)h)->ext->serial == NULL)
                continue;
            PyObject *e = PyDict_GetItemWithError(ins, ((LW *)h)->ext->serial);
            if (e == NULL) {
                if (PyErr_Occurred()) {
                    Py_DECREF(ins);
                    goto error;
                }
                continue; /* new (or dropped meanwhile: its source died) */
            }
            PyObject *count = SLOT(e, g_off_count);
            if (count == NULL || !PyLong_CheckExact(count))
                continue;
            Py_INCREF(e);
            int overflow = 0;
            long long c = PyLong_AsLongLongAndOverflow(count, &overflow);
            PyObject *next;
            if (overflow || c == LLONG_MAX) {
                PyObject *one = PyLong_FromLong(1);
                if (one == NULL) {
                    Py_DECREF(e);
                    Py_DECREF(ins);
                    goto error;
                }
                next = PyNumber_Add(count, one);
                Py_DECREF(one);
            }
            else {
                next = PyLong_FromLongLong(c + 1);
            }
            if (next == NULL) {
                Py_DECREF(e);
                Py_DECREF(ins);
                goto error;
            }
            count = SLOT(e, g_off_count);
            SLOT(e, g_off_count) = next;
            Py_XDECREF(count);
            if (SLOT(e, g_off_held_ref) != held) {
                PyObject *old = SLOT(e, g_off_multi);
                Py_INCREF(Py_True);
                SLOT(e, g_off_multi) = Py_True;
                Py_XDECREF(old);
            }
            if (SLOT(e, g_off_timed) == Py_True) {
                Py_INCREF(Py_False);
                SLOT(e, g_off_timed) = Py_False;
                Py_DECREF(Py_True);
            }
            Py_DECREF(e);
        }
        Py_DECREF(ins);
    }
    if (fresh == 0) {
        Py_DECREF(srcs);
        return 1;
    }
    /* The new edges, recorded together (recorder.new_edges, as proxies._before calls it). */
    ins = self->ext != NULL ? self->ext->in : NULL; /* (may have been made meanwhile) */
    PyObject *list = PyList_New(0);
    if (list == NULL)
        goto error;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(srcs); i++) {
        PyObject *h = PyList_GET_ITEM(srcs, i);
        if (h == (PyObject *)self || !IS_LW(h))
            continue;
        PyObject *e;
        int r = has_edge_from(ins, (LW *)h, &e);
        if (r < 0 || (r == 0 && PyList_Append(list, h) < 0)) {
            Py_DECREF(list);
            goto error;
        }
    }
    Py_DECREF(srcs); /* before new_edges() counts the references to each source */
    PyObject *args[5] = {list, (PyObject *)self, held, Py_False, g_one};
    PyObject *res = PyList_GET_SIZE(list) ? PyObject_Vectorcall(g_new_edges, args, 5, NULL) : NULL;
    int empty = PyList_GET_SIZE(list) == 0;
    Py_DECREF(list);
    if (res == NULL && !empty)
        return -1;
    Py_XDECREF(res);
    return 1;
python:
    Py_DECREF(srcs);
    return 0;
error:
    Py_DECREF(srcs);
    return -1;
}

static int
before(LW *self, PyObject *held)
{
    int r = count_known_edges(self, held);
    if (r != 0)
        return r < 0 ? -1 : 0;
    PyObject *args[3] = {(PyObject *)self, held, Py_False};
    PyObject *res = PyObject_Vectorcall(g_before, args, 3, NULL);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

/* proxies._wait(lock, real): block (in Python: interruptible) and count the wait. */
static int
wait_for(LW *self, PyObject *real, long long *t)
{
    PyObject *args[2] = {(PyObject *)self, real};
    PyObject *res = PyObject_Vectorcall(g_wait, args, 2, NULL);
    if (res == NULL)
        return -1;
    *t = PyLong_AsLongLong(res);
    Py_DECREF(res);
    if (*t == -1 && PyErr_Occurred())
        return -1;
    return 0;
}

/* frame.f_lasti: the frame's current instruction offset. */
static inline int
frame_lasti(PyFrameObject *f)
{
#if PY_VERSION_HEX >= 0x030B0000
    return PyFrame_GetLasti(f);
#elif PY_VERSION_HEX >= 0x030A0000
    return f->f_lasti < 0 ? -1 : f->f_lasti * 2;
#else
    return f->f_lasti;
#endif
}

/* Where the caller took the lock: its code object and instruction offset (frame.f_lasti). */
static void
record_site(LW *self)
{
    PyFrameObject *f = PyEval_GetFrame(); /* the caller: a C method pushes no frame */
    PyObject *code;
    long long lasti;
    if (f == NULL) {
        Py_INCREF(Py_None);
        code = Py_None;
        lasti = -1;
    }
    else {
        code = (PyObject *)PyFrame_GetCode(f);
        lasti = frame_lasti(f);
    }
    PyObject *old = self->at_code;
    self->at_code = code;
    Py_XDECREF(old);
    self->at_lasti = (int)lasti;
}

/* histogram.bucket_of(d): the log-linear scale (lockwatch/histogram.py), d below 64 ns exact,
   then 32 buckets per power of two. */
static inline int
bit_length(unsigned long long v)
{
#if defined(__GNUC__) || defined(__clang__)
    return v ? 64 - __builtin_clzll(v) : 0;
#else
    int n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
#endif
}

static inline Py_ssize_t
bucket_of(long long d)
{
    if (d < 64)
        return d > 0 ? (Py_ssize_t)d : 0;
    int shift = bit_length((unsigned long long)d) - 6;
    return ((Py_ssize_t)shift << 5) + (Py_ssize_t)(d >> shift);
}

/* next(hh[histogram.bucket_of(d)]), as proxies.py writes it inline; a bucket's first duration
   goes through histogram.add, which makes its counter (dict.setdefault: atomic). */
static int
count_hold(PyObject *hh, long long d)
{
    PyObject *key = PyLong_FromSsize_t(bucket_of(d));
    if (key == NULL)
        return -1;
    PyObject *counter;
    if (PyDict_CheckExact(hh)) {
        counter = PyDict_GetItemWithError(hh, key); /* borrowed; an int key runs no Python code */
        Py_XINCREF(counter);
    }
    else {
        counter = PyObject_GetItem(hh, key);
        if (counter == NULL && PyErr_ExceptionMatches(PyExc_KeyError))
            PyErr_Clear();
    }
    Py_DECREF(key);
    if (counter == NULL) {
        if (PyErr_Occurred())
            return -1;
        PyObject *dd = PyLong_FromLongLong(d);
        if (dd == NULL)
            return -1;
        PyObject *args[2] = {hh, dd};
        PyObject *res = PyObject_Vectorcall(g_count, args, 2, NULL);
        Py_DECREF(dd);
        if (res == NULL)
            return -1;
        Py_DECREF(res);
        return 0;
    }
    PyObject *v = PyIter_Next(counter);
    Py_DECREF(counter);
    if (v == NULL)
        return PyErr_Occurred() ? -1 : 0;
    Py_DECREF(v);
    return 0;
}

/* ---- a site's hold counts (the compiled core's) ------------------------------------------- */

/* The hold histogram's counts as the compiled core keeps them: one C counter per bucket, in rows
   of 32 (a power of two of the log-linear scale; rows 0 and 1 are the exact durations below
   64 ns), a row allocated at its first duration. A site (recorder.Site.hold_fast) has one, made
   at its first hold released here; instances of a site share it. Incremented with the GIL held,
   as every other counter of the hot path: one add where the dict of itertools.count counters
   (histogram.new_counters) took a dict lookup keyed by a new int and a call of next() (~430
   instructions of 3,036 per `with lock: pass`, callgrind, 3.11). The pure-Python core and the
   compiled core's rare paths still count in hold_hist; reading adds both
   (recorder.Site.hold_counts). Size: 488 bytes, and 256 per row in use (a dict counter was
   100-140 bytes per bucket in use). */
#define HC_ROW_BITS 5
#define HC_ROWS 59 /* histogram.NBUCKETS / 32: every duration below 2**63 ns has a row */

typedef struct {
    PyObject_HEAD
    long long total, max; /* the site's holds' total and longest, ns (see "hold totals") */
    unsigned long long *rows[HC_ROWS];
} HoldCounts;

static void
hc_dealloc(HoldCounts *self)
{
    for (int r = 0; r < HC_ROWS; r++)
        PyMem_Free(self->rows[r]);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* read(): the counts, {bucket index: count} for the buckets counted in, in index order. */
static PyObject *
hc_read(HoldCounts *self, PyObject *unused)
{
    PyObject *out = PyDict_New();
    if (out == NULL)
        return NULL;
    for (int r = 0; r < HC_ROWS; r++) {
        unsigned long long *row = self->rows[r];
        if (row == NULL)
            continue;
        for (int c = 0; c < (1 << HC_ROW_BITS); c++) {
            if (row[c] == 0)
                continue;
            PyObject *k = PyLong_FromLong(((long)r << HC_ROW_BITS) + c);
            PyObject *v = k ? PyLong_FromUnsignedLongLong(row[c]) : NULL;
            int e = v ? PyDict_SetItem(out, k, v) : -1;
            Py_XDECREF(k);
            Py_XDECREF(v);
            if (e < 0) {
                Py_DECREF(out);
                return NULL;
            }
        }
    }
    return out;
}

/* add(d): count one duration d (ns), as a release does. */
static int count_in(HoldCounts *hc, long long d);

static PyObject *
hc_add(HoldCounts *self, PyObject *arg)
{
    long long d = PyLong_AsLongLong(arg);
    if (d == -1 && PyErr_Occurred())
        return NULL;
    if (count_in(self, d) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMemberDef hc_members[] = {
    {"total", T_LONGLONG, offsetof(HoldCounts, total), READONLY, "the holds' total duration, ns"},
    {"max", T_LONGLONG, offsetof(HoldCounts, max), READONLY, "the longest hold, ns"},
    {NULL},
};

static PyMethodDef hc_methods[] = {
    {"read", (PyCFunction)hc_read, METH_NOARGS,
     "read(): {bucket index: count} of the buckets counted in, in index order."},
    {"add", (PyCFunction)hc_add, METH_O, "add(d): count one duration d (ns)."},
    {NULL},
};

static PyTypeObject HoldCountsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lockwatch._core.HoldCounts",
    .tp_basicsize = sizeof(HoldCounts),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A site's hold histogram as the compiled core counts it (see recorder.Site.hold_counts).",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)hc_dealloc,
    .tp_methods = hc_methods,
    .tp_members = hc_members,
};

static int
count_in(HoldCounts *hc, long long d)
{
    Py_ssize_t i = bucket_of(d);
    unsigned long long *row = hc->rows[i >> HC_ROW_BITS];
    if (row == NULL) {
        row = PyMem_Calloc(1 << HC_ROW_BITS, sizeof(*row));
        if (row == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        hc->rows[i >> HC_ROW_BITS] = row;
    }
    row[i & ((1 << HC_ROW_BITS) - 1)] += 1;
    return 0;
}

/* A recorder.Site's HoldCounts (borrowed), made here at the site's first hold: the slot is None
   until then, and again after recorder.forget_activity. NULL with an exception. */
static HoldCounts *
site_hold_counts(PyObject *site)
{
    PyObject *hc = SLOT(site, g_off_hold_fast);
    if (hc == NULL || !Py_IS_TYPE(hc, &HoldCountsType)) {
        PyObject *made = PyType_GenericNew(&HoldCountsType, NULL, NULL);
        if (made == NULL)
            return NULL;
        SLOT(site, g_off_hold_fast) = made;
        Py_XDECREF(hc);
        hc = made;
    }
    return (HoldCounts *)hc;
}

/* Count a hold of d ns in the site's HoldCounts. */
static int
count_hold_fast(PyObject *site, long long d)
{
    HoldCounts *hc = site_hold_counts(site);
    return hc != NULL ? count_in(hc, d) : -1;
}

/* ---- hold totals -------------------------------------------------------------------------- */

/* The instances of the compiled core count their holds' total and longest duration in their site,
   not each in its own two fields (16 bytes an instance: a live Lock is 170 bytes, not 186, under
   tracemalloc), as the pure-Python core's instances fold theirs into the site when they die
   (recorder.fold_instance): a report, which adds up a site's instances, is the same. A
   recorder.Site keeps them in its HoldCounts (total, max; snapshot.py adds them to the site's
   hold_total and hold_max); any other site in those two attributes. An instance's `_hold_tot` and
   `_hold_max` read 0, and setting them counts in the site: `lock._hold_tot += d` adds d, and
   `lock._hold_max = d` makes d the site's longest if it is longer (proxies' Python paths write
   them so); setting 0 (recorder.forget_activity) changes nothing. Under the GIL, as the rest. */
static int
site_attr_add(PyObject *site, const char *name, long long v, int as_max)
{
    PyObject *cur = PyObject_GetAttrString(site, name);
    if (cur == NULL)
        return -1;
    long long c = PyLong_AsLongLong(cur);
    Py_DECREF(cur);
    if (c == -1 && PyErr_Occurred())
        return -1;
    long long n = as_max ? (v > c ? v : c) : c + v;
    if (n == c)
        return 0;
    PyObject *o = PyLong_FromLongLong(n);
    if (o == NULL)
        return -1;
    int r = PyObject_SetAttrString(site, name, o);
    Py_DECREF(o);
    return r;
}

/* Add d ns to the site's total (total) or make it the longest if longer (!total): 0, or -1. */
static int
site_hold_add(PyObject *site, long long d, int total)
{
    if (site == NULL) {
        PyErr_SetString(PyExc_AttributeError, "instance not initialised (lockwatch.proxies._init)");
        return -1;
    }
    if (g_site_type != NULL && Py_IS_TYPE(site, g_site_type)) {
        HoldCounts *hc = site_hold_counts(site);
        if (hc == NULL)
            return -1;
        if (total)
            hc->total += d;
        else if (d > hc->max)
            hc->max = d;
        return 0;
    }
    return site_attr_add(site, total ? "hold_total" : "hold_max", d, !total);
}

static inline void
set_held_in(LW *self, PyObject *value)
{
    PyObject *old = self->held_in;
    Py_INCREF(value);
    self->held_in = value;
    Py_XDECREF(old);
}

static int
ready(LW *self)
{
    if (!g_configured) {
        PyErr_SetString(PyExc_RuntimeError, "lockwatch._core is not configured");
        return 0;
    }
    if (self->real == NULL || self->site == NULL || self->held_in == NULL) {
        PyErr_SetString(PyExc_AttributeError, "instance not initialised (lockwatch.proxies._init)");
        return 0;
    }
    return 1;
}

/* The end of a fresh acquisition: where, when, one more, and on the thread's held list. */
static int
took(LW *self, PyObject *held, long long t, int rlock)
{
    record_site(self);
    if (rlock)
        self->depth = 1;
    self->t = t;
    self->n += 1;
    set_held_in(self, held);
    return PyList_Append(held, (PyObject *)self);
}

/* ---- Lock --------------------------------------------------------------------------------- */

static PyObject *
lock_enter_impl(LW *self)
{
    if (!ready(self))
        return NULL;
    PyObject *held;
    if (held_list(&held, 1) < 0)
        return NULL;
    if (PyList_GET_SIZE(held) && before(self, held) < 0)
        goto error;
    long long t;
    int ok = lock_trylock(self);
    if (ok > 0)
        t = now_ns();
    else {
        PyObject *real = ok == 0 ? real_of(self) : NULL; /* proxies._wait blocks in its acquire() */
        if (real == NULL)
            goto error;
        Py_INCREF(real);
        ok = wait_for(self, real, &t);
        Py_DECREF(real);
        if (ok < 0)
            goto error;
    }
    if (took(self, held, t, 0) < 0)
        goto error;
    Py_DECREF(held);
    Py_RETURN_TRUE;
error:
    Py_DECREF(held);
    return NULL;
}

static PyObject *
delegate(PyObject *func, PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *small[8];
    PyObject **stack = small;
    if (total + 1 > 8) {
        stack = PyMem_Malloc((size_t)(total + 1) * sizeof(PyObject *));
        if (stack == NULL)
            return PyErr_NoMemory();
    }
    stack[0] = self;
    for (Py_ssize_t i = 0; i < total; i++)
        stack[i + 1] = args[i];
    PyObject *res = PyObject_Vectorcall(func, stack, nargs + 1, kwnames);
    if (stack != small)
        PyMem_Free(stack);
    return res;
}

static PyObject *
lock_acquire(LW *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0))
        return lock_enter_impl(self);
    if (!g_configured)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core is not configured");
    return delegate(g_py_lock_acquire, (PyObject *)self, args, nargs, kwnames);
}

static PyObject *
lock_enter(LW *self, PyObject *unused)
{
    return lock_enter_impl(self);
}

static PyObject *
release_slow(LW *self, long long t)
{
    PyObject *tt = PyLong_FromLongLong(t);
    if (tt == NULL)
        return NULL;
    PyObject *args[2] = {(PyObject *)self, tt};
    PyObject *res = PyObject_Vectorcall(g_release_slow, args, 2, NULL);
    Py_DECREF(tt);
    return res;
}

/* The end of a hold: the counters (before the real release: the lock guards them), the real
   release, the histogram. */
static PyObject *
end_hold(LW *self, long long t, int rlock)
{
    /* A recorder.Site counts in its HoldCounts; anything else in its hold_hist dict. */
    PyObject *site = self->site, *hh = NULL;
    int fast = site != NULL && g_site_type != NULL && Py_IS_TYPE(site, g_site_type);
    if (!fast && (hh = hold_hist_of(self)) == NULL)
        return NULL;
    Py_INCREF(site);
    long long d = t - self->t;
    if (fast) {
        HoldCounts *hc = site_hold_counts(site);
        if (hc == NULL) {
            Py_DECREF(site);
            return NULL;
        }
        hc->total += d;
        if (d > hc->max)
            hc->max = d;
    }
    else if (site_hold_add(site, d, 1) < 0 || site_hold_add(site, d, 0) < 0) {
        Py_DECREF(site);
        Py_XDECREF(hh);
        return NULL;
    }
    /* The holder's list moves to _last (who released it last: a join while holding it asks). */
    PyObject *held = self->held_in, *prev = self->last;
    Py_INCREF(g_empty);
    self->held_in = g_empty;
    if (held != g_empty) {
        self->last = held;
        Py_XDECREF(prev);
    }
    else
        Py_XDECREF(held);
    if (rlock)
        self->depth = 0;
    int r = lw_real_release(self, rlock);
    if (r == 0)
        r = fast ? count_hold_fast(site, d) : count_hold(hh, d);
    Py_DECREF(site);
    Py_XDECREF(hh);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
lock_release(LW *self, PyObject *unused)
{
    long long t = now_ns();
    if (!ready(self))
        return NULL;
    PyObject *held = self->held_in;
    Py_ssize_t n;
    if (!PyList_CheckExact(held) || (n = PyList_GET_SIZE(held)) == 0
            || PyList_GET_ITEM(held, n - 1) != (PyObject *)self)
        return release_slow(self, t);
    /* Only the holder pops its own list (held lists are changed by their own thread only). */
    PyObject *mine;
    if (held_list(&mine, 0) < 0)
        return NULL;
    Py_XDECREF(mine); /* only compared */
    if (mine != held)
        return release_slow(self, t);
    /* pop(): the list keeps its allocation, as list.pop() does for a shrink by one. */
    Py_SET_SIZE(held, n - 1);
    PyObject *r = end_hold(self, t, 0);
    Py_DECREF((PyObject *)self); /* the list's reference: the caller holds another */
    return r;
}

static PyObject *
lock_exit(LW *self, PyObject *const *args, Py_ssize_t nargs)
{
    return lock_release(self, NULL);
}

/* ---- RLock -------------------------------------------------------------------------------- */

static PyObject *
rlock_enter_impl(LW *self)
{
    if (!ready(self))
        return NULL;
    PyObject *held;
    if (held_list(&held, 1) < 0)
        return NULL;
    PyObject *real = self->real;
    Py_INCREF(real);
    if (self->held_in == held) { /* re-entry by the owner */
        if (real_rlock_reenter(real) < 0)
            goto error;
        self->depth += 1;
        goto done;
    }
    if (PyList_GET_SIZE(held) && before(self, held) < 0)
        goto error;
    long long t;
    int ok = real_trylock(real, 1);
    if (ok > 0)
        t = now_ns();
    else if (ok < 0 || wait_for(self, real, &t) < 0)
        goto error;
    if (took(self, held, t, 1) < 0)
        goto error;
done:
    Py_DECREF(real);
    Py_DECREF(held);
    Py_RETURN_TRUE;
error:
    Py_DECREF(real);
    Py_DECREF(held);
    return NULL;
}

static PyObject *
rlock_acquire(LW *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0))
        return rlock_enter_impl(self);
    if (!g_configured)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core is not configured");
    return delegate(g_py_rlock_acquire, (PyObject *)self, args, nargs, kwnames);
}

static PyObject *
rlock_enter(LW *self, PyObject *unused)
{
    return rlock_enter_impl(self);
}

static PyObject *
rlock_release(LW *self, PyObject *unused)
{
    if (!ready(self))
        return NULL;
    PyObject *held = self->held_in;
    PyObject *mine;
    if (held_list(&mine, 0) < 0)
        return NULL;
    Py_XDECREF(mine); /* only compared */
    if (held != mine || !PyList_CheckExact(held)) /* not the owner: the real lock raises */
        return delegate(g_py_rlock_release, (PyObject *)self, NULL, 0, NULL);
    if (self->depth > 1) {
        self->depth -= 1;
        if (real_release(self->real, 1) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    long long t = now_ns();
    /* The latest entry of this lock, by identity (proxies._unhold): usually the top. */
    for (Py_ssize_t i = PyList_GET_SIZE(held) - 1; i >= 0; i--) {
        if (PyList_GET_ITEM(held, i) == (PyObject *)self) {
            Py_ssize_t n = PyList_GET_SIZE(held);
            if (i == n - 1) {
                Py_SET_SIZE(held, n - 1);
                Py_DECREF((PyObject *)self);
            }
            else if (PyList_SetSlice(held, i, i + 1, NULL) < 0)
                return NULL;
            break;
        }
    }
    return end_hold(self, t, 1);
}

static PyObject *
rlock_exit(LW *self, PyObject *const *args, Py_ssize_t nargs)
{
    return rlock_release(self, NULL);
}

/* ---- Condition ---------------------------------------------------------------------------- */

/* __enter__, __exit__, notify and notify_all of lockwatch.primitives.Condition (a subclass of
   threading.Condition): method descriptors of threading.Condition made here (condition_methods),
   which primitives.py puts in its class. What they do is what primitives.Condition's Python
   methods and threading.Condition's own do (both stay: the pure-Python core's, and what these
   call for any case but the common one):

   - __enter__/__exit__ take and release the Condition's lock through its compiled methods when
     it is lockwatch's own Lock or RLock (exactly those classes: a confirmation run's steered
     subclasses go through Python); a C method pushes no frame, so the lock records the frame of
     the `with` statement, which primitives.Condition.__enter__ records by hand. Any other lock:
     primitives' __enter__, and threading's `self._lock.__exit__(*args)`.
   - notify: primitives.Condition.notify's common case, the thread holding no lock but the
     Condition's own (else primitives' notify, which calls lockwatch.waits), and then
     threading.Condition.notify, which does nothing but check the lock is owned when no thread
     waits (the common case: a put with no getter waiting, a Future finished before anyone asks
     for its result); with waiters, threading's notify.
   - notify_all: threading's, `self.notify(len(self._waiters))`. */

static PyObject *g_cond_lock_cls, *g_cond_rlock_cls; /* proxies.Lock, proxies.RLock (exact types) */
static PyObject *g_cond_py_enter;    /* primitives.Condition.__enter__ (pure Python) */
static PyObject *g_cond_py_notify;   /* primitives.Condition.notify (pure Python) */
static PyObject *g_cond_orig_notify; /* threading.Condition.notify */
static PyObject *g_waits_dict;       /* lockwatch.waits.__dict__: its `active` */
static PyObject *g_deque_type;       /* collections.deque: a Condition's _waiters */
static Py_ssize_t g_max_wakers;      /* waits.MAX_WAKERS */
static PyObject *g_cond_notify_descr; /* notify below: a subclass may have its own */
static PyObject *s__lock, *s__waiters, *s__is_owned, *s_notify, *s__lockwatch_wakers, *s_active, *s___exit__;

static PyObject *
cond_enter(PyObject *self, PyObject *unused)
{
    if (g_cond_py_enter == NULL)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core's Condition methods are not configured");
    PyObject *lock = PyObject_GetAttr(self, s__lock);
    if (lock == NULL)
        return NULL;
    PyObject *r;
    if ((PyObject *)Py_TYPE(lock) == g_cond_rlock_cls)
        r = rlock_enter_impl((LW *)lock);
    else if ((PyObject *)Py_TYPE(lock) == g_cond_lock_cls)
        r = lock_enter_impl((LW *)lock);
    else
        r = PyObject_CallOneArg(g_cond_py_enter, self);
    Py_DECREF(lock);
    return r;
}

static PyObject *
cond_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (g_cond_py_enter == NULL)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core's Condition methods are not configured");
    PyObject *lock = PyObject_GetAttr(self, s__lock);
    if (lock == NULL)
        return NULL;
    PyObject *r;
    if ((PyObject *)Py_TYPE(lock) == g_cond_rlock_cls)
        r = rlock_release((LW *)lock, NULL);
    else if ((PyObject *)Py_TYPE(lock) == g_cond_lock_cls)
        r = lock_release((LW *)lock, NULL);
    else {
        PyObject *exit = PyObject_GetAttr(lock, s___exit__);
        r = exit == NULL ? NULL : PyObject_Vectorcall(exit, args, (size_t)nargs, NULL);
        Py_XDECREF(exit);
    }
    Py_DECREF(lock);
    return r;
}

/* func(self) or func(self, n) */
static PyObject *
call_with_n(PyObject *func, PyObject *self, PyObject *n)
{
    PyObject *args[2] = {self, n};
    return PyObject_Vectorcall(func, args, n == NULL ? 1 : 2, NULL);
}

/* self._is_owned(): the one Condition.__init__ set from its lock when that is this core's RLock
   (exactly proxies.RLock._is_owned, `self._real._is_owned()`; an RLock always has its real lock
   object), called here without its Python frame (a Future's set_result and a Queue's put and get
   each notify once); any other, as it is (a Lock's _is_owned is compiled already: lock_locked). */
static PyObject *
cond_is_owned(PyObject *self)
{
    PyObject *m = PyObject_GetAttr(self, s__is_owned);
    if (m == NULL)
        return NULL;
    PyObject *r;
    PyObject *lock = PyMethod_Check(m) ? PyMethod_GET_SELF(m) : NULL;
    if (lock != NULL && (PyObject *)Py_TYPE(lock) == g_cond_rlock_cls
            && PyMethod_GET_FUNCTION(m) == _PyType_Lookup(Py_TYPE(lock), s__is_owned)
            && ((LW *)lock)->real != NULL) {
        PyObject *real = ((LW *)lock)->real;
        Py_INCREF(real);
        r = PyObject_CallMethodNoArgs(real, s__is_owned);
        Py_DECREF(real);
    }
    else
        r = PyObject_CallNoArgs(m);
    Py_DECREF(m);
    return r;
}

/* notify(self, n) with n a borrowed reference, or NULL for the default (1). */
static PyObject *
cond_notify_impl(PyObject *self, PyObject *n)
{
    PyObject *active = PyDict_GetItemWithError(g_waits_dict, s_active); /* borrowed */
    if (active == NULL && PyErr_Occurred())
        return NULL;
    int on = active == NULL ? 0 : PyObject_IsTrue(active);
    if (on < 0)
        return NULL;
    if (on) {
        PyObject *held;
        if (held_list(&held, 0) < 0)
            return NULL;
        if (held != NULL) {
            int other = 0;
            if (!PyList_Check(held))
                other = 1; /* not a list: let the Python code make sense of it */
            else if (PyList_GET_SIZE(held) > 1)
                other = 1;
            else if (PyList_GET_SIZE(held) == 1) {
                PyObject *lock = PyObject_GetAttr(self, s__lock);
                if (lock == NULL) {
                    Py_DECREF(held);
                    return NULL;
                }
                other = PyList_GET_ITEM(held, 0) != lock;
                Py_DECREF(lock);
            }
            Py_DECREF(held);
            if (other) /* waits.condition_notified: the wake edges, all in Python */
                return call_with_n(g_cond_py_notify, self, n);
        }
        /* A Queue's Condition keeps the threads that notified it (waits._mark_queue). */
        PyObject *wakers = PyObject_GetAttr(self, s__lockwatch_wakers);
        if (wakers == NULL)
            return NULL;
        if (wakers != Py_None) {
            if (!Py_IS_TYPE(wakers, &PySet_Type)) { /* (PySet_CheckExact: 3.10+) */
                Py_DECREF(wakers);
                return call_with_n(g_cond_py_notify, self, n);
            }
            PyObject *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
            int r = ident == NULL ? -1 : PySet_Contains(wakers, ident);
            if (r == 0 && PySet_GET_SIZE(wakers) < g_max_wakers)
                r = PySet_Add(wakers, ident);
            Py_XDECREF(ident);
            Py_DECREF(wakers);
            if (r < 0)
                return NULL;
        }
        else
            Py_DECREF(wakers);
    }
    /* threading.Condition.notify with nobody waiting: only the ownership check (its loop,
       `while waiters and n > 0`, never looks at n then; the same in 3.9 to 3.13). */
    PyObject *waiters = PyObject_GetAttr(self, s__waiters);
    if (waiters == NULL)
        return NULL;
    Py_ssize_t len = (PyObject *)Py_TYPE(waiters) == g_deque_type ? PyObject_Size(waiters) : -1;
    Py_DECREF(waiters);
    if (len == 0) {
        PyObject *owned = cond_is_owned(self);
        if (owned == NULL)
            return NULL;
        int t = PyObject_IsTrue(owned);
        Py_DECREF(owned);
        if (t < 0)
            return NULL;
        if (!t)
            return PyErr_Format(PyExc_RuntimeError, "cannot notify on un-acquired lock");
        Py_RETURN_NONE;
    }
    if (len < 0 && PyErr_Occurred())
        return NULL;
    return call_with_n(g_cond_orig_notify, self, n);
}

static PyObject *
cond_notify(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (g_cond_py_notify == NULL)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core's Condition methods are not configured");
    if (nargs > 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) /* let Python sort it out */
        return delegate(g_cond_py_notify, self, args, nargs, kwnames);
    return cond_notify_impl(self, nargs ? args[0] : NULL);
}

static PyObject *
cond_notify_all(PyObject *self, PyObject *unused)
{
    if (g_cond_py_notify == NULL)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core's Condition methods are not configured");
    PyObject *waiters = PyObject_GetAttr(self, s__waiters);
    if (waiters == NULL)
        return NULL;
    Py_ssize_t len = PyObject_Size(waiters);
    Py_DECREF(waiters);
    if (len < 0)
        return NULL;
    PyObject *n = PyLong_FromSsize_t(len);
    if (n == NULL)
        return NULL;
    PyObject *r;
    if (_PyType_Lookup(Py_TYPE(self), s_notify) == g_cond_notify_descr)
        r = cond_notify_impl(self, n);
    else /* a subclass's own notify */
        r = PyObject_CallMethodOneArg(self, s_notify, n);
    Py_DECREF(n);
    return r;
}

static PyMethodDef cond_enter_def = {"__enter__", (PyCFunction)cond_enter, METH_NOARGS, NULL};
static PyMethodDef cond_exit_def = {"__exit__", (PyCFunction)(void (*)(void))cond_exit, METH_FASTCALL, NULL};
static PyMethodDef cond_notify_def = {
    "notify", (PyCFunction)(void (*)(void))cond_notify, METH_FASTCALL | METH_KEYWORDS,
    "Wake up one or more threads waiting on this condition, if any (threading.Condition.notify, recorded)."};
static PyMethodDef cond_notify_all_def = {
    "notify_all", (PyCFunction)cond_notify_all, METH_NOARGS,
    "Wake up all threads waiting on this condition (threading.Condition.notify_all, recorded)."};

/* {name: method descriptor of cls} for each of defs; *found: the one of want (borrowed: the
   dict holds it). condition_methods and semaphore_methods install these. */
static PyObject *
method_descriptors(PyTypeObject *cls, PyMethodDef *const *defs, size_t n, const PyMethodDef *want,
                   PyObject **found)
{
    PyObject *out = PyDict_New();
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *d = PyDescr_NewMethod(cls, defs[i]);
        if (d == NULL || PyDict_SetItemString(out, defs[i]->ml_name, d) < 0) {
            Py_XDECREF(d);
            Py_DECREF(out);
            return NULL;
        }
        if (defs[i] == want)
            *found = d;
        Py_DECREF(d);
    }
    return out;
}

/* *slots[i] = values[i] (new references; the old ones released) for the n globals given. */
static void
set_globals(PyObject **const *slots, PyObject *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Py_INCREF(values[i]);
        Py_XSETREF(*slots[i], values[i]);
    }
}

/* condition_methods(cls, lock_cls, rlock_cls, py_enter, py_notify, orig_notify, waits_dict,
   max_wakers, deque): {name: method descriptor of cls} for primitives.Condition. */
static PyObject *
condition_methods(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyType_Check(args[2])
            || !PyDict_Check(args[6]) || !PyType_Check(args[8]))
        return PyErr_Format(PyExc_TypeError, "condition_methods(cls, lock_cls, rlock_cls, py_enter, py_notify, "
                                             "orig_notify, waits_dict, max_wakers, deque)");
    Py_ssize_t max_wakers = PyLong_AsSsize_t(args[7]);
    if (max_wakers == -1 && PyErr_Occurred())
        return NULL;
    PyMethodDef *defs[] = {&cond_enter_def, &cond_exit_def, &cond_notify_def, &cond_notify_all_def};
    PyObject *notify = NULL;
    PyObject *out = method_descriptors((PyTypeObject *)args[0], defs, sizeof(defs) / sizeof(defs[0]),
                                       &cond_notify_def, &notify);
    if (out == NULL)
        return NULL;
    PyObject **slots[] = {&g_cond_lock_cls, &g_cond_rlock_cls, &g_cond_py_enter, &g_cond_py_notify,
                          &g_cond_orig_notify, &g_waits_dict, &g_deque_type};
    PyObject *values[] = {args[1], args[2], args[3], args[4], args[5], args[6], args[8]};
    set_globals(slots, values, sizeof(slots) / sizeof(slots[0]));
    Py_INCREF(notify);
    Py_XSETREF(g_cond_notify_descr, notify);
    g_max_wakers = max_wakers;
    return out;
}

/* ---- Condition: creation ------------------------------------------------------------------- */

/* __new__ and __init__ of primitives.Condition (every concurrent.futures.Future makes one):
   condition_creation() makes them, primitives.py puts them in its class. They do what its Python
   __new__ and __init__ do (both stay: the pure-Python core's, and what these call for any case but
   the common one):

   - __new__(cls) or __new__(cls, lock): a Condition that threading.py itself makes stays
     threading's own (primitives._internal_caller: the creating frame's file is threading's), any
     other is object.__new__(cls). A subclass, keyword arguments or a wrong count: the Python
     __new__.
   - __init__(self) or __init__(self, None): the Condition's own RLock, made as the factories make
     one (new_instance) for a site cached by the creating instruction (kind "Condition", asked
     once of patching._site_verdict, as lock_factory does), then the attributes
     threading.Condition.__init__ sets from it. A lock given, a confirmation run's steered RLock
     (primitives.RLock replaced), or an instruction whose verdict is not a Site (lockwatch's or
     threading's own code, a factory function): the Python __init__. */

#define KIND_CONDITION 2 /* site_cache_get's kind: 0 Lock, 1 RLock (make_for_caller) */

static PyObject *new_instance(int rlock, PyObject *site);
static PyObject *site_cache_get(PyObject *code, int lasti, int kind);
static int site_cache_put(PyObject *code, int lasti, int kind, PyObject *value);

static PyObject *g_cond_py_new, *g_cond_py_init; /* primitives.Condition's Python __new__, __init__ */
static PyObject *g_cond_cls;                      /* primitives.Condition */
static PyObject *g_cond_orig_cls;                 /* threading.Condition */
static PyObject *g_cond_threading_file;           /* threading.__file__ */
static PyObject *g_primitives_dict;               /* primitives.__dict__: its RLock and _RLock */
static PyObject *s_RLock, *s__RLock, *s_Condition, *s__release_save, *s__acquire_restore;

static PyObject *
cond_new(PyObject *mod, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (g_cond_py_new == NULL)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core's Condition creation is not configured");
    /* (a subclass: super() follows its MRO, which may hold another __new__) */
    if (nargs < 1 || nargs > 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) || args[0] != g_cond_cls)
        return PyObject_Vectorcall(g_cond_py_new, args, (size_t)nargs, kwnames);
    PyFrameObject *f = PyEval_GetFrame(); /* borrowed: the caller (this and type() push none) */
    if (f != NULL) {
        PyCodeObject *code = PyFrame_GetCode(f);
        int internal = PyObject_RichCompareBool(code->co_filename, g_cond_threading_file, Py_EQ);
        Py_DECREF(code);
        if (internal < 0)
            return NULL;
        if (internal) /* OrigCondition(lock) */
            return PyObject_Vectorcall(g_cond_orig_cls, args + 1, (size_t)(nargs - 1), NULL);
    }
    return PyBaseObject_Type.tp_new((PyTypeObject *)args[0], g_empty, NULL); /* super().__new__(cls) */
}

/* The site of the Condition's own lock made by frame f: borrowed, NULL with *fallback set when
   the Python __init__ must make it, NULL without on error. */
static PyObject *
cond_lock_site(PyFrameObject *f, int *fallback)
{
    *fallback = 0;
    PyObject *code = (PyObject *)PyFrame_GetCode(f);
    int lasti = frame_lasti(f);
    PyObject *v = site_cache_get(code, lasti, KIND_CONDITION); /* borrowed */
    if (v == NULL) {
        PyObject *args[2] = {(PyObject *)f, s_Condition};
        PyObject *verdict = PyObject_Vectorcall(g_site_verdict, args, 2, NULL);
        if (verdict == NULL) {
            Py_DECREF(code);
            return NULL;
        }
        /* A Site or False is kept; None (more than the instruction decides) is asked again. */
        if (verdict != Py_None && site_cache_put(code, lasti, KIND_CONDITION, verdict) < 0) {
            Py_DECREF(verdict);
            Py_DECREF(code);
            return NULL;
        }
        v = verdict != Py_None ? site_cache_get(code, lasti, KIND_CONDITION) : NULL;
        Py_DECREF(verdict); /* the cache holds what it keeps */
    }
    Py_DECREF(code);
    if (v == NULL || !Py_IS_TYPE(v, g_site_type)) {
        *fallback = 1;
        return NULL;
    }
    return v;
}

static PyObject *
cond_init(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (g_cond_py_init == NULL)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core's Condition creation is not configured");
    int fast = nargs <= 1 && (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0)
               && (nargs == 0 || args[0] == Py_None) && g_configured && g_site_verdict != NULL;
    PyFrameObject *f = fast ? PyEval_GetFrame() : NULL;
    PyObject *site = NULL;
    if (f != NULL) {
        PyObject *rlock = PyDict_GetItemWithError(g_primitives_dict, s_RLock); /* borrowed */
        PyObject *own = rlock != NULL ? PyDict_GetItemWithError(g_primitives_dict, s__RLock) : NULL;
        if (own == NULL && PyErr_Occurred())
            return NULL;
        if (own != NULL && rlock == own && (PyObject *)g_rlock_cls == own) {
            int fallback;
            site = cond_lock_site(f, &fallback);
            if (site == NULL && !fallback)
                return NULL;
        }
    }
    if (site == NULL) /* the Python __init__ */
        return delegate(g_cond_py_init, self, args, nargs, kwnames);
    Py_INCREF(site);
    PyObject *lock = new_instance(1, site);
    Py_DECREF(site);
    if (lock == NULL)
        return NULL;
    /* threading.Condition.__init__'s attributes, in its order */
    if (PyObject_SetAttr(self, s__lock, lock) < 0)
        goto error;
    PyObject *names[] = {s_acquire, s_release, s__release_save, s__acquire_restore, s__is_owned};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        PyObject *m = PyObject_GetAttr(lock, names[i]);
        int r = m == NULL ? -1 : PyObject_SetAttr(self, names[i], m);
        Py_XDECREF(m);
        if (r < 0)
            goto error;
    }
    PyObject *waiters = PyObject_CallNoArgs(g_deque_type);
    int r = waiters == NULL ? -1 : PyObject_SetAttr(self, s__waiters, waiters);
    Py_XDECREF(waiters);
    if (r < 0)
        goto error;
    Py_DECREF(lock);
    Py_RETURN_NONE;
error:
    Py_DECREF(lock);
    return NULL;
}

static PyMethodDef cond_new_def = {
    "__new__", (PyCFunction)(void (*)(void))cond_new, METH_FASTCALL | METH_KEYWORDS,
    "Create and return a new object (primitives.Condition.__new__, compiled)."};
static PyMethodDef cond_init_def = {
    "__init__", (PyCFunction)(void (*)(void))cond_init, METH_FASTCALL | METH_KEYWORDS,
    "Initialize self (primitives.Condition.__init__, compiled)."};

/* condition_creation(cls, orig_cls, py_new, py_init, primitives_dict, threading_file):
   {"__new__": a function, "__init__": a method descriptor of orig_cls} for primitives.Condition
   (cls). Needs condition_methods() first (the deque type) and set_fallbacks() (the site verdict). */
static PyObject *
condition_creation(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyDict_Check(args[4])
            || !PyUnicode_Check(args[5]))
        return PyErr_Format(PyExc_TypeError, "condition_creation(cls, orig_cls, py_new, py_init, "
                                             "primitives_dict, threading_file)");
    if (s_RLock == NULL) {
        s_RLock = PyUnicode_InternFromString("RLock");
        s__RLock = PyUnicode_InternFromString("_RLock");
        s_Condition = PyUnicode_InternFromString("Condition");
        s__release_save = PyUnicode_InternFromString("_release_save");
        s__acquire_restore = PyUnicode_InternFromString("_acquire_restore");
        if (s_RLock == NULL || s__RLock == NULL || s_Condition == NULL || s__release_save == NULL
                || s__acquire_restore == NULL)
            return NULL;
    }
    PyObject *out = PyDict_New();
    PyObject *new = out != NULL ? PyCFunction_NewEx(&cond_new_def, mod, NULL) : NULL;
    PyObject *init = new != NULL ? PyDescr_NewMethod((PyTypeObject *)args[1], &cond_init_def) : NULL;
    if (init == NULL || PyDict_SetItemString(out, "__new__", new) < 0
            || PyDict_SetItemString(out, "__init__", init) < 0) {
        Py_XDECREF(out);
        Py_XDECREF(new);
        Py_XDECREF(init);
        return NULL;
    }
    Py_DECREF(new);
    Py_DECREF(init);
    PyObject **slots[] = {&g_cond_cls, &g_cond_orig_cls, &g_cond_py_new, &g_cond_py_init, &g_primitives_dict,
                          &g_cond_threading_file};
    set_globals(slots, args, sizeof(slots) / sizeof(slots[0]));
    return out;
}

/* ---- Semaphore ---------------------------------------------------------------------------- */

/* acquire, __enter__, release and __exit__ of lockwatch.primitives' Semaphore and
   BoundedSemaphore: method descriptors of threading.Semaphore made here (semaphore_methods), which
   primitives.py puts in _SemaphoreMixin. They record what _SemaphoreMixin's Python methods record
   (those stay: the pure-Python core's, and what these call for arguments other than a bool or int
   `blocking`, a float or int `timeout` and an int `n`):

   - acquire: threading's acquire, called as the Python method calls it (the same arguments, the
     same order); proxies._before first when the thread holds locks and the acquire may block; a
     contended wait through primitives._sem_block (the watchdog, signals); a failure counted; then,
     under recorder.mutex (a semaphore has no single holder to guard its counters), the wait, one
     more acquisition, and the credit it uses up or its _Hold; the semaphore on the thread's held
     list unless its site is a signal.
   - release: threading's release(n), then under recorder.mutex the holds it ends
     (primitives._take_hold: the releasing thread's own, else the oldest, and the semaphore a
     signal) or the credit it leaves; the thread's own entries off its held list, and
     recorder.hand_off for the lists of the other threads whose holds it turned into a signal's.

   Their fields are the instance's __dict__ entries and the Site's and _Hold's slots, read and
   written through the attribute protocol (the Site's and _Hold's slots by offset). */

static PyObject *g_sem_py_acquire, *g_sem_py_release;  /* _SemaphoreMixin.acquire, .release */
static PyObject *g_sem_orig_acquire;                  /* threading.Semaphore.acquire */
static PyObject *g_sem_orig_release, *g_bsem_orig_release; /* threading's two release methods */
static PyTypeObject *g_bsem_orig_type;                /* threading.BoundedSemaphore */
static PyObject *g_sem_block;                         /* primitives._sem_block(sem, timeout) */
static PyObject *g_rec_dict;                          /* recorder.__dict__: mutex, hand_off */
static PyTypeObject *g_hold_type;                     /* primitives._Hold */
static PyTypeObject *g_sem_site_type;                 /* recorder.Site */
static PyObject *g_sem_release_descr;                 /* release below: a subclass may have its own */
static Py_ssize_t g_hold_off_held, g_hold_off_t, g_hold_off_code, g_hold_off_lasti;
static Py_ssize_t g_site_off_signal, g_site_off_wait_hist, g_site_off_hold_hist;
static PyObject *s__n, *s__ncont, *s__nfail, *s__wait_tot, *s__wait_max, *s__hold_tot, *s__hold_max,
    *s__credit, *s__holders, *s__site, *s__at_code, *s__at_lasti, *s_mutex, *s_hand_off, *s_blocking,
    *s_timeout, *s_n, *s__cond, *s__value, *s__initial_value, *s__in, *s__serial;
static PyTypeObject *g_sem_orig_type;                 /* threading.Semaphore */

static int member_offset(PyObject *type, const char *name, Py_ssize_t *off); /* (configure()'s) */

static int
intern_semaphore_names(void)
{
    struct { PyObject **var; const char *name; } names[] = {
        {&s__n, "_n"}, {&s__ncont, "_ncont"}, {&s__nfail, "_nfail"}, {&s__wait_tot, "_wait_tot"},
        {&s__wait_max, "_wait_max"}, {&s__hold_tot, "_hold_tot"}, {&s__hold_max, "_hold_max"},
        {&s__credit, "_credit"}, {&s__holders, "_holders"}, {&s__site, "_site"}, {&s__at_code, "_at_code"},
        {&s__at_lasti, "_at_lasti"}, {&s_mutex, "mutex"}, {&s_hand_off, "hand_off"},
        {&s_blocking, "blocking"}, {&s_timeout, "timeout"}, {&s_n, "n"}, {&s__cond, "_cond"},
        {&s__value, "_value"}, {&s__initial_value, "_initial_value"}, {&s__in, "_in"}, {&s__serial, "_serial"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((*names[i].var = PyUnicode_InternFromString(names[i].name)) == NULL)
            return -1;
    return 0;
}

/* `with recorder.mutex:` entered; the mutex (a new reference) in *m. It is looked up each time: a
   forked child's recorder makes a new one. */
static int
sem_mutex_enter(PyObject **m)
{
    PyObject *mutex = PyDict_GetItemWithError(g_rec_dict, s_mutex); /* borrowed */
    if (mutex == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "lockwatch.recorder.mutex is missing");
        return -1;
    }
    Py_INCREF(mutex);
    int r = real_trylock(mutex, 1);
    if (r == 0) { /* another thread's: block as `with` does (the GIL given up) */
        PyObject *res = PyObject_CallMethodNoArgs(mutex, s_acquire);
        r = res == NULL ? -1 : 1;
        Py_XDECREF(res);
    }
    if (r < 0) {
        Py_DECREF(mutex);
        return -1;
    }
    *m = mutex;
    return 0;
}

/* Its exit: an exception set before is kept (as `with` keeps it). */
static int
sem_mutex_exit(PyObject *m)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    int r = real_release(m, 1);
    Py_DECREF(m);
    if (et != NULL) {
        if (r < 0)
            PyErr_Clear();
        PyErr_Restore(et, ev, tb);
        return -1;
    }
    return r;
}

/* The instance's __dict__ (a new reference), where its fields are: _SemaphoreMixin's are plain
   attributes (no descriptor of the class shadows them), set by proxies._init and __init__. */
static PyObject *
sem_dict(PyObject *self)
{
    PyObject *d = PyObject_GenericGetDict(self, NULL);
    if (d != NULL && !PyDict_CheckExact(d)) {
        Py_DECREF(d);
        PyErr_SetString(PyExc_TypeError, "a semaphore's __dict__ must be a dict");
        return NULL;
    }
    return d;
}

/* d[name] (borrowed), or NULL with the AttributeError reading the attribute raises */
static PyObject *
sem_field(PyObject *d, PyObject *name)
{
    PyObject *v = PyDict_GetItemWithError(d, name);
    if (v == NULL && !PyErr_Occurred())
        PyErr_SetObject(PyExc_AttributeError, name);
    return v;
}

/* d[name] += v */
static int
sem_add(PyObject *d, PyObject *name, long long v)
{
    PyObject *old = sem_field(d, name);
    if (old == NULL)
        return -1;
    PyObject *sum = NULL;
    if (PyLong_CheckExact(old)) {
        int overflow;
        long long o = PyLong_AsLongLongAndOverflow(old, &overflow);
        if (!overflow && !(o == -1 && PyErr_Occurred()) && ((v >= 0 && o <= LLONG_MAX - v) || (v < 0 && o >= LLONG_MIN - v)))
            sum = PyLong_FromLongLong(o + v);
    }
    if (sum == NULL) {
        if (PyErr_Occurred())
            return -1;
        PyObject *vv = PyLong_FromLongLong(v);
        if (vv == NULL)
            return -1;
        Py_INCREF(old);
        sum = PyNumber_InPlaceAdd(old, vv);
        Py_DECREF(old);
        Py_DECREF(vv);
        if (sum == NULL)
            return -1;
    }
    int r = PyDict_SetItem(d, name, sum);
    Py_DECREF(sum);
    return r;
}

/* if v > d[name]: d[name] = v */
static int
sem_max(PyObject *d, PyObject *name, long long v)
{
    PyObject *old = sem_field(d, name);
    if (old == NULL)
        return -1;
    int gt;
    if (PyLong_CheckExact(old)) {
        int overflow;
        long long o = PyLong_AsLongLongAndOverflow(old, &overflow);
        if (o == -1 && PyErr_Occurred())
            return -1;
        gt = overflow ? overflow < 0 : v > o;
    }
    else {
        PyObject *vv = PyLong_FromLongLong(v);
        if (vv == NULL)
            return -1;
        Py_INCREF(old);
        gt = PyObject_RichCompareBool(vv, old, Py_GT);
        Py_DECREF(old);
        Py_DECREF(vv);
        if (gt < 0)
            return -1;
    }
    if (!gt)
        return 0;
    PyObject *vv = PyLong_FromLongLong(v);
    if (vv == NULL)
        return -1;
    int r = PyDict_SetItem(d, name, vv);
    Py_DECREF(vv);
    return r;
}

/* The instance's _site (a new reference), checked to be a recorder.Site (its slots are read by
   offset). */
static PyObject *
sem_site(PyObject *d)
{
    PyObject *site = sem_field(d, s__site);
    Py_XINCREF(site);
    if (site != NULL && !Py_IS_TYPE(site, g_sem_site_type)) {
        Py_DECREF(site);
        PyErr_SetString(PyExc_TypeError, "a semaphore's _site must be a lockwatch.recorder.Site");
        return NULL;
    }
    return site;
}

static inline void
slot_set(PyObject *o, Py_ssize_t off, PyObject *value)
{
    PyObject *old = SLOT(o, off);
    Py_INCREF(value);
    SLOT(o, off) = value;
    Py_XDECREF(old);
}

/* site.signal truth; -1 on error (an unset slot is an AttributeError, as in Python) */
static int
site_signal(PyObject *site)
{
    PyObject *v = SLOT(site, g_site_off_signal);
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "signal");
        return -1;
    }
    if (v == Py_True)
        return 1;
    if (v == Py_False)
        return 0;
    return PyObject_IsTrue(v);
}

/* _failed(self): one failure more, under the mutex. */
static int
sem_failed(PyObject *self)
{
    PyObject *d = sem_dict(self), *m;
    if (d == NULL)
        return -1;
    if (sem_mutex_enter(&m) < 0) {
        Py_DECREF(d);
        return -1;
    }
    int r = sem_add(d, s__nfail, 1);
    if (sem_mutex_exit(m) < 0)
        r = -1;
    Py_DECREF(d);
    return r;
}

/* A new _Hold(held, t, code, lasti), its slots set directly (no Python __init__). */
static PyObject *
new_hold(PyObject *held, long long t, PyObject *code, int lasti)
{
    PyObject *tt = PyLong_FromLongLong(t);
    PyObject *li = tt == NULL ? NULL : PyLong_FromLong(lasti);
    PyObject *h = li == NULL ? NULL : g_hold_type->tp_alloc(g_hold_type, 0);
    if (h == NULL) {
        Py_XDECREF(tt);
        Py_XDECREF(li);
        return NULL;
    }
    slot_set(h, g_hold_off_held, held);
    SLOT(h, g_hold_off_t) = tt;   /* references given */
    slot_set(h, g_hold_off_code, code);
    SLOT(h, g_hold_off_lasti) = li;
    return h;
}

/* The acquisition recorded (the real semaphore taken at t, after `waited` ns or -1: not
   contended): _SemaphoreMixin.acquire from `with _rec.mutex:` on. */
static int
sem_took(PyObject *self, PyObject *held, long long t, long long waited, PyObject *code, int lasti)
{
    PyObject *d = sem_dict(self);
    if (d == NULL)
        return -1;
    PyObject *site = sem_site(d);
    if (site == NULL) {
        Py_DECREF(d);
        return -1;
    }
    PyObject *m;
    if (sem_mutex_enter(&m) < 0) {
        Py_DECREF(site);
        Py_DECREF(d);
        return -1;
    }
    int signal = 0;
    if (waited >= 0) {
        if (sem_add(d, s__ncont, 1) < 0 || sem_add(d, s__wait_tot, waited) < 0
                || sem_max(d, s__wait_max, waited) < 0)
            goto error;
        PyObject *hist = SLOT(site, g_site_off_wait_hist);
        PyObject *dd = hist == NULL ? NULL : PyLong_FromLongLong(waited);
        if (dd == NULL) {
            if (hist == NULL)
                PyErr_SetString(PyExc_AttributeError, "wait_hist");
            goto error;
        }
        Py_INCREF(hist);
        PyObject *args[2] = {hist, dd};
        PyObject *res = PyObject_Vectorcall(g_count, args, 2, NULL); /* histogram.add */
        Py_DECREF(hist);
        Py_DECREF(dd);
        if (res == NULL)
            goto error;
        Py_DECREF(res);
    }
    if (sem_add(d, s__n, 1) < 0)
        goto error;
    PyObject *credit = sem_field(d, s__credit);
    if (credit == NULL)
        goto error;
    Py_INCREF(credit);
    int c = PyObject_IsTrue(credit);
    Py_DECREF(credit);
    if (c < 0)
        goto error;
    if (c) { /* its release was recorded first (another thread's): a signal; the hold is over */
        if (sem_add(d, s__credit, -1) < 0)
            goto error;
        slot_set(site, g_site_off_signal, Py_True);
        Py_DECREF(site);
        Py_DECREF(d);
        return sem_mutex_exit(m);
    }
    signal = site_signal(site);
    if (signal < 0)
        goto error;
    PyObject *holders = sem_field(d, s__holders);
    if (holders == NULL)
        goto error;
    Py_INCREF(holders);
    PyObject *hold = new_hold(signal ? Py_None : held, t, code, lasti);
    int r = hold == NULL ? -1 : PyList_Check(holders) ? PyList_Append(holders, hold)
                                                      : (PyErr_SetString(PyExc_TypeError, "_holders must be a list"), -1);
    Py_XDECREF(hold);
    Py_DECREF(holders);
    if (r < 0)
        goto error;
    Py_DECREF(site);
    if (sem_mutex_exit(m) < 0) {
        Py_DECREF(d);
        return -1;
    }
    if (signal) { /* timed, but not held */
        Py_DECREF(d);
        return 0;
    }
    PyObject *li = PyLong_FromLong(lasti);
    r = li == NULL ? -1 : PyDict_SetItem(d, s__at_code, code);
    if (r == 0)
        r = PyDict_SetItem(d, s__at_lasti, li);
    Py_XDECREF(li);
    Py_DECREF(d);
    if (r < 0)
        return -1;
    return PyList_Append(held, self);
error:
    Py_DECREF(site);
    Py_DECREF(d);
    sem_mutex_exit(m);
    return -1;
}

/* threading's acquire(self, blocking[, timeout]): 1 taken, 0 not, -1 error. */
static int
sem_real_acquire(PyObject *self, PyObject *blocking, PyObject *timeout)
{
    PyObject *args[3] = {self, blocking, timeout};
    PyObject *res = PyObject_Vectorcall(g_sem_orig_acquire, args, timeout == NULL ? 2 : 3, NULL);
    if (res == NULL)
        return -1;
    int ok = PyObject_IsTrue(res);
    Py_DECREF(res);
    return ok;
}

/* The serial of a lock on a held list (borrowed: kept by the lock), NULL with no exception when
   it is neither a compiled Lock/RLock with an edge out of it yet nor a semaphore. */
static PyObject *
held_serial(PyObject *h)
{
    if (IS_LW(h))
        return ((LW *)h)->ext == NULL ? NULL : serial_object((LW *)h);
    if (!PyObject_TypeCheck(h, g_sem_orig_type))
        return NULL;
    PyObject *hd = sem_dict(h);
    if (hd == NULL)
        return NULL;
    PyObject *serial = PyDict_GetItemWithError(hd, s__serial); /* the dict keeps it */
    Py_DECREF(hd);
    return serial;
}

/* proxies._before(sem, held, timed) for the common case, all in C: every other lock held has a
   known, ungated edge into the semaphore (count_known_edges does it for a Lock or RLock; here
   the semaphore's _in is in its __dict__, the held locks may be semaphores, and the acquisition
   may be timed). Returns 1 when done, 0 when proxies._before must run instead (nothing changed
   then), -1 on error. */
static int
sem_count_known_edges(PyObject *self, PyObject *d, PyObject *held, int timed)
{
    if (!PyList_CheckExact(held) || g_edge_type == NULL)
        return 0;
    if (g_pending != NULL && PyDict_GET_SIZE(g_pending) > 0)
        return 0; /* releases handed over by other threads: _before drains them */
    Py_ssize_t n = PyList_GET_SIZE(held);
    if (n > g_same_site_sources || n > 16)
        return 0; /* proxies._sources */
    PyObject *ins = PyDict_GetItemWithError(d, s__in);
    if (ins == NULL || !PyDict_CheckExact(ins))
        return ins == NULL && PyErr_Occurred() ? -1 : 0; /* None: no edge into it yet */
    PyObject *serials[16], *edges[16];
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = PyList_GET_ITEM(held, i);
        if (h == self)
            continue;
        PyObject *serial = held_serial(h);
        if (serial == NULL)
            return PyErr_Occurred() ? -1 : 0;
        PyObject *e = PyDict_GetItemWithError(ins, serial);
        if (e == NULL)
            return PyErr_Occurred() ? -1 : 0; /* a new edge */
        if (!plain_known_edge(e))
            return 0;
        serials[k] = serial;
        edges[k++] = e;
    }
    if (k == 0)
        return 1;
    /* Nothing above ran Python code. An allocation below may collect garbage, and a finalizer
       may drop an edge (a lock dying): hold what is used, and count an edge only while it is
       still the one its source's serial finds. */
    Py_INCREF(ins);
    for (Py_ssize_t j = 0; j < k; j++) {
        Py_INCREF(serials[j]);
        Py_INCREF(edges[j]);
    }
    int r = 1;
    for (Py_ssize_t j = 0; j < k && r > 0; j++) {
        PyObject *e = edges[j];
        PyObject *now = PyDict_GetItemWithError(ins, serials[j]);
        if (now != e) {
            if (PyErr_Occurred())
                r = -1;
            continue; /* dropped meanwhile (its source died) */
        }
        PyObject *count = SLOT(e, g_off_count);
        if (count == NULL || !PyLong_CheckExact(count))
            continue;
        PyObject *one = PyLong_FromLong(1);
        PyObject *next = one == NULL ? NULL : PyNumber_Add(count, one);
        Py_XDECREF(one);
        if (next == NULL) {
            r = -1;
            continue;
        }
        PyObject *old = SLOT(e, g_off_count);
        SLOT(e, g_off_count) = next;
        Py_XDECREF(old);
        if (SLOT(e, g_off_held_ref) != held)
            slot_set(e, g_off_multi, Py_True); /* another thread (held lists are per thread) */
        if (!timed && SLOT(e, g_off_timed) == Py_True)
            slot_set(e, g_off_timed, Py_False);
    }
    for (Py_ssize_t j = 0; j < k; j++) {
        Py_DECREF(serials[j]);
        Py_DECREF(edges[j]);
    }
    Py_DECREF(ins);
    return r;
}

/* threading's Semaphore.acquire and release are `with self._cond:` around a test and an update of
   self._value (and a notify): written out here for the common case, where threading's code would
   run no code of anyone else's: the Condition is threading's own around a _thread.lock
   (Semaphore.__init__ makes it so), its lock free (taken here without waiting), `_value` an int >=
   0 (and for a release `_initial_value` an int), and for a release no thread waiting in the
   Condition (notify does nothing then). Anything else: threading's methods.
   Returns 1 done (*taken: a unit taken), 0 not done (nothing changed), -1 error. */
static PyTypeObject *g_sem_cond_type;  /* threading.Condition */
static PyTypeObject *g_sem_deque_type; /* collections.deque */

static int
sem_inline(PyObject *self, int release, Py_ssize_t n, int *taken)
{
    *taken = 0;
    if (!g_lock_layout || g_sem_cond_type == NULL)
        return 0;
    PyObject *sd = sem_dict(self);
    if (sd == NULL)
        return -1;
    PyObject *cond = PyDict_GetItemWithError(sd, s__cond), *cd = NULL, *lock = NULL;
    int done = 0;
    if (cond == NULL || !Py_IS_TYPE(cond, g_sem_cond_type))
        goto out;
    Py_INCREF(cond);
    cd = PyObject_GenericGetDict(cond, NULL);
    Py_DECREF(cond);
    if (cd == NULL || !PyDict_CheckExact(cd))
        goto out;
    lock = PyDict_GetItemWithError(cd, s__lock);
    if (lock == NULL || !Py_IS_TYPE(lock, g_lock_type)) {
        lock = NULL;
        goto out;
    }
    Py_INCREF(lock);
    if (real_trylock(lock, 0) != 1) { /* taken by a thread in the middle of one: threading's */
        Py_CLEAR(lock);
        goto out;
    }
    PyObject *value = PyDict_GetItemWithError(sd, s__value);
    if (value == NULL || !PyLong_CheckExact(value))
        goto unlock;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || v < 0)
        goto unlock;
    PyObject *nv;
    if (!release) {
        if (v == 0) {
            done = 1; /* no unit: acquire(False) returns False */
            goto unlock;
        }
        nv = PyLong_FromLongLong(v - 1);
    }
    else {
        if (v > LLONG_MAX - n)
            goto unlock;
        if (PyObject_TypeCheck(self, g_bsem_orig_type)) {
            PyObject *bound = PyDict_GetItemWithError(sd, s__initial_value);
            if (bound == NULL || !PyLong_CheckExact(bound))
                goto unlock;
            long long b = PyLong_AsLongLongAndOverflow(bound, &overflow);
            if (overflow || v + n > b)
                goto unlock; /* threading's raises ValueError */
        }
        PyObject *waiters = PyDict_GetItemWithError(cd, s__waiters);
        if (waiters == NULL || !Py_IS_TYPE(waiters, g_sem_deque_type) || PyObject_Size(waiters) != 0)
            goto unlock;
        nv = PyLong_FromLongLong(v + n);
    }
    if (nv == NULL || PyDict_SetItem(sd, s__value, nv) < 0) {
        Py_XDECREF(nv);
        done = -1;
        goto unlock;
    }
    Py_DECREF(nv);
    done = 1;
    *taken = !release;
unlock:
    if (real_release(lock, 0) < 0)
        done = -1;
    Py_DECREF(lock);
out:
    if (PyErr_Occurred())
        done = -1;
    Py_XDECREF(cd);
    Py_DECREF(sd);
    return done;
}

/* _SemaphoreMixin.acquire(blocking, timeout) with blocking a C truth and timeout NULL (None) or a
   number (tmo its value, not NaN). */
static PyObject *
sem_acquire_impl(PyObject *self, int blocking, PyObject *timeout, double tmo)
{
    PyFrameObject *f = PyEval_GetFrame(); /* the caller: a C method pushes no frame */
    PyObject *code;
    int lasti;
    if (f == NULL) {
        Py_INCREF(Py_None);
        code = Py_None;
        lasti = -1;
    }
    else {
        code = (PyObject *)PyFrame_GetCode(f);
        lasti = frame_lasti(f);
    }
    PyObject *held;
    if (held_list(&held, 1) < 0) {
        Py_DECREF(code);
        return NULL;
    }
    int instant = timeout != NULL && tmo <= 0; /* cannot wait: no edge, not a contention */
    if (blocking && !instant) {
        Py_ssize_t len = PyList_Check(held) ? PyList_GET_SIZE(held) : PyObject_Size(held);
        if (len < 0)
            goto error;
        if (len > 0) {
            PyObject *d = sem_dict(self);
            int r = d == NULL ? -1 : sem_count_known_edges(self, d, held, timeout != NULL);
            Py_XDECREF(d);
            if (r < 0)
                goto error;
            if (r == 0) { /* proxies._before: a new or gated edge, pending releases, many held */
                PyObject *args[3] = {self, held, timeout != NULL ? Py_True : Py_False};
                PyObject *res = PyObject_Vectorcall(g_before, args, 3, NULL);
                if (res == NULL)
                    goto error;
                Py_DECREF(res);
            }
        }
    }
    long long t = 0, waited = -1;
    int ok;
    int inl = sem_inline(self, 0, 0, &ok);
    if (inl < 0)
        goto error;
    if (instant) {
        if (!inl || !ok) /* threading's waits zero seconds for a unit, once */
            ok = sem_real_acquire(self, Py_True, timeout);
    }
    else {
        if (!inl)
            ok = sem_real_acquire(self, Py_False, NULL);
        if (ok == 0 && blocking) {
            PyObject *res = PyObject_CallFunctionObjArgs(g_sem_block, self, timeout != NULL ? timeout : Py_None,
                                                         NULL);
            if (res == NULL)
                goto error;
            if (res != Py_None) {
                t = now_ns();
                long long t0 = PyLong_AsLongLong(res);
                if (t0 == -1 && PyErr_Occurred()) {
                    Py_DECREF(res);
                    goto error;
                }
                waited = t - t0;
                ok = 1;
            }
            Py_DECREF(res);
        }
    }
    if (ok < 0)
        goto error;
    if (!ok) {
        if (sem_failed(self) < 0)
            goto error;
        Py_DECREF(held);
        Py_DECREF(code);
        Py_RETURN_FALSE;
    }
    if (waited < 0)
        t = now_ns();
    if (sem_took(self, held, t, waited, code, lasti) < 0)
        goto error;
    Py_DECREF(held);
    Py_DECREF(code);
    Py_RETURN_TRUE;
error:
    Py_DECREF(held);
    Py_DECREF(code);
    return NULL;
}

static inline int
kw_is(PyObject *key, PyObject *name)
{
    return key == name || PyUnicode_Compare(key, name) == 0;
}

static PyObject *
sem_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (g_sem_py_acquire == NULL)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core's Semaphore methods are not configured");
    PyObject *blocking = nargs > 0 ? args[0] : NULL, *timeout = nargs > 1 ? args[1] : NULL;
    if (nargs > 2)
        goto python;
    for (Py_ssize_t i = 0; kwnames != NULL && i < PyTuple_GET_SIZE(kwnames); i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (blocking == NULL && kw_is(key, s_blocking))
            blocking = args[nargs + i];
        else if (timeout == NULL && kw_is(key, s_timeout))
            timeout = args[nargs + i];
        else
            goto python; /* an error, or a keyword given twice: Python's message */
    }
    int block = 1;
    if (blocking == NULL || blocking == Py_True)
        block = 1;
    else if (blocking == Py_False)
        block = 0;
    else if (PyLong_CheckExact(blocking))
        block = PyObject_IsTrue(blocking); /* an int's: no code runs */
    else
        goto python; /* its truth may run code: as often as Python tests it */
    if (timeout == Py_None)
        timeout = NULL;
    double tmo = 0;
    if (timeout != NULL) {
        if (!block)
            goto python; /* ValueError, from threading's acquire */
        if (PyFloat_CheckExact(timeout))
            tmo = PyFloat_AS_DOUBLE(timeout);
        else if (PyLong_CheckExact(timeout)) {
            tmo = PyLong_AsDouble(timeout);
            if (tmo == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                goto python;
            }
        }
        else
            goto python;
        if (tmo != tmo)
            goto python; /* NaN */
    }
    return sem_acquire_impl(self, block, timeout, tmo);
python:
    return delegate(g_sem_py_acquire, self, args, nargs, kwnames);
}

static PyObject *
sem_enter(PyObject *self, PyObject *unused)
{
    if (g_sem_py_acquire == NULL)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core's Semaphore methods are not configured");
    return sem_acquire_impl(self, 1, NULL, 0);
}

/* primitives._take_hold(sem, mine, foreign) under the mutex: the hold a release ends (a new
   reference in *out, NULL for a credit); `foreign` (a list, made on first use) gets the held lists
   of other threads whose holds became a signal's. */
static int
take_hold(PyObject *d, PyObject *site, PyObject *holders, PyObject *mine, PyObject **foreign, PyObject **out)
{
    *out = NULL;
    if (mine != NULL) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(holders); i++) {
            PyObject *h = PyList_GET_ITEM(holders, i);
            if (Py_IS_TYPE(h, g_hold_type) && SLOT(h, g_hold_off_held) == mine) {
                Py_INCREF(h);
                if (PyList_SetSlice(holders, i, i + 1, NULL) < 0) {
                    Py_DECREF(h);
                    return -1;
                }
                *out = h;
                return 0;
            }
        }
    }
    slot_set(site, g_site_off_signal, Py_True); /* a signal, not a lock: analysis ignores its edges */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(holders); i++) {
        PyObject *h = PyList_GET_ITEM(holders, i);
        if (!Py_IS_TYPE(h, g_hold_type)) {
            PyErr_SetString(PyExc_TypeError, "a semaphore's _holders must hold _Hold objects");
            return -1;
        }
        PyObject *hl = SLOT(h, g_hold_off_held);
        if (hl == NULL || hl == Py_None)
            continue;
        if (*foreign == NULL && (*foreign = PyList_New(0)) == NULL)
            return -1;
        int seen = 0;
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(*foreign); j++)
            seen |= PyList_GET_ITEM(*foreign, j) == hl;
        if (!seen && PyList_Append(*foreign, hl) < 0)
            return -1;
        h = PyList_GET_ITEM(holders, i); /* (an append may collect garbage) */
        if (Py_IS_TYPE(h, g_hold_type))
            slot_set(h, g_hold_off_held, Py_None);
    }
    if (PyList_GET_SIZE(holders) > 0) {
        PyObject *h = PyList_GET_ITEM(holders, 0);
        Py_INCREF(h);
        if (PyList_SetSlice(holders, 0, 1, NULL) < 0) {
            Py_DECREF(h);
            return -1;
        }
        *out = h;
        return 0;
    }
    return sem_add(d, s__credit, 1);
}

/* _SemaphoreMixin.release's recording, after the real release at t: 0, or -1 with an exception. */
static int
sem_released(PyObject *self, Py_ssize_t n, long long t)
{
    PyObject *mine;
    if (held_list(&mine, 0) < 0)
        return -1;
    if (mine != NULL && !PyList_Check(mine)) {
        Py_DECREF(mine);
        PyErr_SetString(PyExc_TypeError, "recorder.tls.held must be a list");
        return -1;
    }
    PyObject *d = sem_dict(self);
    PyObject *site = d == NULL ? NULL : sem_site(d);
    if (site == NULL) {
        Py_XDECREF(d);
        Py_XDECREF(mine);
        return -1;
    }
    PyObject *holders = NULL, *foreign = NULL, *m;
    Py_ssize_t ended = 0;
    if (sem_mutex_enter(&m) < 0)
        goto error_unlocked;
    holders = sem_field(d, s__holders);
    if (holders == NULL)
        goto error;
    Py_INCREF(holders);
    if (!PyList_Check(holders)) {
        PyErr_SetString(PyExc_TypeError, "a semaphore's _holders must be a list");
        goto error;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        if (PyList_GET_SIZE(holders) == 0) {
            /* No hold left to end: what _take_hold does then, once per unit (a signal's release
               before the acquisition that takes the unit, e.g. a thread pool's idle semaphore). */
            slot_set(site, g_site_off_signal, Py_True);
            if (sem_add(d, s__credit, n - k) < 0)
                goto error;
            break;
        }
        PyObject *hold;
        if (take_hold(d, site, holders, mine, &foreign, &hold) < 0)
            goto error;
        if (hold == NULL)
            continue; /* released before its acquisition was recorded: a credit */
        PyObject *ht = SLOT(hold, g_hold_off_t);
        long long t0 = ht == NULL ? -1 : PyLong_AsLongLong(ht);
        if (ht == NULL || (t0 == -1 && PyErr_Occurred())) {
            if (ht == NULL)
                PyErr_SetString(PyExc_AttributeError, "t");
            Py_DECREF(hold);
            goto error;
        }
        long long dt = t - t0; /* < 0 if the hold it ends was timed after t */
        int own = SLOT(hold, g_hold_off_held) != NULL && SLOT(hold, g_hold_off_held) != Py_None;
        Py_DECREF(hold);
        if (sem_add(d, s__hold_tot, dt) < 0 || sem_max(d, s__hold_max, dt) < 0)
            goto error;
        PyObject *hh = SLOT(site, g_site_off_hold_hist);
        if (hh == NULL) {
            PyErr_SetString(PyExc_AttributeError, "hold_hist");
            goto error;
        }
        Py_INCREF(hh);
        int r = count_hold(hh, dt);
        Py_DECREF(hh);
        if (r < 0)
            goto error;
        ended += own; /* this thread's own */
    }
    Py_DECREF(holders);
    holders = NULL;
    if (sem_mutex_exit(m) < 0)
        goto error_unlocked;
    /* proxies._unhold(mine, self), once per own hold ended: its latest entry */
    for (; ended > 0 && mine != NULL; ended--) {
        for (Py_ssize_t i = PyList_GET_SIZE(mine) - 1; i >= 0; i--) {
            if (PyList_GET_ITEM(mine, i) == self) {
                if (PyList_SetSlice(mine, i, i + 1, NULL) < 0)
                    goto error_unlocked;
                break;
            }
        }
    }
    if (foreign != NULL) { /* other threads' lists: their own threads apply it */
        PyObject *hand_off = PyDict_GetItemWithError(g_rec_dict, s_hand_off);
        if (hand_off == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_RuntimeError, "lockwatch.recorder.hand_off is missing");
            goto error_unlocked;
        }
        Py_INCREF(hand_off);
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(foreign); j++) {
            PyObject *res = PyObject_CallFunctionObjArgs(hand_off, PyList_GET_ITEM(foreign, j), self, NULL);
            if (res == NULL) {
                Py_DECREF(hand_off);
                goto error_unlocked;
            }
            Py_DECREF(res);
        }
        Py_DECREF(hand_off);
    }
    Py_XDECREF(foreign);
    Py_DECREF(site);
    Py_DECREF(d);
    Py_XDECREF(mine);
    return 0;
error:
    Py_XDECREF(holders);
    sem_mutex_exit(m);
error_unlocked:
    Py_XDECREF(foreign);
    Py_DECREF(site);
    Py_DECREF(d);
    Py_XDECREF(mine);
    return -1;
}

/* _SemaphoreMixin.release(n) with n NULL (the default, 1) or an int >= 1 (its value in nn). */
static PyObject *
sem_release_impl(PyObject *self, PyObject *n, Py_ssize_t nn)
{
    int taken;
    int inl = sem_inline(self, 1, nn, &taken);
    if (inl < 0)
        return NULL;
    if (!inl) {
        PyObject *real = PyObject_TypeCheck(self, g_bsem_orig_type) ? g_bsem_orig_release : g_sem_orig_release;
        PyObject *args[2] = {self, n};
        PyObject *res = PyObject_Vectorcall(real, args, n == NULL ? 1 : 2, NULL); /* validates n, the bound */
        if (res == NULL)
            return NULL;
        Py_DECREF(res);
    }
    if (sem_released(self, nn, now_ns()) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
sem_release(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (g_sem_py_release == NULL)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core's Semaphore methods are not configured");
    PyObject *n = nargs > 0 ? args[0] : NULL;
    if (nargs > 1)
        goto python;
    for (Py_ssize_t i = 0; kwnames != NULL && i < PyTuple_GET_SIZE(kwnames); i++) {
        if (n == NULL && kw_is(PyTuple_GET_ITEM(kwnames, i), s_n))
            n = args[nargs + i];
        else
            goto python;
    }
    Py_ssize_t nn = 1;
    if (n != NULL) {
        if (!PyLong_CheckExact(n))
            goto python;
        nn = PyLong_AsSsize_t(n);
        if (nn == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            goto python;
        }
        if (nn < 1)
            goto python; /* ValueError, from threading's release */
    }
    return sem_release_impl(self, n, nn);
python:
    return delegate(g_sem_py_release, self, args, nargs, kwnames);
}

static PyObject *
sem_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (g_sem_py_release == NULL)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core's Semaphore methods are not configured");
    /* threading's __exit__ is `self.release()`: a subclass's own release runs */
    if (_PyType_Lookup(Py_TYPE(self), s_release) != g_sem_release_descr)
        return PyObject_CallMethodNoArgs(self, s_release);
    return sem_release_impl(self, NULL, 1);
}

static PyMethodDef sem_acquire_def = {
    "acquire", (PyCFunction)(void (*)(void))sem_acquire, METH_FASTCALL | METH_KEYWORDS,
    "Acquire a semaphore, decrementing the internal counter by one (threading.Semaphore.acquire, recorded)."};
static PyMethodDef sem_enter_def = {"__enter__", (PyCFunction)sem_enter, METH_NOARGS, NULL};
static PyMethodDef sem_release_def = {
    "release", (PyCFunction)(void (*)(void))sem_release, METH_FASTCALL | METH_KEYWORDS,
    "Release a semaphore, incrementing the internal counter by one or more (threading's release, recorded)."};
static PyMethodDef sem_exit_def = {"__exit__", (PyCFunction)(void (*)(void))sem_exit, METH_FASTCALL, NULL};

/* semaphore_methods(orig_sem, orig_bsem, py_acquire, py_release, sem_block, hold_type,
   recorder_dict, site_type, orig_condition, deque): {name: method descriptor of orig_sem} for
   _SemaphoreMixin. */
static PyObject *
semaphore_methods(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyType_Check(args[5])
            || !PyDict_Check(args[6]) || !PyType_Check(args[7]) || !PyType_Check(args[8]) || !PyType_Check(args[9]))
        return PyErr_Format(PyExc_TypeError, "semaphore_methods(orig_sem, orig_bsem, py_acquire, py_release, "
                                             "sem_block, hold_type, recorder_dict, site_type, orig_condition, deque)");
    if (!g_configured)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core is not configured");
    Py_ssize_t offs[7] = {0};
    int r = 0;
    r |= member_offset(args[5], "held", &offs[0]);
    r |= member_offset(args[5], "t", &offs[1]);
    r |= member_offset(args[5], "code", &offs[2]);
    r |= member_offset(args[5], "lasti", &offs[3]);
    r |= member_offset(args[7], "signal", &offs[4]);
    r |= member_offset(args[7], "wait_hist", &offs[5]);
    r |= member_offset(args[7], "hold_hist", &offs[6]);
    if (r < 0)
        return NULL;
    if (r > 0)
        return PyErr_Format(PyExc_TypeError, "semaphore_methods: _Hold's and Site's fields must be slots");
    PyObject *orig_acquire = PyObject_GetAttr(args[0], s_acquire);
    PyObject *orig_release = orig_acquire == NULL ? NULL : PyObject_GetAttr(args[0], s_release);
    PyObject *orig_brelease = orig_release == NULL ? NULL : PyObject_GetAttr(args[1], s_release);
    PyMethodDef *defs[] = {&sem_acquire_def, &sem_enter_def, &sem_release_def, &sem_exit_def};
    PyObject *release = NULL;
    PyObject *out = orig_brelease == NULL ? NULL : method_descriptors(
        (PyTypeObject *)args[0], defs, sizeof(defs) / sizeof(defs[0]), &sem_release_def, &release);
    if (out == NULL)
        goto fail;
    PyObject **slots[] = {&g_sem_py_acquire, &g_sem_py_release, &g_sem_block, &g_rec_dict,
                          (PyObject **)&g_bsem_orig_type, (PyObject **)&g_hold_type, (PyObject **)&g_sem_site_type,
                          &g_sem_release_descr, (PyObject **)&g_sem_cond_type, (PyObject **)&g_sem_deque_type,
                          (PyObject **)&g_sem_orig_type};
    PyObject *values[] = {args[2], args[3], args[4], args[6], args[1], args[5], args[7], release, args[8], args[9],
                          args[0]};
    set_globals(slots, values, sizeof(slots) / sizeof(slots[0]));
    Py_XSETREF(g_sem_orig_acquire, orig_acquire);
    Py_XSETREF(g_sem_orig_release, orig_release);
    Py_XSETREF(g_bsem_orig_release, orig_brelease);
    g_hold_off_held = offs[0];
    g_hold_off_t = offs[1];
    g_hold_off_code = offs[2];
    g_hold_off_lasti = offs[3];
    g_site_off_signal = offs[4];
    g_site_off_wait_hist = offs[5];
    g_site_off_hold_hist = offs[6];
    return out;
fail:
    Py_XDECREF(orig_acquire);
    Py_XDECREF(orig_release);
    Py_XDECREF(orig_brelease);
    Py_XDECREF(out);
    return NULL;
}

/* ---- the types ---------------------------------------------------------------------------- */

static PyObject *
lw_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    LW *self = (LW *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(g_empty);
    self->held_in = g_empty;
    self->at_lasti = -1;
    self->flags = LW_MAYBE_IN_LIVE;
    list_add(self);
    return (PyObject *)self;
}

/* _core.new(cls, real, serial, site): an instance set up as proxies._init sets one up, all
   fields at once (its caller finds the site, counts it made and registers the instance). A Lock
   given None as `real` makes its own (see "own handles"). */
static PyObject *
lw_make(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyType_Check(args[0])
            || !(PyType_IsSubtype((PyTypeObject *)args[0], &LockType)
                 || PyType_IsSubtype((PyTypeObject *)args[0], &RLockType)))
        return PyErr_Format(PyExc_TypeError, "new(cls, real, serial, site): cls of lockwatch._core's types");
    int rlock = PyType_IsSubtype((PyTypeObject *)args[0], &RLockType);
    if (args[1] == Py_None && rlock)
        return PyErr_Format(PyExc_TypeError, "new(): an RLock needs its real lock");
    long long serial = PyLong_AsLongLong(args[2]);
    if (serial == -1 && PyErr_Occurred())
        return NULL;
    if (serial <= 0)
        return PyErr_Format(PyExc_ValueError, "a serial number is positive");
    PyTypeObject *type = (PyTypeObject *)args[0];
    LW *self = (LW *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    if (args[1] != Py_None) {
        Py_INCREF(args[1]);
        self->real = args[1];
    }
    else if (own_lock_for(self) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->serial = serial;
    Py_INCREF(g_empty);
    self->held_in = g_empty;
    Py_INCREF(Py_None);
    self->at_code = Py_None;
    self->at_lasti = -1;
    Py_INCREF(args[3]);
    self->site = args[3];
    list_add(self);
    return (PyObject *)self;
}

/* ---- creation ------------------------------------------------------------------------------ */

/* patching's factories (threading.Lock, threading.RLock) are these when the compiled core runs:
   lock_factory is the wrapper wrapt's FunctionWrapper calls with (wrapped, instance, args,
   kwargs), rlock_call the __call__ of the RLock factory (threading.RLock is a Python function).
   A call without arguments from an instruction seen before takes no Python code: the site comes
   from the cache below, and the instance is made as proxies.new_lock makes it. Anything else (an
   instruction seen for the first time, arguments, a factory function whose caller decides the
   site) goes to patching's own Python wrappers. */

/* What a creating instruction means, by (code object, instruction offset, kind): the Site of the
   locks it makes, or Py_False when it makes real ones (threading's, wrapt's and lockwatch's own
   code). recorder.instruction_site keeps the same per instruction behind a tuple key; this table
   is looked at first. An entry holds its code object (so its address is not reused while cached)
   and its value; recorder.reset() empties it (reset_hooks: the sites of a new State are new), and
   it is emptied when full (code compiled again and again: exec). */
typedef struct {
    PyObject *code; /* NULL: an empty slot */
    PyObject *value;
    int lasti;
    int kind;
} SiteEntry;

#define SITE_CACHE_MIN 256
#define SITE_CACHE_MAX (1 << 17)
static SiteEntry *g_sites;
static Py_ssize_t g_sites_cap, g_sites_used;

static inline size_t
site_hash(PyObject *code, int lasti, int kind)
{
    size_t h = ((size_t)code >> 4) ^ ((size_t)(unsigned)lasti * 0x9E3779B1u) ^ (size_t)kind;
    return h ^ (h >> 13);
}

static PyObject * /* borrowed; NULL: not cached */
site_cache_get(PyObject *code, int lasti, int kind)
{
    if (g_sites == NULL)
        return NULL;
    size_t mask = (size_t)g_sites_cap - 1;
    for (size_t i = site_hash(code, lasti, kind) & mask;; i = (i + 1) & mask) {
        SiteEntry *e = &g_sites[i];
        if (e->code == NULL)
            return NULL;
        if (e->code == code && e->lasti == lasti && e->kind == kind)
            return e->value;
    }
}

static void
site_table_free(SiteEntry *t, Py_ssize_t cap)
{
    for (Py_ssize_t i = 0; i < cap; i++) {
        Py_XDECREF(t[i].code);
        Py_XDECREF(t[i].value);
    }
    PyMem_Free(t);
}

static PyObject *
clear_site_cache(PyObject *mod, PyObject *unused)
{
    SiteEntry *t = g_sites;
    Py_ssize_t cap = g_sites_cap;
    g_sites = NULL; /* detached first: the references dropped below may run code */
    g_sites_cap = g_sites_used = 0;
    if (t != NULL)
        site_table_free(t, cap);
    Py_RETURN_NONE;
}

static void
site_slot_set(PyObject *code, int lasti, int kind, PyObject *value)
{
    size_t mask = (size_t)g_sites_cap - 1;
    for (size_t i = site_hash(code, lasti, kind) & mask;; i = (i + 1) & mask) {
        SiteEntry *e = &g_sites[i];
        if (e->code == NULL) {
            e->code = code;
            e->value = value;
            e->lasti = lasti;
            e->kind = kind;
            g_sites_used++;
            return;
        }
        if (e->code == code && e->lasti == lasti && e->kind == kind) { /* cached meanwhile */
            PyObject *old_code = e->code, *old_value = e->value;
            e->code = code;
            e->value = value;
            Py_DECREF(old_code);
            Py_DECREF(old_value);
            return;
        }
    }
}

static int
site_cache_put(PyObject *code, int lasti, int kind, PyObject *value)
{
    if (g_sites == NULL || (g_sites_used + 1) * 2 > g_sites_cap) {
        SiteEntry *old = g_sites;
        Py_ssize_t old_cap = g_sites_cap;
        int keep = old != NULL && old_cap * 2 <= SITE_CACHE_MAX;
        Py_ssize_t cap = keep ? old_cap * 2 : SITE_CACHE_MIN;
        SiteEntry *t = PyMem_Calloc((size_t)cap, sizeof(SiteEntry));
        if (t == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        g_sites = t;
        g_sites_cap = cap;
        g_sites_used = 0;
        if (keep) { /* grown: the entries move, with their references */
            for (Py_ssize_t i = 0; i < old_cap; i++)
                if (old[i].code != NULL)
                    site_slot_set(old[i].code, old[i].lasti, old[i].kind, old[i].value);
            PyMem_Free(old);
        }
        else if (old != NULL) {
            site_table_free(old, old_cap); /* full: start again */
        }
    }
    Py_INCREF(code);
    Py_INCREF(value);
    site_slot_set(code, lasti, kind, value);
    return 0;
}

/* A new instance for `site`, as proxies.new_lock / new_rlock make it: serial, real lock, fields,
   one more made at the site, and last the registration (an instance listed is complete). */
static PyObject *
new_instance(int rlock, PyObject *site)
{
    if (!Py_IS_TYPE(site, g_site_type))
        return PyErr_Format(PyExc_TypeError, "a lockwatch site, not %.100s", Py_TYPE(site)->tp_name);
    long long serial;
    if (count_next(g_serials, &serial) < 0)
        return NULL;
    PyTypeObject *type = rlock ? g_rlock_cls : g_lock_cls;
    LW *self = (LW *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    if (rlock ? (self->real = PyObject_CallNoArgs(g_real_rlock)) == NULL : own_lock_for(self) < 0)
        goto error;
    self->serial = serial;
    Py_INCREF(g_empty);
    self->held_in = g_empty;
    Py_INCREF(Py_None);
    self->at_code = Py_None;
    self->at_lasti = -1;
    Py_INCREF(site);
    self->site = site;
    PyObject *made = SLOT(site, g_off_made); /* next(site.made) */
    if (made == NULL) {
        PyErr_SetString(PyExc_AttributeError, "made");
        goto error;
    }
    Py_INCREF(made);
    int r = count_next(made, NULL);
    Py_DECREF(made);
    if (r < 0)
        goto error;
    list_add(self); /* last: an instance registered is complete */
    return (PyObject *)self;
error:
    Py_DECREF(self);
    return NULL;
}

/* The lock for the calling Python frame, or *handled = 0 when patching's Python wrapper must
   make it. `wrapped` (or, if NULL, owner.__wrapped__) makes a real one. */
static PyObject *
make_for_caller(int rlock, PyObject *wrapped, PyObject *owner, int *handled)
{
    *handled = 0;
    if (!g_configured || g_lock_cls == NULL || g_site_verdict == NULL)
        return NULL;
    PyFrameObject *f = PyEval_GetFrame(); /* the caller: wrapt's C __call__ and this push none */
    if (f == NULL)
        return NULL;
    PyObject *code = (PyObject *)PyFrame_GetCode(f);
    int lasti = frame_lasti(f);
    PyObject *v = site_cache_get(code, lasti, rlock);
    if (v != NULL)
        Py_INCREF(v);
    else {
        PyObject *args[2] = {(PyObject *)f, rlock ? s_rlock : s_lock};
        v = PyObject_Vectorcall(g_site_verdict, args, 2, NULL);
        if (v == NULL) {
            Py_DECREF(code);
            *handled = 1;
            return NULL;
        }
        if (v == Py_None) { /* decided by more than the instruction */
            Py_DECREF(v);
            Py_DECREF(code);
            return NULL;
        }
        if (site_cache_put(code, lasti, rlock, v) < 0) {
            Py_DECREF(v);
            Py_DECREF(code);
            *handled = 1;
            return NULL;
        }
    }
    Py_DECREF(code);
    *handled = 1;
    PyObject *result;
    if (v == Py_False) { /* a real one */
        if (wrapped != NULL)
            result = PyObject_CallNoArgs(wrapped);
        else {
            PyObject *w = PyObject_GetAttr(owner, s_wrapped);
            result = w != NULL ? PyObject_CallNoArgs(w) : NULL;
            Py_XDECREF(w);
        }
    }
    else
        result = new_instance(rlock, v);
    Py_DECREF(v);
    return result;
}

static int
no_arguments(PyObject *args, PyObject *kwargs)
{
    return PyTuple_CheckExact(args) && PyTuple_GET_SIZE(args) == 0
           && (kwargs == Py_None || (PyDict_CheckExact(kwargs) && PyDict_GET_SIZE(kwargs) == 0));
}

/* factory(wrapped, instance, args, kwargs): wrapt's wrapper of threading.Lock (and RLock). */
static PyObject *
factory_call(int rlock, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4)
        return PyErr_Format(PyExc_TypeError, "a factory wrapper takes (wrapped, instance, args, kwargs)");
    if (no_arguments(args[2], args[3])) {
        int handled;
        PyObject *r = make_for_caller(rlock, args[0], NULL, &handled);
        if (handled)
            return r;
    }
    PyObject *fallback = rlock ? g_rlock_fallback : g_lock_fallback;
    if (fallback == NULL)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core.set_fallbacks() was not called");
    return PyObject_Vectorcall(fallback, args, 4, NULL);
}

static PyObject *
lock_factory(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    return factory_call(0, args, nargs);
}

static PyObject *
rlock_factory(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    return factory_call(1, args, nargs);
}

/* __call__(self, *args, **kwargs) of the factories' classes (patching): as
   rlock_factory(self.__wrapped__, None, args, kwargs) (or lock_factory's), without wrapt's call.
   For the RLock factory around threading's Python function, wrapt first looks for the function's
   __self__ (an AttributeError caught on every call); for Lock, wrapt's call makes a dict for the
   keyword arguments, compares its binding's name four times and calls the wrapper through a
   varargs call (~700 of ~2,400 instructions per Lock() in a loop, callgrind, 3.11). */
static PyObject *
factory_method(int rlock, PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0)) {
        int handled;
        PyObject *r = make_for_caller(rlock, NULL, self, &handled);
        if (handled)
            return r;
    }
    PyObject *fallback = rlock ? g_rlock_fallback : g_lock_fallback;
    if (fallback == NULL)
        return PyErr_Format(PyExc_RuntimeError, "lockwatch._core.set_fallbacks() was not called");
    PyObject *wrapped = PyObject_GetAttr(self, s_wrapped);
    PyObject *tuple = wrapped != NULL ? PyTuple_New(nargs) : NULL;
    PyObject *dict = tuple != NULL ? PyDict_New() : NULL;
    PyObject *res = NULL;
    if (dict != NULL) {
        for (Py_ssize_t i = 0; i < nargs; i++) {
            Py_INCREF(args[i]);
            PyTuple_SET_ITEM(tuple, i, args[i]);
        }
        Py_ssize_t nk = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
        Py_ssize_t i = 0;
        for (; i < nk; i++)
            if (PyDict_SetItem(dict, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
                break;
        if (i == nk) {
            PyObject *call[4] = {wrapped, Py_None, tuple, dict};
            res = PyObject_Vectorcall(fallback, call, 4, NULL);
        }
    }
    Py_XDECREF(wrapped);
    Py_XDECREF(tuple);
    Py_XDECREF(dict);
    return res;
}

static PyObject *
rlock_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return factory_method(1, self, args, nargs, kwnames);
}

static PyObject *
lock_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return factory_method(0, self, args, nargs, kwnames);
}

static PyMethodDef rlock_call_def = {
    "rlock_call", (PyCFunction)(void (*)(void))rlock_call, METH_FASTCALL | METH_KEYWORDS,
    "__call__ of the RLock factory (patching): an instrumented RLock for the calling frame.",
};

static PyMethodDef lock_call_def = {
    "lock_call", (PyCFunction)(void (*)(void))lock_call, METH_FASTCALL | METH_KEYWORDS,
    "__call__ of the Lock factory (patching): an instrumented Lock for the calling frame.",
};

/* set_fallbacks(lock_cls, rlock_cls, lock_fallback, rlock_fallback, site_verdict): the classes
   made (proxies' compiled Lock and RLock), patching's wrappers for the calls the factories leave
   to them, and patching's verdict on a creating instruction not cached yet (site_verdict(frame,
   kind): its Site, False for a real lock, None to leave the call to the fallback). */
static PyObject *
set_fallbacks(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyType_Check(args[0]) || !PyType_Check(args[1])
            || !PyType_IsSubtype((PyTypeObject *)args[0], &LockType)
            || !PyType_IsSubtype((PyTypeObject *)args[1], &RLockType))
        return PyErr_Format(PyExc_TypeError,
                            "set_fallbacks(lock_cls, rlock_cls, lock_fallback, rlock_fallback, site_verdict)");
    for (int i = 0; i < 5; i++)
        Py_INCREF(args[i]);
    Py_XSETREF(g_lock_cls, (PyTypeObject *)args[0]);
    Py_XSETREF(g_rlock_cls, (PyTypeObject *)args[1]);
    Py_XSETREF(g_lock_fallback, args[2]);
    Py_XSETREF(g_rlock_fallback, args[3]);
    Py_XSETREF(g_site_verdict, args[4]);
    clear_site_cache(NULL, NULL);
    Py_RETURN_NONE;
}

/* __del__ (proxies._Tracked.__del__): an instance that was never taken and has no edges only
   leaves the registry; any other is folded into its site by recorder.fold_instance. */
static void
lw_finalize(LW *self)
{
    /* First, before any Python code runs: a snapshot taken meanwhile must not find it (and take
       a new reference to an instance being finalized). */
    list_remove(self);
    if (!g_configured || self->serial == 0)
        return;
    /* Not simple: counts to fold into the site, edges to drop, or maybe an entry in recorder.live
       (made by __new__ and proxies._init, or given one with its first edge: its serial's int
       was made then). A simple one runs no code: the exception being raised (if any) stays. */
    LWExt *x = self->ext;
    int simple = self->n == 0 && !(self->flags & LW_MAYBE_IN_LIVE)
                 && (x == NULL || (x->nfail == 0 && x->in == NULL && x->out == NULL && x->serial == NULL));
    if (simple)
        return;
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyObject *res = PyObject_CallOneArg(g_fold_instance, (PyObject *)self);
    Py_XDECREF(res);
    PyErr_Clear(); /* as __del__'s `except Exception: pass` (interpreter shutdown) */
    PyErr_Restore(exc_type, exc_value, exc_tb);
}

static int
lw_traverse(LW *self, visitproc visit, void *arg)
{
    if (!(self->flags & LW_OWN))
        Py_VISIT(self->real);
    Py_VISIT(self->site);
    Py_VISIT(self->held_in);
    Py_VISIT(self->at_code);
    Py_VISIT(self->last);
    if (self->ext != NULL) {
        Py_VISIT(self->ext->in);
        Py_VISIT(self->ext->out);
        Py_VISIT(self->ext->ann);
        Py_VISIT(self->ext->serial);
    }
    return 0;
}

static int
lw_clear(LW *self)
{
    if (!(self->flags & LW_OWN))
        Py_CLEAR(self->real);
    Py_CLEAR(self->site);
    Py_CLEAR(self->held_in);
    Py_CLEAR(self->at_code);
    Py_CLEAR(self->last);
    if (self->ext != NULL) {
        Py_CLEAR(self->ext->in);
        Py_CLEAR(self->ext->out);
        Py_CLEAR(self->ext->ann);
        Py_CLEAR(self->ext->serial);
    }
    return 0;
}

static void
lw_dealloc(LW *self)
{
    PyObject_GC_UnTrack(self);
    list_remove(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    lw_clear(self);
    own_free(self);
    PyMem_Free(self->ext);
    self->ext = NULL;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define COMMON_MEMBERS \
    {"_site", T_OBJECT_EX, offsetof(LW, site), 0, NULL}, \
    {"_held_in", T_OBJECT_EX, offsetof(LW, held_in), 0, NULL}, \
    {"_at_code", T_OBJECT_EX, offsetof(LW, at_code), 0, NULL}, \
    {"_last", T_OBJECT, offsetof(LW, last), 0, NULL}, \
    {"_t", T_LONGLONG, offsetof(LW, t), 0, NULL}, \
    {"_at_lasti", T_INT, offsetof(LW, at_lasti), 0, NULL}, \
    {"_n", T_LONGLONG, offsetof(LW, n), 0, NULL}

/* The attributes kept in the extension (or computed): read as the pure-Python core's slots read,
   None or 0 until set. Setting None or 0 allocates nothing. */
static PyObject *
get_serial(LW *self, void *closure)
{
    if (self->serial == 0) {
        PyErr_SetString(PyExc_AttributeError, "_serial");
        return NULL;
    }
    if (self->ext != NULL) {
        PyObject *o = serial_object(self);
        Py_XINCREF(o);
        return o;
    }
    return PyLong_FromLongLong(self->serial);
}

static int
set_serial(LW *self, PyObject *value, void *closure)
{
    long long v = value != NULL ? PyLong_AsLongLong(value) : 0;
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v <= 0) {
        PyErr_SetString(PyExc_ValueError, "a serial number is positive");
        return -1;
    }
    self->serial = v;
    if (self->ext != NULL)
        Py_CLEAR(self->ext->serial);
    return 0;
}

#define EXT_OBJECT(name, field) \
    static PyObject * \
    get_##field(LW *self, void *closure) \
    { \
        PyObject *o = self->ext != NULL && self->ext->field != NULL ? self->ext->field : Py_None; \
        Py_INCREF(o); \
        return o; \
    } \
    static int \
    set_##field(LW *self, PyObject *value, void *closure) \
    { \
        if (value == NULL) { \
            PyErr_SetString(PyExc_AttributeError, "cannot delete " name); \
            return -1; \
        } \
        if (value == Py_None && self->ext == NULL) \
            return 0; \
        LWExt *x = ext_of(self); \
        if (x == NULL) \
            return -1; \
        PyObject *old = x->field; \
        if (value == Py_None) \
            x->field = NULL; \
        else { \
            Py_INCREF(value); \
            x->field = value; \
        } \
        Py_XDECREF(old); \
        return 0; \
    }

#define EXT_COUNT(name, field) \
    static PyObject * \
    get_##field(LW *self, void *closure) \
    { \
        return PyLong_FromLongLong(self->ext != NULL ? self->ext->field : 0); \
    } \
    static int \
    set_##field(LW *self, PyObject *value, void *closure) \
    { \
        if (value == NULL) { \
            PyErr_SetString(PyExc_AttributeError, "cannot delete " name); \
            return -1; \
        } \
        long long v = PyLong_AsLongLong(value); \
        if (v == -1 && PyErr_Occurred()) \
            return -1; \
        if (v == 0 && self->ext == NULL) \
            return 0; \
        LWExt *x = ext_of(self); \
        if (x == NULL) \
            return -1; \
        x->field = v; \
        return 0; \
    }

EXT_OBJECT("_in", in)
EXT_OBJECT("_out", out)
EXT_OBJECT("_ann", ann)
EXT_COUNT("_ncont", ncont)
EXT_COUNT("_nfail", nfail)
EXT_COUNT("_wait_tot", wait_tot)
EXT_COUNT("_wait_max", wait_max)

/* _hold_tot and _hold_max: counted in the site (see "hold totals"). */
static PyObject *
get_hold_zero(LW *self, void *closure)
{
    return PyLong_FromLong(0);
}

static int
set_hold(LW *self, PyObject *value, void *closure)
{
    int total = closure != NULL;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, total ? "cannot delete _hold_tot" : "cannot delete _hold_max");
        return -1;
    }
    long long v = PyLong_AsLongLong(value);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v == 0)
        return 0;
    return site_hold_add(self->site, v, total);
}

static PyObject *
get_real(LW *self, void *closure)
{
    PyObject *real = real_of(self);
    Py_XINCREF(real);
    return real;
}

static int
set_real(LW *self, PyObject *value, void *closure)
{
    if (value == NULL && self->real == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_real");
        return -1;
    }
    if (self->flags & LW_OWN)
        own_free(self); /* as the real lock object it would have been, dropped */
    Py_XINCREF(value);
    Py_XSETREF(self->real, value);
    return 0;
}

static PyObject *
get_hh(LW *self, void *closure)
{
    return hold_hist_of(self);
}

static int
set_hh(LW *self, PyObject *value, void *closure)
{
    return 0; /* proxies._init sets the pure-Python core's slot; here it is read from the site */
}

static PyGetSetDef lw_getset[] = {
    {"_real", (getter)get_real, (setter)set_real, NULL, NULL},
    {"_hold_tot", (getter)get_hold_zero, (setter)set_hold, NULL, "total"},
    {"_hold_max", (getter)get_hold_zero, (setter)set_hold, NULL, NULL},
    {"_serial", (getter)get_serial, (setter)set_serial, NULL, NULL},
    {"_in", (getter)get_in, (setter)set_in, NULL, NULL},
    {"_out", (getter)get_out, (setter)set_out, NULL, NULL},
    {"_ann", (getter)get_ann, (setter)set_ann, NULL, NULL},
    {"_ncont", (getter)get_ncont, (setter)set_ncont, NULL, NULL},
    {"_nfail", (getter)get_nfail, (setter)set_nfail, NULL, NULL},
    {"_wait_tot", (getter)get_wait_tot, (setter)set_wait_tot, NULL, NULL},
    {"_wait_max", (getter)get_wait_max, (setter)set_wait_max, NULL, NULL},
    {"_hh", (getter)get_hh, (setter)set_hh, NULL, NULL},
    {NULL},
};

static PyMemberDef lock_members[] = {COMMON_MEMBERS, {NULL}};
static PyMemberDef rlock_members[] = {
    COMMON_MEMBERS,
    {"_depth", T_LONGLONG, offsetof(LW, depth), 0, NULL},
    {NULL},
};

/* locked() and _is_owned() (proxies.Lock's: "held by someone"), without making the real lock
   object of an own handle. */
static PyObject *
lock_locked(LW *self, PyObject *unused)
{
    if (self->flags & LW_OWN)
        return PyBool_FromLong((self->flags & LW_LOCKED) != 0);
    PyObject *real = real_of(self);
    if (real == NULL)
        return NULL;
    Py_INCREF(real);
    PyObject *res = PyObject_CallMethodNoArgs(real, s_locked);
    Py_DECREF(real);
    return res;
}

static PyMethodDef lock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))lock_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1): recorded as proxies.Lock.acquire"},
    {"__enter__", (PyCFunction)lock_enter, METH_NOARGS, NULL},
    {"release", (PyCFunction)lock_release, METH_NOARGS, "release(): recorded as proxies.Lock.release"},
    {"__exit__", (PyCFunction)(void (*)(void))lock_exit, METH_FASTCALL, NULL},
    {"locked", (PyCFunction)lock_locked, METH_NOARGS, "locked(): as the real lock's"},
    {"_is_owned", (PyCFunction)lock_locked, METH_NOARGS,
     "_is_owned(): held by someone (threading.Condition's fallback for a Lock computes that)"},
    {NULL},
};

static PyMethodDef rlock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))rlock_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1): recorded as proxies.RLock.acquire"},
    {"__enter__", (PyCFunction)rlock_enter, METH_NOARGS, NULL},
    {"release", (PyCFunction)rlock_release, METH_NOARGS, "release(): recorded as proxies.RLock.release"},
    {"__exit__", (PyCFunction)(void (*)(void))rlock_exit, METH_FASTCALL, NULL},
    {NULL},
};

static PyTypeObject LockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lockwatch._core.Lock",
    .tp_basicsize = offsetof(LW, depth), /* an RLock's field, last */
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The compiled hot path of lockwatch.proxies.Lock (its base class).",
    .tp_new = lw_new,
    .tp_dealloc = (destructor)lw_dealloc,
    .tp_traverse = (traverseproc)lw_traverse,
    .tp_clear = (inquiry)lw_clear,
    .tp_finalize = (destructor)lw_finalize,
    .tp_weaklistoffset = offsetof(LW, weakreflist),
    .tp_methods = lock_methods,
    .tp_members = lock_members,
    .tp_getset = lw_getset,
};

static PyTypeObject RLockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lockwatch._core.RLock",
    .tp_basicsize = sizeof(LW),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The compiled hot path of lockwatch.proxies.RLock (its base class).",
    .tp_new = lw_new,
    .tp_dealloc = (destructor)lw_dealloc,
    .tp_traverse = (traverseproc)lw_traverse,
    .tp_clear = (inquiry)lw_clear,
    .tp_finalize = (destructor)lw_finalize,
    .tp_weaklistoffset = offsetof(LW, weakreflist),
    .tp_methods = rlock_methods,
    .tp_members = rlock_members,
    .tp_getset = lw_getset,
};

/* ---- stack keys ------------------------------------------------------------------------------ */

/* stacks.chain_key(frame), compiled: each frame's code (by id) and instruction from `frame`
   outward, to a stop frame (stacks._stop_cache, or stacks._is_stop for a file not cached yet),
   the thread's first frame or CHAIN_DEPTH frames. recorder._record_edges keys the stacks of new
   edges by it, once per acquisition that makes new edges (as_completed: once per future): the
   Python loop cost about 2 us there. The same key as the Python function's tuple, packed as bytes
   (struct.pack("Pq" * n, *key): a test compares); a process uses one of the two. */
static PyObject *g_stop_cache, *g_is_stop;
static int g_chain_depth;
typedef struct {
    void *code;
    long long lasti;
} chain_entry; /* struct format "Pq": see core_chain_key */

static PyObject *
core_set_chain_stops(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_Check(args[0]) || !PyCallable_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "set_chain_stops(stop_cache: dict, is_stop: callable, depth: int)");
        return NULL;
    }
    long depth = PyLong_AsLong(args[2]);
    if (depth == -1 && PyErr_Occurred())
        return NULL;
    Py_INCREF(args[0]);
    Py_XSETREF(g_stop_cache, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(g_is_stop, args[1]);
    g_chain_depth = depth < 0 ? 0 : (depth > INT_MAX ? INT_MAX : (int)depth);
    Py_RETURN_NONE;
}

static PyObject *
core_chain_key(PyObject *mod, PyObject *arg)
{
    if (g_stop_cache == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "chain_key: set_chain_stops() first");
        return NULL;
    }
    if (arg != Py_None && !PyFrame_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "chain_key(frame): a frame or None");
        return NULL;
    }
    /* The key as bytes: per frame, the code object's address (its id) and the instruction offset,
       native sizes (struct format "Pq"); one object to make and hash, not two ints per frame. */
    chain_entry small[32];
    chain_entry *buf = small;
    Py_ssize_t cap = 32, len = 0;
    PyFrameObject *f = arg == Py_None ? NULL : (PyFrameObject *)arg;
    Py_XINCREF(f);
    int n = g_chain_depth;
    while (f != NULL && n-- > 0) {
        PyCodeObject *code = PyFrame_GetCode(f); /* a new reference */
        PyObject *known = PyDict_GetItemWithError(g_stop_cache, code->co_filename); /* borrowed */
        int stop;
        if (known != NULL)
            stop = PyObject_IsTrue(known);
        else if (PyErr_Occurred())
            stop = -1;
        else {
            PyObject *r = PyObject_CallOneArg(g_is_stop, code->co_filename);
            stop = r == NULL ? -1 : PyObject_IsTrue(r);
            Py_XDECREF(r);
        }
        if (stop != 0) {
            Py_DECREF(code);
            if (stop < 0)
                goto error;
            break;
        }
        if (len == cap) {
            chain_entry *bigger = PyMem_Malloc(2 * cap * sizeof(chain_entry));
            if (bigger == NULL) {
                Py_DECREF(code);
                PyErr_NoMemory();
                goto error;
            }
            memcpy(bigger, buf, len * sizeof(chain_entry));
            if (buf != small)
                PyMem_Free(buf);
            buf = bigger;
            cap *= 2;
        }
        buf[len].code = (void *)code;
        buf[len].lasti = frame_lasti(f);
        len++;
        Py_DECREF(code);
        PyFrameObject *back = PyFrame_GetBack(f); /* a new reference, or NULL */
        Py_DECREF(f);
        f = back;
    }
    Py_XDECREF(f);
    PyObject *out = PyBytes_FromStringAndSize((const char *)buf, len * (Py_ssize_t)sizeof(chain_entry));
    if (buf != small)
        PyMem_Free(buf);
    return out;
error:
    Py_XDECREF(f);
    if (buf != small)
        PyMem_Free(buf);
    return NULL;
}

/* ---- configure() -------------------------------------------------------------------------- */

static int
member_offset(PyObject *type, const char *name, Py_ssize_t *off)
{
    PyObject *d = PyObject_GetAttrString(type, name);
    if (d == NULL)
        return -1;
    int ok = Py_IS_TYPE(d, &PyMemberDescr_Type)
             && ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX;
    if (ok)
        *off = ((PyMemberDescrObject *)d)->d_member->offset;
    Py_DECREF(d);
    return ok ? 0 : 1;
}

static int
call_method_truth(PyObject *o, const char *name)
{
    PyObject *r = PyObject_CallMethod(o, name, NULL);
    if (r == NULL)
        return -1;
    int v = PyObject_IsTrue(r);
    Py_DECREF(r);
    return v;
}

/* A lock taken through its methods shows in the fields we use, and one taken through the fields
   shows in its methods. */
static int
check_lock_layout(PyObject *sample)
{
    if (Py_TYPE(sample)->tp_basicsize != (Py_ssize_t)sizeof(RealLock))
        return 0;
    RealLock *r = (RealLock *)sample;
    if (call_method_truth(sample, "acquire") != 1)
        return -1;
    int ok = r->locked == 1 && r->lock_lock != NULL
             && PyThread_acquire_lock_timed(r->lock_lock, 0, 0) == PY_LOCK_FAILURE;
    if (call_method_truth(sample, "release") < 0)
        return -1;
    if (!ok || r->locked != 0)
        return 0;
    g_lock_type = Py_TYPE(sample);
    g_lock_layout = 1;
    ok = real_trylock(sample, 0) == 1 && call_method_truth(sample, "locked") == 1
         && real_release(sample, 0) == 0 && call_method_truth(sample, "locked") == 0;
    if (!ok) {
        g_lock_layout = 0;
        PyErr_Clear();
    }
    return 0;
}

static int
check_rlock_layout(PyObject *sample)
{
    if (Py_TYPE(sample)->tp_basicsize != (Py_ssize_t)sizeof(RealRLock))
        return 0;
    RealRLock *r = (RealRLock *)sample;
    if (call_method_truth(sample, "acquire") != 1 || call_method_truth(sample, "acquire") != 1)
        return -1;
    int ok = r->rlock_count == 2 && r->rlock_owner == PyThread_get_thread_ident() && r->rlock_lock != NULL;
    if (call_method_truth(sample, "release") < 0 || call_method_truth(sample, "release") < 0)
        return -1;
    if (!ok || r->rlock_count != 0)
        return 0;
    g_rlock_type = Py_TYPE(sample);
    g_rlock_layout = 1;
    ok = real_trylock(sample, 1) == 1 && call_method_truth(sample, "_is_owned") == 1
         && real_release(sample, 1) == 0 && call_method_truth(sample, "_is_owned") == 0;
    if (!ok) {
        g_rlock_layout = 0;
        PyErr_Clear();
    }
    return 0;
}

#define TAKE(var, key) do { \
        PyObject *_v = PyDict_GetItemString(kwargs, key); \
        if (_v == NULL) { PyErr_Format(PyExc_TypeError, "configure() needs %s", key); return NULL; } \
        Py_INCREF(_v); Py_XSETREF(var, _v); \
    } while (0)

static PyObject *
configure(PyObject *mod, PyObject *args, PyObject *kwargs)
{
    if (kwargs == NULL || PyTuple_GET_SIZE(args) != 0)
        return PyErr_Format(PyExc_TypeError, "configure() takes keyword arguments only");
    /* The configuration and the held-list cache are process-wide C globals: a subinterpreter
       (a site hook runs there too) would replace them with its own objects, freed when it ends,
       and the main interpreter's next release would use them. Subinterpreters take the
       pure-Python core. */
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        PyErr_SetString(PyExc_ImportError, "lockwatch._core serves the main interpreter only");
        return NULL;
    }
    TAKE(g_tls, "tls");
    TAKE(g_thread_start, "thread_start");
    TAKE(g_before, "before");
    TAKE(g_new_edges, "new_edges");
    if (g_one == NULL && (g_one = PyLong_FromLong(1)) == NULL)
        return NULL;
    TAKE(g_wait, "wait");
    TAKE(g_release_slow, "release_slow");
    TAKE(g_py_lock_acquire, "py_lock_acquire");
    TAKE(g_py_rlock_acquire, "py_rlock_acquire");
    TAKE(g_py_rlock_release, "py_rlock_release");
    TAKE(g_pending, "pending");
    TAKE(g_fold_instance, "fold_instance");
    TAKE(g_allocate_lock, "allocate_lock");
    TAKE(g_real_rlock, "real_rlock");
    TAKE(g_serials, "serials");
    PyObject *site_type = PyDict_GetItemString(kwargs, "site_type");
    if (site_type == NULL || !PyType_Check(site_type))
        return PyErr_Format(PyExc_TypeError, "configure() needs site_type");
    {
        Py_ssize_t off_made, off_hh;
        int rr = member_offset(site_type, "made", &off_made);
        if (rr == 0)
            rr = member_offset(site_type, "hold_hist", &off_hh);
        if (rr == 0)
            rr = member_offset(site_type, "hold_fast", &g_off_hold_fast);
        if (rr < 0)
            return NULL;
        if (rr > 0)
            return PyErr_Format(PyExc_TypeError, "site_type: made, hold_hist and hold_fast must be slots");
        Py_INCREF(site_type);
        Py_XSETREF(g_site_type, (PyTypeObject *)site_type);
        g_off_made = off_made;
        g_off_hold_hist = off_hh;
    }
    clear_site_cache(NULL, NULL);
    TAKE(g_count, "count");
    if (!PyDict_Check(g_pending))
        return PyErr_Format(PyExc_TypeError, "pending must be a dict");
    PyObject *edge = PyDict_GetItemString(kwargs, "edge_type");
    PyObject *sss = PyDict_GetItemString(kwargs, "same_site_sources");
    PyObject *lock_sample = PyDict_GetItemString(kwargs, "lock_sample");
    PyObject *rlock_sample = PyDict_GetItemString(kwargs, "rlock_sample");
    if (edge == NULL || !PyType_Check(edge) || sss == NULL || lock_sample == NULL || rlock_sample == NULL)
        return PyErr_Format(PyExc_TypeError, "configure() needs edge_type, same_site_sources, lock_sample, rlock_sample");
    g_same_site_sources = PyLong_AsSsize_t(sss);
    if (g_same_site_sources == -1 && PyErr_Occurred())
        return NULL;
    /* Edges are counted in C only if all five slots are plain object slots. */
    Py_CLEAR(g_edge_type);
    int r = 0;
    r |= member_offset(edge, "count", &g_off_count);
    r |= member_offset(edge, "held_ref", &g_off_held_ref);
    r |= member_offset(edge, "multi", &g_off_multi);
    r |= member_offset(edge, "timed", &g_off_timed);
    r |= member_offset(edge, "gates", &g_off_gates);
    if (r < 0)
        return NULL;
    if (r == 0) {
        Py_INCREF(edge);
        g_edge_type = (PyTypeObject *)edge;
    }
    Py_CLEAR(g_edge_new_type);
    r = 0;
    for (int i = 0; i < LW_EDGE_FIELDS; i++)
        r |= member_offset(edge, g_edge_fields[i], &g_edge_offs[i]);
    if (r < 0)
        return NULL;
    if (g_small_one == NULL && (g_small_one = PyLong_FromLong(1)) == NULL)
        return NULL;
    if (r == 0 && ((PyTypeObject *)edge)->tp_alloc != NULL) {
        Py_INCREF(edge);
        g_edge_new_type = (PyTypeObject *)edge;
    }
    PyObject *count_sample = PyDict_GetItemString(kwargs, "count_sample");
    if (count_sample == NULL)
        return PyErr_Format(PyExc_TypeError, "configure() needs count_sample (itertools.count(41))");
    if (check_count_layout(count_sample) < 0)
        return NULL;
    g_tls_plain = strcmp(Py_TYPE(g_tls)->tp_name, "_thread._local") == 0;
    forget_held_cache(NULL, NULL);
    g_lock_layout = g_rlock_layout = 0;
#if PY_VERSION_HEX < 0x030E0000
    if (check_lock_layout(lock_sample) < 0 || check_rlock_layout(rlock_sample) < 0)
        return NULL;
#endif
    g_configured = 1;
    return Py_BuildValue("{s:O,s:O,s:O,s:O,s:O}",
                         "counters", g_count_layout ? Py_True : Py_False,
                         "lock_handle", g_lock_layout ? Py_True : Py_False,
                         "rlock_handle", g_rlock_layout ? Py_True : Py_False,
                         "held_cache", (LW_HAVE_TLS && g_tls_plain) ? Py_True : Py_False,
                         "edges_in_c", g_edge_type != NULL && g_edge_new_type != NULL ? Py_True : Py_False);
}

/* bucket_of(d): the bucket the hot path counts a duration d (ns) in, for tests/test_cores.py. */
static PyObject *
core_bucket_of(PyObject *mod, PyObject *arg)
{
    long long d = PyLong_AsLongLong(arg);
    if (d == -1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromSsize_t(bucket_of(d));
}

/* ---- gates ---------------------------------------------------------------------------------- */

/* gates(held, dst, n, src=None): recorder._record_edges' gates of a new edge src -> dst, the
   (serial, site) of each of the first n locks among held[:n + 2] that are neither dst nor src, as
   a tuple: what `tuple([(h._serial, h._site) for h in held[:n + 2] if h is not dst and h is not
   src][:n])` makes. Its last
   answer is kept and given again while the same instances, with the same serials and sites, come
   first in the held list (as_completed() over n futures asks it n times with the same first
   locks held): an instance is told by its address and its serial, which no other instance has
   ever had, so the cache holds no reference to a lock (it would keep it alive), only to the
   tuple, whose sites it compares by address. */
#define LW_MAX_CACHED_GATES 8
static PyObject *g_gates_last;                     /* the tuple answered last, or NULL */
static PyObject *g_gates_of[LW_MAX_CACHED_GATES + 2]; /* the instances of held[:n + 2] then (not owned) */
static long long g_gates_serial[LW_MAX_CACHED_GATES + 2];
static Py_ssize_t g_gates_len, g_gates_n = -1;

static PyObject *
core_gates(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs < 3 || nargs > 4 || !PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "gates(held: list, dst, n: int, src=None)");
        return NULL;
    }
    PyObject *held = args[0], *dst = args[1], *src = nargs > 3 ? args[3] : Py_None;
    Py_ssize_t n = PyLong_AsSsize_t(args[2]);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0)
        n = 0;
    Py_ssize_t len = PyList_GET_SIZE(held) < n + 2 ? PyList_GET_SIZE(held) : n + 2;
    /* The cached answer: the same n, the same instances (address and serial) first, dst not
       among them, and each gate's site the one in the answer. */
    int cacheable = n <= LW_MAX_CACHED_GATES;
    if (cacheable && g_gates_last != NULL && g_gates_n == n && g_gates_len == len) {
        int same = 1;
        for (Py_ssize_t i = 0; i < len && same; i++) {
            PyObject *h = PyList_GET_ITEM(held, i);
            same = h == g_gates_of[i] && h != dst && h != src && IS_LW(h) && ((LW *)h)->serial == g_gates_serial[i];
        }
        Py_ssize_t k = 0;
        for (Py_ssize_t i = 0; i < len && same && k < PyTuple_GET_SIZE(g_gates_last); i++, k++) {
            PyObject *gate = PyTuple_GET_ITEM(g_gates_last, k);
            same = ((LW *)PyList_GET_ITEM(held, i))->site == PyTuple_GET_ITEM(gate, 1);
        }
        if (same) {
            Py_INCREF(g_gates_last);
            return g_gates_last;
        }
    }
    /* What the Python expression does: each attribute read as Python reads it (it may run code,
       which may change the list: its items are held while read). */
    PyObject *chosen = PyList_GetSlice(held, 0, len);
    if (chosen == NULL)
        return NULL;
    PyObject *out = PyTuple_New(n < len ? n : len);
    if (out == NULL) {
        Py_DECREF(chosen);
        return NULL;
    }
    Py_ssize_t k = 0;
    int all_lw = 1;
    for (Py_ssize_t i = 0; i < len && k < PyTuple_GET_SIZE(out); i++) {
        PyObject *h = PyList_GET_ITEM(chosen, i);
        if (h == dst || h == src) {
            all_lw = 0;
            continue;
        }
        all_lw = all_lw && IS_LW(h);
        PyObject *serial = PyObject_GetAttrString(h, "_serial");
        PyObject *site = serial != NULL ? PyObject_GetAttrString(h, "_site") : NULL;
        PyObject *gate = site != NULL ? PyTuple_Pack(2, serial, site) : NULL;
        Py_XDECREF(serial);
        Py_XDECREF(site);
        if (gate == NULL) {
            Py_DECREF(chosen);
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, k++, gate);
    }
    if (k < PyTuple_GET_SIZE(out)) { /* dst or src was among them, and fewer were left */
        PyObject *fewer = PyTuple_GetSlice(out, 0, k);
        Py_DECREF(out);
        out = fewer;
        if (out == NULL) {
            Py_DECREF(chosen);
            return NULL;
        }
    }
    PyObject *old = g_gates_last; /* dropped last: its sites' finalizers may run code */
    g_gates_last = NULL;
    if (cacheable && all_lw && PyList_GET_SIZE(chosen) == len) {
        for (Py_ssize_t i = 0; i < len; i++) {
            PyObject *h = PyList_GET_ITEM(chosen, i);
            g_gates_of[i] = h;
            g_gates_serial[i] = ((LW *)h)->serial;
        }
        g_gates_len = len;
        g_gates_n = n;
        Py_INCREF(out);
        g_gates_last = out;
    }
    Py_DECREF(chosen);
    Py_XDECREF(old);
    return out;
}

/* ---- new edges ------------------------------------------------------------------------------ */


/* new_edge(...): recorder.Edge(...) without its Python __init__ (what it sets, set here: change
   both; tests/test_cores.py compares them). */
static PyObject *
core_new_edge(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (g_edge_new_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "new_edge(): recorder.Edge's slots were not found at configure()");
        return NULL;
    }
    if (nargs != LW_EDGE_ARGS) {
        PyErr_Format(PyExc_TypeError, "new_edge() takes %d arguments", LW_EDGE_ARGS);
        return NULL;
    }
    PyObject *e = g_edge_new_type->tp_alloc(g_edge_new_type, 0);
    if (e == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < LW_EDGE_ARGS; i++) {
        Py_INCREF(args[i]);
        SLOT(e, g_edge_offs[i]) = args[i];
    }
    Py_INCREF(g_small_one);
    SLOT(e, g_edge_offs[LW_EDGE_ARGS]) = g_small_one;
    Py_INCREF(Py_False);
    SLOT(e, g_edge_offs[LW_EDGE_ARGS + 1]) = Py_False;
    return e;
}

/* store_edges(st, dst, made, live, mutex, max_kept): the part of recorder._record_edges under
   its mutex, for edges made by new_edge() between this core's instances: each (src, edge) of
   made goes into dst's _in, src's _out, recorder.live (both ends found by serial), st's
   edge_owners, site_edges and kept_edges, as the Python code there does it, step by step (a
   garbage collection at any allocation may run a finalizer that drops another lock's edges: what
   is used is held, and read again after). Returns the (src, edge) pairs added, or None, having
   done nothing, when something is not as this core makes it (_record_edges then does it). */
static PyObject *s_edge_owners, *s_site_edges, *s_kept_edges, *s_edges_version, *s_count_attr, *s_acquire_m, *s_release_m;

static int
dict_add_one(PyObject *o, PyObject *name) /* o.name += 1 */
{
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL)
        return -1;
    PyObject *w = PyNumber_Add(v, g_small_one);
    Py_DECREF(v);
    if (w == NULL)
        return -1;
    int r = PyObject_SetAttr(o, name, w);
    Py_DECREF(w);
    return r;
}

static int
store_one(PyObject *st, PyObject *ins, PyObject *dst_serial, PyObject *src, PyObject *e, PyObject *live,
          PyObject *site_edges, Py_ssize_t max_kept, PyObject *added)
{
    LW *s = (LW *)src;
    PyObject *serial = serial_object(s);
    if (serial == NULL)
        return -1;
    Py_INCREF(serial);
    int rc = -1;
    PyObject *first = PyDict_SetDefault(ins, serial, e);
    if (first == NULL)
        goto done;
    if (first != e) { /* another thread recorded it meanwhile (or src is twice in srcs) */
        Py_INCREF(first);
        rc = dict_add_one(first, s_count_attr);
        Py_DECREF(first);
        goto done;
    }
    LWExt *sx = ext_of(s);
    if (sx == NULL)
        goto done;
    if (sx->out == NULL) {
        PyObject *out = PySet_New(NULL);
        if (out == NULL)
            goto done;
        if (sx->out == NULL)
            sx->out = out;
        else
            Py_DECREF(out);
    }
    PyObject *out = sx->out;
    Py_INCREF(out);
    int r = PySet_Check(out) ? PySet_Add(out, dst_serial) : -2;
    if (r == -2) {
        PyObject *res = PyObject_CallMethod(out, "add", "O", dst_serial);
        r = res == NULL ? -1 : 0;
        Py_XDECREF(res);
    }
    Py_DECREF(out);
    if (r < 0)
        goto done;
    r = PyDict_Contains(live, serial);
    if (r < 0)
        goto done;
    if (r == 0) {
        PyObject *ref = PyWeakref_NewRef(src, NULL);
        if (ref == NULL)
            goto done;
        r = PyDict_SetItem(live, serial, ref);
        Py_DECREF(ref);
        if (r < 0)
            goto done;
    }
    if (dict_add_one(st, s_edges_version) < 0)
        goto done;
    PyObject *pair = PyTuple_Pack(2, SLOT(e, g_edge_offs[2]), SLOT(e, g_edge_offs[3])); /* (src_site, dst_site) */
    if (pair == NULL)
        goto done;
    PyObject *entry = PyDict_GetItemWithError(site_edges, pair);
    if (entry == NULL && !PyErr_Occurred()) {
        PyObject *fresh = Py_BuildValue("[Oi]", e, 0);
        if (fresh != NULL) {
            entry = PyDict_SetDefault(site_edges, pair, fresh);
            Py_DECREF(fresh);
        }
    }
    Py_DECREF(pair);
    if (entry == NULL)
        goto done;
    Py_INCREF(entry);
    PyObject *n = PySequence_GetItem(entry, 1);
    PyObject *n1 = n != NULL ? PyNumber_Add(n, g_small_one) : NULL;
    r = n1 != NULL ? PySequence_SetItem(entry, 1, n1) : -1;
    Py_XDECREF(n);
    Py_XDECREF(n1);
    Py_DECREF(entry);
    if (r < 0)
        goto done;
    /* A 2-cycle between instances: keep both edges (recorder._record_edges says why). */
    PyObject *src_in = s->ext != NULL ? s->ext->in : NULL;
    if (src_in != NULL) {
        Py_INCREF(src_in);
        int truth = PyDict_CheckExact(src_in) ? PyDict_GET_SIZE(src_in) > 0 : PyObject_IsTrue(src_in);
        PyObject *rev = NULL;
        if (truth > 0 && PyDict_CheckExact(src_in)) {
            rev = PyDict_GetItemWithError(src_in, dst_serial);
            if (rev == NULL && PyErr_Occurred())
                truth = -1;
            Py_XINCREF(rev);
        }
        else if (truth > 0) {
            rev = PyObject_CallMethod(src_in, "get", "O", dst_serial);
            if (rev == Py_None)
                Py_CLEAR(rev);
            else if (rev == NULL)
                truth = -1;
        }
        Py_DECREF(src_in);
        if (truth < 0)
            goto done;
        if (rev != NULL) {
            PyObject *kept = PyObject_GetAttr(st, s_kept_edges);
            Py_ssize_t len = kept != NULL ? PyObject_Length(kept) : -1;
            r = len < 0 ? -1 : 0;
            if (r == 0 && len < max_kept) {
                PyObject *k1 = PyTuple_Pack(2, serial, dst_serial), *k2 = PyTuple_Pack(2, dst_serial, serial);
                r = k1 == NULL || k2 == NULL || PyObject_SetItem(kept, k1, e) < 0 || PyObject_SetItem(kept, k2, rev) < 0
                    ? -1 : 0;
                Py_XDECREF(k1);
                Py_XDECREF(k2);
            }
            Py_XDECREF(kept);
            Py_DECREF(rev);
            if (r < 0)
                goto done;
        }
    }
    PyObject *pr = PyTuple_Pack(2, src, e);
    if (pr == NULL)
        goto done;
    rc = PyList_Append(added, pr);
    Py_DECREF(pr);
done:
    Py_DECREF(serial);
    return rc;
}

static PyObject *
core_store_edges(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "store_edges(st, dst, made, live, mutex, max_kept)");
        return NULL;
    }
    PyObject *st = args[0], *dst = args[1], *made = args[2], *live = args[3], *mutex = args[4];
    Py_ssize_t max_kept = PyLong_AsSsize_t(args[5]);
    if (max_kept == -1 && PyErr_Occurred())
        return NULL;
    if (s_edge_owners == NULL) {
        if ((s_edge_owners = PyUnicode_InternFromString("edge_owners")) == NULL
            || (s_site_edges = PyUnicode_InternFromString("site_edges")) == NULL
            || (s_kept_edges = PyUnicode_InternFromString("kept_edges")) == NULL
            || (s_edges_version = PyUnicode_InternFromString("edges_version")) == NULL
            || (s_count_attr = PyUnicode_InternFromString("count")) == NULL
            || (s_acquire_m = PyUnicode_InternFromString("acquire")) == NULL
            || (s_release_m = PyUnicode_InternFromString("release")) == NULL)
            return NULL;
    }
    /* Everything checked before anything is done. */
    if (g_edge_new_type == NULL || !IS_LW(dst) || ((LW *)dst)->serial == 0 || !PyList_CheckExact(made)
        || !PyDict_CheckExact(live))
        Py_RETURN_NONE;
    if (((LW *)dst)->ext != NULL && ((LW *)dst)->ext->in != NULL && !PyDict_CheckExact(((LW *)dst)->ext->in))
        Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(made); i++) {
        PyObject *pr = PyList_GET_ITEM(made, i);
        if (!PyTuple_CheckExact(pr) || PyTuple_GET_SIZE(pr) != 2 || !IS_LW(PyTuple_GET_ITEM(pr, 0))
            || ((LW *)PyTuple_GET_ITEM(pr, 0))->serial == 0 || !Py_IS_TYPE(PyTuple_GET_ITEM(pr, 1), g_edge_new_type))
            Py_RETURN_NONE;
    }
    PyObject *added = PyList_New(0);
    PyObject *fresh = PyDict_New();
    LWExt *dx = ext_of((LW *)dst);
    PyObject *dst_serial = dx != NULL ? serial_object((LW *)dst) : NULL;
    if (added == NULL || fresh == NULL || dst_serial == NULL) {
        Py_XDECREF(added);
        Py_XDECREF(fresh);
        return NULL;
    }
    Py_INCREF(dst_serial);
    Py_INCREF(made);
    PyObject *ins = NULL, *ref = NULL, *site_edges = NULL;
    PyObject *res = PyObject_CallMethodNoArgs(mutex, s_acquire_m);
    if (res == NULL)
        goto fail;
    Py_DECREF(res);
    if (dx->in == NULL) { /* nothing comes between (no allocation) */
        Py_INCREF(fresh);
        dx->in = fresh;
    }
    ins = dx->in;
    Py_INCREF(ins);
    if (!PyDict_Check(ins)) {
        PyErr_SetString(PyExc_TypeError, "_in is not a dict");
        goto unlock;
    }
    ref = PyDict_GetItemWithError(live, dst_serial);
    if (ref != NULL) {
        Py_INCREF(ref);
    }
    else {
        if (PyErr_Occurred() || (ref = PyWeakref_NewRef(dst, NULL)) == NULL
            || PyDict_SetItem(live, dst_serial, ref) < 0)
            goto unlock;
    }
    if (ins == fresh) {
        PyObject *owners = PyObject_GetAttr(st, s_edge_owners);
        int r = owners == NULL ? -1 : PyObject_SetItem(owners, dst_serial, ref);
        Py_XDECREF(owners);
        if (r < 0)
            goto unlock;
    }
    site_edges = PyObject_GetAttr(st, s_site_edges);
    if (site_edges == NULL)
        goto unlock;
    if (!PyDict_Check(site_edges)) {
        PyErr_SetString(PyExc_TypeError, "site_edges is not a dict");
        goto unlock;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(made); i++) {
        PyObject *pr = PyList_GET_ITEM(made, i);
        Py_INCREF(pr);
        int r = store_one(st, ins, dst_serial, PyTuple_GET_ITEM(pr, 0), PyTuple_GET_ITEM(pr, 1), live, site_edges,
                          max_kept, added);
        Py_DECREF(pr);
        if (r < 0)
            goto unlock;
    }
    res = PyObject_CallMethodNoArgs(mutex, s_release_m);
    if (res == NULL)
        goto fail;
    Py_DECREF(res);
    Py_DECREF(ins);
    Py_DECREF(ref);
    Py_DECREF(site_edges);
    Py_DECREF(dst_serial);
    Py_DECREF(made);
    Py_DECREF(fresh);
    return added;
unlock: {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        res = PyObject_CallMethodNoArgs(mutex, s_release_m);
        Py_XDECREF(res);
        if (type != NULL)
            PyErr_Restore(type, value, tb); /* the first error wins (as a with block's) */
    }
fail:
    Py_XDECREF(ins);
    Py_XDECREF(ref);
    Py_XDECREF(site_edges);
    Py_DECREF(dst_serial);
    Py_DECREF(made);
    Py_DECREF(fresh);
    Py_DECREF(added);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "Set up the hot path (proxies.py calls it once at import)."},
    {"new", (PyCFunction)(void (*)(void))lw_make, METH_FASTCALL,
     "new(cls, real, serial, site): an instance set up as proxies._init sets one up."},
    {"forget_held_cache", forget_held_cache, METH_NOARGS,
     "Forget this thread's cached held list (looked up again in recorder.tls)."},
    {"new_edge", (PyCFunction)(void (*)(void))core_new_edge, METH_FASTCALL,
     "new_edge(src_serial, dst_serial, src_site, dst_site, src_name, dst_name, thread, held_stack, "
     "acquire_stack, timed, context, gates, thread_id, held_ref): a recorder.Edge, made as its __init__ makes one."},
    {"store_edges", (PyCFunction)(void (*)(void))core_store_edges, METH_FASTCALL,
     "store_edges(st, dst, made, live, mutex, max_kept): recorder._record_edges' part under its mutex, or None."},
    {"gates", (PyCFunction)(void (*)(void))core_gates, METH_FASTCALL,
     "gates(held, dst, n, src=None): the (serial, site) of the first n locks of held[:n + 2] that are neither dst nor src."},
    {"chain_key", core_chain_key, METH_O,
     "chain_key(frame): stacks.chain_key(frame), compiled, as bytes (struct \"Pq\" per frame; set_chain_stops first)."},
    {"set_chain_stops", (PyCFunction)(void (*)(void))core_set_chain_stops, METH_FASTCALL,
     "set_chain_stops(stop_cache, is_stop, depth): what chain_key reads (stacks' stop frames and CHAIN_DEPTH)."},
    {"live_instances", live_instances, METH_NOARGS,
     "The live instances of these types (their registry: see \"the registry\")."},
    {"clear_site_cache", clear_site_cache, METH_NOARGS,
     "Forget the sites cached by creating instruction (recorder.reset_hooks)."},
    {"set_fallbacks", (PyCFunction)(void (*)(void))set_fallbacks, METH_FASTCALL,
     "set_fallbacks(lock_cls, rlock_cls, lock_fallback, rlock_fallback, site_verdict): see lock_factory."},
    {"lock_factory", (PyCFunction)(void (*)(void))lock_factory, METH_FASTCALL,
     "lock_factory(wrapped, instance, args, kwargs): wrapt's wrapper of threading.Lock."},
    {"rlock_factory", (PyCFunction)(void (*)(void))rlock_factory, METH_FASTCALL,
     "rlock_factory(wrapped, instance, args, kwargs): wrapt's wrapper of threading.RLock."},
    {"condition_methods", (PyCFunction)(void (*)(void))condition_methods, METH_FASTCALL,
     "condition_methods(cls, lock_cls, rlock_cls, py_enter, py_notify, orig_notify, waits_dict, max_wakers, "
     "deque): primitives.Condition's compiled methods (see \"Condition\")."},
    {"condition_creation", (PyCFunction)(void (*)(void))condition_creation, METH_FASTCALL,
     "condition_creation(cls, orig_cls, py_new, py_init, primitives_dict, threading_file): primitives.Condition's "
     "compiled __new__ and __init__ (see \"Condition: creation\")."},
    {"semaphore_methods", (PyCFunction)(void (*)(void))semaphore_methods, METH_FASTCALL,
     "semaphore_methods(orig_sem, orig_bsem, py_acquire, py_release, sem_block, hold_type, recorder_dict, "
     "site_type, orig_condition, deque): primitives' Semaphore and BoundedSemaphore's compiled methods (see \"Semaphore\")."},
    {"bucket_of", core_bucket_of, METH_O,
     "bucket_of(d): the histogram bucket the compiled hot path counts a duration d (ns) in."},
    {NULL},
};

static struct PyModuleDef coremodule = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "lockwatch._core",
    .m_doc = "The compiled hot path of lockwatch's Lock, RLock, Condition and semaphores "
             "(see lockwatch/proxies.py and lockwatch/primitives.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    s_held = PyUnicode_InternFromString("held");
    s_acquire = PyUnicode_InternFromString("acquire");
    s_release = PyUnicode_InternFromString("release");
    s_locked = PyUnicode_InternFromString("locked");
    s_hold_hist = PyUnicode_InternFromString("hold_hist");
    s_wrapped = PyUnicode_InternFromString("__wrapped__");
    s_lock = PyUnicode_InternFromString("Lock");
    s_rlock = PyUnicode_InternFromString("RLock");
    s__lock = PyUnicode_InternFromString("_lock");
    s__waiters = PyUnicode_InternFromString("_waiters");
    s__is_owned = PyUnicode_InternFromString("_is_owned");
    s_notify = PyUnicode_InternFromString("notify");
    s__lockwatch_wakers = PyUnicode_InternFromString("_lockwatch_wakers");
    s_active = PyUnicode_InternFromString("active");
    s___exit__ = PyUnicode_InternFromString("__exit__");
    if (s__lock == NULL || s__waiters == NULL || s__is_owned == NULL || s_notify == NULL
            || s__lockwatch_wakers == NULL || s_active == NULL || s___exit__ == NULL)
        return NULL;
    if (intern_semaphore_names() < 0)
        return NULL;
    g_empty = PyTuple_New(0);
    if (s_held == NULL || s_acquire == NULL || s_release == NULL || s_locked == NULL || s_hold_hist == NULL || s_wrapped == NULL
            || s_lock == NULL || s_rlock == NULL || g_empty == NULL)
        return NULL;
    if (PyType_Ready(&LockType) < 0 || PyType_Ready(&RLockType) < 0 || PyType_Ready(&HoldCountsType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&coremodule);
    if (m == NULL)
        return NULL;
    /* proxies.py uses this module only if it was built from the same source (an in-place build
       left over from an older checkout is ignored): bump on any change of what proxies calls. */
    if (PyModule_AddIntConstant(m, "API", LW_API) < 0)
        goto error;
    Py_INCREF(&LockType);
    if (PyModule_AddObject(m, "Lock", (PyObject *)&LockType) < 0)
        goto error;
    Py_INCREF(&RLockType);
    if (PyModule_AddObject(m, "RLock", (PyObject *)&RLockType) < 0)
        goto error;
    Py_INCREF(&HoldCountsType);
    if (PyModule_AddObject(m, "HoldCounts", (PyObject *)&HoldCountsType) < 0)
        goto error;
    /* Methods of any object: the factories' classes take them as their __call__. */
    PyObject *call = PyDescr_NewMethod(&PyBaseObject_Type, &rlock_call_def);
    if (call == NULL || PyModule_AddObject(m, "rlock_call", call) < 0) {
        Py_XDECREF(call);
        goto error;
    }
    call = PyDescr_NewMethod(&PyBaseObject_Type, &lock_call_def);
    if (call == NULL || PyModule_AddObject(m, "lock_call", call) < 0) {
        Py_XDECREF(call);
        goto error;
    }
    return m;
error:
    Py_DECREF(m);
    return NULL;
}
