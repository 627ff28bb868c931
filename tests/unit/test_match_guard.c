/* match_guard: a follower's success answer, sent while libraft receives an
 * AppendEntries or InstallSnapshot, claims no entry past what that message
 * checked (libraft 0.15 claims its whole stored log; see match_guard.h).
 * The scenario that lost an acknowledged write is replayed by the
 * simulator (ctest sim_regression_seeds); this drives the guard alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "replica/match_guard.h"

static struct raft_message sent;
static int sends;

static int capture_send(struct raft_io *io, struct raft_io_send *req,
                        const struct raft_message *msg, raft_io_send_cb cb)
{
    (void)io;
    (void)req;
    (void)cb;
    sent = *msg;
    sends++;
    return 0;
}

static struct raft_message heartbeat(raft_id from, raft_index prev, unsigned n)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.server_id = from;
    m.append_entries.term = 71;
    m.append_entries.prev_log_index = prev;
    m.append_entries.n_entries = n;
    return m;
}

static raft_index answer(struct raft_io *io, raft_id to, raft_index rejected, raft_index last)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
    m.server_id = to;
    m.append_entries_result.term = 71;
    m.append_entries_result.rejected = rejected;
    m.append_entries_result.last_log_index = last;
    struct raft_io_send req;
    assert_int_equal(io->send(io, &req, &m, NULL), 0);
    return sent.append_entries_result.last_log_index;
}

/* An io whose send records the message, with the guard installed on it. */
static void guard_on_capturing_io(match_guard *g, struct raft_io *io)
{
    memset(io, 0, sizeof(*io));
    io->send = capture_send;
    match_guard_install(g, io);
}

static void test_heartbeat_answer_claims_only_the_checked_entries(void **state)
{
    (void)state;
    struct raft_io io;
    match_guard g;
    guard_on_capturing_io(&g, &io);

    /* the follower holds 12656..12658 of an old term; the new leader
     * checked 12655 */
    struct raft_message hb = heartbeat(1, 12655, 0);
    match_guard_begin(&g, &hb, NULL);
    assert_int_equal(answer(&io, 1, 0, 12658), 12655);
    match_guard_end(&g);
    assert_int_equal(g.lowered_total, 1);

    /* entries that came with the message count */
    struct raft_message ae = heartbeat(1, 12655, 2);
    match_guard_begin(&g, &ae, NULL);
    assert_int_equal(answer(&io, 1, 0, 12658), 12657);
    assert_int_equal(answer(&io, 1, 0, 12656), 12656); /* lower: unchanged */
    match_guard_end(&g);

    /* a rejection, another destination, or an answer sent outside the
     * receive (after an append completed) pass unchanged */
    match_guard_begin(&g, &hb, NULL);
    assert_int_equal(answer(&io, 1, 12655, 12658), 12658);
    assert_int_equal(answer(&io, 2, 0, 12658), 12658);
    match_guard_end(&g);
    assert_int_equal(answer(&io, 1, 0, 12658), 12658);
    assert_int_equal(g.lowered_total, 2);
    assert_int_equal(sends, 6);

    match_guard_remove(&g);
    assert_ptr_equal(io.send, capture_send);
}

static void test_install_snapshot_answer_claims_at_most_its_index(void **state)
{
    (void)state;
    struct raft_io io;
    match_guard g;
    guard_on_capturing_io(&g, &io);
    struct raft_message is;
    memset(&is, 0, sizeof(is));
    is.type = RAFT_IO_INSTALL_SNAPSHOT;
    is.server_id = 3;
    is.install_snapshot.last_index = 500;
    match_guard_begin(&g, &is, NULL);
    assert_int_equal(answer(&io, 3, 0, 530), 500);
    match_guard_end(&g);
    /* other messages check nothing */
    struct raft_message vote;
    memset(&vote, 0, sizeof(vote));
    vote.type = RAFT_IO_REQUEST_VOTE;
    vote.server_id = 3;
    match_guard_begin(&g, &vote, NULL);
    assert_int_equal(answer(&io, 3, 0, 530), 530);
    match_guard_end(&g);
    match_guard_remove(&g);
}

static raft_index answer_rejected(struct raft_io *io, raft_id to, raft_index rejected,
                                  raft_index last, raft_index *rejected_out)
{
    answer(io, to, rejected, last);
    *rejected_out = sent.append_entries_result.rejected;
    return sent.append_entries_result.last_log_index;
}

static void test_rejection_of_an_index_inside_the_snapshot_becomes_success(void **state)
{
    (void)state;
    struct raft_io io;
    match_guard g;
    guard_on_capturing_io(&g, &io);
    /* the follower's snapshot ends at 2488; its log keeps 2473..2489 */
    struct raft r;
    memset(&r, 0, sizeof(r));
    r.log.offset = 2472;
    r.log.snapshot.last_index = 2488;
    raft_index rejected;

    /* libraft finds no term at 2470 (compacted) and rejects: the leader
     * would walk down forever; the snapshot matches, say so */
    struct raft_message hb = heartbeat(1, 2470, 0);
    match_guard_begin(&g, &hb, &r);
    assert_int_equal(answer_rejected(&io, 1, 2470, 2489, &rejected), 2488);
    assert_int_equal(rejected, 0);
    match_guard_end(&g);
    assert_int_equal(g.unrejected_total, 1);

    /* an index still in the log: a real mismatch, unchanged */
    hb = heartbeat(1, 2480, 0);
    match_guard_begin(&g, &hb, &r);
    assert_int_equal(answer_rejected(&io, 1, 2480, 2489, &rejected), 2489);
    assert_int_equal(rejected, 2480);
    match_guard_end(&g);

    /* a rejection in a higher term (a stale leader must step down):
     * unchanged */
    hb = heartbeat(1, 2470, 0);
    match_guard_begin(&g, &hb, &r);
    struct raft_message stale;
    memset(&stale, 0, sizeof(stale));
    stale.type = RAFT_IO_APPEND_ENTRIES_RESULT;
    stale.server_id = 1;
    stale.append_entries_result.term = 72;
    stale.append_entries_result.rejected = 2470;
    stale.append_entries_result.last_log_index = 2489;
    struct raft_io_send req;
    assert_int_equal(io.send(&io, &req, &stale, NULL), 0);
    assert_int_equal(sent.append_entries_result.rejected, 2470);
    assert_int_equal(sent.append_entries_result.last_log_index, 2489);
    match_guard_end(&g);

    /* another node, or without the instance: unchanged */
    hb = heartbeat(1, 2470, 0);
    match_guard_begin(&g, &hb, &r);
    assert_int_equal(answer_rejected(&io, 2, 2470, 2489, &rejected), 2489);
    assert_int_equal(rejected, 2470);
    match_guard_end(&g);
    match_guard_begin(&g, &hb, NULL);
    assert_int_equal(answer_rejected(&io, 1, 2470, 2489, &rejected), 2489);
    assert_int_equal(rejected, 2470);
    match_guard_end(&g);
    assert_int_equal(g.unrejected_total, 1);
    match_guard_remove(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heartbeat_answer_claims_only_the_checked_entries),
        cmocka_unit_test(test_install_snapshot_answer_claims_at_most_its_index),
        cmocka_unit_test(test_rejection_of_an_index_inside_the_snapshot_becomes_success),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
