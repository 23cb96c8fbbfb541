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

/* link_many([(prev_hash, pos, prev_pos, originator_id, version, topic, state), ...]) -> [hash] */
static PyObject *link_many(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "link_many expects a sequence of 7-tuples");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    item_t *items = PyMem_Malloc(sizeof(item_t) * (n ? n : 1));
    unsigned char *hashes = PyMem_Malloc(32 * (n ? n : 1));
    PyObject *out = NULL;
    if (!items || !hashes) { PyErr_NoMemory(); goto done; }
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
    }
    Py_END_ALLOW_THREADS
    out = PyList_New(n);
    if (!out) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = PyBytes_FromStringAndSize((const char *)hashes + 32 * i, 32);
        if (!h) { Py_CLEAR(out); goto done; }
        PyList_SET_ITEM(out, i, h);
    }
done:
    PyMem_Free(items);
    PyMem_Free(hashes);
    Py_DECREF(seq);
    return out;
}

static PyMethodDef methods[] = {
    {"link_many", link_many, METH_O, "Links of the chain for (prev, pos, prev_pos, id, version, topic, state) tuples."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "infra.audit._chain", NULL, -1, methods};

PyMODINIT_FUNC PyInit__chain(void) { return PyModule_Create(&module); }
