/* alloc: allocation that never returns NULL.
 *
 * Like Redis' zmalloc, running out of memory aborts the process with a
 * message: every caller would otherwise have to invent a recovery path that
 * is never exercised. Memory budgets (--maxmemory) are enforced above this
 * layer, before allocating. Any thread may call these. */
#ifndef CAIRN_UTIL_ALLOC_H
#define CAIRN_UTIL_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
void *xmemdup(const void *p, size_t n);

#endif
