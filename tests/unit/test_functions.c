/* kv/functions: FUNCTION LOAD, DELETE and FLUSH as replicated state.
 * A library whose name exists is refused without REPLACE, a function name
 * another library has is refused (REPLACE or not), and neither refusal
 * changes anything; REPLACE keeps the library's place; every change moves
 * gen; a snapshot carries the libraries (version 9) and a damaged library
 * table is refused. FUNCTION RESTORE joins libraries all or none: APPEND
 * refuses a name that exists, REPLACE drops the payload's names before it
 * checks function names, FLUSH starts from none; a refusal changes
 * nothing, gen included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/command.h"
#include "kv/functions.h"
#include "kv/snapshot.h"
#include "kv/store.h"
#include "util/hash.h"

static kv_slice str(const char *s)
{
    return (kv_slice){s, strlen(s)};
}

static kv_result fload(kv_store *s, bool replace, const char *name, const char *code,
                       const char *f1, const char *f2)
{
    kv_slice a[4] = {str(name), str(code), f1 ? str(f1) : str(""), f2 ? str(f2) : str("")};
    kv_command c = {.op = KV_OP_FUNCTION_LOAD,
                    .now_ms = 1,
                    .flags = replace ? KV_FLAG_XX : 0,
                    .nargs = 2 + (f1 != NULL) + (f2 != NULL),
                    .args = a};
    kv_result r;
    kv_store_apply(s, &c, &r);
    return r;
}

static kv_result fdelete(kv_store *s, const char *name)
{
    kv_slice a = str(name);
    kv_command c = {.op = KV_OP_FUNCTION_DELETE, .now_ms = 1, .nargs = 1, .args = &a};
    kv_result r;
    kv_store_apply(s, &c, &r);
    return r;
}

static void test_load_refusals_replace_delete_flush(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 1);
    uint64_t gen = s.functions.gen;
    assert_int_equal(fload(&s, false, "lib", "#!lua name=lib\n...", "a", "b").status, KV_OK);
    assert_int_equal(fload(&s, false, "two", "#!lua name=two\n...", "c", NULL).status, KV_OK);
    assert_true(s.functions.gen > gen);
    gen = s.functions.gen;
    kv_result r = fload(&s, false, "lib", "other", "z", NULL);
    assert_int_equal(r.status, KV_ERR_LIBRARY_EXISTS);
    assert_memory_equal(r.value, "lib", 3);
    r = fload(&s, false, "three", "code", "x", "c"); /* c is two's */
    assert_int_equal(r.status, KV_ERR_FUNCTION_EXISTS);
    assert_int_equal(r.value_len, 1);
    assert_memory_equal(r.value, "c", 1);
    r = fload(&s, true, "lib", "code", "c", NULL); /* REPLACE does not take another's name */
    assert_int_equal(r.status, KV_ERR_FUNCTION_EXISTS);
    assert_int_equal(s.functions.gen, gen); /* refusals change nothing */
    assert_int_equal(s.functions.n, 2);
    /* REPLACE: its own names may come back, its place stays */
    assert_int_equal(fload(&s, true, "lib", "new code", "b", NULL).status, KV_OK);
    assert_int_equal(s.functions.n, 2);
    assert_memory_equal(s.functions.libs[0].name, "lib", 3);
    assert_memory_equal(s.functions.libs[0].code, "new code", 8);
    assert_int_equal(s.functions.libs[0].nfn, 1);
    assert_int_equal(fdelete(&s, "nope").status, KV_ERR_NO_LIBRARY);
    assert_int_equal(fdelete(&s, "lib").status, KV_OK);
    assert_int_equal(s.functions.n, 1);
    assert_null(kv_functions_find(&s.functions, "lib", 3));
    assert_non_null(kv_functions_find(&s.functions, "two", 3));
    assert_int_equal(fload(&s, false, "lib", "again", "a", NULL).status, KV_OK); /* free again */
    kv_command flush = {.op = KV_OP_FUNCTION_FLUSH, .now_ms = 1};
    kv_store_apply(&s, &flush, &r);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(s.functions.n, 0);
    assert_int_equal(s.revision, 0); /* not a keyspace change */
    kv_store_close(&s);
}

static int sink(void *ctx, const void *p, size_t n)
{
    buf_append(ctx, p, n);
    return 0;
}

static void test_snapshot_carries_libraries(void **state)
{
    (void)state;
    kv_store a, b;
    kv_store_init(&a, 1);
    kv_store_init(&b, 2);
    fload(&a, false, "lib", "#!lua name=lib\ncode", "f", "g");
    fload(&a, false, "empty_code", "", "h", NULL);
    buf out;
    buf_init(&out);
    assert_int_equal(kv_snapshot_write(&a, sink, &out), 0);
    uint64_t gen = b.functions.gen;
    char err[256];
    assert_int_equal(kv_snapshot_load(&b, out.data, out.len, err, sizeof(err)), 0);
    assert_true(b.functions.gen > gen); /* a node reloads its interpreter */
    assert_int_equal(b.functions.n, 2);
    const kv_library *l = kv_functions_find(&b.functions, "lib", 3);
    assert_non_null(l);
    assert_int_equal(l->code_len, strlen("#!lua name=lib\ncode"));
    assert_int_equal(l->nfn, 2);
    assert_memory_equal(l->fnames[1].ptr, "g", 1);
    /* a function name another library loaded has is still refused */
    assert_int_equal(fload(&b, false, "x", "c", "g", NULL).status, KV_ERR_FUNCTION_EXISTS);
    /* damaged: every truncation of the library table fails cleanly (the
     * CRC is recomputed, so the parser itself must notice) */
    size_t table = out.len - 4; /* the CRC */
    /* the count, then each library: name, code, its function names */
    size_t start = table - 4 - (4 + 3 + 4 + 19 + 4 + 4 + 1 + 4 + 1) - (4 + 10 + 4 + 0 + 4 + 4 + 1);
    uint32_t count;
    memcpy(&count, out.data + start, 4);
    assert_int_equal(count, 2); /* start is where the table begins */
    for (size_t cut = start; cut < table; cut++) {
        buf bad;
        buf_init(&bad);
        buf_append(&bad, out.data, cut);
        uint32_t crc = crc32c_update(0, bad.data, bad.len);
        buf_append(&bad, &crc, 4);
        kv_store c;
        kv_store_init(&c, 3);
        assert_int_equal(kv_snapshot_load(&c, bad.data, bad.len, err, sizeof(err)), -1);
        kv_store_close(&c);
        buf_close(&bad);
    }
    buf_close(&out);
    kv_store_close(&a);
    kv_store_close(&b);
}

/* KV_OP_FUNCTION_RESTORE of libraries given as "name:fn,fn" strings. */
static kv_result frestore(kv_store *s, int policy, const char *const *libs, int n)
{
    kv_slice a[32];
    char counts[8][4];
    uint32_t k = 0;
    for (int i = 0; i < n; i++) {
        const char *colon = strchr(libs[i], ':');
        a[k++] = (kv_slice){libs[i], (size_t)(colon - libs[i])};
        a[k++] = str("code");
        uint32_t at = k++, nfn = 0;
        for (const char *p = colon + 1; *p;) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            a[k++] = (kv_slice){p, len};
            nfn++;
            p += len + (end != NULL);
        }
        snprintf(counts[i], sizeof(counts[i]), "%u", nfn);
        a[at] = str(counts[i]);
    }
    kv_command c = {.op = KV_OP_FUNCTION_RESTORE, .now_ms = 1, .a = policy, .nargs = k, .args = a};
    kv_result r;
    kv_store_apply(s, &c, &r);
    return r;
}

static void test_restore_all_or_none(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 1);
    assert_int_equal(fload(&s, false, "a", "#!lua name=a\n...", "fa", NULL).status, KV_OK);
    assert_int_equal(fload(&s, false, "b", "#!lua name=b\n...", "fb", NULL).status, KV_OK);
    uint64_t gen = s.functions.gen;
    /* APPEND: b exists, so c does not go in either */
    kv_result r = frestore(&s, KV_FUNCTION_RESTORE_APPEND, (const char *[]){"c:fc", "b:fb"}, 2);
    assert_int_equal(r.status, KV_ERR_PRECONDITION);
    assert_memory_equal(r.value, "Lb", 2);
    assert_null(kv_functions_find(&s.functions, "c", 1));
    assert_int_equal(s.functions.gen, gen);
    /* a function name that a library keeps: nothing */
    r = frestore(&s, KV_FUNCTION_RESTORE_APPEND, (const char *[]){"c:fc", "d:fa"}, 2);
    assert_int_equal(r.status, KV_ERR_PRECONDITION);
    assert_memory_equal(r.value, "Ffa", 3);
    assert_null(kv_functions_find(&s.functions, "c", 1));
    /* REPLACE: a's new code takes b's function, b (replaced too) gives it up */
    r = frestore(&s, KV_FUNCTION_RESTORE_REPLACE, (const char *[]){"a:fb", "b:fx"}, 2);
    assert_int_equal(r.status, KV_OK);
    assert_true(s.functions.gen > gen);
    assert_int_equal(s.functions.n, 2);
    assert_memory_equal(kv_functions_find(&s.functions, "a", 1)->fnames[0].ptr, "fb", 2);
    assert_memory_equal(kv_functions_find(&s.functions, "b", 1)->fnames[0].ptr, "fx", 2);
    /* FLUSH: only the payload's */
    r = frestore(&s, KV_FUNCTION_RESTORE_FLUSH, (const char *[]){"z:fa"}, 1);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(s.functions.n, 1);
    assert_non_null(kv_functions_find(&s.functions, "z", 1));
    /* malformed: a count past the arguments */
    kv_slice bad[3] = {str("x"), str("code"), str("5")};
    kv_command c = {.op = KV_OP_FUNCTION_RESTORE, .nargs = 3, .args = bad};
    kv_store_apply(&s, &c, &r);
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    assert_int_equal(s.functions.n, 1);
    kv_store_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_refusals_replace_delete_flush),
        cmocka_unit_test(test_snapshot_carries_libraries),
        cmocka_unit_test(test_restore_all_or_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
