#include "obs/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

enum { METRIC_COUNTER, METRIC_GAUGE_FN, METRIC_COUNTER_FN, METRIC_HISTOGRAM };

static const double metrics__bounds[METRICS_LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

typedef struct metric {
    char *name;
    char *help;
    char *labels;
    int kind;
    metrics_counter counter;
    metrics_histogram hist;
    metrics_gauge_fn fn;
    void *ctx;
    struct metric *next;
} metric;

/* Registration order is kept so that all series of one name render
 * together under one HELP/TYPE header. */
static metric *metrics__head, *metrics__tail;

static metric *metrics__find(const char *name, const char *labels)
{
    for (metric *m = metrics__head; m; m = m->next)
        if (strcmp(m->name, name) == 0 && strcmp(m->labels, labels) == 0) return m;
    return NULL;
}

static metric *metrics__add(const char *name, const char *help, const char *labels, int kind)
{
    metric *m = metrics__find(name, labels);
    if (m) return m;
    m = xcalloc(1, sizeof(*m));
    m->name = xstrdup(name);
    m->help = xstrdup(help);
    m->labels = xstrdup(labels ? labels : "");
    m->kind = kind;
    /* insert after the last series of the same name */
    metric *after = NULL;
    for (metric *x = metrics__head; x; x = x->next)
        if (strcmp(x->name, name) == 0) after = x;
    if (after) {
        m->next = after->next;
        after->next = m;
        if (metrics__tail == after) metrics__tail = m;
    } else {
        if (metrics__tail)
            metrics__tail->next = m;
        else
            metrics__head = m;
        metrics__tail = m;
    }
    return m;
}

metrics_counter *metrics_counter_get(const char *name, const char *help, const char *labels)
{
    return &metrics__add(name, help, labels, METRIC_COUNTER)->counter;
}

metrics_histogram *metrics_histogram_get(const char *name, const char *help, const char *labels)
{
    return &metrics__add(name, help, labels, METRIC_HISTOGRAM)->hist;
}

void metrics_gauge_register(const char *name, const char *help, const char *labels,
                            metrics_gauge_fn fn, void *ctx)
{
    metric *m = metrics__add(name, help, labels, METRIC_GAUGE_FN);
    m->fn = fn;
    m->ctx = ctx;
}

void metrics_counter_fn_register(const char *name, const char *help, const char *labels,
                                 metrics_gauge_fn fn, void *ctx)
{
    metric *m = metrics__add(name, help, labels, METRIC_COUNTER_FN);
    m->fn = fn;
    m->ctx = ctx;
}

void metrics_histogram_observe(metrics_histogram *h, double seconds)
{
    int i = 0;
    while (i < METRICS_LATENCY_BUCKETS && seconds > metrics__bounds[i]) i++;
    h->counts[i]++;
    h->sum += seconds;
    h->count++;
}

static void metrics__series(buf *out, const char *name, const char *suffix, const char *labels,
                            const char *extra, double v)
{
    buf_append_str(out, name);
    buf_append_str(out, suffix);
    if (labels[0] || extra) {
        buf_append_char(out, '{');
        buf_append_str(out, labels);
        if (extra) {
            if (labels[0]) buf_append_char(out, ',');
            buf_append_str(out, extra);
        }
        buf_append_char(out, '}');
    }
    buf_printf(out, " %.17g\n", v);
}

void metrics_render(buf *out)
{
    const char *last = NULL;
    static const char *types[] = {"counter", "gauge", "counter", "histogram"};
    for (metric *m = metrics__head; m; m = m->next) {
        if (!last || strcmp(last, m->name) != 0) {
            buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
                       types[m->kind]);
            last = m->name;
        }
        switch (m->kind) {
        case METRIC_COUNTER:
            metrics__series(out, m->name, "", m->labels, NULL, m->counter.value);
            break;
        case METRIC_GAUGE_FN:
        case METRIC_COUNTER_FN:
            metrics__series(out, m->name, "", m->labels, NULL, m->fn(m->ctx));
            break;
        case METRIC_HISTOGRAM: {
            uint64_t cum = 0;
            char le[48];
            for (int i = 0; i <= METRICS_LATENCY_BUCKETS; i++) {
                cum += m->hist.counts[i];
                if (i < METRICS_LATENCY_BUCKETS)
                    snprintf(le, sizeof(le), "le=\"%g\"", metrics__bounds[i]);
                else
                    snprintf(le, sizeof(le), "le=\"+Inf\"");
                metrics__series(out, m->name, "_bucket", m->labels, le, (double)cum);
            }
            metrics__series(out, m->name, "_sum", m->labels, NULL, m->hist.sum);
            metrics__series(out, m->name, "_count", m->labels, NULL, (double)m->hist.count);
            break;
        }
        }
    }
}

void metrics_reset(void)
{
    metric *m = metrics__head;
    while (m) {
        metric *next = m->next;
        free(m->name);
        free(m->help);
        free(m->labels);
        free(m);
        m = next;
    }
    metrics__head = metrics__tail = NULL;
}
