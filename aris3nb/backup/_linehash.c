/* The PostgreSQL row index's per-line work, native: each COPY line's SHA-256 prefix and the
 * leading integer key of each line (docs/FORMAT.md section 5).
 *
 * A backup reads every row of every table as a COPY text line; the row index needs each
 * line's SHA-256 (its first `width` bytes) and, for a table keyed by one integer column, each
 * line's key. In Python that is an object and a call per line (about a microsecond each, the
 * index's main cost at millions of rows); here it is one call per block of lines. The results
 * are the same bytes as the Python path in aris3nb/backup/digest.py, which is used where this
 * module is not built (it is optional, like _rowhash.c).
 *
 *   digests(lines: list[bytes], width: int) -> bytes
 *       the first `width` (1..32) bytes of SHA-256(line), concatenated, for each line
 *   leading_integers(lines: list[bytes]) -> bytes
 *       each line's first tab-separated field as a little-endian int64 (8 bytes a line);
 *       ValueError when a field is not a plain decimal integer within int64
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

static EVP_MD *sha256_md = NULL;

static PyObject *as_tuple(PyObject *lines) {
  /* A tuple holds its items for the whole call, whatever happens to the caller's list. */
  return PySequence_Tuple(lines);
}

static int line_of(PyObject *item, const char **data, Py_ssize_t *size) {
  if (!PyBytes_Check(item)) {
    PyErr_SetString(PyExc_TypeError, "each line must be bytes");
    return -1;
  }
  *data = PyBytes_AS_STRING(item);
  *size = PyBytes_GET_SIZE(item);
  return 0;
}

static PyObject *digests(PyObject *self, PyObject *args) {
  PyObject *lines;
  Py_ssize_t width;
  (void)self;
  if (!PyArg_ParseTuple(args, "On", &lines, &width)) return NULL;
  if (width < 1 || width > 32) {
    PyErr_SetString(PyExc_ValueError, "width must be 1 to 32 bytes");
    return NULL;
  }
  PyObject *items = as_tuple(lines);
  if (!items) return NULL;
  Py_ssize_t count = PyTuple_GET_SIZE(items);
  PyObject *out = PyBytes_FromStringAndSize(NULL, count * width);
  if (!out) {
    Py_DECREF(items);
    return NULL;
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) {
    Py_DECREF(out);
    Py_DECREF(items);
    return PyErr_NoMemory();
  }
  unsigned char *target = (unsigned char *)PyBytes_AS_STRING(out);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  for (Py_ssize_t i = 0; i < count; i++) {
    const char *data;
    Py_ssize_t size;
    if (line_of(PyTuple_GET_ITEM(items, i), &data, &size) < 0) goto failed;
    if (!EVP_DigestInit_ex2(ctx, sha256_md, NULL) || !EVP_DigestUpdate(ctx, data, (size_t)size) ||
        !EVP_DigestFinal_ex(ctx, digest, &length)) {
      PyErr_SetString(PyExc_RuntimeError, "OpenSSL's SHA-256 failed");
      goto failed;
    }
    memcpy(target + i * width, digest, (size_t)width);
  }
  EVP_MD_CTX_free(ctx);
  Py_DECREF(items);
  return out;
failed:
  EVP_MD_CTX_free(ctx);
  Py_DECREF(items);
  Py_DECREF(out);
  return NULL;
}

static int parse_integer(const char *data, Py_ssize_t size, int64_t *value) {
  Py_ssize_t i = 0;
  int negative = 0;
  uint64_t magnitude = 0;
  if (i < size && data[i] == '-') {
    negative = 1;
    i++;
  }
  Py_ssize_t first = i;
  for (; i < size && data[i] != '\t' && data[i] != '\n'; i++) {
    if (data[i] < '0' || data[i] > '9') return -1;
    uint64_t digit = (uint64_t)(data[i] - '0');
    if (magnitude > (UINT64_MAX - digit) / 10) return -1;
    magnitude = magnitude * 10 + digit;
  }
  if (i == first) return -1;
  if (negative ? magnitude > (uint64_t)INT64_MAX + 1 : magnitude > (uint64_t)INT64_MAX) return -1;
  *value = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
  return 0;
}

static PyObject *leading_integers(PyObject *self, PyObject *lines) {
  (void)self;
  PyObject *items = as_tuple(lines);
  if (!items) return NULL;
  Py_ssize_t count = PyTuple_GET_SIZE(items);
  PyObject *out = PyBytes_FromStringAndSize(NULL, count * 8);
  if (!out) {
    Py_DECREF(items);
    return NULL;
  }
  unsigned char *target = (unsigned char *)PyBytes_AS_STRING(out);
  for (Py_ssize_t i = 0; i < count; i++) {
    const char *data;
    Py_ssize_t size;
    int64_t value;
    if (line_of(PyTuple_GET_ITEM(items, i), &data, &size) < 0) goto failed;
    if (parse_integer(data, size, &value) < 0) {
      PyErr_Format(PyExc_ValueError, "line %zd does not start with an integer key", i);
      goto failed;
    }
    uint64_t bits = (uint64_t)value;
    for (int b = 0; b < 8; b++) target[i * 8 + b] = (unsigned char)(bits >> (8 * b));
  }
  Py_DECREF(items);
  return out;
failed:
  Py_DECREF(items);
  Py_DECREF(out);
  return NULL;
}

static PyMethodDef methods[] = {
    {"digests", digests, METH_VARARGS, "digests(lines, width) -> the first width bytes of each line's SHA-256"},
    {"leading_integers", leading_integers, METH_O, "leading_integers(lines) -> each line's integer key, int64 LE"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_linehash", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__linehash(void) {
  if (!sha256_md) sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
  if (!sha256_md) {
    PyErr_SetString(PyExc_ImportError, "OpenSSL has no SHA-256");
    return NULL;
  }
  return PyModule_Create(&module);
}
