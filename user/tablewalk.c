// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket-table walks: see tablewalk.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "engine.h"
#include "log.h"
#include "netns.h"
#include "procsock.h"
#include "sockwalk.h"
#include "tablewalk.h"

#define AUDIT_ROWS_MAX 4096
#define OWNERS_MAX     (1u << 20) /* inodes in the owner map */

uint64_t tablewalk_target_ms(const struct config *cfg, uint16_t port)
{
	const struct lease_config *lc = &cfg->engine.lease;

	for (uint32_t i = lc->n_port_ttl; i > 0; i--)
		if (lc->port_ttl[i - 1].port == port)
			return lc->port_ttl[i - 1].ttl_ns / 1000000ULL;
	return lc->ttl_ns / 1000000ULL;
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
	if (cfg->netns) {
		if (netns_find_path(cfg->netns, tw->own_path, sizeof(tw->own_path)))
			pr_warn(
			    "socket table: no path names network namespace %u (not in /run/netns, "
			    "no process in it): not walked",
			    cfg->netns);
		else
			tw->paths[tw->n_paths++] = tw->own_path;
	} else {
		tw->paths[tw->n_paths++] = NULL;
	}
	for (unsigned int i = 0; i < cfg->n_netns_watch; i++)
		tw->paths[tw->n_paths++] = cfg->netns_watch[i];
	if (audit_init(&tw->audit, AUDIT_ROWS_MAX))
		return -ENOMEM;
	tw->ps = procsock_new(OWNERS_MAX);
	if (!tw->ps)
		return -ENOMEM;
	tw->sw = sockwalk_open(&err);
	return tw->sw ? 0 : err;
}

static void on_sock(void *ctx, const struct sockwalk_ns *ns, const struct sp_sockinfo *si)
{
	struct tablewalk *tw = ctx;
	struct audit_sock s;
	uint64_t target;
	uint32_t pid;
	char comm[16];

	if (audit_decode(&tw->aw, si, sizeof(*si), ns->hz, &s)) {
		tw->decode_errors++;
		return;
	}
	tw->sockets++;
	if (s.inode && procsock_lookup(tw->ps, s.inode, &pid, comm)) {
		s.conn.has_pid = true;
		s.conn.pid = pid;
		memcpy(s.conn.comm, comm, sizeof(s.conn.comm));
	}
	target = tablewalk_target_ms(tw->cfg, s.service_port);
	if (tw->engine && !(s.flags & SP_W_LISTENER)) {
		if (s.conn.direction == SP_DIR_EGRESS)
			portfc_resync_add(engine_ports(tw->engine), ns->netns, &s.conn.src,
					  &s.conn.dst, s.conn.dport, s.flags & SP_W_TIMEWAIT,
					  s.tw_left_ms);
		/* a timewait socket in FIN_WAIT2 was closed by its application: the kernel ends it
		 */
		if (stuck_state_index(s.state) >= 0 && !(s.flags & SP_W_TIMEWAIT) &&
		    engine_seed_stuck(tw->engine, &s.conn, s.state,
				      tw->now_ns - s.last_recv_ms * 1000000ULL, tw->now_ns))
			tw->seeded_stuck++;
	}
	audit_add(&tw->audit, &s, target);
	if (tw->hooks.on_sock)
		tw->hooks.on_sock(tw->hooks.ctx, &s, target);
}

static int walk_ns(struct tablewalk *tw, const char *path)
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
		portfc_resync_end(engine_ports(tw->engine), ino);
		if (ns.port_lo && ns.port_lo <= ns.port_hi)
			portfc_set_range(engine_ports(tw->engine), ino, ns.port_lo, ns.port_hi);
	}
	return 0;
}

int tablewalk_run(struct tablewalk *tw, uint64_t now_ns)
{
	uint64_t overflow = 0, t0 = clock_mono_ns();
	int ok = 0, err = -ENOENT;

	if (!tw->sw)
		return -ENODEV;
	tw->now_ns = now_ns;
	if (procsock_scan(tw->ps, "/proc", &overflow))
		pr_debug("socket table: /proc unreadable: owners unknown");
	tw->owner_overflow = overflow;
	audit_reset(&tw->audit);
	if (tw->hooks.on_start)
		tw->hooks.on_start(tw->hooks.ctx);
	for (int i = 0; i < tw->n_paths; i++) {
		int r = walk_ns(tw, tw->paths[i]);

		if (!r)
			ok++;
		else
			err = r;
	}
	audit_sort(&tw->audit);
	tw->ok = ok == tw->n_paths;
	tw->walks++;
	if (!tw->ok)
		tw->errors++;
	tw->last_duration_ns = clock_mono_ns() - t0;
	tw->next_ns = now_ns + tw->cfg->audit_interval_ns;
	if (ok && tw->hooks.on_done)
		tw->hooks.on_done(tw->hooks.ctx, &tw->audit, tw->ok);
	return ok ? 0 : err;
}

void tablewalk_tick(struct tablewalk *tw, uint64_t now_ns)
{
	if (tw->sw && tw->cfg->audit_interval_ns && now_ns >= tw->next_ns)
		tablewalk_run(tw, now_ns);
}

void tablewalk_close(struct tablewalk *tw)
{
	if (!tw)
		return;
	sockwalk_close(tw->sw);
	tw->sw = NULL;
	procsock_free(tw->ps);
	tw->ps = NULL;
	audit_free(&tw->audit);
}
