/* transport_mux on loopback: two muxes in one loop, each with ports for
 * groups 0 and 7, connect to each other as libraft would; connections for
 * a group the other side does not run, malformed or slow preambles are
 * refused; a dial to a closed port fails, one in flight when its port
 * closes is canceled; group 0's preamble is libraft 0.15's own. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "replica/transport_mux.h"

typedef struct side side;

typedef struct accepted {
    raft_id id;
    char address[64];
    uv_stream_t *stream;
    char got[64];
    size_t ngot;
    bool eof;
} accepted;

struct side {
    transport_mux *mux;
    struct raft_uv_transport t0, t7;
    char address[64];
    accepted acc[4];
    int nacc;
    int closed;
};

static uv_loop_t loop;

static side *side_of(struct raft_uv_transport *t)
{
    return t->data;
}

static void on_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                      uv_stream_t *stream)
{
    side *s = side_of(t);
    assert_true(s->nacc < 4);
    accepted *a = &s->acc[s->nacc++];
    a->id = id;
    snprintf(a->address, sizeof a->address, "%s", address);
    a->stream = stream;
    stream->data = a;
}

static void on_closed(struct raft_uv_transport *t)
{
    side_of(t)->closed++;
}

typedef struct dial {
    struct raft_uv_connect req;
    int status;
    bool done;
    uv_stream_t *stream;
    bool eof;
} dial;

static void on_connect(struct raft_uv_connect *req, uv_stream_t *stream, int status)
{
    dial *d = req->data;
    d->done = true;
    d->status = status;
    d->stream = stream;
}

static void run_until(bool (*done)(void *), void *arg, int max_ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)max_ms * 1000000;
    while (!done(arg) && uv_hrtime() < end) uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
}

static bool dial_done(void *arg)
{
    return ((dial *)arg)->done;
}

static bool side_accepted(void *arg)
{
    return ((side *)arg)->nacc > 0;
}

static void side_open(side *s)
{
    char err[128];
    assert_int_equal(transport_mux_create(&s->mux, &loop, "127.0.0.1:0", err, sizeof err), 0);
    assert_int_equal(transport_mux_port_init(&s->t0, s->mux, 0), 0);
    assert_int_equal(transport_mux_port_init(&s->t7, s->mux, 7), 0);
    s->t0.data = s->t7.data = s;
    assert_int_equal(s->t0.init(&s->t0, 11, "a-node:1"), 0);
    assert_int_equal(s->t7.init(&s->t7, 11, "a-node:1"), 0);
    assert_int_equal(s->t0.listen(&s->t0, on_accept), 0);
    assert_int_equal(s->t7.listen(&s->t7, on_accept), 0);
    snprintf(s->address, sizeof s->address, "127.0.0.1:%d", transport_mux_bound_port(s->mux));
}

static void free_stream(uv_handle_t *h)
{
    free(h);
}

static bool side_closed(void *arg)
{
    return ((side *)arg)->closed == 2;
}

static void side_close(side *s)
{
    s->t0.close(&s->t0, on_closed);
    s->t7.close(&s->t7, on_closed);
    run_until(side_closed, s, 2000);
    assert_int_equal(s->closed, 2);
    transport_mux_port_close(&s->t0);
    transport_mux_port_close(&s->t7);
    for (int i = 0; i < s->nacc; i++) uv_close((uv_handle_t *)s->acc[i].stream, free_stream);
    transport_mux_release(s->mux);
}

static void acc_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)n;
    accepted *a = h->data;
    *b = uv_buf_init(a->got + a->ngot, (unsigned)(sizeof a->got - a->ngot));
}

static void acc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    accepted *a = s->data;
    if (n < 0)
        a->eof = true;
    else
        a->ngot += (size_t)n;
}

static bool got5(void *arg)
{
    return ((accepted *)arg)->ngot >= 5;
}

static void write_done(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

/* A dial from a's group g reaches b's group g; bytes written right after
 * the preamble arrive whole (the listener read no byte past it). */
static void dial_and_talk(side *a, side *b, struct raft_uv_transport *t, raft_id want_group)
{
    (void)want_group;
    dial d = {0};
    d.req.data = &d;
    int before = b->nacc;
    assert_int_equal(t->connect(t, &d.req, 22, b->address, on_connect), 0);
    run_until(dial_done, &d, 2000);
    assert_true(d.done);
    assert_int_equal(d.status, 0);
    uv_write_t *w = malloc(sizeof(*w));
    uv_buf_t buf = uv_buf_init("hello", 5);
    assert_int_equal(uv_write(w, d.stream, &buf, 1, write_done), 0);
    for (int i = 0; i < 2000 && b->nacc == before; i++) uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
    assert_int_equal(b->nacc, before + 1);
    accepted *acc = &b->acc[before];
    assert_int_equal(acc->id, 11);
    assert_string_equal(acc->address, "a-node:1");
    assert_int_equal(uv_read_start(acc->stream, acc_alloc, acc_read), 0);
    run_until(got5, acc, 2000);
    assert_int_equal(acc->ngot, 5);
    assert_memory_equal(acc->got, "hello", 5);
    uv_close((uv_handle_t *)d.stream, free_stream);
    (void)a;
}

static void test_groups_meet(void **state)
{
    (void)state;
    side a = {0}, b = {0};
    side_open(&a);
    side_open(&b);
    dial_and_talk(&a, &b, &a.t7, 7);
    /* each accepted connection went to its own group's accept callback */
    dial_and_talk(&a, &b, &a.t0, 0);
    transport_mux_stats st = transport_mux_get_stats(b.mux);
    assert_int_equal(st.accepted, 2);
    assert_int_equal(st.refused, 0);
    assert_int_equal(transport_mux_get_stats(a.mux).dialed, 2);
    side_close(&a);
    side_close(&b);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_group0_is_libraft_handshake(void **state)
{
    (void)state;
    char p[128];
    size_t n = transport_mux_preamble(0, 5, "10.0.0.1:7000", p, sizeof p);
    /* libraft 0.15: protocol 1, id, padded address size, the address */
    assert_int_equal(n, 24 + 16);
    unsigned char want[40] = {1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0};
    memcpy(want + 24, "10.0.0.1:7000", 13);
    assert_memory_equal(p, want, 40);
    n = transport_mux_preamble(3, 5, "10.0.0.1:7000", p, sizeof p);
    assert_int_equal(n, 32 + 16);
    assert_int_equal((unsigned char)p[8], 3);
    assert_int_equal(transport_mux_preamble(3, 5, "x", p, 16), 0); /* does not fit */
}

static int raw_connect(const char *address)
{
    int port = atoi(strrchr(address, ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

typedef struct refusal_wait {
    transport_mux *m;
    uint64_t want;
} refusal_wait;

static bool refused_enough(void *arg)
{
    refusal_wait *w = arg;
    return transport_mux_get_stats(w->m).refused >= w->want;
}

/* After a refusal the listener closed the socket: read sees EOF (or a reset). */
static void assert_closed_by_peer(int fd)
{
    char c;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_true(read(fd, &c, 1) <= 0);
}

static void test_refusals(void **state)
{
    (void)state;
    side b = {0};
    side_open(&b);
    transport_mux_set_timeouts(b.mux, 3000, 200);
    char p[128];
    /* a group this process does not run */
    size_t n = transport_mux_preamble(9, 4, "x:1", p, sizeof p);
    int fd1 = raw_connect(b.address);
    assert_int_equal(write(fd1, p, n), (ssize_t)n);
    /* garbage */
    int fd2 = raw_connect(b.address);
    assert_int_equal(write(fd2, "GET / HTTP/1.1\r\n\r\n", 18), 18);
    /* an address length past the bound */
    n = transport_mux_preamble(7, 4, "x:1", p, sizeof p);
    p[24] = 0;
    p[25] = 0x40; /* 16 KiB */
    int fd3 = raw_connect(b.address);
    assert_int_equal(write(fd3, p, 32), 32);
    /* too slow: half a preamble, then nothing */
    n = transport_mux_preamble(7, 4, "x:1", p, sizeof p);
    int fd4 = raw_connect(b.address);
    assert_int_equal(write(fd4, p, 10), 10);
    refusal_wait w = {b.mux, 4};
    run_until(refused_enough, &w, 3000);
    assert_int_equal(transport_mux_get_stats(b.mux).refused, 4);
    assert_int_equal(transport_mux_get_stats(b.mux).accepted, 0);
    assert_int_equal(b.nacc, 0);
    assert_closed_by_peer(fd1);
    assert_closed_by_peer(fd2);
    assert_closed_by_peer(fd3);
    assert_closed_by_peer(fd4);
    close(fd1);
    close(fd2);
    close(fd3);
    close(fd4);
    /* a well-formed one still gets through afterwards */
    int fd5 = raw_connect(b.address);
    assert_int_equal(write(fd5, p, n), (ssize_t)n);
    run_until(side_accepted, &b, 2000);
    assert_int_equal(b.nacc, 1);
    assert_int_equal(b.acc[0].id, 4);
    assert_string_equal(b.acc[0].address, "x:1");
    close(fd5);
    side_close(&b);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void test_dial_failures(void **state)
{
    (void)state;
    side a = {0};
    side_open(&a);
    /* a port nobody listens on: take one, then free it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%d", ntohs(sa.sin_port));
    close(fd);
    dial d = {0};
    d.req.data = &d;
    assert_int_equal(a.t7.connect(&a.t7, &d.req, 2, address, on_connect), 0);
    run_until(dial_done, &d, 3000);
    assert_true(d.done);
    assert_int_equal(d.status, RAFT_NOCONNECTION);
    assert_null(d.stream);
    /* not host:port */
    dial bad = {0};
    bad.req.data = &bad;
    assert_int_equal(a.t7.connect(&a.t7, &bad.req, 2, "nonsense", on_connect), RAFT_INVALID);
    /* a name being resolved when the group's transport closes: canceled,
     * and the close callback only after the dial's callback */
    dial c = {0};
    c.req.data = &c;
    assert_int_equal(a.t0.connect(&a.t0, &c.req, 2, "localhost:1", on_connect), 0);
    a.t0.close(&a.t0, on_closed);
    assert_false(c.done);
    a.t7.close(&a.t7, on_closed);
    run_until(side_closed, &a, 3000);
    assert_true(c.done);
    assert_int_equal(c.status, RAFT_CANCELED);
    assert_int_equal(a.closed, 2);
    transport_mux_port_close(&a.t0);
    transport_mux_port_close(&a.t7);
    transport_mux_release(a.mux);
    uv_run(&loop, UV_RUN_NOWAIT);
}

int main(void)
{
    uv_loop_init(&loop);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group0_is_libraft_handshake),
        cmocka_unit_test(test_groups_meet),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_dial_failures),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (int i = 0; i < 50; i++) uv_run(&loop, UV_RUN_NOWAIT);
    int busy = uv_loop_close(&loop);
    if (busy != 0) {
        fprintf(stderr, "handles left open on the loop\n");
        return 1;
    }
    return rc;
}
