/*
 * Native fast path of the bus codec (lienthong.schemas.codec): Avro binary for the schema shapes
 * the catalogue uses, interpreted from a small "program" that codec.py compiles once per schema.
 *
 * Why C: fastavro (and an exec-generated Python codec, since removed) spend most of their time in
 * the interpreter; this is 12-14x fastavro on our records (benchmarks/bench_codec.py). The work
 * itself (varints, UTF-8, a few datetimes and dicts) is cheap.
 *
 * Contract: on the happy path it produces exactly fastavro's bytes and a record dict ready for
 * the pydantic models (uuids as text, aware UTC datetimes); on anything
 * it is not sure about it raises Decline and the caller re-runs the fastavro reference path, so
 * every error, message and accepted/rejected input stays fastavro's. It never reads outside the
 * buffer it was given.
 *
 * Program nodes (tuples built by codec.native_program):
 *   (NULL,) (BOOLEAN,) (INT,) (LONG,) (FLOAT,) (DOUBLE,) (STRING,) (UUID,) (TIMESTAMP,)
 *   (ENUM, symbols: tuple[str, ...])
 *   (UNION_NULL, node)                       -- ["null", X]
 *   (RECORD, names: tuple[str, ...], nodes: tuple[node, ...])
 *   (ARRAY, node)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    OP_NULL = 0,
    OP_BOOLEAN = 1,
    OP_INT = 2,
    OP_LONG = 3,
    OP_FLOAT = 4,
    OP_DOUBLE = 5,
    OP_STRING = 6,
    OP_UUID = 7,
    OP_TIMESTAMP = 8,
    OP_ENUM = 9,
    OP_UNION_NULL = 10,
    OP_RECORD = 11,
    OP_ARRAY = 12,
};

typedef struct Node {
    int op;
    Py_ssize_t count;       /* RECORD: fields */
    PyObject **names;       /* RECORD: interned field names (owned) */
    struct Node **children; /* RECORD: one per field; UNION_NULL/ARRAY: children[0] */
    PyObject *symbols;      /* ENUM: tuple of str (owned) */
    PyObject *index;        /* ENUM: dict str -> int (owned) */
} Node;

static PyObject *Decline; /* "not sure": the caller falls back to fastavro */
static PyObject *EPOCH;   /* datetime(1970, 1, 1, tzinfo=UTC) */
static PyObject *UUID_TYPE;
static PyObject *STR_INT; /* "int" */
static PyObject *STR_UTCOFFSET;

/* ------------------------------------------------------------------------------------------ */
/* program -> node tree                                                                        */

static void node_free(Node *node) {
    if (node == NULL) {
        return;
    }
    if (node->names != NULL) {
        for (Py_ssize_t i = 0; i < node->count; i++) {
            Py_XDECREF(node->names[i]);
        }
        PyMem_Free(node->names);
    }
    if (node->children != NULL) {
        Py_ssize_t n = node->op == OP_RECORD ? node->count : 1;
        for (Py_ssize_t i = 0; i < n; i++) {
            node_free(node->children[i]);
        }
        PyMem_Free(node->children);
    }
    Py_XDECREF(node->symbols);
    Py_XDECREF(node->index);
    PyMem_Free(node);
}

static Node *node_build(PyObject *spec, int depth) {
    if (depth > 64) {
        PyErr_SetString(PyExc_ValueError, "program nested too deeply");
        return NULL;
    }
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1) {
        PyErr_SetString(PyExc_TypeError, "program node must be a non-empty tuple");
        return NULL;
    }
    long op = PyLong_AsLong(PyTuple_GET_ITEM(spec, 0));
    if (op == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Node *node = PyMem_Calloc(1, sizeof(Node));
    if (node == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    node->op = (int)op;
    Py_ssize_t size = PyTuple_GET_SIZE(spec);
    switch (op) {
    case OP_NULL:
    case OP_BOOLEAN:
    case OP_INT:
    case OP_LONG:
    case OP_FLOAT:
    case OP_DOUBLE:
    case OP_STRING:
    case OP_UUID:
    case OP_TIMESTAMP:
        return node;
    case OP_ENUM: {
        PyObject *symbols = size == 2 ? PyTuple_GET_ITEM(spec, 1) : NULL;
        if (symbols == NULL || !PyTuple_Check(symbols)) {
            PyErr_SetString(PyExc_TypeError, "ENUM needs a tuple of symbols");
            goto fail;
        }
        node->symbols = Py_NewRef(symbols);
        node->index = PyDict_New();
        if (node->index == NULL) {
            goto fail;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(symbols); i++) {
            PyObject *position = PyLong_FromSsize_t(i);
            if (position == NULL) {
                goto fail;
            }
            int bad = PyDict_SetItem(node->index, PyTuple_GET_ITEM(symbols, i), position);
            Py_DECREF(position);
            if (bad) {
                goto fail;
            }
        }
        return node;
    }
    case OP_UNION_NULL:
    case OP_ARRAY: {
        if (size != 2) {
            PyErr_SetString(PyExc_TypeError, "UNION_NULL/ARRAY need one child");
            goto fail;
        }
        node->children = PyMem_Calloc(1, sizeof(Node *));
        if (node->children == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        node->children[0] = node_build(PyTuple_GET_ITEM(spec, 1), depth + 1);
        if (node->children[0] == NULL) {
            goto fail;
        }
        return node;
    }
    case OP_RECORD: {
        PyObject *names = size == 3 ? PyTuple_GET_ITEM(spec, 1) : NULL;
        PyObject *kids = size == 3 ? PyTuple_GET_ITEM(spec, 2) : NULL;
        if (names == NULL || !PyTuple_Check(names) || !PyTuple_Check(kids) ||
            PyTuple_GET_SIZE(names) != PyTuple_GET_SIZE(kids)) {
            PyErr_SetString(PyExc_TypeError, "RECORD needs names and nodes of equal length");
            goto fail;
        }
        Py_ssize_t n = PyTuple_GET_SIZE(names);
        node->names = PyMem_Calloc(n ? n : 1, sizeof(PyObject *));
        node->children = PyMem_Calloc(n ? n : 1, sizeof(Node *));
        if (node->names == NULL || node->children == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        node->count = n;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *name = PyTuple_GET_ITEM(names, i);
            if (!PyUnicode_CheckExact(name)) {
                PyErr_SetString(PyExc_TypeError, "field names must be str");
                goto fail;
            }
            Py_INCREF(name);
            PyUnicode_InternInPlace(&name);
            node->names[i] = name;
            node->children[i] = node_build(PyTuple_GET_ITEM(kids, i), depth + 1);
            if (node->children[i] == NULL) {
                goto fail;
            }
        }
        return node;
    }
    default:
        PyErr_Format(PyExc_ValueError, "unknown program op %ld", op);
        goto fail;
    }
fail:
    node_free(node);
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* encoding                                                                                    */

typedef struct {
    char *data;
    Py_ssize_t size;
    Py_ssize_t capacity;
} Buffer;

static int buf_reserve(Buffer *b, Py_ssize_t extra) {
    if (b->size + extra <= b->capacity) {
        return 0;
    }
    Py_ssize_t want = b->capacity * 2;
    if (want < b->size + extra) {
        want = b->size + extra;
    }
    char *grown = PyMem_Realloc(b->data, want);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = grown;
    b->capacity = want;
    return 0;
}

static int buf_put(Buffer *b, const char *bytes, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->size, bytes, n);
    b->size += n;
    return 0;
}

static int buf_byte(Buffer *b, unsigned char c) {
    if (buf_reserve(b, 1) < 0) {
        return -1;
    }
    b->data[b->size++] = (char)c;
    return 0;
}

/* Avro long: zig-zag, then base-128 little-endian groups. */
static int buf_long(Buffer *b, int64_t value) {
    uint64_t n = ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
    if (buf_reserve(b, 10) < 0) {
        return -1;
    }
    while (n > 0x7F) {
        b->data[b->size++] = (char)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    b->data[b->size++] = (char)n;
    return 0;
}

static int decline(void) {
    PyErr_SetNone(Decline);
    return -1;
}

static int encode_node(Node *node, PyObject *value, Buffer *b);

static int encode_string(PyObject *text, Buffer *b) {
    Py_ssize_t n;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &n);
    if (utf8 == NULL) {
        PyErr_Clear();
        return decline();
    }
    if (buf_long(b, n) < 0) {
        return -1;
    }
    return buf_put(b, utf8, n);
}

static int encode_uuid(PyObject *value, Buffer *b) {
    if (Py_IS_TYPE(value, (PyTypeObject *)UUID_TYPE)) {
        PyObject *number = PyObject_GetAttr(value, STR_INT);
        if (number == NULL) {
            PyErr_Clear();
            return decline();
        }
        if (!PyLong_CheckExact(number)) {
            Py_DECREF(number);
            return decline();
        }
        unsigned long long low = PyLong_AsUnsignedLongLongMask(number);
        PyObject *shift = PyLong_FromLong(64);
        PyObject *top = shift ? PyNumber_Rshift(number, shift) : NULL;
        Py_XDECREF(shift);
        Py_DECREF(number);
        if (top == NULL) {
            PyErr_Clear();
            return decline();
        }
        unsigned long long high = PyLong_AsUnsignedLongLong(top);
        Py_DECREF(top);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return decline();
        }
        static const char hex[] = "0123456789abcdef";
        char text[36];
        int at = 0;
        for (int i = 0; i < 32; i++) {
            if (i == 8 || i == 12 || i == 16 || i == 20) {
                text[at++] = '-';
            }
            unsigned long long word = i < 16 ? high : low;
            int nibble = (int)((word >> (4 * (15 - (i % 16)))) & 0xF);
            text[at++] = hex[nibble];
        }
        if (buf_long(b, 36) < 0) {
            return -1;
        }
        return buf_put(b, text, 36);
    }
    if (PyObject_IsInstance(value, UUID_TYPE) == 1) {
        PyObject *text = PyObject_Str(value);
        if (text == NULL) {
            PyErr_Clear();
            return decline();
        }
        int result = PyUnicode_Check(text) ? encode_string(text, b) : decline();
        Py_DECREF(text);
        return result;
    }
    PyErr_Clear();
    if (!PyUnicode_CheckExact(value)) {
        return decline();
    }
    return encode_string(value, b);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the classic era/day-of-era method). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Microseconds since the epoch of an aware datetime: what ``(dt - EPOCH) // 1us`` gives, from
   the fields and one utcoffset() call instead of building an intermediate timedelta. */
static int encode_timestamp(PyObject *value, Buffer *b) {
    if (!PyDateTime_CheckExact(value)) {
        return decline();
    }
    PyObject *tzinfo = PyDateTime_DATE_GET_TZINFO(value);
    int64_t offset = 0;
    if (tzinfo != PyDateTime_TimeZone_UTC) {
        if (tzinfo == Py_None) {
            return decline(); /* naive: fastavro decides */
        }
        PyObject *delta = PyObject_CallMethodOneArg(tzinfo, STR_UTCOFFSET, value);
        if (delta == NULL) {
            PyErr_Clear();
            return decline();
        }
        if (!PyDelta_CheckExact(delta)) {
            Py_DECREF(delta);
            return decline();
        }
        offset = ((int64_t)PyDateTime_DELTA_GET_DAYS(delta) * 86400 +
                  PyDateTime_DELTA_GET_SECONDS(delta)) * 1000000 +
                 PyDateTime_DELTA_GET_MICROSECONDS(delta);
        Py_DECREF(delta);
    }
    int64_t days = days_from_civil(PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value),
                                   PyDateTime_GET_DAY(value));
    int64_t seconds = PyDateTime_DATE_GET_HOUR(value) * 3600 +
                      PyDateTime_DATE_GET_MINUTE(value) * 60 + PyDateTime_DATE_GET_SECOND(value);
    /* |days| < 4e6 for any datetime, so this cannot overflow 64 bits. */
    return buf_long(b, (days * 86400 + seconds) * 1000000 +
                           PyDateTime_DATE_GET_MICROSECOND(value) - offset);
}

static int encode_node(Node *node, PyObject *value, Buffer *b) {
    switch (node->op) {
    case OP_NULL:
        return value == Py_None ? 0 : decline();
    case OP_BOOLEAN:
        if (value == Py_True) {
            return buf_byte(b, 1);
        }
        if (value == Py_False) {
            return buf_byte(b, 0);
        }
        return decline();
    case OP_INT:
    case OP_LONG: {
        if (!PyLong_CheckExact(value)) {
            return decline();
        }
        int overflow = 0;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow || (n == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return decline();
        }
        if (node->op == OP_INT && (n < INT32_MIN || n > INT32_MAX)) {
            return decline();
        }
        return buf_long(b, (int64_t)n);
    }
    case OP_FLOAT:
    case OP_DOUBLE: {
        double x;
        if (PyFloat_CheckExact(value)) {
            x = PyFloat_AS_DOUBLE(value);
        } else {
            return decline(); /* ints and others: fastavro decides */
        }
        char packed[8];
        int size = node->op == OP_DOUBLE ? 8 : 4;
        int bad = size == 8 ? PyFloat_Pack8(x, packed, 1) : PyFloat_Pack4(x, packed, 1);
        if (bad) {
            PyErr_Clear();
            return decline();
        }
        return buf_put(b, packed, size);
    }
    case OP_STRING:
        if (!PyUnicode_Check(value)) {
            return decline();
        }
        return encode_string(value, b);
    case OP_UUID:
        return encode_uuid(value, b);
    case OP_TIMESTAMP:
        return encode_timestamp(value, b);
    case OP_ENUM: {
        PyObject *text;
        if (PyUnicode_CheckExact(value)) {
            text = Py_NewRef(value);
        } else {
            /* str() of a StrEnum member is its value; Enum hashes by name, so look the text up. */
            text = PyObject_Str(value);
            if (text == NULL) {
                PyErr_Clear();
                return decline();
            }
        }
        PyObject *position = PyDict_GetItemWithError(node->index, text);
        Py_DECREF(text);
        if (position == NULL) {
            PyErr_Clear();
            return decline();
        }
        return buf_long(b, PyLong_AsLongLong(position));
    }
    case OP_UNION_NULL:
        if (value == Py_None) {
            return buf_byte(b, 0);
        }
        if (buf_byte(b, 2) < 0) {
            return -1;
        }
        return encode_node(node->children[0], value, b);
    case OP_RECORD:
        for (Py_ssize_t i = 0; i < node->count; i++) {
            PyObject *field = PyObject_GetAttr(value, node->names[i]);
            if (field == NULL) {
                PyErr_Clear();
                return decline();
            }
            int result = encode_node(node->children[i], field, b);
            Py_DECREF(field);
            if (result < 0) {
                return -1;
            }
        }
        return 0;
    case OP_ARRAY: {
        if (!PyList_CheckExact(value) && !PyTuple_CheckExact(value)) {
            return decline();
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(value);
        if (n > 0) {
            if (buf_long(b, n) < 0) {
                return -1;
            }
            for (Py_ssize_t i = 0; i < n; i++) {
                /* A list may change under us only through Python code we call (str(), getattr):
                   re-check the bound every time. */
                if (i >= PySequence_Fast_GET_SIZE(value)) {
                    return decline();
                }
                PyObject *item = PySequence_Fast_GET_ITEM(value, i);
                Py_INCREF(item);
                int result = encode_node(node->children[0], item, b);
                Py_DECREF(item);
                if (result < 0) {
                    return -1;
                }
            }
            if (PySequence_Fast_GET_SIZE(value) != n) {
                return decline();
            }
        }
        return buf_byte(b, 0);
    }
    default:
        return decline();
    }
}

/* ------------------------------------------------------------------------------------------ */
/* decoding                                                                                    */

typedef struct {
    const unsigned char *data;
    Py_ssize_t pos;
    Py_ssize_t end;
} Reader;

/* A varint of up to 10 bytes whose value fits 64 bits (what fastavro accepts), zig-zag decoded. */
static int read_long(Reader *r, int64_t *out) {
    uint64_t n = 0;
    int shift = 0;
    while (1) {
        if (r->pos >= r->end) {
            return decline();
        }
        unsigned char byte = r->data[r->pos++];
        if (shift == 63 && (byte & 0x7E)) {
            return decline(); /* bits beyond the 64th */
        }
        n |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            break;
        }
        shift += 7;
        if (shift > 63) {
            return decline();
        }
    }
    *out = (int64_t)((n >> 1) ^ (~(n & 1) + 1));
    return 0;
}

static PyObject *decode_node(Node *node, Reader *r);

static PyObject *decode_text(Reader *r) {
    int64_t size;
    if (read_long(r, &size) < 0) {
        return NULL;
    }
    if (size < 0 || size > r->end - r->pos) {
        decline();
        return NULL;
    }
    PyObject *text =
        PyUnicode_DecodeUTF8((const char *)r->data + r->pos, (Py_ssize_t)size, "strict");
    if (text == NULL) {
        PyErr_Clear();
        decline();
        return NULL;
    }
    r->pos += (Py_ssize_t)size;
    return text;
}

/* ``EPOCH + timedelta(microseconds=n)``: an aware UTC datetime built from its fields. */
static PyObject *decode_timestamp(Reader *r) {
    int64_t micros;
    if (read_long(r, &micros) < 0) {
        return NULL;
    }
    int64_t days = micros / 86400000000LL;
    int64_t rest = micros % 86400000000LL;
    if (rest < 0) {
        rest += 86400000000LL;
        days -= 1;
    }
    if (days > 3000000 || days < -3000000) {
        decline(); /* far outside datetime's years 1..9999 */
        return NULL;
    }
    int64_t year;
    int month, day;
    civil_from_days(days, &year, &month, &day);
    if (year < 1 || year > 9999) {
        decline(); /* OverflowError on the reference path */
        return NULL;
    }
    int64_t seconds = rest / 1000000;
    return PyDateTimeAPI->DateTime_FromDateAndTime(
        (int)year, month, day, (int)(seconds / 3600), (int)(seconds / 60 % 60), (int)(seconds % 60),
        (int)(rest % 1000000), PyDateTime_TimeZone_UTC, PyDateTimeAPI->DateTimeType);
}

static PyObject *decode_node(Node *node, Reader *r) {
    switch (node->op) {
    case OP_NULL:
        Py_RETURN_NONE;
    case OP_BOOLEAN: {
        if (r->pos >= r->end || r->data[r->pos] > 1) {
            decline();
            return NULL;
        }
        return PyBool_FromLong(r->data[r->pos++]);
    }
    case OP_INT:
    case OP_LONG: {
        int64_t n;
        if (read_long(r, &n) < 0) {
            return NULL;
        }
        return PyLong_FromLongLong(n);
    }
    case OP_FLOAT:
    case OP_DOUBLE: {
        int size = node->op == OP_DOUBLE ? 8 : 4;
        if (size > r->end - r->pos) {
            decline();
            return NULL;
        }
        const unsigned char *at = r->data + r->pos;
        double x = size == 8 ? PyFloat_Unpack8((const char *)at, 1)
                             : PyFloat_Unpack4((const char *)at, 1);
        if (x == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            decline();
            return NULL;
        }
        r->pos += size;
        return PyFloat_FromDouble(x);
    }
    case OP_STRING:
    case OP_UUID: /* uuids stay text: pydantic parses them once */
        return decode_text(r);
    case OP_TIMESTAMP:
        return decode_timestamp(r);
    case OP_ENUM: {
        int64_t index;
        if (read_long(r, &index) < 0) {
            return NULL;
        }
        if (index < 0 || index >= PyTuple_GET_SIZE(node->symbols)) {
            decline();
            return NULL;
        }
        return Py_NewRef(PyTuple_GET_ITEM(node->symbols, (Py_ssize_t)index));
    }
    case OP_UNION_NULL: {
        if (r->pos >= r->end) {
            decline();
            return NULL;
        }
        unsigned char branch = r->data[r->pos++];
        if (branch == 0) {
            Py_RETURN_NONE;
        }
        if (branch != 2) {
            decline();
            return NULL;
        }
        return decode_node(node->children[0], r);
    }
    case OP_RECORD: {
        PyObject *record = PyDict_New();
        if (record == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < node->count; i++) {
            PyObject *value = decode_node(node->children[i], r);
            if (value == NULL) {
                Py_DECREF(record);
                return NULL;
            }
            int bad = PyDict_SetItem(record, node->names[i], value);
            Py_DECREF(value);
            if (bad) {
                Py_DECREF(record);
                return NULL;
            }
        }
        return record;
    }
    case OP_ARRAY: {
        PyObject *items = PyList_New(0);
        if (items == NULL) {
            return NULL;
        }
        while (1) {
            int64_t count;
            if (read_long(r, &count) < 0) {
                goto array_fail;
            }
            if (count == 0) {
                break;
            }
            if (count < 0) {
                int64_t block_size;
                if (count == INT64_MIN) {
                    decline();
                    goto array_fail;
                }
                count = -count;
                if (read_long(r, &block_size) < 0) {
                    goto array_fail;
                }
            }
            if (count > r->end - r->pos) {
                decline();
                goto array_fail;
            }
            for (int64_t i = 0; i < count; i++) {
                PyObject *item = decode_node(node->children[0], r);
                if (item == NULL) {
                    goto array_fail;
                }
                int bad = PyList_Append(items, item);
                Py_DECREF(item);
                if (bad) {
                    goto array_fail;
                }
            }
        }
        return items;
    array_fail:
        Py_DECREF(items);
        return NULL;
    }
    default:
        decline();
        return NULL;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Python types: Encoder(program)(obj, head) -> bytes, Decoder(program, offset)(buf) -> dict   */

typedef struct {
    PyObject_HEAD
    Node *root;
    Py_ssize_t offset; /* Decoder: where the Avro body starts (5 after the Confluent header) */
    vectorcallfunc vectorcall;
} Codec;

static void codec_dealloc(Codec *self) {
    node_free(self->root);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *encoder_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                    PyObject *kwnames) {
    Codec *self = (Codec *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "encoder(obj, head) takes two positional arguments");
        return NULL;
    }
    PyObject *head = args[1];
    if (!PyBytes_Check(head)) {
        PyErr_SetString(PyExc_TypeError, "head must be bytes");
        return NULL;
    }
    /* pymalloc serves the usual record (< 512 bytes) without a system allocation. */
    Buffer b = {NULL, 0, 0};
    if (buf_reserve(&b, PyBytes_GET_SIZE(head) + 384) < 0 ||
        buf_put(&b, PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head)) < 0) {
        PyMem_Free(b.data);
        return NULL;
    }
    PyObject *result = NULL;
    if (encode_node(self->root, args[0], &b) == 0) {
        result = PyBytes_FromStringAndSize(b.data, b.size);
    }
    PyMem_Free(b.data);
    return result;
}

static PyObject *decoder_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                    PyObject *kwnames) {
    Codec *self = (Codec *)callable;
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "decoder(buf) takes one positional argument");
        return NULL;
    }
    PyObject *buf = args[0];
    if (!PyBytes_CheckExact(buf)) {
        decline();
        return NULL;
    }
    Reader r = {(const unsigned char *)PyBytes_AS_STRING(buf), self->offset,
                PyBytes_GET_SIZE(buf)};
    if (r.pos > r.end) {
        decline();
        return NULL;
    }
    PyObject *record = decode_node(self->root, &r);
    if (record != NULL && r.pos != r.end) {
        Py_DECREF(record); /* trailing bytes */
        decline();
        return NULL;
    }
    return record;
}

static PyObject *codec_new(PyTypeObject *type, PyObject *args, PyObject *kwargs, int decoder) {
    PyObject *program;
    Py_ssize_t offset = 0;
    static char *kwlist[] = {"program", "offset", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n", kwlist, &program, &offset)) {
        return NULL;
    }
    if (offset < 0) {
        PyErr_SetString(PyExc_ValueError, "offset must be >= 0");
        return NULL;
    }
    Node *root = node_build(program, 0);
    if (root == NULL) {
        return NULL;
    }
    Codec *self = (Codec *)type->tp_alloc(type, 0);
    if (self == NULL) {
        node_free(root);
        return NULL;
    }
    self->root = root;
    self->offset = offset;
    self->vectorcall = decoder ? decoder_vectorcall : encoder_vectorcall;
    return (PyObject *)self;
}

static PyObject *encoder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    return codec_new(type, args, kwargs, 0);
}

static PyObject *decoder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    return codec_new(type, args, kwargs, 1);
}

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "lienthong.schemas._avro_native.Encoder",
    .tp_basicsize = sizeof(Codec),
    .tp_dealloc = (destructor)codec_dealloc,
    .tp_vectorcall_offset = offsetof(Codec, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Encoder(program)(obj, head) -> head + Avro body of obj",
    .tp_new = encoder_new,
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "lienthong.schemas._avro_native.Decoder",
    .tp_basicsize = sizeof(Codec),
    .tp_dealloc = (destructor)codec_dealloc,
    .tp_vectorcall_offset = offsetof(Codec, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Decoder(program, offset)(buf) -> record dict of the body at buf[offset:]",
    .tp_new = decoder_new,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "lienthong.schemas._avro_native",
    .m_doc = "Native Avro fast path of lienthong.schemas.codec (see the C source header).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__avro_native(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) {
        return NULL;
    }
    if (PyType_Ready(&EncoderType) < 0 || PyType_Ready(&DecoderType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Decline = PyErr_NewException("lienthong.schemas._avro_native.Decline", PyExc_ValueError, NULL);
    PyObject *uuid_module = PyImport_ImportModule("uuid");
    UUID_TYPE = uuid_module ? PyObject_GetAttrString(uuid_module, "UUID") : NULL;
    Py_XDECREF(uuid_module);
    EPOCH = PyDateTimeAPI->DateTime_FromDateAndTime(1970, 1, 1, 0, 0, 0, 0, PyDateTime_TimeZone_UTC,
                                                   PyDateTimeAPI->DateTimeType);
    STR_INT = PyUnicode_InternFromString("int");
    STR_UTCOFFSET = PyUnicode_InternFromString("utcoffset");
    if (Decline == NULL || UUID_TYPE == NULL || EPOCH == NULL || STR_INT == NULL ||
        STR_UTCOFFSET == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(Decline);
    if (PyModule_AddObject(m, "Decline", Decline) < 0 ||
        PyModule_AddObjectRef(m, "Encoder", (PyObject *)&EncoderType) < 0 ||
        PyModule_AddObjectRef(m, "Decoder", (PyObject *)&DecoderType) < 0 ||
        PyModule_AddIntConstant(m, "VERSION", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
