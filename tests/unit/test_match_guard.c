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
    match_guard_begin(&g, &hb);
    assert_int_equal(answer(&io, 1, 0, 12658), 12655);
    match_guard_end(&g);
    assert_int_equal(g.lowered_total, 1);

    /* entries that came with the message count */
    struct raft_message ae = heartbeat(1, 12655, 2);
    match_guard_begin(&g, &ae);
    assert_int_equal(answer(&io, 1, 0, 12658), 12657);
    assert_int_equal(answer(&io, 1, 0, 12656), 12656); /* lower: unchanged */
    match_guard_end(&g);

    /* a rejection, another destination, or an answer sent outside the
     * receive (after an append completed) pass unchanged */
    match_guard_begin(&g, &hb);
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
    match_guard_begin(&g, &is);
    assert_int_equal(answer(&io, 3, 0, 530), 500);
    match_guard_end(&g);
    /* other messages check nothing */
    struct raft_message vote;
    memset(&vote, 0, sizeof(vote));
    vote.type = RAFT_IO_REQUEST_VOTE;
    vote.server_id = 3;
    match_guard_begin(&g, &vote);
    assert_int_equal(answer(&io, 3, 0, 530), 530);
    match_guard_end(&g);
    match_guard_remove(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heartbeat_answer_claims_only_the_checked_entries),
        cmocka_unit_test(test_install_snapshot_answer_claims_at_most_its_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
