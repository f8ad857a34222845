/*
 * core/metrics.h — Prometheus metrics: families with up to three labels,
 * series found lock-free after first use, rendered in the text format.
 * The same functions back the plugins' bb_host_api metric members.
 */
#ifndef BB_CORE_METRICS_H
#define BB_CORE_METRICS_H

#include <stddef.h>

#include <botboard/host.h>

bb_metric *bb_metric_family(bb_metric_type type, const char *name, const char *help,
                            const char *const *label_names);
bb_series *bb_metric_series(bb_metric *m, const char *const *label_values);
void bb_series_add(bb_series *s, double v);
void bb_series_set(bb_series *s, double v);
void bb_series_observe(bb_series *s, double v);
double bb_series_value(const bb_series *s);       /* counter/gauge value (tests) */

/* Convenience for one-off updates: family + series lookup. */
void bb_metric_inc(bb_metric *m, const char *const *label_values);

/* The whole registry in Prometheus text format 0.0.4; malloc'd. */
char *bb_metrics_render(size_t *len);

/* Drop every family (at exit, for valgrind). */
void bb_metrics_reset(void);

#endif
