/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Ephemeral-port exhaustion forecast (an engine part). Linux picks a connect()'s local port so
 * that the 4-tuple is unique: the ports of one (source address, destination address, destination
 * port) run out when that many connections, TIME_WAIT included, use it, whatever the other
 * destinations do. Per such tuple (and network namespace) this counts the ports in use from the
 * state changes it is fed (+1 at CLOSE->SYN_SENT, -1 at the move to CLOSE, or 60 s later when
 * the close left a TIME_WAIT socket, the kernel's fixed TCP_TIMEWAIT_LEN; 2 s where
 * net.ipv4.tcp_tw_reuse lets connect() take over a TIME_WAIT port a second after its last
 * segment: always with 1, towards loopback addresses with 2, the kernel's default), and the
 * connect rate.
 * A socket-table walk replaces the counts with exact ones (portfc_resync_*).
 *
 * Once a second: usage = used / capacity (the namespace's ip_local_port_range), growth = net
 * ports taken per second over the last 10 s, time to exhaustion = free / growth. Raise one
 * port-exhaustion-risk alert (start) when usage >= usage_ratio or exhaustion is predicted within
 * horizon_ns; end it after quiet_ns under both. Growth rather than the bare connect rate: a
 * client whose connections end without TIME_WAIT recycles ports as fast as it takes them.
 *
 * Bounded: max_tuples destinations (the least used is evicted, counted); namespaces whose port
 * range is unknown use the default range. No clock: time is what it is fed.
 */
#ifndef SP_PORTFC_H
#define SP_PORTFC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define PORTFC_HIST	 10 /* seconds of connect and usage history */
#define PORTFC_TW_S	 64 /* seconds of TIME_WAIT entries kept (TCP_TIMEWAIT_LEN is 60 s) */
#define PORTFC_NETNS_MAX 256

struct portfc_config {
	double usage_ratio;		 /* --port-risk-usage (0.8) */
	uint64_t horizon_ns;		 /* --port-risk-horizon (60 s); 0: usage only */
	uint64_t quiet_ns;		 /* under both thresholds this long ends an alert (10 s) */
	uint32_t max_tuples;		 /* destinations tracked (4096) */
	uint16_t default_lo, default_hi; /* range of namespaces not looked up (32768-60999) */
	uint8_t default_tw_reuse;	 /* their tcp_tw_reuse (2) */
	bool off;
};

/* One destination, as the metrics and the dashboard see it. */
struct portfc_tuple {
	uint32_t netns;
	struct sp_addr src, dst;
	uint16_t dport;
	uint32_t used, time_wait, capacity;
	double connect_rate, growth_rate;
	uint64_t eta_ms; /* UINT64_MAX: no exhaustion predicted */
	bool alert;
};

struct portfc_stats {
	uint64_t tuples;  /* tracked now */
	uint64_t evicted; /* tuples dropped to make room */
	uint64_t alerts;  /* port-exhaustion-risk start lines */
	uint64_t active;  /* alerts open now */
	uint64_t resyncs;
};

/* What a namespace's sysctls say about its local ports. */
struct portfc_ns {
	uint16_t lo, hi;  /* net.ipv4.ip_local_port_range */
	uint8_t tw_reuse; /* net.ipv4.tcp_tw_reuse: 0, 1, 2 (loopback only) */
};

typedef void (*portfc_emit_fn)(void *ctx, const struct sp_event *ev);
/* Looks up a namespace's settings; 0, or -errno to use the defaults. */
typedef int (*portfc_range_fn)(void *ctx, uint32_t netns, struct portfc_ns *out);

struct portfc;

void portfc_config_default(struct portfc_config *cfg);
struct portfc *portfc_new(const struct portfc_config *cfg, portfc_emit_fn emit, void *ctx);
void portfc_free(struct portfc *p);
/* Asked once per namespace, the first time a connection of it is seen (optional). */
void portfc_set_range_fn(struct portfc *p, portfc_range_fn fn, void *ctx);
/* A namespace's settings, known from elsewhere (a socket-table walk). */
void portfc_set_ns(struct portfc *p, uint32_t netns, const struct portfc_ns *ns);
void portfc_feed(struct portfc *p, const struct sp_event *ev);
/* Once-a-second verdicts up to now_ns. */
void portfc_advance(struct portfc *p, uint64_t now_ns);

/*
 * Exact counts from a socket-table walk of namespace @netns: begin, then one add per outgoing
 * socket (time_wait: a timewait socket that goes away in tw_left_ms). Tuples of that namespace
 * not seen in the walk drop to zero.
 */
void portfc_resync_begin(struct portfc *p, uint32_t netns, uint64_t now_ns);
void portfc_resync_add(struct portfc *p, uint32_t netns, const struct sp_addr *src,
		       const struct sp_addr *dst, uint16_t dport, bool time_wait,
		       uint64_t tw_left_ms);

const struct portfc_stats *portfc_stats(const struct portfc *p);
/* The n destinations closest to exhaustion (by usage), most first; returns how many. */
size_t portfc_top(const struct portfc *p, struct portfc_tuple *out, size_t n);
size_t portfc_bytes(const struct portfc *p);

/* Pure arithmetic, for the tests: seconds until @free ports are gone at @growth per second. */
uint64_t portfc_eta_ms(uint32_t free, double growth);

#endif
