/* lockwatch._core: the compiled hot path of lockwatch.proxies' Lock and RLock.
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
 * the other way round); otherwise through its methods.
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

#define LW_API 3 /* what proxies.py expects: _core.API */

/* ---- the instance ------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *real;      /* _real: the _thread lock */
    PyObject *serial;    /* _serial: int */
    PyObject *site;      /* _site */
    PyObject *in;        /* _in: {source serial: Edge} or None */
    PyObject *out;       /* _out */
    PyObject *held_in;   /* _held_in: the holder's held list, () when not held */
    PyObject *at_code;   /* _at_code */
    PyObject *hh;        /* _hh: the site's hold histogram (dict: bucket -> itertools.count) */
    PyObject *ann;       /* _ann */
    PyObject *last;      /* _last: the held list of the thread that released it last (NULL: None) */
    long long t, at_lasti, n, ncont, nfail, hold_tot, hold_max, wait_tot, wait_max, depth;
    PyObject *weakreflist;
} LW;

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
static PyObject *g_wait;            /* proxies._wait */
static PyObject *g_release_slow;    /* proxies._release_slow */
static PyObject *g_py_lock_acquire; /* the pure-Python methods, for the other cases */
static PyObject *g_py_rlock_acquire;
static PyObject *g_py_rlock_release;
static PyObject *g_pending;         /* recorder.pending */
static PyObject *g_live;            /* recorder.live: serial -> weakref of each live instance */
static PyObject *g_fold_instance;   /* recorder.fold_instance */
static PyObject *g_count;           /* histogram.add: a bucket's first duration */
static PyTypeObject *g_edge_type;   /* recorder.Edge */
static Py_ssize_t g_off_count, g_off_held_ref, g_off_multi, g_off_timed, g_off_gates;
static PyTypeObject *g_lock_type;   /* type(_thread.allocate_lock()) */
static PyTypeObject *g_rlock_type;  /* type(threading.RLock()) as proxies makes them */
static int g_lock_layout, g_rlock_layout; /* the layouts above verified */
static int g_tls_plain;             /* recorder.tls is CPython's _thread._local */
static Py_ssize_t g_same_site_sources = 8;
static int g_configured;

static PyObject *s_held, *s_acquire, *s_release, *s_hold_hist, *g_empty;

static PyTypeObject LockType;
static PyTypeObject RLockType;

#define IS_LW(o) (Py_IS_TYPE(o, &LockType) || Py_IS_TYPE(o, &RLockType) || \
                  PyObject_TypeCheck(o, &LockType) || PyObject_TypeCheck(o, &RLockType))

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

/* ---- recording ---------------------------------------------------------------------------- */

#define SLOT(o, off) (*(PyObject **)((char *)(o) + (off)))

/* proxies._before(lock, held, False) for the common case, all in C: every other lock held is
   one of these types and its edge into `self` is known, ungated. Returns 1 when done, 0 when
   proxies._before must run instead (nothing changed then), -1 on error. */
static int
count_known_edges(LW *self, PyObject *held)
{
    if (!PyList_CheckExact(held) || g_edge_type == NULL)
        return 0;
    if (g_pending != NULL && PyDict_GET_SIZE(g_pending) > 0)
        return 0; /* releases handed over by other threads: _before drains them */
    Py_ssize_t n = PyList_GET_SIZE(held);
    if (n > g_same_site_sources)
        return 0; /* proxies._sources */
    PyObject *ins = self->in;
    int need = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = PyList_GET_ITEM(held, i);
        if (h == (PyObject *)self)
            continue;
        need = 1;
        if (ins == NULL || !PyDict_CheckExact(ins) || !IS_LW(h))
            return 0;
        PyObject *serial = ((LW *)h)->serial;
        if (serial == NULL || !PyLong_CheckExact(serial))
            return 0;
        PyObject *e = PyDict_GetItemWithError(ins, serial);
        if (e == NULL) {
            if (PyErr_Occurred())
                return -1;
            return 0; /* a new edge */
        }
        if (!Py_IS_TYPE(e, g_edge_type))
            return 0;
        PyObject *gates = SLOT(e, g_off_gates);
        PyObject *timed = SLOT(e, g_off_timed);
        PyObject *count = SLOT(e, g_off_count);
        if (gates == NULL || !PyTuple_CheckExact(gates) || PyTuple_GET_SIZE(gates) != 0)
            return 0;
        if (timed != Py_True && timed != Py_False)
            return 0;
        if (count == NULL || !PyLong_CheckExact(count))
            return 0;
    }
    if (!need)
        return 1;
    /* Nothing above ran Python code: the list and the edges are as checked. But an allocation
       below may collect garbage, and a finalizer run then may change the list or drop an edge (a
       lock dying): hold what is used, and look again each time. */
    Py_INCREF(ins);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(held); i++) {
        PyObject *h = PyList_GET_ITEM(held, i);
        if (h == (PyObject *)self || !IS_LW(h) || ((LW *)h)->serial == NULL)
            continue;
        PyObject *e = PyDict_GetItemWithError(ins, ((LW *)h)->serial);
        if (e == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(ins);
                return -1;
            }
            continue; /* dropped meanwhile (its source died) */
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
                return -1;
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
            return -1;
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
    return 1;
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
#if PY_VERSION_HEX >= 0x030B0000
        lasti = PyFrame_GetLasti(f);
#elif PY_VERSION_HEX >= 0x030A0000
        lasti = f->f_lasti < 0 ? -1 : (long long)f->f_lasti * 2;
#else
        lasti = f->f_lasti;
#endif
    }
    PyObject *old = self->at_code;
    self->at_code = code;
    Py_XDECREF(old);
    self->at_lasti = lasti;
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
    if (self->real == NULL || self->hh == NULL || self->held_in == NULL) {
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
    PyObject *real = self->real;
    Py_INCREF(real);
    long long t;
    int ok = real_trylock(real, 0);
    if (ok > 0)
        t = now_ns();
    else if (ok < 0 || wait_for(self, real, &t) < 0) {
        Py_DECREF(real);
        goto error;
    }
    Py_DECREF(real);
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
    long long d = t - self->t;
    self->hold_tot += d;
    if (d > self->hold_max)
        self->hold_max = d;
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
    PyObject *real = self->real, *hh = self->hh;
    Py_INCREF(real);
    Py_INCREF(hh);
    int r = real_release(real, rlock);
    Py_DECREF(real);
    if (r == 0)
        r = count_hold(hh, d);
    Py_DECREF(hh);
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
    return (PyObject *)self;
}

/* _core.new(cls, real, serial, site): an instance set up as proxies._init sets one up, all
   fields at once (its caller finds the site, counts it made and registers the instance). */
static PyObject *
lw_make(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyType_Check(args[0])
            || !(PyType_IsSubtype((PyTypeObject *)args[0], &LockType)
                 || PyType_IsSubtype((PyTypeObject *)args[0], &RLockType)))
        return PyErr_Format(PyExc_TypeError, "new(cls, real, serial, site): cls of lockwatch._core's types");
    PyObject *hh = PyObject_GetAttr(args[3], s_hold_hist);
    if (hh == NULL)
        return NULL;
    PyTypeObject *type = (PyTypeObject *)args[0];
    LW *self = (LW *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(hh);
        return NULL;
    }
    Py_INCREF(args[1]);
    self->real = args[1];
    Py_INCREF(args[2]);
    self->serial = args[2];
    Py_INCREF(Py_None);
    self->in = Py_None;
    Py_INCREF(Py_None);
    self->out = Py_None;
    Py_INCREF(g_empty);
    self->held_in = g_empty;
    Py_INCREF(Py_None);
    self->at_code = Py_None;
    self->at_lasti = -1;
    self->hh = hh;
    Py_INCREF(Py_None);
    self->ann = Py_None;
    Py_INCREF(args[3]);
    self->site = args[3];
    return (PyObject *)self;
}

/* __del__ (proxies._Tracked.__del__): an instance that was never taken and has no edges only
   leaves the registry; any other is folded into its site by recorder.fold_instance. */
static void
lw_finalize(LW *self)
{
    if (!g_configured || self->serial == NULL)
        return;
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    int simple = self->n == 0 && self->nfail == 0
                 && (self->in == NULL || self->in == Py_None)
                 && (self->out == NULL || self->out == Py_None);
    if (simple) {
        if (PyDict_CheckExact(g_live)) {
            if (PyDict_DelItem(g_live, self->serial) < 0)
                PyErr_Clear(); /* not registered (half made): as live.pop(serial, None) */
        }
        else {
            simple = 0;
        }
    }
    if (!simple) {
        PyObject *res = PyObject_CallOneArg(g_fold_instance, (PyObject *)self);
        Py_XDECREF(res);
    }
    PyErr_Clear(); /* as __del__'s `except Exception: pass` (interpreter shutdown) */
    PyErr_Restore(exc_type, exc_value, exc_tb);
}

static int
lw_traverse(LW *self, visitproc visit, void *arg)
{
    Py_VISIT(self->real);
    Py_VISIT(self->serial);
    Py_VISIT(self->site);
    Py_VISIT(self->in);
    Py_VISIT(self->out);
    Py_VISIT(self->held_in);
    Py_VISIT(self->at_code);
    Py_VISIT(self->hh);
    Py_VISIT(self->ann);
    Py_VISIT(self->last);
    return 0;
}

static int
lw_clear(LW *self)
{
    Py_CLEAR(self->real);
    Py_CLEAR(self->serial);
    Py_CLEAR(self->site);
    Py_CLEAR(self->in);
    Py_CLEAR(self->out);
    Py_CLEAR(self->held_in);
    Py_CLEAR(self->at_code);
    Py_CLEAR(self->hh);
    Py_CLEAR(self->ann);
    Py_CLEAR(self->last);
    return 0;
}

static void
lw_dealloc(LW *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    lw_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define COMMON_MEMBERS \
    {"_real", T_OBJECT_EX, offsetof(LW, real), 0, NULL}, \
    {"_serial", T_OBJECT_EX, offsetof(LW, serial), 0, NULL}, \
    {"_site", T_OBJECT_EX, offsetof(LW, site), 0, NULL}, \
    {"_in", T_OBJECT_EX, offsetof(LW, in), 0, NULL}, \
    {"_out", T_OBJECT_EX, offsetof(LW, out), 0, NULL}, \
    {"_held_in", T_OBJECT_EX, offsetof(LW, held_in), 0, NULL}, \
    {"_at_code", T_OBJECT_EX, offsetof(LW, at_code), 0, NULL}, \
    {"_hh", T_OBJECT_EX, offsetof(LW, hh), 0, NULL}, \
    {"_ann", T_OBJECT_EX, offsetof(LW, ann), 0, NULL}, \
    {"_last", T_OBJECT, offsetof(LW, last), 0, NULL}, \
    {"_t", T_LONGLONG, offsetof(LW, t), 0, NULL}, \
    {"_at_lasti", T_LONGLONG, offsetof(LW, at_lasti), 0, NULL}, \
    {"_n", T_LONGLONG, offsetof(LW, n), 0, NULL}, \
    {"_ncont", T_LONGLONG, offsetof(LW, ncont), 0, NULL}, \
    {"_nfail", T_LONGLONG, offsetof(LW, nfail), 0, NULL}, \
    {"_hold_tot", T_LONGLONG, offsetof(LW, hold_tot), 0, NULL}, \
    {"_hold_max", T_LONGLONG, offsetof(LW, hold_max), 0, NULL}, \
    {"_wait_tot", T_LONGLONG, offsetof(LW, wait_tot), 0, NULL}, \
    {"_wait_max", T_LONGLONG, offsetof(LW, wait_max), 0, NULL}

static PyMemberDef lock_members[] = {COMMON_MEMBERS, {NULL}};
static PyMemberDef rlock_members[] = {
    COMMON_MEMBERS,
    {"_depth", T_LONGLONG, offsetof(LW, depth), 0, NULL},
    {NULL},
};

static PyMethodDef lock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))lock_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1): recorded as proxies.Lock.acquire"},
    {"__enter__", (PyCFunction)lock_enter, METH_NOARGS, NULL},
    {"release", (PyCFunction)lock_release, METH_NOARGS, "release(): recorded as proxies.Lock.release"},
    {"__exit__", (PyCFunction)(void (*)(void))lock_exit, METH_FASTCALL, NULL},
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
    .tp_basicsize = sizeof(LW),
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
};

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
    TAKE(g_wait, "wait");
    TAKE(g_release_slow, "release_slow");
    TAKE(g_py_lock_acquire, "py_lock_acquire");
    TAKE(g_py_rlock_acquire, "py_rlock_acquire");
    TAKE(g_py_rlock_release, "py_rlock_release");
    TAKE(g_pending, "pending");
    TAKE(g_live, "live");
    TAKE(g_fold_instance, "fold_instance");
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
    g_tls_plain = strcmp(Py_TYPE(g_tls)->tp_name, "_thread._local") == 0;
    forget_held_cache(NULL, NULL);
    g_lock_layout = g_rlock_layout = 0;
#if PY_VERSION_HEX < 0x030E0000
    if (check_lock_layout(lock_sample) < 0 || check_rlock_layout(rlock_sample) < 0)
        return NULL;
#endif
    g_configured = 1;
    return Py_BuildValue("{s:O,s:O,s:O,s:O}",
                         "lock_handle", g_lock_layout ? Py_True : Py_False,
                         "rlock_handle", g_rlock_layout ? Py_True : Py_False,
                         "held_cache", (LW_HAVE_TLS && g_tls_plain) ? Py_True : Py_False,
                         "edges_in_c", g_edge_type != NULL ? Py_True : Py_False);
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

static PyMethodDef module_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "Set up the hot path (proxies.py calls it once at import)."},
    {"new", (PyCFunction)(void (*)(void))lw_make, METH_FASTCALL,
     "new(cls, real, serial, site): an instance set up as proxies._init sets one up."},
    {"forget_held_cache", forget_held_cache, METH_NOARGS,
     "Forget this thread's cached held list (looked up again in recorder.tls)."},
    {"bucket_of", core_bucket_of, METH_O,
     "bucket_of(d): the histogram bucket the compiled hot path counts a duration d (ns) in."},
    {NULL},
};

static struct PyModuleDef coremodule = {
    PyModuleDef_HEAD_INIT, "lockwatch._core",
    "The compiled hot path of lockwatch's Lock and RLock (see lockwatch/proxies.py).", -1, module_methods,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    s_held = PyUnicode_InternFromString("held");
    s_acquire = PyUnicode_InternFromString("acquire");
    s_release = PyUnicode_InternFromString("release");
    s_hold_hist = PyUnicode_InternFromString("hold_hist");
    g_empty = PyTuple_New(0);
    if (s_held == NULL || s_acquire == NULL || s_release == NULL || s_hold_hist == NULL || g_empty == NULL)
        return NULL;
    if (PyType_Ready(&LockType) < 0 || PyType_Ready(&RLockType) < 0)
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
    return m;
error:
    Py_DECREF(m);
    return NULL;
}
