#include "replica/lazyfree.h"

#include <pthread.h>
#include <raft.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/alloc.h"

/* ~1 ms of frees per loop iteration at the ~1 us a cold free costs */
#define LAZYFREE_BATCH 1024

static pthread_t lazyfree__loop_thread;
static bool lazyfree__installed;
static void **lazyfree__queue;
static size_t lazyfree__len, lazyfree__cap, lazyfree__head;
static uv_idle_t lazyfree__idle;

/* libraft's large allocations are buffers it fills at once: a snapshot or
 * a closed segment read whole from disk at startup. Faulting them in with
 * one call saved ~0.4 s of the ~2.4 s restart with 1M keys (156 MB
 * snapshot); see alloc_prefault. */
#define LF_PREFAULT_MIN ((size_t)1 << 20)

static void *lf_malloc(void *d, size_t n)
{
    (void)d;
    void *p = malloc(n);
    if (p && n >= LF_PREFAULT_MIN) alloc_prefault(p, n);
    return p;
}

static void *lf_calloc(void *d, size_t n, size_t size)
{
    (void)d;
    return calloc(n, size);
}

static void *lf_realloc(void *d, void *p, size_t n)
{
    (void)d;
    return realloc(p, n);
}

static void *lf_aligned_alloc(void *d, size_t alignment, size_t size)
{
    (void)d;
    void *p = NULL;
    return posix_memalign(&p, alignment, size) == 0 ? p : NULL;
}

static void lf_aligned_free(void *d, size_t alignment, void *p)
{
    (void)d;
    (void)alignment;
    free(p);
}

static void lazyfree__drain(uv_idle_t *h)
{
    size_t n = 0;
    while (lazyfree__head < lazyfree__len && n++ < LAZYFREE_BATCH)
        free(lazyfree__queue[lazyfree__head++]);
    if (lazyfree__head == lazyfree__len) {
        lazyfree__head = lazyfree__len = 0;
        uv_idle_stop(h);
    }
}

static void lf_free(void *d, void *p)
{
    (void)d;
    if (!p) return;
    if (!pthread_equal(pthread_self(), lazyfree__loop_thread)) {
        free(p);
        return;
    }
    if (lazyfree__len == lazyfree__cap) {
        /* reuse the consumed front before growing */
        if (lazyfree__head > 0) {
            size_t live = lazyfree__len - lazyfree__head;
            for (size_t i = 0; i < live; i++)
                lazyfree__queue[i] = lazyfree__queue[lazyfree__head + i];
            lazyfree__len = live;
            lazyfree__head = 0;
        }
        if (lazyfree__len == lazyfree__cap) {
            lazyfree__cap = lazyfree__cap ? lazyfree__cap * 2 : 4096;
            lazyfree__queue = xrealloc(lazyfree__queue, lazyfree__cap * sizeof(void *));
        }
    }
    if (lazyfree__len - lazyfree__head == 0) uv_idle_start(&lazyfree__idle, lazyfree__drain);
    lazyfree__queue[lazyfree__len++] = p;
}

static struct raft_heap lazyfree__heap = {
    .malloc = lf_malloc,
    .free = lf_free,
    .calloc = lf_calloc,
    .realloc = lf_realloc,
    .aligned_alloc = lf_aligned_alloc,
    .aligned_free = lf_aligned_free,
};

void lazyfree_install(uv_loop_t *loop)
{
    if (lazyfree__installed) return;
    lazyfree__loop_thread = pthread_self();
    uv_idle_init(loop, &lazyfree__idle);
    uv_unref((uv_handle_t *)&lazyfree__idle); /* never keeps the loop alive */
    raft_heap_set(&lazyfree__heap);
    lazyfree__installed = true;
}

void lazyfree_flush(void)
{
    while (lazyfree__head < lazyfree__len) free(lazyfree__queue[lazyfree__head++]);
    lazyfree__head = lazyfree__len = 0;
    if (lazyfree__installed) {
        raft_heap_set_default();
        lazyfree__installed = false;
    }
    free(lazyfree__queue);
    lazyfree__queue = NULL;
    lazyfree__cap = 0;
}

size_t lazyfree_pending(void)
{
    return lazyfree__len - lazyfree__head;
}
