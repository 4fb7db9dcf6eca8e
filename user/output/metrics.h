/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's metrics: counters and gauges kept from the event stream (every event, the kernel's
 * and the engine's, goes through metrics_on_event), gauges set from sock_diag snapshots, and the
 * Prometheus text exposition (format 0.0.4). Pure logic: no I/O, no clock; unit-tested.
 *
 * Lease gauges are the lease table's own counts (by kind and state, and by owner for the service
 * label), copied in before each render: one set of rules decides what a lease is. Spike gauges
 * follow connect-failure-spike start/end lines. Label values are bounded: at most top_n
 * destinations carry their own label, the rest are summed under "other".
 */
#ifndef SP_METRICS_H
#define SP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "event.h"
#include "lease.h"
#include "portfc.h"
#include "sockpulse.h"
#include "stuck.h"
#include "svctab.h"

#define METRICS_TOP_N		10	   /* destination labels per metric, besides "other" */
#define METRICS_DEST_LABEL_MAX	56	   /* "[ffff:...:ffff]:65535" */
#define METRICS_SPIKES_MAX	256	   /* destinations tracked for the spike gauge */
#define METRICS_CONNECT_BUCKETS 18
#define METRICS_DEFAULT_PORT	9477
#define METRICS_KA_BUCKETS	10   /* keepalive detection histogram, seconds */
#define METRICS_KA_PORTS_MAX	1024 /* service ports counted apart during an audit */

/* Kinds of sockpulse_events_total: ring record kinds, then the engine's and the agent's. */
enum metrics_kind {
	MK_STATE = 0,
	MK_CONNECT,
	MK_KEEPALIVE_TIMEOUT,
	MK_RETRANSMIT_TIMEOUT,
	MK_RESET,
	MK_ACTIVITY,
	MK_LEASE,
	MK_SPIKE,
	MK_EVENTS_LOST,
	MK_STUCK,
	MK_PORT_RISK,
	MK_OTHER, /* an action this table does not know yet */
	MK_MAX,
};

struct metrics_dest {
	char label[METRICS_DEST_LABEL_MAX];
	uint64_t value;
};

struct metrics_hist {
	uint64_t buckets[METRICS_CONNECT_BUCKETS]; /* non-cumulative; +Inf is count */
	uint64_t count;
	uint64_t sum_ns;
};

struct metrics_spike {
	char label[METRICS_DEST_LABEL_MAX];
	uint32_t netns;
	bool used;
	bool active;
	uint16_t svc;	     /* the service whose connects failed last to it */
	uint64_t changed_ns; /* event time of the last start/end */
};

/* The last service whose connect to a destination failed (a small direct-mapped cache). */
#define METRICS_FAIL_DESTS 64
struct metrics_fail_dest {
	struct sp_addr dst;
	uint32_t netns;
	uint16_t port;
	uint16_t svc;
};

/*
 * The service a socket belongs to: its name and length (0: not known). cgroup_id 0 and comm ""
 * when unknown.
 */
typedef size_t (*metrics_service_fn)(void *ctx, uint64_t cgroup_id, const char *comm,
				     const char **name);

/* Stuck sockets held by one process name (the rollup merged by name: labels carry no pid). */
struct metrics_stuck {
	char process[SP_COMM_MAX];
	uint64_t sockets[STUCK_STATES];
};

/* One destination of the port forecast. */
struct metrics_ports {
	char source[METRICS_DEST_LABEL_MAX];
	char destination[METRICS_DEST_LABEL_MAX];
	uint64_t used, time_wait, capacity;
	double eta_s; /* < 0: no exhaustion predicted */
	bool alert;
};

/* Keepalive detection times of one service port's established connections. */
struct metrics_ka {
	uint16_t port;			      /* 0: "other" */
	uint64_t buckets[METRICS_KA_BUCKETS]; /* non-cumulative, finite times only */
	uint64_t count;			      /* connections with keepalive */
	double sum_s;
	uint64_t without; /* connections without keepalive: never detected */
	uint64_t worst_ms;
};

/* The agent's own numbers, copied in by the service before each render. */
struct metrics_self {
	uint64_t log_lines_written, log_lines_dropped, log_write_errors, log_rotations;
	uint64_t log_reopens, log_bytes_written;
	bool log_enabled;
	uint64_t http_requests[3]; /* 200, 404, other */
	uint64_t diag_dumps, diag_errors;
	double diag_last_duration_s;
	uint64_t decode_errors, loop_stalls;
	uint64_t start_time_s; /* wall clock, seconds since the epoch */
};

struct metrics {
	/* build info */
	char version[32];
	char libbpf_version[16];
	char connect_hook[16];

	uint64_t transitions[SP_ST_MAX][SP_ST_MAX];
	uint64_t connects[2]; /* success, failure */
	uint64_t failures[SP_FAIL_MAX];
	struct metrics_hist connect_duration[2];
	uint64_t keepalive_timeouts;
	uint64_t retransmit_timeouts;
	uint64_t resets[SP_RST_MAX];
	uint64_t events[MK_MAX];
	uint64_t lost[SP_REC_TYPE_MAX];
	uint64_t lease_expirations[SP_LEASE_KIND_MAX];
	uint64_t lease_unobserved; /* connections whose end only a socket-table walk told */
	uint64_t spikes_total;

	/* lease gauges (metrics_set_leases) */
	uint64_t lease_gauge[SP_LEASE_KIND_MAX][LEASE_STATE_MAX];
	uint64_t lease_overflows; /* the lease table's evictions */

	/* spike gauges */
	struct metrics_spike spikes[METRICS_SPIKES_MAX];
	uint64_t spikes_untracked_active;

	/* sock_diag gauges */
	bool have_diag;
	uint64_t conn_states[SP_ST_MAX];
	uint64_t time_wait;
	struct metrics_dest tw_top[METRICS_TOP_N];
	unsigned int n_tw_top;
	uint64_t tw_other;

	/* stuck half-closed sockets (counters from tcp-stuck lines, gauges from the engine) */
	uint64_t stuck_alerts[STUCK_STATES];
	bool have_stuck;
	struct metrics_stuck stuck_top[METRICS_TOP_N];
	unsigned int n_stuck_top;
	uint64_t stuck_other[STUCK_STATES];

	/* ephemeral-port forecast */
	uint64_t port_risk_alerts;
	bool have_ports;
	struct metrics_ports ports_top[METRICS_TOP_N];
	unsigned int n_ports_top;

	/* keepalive audit: per service port, the top ones by connections, then "other" */
	bool have_audit;
	struct metrics_ka ka[METRICS_TOP_N + 1];
	unsigned int n_ka;
	struct metrics_ka *ka_work; /* METRICS_KA_PORTS_MAX + 1 entries while an audit runs */
	unsigned int n_ka_work;

	/* per service (the service label): see svctab.h */
	struct svc_tab svc;
	unsigned int services_top; /* services with a label of their own */
	metrics_service_fn service_of; /* NULL: the command name */
	void *service_ctx;
	struct metrics_fail_dest fail_dest[METRICS_FAIL_DESTS];

	struct metrics_self self;
};

int metrics_init(struct metrics *m, const char *version, const char *libbpf_version,
		 const char *connect_hook);
void metrics_free(struct metrics *m);
void metrics_on_event(struct metrics *m, const struct sp_event *ev);
/* Sets the lease gauges, host-wide and by service, from the lease table's counts. */
void metrics_set_leases(struct metrics *m, const struct lease_table *t);
/* Sets the sock_diag gauges; @top: the top destinations by TIME_WAIT sockets, @other the rest. */
void metrics_set_diag(struct metrics *m, const uint64_t states[SP_ST_MAX], uint64_t time_wait,
		      const struct metrics_dest *top, unsigned int n_top, uint64_t other);

/* Gauges of stuck sockets from the engine's rollup (@procs most first, merged by name). */
void metrics_set_stuck(struct metrics *m, const struct stuck_proc *procs, size_t n);
/* Gauges of the destinations closest to port exhaustion. */
void metrics_set_ports(struct metrics *m, const struct portfc_tuple *top, size_t n);
/* A keepalive audit: begin, one add per established connection (KA_NEVER: no keepalive), end. */
int metrics_ka_begin(struct metrics *m);
void metrics_ka_add(struct metrics *m, uint16_t service_port, uint64_t detect_ms);
void metrics_ka_end(struct metrics *m);

/*
 * Renders the exposition into *buf (malloc'ed, grown as needed; the caller frees it).
 * Returns the length, or -ENOMEM.
 */
long metrics_render(const struct metrics *m, char **buf);

/* "ip:port" / "[ip6]:port" label for an address, "host" for family 0. */
size_t metrics_dest_label(char *buf, size_t cap, const struct sp_addr *addr, uint16_t port);

/*
 * --metrics value: "off", "PORT", "IPV4:PORT" or "[IPV6]:PORT" (port 0: any free port).
 * A bare PORT listens on 127.0.0.1. 0 or -EINVAL; *off set for "off".
 */
int metrics_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, bool *off);

#endif
