/* Optional accelerator for infra.audit.chain.link_many: the same digests and links, computed in C
 * with OpenSSL's SHA-256 and without the GIL. infra/audit/chain.py holds the reference definition
 * and a pure-Python fallback; tests check both give identical hashes. */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>
#include <string.h>

typedef struct {
    const unsigned char *prev, *oid, *topic, *state;
    Py_ssize_t topic_len, state_len;
    unsigned long long pos, prev_pos, version;
} item_t;

static void be64(unsigned char *out, unsigned long long v) {
    for (int i = 7; i >= 0; i--) { out[i] = (unsigned char)(v & 0xff); v >>= 8; }
}

static int bytes_of(PyObject *o, Py_ssize_t want, const unsigned char **p, Py_ssize_t *len) {
    if (!PyBytes_Check(o)) { PyErr_SetString(PyExc_TypeError, "expected bytes"); return -1; }
    *p = (const unsigned char *)PyBytes_AS_STRING(o);
    *len = PyBytes_GET_SIZE(o);
    if (want >= 0 && *len != want) { PyErr_Format(PyExc_ValueError, "expected %zd bytes", want); return -1; }
    return 0;
}

/* link_many([(prev_hash, pos, prev_pos, originator_id, version, topic, state), ...]) -> [hash];
 * with `keep`, (links, digests): the records' digests too, in order, as one bytes object of 32
 * bytes each (audit verify's tree pass builds the Merkle tree's leaves from them). */
static PyObject *links_of(PyObject *arg, int keep) {
    PyObject *seq = PySequence_Fast(arg, "link_many expects a sequence of 7-tuples");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    item_t *items = PyMem_Malloc(sizeof(item_t) * (n ? n : 1));
    unsigned char *hashes = PyMem_Malloc(32 * (n ? n : 1));
    PyObject *digests = keep ? PyBytes_FromStringAndSize(NULL, 32 * n) : NULL;
    PyObject *out = NULL;
    if (!items || !hashes || (keep && !digests)) { if (!PyErr_Occurred()) PyErr_NoMemory(); goto done; }
    unsigned char *kept = keep ? (unsigned char *)PyBytes_AS_STRING(digests) : NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 7) {
            PyErr_SetString(PyExc_TypeError, "each item must be a 7-tuple");
            goto done;
        }
        Py_ssize_t len;
        item_t *it = &items[i];
        if (bytes_of(PyTuple_GET_ITEM(t, 0), 32, &it->prev, &len) < 0) goto done;
        it->pos = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(t, 1));
        it->prev_pos = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(t, 2));
        if (bytes_of(PyTuple_GET_ITEM(t, 3), 16, &it->oid, &len) < 0) goto done;
        it->version = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(t, 4));
        if (bytes_of(PyTuple_GET_ITEM(t, 5), -1, &it->topic, &it->topic_len) < 0) goto done;
        if (bytes_of(PyTuple_GET_ITEM(t, 6), -1, &it->state, &it->state_len) < 0) goto done;
        if (PyErr_Occurred()) goto done;
    }
    /* The tuples (held by seq) keep every buffer alive while the GIL is released. */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        item_t *it = &items[i];
        unsigned char head[24], digest[32], link[80];
        SHA256_CTX c;
        memcpy(head, it->oid, 16);
        be64(head + 16, it->version);
        SHA256_Init(&c);
        SHA256_Update(&c, head, 24);
        SHA256_Update(&c, it->topic, (size_t)it->topic_len);
        SHA256_Update(&c, "\0", 1);
        SHA256_Update(&c, it->state, (size_t)it->state_len);
        SHA256_Final(digest, &c);
        memcpy(link, it->prev, 32);
        be64(link + 32, it->pos);
        be64(link + 40, it->prev_pos);
        memcpy(link + 48, digest, 32);
        SHA256(link, 80, hashes + 32 * i);
        if (kept) memcpy(kept + 32 * i, digest, 32);
    }
    Py_END_ALLOW_THREADS
    out = PyList_New(n);
    if (!out) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = PyBytes_FromStringAndSize((const char *)hashes + 32 * i, 32);
        if (!h) { Py_CLEAR(out); goto done; }
        PyList_SET_ITEM(out, i, h);
    }
    if (keep) out = Py_BuildValue("(NO)", out, digests);
done:
    PyMem_Free(items);
    PyMem_Free(hashes);
    Py_XDECREF(digests);
    Py_DECREF(seq);
    return out;
}

static PyObject *link_many(PyObject *self, PyObject *arg) { return links_of(arg, 0); }

static PyObject *link_many_digests(PyObject *self, PyObject *arg) { return links_of(arg, 1); }

/* tree_grow(stack, index, positions, digests) -> rows: infra.store.tree.grow's steps. Appends the
 * records' leaves (SHA-256(0x00 | digest)) from leaf `index` on to the tree whose right edge is
 * `stack` (a list of (level, hash), largest first; popped and pushed in place), and returns the
 * rows to store: (leaf, 0, hash, position) for each leaf, then (leaf, level, hash, None) for each
 * node it completes (SHA-256(0x01 | left | right)). Python's `grow` is the reference. */
static PyObject *tree_grow(PyObject *self, PyObject *args) {
    PyObject *stack, *positions, *digests;
    long long index;
    if (!PyArg_ParseTuple(args, "O!LOO", &PyList_Type, &stack, &index, &positions, &digests)) return NULL;
    PyObject *pos = PySequence_Fast(positions, "positions must be a sequence");
    if (!pos) return NULL;
    PyObject *dig = PySequence_Fast(digests, "digests must be a sequence");
    if (!dig) { Py_DECREF(pos); return NULL; }
    PyObject *rows = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(pos);
    if (PySequence_Fast_GET_SIZE(dig) != n) {
        PyErr_SetString(PyExc_ValueError, "tree_grow: as many digests as positions expected");
        goto done;
    }
    rows = PyList_New(0);
    if (!rows) goto done;
    for (Py_ssize_t i = 0; i < n; i++, index++) {
        const unsigned char *d;
        Py_ssize_t len;
        unsigned char buf[65], h[32];
        if (bytes_of(PySequence_Fast_GET_ITEM(dig, i), 32, &d, &len) < 0) goto fail;
        buf[0] = 0;
        memcpy(buf + 1, d, 32);
        SHA256(buf, 33, h);
        PyObject *hash = PyBytes_FromStringAndSize((const char *)h, 32);
        if (!hash) goto fail;
        PyObject *row = Py_BuildValue("(LiOO)", index, 0, hash, PySequence_Fast_GET_ITEM(pos, i));
        if (!row || PyList_Append(rows, row) < 0) { Py_XDECREF(row); Py_DECREF(hash); goto fail; }
        Py_DECREF(row);
        long level = 0;
        for (;;) {
            Py_ssize_t top = PyList_GET_SIZE(stack);
            if (top == 0) break;
            PyObject *edge = PyList_GET_ITEM(stack, top - 1);
            if (!PyTuple_Check(edge) || PyTuple_GET_SIZE(edge) != 2) {
                PyErr_SetString(PyExc_TypeError, "tree_grow: the edge holds (level, hash) tuples");
                Py_DECREF(hash);
                goto fail;
            }
            long edge_level = PyLong_AsLong(PyTuple_GET_ITEM(edge, 0));
            if (edge_level == -1 && PyErr_Occurred()) { Py_DECREF(hash); goto fail; }
            if (edge_level != level) break;
            const unsigned char *left;
            if (bytes_of(PyTuple_GET_ITEM(edge, 1), 32, &left, &len) < 0) { Py_DECREF(hash); goto fail; }
            buf[0] = 1;
            memcpy(buf + 1, left, 32);
            memcpy(buf + 33, h, 32);
            SHA256(buf, 65, h);
            if (PyList_SetSlice(stack, top - 1, top, NULL) < 0) { Py_DECREF(hash); goto fail; }
            Py_DECREF(hash);
            hash = PyBytes_FromStringAndSize((const char *)h, 32);
            if (!hash) goto fail;
            level++;
            row = Py_BuildValue("(LlOO)", index, level, hash, Py_None);
            if (!row || PyList_Append(rows, row) < 0) { Py_XDECREF(row); Py_DECREF(hash); goto fail; }
            Py_DECREF(row);
        }
        PyObject *edge = Py_BuildValue("(lN)", level, hash); /* takes hash's reference */
        if (!edge) goto fail;
        if (PyList_Append(stack, edge) < 0) { Py_DECREF(edge); goto fail; }
        Py_DECREF(edge);
    }
    goto done;
fail:
    Py_CLEAR(rows);
done:
    Py_DECREF(pos);
    Py_DECREF(dig);
    return rows;
}


static void sha256_of(const unsigned char *a, size_t n, unsigned char *out) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, a, n);
    SHA256_Final(out, &c);
}

static int row_is(PyObject *row, long long leaf, long level, const unsigned char *h, PyObject *position) {
    if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 4) return 0;
    PyObject *l = PyTuple_GET_ITEM(row, 0), *v = PyTuple_GET_ITEM(row, 1), *hash = PyTuple_GET_ITEM(row, 2);
    PyObject *p = PyTuple_GET_ITEM(row, 3);
    if (!PyLong_Check(l) || !PyLong_Check(v) || !PyBytes_Check(hash) || PyBytes_GET_SIZE(hash) != 32) return 0;
    int overflow;
    if (PyLong_AsLongLongAndOverflow(l, &overflow) != leaf || overflow) return 0;
    if (PyLong_AsLongAndOverflow(v, &overflow) != level || overflow) return 0;
    if (memcmp(PyBytes_AS_STRING(hash), h, 32) != 0) return 0;
    if (position == Py_None) return p == Py_None;
    return PyLong_Check(p) && PyObject_RichCompareBool(p, position, Py_EQ) == 1;
}

/* tree_matches(stack, index, positions, digests, stored) -> bool: whether the stored rows are
 * exactly the rows tree_grow(stack, index, positions, digests) returns (the same tuples, in
 * order, and as many), without building them: `positions` is an array("q")'s bytes, `digests`
 * 32 bytes a record. When they are, `stack` is left as tree_grow leaves it; when not, it may be
 * left part-way (the caller keeps a copy) and tree_grow names the departure. */
static PyObject *tree_matches(PyObject *self, PyObject *args) {
    PyObject *stack, *stored;
    long long index;
    Py_buffer pos, dig;
    if (!PyArg_ParseTuple(args, "O!Ly*y*O!", &PyList_Type, &stack, &index, &pos, &dig, &PyList_Type, &stored)) return NULL;
    PyObject *out = NULL;
    Py_ssize_t n = pos.len / 8, at = 0, rows = PyList_GET_SIZE(stored);
    long levels[65];
    unsigned char hashes[65][32];
    int top = 0, ok = 1;
    if (pos.len % 8 || dig.len != 32 * n) {
        PyErr_SetString(PyExc_ValueError, "tree_matches: 8 bytes a position and 32 a digest expected");
        goto done;
    }
    Py_ssize_t edge = PyList_GET_SIZE(stack);
    if (edge > 64) { PyErr_SetString(PyExc_ValueError, "tree_matches: an edge of 64 at most"); goto done; }
    for (Py_ssize_t i = 0; i < edge; i++) {
        PyObject *e = PyList_GET_ITEM(stack, i);
        const unsigned char *h;
        Py_ssize_t len;
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 2) {
            PyErr_SetString(PyExc_TypeError, "tree_matches: the edge holds (level, hash) tuples");
            goto done;
        }
        levels[top] = PyLong_AsLong(PyTuple_GET_ITEM(e, 0));
        if (levels[top] == -1 && PyErr_Occurred()) goto done;
        if (bytes_of(PyTuple_GET_ITEM(e, 1), 32, &h, &len) < 0) goto done;
        memcpy(hashes[top++], h, 32);
    }
    const long long *positions = (const long long *)pos.buf;
    const unsigned char *digests = (const unsigned char *)dig.buf;
    for (Py_ssize_t i = 0; i < n && ok; i++, index++) {
        unsigned char buf[65], h[32];
        buf[0] = 0;
        memcpy(buf + 1, digests + 32 * i, 32);
        sha256_of(buf, 33, h);
        PyObject *position = PyLong_FromLongLong(positions[i]);
        if (!position) goto done;
        ok = at < rows && row_is(PyList_GET_ITEM(stored, at), index, 0, h, position);
        Py_DECREF(position);
        if (PyErr_Occurred()) goto done;
        at++;
        long level = 0;
        while (ok && top > 0 && levels[top - 1] == level) {
            buf[0] = 1;
            memcpy(buf + 1, hashes[--top], 32);
            memcpy(buf + 33, h, 32);
            sha256_of(buf, 65, h);
            level++;
            ok = at < rows && row_is(PyList_GET_ITEM(stored, at), index, level, h, Py_None);
            at++;
        }
        if (top >= 64) { PyErr_SetString(PyExc_ValueError, "tree_matches: the tree outgrew 2^64 leaves"); goto done; }
        levels[top] = level;
        memcpy(hashes[top++], h, 32);
    }
    if (ok && at == rows) {
        PyObject *edge_list = PyList_New(top);
        if (!edge_list) goto done;
        for (int i = 0; i < top; i++) {
            PyObject *e = Py_BuildValue("(ly#)", levels[i], (const char *)hashes[i], (Py_ssize_t)32);
            if (!e) { Py_DECREF(edge_list); goto done; }
            PyList_SET_ITEM(edge_list, i, e);
        }
        int set = PyList_SetSlice(stack, 0, PyList_GET_SIZE(stack), edge_list);
        Py_DECREF(edge_list);
        if (set < 0) goto done;
        out = Py_NewRef(Py_True);
    } else {
        out = Py_NewRef(Py_False);
    }
done:
    PyBuffer_Release(&pos);
    PyBuffer_Release(&dig);
    return out;
}

static PyMethodDef methods[] = {
    {"link_many", link_many, METH_O, "Links of the chain for (prev, pos, prev_pos, id, version, topic, state) tuples."},
    {"link_many_digests", link_many_digests, METH_O, "link_many's links, and the records' digests as one bytes object."},
    {"tree_grow", tree_grow, METH_VARARGS, "Leaves and completed nodes of the Merkle tree, from record digests (infra.store.tree.grow)."},
    {"tree_matches", tree_matches, METH_VARARGS, "Whether stored tree rows are tree_grow's, checked without building them."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "infra.audit._chain", NULL, -1, methods};

PyMODINIT_FUNC PyInit__chain(void) { return PyModule_Create(&module); }
