/* The read barrier's completion (issue 23, part 2).
 *
 * When leadership is lost while linearizable reads wait on a barrier, the
 * failed batch goes back to the front of the queue, ahead of the reads that
 * arrived meanwhile, and everything is retried (forwarded to the new
 * leader). Debian's GCC 12.2 at -O3 compiled the old one-op-at-a-time
 * splice of that branch into a loop that never ended: the node spun at 100%
 * CPU and never served again after a leader pause. This test drives the
 * real replica__barrier_done (op.c and read.c are compiled into it, so the
 * list code is inlined into it as the old single file allowed) and is built
 * twice, at -O2 and at -O3 (CMakeLists.txt), with assertions on: a
 * miscompiled splice hangs and the ctest timeout (and the alarm below)
 * fails it.
 *
 * Then the op-list invariants that the fix asserts on every push, remove
 * and move, and the leader's side of a follower's read-index request
 * (issue 24): the index it answers must cover every entry committed before
 * the request arrived, also when this leader was elected a moment ago and
 * has not yet committed an entry of its own term; since expiry became
 * linearizable (docs/design.md "Expiry") it is the last entry appended
 * before the barrier, and the read's stamp never goes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "replica/op.c"
#include "replica/read.c"

typedef struct {
    uv_loop_t loop;
    replica *r;
    replica_req reqs[8];
    int done_status[8];
    int done_calls[8];
} fixture;

static void req_done(replica_req *req, int status)
{
    fixture *f = req->data;
    int i = (int)(req - f->reqs);
    f->done_calls[i]++;
    f->done_status[i] = status;
}

static int64_t test_clock_ms(void *ctx)
{
    (void)ctx;
    return 1000; /* deadlines never pass in these tests */
}

static int64_t g_wall_ms = 1000; /* the wall clock commands and reads are stamped by */

static int64_t test_wall_ms(void *ctx)
{
    (void)ctx;
    return g_wall_ms;
}

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    f->r = xcalloc(1, sizeof(*f->r));
    f->r->loop = &f->loop;
    f->r->raft = &f->r->own_raft;
    f->r->env.mono_ms = test_clock_ms;
    f->r->env.wall_ms = test_wall_ms;
    static kv_store empty_store; /* replica_read looks at its revision only */
    f->r->store = &empty_store;
    g_wall_ms = 1000;
    uv_timer_init(&f->loop, &f->r->kick);
    f->r->kick.data = f->r;
    f->r->barrier.data = f->r; /* as replica__start_barrier sets it */
    static cairn_config cfg;
    config_defaults(&cfg);
    f->r->cfg = &cfg;
    for (int i = 0; i < 8; i++) replica_req_init(&f->reqs[i], f, req_done);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    replica *r = f->r;
    op_list *lists[] = {&r->barrier_next, &r->barrier_now, &r->completed};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        while (lists[i]->head) {
            replica_op *op = lists[i]->head;
            if (op->req) op->req->op = NULL;
            replica_op_free(op);
        }
    uv_timer_stop(&r->kick);
    uv_close((uv_handle_t *)&r->kick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    free(r);
    free(f);
    return 0;
}

/* Queue reads 0..n_now-1 as the batch in flight, n_now..n_now+n_next-1 as
 * arrived since. */
static void queue_reads(fixture *f, int n_now, int n_next)
{
    replica *r = f->r;
    for (int i = 0; i < n_now + n_next; i++) {
        replica_op *op = replica_op_new(r, &f->reqs[i], OP_READ_BARRIER, 5);
        op_list_push(&r->barrier_next, op);
        if (i == n_now - 1) op_list_move_all(&r->barrier_now, &r->barrier_next);
    }
    r->barrier_inflight = n_now > 0;
}

static void assert_list_is(op_list *l, fixture *f, const int *want, size_t n)
{
    assert_int_equal(l->n, n);
    replica_op *prev = NULL;
    size_t i = 0;
    for (replica_op *op = l->head; op; op = op->next, i++) {
        assert_true(i < n);
        assert_ptr_equal(op->list, l);
        assert_ptr_equal(op->prev, prev);
        assert_ptr_equal(op->req, &f->reqs[want[i]]);
        prev = op;
    }
    assert_int_equal(i, n);
    assert_ptr_equal(l->tail, prev);
}

static void test_leadership_lost_requeues_oldest_first(void **state)
{
    fixture *f = *state;
    replica *r = f->r;
    queue_reads(f, 3, 1);
    replica__barrier_done(&r->barrier, RAFT_LEADERSHIPLOST);
    assert_false(r->barrier_inflight);
    static const int want[] = {0, 1, 2, 3};
    assert_list_is(&r->barrier_next, f, want, 4);
    assert_list_is(&r->barrier_now, f, NULL, 0);
    assert_int_equal(r->completed.n, 0);
    assert_true(r->kick_armed); /* the retry runs on the next loop pass */
    for (int i = 0; i < 4; i++) assert_int_equal(f->done_calls[i], 0);
}

static void test_leadership_lost_with_nothing_newer(void **state)
{
    fixture *f = *state;
    replica *r = f->r;
    queue_reads(f, 5, 0);
    replica__barrier_done(&r->barrier, RAFT_LEADERSHIPLOST);
    static const int want[] = {0, 1, 2, 3, 4};
    assert_list_is(&r->barrier_next, f, want, 5);
    assert_list_is(&r->barrier_now, f, NULL, 0);
}

static void test_leadership_lost_many_newer(void **state)
{
    fixture *f = *state;
    replica *r = f->r;
    queue_reads(f, 1, 7);
    replica__barrier_done(&r->barrier, RAFT_LEADERSHIPLOST);
    static const int want[] = {0, 1, 2, 3, 4, 5, 6, 7};
    assert_list_is(&r->barrier_next, f, want, 8);
    assert_list_is(&r->barrier_now, f, NULL, 0);
}

static void test_success_completes_the_batch_only(void **state)
{
    fixture *f = *state;
    replica *r = f->r;
    queue_reads(f, 3, 2);
    replica__barrier_done(&r->barrier, 0);
    static const int done[] = {0, 1, 2}, waiting[] = {3, 4};
    assert_list_is(&r->completed, f, done, 3);
    assert_list_is(&r->barrier_next, f, waiting, 2);
    assert_list_is(&r->barrier_now, f, NULL, 0);
    /* completions run later, outside the libraft callback */
    for (int i = 0; i < 5; i++) assert_int_equal(f->done_calls[i], 0);
    replica__drain_completions(r);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f->done_calls[i], 1);
        assert_int_equal(f->done_status[i], REPLICA_OK);
    }
    assert_int_equal(f->done_calls[3], 0);
}

static void test_move_all_into_nonempty_and_empty(void **state)
{
    fixture *f = *state;
    replica *r = f->r;
    op_list a = {0}, b = {0};
    for (int i = 0; i < 4; i++) op_list_push(i < 2 ? &a : &b, replica_op_new(r, &f->reqs[i], 0, 5));
    op_list_move_all(&a, &b);
    static const int all[] = {0, 1, 2, 3};
    assert_list_is(&a, f, all, 4);
    assert_list_is(&b, f, NULL, 0);
    op_list_move_all(&a, &b); /* from an empty list: nothing changes */
    assert_list_is(&a, f, all, 4);
    op_list_move_all(&b, &a); /* into an empty list */
    assert_list_is(&b, f, all, 4);
    assert_list_is(&a, f, NULL, 0);
    replica_op *mid = b.head->next;
    op_list_remove(mid); /* from the middle */
    mid->req->op = NULL;
    replica_op_free(mid);
    static const int rest[] = {0, 2, 3};
    assert_list_is(&b, f, rest, 3);
    while (b.head) {
        replica_op *op = b.head;
        op->req->op = NULL;
        replica_op_free(op);
    }
}

/* ---- read index (issue 24) and expiry stamps ------------------------------ */

/* A leader in `term` with `commit` as its commit index and `last` as its
 * last log index; a barrier of an earlier batch is in flight, so
 * replica__start_barrier queues the read instead of calling libraft. */
static void leader_at(replica *r, uint64_t term, uint64_t commit, uint64_t last, bool ready)
{
    r->durable = true;
    r->raft->state = RAFT_LEADER;
    r->raft->current_term = term;
    r->raft->commit_index = commit;
    r->raft->log.offset = last; /* an empty in-memory log after `last` */
    r->leader_ready = ready;
    r->leader_ready_term = ready ? term : 0;
    r->barrier_inflight = true;
}

/* What replica__start_barrier does once the earlier barrier is done, but
 * for calling libraft. */
static void next_barrier_starts(replica *r)
{
    replica__barrier_begin(r);
    r->barrier_inflight = true;
}

static void barrier_commits(fixture *f, uint64_t commit)
{
    f->r->raft->commit_index = commit;
    replica__barrier_done(&f->r->barrier, 0);
    replica__drain_completions(f->r);
}

static void test_read_index_is_the_arrival_commit_settled_at_the_last_appended(void **state)
{
    fixture *f = *state;
    replica *r = f->r;
    /* 11..14 are in flight: stamped before the read's stamp; the follower
     * may answer at 10 (before them) unless its answer hid an expired
     * entry, which it then reads again once 14 is applied */
    leader_at(r, 3, 10, 14, true);
    assert_int_equal(replica_read_index(r, &f->reqs[0]), REPLICA_OK);
    next_barrier_starts(r);
    r->raft->log.offset = 16; /* the barrier (15) and a later write (16) */
    barrier_commits(f, 16);
    assert_int_equal(f->done_calls[0], 1);
    assert_int_equal(f->done_status[0], REPLICA_OK);
    assert_int_equal(f->reqs[0].read_index, 10);
    assert_int_equal(f->reqs[0].read_settle_index, 14);
    assert_int_equal(f->reqs[0].read_ms, g_wall_ms);
}

static void test_read_index_of_a_new_leader_covers_what_it_inherited(void **state)
{
    fixture *f = *state;
    replica *r = f->r;
    /* elected a moment ago: the previous leader committed and acknowledged
     * index 11, this one has only heard that 10 is committed and has not
     * committed an entry of its term yet */
    leader_at(r, 3, 10, 11, false);
    assert_int_equal(replica_read_index(r, &f->reqs[0]), REPLICA_OK);
    next_barrier_starts(r);
    barrier_commits(f, 12); /* the barrier, of term 3, commits 11 with it */
    assert_int_equal(f->done_status[0], REPLICA_OK);
    assert_int_equal(f->reqs[0].read_index, 11); /* never the 10 it had at arrival */
    assert_int_equal(f->reqs[0].read_settle_index, 11);
}

static void test_read_index_across_a_term_change_takes_the_later_index(void **state)
{
    fixture *f = *state;
    replica *r = f->r;
    leader_at(r, 3, 10, 10, true);
    assert_int_equal(replica_read_index(r, &f->reqs[0]), REPLICA_OK);
    /* leadership lost and won back (term 5) before its barrier started: a
     * leader of term 4 may have committed writes after 10 */
    r->raft->current_term = 5;
    r->leader_ready_term = 5;
    r->raft->log.offset = 15;
    next_barrier_starts(r);
    barrier_commits(f, 16);
    assert_int_equal(f->done_status[0], REPLICA_OK);
    assert_int_equal(f->reqs[0].read_index, 15);
}

/* A single voter: a linearizable read is served at once, marked unsettled
 * while entries are in flight; read again with replica_read_settle it
 * waits for a barrier behind them. */
static void test_single_voter_read_with_writes_in_flight(void **state)
{
    fixture *f = *state;
    replica *r = f->r;
    struct raft_server one = {.id = 1, .role = RAFT_VOTER};
    r->raft->configuration.servers = &one;
    r->raft->configuration.n = 1;
    leader_at(r, 3, 10, 10, true);
    r->barrier_inflight = false;
    r->raft->last_applied = 10;
    assert_int_equal(replica_read(r, &f->reqs[0], REPLICA_READ_LINEARIZABLE, 0), REPLICA_OK);
    assert_int_equal(f->done_calls[0], 1);
    assert_false(f->reqs[0].read_unsettled); /* nothing in flight */
    r->raft->log.offset = 12;                /* 11 and 12 appended, not applied */
    r->barrier_inflight = true;              /* keep libraft out of this test */
    assert_int_equal(replica_read(r, &f->reqs[1], REPLICA_READ_LINEARIZABLE, 0), REPLICA_OK);
    assert_int_equal(f->done_calls[1], 1);
    assert_true(f->reqs[1].read_unsettled);
    assert_int_equal(replica_read_settle(r, &f->reqs[1]), REPLICA_OK);
    assert_int_equal(f->done_calls[1], 1); /* waits for the barrier */
    assert_false(f->reqs[1].read_unsettled);
    next_barrier_starts(r);
    barrier_commits(f, 13);
    assert_int_equal(f->done_calls[1], 2);
    assert_int_equal(f->done_status[1], REPLICA_OK);
    r->raft->configuration.servers = NULL;
    r->raft->configuration.n = 0;
}

static void test_stamps_never_go_back(void **state)
{
    fixture *f = *state;
    replica *r = f->r;
    leader_at(r, 3, 10, 10, true);
    g_wall_ms = 5000;
    assert_int_equal(replica__stamp(r), 5000); /* a command */
    g_wall_ms = 4000;                          /* the clock is stepped back */
    assert_int_equal(replica_read_index(r, &f->reqs[0]), REPLICA_OK);
    next_barrier_starts(r);
    assert_int_equal(f->reqs[0].read_ms, 5000); /* not before the command */
    g_wall_ms = 5200;
    assert_int_equal(replica__stamp(r), 5200);
    barrier_commits(f, 11);
    /* a stale read promises no order: this node's clock as it is */
    g_wall_ms = 100;
    assert_int_equal(replica_read(r, &f->reqs[1], REPLICA_READ_STALE, 0), REPLICA_OK);
    assert_int_equal(f->reqs[1].read_ms, 100);
    assert_int_equal(replica__stamp(r), 5200);
    g_wall_ms = 1000;
}

static void test_read_index_fails_not_forwards_when_leadership_is_lost(void **state)
{
    fixture *f = *state;
    replica *r = f->r;
    leader_at(r, 3, 10, 10, true);
    assert_int_equal(replica_read_index(r, &f->reqs[0]), REPLICA_OK);
    next_barrier_starts(r);
    replica__barrier_done(&r->barrier, RAFT_LEADERSHIPLOST);
    r->raft->state = RAFT_FOLLOWER;
    replica__serve_queued_reads(r);
    replica__drain_completions(r);
    assert_int_equal(f->done_calls[0], 1);
    assert_int_equal(f->done_status[0], REPLICA_ERR_NOT_LEADER);
    assert_int_equal(r->forwards.n, 0);
    /* and a follower refuses one at once */
    assert_int_equal(replica_read_index(r, &f->reqs[1]), REPLICA_ERR_NOT_LEADER);
}

int main(void)
{
    alarm(20); /* a miscompiled splice loops forever: fail instead */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_leadership_lost_requeues_oldest_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_leadership_lost_with_nothing_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leadership_lost_many_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_completes_the_batch_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_all_into_nonempty_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_read_index_is_the_arrival_commit_settled_at_the_last_appended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_index_of_a_new_leader_covers_what_it_inherited,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_index_across_a_term_change_takes_the_later_index,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_index_fails_not_forwards_when_leadership_is_lost,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_stamps_never_go_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_voter_read_with_writes_in_flight, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
