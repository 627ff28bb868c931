/* storage_failstop: every append result passes through it to libraft's
 * callback, in order; a failed one (not a cancellation) stops the node
 * first. The real stop exits the process (tests/integration/
 * test_disk_eio.py); here it is replaced by a recorder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "replica/storage_failstop.h"

/* A fake io: appends wait until the test completes them. */
static raft_io_append_cb pending_cb[8];
static struct raft_io_append *pending_req[8];
static int n_pending, refuse_next;

static int fake_append(struct raft_io *io, struct raft_io_append *req,
                       const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    (void)io;
    (void)entries;
    (void)n;
    if (refuse_next) {
        refuse_next = 0;
        return RAFT_NOMEM;
    }
    pending_req[n_pending] = req;
    pending_cb[n_pending++] = cb;
    return 0;
}

static void complete(int i, int status)
{
    pending_cb[i](pending_req[i], status);
}

static int stops, stop_status;
static int record_stop(storage_failstop *f, int status)
{
    (void)f;
    stops++;
    stop_status = status;
    return status;
}

static int delivered[8], delivered_status[8], n_delivered;
static void libraft_cb(struct raft_io_append *req, int status)
{
    delivered[n_delivered] = (int)(intptr_t)req->data;
    delivered_status[n_delivered++] = status;
}

static void test_results_pass_in_order_and_a_failure_stops_first(void **state)
{
    (void)state;
    struct raft_io io;
    memset(&io, 0, sizeof(io));
    io.append = fake_append;
    storage_failstop f;
    storage_failstop_install(&f, &io, "/nonexistent");
    f.stop = record_stop;
    struct raft_io_append reqs[4];
    struct raft_entry e = {.term = 1};
    for (int i = 0; i < 4; i++) {
        reqs[i].data = (void *)(intptr_t)i;
        assert_int_equal(io.append(&io, &reqs[i], &e, 1, libraft_cb), 0);
    }
    refuse_next = 1; /* refused at once: libraft learns it from the result */
    struct raft_io_append refused = {.data = (void *)(intptr_t)9};
    assert_int_equal(io.append(&io, &refused, &e, 1, libraft_cb), RAFT_NOMEM);

    complete(0, 0);
    complete(1, RAFT_CANCELED); /* shutdown: passes, no stop */
    assert_int_equal(stops, 0);
    complete(2, RAFT_IOERR);
    assert_int_equal(stops, 1);
    assert_int_equal(stop_status, RAFT_IOERR);
    complete(3, 0);
    assert_int_equal(n_delivered, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(delivered[i], i);
    assert_int_equal(delivered_status[2], RAFT_IOERR);

    storage_failstop_remove(&f);
    assert_ptr_equal(io.append, fake_append);
}

static void test_open_segment_is_the_newest(void **state)
{
    (void)state;
    char dir[] = "/tmp/failstop-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], out[512];
    const char *names[] = {"open-2", "open-10", "0000000000000001-0000000000000004", "metadata1"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fclose(fp);
    }
    storage_failstop_open_segment(dir, out, sizeof(out));
    snprintf(path, sizeof(path), "%s/open-10", dir);
    assert_string_equal(out, path);
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_pass_in_order_and_a_failure_stops_first),
        cmocka_unit_test(test_open_segment_is_the_newest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
