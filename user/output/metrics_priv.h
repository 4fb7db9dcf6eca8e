/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What the metrics' state (metrics.c) and their exposition (metrics_expo.c) share. */
#ifndef SP_METRICS_PRIV_H
#define SP_METRICS_PRIV_H

#include <stdint.h>

#include "metrics.h"
#include "util.h"

#define MSEC_PER_SEC (NSEC_PER_SEC / NSEC_PER_MSEC)

/* Histogram bucket bounds: connect latency (ns), keepalive detection (s). */
extern const uint64_t metrics_connect_bucket_ns[METRICS_CONNECT_BUCKETS];
extern const double metrics_ka_bucket_s[METRICS_KA_BUCKETS];

#endif
