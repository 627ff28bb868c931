/* lazyfree: a mutex-protected list and a condition variable; the thread
 * takes the whole list at once and frees it outside the lock. */
#include "kv/lazyfree.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/alloc.h"

typedef struct lf_job {
    struct lf_job *next;
    kv_lazyfree_fn fn;
    void *obj;
} lf_job;

static pthread_mutex_t lf_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lf_work = PTHREAD_COND_INITIALIZER, lf_idle = PTHREAD_COND_INITIALIZER;
static lf_job *lf_head;
static uint64_t lf_pending, lf_done;
static pthread_once_t lf_once = PTHREAD_ONCE_INIT;

static void *lf__main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lf_mu);
    for (;;) {
        while (!lf_head) pthread_cond_wait(&lf_work, &lf_mu);
        lf_job *j = lf_head;
        lf_head = NULL;
        pthread_mutex_unlock(&lf_mu);
        uint64_t n = 0;
        while (j) {
            lf_job *next = j->next;
            j->fn(j->obj);
            free(j);
            j = next;
            n++;
        }
        pthread_mutex_lock(&lf_mu);
        lf_pending -= n;
        lf_done += n;
        if (lf_pending == 0) pthread_cond_broadcast(&lf_idle);
    }
    return NULL;
}

static void lf__start(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, lf__main, NULL) != 0) abort(); /* no thread, no progress */
    pthread_attr_destroy(&attr);
}

void kv_lazyfree(kv_lazyfree_fn fn, void *obj)
{
    pthread_once(&lf_once, lf__start);
    lf_job *j = xmalloc(sizeof(*j));
    j->fn = fn;
    j->obj = obj;
    pthread_mutex_lock(&lf_mu);
    j->next = lf_head;
    lf_head = j;
    lf_pending++;
    pthread_cond_signal(&lf_work);
    pthread_mutex_unlock(&lf_mu);
}

uint64_t kv_lazyfree_pending(void)
{
    pthread_mutex_lock(&lf_mu);
    uint64_t n = lf_pending;
    pthread_mutex_unlock(&lf_mu);
    return n;
}

uint64_t kv_lazyfree_done(void)
{
    pthread_mutex_lock(&lf_mu);
    uint64_t n = lf_done;
    pthread_mutex_unlock(&lf_mu);
    return n;
}

void kv_lazyfree_drain(void)
{
    pthread_mutex_lock(&lf_mu);
    while (lf_pending) pthread_cond_wait(&lf_idle, &lf_mu);
    pthread_mutex_unlock(&lf_mu);
}
