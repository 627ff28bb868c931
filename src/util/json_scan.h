/* json_scan: a small validating reader for JSON documents held in memory.
 *
 * Not a DOM: a json_value is a typed window (pointer + length) into the
 * caller's text, and lookups rescan that text. That is all a client needs to
 * pick a few fields out of a server response, and nothing is allocated
 * except when a string is decoded into the caller's buf.
 *
 * json_scan_parse validates the whole document first (RFC 8259 grammar, with
 * nesting limited to JSON_SCAN_MAX_DEPTH so that hostile input cannot
 * exhaust the stack). The other functions take values that came from it;
 * they point into the text, which must outlive them. Bytes >= 0x80 inside
 * strings are passed through as they are, without UTF-8 validation: a client
 * should still be able to read a response that has one odd field.
 *
 * Also here: base64url decoding (RFC 4648 §5), because that is how cairn puts
 * binary keys and values into JSON.
 *
 * Pure code without global state: any thread may call it. */
#ifndef CAIRN_UTIL_JSON_SCAN_H
#define CAIRN_UTIL_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define JSON_SCAN_MAX_DEPTH 64

enum {
    JSON_SCAN_OK = 0,
    JSON_SCAN_ESYNTAX = -1,   /* not JSON */
    JSON_SCAN_EDEPTH = -2,    /* nested deeper than JSON_SCAN_MAX_DEPTH */
    JSON_SCAN_ENOTFOUND = -3, /* no such member or index */
    JSON_SCAN_ETYPE = -4,     /* the value has another type than asked for */
    JSON_SCAN_ERANGE = -5,    /* a number does not fit */
    JSON_SCAN_EENCODING = -6, /* lone surrogate in a string, bad base64url */
};

typedef enum json_type {
    JSON_NULL = 1,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
} json_type;

typedef struct json_value {
    json_type type;
    const char *text; /* first byte of the value (the quote of a string) */
    size_t len;       /* bytes of the value's source text */
} json_value;

/* Iterates over the members of an object or the elements of an array. */
typedef struct json_iter {
    const char *pos;
    const char *end;
    bool is_object;
    bool done;
} json_iter;

/* Validate text[0..len) as one JSON document (surrounding whitespace
 * allowed) and describe its root value in *root. */
int json_scan_parse(const char *text, size_t len, json_value *root);

/* Member `name` of object *obj. With duplicate names the first one wins.
 * JSON_SCAN_ETYPE when obj is not an object, JSON_SCAN_ENOTFOUND when the
 * member is missing. */
int json_scan_get(const json_value *obj, const char *name, json_value *out);

/* Follow a dotted path from *v: "members.0.id" is member "members", its
 * element 0, that element's member "id". A segment made only of digits
 * indexes an array; on an object it is a member name. An empty path yields
 * *v itself. Names that contain '.' need json_scan_get. */
int json_scan_find(const json_value *v, const char *path, json_value *out);

/* Start iterating over *container (an object or array). */
int json_scan_iter_init(json_iter *it, const json_value *container);
/* Next element: returns 1 and fills *value (and, for objects, *name with the
 * member name as a JSON_STRING value, when name is not NULL), or 0 at the
 * end. */
int json_scan_iter_next(json_iter *it, json_value *name, json_value *value);

/* Append the decoded bytes of a JSON string to out (UTF-8, \u escapes and
 * surrogate pairs resolved; \u0000 gives a NUL byte). On error nothing is
 * appended. */
int json_scan_string(const json_value *v, buf *out);
/* True when *v is a string whose decoded bytes equal s[0..n). */
bool json_scan_string_eq(const json_value *v, const char *s, size_t n);

/* Integer values; a fraction or exponent is JSON_SCAN_ETYPE, overflow
 * JSON_SCAN_ERANGE. */
int json_scan_i64(const json_value *v, int64_t *out);
int json_scan_u64(const json_value *v, uint64_t *out);
int json_scan_bool(const json_value *v, bool *out);

/* Decode base64url (alphabet A-Z a-z 0-9 - _) and append the bytes to out.
 * Padding is optional but, when present, must complete the last quantum;
 * unused low bits of the last character must be zero, so that every byte
 * string has exactly one accepted encoding. On error nothing is appended. */
int json_scan_base64url_decode(const char *s, size_t n, buf *out);

const char *json_scan_strerror(int err);

#endif
