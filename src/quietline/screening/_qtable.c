/*
 * Compiled membership tests for one region of a quietline NumberSet (a quotient table).
 *
 * Why C: the screening issue asks for a single decision in about 2 us and batches of 10 million
 * decisions per second per core against a 100-million-number registry. The layout (numberset.py)
 * already needs only two random memory reads per lookup; what remained was interpreter work around
 * them: a Python frame, a ``bytes.find`` call and integer boxing per single lookup, and about a dozen
 * NumPy passes over every batch. Here a single lookup is one C method call, and a batch is one pass
 * that overlaps the memory reads of many queries (software prefetching), which is where a lookup in a
 * table far larger than the CPU caches spends its time.
 *
 * The layout is the one numberset.py documents, and its NumPy code stays the reference
 * implementation (property tests check that both agree):
 *   h = (n * MULTIPLIER) mod 2**34, bucket b = h >> rem_bits, remainder r = h & (2**rem_bits - 1);
 *   the remainders of bucket b are rems[offsets[b] : offsets[b + 1]] (uint16, uint32 or uint64).
 * A number belongs to the region only when n >> 34 == key.
 *
 * No NumPy C API: the tables and the batch arrays arrive through the buffer protocol, so this
 * builds against any NumPy and needs only the Python headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define OFFSET_BITS 34
#define OFFSET_MASK ((UINT64_C(1) << OFFSET_BITS) - 1)
/* Queries between issuing a prefetch and using it, per stage (two dependent reads per query). */
#define AHEAD 16
#define RING 64 /* power of two, > 2 * AHEAD */

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 0)
#else
#define PREFETCH(p) ((void)0)
#endif

typedef struct {
    PyObject_HEAD
    Py_buffer offsets; /* uint32[buckets + 1] */
    Py_buffer rems;    /* uint16, uint32 or uint64 */
    int have_offsets;
    int have_rems;
    int width;          /* bytes per remainder */
    unsigned rem_bits;
    uint64_t multiplier;
    uint64_t key;       /* the region: n >> 34 */
    Py_ssize_t buckets;
    PyObject *added;    /* set or None: members added since compiled (checked first) */
    PyObject *removed;  /* set or None: members removed since compiled */
} QTable;

/* Whether remainder r is among entries [start, end) of a table of TYPE remainders. */
#define SCAN(TYPE)                                        \
    do {                                                  \
        const TYPE *p = (const TYPE *)t->rems.buf;        \
        const TYPE v = (TYPE)r;                           \
        for (uint64_t i = start; i < end; i++)            \
            if (p[i] == v)                                \
                return 1;                                 \
        return 0;                                         \
    } while (0)

static inline int
scan_bucket(const QTable *t, uint64_t start, uint64_t end, uint64_t r)
{
    switch (t->width) {
    case 2:
        SCAN(uint16_t);
    case 4:
        SCAN(uint32_t);
    default:
        SCAN(uint64_t);
    }
}

static inline int
table_has(const QTable *t, uint64_t n)
{
    if ((n >> OFFSET_BITS) != t->key)
        return 0;
    /* (n * M) mod 2**34 == ((n mod 2**34) * M) mod 2**34: no separate masking of the offset. */
    uint64_t h = (n * t->multiplier) & OFFSET_MASK;
    uint64_t b = h >> t->rem_bits;
    const uint32_t *offsets = (const uint32_t *)t->offsets.buf;
    return scan_bucket(t, offsets[b], offsets[b + 1], h & ((UINT64_C(1) << t->rem_bits) - 1));
}

static void
QTable_dealloc(QTable *self)
{
    if (self->have_offsets)
        PyBuffer_Release(&self->offsets);
    if (self->have_rems)
        PyBuffer_Release(&self->rems);
    Py_XDECREF(self->added);
    Py_XDECREF(self->removed);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
QTable_init(QTable *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"offsets", "rems", "rem_bits", "key", "multiplier", "added", "removed", NULL};
    PyObject *offsets_obj, *rems_obj, *added = Py_None, *removed = Py_None;
    unsigned int rem_bits;
    unsigned long long key, multiplier;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOIKK|OO", kwlist, &offsets_obj, &rems_obj, &rem_bits,
                                     &key, &multiplier, &added, &removed))
        return -1;
    if (self->have_offsets || self->have_rems) {
        PyErr_SetString(PyExc_TypeError, "QTable is immutable: initialised once");
        return -1;
    }
    if (rem_bits < 1 || rem_bits > OFFSET_BITS) {
        PyErr_SetString(PyExc_ValueError, "rem_bits must be between 1 and 34");
        return -1;
    }
    if ((added != Py_None && !PyAnySet_Check(added)) || (removed != Py_None && !PyAnySet_Check(removed))) {
        PyErr_SetString(PyExc_TypeError, "added and removed must be sets or None");
        return -1;
    }
    if (PyObject_GetBuffer(offsets_obj, &self->offsets, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    self->have_offsets = 1;
    if (self->offsets.itemsize != 4 || self->offsets.len < 8) {
        PyErr_SetString(PyExc_ValueError, "offsets must be a uint32 buffer of at least two entries");
        return -1;
    }
    if (PyObject_GetBuffer(rems_obj, &self->rems, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    self->have_rems = 1;
    self->width = rem_bits <= 16 ? 2 : rem_bits <= 32 ? 4 : 8;
    if (self->rems.len % self->width) {
        PyErr_SetString(PyExc_ValueError, "rems is not a whole number of remainders");
        return -1;
    }
    self->rem_bits = rem_bits;
    self->key = key;
    self->multiplier = multiplier;
    self->buckets = self->offsets.len / 4 - 1;
    if ((Py_ssize_t)(UINT64_C(1) << (OFFSET_BITS - rem_bits)) != self->buckets) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold 2**(34 - rem_bits) + 1 entries");
        return -1;
    }
    const uint32_t *offsets = (const uint32_t *)self->offsets.buf;
    /* A snapshot file is input like any other: a table whose offsets go backwards or past the end
     * would make lookups read outside it, so it is refused here, once, not checked per lookup. */
    for (Py_ssize_t i = 0; i < self->buckets; i++) {
        if (offsets[i] > offsets[i + 1]) {
            PyErr_Format(PyExc_ValueError, "offsets must not decrease (entry %zd)", i + 1);
            return -1;
        }
    }
    if ((Py_ssize_t)offsets[self->buckets] * self->width > self->rems.len) {
        PyErr_SetString(PyExc_ValueError, "offsets point past the end of rems");
        return -1;
    }
    Py_INCREF(added);
    Py_INCREF(removed);
    self->added = added;
    self->removed = removed;
    return 0;
}

/* One lookup: the per-call path of the decision. Anything but a non-negative int below 2**64 is not a
 * member (the same answer the Python code gives), never an error. */
static PyObject *
QTable_has(QTable *self, PyObject *number)
{
    if (self->added != Py_None && PySet_GET_SIZE(self->added)) {
        int in = PySet_Contains(self->added, number);
        if (in < 0)
            return NULL;
        if (in)
            Py_RETURN_TRUE;
    }
    if (self->removed != Py_None && PySet_GET_SIZE(self->removed)) {
        int in = PySet_Contains(self->removed, number);
        if (in < 0)
            return NULL;
        if (in)
            Py_RETURN_FALSE;
    }
    if (!PyLong_Check(number))
        Py_RETURN_FALSE;
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(number, &overflow);
    if (value == -1 && PyErr_Occurred())
        return NULL;
    if (overflow || value < 0) /* no E.164 number is negative or 2**63 and above */
        Py_RETURN_FALSE;
    if (table_has(self, (uint64_t)value))
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* Batch membership: contains_many(numbers, out) with numbers an int64/uint64 buffer and out a
 * writable buffer of one byte per number (NumPy bool). Only the compact table is read; the caller
 * applies the overlay (it has it as sets already). Returns the number of members found.
 *
 * Three stages per query, each AHEAD queries behind the previous one, so the two dependent memory
 * reads of a lookup (the bucket's offsets, then its remainders) are in flight for many queries at
 * once instead of one after another. */
static PyObject *
QTable_contains_many(QTable *self, PyObject *args)
{
    PyObject *numbers_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OO", &numbers_obj, &out_obj))
        return NULL;
    Py_buffer numbers, out;
    if (PyObject_GetBuffer(numbers_obj, &numbers, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&numbers);
        return NULL;
    }
    if (numbers.itemsize != 8 || numbers.len % 8 || out.itemsize != 1 || out.len != numbers.len / 8) {
        PyBuffer_Release(&numbers);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "numbers must be 8-byte integers and out one byte per number");
        return NULL;
    }
    const uint64_t *q = (const uint64_t *)numbers.buf;
    uint8_t *hit = (uint8_t *)out.buf;
    Py_ssize_t n = numbers.len / 8;
    Py_ssize_t found = 0;
    const uint32_t *offsets = (const uint32_t *)self->offsets.buf;
    const char *rems = (const char *)self->rems.buf;
    const uint64_t mask = (UINT64_C(1) << self->rem_bits) - 1;
    const unsigned rem_bits = self->rem_bits;
    const uint64_t key = self->key, multiplier = self->multiplier;
    const int width = self->width;
    uint64_t ring_h[RING];
    uint32_t ring_s[RING], ring_e[RING];
    uint8_t ring_ok[RING];

    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n + 2 * AHEAD; i++) {
        if (i < n) { /* stage 1: hash, prefetch the bucket's offsets */
            uint64_t v = q[i];
            uint64_t h = (v * multiplier) & OFFSET_MASK;
            int slot = (int)(i & (RING - 1));
            ring_h[slot] = h;
            ring_ok[slot] = (v >> OFFSET_BITS) == key;
            PREFETCH(offsets + (h >> rem_bits));
        }
        Py_ssize_t j = i - AHEAD;
        if (j >= 0 && j < n) { /* stage 2: read the bounds, prefetch the remainders */
            int slot = (int)(j & (RING - 1));
            uint64_t b = ring_h[slot] >> rem_bits;
            ring_s[slot] = offsets[b];
            ring_e[slot] = offsets[b + 1];
            PREFETCH(rems + (size_t)ring_s[slot] * width);
        }
        Py_ssize_t k = i - 2 * AHEAD;
        if (k >= 0) { /* stage 3: scan the bucket */
            int slot = (int)(k & (RING - 1));
            int member = ring_ok[slot] && scan_bucket(self, ring_s[slot], ring_e[slot], ring_h[slot] & mask);
            hit[k] = (uint8_t)member;
            found += member;
        }
    }
    Py_END_ALLOW_THREADS

    PyBuffer_Release(&numbers);
    PyBuffer_Release(&out);
    return PyLong_FromSsize_t(found);
}

/* The same table with an overlay: shares the buffers (no copy, and no second validation pass over the
 * offsets at start-up). */
static PyObject *
QTable_with_overlay(QTable *self, PyObject *args)
{
    PyObject *added, *removed;
    if (!PyArg_ParseTuple(args, "OO", &added, &removed))
        return NULL;
    if ((added != Py_None && !PyAnySet_Check(added)) || (removed != Py_None && !PyAnySet_Check(removed))) {
        PyErr_SetString(PyExc_TypeError, "added and removed must be sets or None");
        return NULL;
    }
    if (!self->have_offsets || !self->have_rems) {
        PyErr_SetString(PyExc_ValueError, "QTable is not initialised");
        return NULL;
    }
    QTable *copy = (QTable *)Py_TYPE(self)->tp_alloc(Py_TYPE(self), 0);
    if (copy == NULL)
        return NULL;
    if (PyObject_GetBuffer(self->offsets.obj, &copy->offsets, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        Py_DECREF(copy);
        return NULL;
    }
    copy->have_offsets = 1;
    if (PyObject_GetBuffer(self->rems.obj, &copy->rems, PyBUF_C_CONTIGUOUS) < 0) {
        Py_DECREF(copy);
        return NULL;
    }
    copy->have_rems = 1;
    copy->width = self->width;
    copy->rem_bits = self->rem_bits;
    copy->multiplier = self->multiplier;
    copy->key = self->key;
    copy->buckets = self->buckets;
    Py_INCREF(added);
    Py_INCREF(removed);
    copy->added = added;
    copy->removed = removed;
    return (PyObject *)copy;
}

static PyObject *
QTable_contains(QTable *self, PyObject *number)
{
    return QTable_has(self, number);
}

static int
QTable_sq_contains(QTable *self, PyObject *number)
{
    PyObject *r = QTable_has(self, number);
    if (r == NULL)
        return -1;
    int answer = r == Py_True;
    Py_DECREF(r);
    return answer;
}

static PyMethodDef QTable_methods[] = {
    {"has", (PyCFunction)QTable_has, METH_O, "has(number) -> bool: membership of one number, overlay first."},
    {"contains", (PyCFunction)QTable_contains, METH_O, "Alias of has()."},
    {"with_overlay", (PyCFunction)QTable_with_overlay, METH_VARARGS,
     "with_overlay(added, removed) -> QTable: the same table (shared buffers) with an overlay."},
    {"contains_many", (PyCFunction)QTable_contains_many, METH_VARARGS,
     "contains_many(numbers, out) -> int: membership of an int64 buffer into a bool buffer (table only)."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods QTable_as_sequence = {
    .sq_contains = (objobjproc)QTable_sq_contains,
};

static PyTypeObject QTableType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "quietline.screening._qtable.QTable",
    .tp_basicsize = sizeof(QTable),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One region of a NumberSet's quotient table, with compiled single and batch lookups.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)QTable_init,
    .tp_dealloc = (destructor)QTable_dealloc,
    .tp_methods = QTable_methods,
    .tp_as_sequence = &QTable_as_sequence,
};

static struct PyModuleDef qtable_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "quietline.screening._qtable",
    .m_doc = "Compiled lookups for the screening snapshot's quotient tables (see numberset.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__qtable(void)
{
    if (PyType_Ready(&QTableType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&qtable_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&QTableType);
    if (PyModule_AddObject(m, "QTable", (PyObject *)&QTableType) < 0) {
        Py_DECREF(&QTableType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
