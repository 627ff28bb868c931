/* The install-snapshot handoff (issue 23, part 1): a leader's
 * InstallSnapshot that arrives while libraft is busy with a snapshot of its
 * own is held and handed to libraft once it is not, instead of being
 * ignored until the leader's retry. Driven with a bare struct raft whose
 * snapshot state the test sets, and a receive callback that records what
 * libraft would have been given. Leaks of held buffers show under ASan and
 * Valgrind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "replica/snapshot_handoff.h"

static struct raft_message got[8];
static int n_got;

static void record_recv(struct raft_io *io, struct raft_message *msg)
{
    (void)io;
    assert_true(n_got < 8);
    got[n_got++] = *msg;
    /* libraft owns the buffers of a delivered install */
    if (msg->type == RAFT_IO_INSTALL_SNAPSHOT) {
        raft_free(msg->install_snapshot.data.base);
        raft_configuration_close(&msg->install_snapshot.conf);
    }
}

typedef struct {
    struct raft raft;
    struct raft_io io;
    snapshot_handoff h;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snapshot_handoff_init(&f->h, &f->raft, &f->io);
    snapshot_handoff_started(&f->h, record_recv);
    n_got = 0;
    memset(got, 0, sizeof(got));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    snapshot_handoff_close(&f->h);
    free(f);
    return 0;
}

/* An InstallSnapshot as the transport hands it over: heap data and conf,
 * the sender's address in a buffer that goes away with the connection. */
static struct raft_message install(uint64_t index, char *addr_buf)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_INSTALL_SNAPSHOT;
    m.server_id = 3;
    strcpy(addr_buf, "127.0.0.1:7083");
    m.server_address = addr_buf;
    m.install_snapshot.term = 2;
    m.install_snapshot.last_index = index;
    m.install_snapshot.data.len = 64;
    m.install_snapshot.data.base = raft_malloc(64);
    memset(m.install_snapshot.data.base, (int)index, 64);
    raft_configuration_init(&m.install_snapshot.conf);
    assert_int_equal(
        raft_configuration_add(&m.install_snapshot.conf, 3, "127.0.0.1:7083", RAFT_VOTER), 0);
    return m;
}

static void test_passes_through_when_idle(void **state)
{
    fixture *f = *state;
    char addr[64];
    struct raft_message m = install(600, addr);
    snapshot_handoff_recv(&f->h, &m);
    assert_int_equal(n_got, 1);
    assert_int_equal(got[0].install_snapshot.last_index, 600);
    assert_int_equal(f->h.held_total, 0);
}

static void test_held_while_own_snapshot_pending_then_delivered(void **state)
{
    fixture *f = *state;
    char addr[64];
    f->raft.snapshot.pending.term = 2; /* our own snapshot is being taken */
    assert_true(snapshot_handoff_busy(&f->raft));
    struct raft_message m = install(600, addr);
    void *data = m.install_snapshot.data.base;
    snapshot_handoff_recv(&f->h, &m);
    assert_int_equal(n_got, 0);
    assert_int_equal(f->h.held_total, 1);
    memset(addr, 0, sizeof(addr)); /* the connection's buffer is gone */
    snapshot_handoff_poll(&f->h);  /* still busy: still held */
    assert_int_equal(n_got, 0);

    f->raft.snapshot.pending.term = 0;
    snapshot_handoff_poll(&f->h);
    assert_int_equal(n_got, 1);
    assert_int_equal(got[0].type, RAFT_IO_INSTALL_SNAPSHOT);
    assert_int_equal(got[0].server_id, 3);
    assert_string_equal(got[0].server_address, "127.0.0.1:7083");
    assert_ptr_equal(got[0].install_snapshot.data.base, data);
    assert_int_equal(got[0].install_snapshot.last_index, 600);
    assert_int_equal(f->h.delivered_total, 1);
    snapshot_handoff_poll(&f->h); /* once only */
    assert_int_equal(n_got, 1);
}

static void test_held_while_installing_and_newest_wins(void **state)
{
    fixture *f = *state;
    char a1[64], a2[64];
    f->raft.snapshot.put.data = f; /* an install is being written */
    struct raft_message m1 = install(600, a1), m2 = install(800, a2);
    snapshot_handoff_recv(&f->h, &m1);
    snapshot_handoff_recv(&f->h, &m2); /* the leader's retry: the older is freed */
    assert_int_equal(f->h.held_total, 2);
    assert_int_equal(f->h.replaced_total, 1);
    f->raft.snapshot.put.data = NULL;
    snapshot_handoff_poll(&f->h);
    assert_int_equal(n_got, 1);
    assert_int_equal(got[0].install_snapshot.last_index, 800);
}

static void test_other_messages_never_held(void **state)
{
    fixture *f = *state;
    f->raft.snapshot.pending.term = 2;
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.server_id = 3;
    m.server_address = "127.0.0.1:7083";
    snapshot_handoff_recv(&f->h, &m);
    m.type = RAFT_IO_REQUEST_VOTE;
    snapshot_handoff_recv(&f->h, &m);
    assert_int_equal(n_got, 2);
    assert_int_equal(f->h.held_total, 0);
}

static void test_close_frees_a_held_message(void **state)
{
    fixture *f = *state;
    char addr[64];
    f->raft.snapshot.pending.term = 2;
    struct raft_message m = install(600, addr);
    snapshot_handoff_recv(&f->h, &m);
    assert_true(f->h.held);
    snapshot_handoff_close(&f->h); /* teardown closes again: harmless */
    assert_false(f->h.held);
    assert_int_equal(n_got, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_passes_through_when_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_while_own_snapshot_pending_then_delivered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_held_while_installing_and_newest_wins, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_other_messages_never_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_frees_a_held_message, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
