/* metrics: a small Prometheus registry (text format 0.0.4).
 *
 * Counters and histograms are created once (find-or-create by name and
 * label set) and then updated through the returned pointer, so the hot
 * path is an increment, never a lookup. Gauges are read by callbacks at
 * scrape time, so the values they show are never stale copies. Loop
 * thread only. */
#ifndef CAIRN_OBS_METRICS_H
#define CAIRN_OBS_METRICS_H

#include <stdint.h>

#include "util/buf.h"

typedef struct metrics_counter {
    double value;
} metrics_counter;

#define METRICS_LATENCY_BUCKETS 14
typedef struct metrics_histogram {
    uint64_t counts[METRICS_LATENCY_BUCKETS + 1]; /* last = +Inf */
    double sum;
    uint64_t count;
} metrics_histogram;

typedef double (*metrics_gauge_fn)(void *ctx);

/* `labels` is the inside of the braces, e.g. `route="key",code="200"`, or
 * "" for none. The strings are copied. */
metrics_counter *metrics_counter_get(const char *name, const char *help, const char *labels);
metrics_histogram *metrics_histogram_get(const char *name, const char *help, const char *labels);
void metrics_gauge_register(const char *name, const char *help, const char *labels,
                            metrics_gauge_fn fn, void *ctx);
/* A counter whose value is read by a callback (for counts kept elsewhere). */
void metrics_counter_fn_register(const char *name, const char *help, const char *labels,
                                 metrics_gauge_fn fn, void *ctx);

static inline void metrics_counter_add(metrics_counter *c, double v)
{
    c->value += v;
}
void metrics_histogram_observe(metrics_histogram *h, double seconds);

void metrics_render(buf *out);
void metrics_reset(void); /* free everything (shutdown, tests) */

#endif
