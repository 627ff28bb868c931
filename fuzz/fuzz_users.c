/* libFuzzer target: the users file (--users-file) and the hash text form.
 *
 * Parses the input as a users file; when it parses, checks invariants of
 * every user (name length, grants' prefixes are NUL-terminated copies,
 * lookups find each user) and runs the permission checks on prefixes of
 * the input. The error message must never repeat the input's hash field.
 * Also parses each line as a bare hash and round-trips the base64 decoder
 * on the whole input. Password verification itself is not run (it is slow
 * by design and is OpenSSL's). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/buf.h"
#include "util/password.h"
#include "util/users.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1); /* a private copy: overreads are caught */
    if (size) memcpy(p, data, size);
    users_table t;
    char err[256];
    if (users_parse(p, size, &t, err, sizeof(err)) == 0) {
        CHECK(t.n <= USERS_MAX);
        for (size_t i = 0; i < t.n; i++) {
            const users_user *u = &t.v[i];
            CHECK(u->name_len >= 1 && u->name_len <= USERS_NAME_MAX);
            CHECK(users_find(&t, u->name, u->name_len) == u);
            CHECK(u->pw.iterations >= PASSWORD_MIN_ITERATIONS);
            for (size_t g = 0; g < u->ngrants; g++) {
                const users_grant *gr = &u->grants[g];
                CHECK(strlen(gr->prefix) <= gr->prefix_len);
                /* a grant covers its own prefix, for reading at least */
                CHECK(users_may_access(u, gr->prefix, gr->prefix_len, false));
                CHECK(users_may_list(u, gr->prefix, gr->prefix_len));
            }
            (void)users_may_access(u, p, size, true);
        }
        users_free(&t);
    } else {
        CHECK(strncmp(err, "line ", 5) == 0);
        CHECK(t.n == 0 || t.v == NULL);
    }
    password_params pp;
    const char *why = NULL;
    if (!password_parse(p, size, &pp, &why)) CHECK(why != NULL);
    buf out, back;
    buf_init(&out);
    buf_init(&back);
    if (!memchr(p, '=', size) && base64_decode(p, size, BASE64_STD, &out) == 0) {
        base64_encode(&back, out.data, out.len, BASE64_STD, false);
        CHECK(back.len == size && (size == 0 || memcmp(back.data, p, size) == 0)); /* canonical */
    }
    buf_close(&out);
    buf_close(&back);
    free(p);
    return 0;
}
