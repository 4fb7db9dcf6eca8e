// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket-table walks: see tablewalk.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine.h"
#include "log.h"
#include "netns.h"
#include "procsock.h"
#include "socktab.h"
#include "sockwalk.h"
#include "tablewalk.h"
#include "util.h"

#define AUDIT_ROWS_MAX 4096
#define PENDING_MAX 4096 /* stuck sockets of one walk waiting for their owner; more: no owner */

struct tablewalk_pending {
	struct sp_conn conn;
	uint64_t inode, entered_ns;
	uint8_t state;
};
#define OWNERS_MIN (1u << 14) /* inodes in the owner map at first (1 MB) */
#define OWNERS_MAX (1u << 22) /* ... grown to fit the host's sockets, up to this */

uint64_t tablewalk_target_ms(const struct config *cfg, uint16_t port)
{
	const struct lease_config *lc = &cfg->engine.lease;

	for (uint32_t i = lc->n_port_ttl; i > 0; i--)
		if (lc->port_ttl[i - 1].port == port)
			return lc->port_ttl[i - 1].ttl_ns / NSEC_PER_MSEC;
	return lc->ttl_ns / NSEC_PER_MSEC;
}

int tablewalk_open(struct tablewalk *tw, const struct config *cfg, struct engine *engine,
		   const struct tablewalk_hooks *hooks)
{
	int err = 0;

	memset(tw, 0, sizeof(*tw));
	tw->cfg = cfg;
	tw->engine = engine;
	if (hooks)
		tw->hooks = *hooks;
	if (cfg->filter.netns) {
		if (netns_find_path(cfg->filter.netns, tw->own_path, sizeof(tw->own_path)))
			pr_warn(
			    "socket table: no path names network namespace %u (not in /run/netns, "
			    "no process in it): not walked",
			    cfg->filter.netns);
		else
			tw->paths[tw->n_paths++] = tw->own_path;
	} else {
		tw->paths[tw->n_paths++] = NULL;
	}
	for (unsigned int i = 0; i < cfg->walk.n_netns_watch; i++)
		tw->paths[tw->n_paths++] = cfg->walk.netns_watch[i];
	if (audit_init(&tw->audit, AUDIT_ROWS_MAX))
		return -ENOMEM;
	tw->owners_cap = OWNERS_MIN;
	tw->ps = procsock_new(tw->owners_cap);
	tw->pending = calloc(PENDING_MAX, sizeof(*tw->pending));
	if (!tw->ps || !tw->pending)
		return -ENOMEM;
	tw->sw = sockwalk_open(&err);
	return tw->sw ? 0 : err;
}

static void seed(struct tablewalk *tw, const struct sp_conn *c, uint8_t state, uint64_t entered)
{
	if (engine_seed_stuck(tw->engine, c, state, entered, tw->now_ns))
		tw->seeded_stuck++;
}

/*
 * A socket in CLOSE_WAIT/FIN_WAIT2 the engine does not watch yet: its age is at least the time
 * since its last segment. Its owner comes from /proc after the walk (read only when some are
 * found), unless owners were read already.
 */
static void stuck_found(struct tablewalk *tw, const struct audit_sock *s)
{
	uint64_t entered = tw->now_ns - s->last_recv_ms * NSEC_PER_MSEC;
	struct tablewalk_pending *p;

	if (stuck_watching(engine_stuck(tw->engine), s->conn.cookie))
		return;
	if (tw->owners_now || !s->inode || tw->n_pending >= PENDING_MAX) {
		seed(tw, &s->conn, s->state, entered);
		return;
	}
	p = &tw->pending[tw->n_pending++];
	p->conn = s->conn;
	p->inode = s->inode;
	p->entered_ns = entered;
	p->state = s->state;
}

/* Reads /proc into the inode map, growing it (x4, once per scan) while it overflows. */
static void scan_owners(struct tablewalk *tw)
{
	uint64_t overflow = 0;

	tw->owner_scans++;
	if (procsock_scan(tw->ps, "/proc", &overflow))
		pr_debug("socket table: /proc unreadable: owners unknown");
	while (overflow && tw->owners_cap < OWNERS_MAX) {
		struct procsock *bigger = procsock_new(tw->owners_cap * 4);

		if (!bigger)
			break;
		procsock_free(tw->ps);
		tw->ps = bigger;
		tw->owners_cap *= 4;
		procsock_scan(tw->ps, "/proc", &overflow);
	}
	tw->owner_overflow = overflow;
}

static void seed_pending(struct tablewalk *tw)
{
	if (!tw->n_pending)
		return;
	scan_owners(tw);
	for (uint32_t i = 0; i < tw->n_pending; i++) {
		struct tablewalk_pending *p = &tw->pending[i];
		char comm[16];
		uint32_t pid;

		if (procsock_lookup(tw->ps, p->inode, &pid, comm)) {
			p->conn.has_pid = true;
			p->conn.owner_source = SP_OWNER_TABLE;
			p->conn.pid = pid;
			memcpy(p->conn.comm, comm, sizeof(p->conn.comm));
		}
		seed(tw, &p->conn, p->state, p->entered_ns);
	}
	tw->n_pending = 0;
}

static void on_sock(void *ctx, const struct sockwalk_ns *ns, const struct sp_sockinfo *si)
{
	struct tablewalk *tw = ctx;
	struct audit_sock s;
	uint64_t target;
	uint32_t pid;
	char comm[16];

	tw->aw.port_lo = ns->port_lo;
	tw->aw.port_hi = ns->port_hi;
	if (audit_decode(&tw->aw, si, sizeof(*si), ns->hz, &s)) {
		tw->decode_errors++;
		return;
	}
	tw->sockets++;
	if (tw->owners_now && s.inode && procsock_lookup(tw->ps, s.inode, &pid, comm)) {
		s.conn.has_pid = true;
		s.conn.owner_source = SP_OWNER_TABLE;
		s.conn.pid = pid;
		memcpy(s.conn.comm, comm, sizeof(s.conn.comm));
	}
	if (tw->socks && !(s.flags & SP_W_TIMEWAIT))
		socktab_walked(tw->socks, &s.conn, s.flags & SP_W_LISTENER);
	target = tablewalk_target_ms(tw->cfg, s.service_port);
	if (tw->engine && !(s.flags & (SP_W_LISTENER | SP_W_TIMEWAIT))) {
		engine_resync_seen(tw->engine, s.conn.cookie);
		/* connections older than the agent hold leases from the start, with their owners */
		if (!tw->walks && s.state == SP_ST_ESTABLISHED)
			engine_seed(tw->engine, &s.conn, tw->now_ns);
	}
	if (tw->engine && !(s.flags & SP_W_LISTENER)) {
		if (s.conn.direction == SP_DIR_EGRESS)
			portfc_resync_add(engine_ports(tw->engine), ns->netns, &s.conn.src,
					  &s.conn.dst, s.conn.dport, s.flags & SP_W_TIMEWAIT,
					  s.tw_left_ms);
		/* a timewait socket in FIN_WAIT2 was closed by its application: the kernel ends it
		 */
		if (stuck_state_index(s.state) >= 0 && !(s.flags & SP_W_TIMEWAIT))
			stuck_found(tw, &s);
	}
	audit_add(&tw->audit, &s, target);
	if (tw->hooks.on_sock)
		tw->hooks.on_sock(tw->hooks.ctx, &s, target);
}

static int walk_ns(struct tablewalk *tw, const char *path, uint32_t *ino_out)
{
	struct sockwalk_ns ns = {0};
	uint32_t ino = 0;
	int n;

	if (netns_inode(path ? path : "/proc/self/ns/net", &ino))
		return -ENOENT;
	audit_walk_reset(&tw->aw, ino);
	if (tw->engine)
		portfc_resync_begin(engine_ports(tw->engine), ino, tw->now_ns);
	n = sockwalk_run(tw->sw, path, &ns, on_sock, tw);
	if (n < 0) {
		pr_debug("socket table: %s: %s", path ? path : "own namespace", strerror(-n));
		return n;
	}
	if (tw->engine) {
		struct portfc_ns pn = {
			.lo = ns.port_lo,
			.hi = ns.port_hi,
			.tw_reuse = ns.tw_reuse > 2 ? 2 : (uint8_t)ns.tw_reuse,
		};

		if (pn.lo && pn.lo <= pn.hi)
			portfc_set_ns(engine_ports(tw->engine), ino, &pn);
	}
	*ino_out = ino;
	return 0;
}

int tablewalk_run(struct tablewalk *tw, uint64_t now_ns)
{
	uint64_t t0 = clock_mono_ns();
	int ok = 0, err = -ENOENT;

	if (!tw->sw)
		return -ENODEV;
	tw->now_ns = now_ns;
	tw->n_pending = 0;
	tw->owners_now = tw->hooks.owners || tw->owners_next;
	tw->owners_next = false;
	if (tw->owners_now)
		scan_owners(tw);
	audit_reset(&tw->audit);
	if (tw->hooks.on_start)
		tw->hooks.on_start(tw->hooks.ctx);
	for (int i = 0; i < tw->n_paths; i++) {
		int r = walk_ns(tw, tw->paths[i], &tw->walked[ok]);

		if (!r)
			ok++;
		else
			err = r;
	}
	if (tw->engine)
		seed_pending(tw);
	/* connections missing from this walk and the one before, whose end no event told */
	if (tw->engine && ok)
		engine_resync_end(tw->engine, tw->walked, (size_t)ok, t0, now_ns);
	audit_sort(&tw->audit);
	tw->ok = ok == tw->n_paths;
	tw->walks++;
	if (!tw->ok)
		tw->errors++;
	tw->last_duration_ns = clock_mono_ns() - t0;
	tw->next_ns = now_ns + tw->cfg->walk.audit_interval_ns;
	if (ok && tw->hooks.on_done)
		tw->hooks.on_done(tw->hooks.ctx, &tw->audit, tw->ok);
	return ok ? 0 : err;
}

void tablewalk_tick(struct tablewalk *tw, uint64_t now_ns)
{
	if (tw->sw && tw->cfg->walk.audit_interval_ns && now_ns >= tw->next_ns)
		tablewalk_run(tw, now_ns);
}

static void on_owner_sock(void *ctx, const struct sockwalk_ns *ns, const struct sp_sockinfo *si)
{
	struct tablewalk *tw = ctx;
	struct audit_sock s;
	uint32_t pid;
	char comm[16];

	tw->aw.port_lo = ns->port_lo;
	tw->aw.port_hi = ns->port_hi;
	if (si->flags & SP_W_TIMEWAIT || audit_decode(&tw->aw, si, sizeof(*si), ns->hz, &s))
		return;
	if (s.inode && procsock_lookup(tw->ps, s.inode, &pid, comm)) {
		s.conn.has_pid = true;
		s.conn.owner_source = SP_OWNER_TABLE;
		s.conn.pid = pid;
		memcpy(s.conn.comm, comm, sizeof(s.conn.comm));
	}
	socktab_walked(tw->socks, &s.conn, s.flags & SP_W_LISTENER);
}

int tablewalk_owners(struct tablewalk *tw, uint64_t now_ns)
{
	struct sockwalk_ns ns;
	uint32_t ino;

	if (!tw->sw || !tw->socks)
		return -ENODEV;
	if (tw->owner_walks && now_ns - tw->last_owner_walk_ns < TABLEWALK_OWNER_GAP_NS)
		return -EAGAIN;
	tw->owner_walks++;
	tw->last_owner_walk_ns = now_ns;
	scan_owners(tw);
	for (int i = 0; i < tw->n_paths; i++) {
		if (netns_inode(tw->paths[i] ? tw->paths[i] : "/proc/self/ns/net", &ino))
			continue;
		memset(&ns, 0, sizeof(ns));
		audit_walk_reset(&tw->aw, ino);
		sockwalk_run(tw->sw, tw->paths[i], &ns, on_owner_sock, tw);
	}
	return 0;
}

bool tablewalk_covers(const struct tablewalk *tw, uint32_t netns)
{
	for (int i = 0; i < tw->n_paths; i++)
		if (tw->walked[i] == netns)
			return true;
	return false;
}

void tablewalk_close(struct tablewalk *tw)
{
	if (!tw)
		return;
	sockwalk_close(tw->sw);
	tw->sw = NULL;
	procsock_free(tw->ps);
	tw->ps = NULL;
	free(tw->pending);
	tw->pending = NULL;
	audit_free(&tw->audit);
}
