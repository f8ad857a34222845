/*
 * core/metrics.c — the registry.  Families and series are created under one
 * mutex and never removed while the process runs; readers walk the
 * append-only lists without locks, and updates are atomic.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN  128
#define LABEL_MAX_LEN 128

static const double hist_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define N_BUCKETS (sizeof hist_bounds / sizeof hist_bounds[0])

struct bb_series {
    struct bb_series *next;
    char   values[BB_METRIC_MAX_LABELS][LABEL_MAX_LEN];
    _Atomic uint64_t bits;                 /* counter/gauge double, or histogram sum */
    _Atomic uint64_t count;                /* histogram */
    _Atomic uint64_t buckets[N_BUCKETS];   /* histogram, non-cumulative */
};

struct bb_metric {
    struct bb_metric *next;
    bb_metric_type type;
    char name[NAME_MAX_LEN];
    char help[256];
    char labels[BB_METRIC_MAX_LABELS][64];
    int  n_labels;
    _Atomic(struct bb_series *) series;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct bb_metric *) g_families;

static double bits_to_d(uint64_t b) { double d; memcpy(&d, &b, sizeof d); return d; }
static uint64_t d_to_bits(double d) { uint64_t b; memcpy(&b, &d, sizeof b); return b; }

static void atomic_add_double(_Atomic uint64_t *slot, double v)
{
    uint64_t old = atomic_load_explicit(slot, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(slot, &old, d_to_bits(bits_to_d(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {}
}

bb_metric *bb_metric_family(bb_metric_type type, const char *name, const char *help,
                            const char *const *label_names)
{
    bb_metric *m;
    pthread_mutex_lock(&g_lock);
    for (m = atomic_load(&g_families); m; m = m->next)
        if (strcmp(m->name + 9, name) == 0) break;   /* skip "botboard_" */
    if (!m && (m = calloc(1, sizeof *m)) != NULL) {
        m->type = type;
        snprintf(m->name, sizeof m->name, "botboard_%s", name);
        snprintf(m->help, sizeof m->help, "%s", help ? help : "");
        for (int i = 0; label_names && label_names[i] && i < BB_METRIC_MAX_LABELS; i++) {
            snprintf(m->labels[i], sizeof m->labels[i], "%s", label_names[i]);
            m->n_labels = i + 1;
        }
        m->next = atomic_load(&g_families);
        atomic_store_explicit(&g_families, m, memory_order_release);
    }
    pthread_mutex_unlock(&g_lock);
    return m;
}

static bool series_matches(const bb_series *s, const bb_metric *m, const char *const *vals)
{
    for (int i = 0; i < m->n_labels; i++) {
        const char *v = vals && vals[i] ? vals[i] : "";
        if (strncmp(s->values[i], v, LABEL_MAX_LEN - 1) != 0) return false;
    }
    return true;
}

bb_series *bb_metric_series(bb_metric *m, const char *const *label_values)
{
    bb_series *s;
    if (!m) return NULL;
    for (s = atomic_load_explicit(&m->series, memory_order_acquire); s; s = s->next)
        if (series_matches(s, m, label_values)) return s;
    pthread_mutex_lock(&g_lock);
    for (s = atomic_load(&m->series); s; s = s->next)
        if (series_matches(s, m, label_values)) break;
    if (!s && (s = calloc(1, sizeof *s)) != NULL) {
        for (int i = 0; i < m->n_labels; i++)
            snprintf(s->values[i], LABEL_MAX_LEN, "%s", label_values && label_values[i] ? label_values[i] : "");
        s->next = atomic_load(&m->series);
        atomic_store_explicit(&m->series, s, memory_order_release);
    }
    pthread_mutex_unlock(&g_lock);
    return s;
}

void bb_series_add(bb_series *s, double v) { if (s) atomic_add_double(&s->bits, v); }
void bb_series_set(bb_series *s, double v) { if (s) atomic_store_explicit(&s->bits, d_to_bits(v), memory_order_relaxed); }
double bb_series_value(const bb_series *s) { return s ? bits_to_d(atomic_load((_Atomic uint64_t *)&s->bits)) : 0; }

void bb_series_observe(bb_series *s, double v)
{
    size_t i = 0;
    if (!s) return;
    while (i < N_BUCKETS && v > hist_bounds[i]) i++;
    if (i < N_BUCKETS) atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    atomic_add_double(&s->bits, v);
}

void bb_metric_inc(bb_metric *m, const char *const *label_values)
{
    bb_series_add(bb_metric_series(m, label_values), 1);
}

/* ---- rendering --------------------------------------------------------------- */

typedef struct sbuf { char *p; size_t len, cap; bool oom; } sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (b->oom) return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) { b->oom = true; return; }
        if ((size_t)n < b->cap - b->len) { b->len += (size_t)n; return; }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
}

static void label_escape(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *in && o + 3 < outlen; in++) {
        if (*in == '\\' || *in == '"') out[o++] = '\\';
        if (*in == '\n') { out[o++] = '\\'; out[o++] = 'n'; continue; }
        out[o++] = *in;
    }
    out[o] = '\0';
}

/* {a="x",b="y"[,le="..."]} */
static void render_labels(sbuf *b, const bb_metric *m, const bb_series *s, const char *le)
{
    char esc[LABEL_MAX_LEN * 2];
    if (m->n_labels == 0 && !le) return;
    sb_printf(b, "{");
    for (int i = 0; i < m->n_labels; i++) {
        label_escape(s->values[i], esc, sizeof esc);
        sb_printf(b, "%s%s=\"%s\"", i ? "," : "", m->labels[i], esc);
    }
    if (le) sb_printf(b, "%sle=\"%s\"", m->n_labels ? "," : "", le);
    sb_printf(b, "}");
}

char *bb_metrics_render(size_t *len)
{
    static const char *const type_names[] = { "counter", "gauge", "histogram" };
    sbuf b = { malloc(16384), 0, 16384, false };
    if (!b.p) return NULL;
    b.p[0] = '\0';
    for (bb_metric *m = atomic_load_explicit(&g_families, memory_order_acquire); m; m = m->next) {
        sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, type_names[m->type]);
        for (bb_series *s = atomic_load_explicit(&m->series, memory_order_acquire); s; s = s->next) {
            if (m->type != BB_METRIC_HISTOGRAM) {
                sb_printf(&b, "%s", m->name);
                render_labels(&b, m, s, NULL);
                sb_printf(&b, " %.17g\n", bits_to_d(atomic_load(&s->bits)));
                continue;
            }
            uint64_t cum = 0;
            for (size_t i = 0; i < N_BUCKETS; i++) {
                char le[32];
                cum += atomic_load(&s->buckets[i]);
                snprintf(le, sizeof le, "%g", hist_bounds[i]);
                sb_printf(&b, "%s_bucket", m->name);
                render_labels(&b, m, s, le);
                sb_printf(&b, " %llu\n", (unsigned long long)cum);
            }
            sb_printf(&b, "%s_bucket", m->name);
            render_labels(&b, m, s, "+Inf");
            sb_printf(&b, " %llu\n%s_sum", (unsigned long long)atomic_load(&s->count), m->name);
            render_labels(&b, m, s, NULL);
            sb_printf(&b, " %.17g\n%s_count", bits_to_d(atomic_load(&s->bits)), m->name);
            render_labels(&b, m, s, NULL);
            sb_printf(&b, " %llu\n", (unsigned long long)atomic_load(&s->count));
        }
    }
    if (b.oom) { free(b.p); return NULL; }
    if (len) *len = b.len;
    return b.p;
}

void bb_metrics_reset(void)
{
    pthread_mutex_lock(&g_lock);
    bb_metric *m = atomic_exchange(&g_families, NULL);
    while (m) {
        bb_metric *next = m->next;
        bb_series *s = atomic_load(&m->series);
        while (s) { bb_series *sn = s->next; free(s); s = sn; }
        free(m);
        m = next;
    }
    pthread_mutex_unlock(&g_lock);
}
