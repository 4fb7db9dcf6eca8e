/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the files of `sockpulse top` share: the dashboard's state (struct top: the tables fed by
 * events, the snapshot the screen is drawn from, the view and its selection) and the functions
 * one file calls in another. Private to user/cmd/top*.c.
 */
#ifndef SP_TOP_INT_H
#define SP_TOP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "audit.h"
#include "cli.h"
#include "engine.h"
#include "event.h"
#include "runtime.h"
#include "sockdiag.h"
#include "topfmt.h"

#define NIL	    UINT32_MAX
#define SPARK_SECS  60
#define CONNS_MAX   (1u << 16) /* connections followed for the details view */
#define PEERS_MAX   4096
#define RECENT_MAX  256 /* recent-events ring */
#define SPIKES_MAX  64
#define DETAILS_MAX 512

enum view {
	VIEW_TABLE = 0,
	VIEW_DETAILS,
	VIEW_HELP,
};

enum pane {
	PANE_TABLE = 0,
	PANE_SPIKES,
	PANE_EVENTS,
	PANE_MAX,
};

enum color {
	C_NONE = 0,
	C_TITLE,
	C_GOOD,
	C_WARN,
	C_BAD,
	C_DIM,
	C_SEL,
	C_MAX,
};

struct conn {
	uint64_t cookie;
	uint32_t hnext;	 /* hash chain, or free list */
	uint32_t peer;	 /* index in peers, or NIL */
	struct sp_addr local;
	uint16_t lport;
	uint8_t state;
	bool used, has_diag;
	uint8_t diag_timer, diag_retrans;
	uint32_t diag_expires_ms;
	uint32_t diag_gen;
	bool has_ka; /* the last socket-table walk's keepalive audit */
	struct ka_settings ka;
	uint32_t netns;
	uint32_t pid;
	char comm[SP_COMM_MAX];
	uint64_t first_ns, last_act_ns;
};

struct peer {
	struct sp_addr addr;
	uint32_t netns;
	uint16_t port;
	bool used;
	uint32_t hnext;
	uint32_t live;	   /* connections of ours linked to it */
	uint64_t last_seen_ns; /* inbound activity or establishment */
	uint64_t touched_ns;
	uint64_t sec;	   /* the second fail/att[sec % SPARK_SECS] counts */
	uint32_t fail[SPARK_SECS], att[SPARK_SECS];
	uint32_t pid;
	char comm[SP_COMM_MAX];
	uint64_t cgroup_id; /* the owner's: its service */
	int64_t min_left_ns; /* refresh scratch */
	bool has_left;
};

/* Per-second counts over the last minute. */
struct secring {
	uint64_t sec;
	uint32_t fail[SPARK_SECS], att[SPARK_SECS];
};

struct spike_row {
	bool host_wide;
	struct sp_addr addr;
	uint32_t netns;
	uint16_t port;
	uint64_t start_real_ns;
	uint64_t failures;
	uint32_t window_s, destinations;
	double baseline;
};

struct detail_row {
	struct conn c;
	bool has_lease;
	struct lease_info li;
};

/* What the screen shows: rebuilt each refresh, frozen while paused. */
struct snapshot {
	uint64_t mono_ns, real_ns;
	double events_per_s;
	uint64_t lost;
	uint64_t states[SP_ST_MAX];
	bool states_exact; /* from sock_diag */
	uint32_t spark_fail[SPARK_SECS];
	uint32_t fails_min, atts_min;
	struct tf_row *rows;
	size_t n_rows;
	struct spike_row spikes[SPIKES_MAX];
	size_t n_spikes;
	bool host_spike;
	struct sp_event recent[RECENT_MAX];
	size_t n_recent; /* newest first */
	struct detail_row *details;
	size_t n_details;
	uint32_t leases_live;
	uint64_t stuck;		     /* sockets stuck in CLOSE_WAIT/FIN_WAIT2 now */
	struct stuck_proc stuck_top; /* the process holding most of them */
	bool has_stuck_top;
	struct portfc_tuple ports; /* the destination closest to port exhaustion */
	bool has_ports;
};

struct top {
	const struct config *cfg;
	struct runtime rt;
	bool unicode, color, curses_on;
	uint64_t refresh_ns;
	char host[64];
	const char *hook;

	/* tables fed by events */
	struct conn *conns;
	uint32_t *conn_hash;
	uint32_t conn_free, conn_hwm, n_conns;
	uint64_t conns_dropped;
	struct peer *peers;
	uint32_t *peer_hash;
	uint32_t n_peers;
	uint64_t peers_dropped;
	struct secring global;
	struct sp_event recent[RECENT_MAX];
	uint32_t recent_head, n_recent;
	struct spike_row spikes[SPIKES_MAX];
	size_t n_spikes;

	/* sock_diag */
	struct sockdiag diag;
	bool diag_on;
	uint32_t diag_gen;
	uint64_t diag_states[SP_ST_MAX];
	uint64_t diag_pending[SP_ST_MAX]; /* the dump in progress, -p/-4/-6 applied */
	bool diag_valid;

	/* rates */
	uint64_t prev_received, prev_mono;
	uint64_t next_refresh_ns;

	/* the screen */
	struct snapshot snap;
	const struct tf_row **view; /* filtered and sorted */
	size_t n_view;
	bool by_service;	/* the table shows one row per service */
	struct tf_row *groups;	/* those rows, rebuilt with the view */
	enum view view_mode, back_mode;
	enum pane focus;
	unsigned int sort_col;
	bool reverse, paused, filtering;
	char filter[64], filter_saved[64];
	size_t sel, scroll;		    /* table */
	size_t sel_spike, ev_scroll, det_sel, det_scroll;
	struct tf_row sel_key;		    /* the selected peer, kept across refreshes */
	bool have_sel_key;
	struct tf_row det_peer;		    /* the peer whose connections are shown */
	int winch_fd;
	int stderr_saved, stderr_capture;
	/* --replay FILE: the dashboard as it stood at the log's last line, on the log's clock */
	bool replay;
	uint64_t replay_ns, replay_events, replay_lost;
	/* what the screen costs the loop: the slowest refresh and draw, and their totals */
	uint64_t refresh_max_ns, draw_max_ns, refresh_sum_ns, draw_sum_ns, refreshes, draws;
};

static inline bool top_same_addr(const struct sp_addr *a, const struct sp_addr *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, 16) == 0;
}

/* top_model.c: the tables events feed */
int top_alloc_tables(struct top *t);
void top_free_tables(struct top *t);
void top_on_event(void *ctx, const struct sp_event *ev);
void top_walk_sock(void *ctx, const struct audit_sock *as, uint64_t target_ms);
void top_diag_start(struct top *t);
void top_diag_done(void *ctx, const struct diag_tally *tally, bool ok);
uint32_t top_peer_find(const struct top *t, const struct sp_addr *a, uint32_t netns,
		       uint16_t port);
void top_peer_free(struct top *t, uint32_t i);
/* Moves a per-second ring to the second of now, zeroing the seconds skipped. */
void top_ring_roll(uint64_t *sec, uint32_t *fail, uint32_t *att, uint64_t now);

/* top_snapshot.c: what the screen shows */
uint64_t top_mono_ns(const struct top *t);
void top_refresh(struct top *t);
void top_apply_view(struct top *t);
void top_build_details(struct top *t, uint64_t now);

/* top_input.c: the keys. Handles every key waiting, then redraws once; false if none was. */
bool top_process_keys(struct top *t);

/* top.c */
void top_drain_ring(struct top *t);

/* top_draw.c */
void top_draw(struct top *t);

#endif
