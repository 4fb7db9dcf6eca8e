/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The normalized event every part of the agent speaks: the decoder makes them from ring records,
 * the engine makes them from other events, the replay reader makes them from JSON lines, and the
 * sinks format them. Plain C, no libbpf.
 */
#ifndef SP_EVENT_H
#define SP_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_COMM_MAX 16

/* event.action values; names in event_action_name(). */
enum sp_action {
	SP_ACT_STATE_CHANGE = 0,
	SP_ACT_ACTIVITY,
	SP_ACT_CONNECT,
	SP_ACT_KEEPALIVE_TIMEOUT,
	SP_ACT_RETRANS_TIMEOUT,
	SP_ACT_RESET,
	SP_ACT_LEASE_SUSPECT,
	SP_ACT_LEASE_EXPIRED,
	SP_ACT_LEASE_RECOVERED,
	SP_ACT_LEASE_CLOSED,
	SP_ACT_LEASE_LOST,
	SP_ACT_SPIKE,
	SP_ACT_EVENTS_LOST,
	SP_ACT_LEASE_HOLD, /* stall guard: lease verdicts held after an agent stall or a loss */
	SP_ACT_TCP_STUCK,  /* a socket sat in CLOSE_WAIT or FIN_WAIT2 past --stuck-after */
	SP_ACT_PORT_RISK,  /* ephemeral ports to one destination are running out */
	SP_ACT_MAX,
};

/* TCP states, same numbering as the kernel (include/net/tcp_states.h). 0 is unused. */
enum sp_tcp_state {
	SP_ST_UNKNOWN = 0,
	SP_ST_ESTABLISHED = 1,
	SP_ST_SYN_SENT,
	SP_ST_SYN_RECV,
	SP_ST_FIN_WAIT1,
	SP_ST_FIN_WAIT2,
	SP_ST_TIME_WAIT,
	SP_ST_CLOSE,
	SP_ST_CLOSE_WAIT,
	SP_ST_LAST_ACK,
	SP_ST_LISTEN,
	SP_ST_CLOSING,
	SP_ST_NEW_SYN_RECV,
	SP_ST_MAX,
};

enum sp_lease_kind {
	SP_LEASE_TRANSPORT = 0,
	SP_LEASE_PAYLOAD,
	SP_LEASE_KIND_MAX,
};

struct sp_addr {
	uint16_t family; /* AF_INET, AF_INET6, or 0 when absent */
	uint8_t bytes[16]; /* network order; IPv4 in the first four bytes */
};

/* Where a line's owner (process.*) was learnt. */
enum sp_owner_source {
	SP_OWNER_NONE = 0,   /* no owner known */
	SP_OWNER_TASK,	     /* seen in the owner's own task: connect, listen, accept, close... */
	SP_OWNER_LISTENER,   /* the listener's owner, for a child no accept() named yet */
	SP_OWNER_TABLE,	     /* the socket-table walk: the process holding the socket's inode */
	SP_OWNER_SOURCE_MAX,
};

/* Connection facts (docs/EVENTS.md): source is the side that opened the connection. */
struct sp_conn {
	struct sp_addr src;
	struct sp_addr dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t direction; /* enum sp_direction from include/sockpulse.h */
	bool has_ports;
	bool has_pid;
	uint8_t owner_source; /* enum sp_owner_source, when has_pid */
	uint32_t pid;
	char comm[SP_COMM_MAX]; /* NUL-terminated; empty when unknown */
	uint64_t cookie; /* 0 when unknown */
	uint64_t cgroup_id; /* cgroup v2 id of the socket's creator (accepted: its listener's) */
	uint32_t netns; /* 0 when unknown */
};

/* lease-lost event.reason of a connection two socket-table walks no longer found (lease.h) */
#define SP_LEASE_REASON_UNOBSERVED "unobserved"

struct sp_event {
	enum sp_action action;
	uint64_t mono_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	uint64_t real_ns; /* CLOCK_REALTIME, for @timestamp */
	bool has_conn;
	struct sp_conn conn;

	bool has_duration;
	uint64_t duration_ns;
	int error; /* positive errno, 0 when none */

	union {
		struct {
			uint8_t old_state, new_state;
			bool time_wait;
			/* inbound activity not yet reported, carried by the line leaving
			 * ESTABLISHED; 0 segments: none */
			uint32_t segments;
			uint64_t payload_bytes;
		} state;
		struct {
			uint32_t segments;
			uint64_t payload_bytes;
		} activity;
		struct {
			bool success;
			uint8_t failure; /* enum sp_failure */
		} connect;
		struct {
			uint32_t probes;
		} keepalive;
		struct {
			uint8_t direction; /* enum sp_reset_dir */
			bool has_old_state;
			uint8_t old_state;
		} reset;
		struct {
			uint8_t kind; /* enum sp_lease_kind */
			bool untrusted; /* replay: the log lacks the renewals this verdict needs */
			uint64_t silent_ms;
			uint64_t ttl_ms;
			const char *reason; /* lease-lost: "reset", "keepalive-timeout", ... */
		} lease;
		struct {
			bool start; /* event.type start or end */
			bool host_wide; /* no destination */
			uint64_t failures;
			uint32_t window_s;
			double baseline_per_s;
			uint8_t failure; /* enum sp_failure: the most frequent class */
			uint32_t destinations; /* host-wide: destinations in an incident */
		} spike;
		struct {
			uint64_t count;
			const char *kind; /* record kind name */
		} lost;
		struct {
			bool start;	 /* event.type start, or end: the socket left the state */
			bool seeded;	 /* found in the socket table: age is a lower bound */
			uint8_t state;	 /* SP_ST_CLOSE_WAIT or SP_ST_FIN_WAIT2 */
			int8_t trend;	 /* the owner's stuck count: 1 growing, 0 steady, -1 less */
			uint64_t age_ms; /* in that state so far */
			uint64_t after_ms;   /* the threshold (--stuck-after) */
			uint32_t proc_stuck; /* stuck sockets the owner holds now */
		} stuck;
		struct {
			bool start;    /* event.type start, or end: back under the thresholds */
			bool forecast; /* raised by the forecast rather than the usage */
			uint16_t range_lo, range_hi; /* ip_local_port_range of the namespace */
			uint32_t used; /* ports in use to this destination, TIME_WAIT included */
			uint32_t time_wait;
			uint32_t capacity;
			double connect_rate; /* connects/s to this destination (last 10 s) */
			double growth_rate;  /* net ports/s taken (last 10 s) */
			uint64_t eta_ms;     /* predicted exhaustion, UINT64_MAX when none */
		} ports;
		struct {
			const char *reason; /* "agent-stall" or "events-lost" */
			uint64_t grace_ms;  /* how long verdicts are held */
			uint64_t stall_ms;  /* agent-stall: how late the loop ran */
			uint64_t lost;	    /* events-lost: records lost */
		} hold;
	};
};

#endif /* SP_EVENT_H */
