// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sock_diag message parsing and per-dump tallies; see diag.h. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "diag.h"

/* Every state but TCP_BOUND_INACTIVE (13, newer kernels): bound, unconnected sockets. */
#define DIAG_STATES (((1u << SP_ST_MAX) - 1) & ~1u)
#define DEST_SLOTS  (DIAG_DEST_MAX * 2)

/*
 * IPv4-mapped IPv6 becomes IPv4, as in the decoder: a dual-stack socket and an IPv4 one to the
 * same service are one destination (one metrics label, not the same label twice) and one peer.
 */
static void copy_addr(struct sp_addr *a, uint8_t family, const __be32 *words)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, 0xff };

	memset(a->bytes, 0, sizeof(a->bytes));
	if (family == AF_INET6 && !memcmp(words, v4mapped, sizeof(v4mapped))) {
		a->family = AF_INET;
		memcpy(a->bytes, words + 3, 4);
		return;
	}
	a->family = family == AF_INET ? AF_INET : AF_INET6;
	memcpy(a->bytes, words, family == AF_INET ? 4 : 16);
}

int diag_parse(const void *msg, size_t len, struct diag_sock *out)
{
	const struct nlmsghdr *nlh = msg;
	struct inet_diag_msg d;

	if (len < NLMSG_HDRLEN || nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > len)
		return -EINVAL;
	if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    nlh->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return -EINVAL;
	memcpy(&d, NLMSG_DATA(nlh), sizeof(d)); /* no alignment assumption */
	if (d.idiag_family != AF_INET && d.idiag_family != AF_INET6)
		return -EINVAL;
	if (d.idiag_state == 0 || d.idiag_state >= SP_ST_MAX)
		return -ERANGE;
	memset(out, 0, sizeof(*out));
	copy_addr(&out->local, d.idiag_family, d.id.idiag_src);
	copy_addr(&out->remote, d.idiag_family, d.id.idiag_dst);
	out->lport = ntohs(d.id.idiag_sport);
	out->rport = ntohs(d.id.idiag_dport);
	out->state = d.idiag_state;
	out->timer = d.idiag_timer;
	out->retrans = d.idiag_retrans;
	out->expires_ms = d.idiag_expires;
	out->rqueue = d.idiag_rqueue;
	out->wqueue = d.idiag_wqueue;
	out->uid = d.idiag_uid;
	out->inode = d.idiag_inode;
	if (d.id.idiag_cookie[0] != INET_DIAG_NOCOOKIE ||
	    d.id.idiag_cookie[1] != INET_DIAG_NOCOOKIE)
		out->cookie = (uint64_t)d.id.idiag_cookie[1] << 32 | d.id.idiag_cookie[0];
	return 0;
}

size_t diag_build_request(void *buf, size_t cap, uint8_t family, uint32_t seq)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} r;

	if (cap < sizeof(r))
		return 0;
	memset(&r, 0, sizeof(r));
	r.nlh.nlmsg_len = sizeof(r);
	r.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	r.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	r.nlh.nlmsg_seq = seq;
	r.req.sdiag_family = family;
	r.req.sdiag_protocol = IPPROTO_TCP;
	r.req.idiag_states = DIAG_STATES;
	memcpy(buf, &r, sizeof(r));
	return sizeof(r);
}

int diag_tally_init(struct diag_tally *t)
{
	memset(t, 0, sizeof(*t));
	t->dests = calloc(DEST_SLOTS, sizeof(*t->dests));
	return t->dests ? 0 : -ENOMEM;
}

void diag_tally_free(struct diag_tally *t)
{
	if (!t)
		return;
	free(t->dests);
	t->dests = NULL;
}

void diag_tally_reset(struct diag_tally *t)
{
	struct diag_dest_count *d = t->dests;

	memset(t, 0, sizeof(*t));
	t->dests = d;
	if (d)
		memset(d, 0, DEST_SLOTS * sizeof(*d));
}

void diag_tally_next_netns(struct diag_tally *t, uint16_t lo, uint16_t hi)
{
	memset(t->listen_ports, 0, sizeof(t->listen_ports));
	t->port_lo = lo <= hi ? lo : 0;
	t->port_hi = lo <= hi ? hi : 0;
}

static bool listening(const struct diag_tally *t, uint16_t port)
{
	return t->listen_ports[port / 8] & (1u << (port % 8));
}

static bool ephemeral(const struct diag_tally *t, uint16_t port)
{
	return t->port_lo && port >= t->port_lo && port <= t->port_hi;
}

uint8_t diag_direction(const struct diag_tally *t, const struct diag_sock *s)
{
	if (listening(t, s->lport))
		return SP_DIR_INGRESS;
	if (ephemeral(t, s->rport) && !ephemeral(t, s->lport))
		return SP_DIR_INGRESS;
	return SP_DIR_EGRESS;
}

void diag_to_conn(const struct diag_tally *t, const struct diag_sock *s, struct sp_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->direction = diag_direction(t, s);
	c->has_ports = true;
	if (c->direction == SP_DIR_INGRESS) {
		c->src = s->remote;
		c->sport = s->rport;
		c->dst = s->local;
		c->dport = s->lport;
	} else {
		c->src = s->local;
		c->sport = s->lport;
		c->dst = s->remote;
		c->dport = s->rport;
	}
	c->cookie = s->cookie;
	c->netns = s->netns;
}

static uint32_t dest_hash(const struct sp_addr *a, uint16_t port)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < sizeof(a->bytes); i++)
		h = (h ^ a->bytes[i]) * 16777619u;
	h = (h ^ port) * 16777619u;
	return (h ^ a->family) * 16777619u;
}

static void count_dest(struct diag_tally *t, const struct sp_addr *a, uint16_t port)
{
	uint32_t i = dest_hash(a, port) % DEST_SLOTS;
	struct diag_dest_count *d;

	for (;;) {
		d = &t->dests[i];
		if (!d->count)
			break;
		if (d->port == port && d->addr.family == a->family &&
		    memcmp(d->addr.bytes, a->bytes, sizeof(a->bytes)) == 0) {
			d->count++;
			return;
		}
		i = (i + 1) % DEST_SLOTS;
	}
	if (t->n_dests >= DIAG_DEST_MAX) {
		t->dest_overflow++;
		return;
	}
	d->addr = *a;
	d->port = port;
	d->count = 1;
	t->n_dests++;
}

void diag_tally_add(struct diag_tally *t, const struct diag_sock *s)
{
	if (s->state == 0 || s->state >= SP_ST_MAX)
		return;
	t->sockets++;
	t->states[s->state]++;
	if (s->state == SP_ST_LISTEN)
		t->listen_ports[s->lport / 8] |= 1u << (s->lport % 8);
	if (s->state == SP_ST_ESTABLISHED)
		t->established_seen++;
	if (s->state == SP_ST_TIME_WAIT && t->dests) {
		if (diag_direction(t, s) == SP_DIR_INGRESS)
			count_dest(t, &s->local, s->lport);
		else
			count_dest(t, &s->remote, s->rport);
	}
}

static int dest_cmp(const void *a, const void *b)
{
	const struct diag_dest_count *x = *(const struct diag_dest_count *const *)a;
	const struct diag_dest_count *y = *(const struct diag_dest_count *const *)b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return memcmp(x->addr.bytes, y->addr.bytes, sizeof(x->addr.bytes));
}

unsigned int diag_tally_top(const struct diag_tally *t, struct metrics_dest *out, unsigned int n,
			    uint64_t *other)
{
	const struct diag_dest_count **list;
	unsigned int k = 0, shown = 0;
	uint64_t total = t->states[SP_ST_TIME_WAIT], in_top = 0;

	*other = total;
	if (!t->dests || !t->n_dests)
		return 0;
	list = malloc(t->n_dests * sizeof(*list));
	if (!list)
		return 0;
	for (uint32_t i = 0; i < DEST_SLOTS && k < t->n_dests; i++)
		if (t->dests[i].count)
			list[k++] = &t->dests[i];
	qsort(list, k, sizeof(*list), dest_cmp);
	for (unsigned int i = 0; i < k && shown < n; i++) {
		if (!metrics_dest_label(out[shown].label, sizeof(out[shown].label), &list[i]->addr,
					list[i]->port))
			continue;
		out[shown].value = list[i]->count;
		in_top += list[i]->count;
		shown++;
	}
	free(list);
	*other = total - in_top;
	return shown;
}
