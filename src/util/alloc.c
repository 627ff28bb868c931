#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static void alloc__oom(size_t size)
{
    fprintf(stderr, "level=error msg=\"out of memory\" bytes=%zu\n", size);
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) alloc__oom(size);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) alloc__oom(n * size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p) alloc__oom(size);
    return p;
}

char *xstrdup(const char *s)
{
    return xmemdup(s, strlen(s) + 1);
}

void *xmemdup(const void *src, size_t n)
{
    void *p = xmalloc(n);
    if (n) memcpy(p, src, n);
    return p;
}

void alloc_prefault(void *p, size_t n)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~(page - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_POPULATE_WRITE);
}

void alloc_heap_prefault_step(alloc_heap_prefault *h)
{
    /* sbrk(0) only reads glibc's cached break: no system call. The range
     * between the old and the new break is malloc's free top chunk, whose
     * contents nobody relies on; populating it changes no byte. */
    uintptr_t brk = (uintptr_t)sbrk(0);
    if (brk == (uintptr_t)-1) return;
    if (h->done == 0 || h->done > brk) {
        h->done = brk; /* first call, or the heap shrank: start from here */
        return;
    }
    if (brk > h->done) {
        alloc_prefault((void *)h->done, brk - h->done);
        h->done = brk;
    }
}
