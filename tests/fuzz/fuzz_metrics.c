// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The metrics registry and its exposition: fuzzed events (enum fields with any byte value, a
 * small cookie space so lease gauges move, every address family for spike destinations),
 * seeded connections and sock_diag snapshots into metrics_on_event() & co and a lease table
 * (its lines to the metrics, as the agent wires them), then metrics_render(), whose output must
 * be a valid exposition (see fuzz_check_exposition).
 *
 * The TIME_WAIT destination labels are either what the agent makes them from (addresses via
 * metrics_dest_label) or arbitrary bytes; arbitrary ones must come back intact once the
 * escaping is undone. The lease gauges by service must add up to the host-wide ones.
 *
 * Input: one byte of options (bit 0: arbitrary labels), then operations: one byte each
 * (7: sock_diag snapshot, 6: seed a connection, else an event) and its operands.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "sockpulse.h"
#include "diag.h"
#include "lease.h"
#include "metrics.h"

#include "fuzz_common.h"

#define MAX_OPS 256

struct labels {
	const struct metrics_dest *top;
	unsigned int n, seen;
	bool arbitrary;
};

static void on_label(void *ctx, const char *metric, size_t mlen, const char *label, size_t llen,
		     const char *value)
{
	static const char tw[] = "sockpulse_tcp_time_wait_sockets_by_destination";
	struct labels *l = ctx;

	if (mlen != sizeof(tw) - 1 || memcmp(metric, tw, mlen))
		return;
	if (l->seen < l->n)
		fuzz_assert(!l->arbitrary || !strcmp(value, l->top[l->seen].label),
			    "label \"%s\" rendered back as \"%s\"", l->top[l->seen].label, value);
	else
		fuzz_assert(!strcmp(value, "other"), "extra label \"%s\"", value);
	l->seen++;
}

/*
 * A sock_diag snapshot. Agent-made labels go the agent's way: inet_diag messages through
 * diag_parse() into a diag_tally, diag_tally_top() picks the top destinations and labels them.
 * Arbitrary labels are made distinct first (one label twice is one series twice; the agent's never
 * are).
 */
static void snapshot(struct fuzz_in *in, struct metrics *m, struct labels *l, struct diag_tally *t)
{
	static struct metrics_dest top[METRICS_TOP_N + 2];
	uint64_t states[SP_ST_MAX], other = fin_u32(in);
	unsigned int n = fin_u8(in) % (METRICS_TOP_N + 3), k = 0;

	for (int s = 0; s < SP_ST_MAX; s++)
		states[s] = fin_u16(in);
	memset(top, 0, sizeof(top));
	if (!l->arbitrary) {
		diag_tally_reset(t);
		for (unsigned int i = 0; i < n * 2; i++) {
			struct {
				struct nlmsghdr nlh;
				struct inet_diag_msg d;
			} msg = {0};
			struct diag_sock ds;
			struct sp_addr a;

			msg.nlh.nlmsg_len = sizeof(msg);
			msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
			msg.d.idiag_state = fin_u8(in) & 1 ? SP_ST_LISTEN : SP_ST_TIME_WAIT;
			fuzz_addr(in, &a);
			msg.d.idiag_family = a.family == AF_INET6 ? AF_INET6 : AF_INET;
			memcpy(msg.d.id.idiag_src, a.bytes, sizeof(a.bytes));
			fuzz_addr(in, &a);
			memcpy(msg.d.id.idiag_dst, a.bytes, sizeof(a.bytes));
			msg.d.id.idiag_sport = fin_u8(in);
			msg.d.id.idiag_dport = fin_u8(in);
			if (!diag_parse(&msg, sizeof(msg), &ds))
				diag_tally_add(t, &ds);
		}
		n = diag_tally_top(t, top, METRICS_TOP_N, &other);
		memcpy(states, t->states, sizeof(states));
		k = n;
	}
	for (unsigned int i = 0; l->arbitrary && i < n; i++) {
		uint8_t len = fin_u8(in) % METRICS_DEST_LABEL_MAX;
		bool dup = false;

		fin_take(in, top[k].label, len);
		top[k].label[len] = '\0';
		top[k].value = fin_u32(in);
		for (unsigned int j = 0; j < k; j++)
			dup = dup || !strcmp(top[j].label, top[k].label);
		if (!dup && strcmp(top[k].label, "other"))
			k++;
	}
	metrics_set_diag(m, states, states[SP_ST_TIME_WAIT], top, k, other);
	l->top = top;
	l->n = k < METRICS_TOP_N ? k : METRICS_TOP_N;
}

static void lease_line(void *ctx, const struct sp_event *ev)
{
	metrics_on_event(ctx, ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lease_config cfg;
	struct lease_table *lt;
	uint64_t by_svc = 0;
	struct fuzz_in in = {data, size};
	struct labels l = {0};
	static struct diag_tally t;
	static struct metrics m;
	uint64_t gauges = 0;
	char *body = NULL;
	long len;
	int ops = 0;

	if (metrics_init(&m, "0.1.0", "1.1.0", "tracepoint"))
		return 0;
	lease_config_default(&cfg);
	cfg.max_leases = 64;
	lt = lease_new(&cfg, lease_line, &m, 0);
	if (!lt) {
		metrics_free(&m);
		return 0;
	}
	if (!t.dests && diag_tally_init(&t))
		return 0;
	l.arbitrary = fin_u8(&in) & 1;
	while (in.n && ops++ < MAX_OPS) {
		uint8_t op = fin_u8(&in);
		struct sp_event ev;

		if (op % 8 == 7) {
			snapshot(&in, &m, &l, &t);
		} else if (op % 8 == 6) {
			struct sp_conn c = {.cookie = fin_u8(&in)};

			lease_seed(lt, &c, fin_u32(&in));
		} else {
			fuzz_event(&in, &ev, true);
			metrics_on_event(&m, &ev);
			lease_advance(lt, ev.mono_ns);
			lease_feed(lt, &ev);
		}
	}
	metrics_set_leases(&m, lt);
	for (int k = 0; k < SP_LEASE_KIND_MAX; k++)
		for (int s = 0; s < LEASE_STATE_MAX; s++) {
			gauges += m.lease_gauge[k][s];
			for (uint32_t i = 0; i < m.svc.n; i++)
				by_svc += (uint64_t)m.svc.s[i].leases[k][s];
		}
	fuzz_assert(gauges == by_svc, "lease gauges %llu, by service %llu",
		    (unsigned long long)gauges, (unsigned long long)by_svc);
	fuzz_assert(gauges >= lease_stats(lt)->live && gauges <= 2ull * lease_stats(lt)->live,
		    "lease gauges %llu for %u connections", (unsigned long long)gauges,
		    lease_stats(lt)->live);

	len = metrics_render(&m, &body);
	fuzz_assert(len > 0 && body, "metrics_render: %ld", len);
	fuzz_check_exposition(body, (size_t)len, on_label, &l);
	fuzz_assert(!m.have_diag || l.seen == l.n + 1, "%u of %u TIME_WAIT labels rendered", l.seen,
		    l.n + 1);
	free(body);
	lease_free(lt);
	metrics_free(&m);
	return 0;
}
