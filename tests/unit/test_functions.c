/* kv/functions: FUNCTION LOAD, DELETE and FLUSH as replicated state.
 * A library whose name exists is refused without REPLACE, a function name
 * another library has is refused (REPLACE or not), and neither refusal
 * changes anything; REPLACE keeps the library's place; every change moves
 * gen; a snapshot carries the libraries (version 9) and a damaged library
 * table is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_refusals_replace_delete_flush),
        cmocka_unit_test(test_snapshot_carries_libraries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
