/* libFuzzer target: JSON request bodies (json_scan), as the cluster
 * membership endpoints and cairnctl read them.
 *
 * Parses the input; when it parses, walks every value recursively (bounded
 * by the parser's depth limit), decodes every string, converts every number,
 * and looks up the fields the server reads ("id", "peer"). Invariants: value
 * windows lie inside the input, a decoded string is never longer than its
 * source, and base64url decoding of the input never overreads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json_scan.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static const char *fuzz_base;
static size_t fuzz_size;

static void walk(const json_value *v, int depth)
{
    CHECK(depth <= JSON_SCAN_MAX_DEPTH + 1);
    CHECK(v->text >= fuzz_base && v->text + v->len <= fuzz_base + fuzz_size);
    buf b;
    buf_init(&b);
    if (json_scan_string(v, &b) == 0) CHECK(b.len <= v->len);
    buf_close(&b);
    int64_t i;
    uint64_t u;
    bool t;
    (void)json_scan_i64(v, &i);
    (void)json_scan_u64(v, &u);
    (void)json_scan_bool(v, &t);
    json_iter it;
    if (json_scan_iter_init(&it, v) != 0) return;
    json_value name, value;
    for (int n = 0; n < 100000 && json_scan_iter_next(&it, &name, &value) == 1; n++) {
        walk(&value, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy so that reads past the end are caught by ASan */
    char *p = malloc(size ? size : 1);
    if (size) memcpy(p, data, size);
    fuzz_base = p;
    fuzz_size = size;
    json_value root, v;
    if (json_scan_parse(p, size, &root) == 0) {
        walk(&root, 0);
        (void)json_scan_get(&root, "id", &v);
        (void)json_scan_get(&root, "peer", &v);
        (void)json_scan_find(&root, "members", &v);
    }
    buf out;
    buf_init(&out);
    if (json_scan_base64url_decode(p, size, &out) == 0) CHECK(out.len <= size);
    buf_close(&out);
    free(p);
    return 0;
}
