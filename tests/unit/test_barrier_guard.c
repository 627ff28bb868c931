/* barrier_guard against libraft's own disk code (the restart-all failure
 * of the Jepsen run, docs/verification.md).
 *
 * Each test opens libraft 0.15's real raft_io (raft_uv) on a temporary
 * directory, writes a log, runs the sequence a follower runs when its log
 * is truncated while a snapshot is being written, closes, and loads the
 * directory again the way a restarted node does. Without the guard,
 * libraft 0.15 loses the truncate (the loaded log still ends with the old
 * term's entries, the new ones are gone) or never finishes the snapshot;
 * with it, the log on disk is the log libraft meant to write. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "replica/barrier_guard.h"

typedef struct {
    uv_loop_t loop;
    char dir[64];
    struct raft_uv_transport transport;
    struct raft_io io;
    barrier_guard guard;
    bool guarded;
    int appends_pending;
    int append_failures;
    int canceled;
    int put_calls;
    int put_status;
    bool closed;
    struct raft_entry first[10], second[3];
    struct raft_io_append a1, a2;
    struct raft_snapshot snap;
    struct raft_buffer snap_buf;
    struct raft_io_snapshot_put put;
} fixture;

static fixture *F; /* the raft_io callbacks carry no pointer of ours */

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static void run_until(fixture *f, bool (*done)(fixture *), int max_ms)
{
    for (int i = 0; i < max_ms && !done(f); i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static bool appends_done(fixture *f)
{
    return f->appends_pending == 0;
}
static bool all_done(fixture *f)
{
    return f->appends_pending == 0 && f->put_calls > 0;
}
static bool closed(fixture *f)
{
    return f->closed;
}

static void append_cb(struct raft_io_append *req, int status)
{
    F->appends_pending--;
    if (status == RAFT_CANCELED)
        F->canceled++;
    else if (status != 0)
        F->append_failures++;
}

static void put_cb(struct raft_io_snapshot_put *req, int status)
{
    F->put_calls++;
    F->put_status = status;
}

static void close_cb(struct raft_io *io)
{
    F->closed = true;
}

static void make_entries(struct raft_entry *e, unsigned n, raft_term term)
{
    for (unsigned i = 0; i < n; i++) {
        e[i].term = term;
        e[i].type = RAFT_COMMAND;
        e[i].buf.len = 8;
        e[i].buf.base = raft_malloc(8);
        memset(e[i].buf.base, (int)term, 8);
        e[i].batch = NULL;
    }
}

static void free_entries(struct raft_entry *e, unsigned n)
{
    for (unsigned i = 0; i < n; i++) raft_free(e[i].buf.base);
}

static void io_open(fixture *f)
{
    assert_int_equal(raft_uv_tcp_init(&f->transport, &f->loop), 0);
    assert_int_equal(raft_uv_init(&f->io, &f->loop, f->dir, &f->transport), 0);
    assert_int_equal(f->io.init(&f->io, 1, "127.0.0.1:9"), 0);
    if (f->guarded) barrier_guard_install(&f->guard, &f->io, &f->loop);
}

static void io_close(fixture *f)
{
    f->closed = false;
    f->io.close(&f->io, close_cb);
    run_until(f, closed, 5000);
    assert_true(f->closed);
    if (f->guarded) {
        barrier_guard_close(&f->guard);
        barrier_guard_forget(&f->guard);
    }
    raft_uv_close(&f->io);
    raft_uv_tcp_close(&f->transport);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* What io->load returns. */
typedef struct {
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap;
    raft_index start;
    struct raft_entry *entries;
    size_t n;
} loaded;

static int load(fixture *f, loaded *l)
{
    memset(l, 0, sizeof(*l));
    int rv = f->io.load(&f->io, &l->term, &l->vote, &l->snap, &l->start, &l->entries, &l->n);
    if (rv != 0) print_message("load: %s\n", f->io.errmsg);
    return rv;
}

/* A fresh directory opened as a node does on its first start. */
static void open_empty(fixture *f)
{
    io_open(f);
    loaded l;
    assert_int_equal(load(f, &l), 0);
}

/* The snapshot put in every test: index 6, term 1, one voter. */
static void make_snapshot(fixture *f)
{
    memset(&f->snap, 0, sizeof(f->snap));
    f->snap.index = 6;
    f->snap.term = 1;
    raft_configuration_init(&f->snap.configuration);
    assert_int_equal(raft_configuration_add(&f->snap.configuration, 1, "127.0.0.1:9", RAFT_VOTER),
                     0);
    f->snap.configuration_index = 1;
    f->snap_buf.len = 8;
    f->snap_buf.base = raft_malloc(8);
    memset(f->snap_buf.base, 7, 8);
    f->snap.bufs = &f->snap_buf;
    f->snap.n_bufs = 1;
}

static void free_snapshot(fixture *f)
{
    raft_configuration_close(&f->snap.configuration);
    raft_free(f->snap_buf.base);
}

/* Load the directory as a restarted node does: the terms of the entries
 * at indexes 1..10 (0 where there is none). */
static void load_terms(fixture *f, raft_term terms[11], raft_index *last)
{
    bool guarded = f->guarded;
    f->guarded = false;
    io_open(f);
    loaded l;
    assert_int_equal(load(f, &l), 0);
    memset(terms, 0, 11 * sizeof(raft_term));
    for (size_t i = 0; i < l.n; i++)
        if (l.start + i <= 10) terms[l.start + i] = l.entries[i].term;
    *last = l.start + l.n - 1;
    for (size_t i = 0; i < l.n; i++) /* one batch per segment loaded */
        if (i == 0 || l.entries[i].batch != l.entries[i - 1].batch) raft_free(l.entries[i].batch);
    raft_free(l.entries);
    struct raft_snapshot *snap = l.snap;
    if (snap) {
        raft_configuration_close(&snap->configuration);
        raft_free(snap->bufs[0].base);
        raft_free(snap->bufs);
        raft_free(snap);
    }
    io_close(f);
    f->guarded = guarded;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    F = f;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-guard-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static void remove_dir(fixture *f)
{
    DIR *d = opendir(f->dir);
    struct dirent *e;
    char path[320];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(f->dir);
}

static int teardown(void **state)
{
    fixture *f = *state;
    remove_dir(f);
    uv_loop_close(&f->loop);
    free(f);
    return 0;
}

/* Entries 1..10 of term 1 on disk; then the log is truncated at 8 and
 * entries 8..10 of term 2 replace the old ones. `order` places the
 * snapshot put at index 6: 0 just before the truncate, 1 between the
 * truncate and the append. */
static void scenario(fixture *f, bool guarded, int order)
{
    f->guarded = guarded;
    open_empty(f);
    assert_int_equal(f->io.set_term(&f->io, 2), 0);

    make_entries(f->first, 10, 1);
    f->appends_pending = 1;
    assert_int_equal(f->io.append(&f->io, &f->a1, f->first, 10, append_cb), 0);
    run_until(f, appends_done, 5000);
    assert_int_equal(f->appends_pending, 0);

    make_snapshot(f);

    make_entries(f->second, 3, 2);
    if (order == 0) assert_int_equal(f->io.snapshot_put(&f->io, 2, &f->put, &f->snap, put_cb), 0);
    assert_int_equal(f->io.truncate(&f->io, 8), 0);
    if (order == 1) assert_int_equal(f->io.snapshot_put(&f->io, 2, &f->put, &f->snap, put_cb), 0);
    f->appends_pending = 1;
    assert_int_equal(f->io.append(&f->io, &f->a2, f->second, 3, append_cb), 0);
    run_until(f, all_done, 5000);
    io_close(f);
    free_snapshot(f);
    free_entries(f->first, 10);
    free_entries(f->second, 3);
}

/* Every callback came, without error, and the log on disk is 1..7 of term
 * 1 and 8..10 of term 2. */
static void assert_truncated_log(fixture *f)
{
    assert_int_equal(f->appends_pending, 0);
    assert_int_equal(f->append_failures, 0);
    assert_int_equal(f->put_calls, 1);
    assert_int_equal(f->put_status, 0);
    raft_term terms[11];
    raft_index last;
    load_terms(f, terms, &last);
    assert_int_equal(last, 10);
    for (int i = 1; i <= 7; i++) assert_int_equal(terms[i], 1);
    for (int i = 8; i <= 10; i++) assert_int_equal(terms[i], 2); /* the new entries, not the old */
}

static void test_truncate_waits_for_snapshot_put(void **state)
{
    fixture *f = *state;
    scenario(f, true, 0);
    assert_int_equal(f->guard.held_truncates, 1);
    assert_truncated_log(f);
}

static void test_snapshot_put_waits_for_truncate(void **state)
{
    fixture *f = *state;
    scenario(f, true, 1); /* libraft 0.15 alone never calls the put back */
    assert_int_equal(f->guard.held_puts, 1);
    assert_truncated_log(f);
}

/* What the guard is for: the same sequences straight into libraft. Printed,
 * not asserted, so that a fixed libraft does not fail the suite. */
static void test_unguarded_libraft_for_reference(void **state)
{
    fixture *f = *state;
    if (SANITIZED) skip(); /* libraft leaks the truncate it loses */
    scenario(f, false, 0);
    raft_term terms[11];
    raft_index last;
    load_terms(f, terms, &last);
    print_message("libraft alone, truncate during a snapshot put: last index %llu, terms at "
                  "8..10: %llu %llu %llu (a correct log has 2 2 2)\n",
                  (unsigned long long)last, (unsigned long long)terms[8],
                  (unsigned long long)terms[9], (unsigned long long)terms[10]);
}

static void test_appends_pass_straight_through(void **state)
{
    fixture *f = *state;
    f->guarded = true;
    open_empty(f);
    make_entries(f->first, 10, 1);
    f->appends_pending = 2;
    assert_int_equal(f->io.append(&f->io, &f->a1, f->first, 5, append_cb), 0);
    assert_int_equal(f->io.append(&f->io, &f->a2, f->first + 5, 5, append_cb), 0);
    assert_int_equal(barrier_guard_held(&f->guard), 0);
    run_until(f, appends_done, 5000);
    assert_int_equal(f->appends_pending, 0);
    assert_int_equal(f->guard.held_total, 0);
    io_close(f);
    free_entries(f->first, 10);
}

static void test_close_cancels_held_operations(void **state)
{
    fixture *f = *state;
    f->guarded = true;
    open_empty(f);
    make_entries(f->first, 10, 1);
    make_entries(f->second, 3, 2);
    f->appends_pending = 1;
    assert_int_equal(f->io.append(&f->io, &f->a1, f->first, 10, append_cb), 0);
    run_until(f, appends_done, 5000);
    make_snapshot(f);
    assert_int_equal(f->io.snapshot_put(&f->io, 2, &f->put, &f->snap, put_cb), 0);
    assert_int_equal(f->io.truncate(&f->io, 8), 0);
    f->appends_pending = 1;
    assert_int_equal(f->io.append(&f->io, &f->a2, f->second, 3, append_cb), 0);
    assert_int_equal(barrier_guard_held(&f->guard), 2); /* the truncate and the append */
    io_close(f);
    assert_int_equal(f->canceled, 1);
    assert_int_equal(f->appends_pending, 0);
    free_snapshot(f);
    free_entries(f->first, 10);
    free_entries(f->second, 3);
}

/* libraft 0.15 closes its log barrier by calling the barrier's callback
 * once more; when that barrier is a truncate whose work is already on the
 * thread pool, the callback frees the truncate request and the work's
 * completion then writes through the freed pointer (canonical/raft issue
 * 332: the SIGSEGV a CI run met when a node was stopped right after its
 * log was truncated by a new leader). The window is a few milliseconds
 * wide, so the close is swept across it: after 0..`steps` loop iterations
 * of the truncate and the append that follows it. */
static unsigned truncate_then_close(fixture *f, bool guarded, int steps)
{
    unsigned waited = 0;
    for (int delay = 0; delay < steps; delay++) {
        if (delay > 0) { /* a fresh directory for each attempt */
            remove_dir(f);
            snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-guard-XXXXXX");
            assert_non_null(mkdtemp(f->dir));
        }
        f->guarded = guarded;
        open_empty(f);
        assert_int_equal(f->io.set_term(&f->io, 2), 0);
        make_entries(f->first, 10, 1);
        make_entries(f->second, 3, 2);
        f->appends_pending = 1;
        assert_int_equal(f->io.append(&f->io, &f->a1, f->first, 10, append_cb), 0);
        run_until(f, appends_done, 5000);
        assert_int_equal(f->appends_pending, 0);
        assert_int_equal(f->io.truncate(&f->io, 8), 0);
        f->appends_pending = 1;
        assert_int_equal(f->io.append(&f->io, &f->a2, f->second, 3, append_cb), 0);
        for (int i = 0; i < delay; i++) {
            uv_run(&f->loop, UV_RUN_NOWAIT);
            usleep(100);
        }
        io_close(f);
        waited += (unsigned)f->guard.close_waited;
        assert_int_equal(f->appends_pending, 0); /* the append was answered */
        free_entries(f->first, 10);
        free_entries(f->second, 3);
    }
    return waited;
}

static void test_close_waits_for_the_truncate_in_flight(void **state)
{
    /* UNGUARDED=1 shows libraft alone crashing */
    unsigned waited = truncate_then_close(*state, getenv("UNGUARDED") == NULL, 60);
    print_message("closes that waited for a truncate: %u of 60\n", waited);
    assert_true(waited > 0); /* the sweep met the window */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_truncate_waits_for_snapshot_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_put_waits_for_truncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unguarded_libraft_for_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_appends_pass_straight_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels_held_operations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_waits_for_the_truncate_in_flight, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
