// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Keepalive audit: see audit.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "audit.h"
#include "format.h"
#include "names.h"

#define RTO_MIN_MS	  200ULL    /* TCP_RTO_MIN */
#define RTO_MAX_MS	  120000ULL /* TCP_RTO_MAX */
#define RTO_LINEAR_THRESH 9	    /* ilog2(TCP_RTO_MAX / TCP_RTO_MIN) */
#define SUGGEST_MIN_MS	  4000ULL

uint64_t ka_idle_detect_ms(const struct ka_settings *k)
{
	uint64_t idle = k->idle_ms, intvl = k->intvl_ms, u = k->user_timeout_ms, n;

	if (!k->enabled)
		return KA_NEVER;
	if (!u)
		return idle + (uint64_t)k->probes * intvl;
	/* checks run at idle + n * intvl; the first at or past u with a probe out (n >= 1) kills */
	if (!intvl)
		return u > idle ? u : idle;
	n = u > idle ? (u - idle + intvl - 1) / intvl : 1;
	return idle + (n ? n : 1) * intvl;
}

uint64_t ka_busy_detect_ms(const struct ka_settings *k)
{
	uint64_t b = k->retries2;

	if (k->user_timeout_ms)
		return k->user_timeout_ms;
	/* tcp_model_timeout(): doubling from the minimum RTO until it reaches the maximum */
	if (b <= RTO_LINEAR_THRESH)
		return ((2ULL << b) - 1) * RTO_MIN_MS;
	return ((2ULL << RTO_LINEAR_THRESH) - 1) * RTO_MIN_MS +
	       (b - RTO_LINEAR_THRESH) * RTO_MAX_MS;
}

void ka_suggest(uint64_t target_ms, struct ka_settings *out)
{
	uint64_t t = (target_ms < SUGGEST_MIN_MS ? SUGGEST_MIN_MS : target_ms) / 1000;
	uint64_t idle, intvl, probes;

	if (t > UINT32_MAX / 1000)
		t = UINT32_MAX / 1000;
	idle = t / 2;
	intvl = (t - idle) / 3 ? (t - idle) / 3 : 1;
	probes = (t - idle) / intvl < 3 ? (t - idle) / intvl : 3;
	memset(out, 0, sizeof(*out));
	out->enabled = true;
	out->from_socket = SP_W_KA_TIME | SP_W_KA_INTVL | SP_W_KA_PROBES;
	out->idle_ms = (uint32_t)(idle * 1000);
	out->intvl_ms = (uint32_t)(intvl * 1000);
	out->probes = (uint32_t)probes;
	out->user_timeout_ms = (uint32_t)(t * 1000);
}

void audit_walk_reset(struct audit_walk *w, uint32_t netns)
{
	w->netns = netns;
	memset(w->listen_ports, 0, sizeof(w->listen_ports));
}

static uint64_t j2ms(uint32_t j, uint32_t hz)
{
	return (uint64_t)j * 1000ULL / hz;
}

static void set_addr(struct sp_addr *a, uint16_t family, const uint8_t *bytes)
{
	a->family = family;
	memset(a->bytes, 0, sizeof(a->bytes));
	memcpy(a->bytes, bytes, family == AF_INET ? 4 : 16);
}

int audit_decode(struct audit_walk *w, const void *rec, size_t len, uint32_t hz,
		 struct audit_sock *out)
{
	struct sp_sockinfo si;
	struct sp_conn *c = &out->conn;
	bool ingress;

	if (len != sizeof(si))
		return -EINVAL;
	memcpy(&si, rec, sizeof(si));
	if ((si.family != AF_INET && si.family != AF_INET6) || !si.state || si.state >= SP_ST_MAX)
		return -EINVAL;
	if (si.hz)
		hz = si.hz;
	if (!hz)
		return -ENODATA;
	if (si.netns != w->netns)
		audit_walk_reset(w, si.netns);
	memset(out, 0, sizeof(*out));
	out->state = si.state;
	out->flags = si.flags;
	out->inode = si.inode;
	c->cgroup_id = si.cgroup_id;
	if (si.flags & SP_W_LISTENER) {
		w->listen_ports[si.lport / 8] |= (uint8_t)(1u << (si.lport % 8));
		set_addr(&c->src, si.family, si.laddr);
		c->sport = si.lport;
		c->has_ports = true;
		c->cookie = si.cookie;
		c->netns = si.netns;
		out->service_port = si.lport;
		return 0;
	}
	/* a listener on the local port; or none left (a server side closing), but only the
	 * remote port is ephemeral */
	ingress = w->listen_ports[si.lport / 8] & (1u << (si.lport % 8));
	if (!ingress && w->port_lo)
		ingress = si.rport >= w->port_lo && si.rport <= w->port_hi &&
			  !(si.lport >= w->port_lo && si.lport <= w->port_hi);
	c->direction = ingress ? SP_DIR_INGRESS : SP_DIR_EGRESS;
	set_addr(ingress ? &c->dst : &c->src, si.family, si.laddr);
	set_addr(ingress ? &c->src : &c->dst, si.family, si.raddr);
	c->sport = ingress ? si.rport : si.lport;
	c->dport = ingress ? si.lport : si.rport;
	c->has_ports = true;
	c->cookie = si.cookie;
	c->netns = si.netns;
	out->service_port = c->dport;
	if (si.flags & SP_W_TIMEWAIT) {
		out->tw_left_ms = j2ms(si.tw_expires_j, hz);
		return 0;
	}
	out->ka.enabled = si.flags & SP_W_KEEPALIVE;
	out->ka.from_socket = (uint8_t)(si.flags & (SP_W_KA_TIME | SP_W_KA_INTVL | SP_W_KA_PROBES));
	out->ka.idle_ms = (uint32_t)j2ms(si.ka_time_j, hz);
	out->ka.intvl_ms = (uint32_t)j2ms(si.ka_intvl_j, hz);
	out->ka.probes = si.ka_probes;
	out->ka.user_timeout_ms = si.user_timeout_ms;
	out->ka.retries2 = si.retries2;
	out->last_recv_ms = j2ms(si.last_recv_j, hz);
	return 0;
}

int audit_init(struct audit *a, size_t max_rows)
{
	memset(a, 0, sizeof(*a));
	if (!max_rows)
		return -EINVAL;
	a->rows = calloc(max_rows, sizeof(*a->rows));
	if (!a->rows)
		return -ENOMEM;
	a->cap = max_rows;
	return 0;
}

void audit_free(struct audit *a)
{
	if (!a)
		return;
	free(a->rows);
	memset(a, 0, sizeof(*a));
}

void audit_reset(struct audit *a)
{
	a->n = 0;
	a->connections = 0;
	a->overflow = 0;
}

static bool same_row(const struct audit_row *r, const struct audit_sock *s)
{
	uint32_t pid = s->conn.has_pid ? s->conn.pid : 0;

	return r->service_port == s->service_port && r->direction == s->conn.direction &&
	       r->pid == pid && !strncmp(r->comm, s->conn.comm, SP_COMM_MAX);
}

void audit_add(struct audit *a, const struct audit_sock *s, uint64_t target_ms)
{
	uint64_t idle = ka_idle_detect_ms(&s->ka), busy = ka_busy_detect_ms(&s->ka);
	struct audit_row *r = NULL;

	if (s->state != SP_ST_ESTABLISHED)
		return;
	a->connections++;
	for (size_t i = a->n; i-- > 0;) {
		if (same_row(&a->rows[i], s)) {
			r = &a->rows[i];
			break;
		}
	}
	if (!r) {
		if (a->n >= a->cap) {
			a->overflow++;
			return;
		}
		r = &a->rows[a->n++];
		memset(r, 0, sizeof(*r));
		r->service_port = s->service_port;
		r->direction = s->conn.direction;
		r->pid = s->conn.has_pid ? s->conn.pid : 0;
		memcpy(r->comm, s->conn.comm, SP_COMM_MAX);
		r->comm[SP_COMM_MAX - 1] = '\0';
		r->best_ms = KA_NEVER;
		r->target_ms = target_ms;
		r->worst = s->ka;
	}
	r->conns++;
	if (!s->ka.enabled)
		r->without_keepalive++;
	if (s->ka.enabled && s->ka.from_socket)
		r->socket_set++;
	if (r->conns == 1 || idle > r->worst_ms) {
		r->worst_ms = idle;
		r->worst = s->ka;
	}
	if (s->ka.enabled && (!r->worst_on_ms || idle > r->worst_on_ms)) {
		r->worst_on_ms = idle;
		r->worst_on = s->ka;
	}
	if (idle < r->best_ms)
		r->best_ms = idle;
	if (busy > r->busy_worst_ms)
		r->busy_worst_ms = busy;
}

static int row_cmp(const void *x, const void *y)
{
	const struct audit_row *a = x, *b = y;

	if (a->service_port != b->service_port)
		return a->service_port < b->service_port ? -1 : 1;
	if (a->direction != b->direction)
		return a->direction < b->direction ? -1 : 1;
	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	return strncmp(a->comm, b->comm, SP_COMM_MAX);
}

void audit_sort(struct audit *a)
{
	qsort(a->rows, a->n, sizeof(*a->rows), row_cmp);
}

size_t audit_fmt_ms(char *buf, size_t cap, uint64_t ms)
{
	uint64_t s = ms / 1000, frac = (ms % 1000) / 100;
	size_t len = 0;
	int n = 0;

	if (!cap)
		return 0;
	buf[0] = '\0';
	if (ms == KA_NEVER)
		n = snprintf(buf, cap, "never");
	else if (ms < 1000)
		n = snprintf(buf, cap, "%" PRIu64 "ms", ms);
	if (n || ms < 1000) /* "never", "Nms" */
		return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
	/* 2h, 2h11m15s, 15m24.6s, 30s */
	if (s >= 3600)
		len += (size_t)snprintf(buf + len, cap - len, "%" PRIu64 "h", s / 3600);
	if (len < cap && (s % 3600) / 60)
		len += (size_t)snprintf(buf + len, cap - len, "%" PRIu64 "m", (s % 3600) / 60);
	if (len < cap && (s % 60 || frac)) {
		if (frac)
			len += (size_t)snprintf(buf + len, cap - len, "%" PRIu64 ".%" PRIu64 "s",
						s % 60, frac);
		else
			len += (size_t)snprintf(buf + len, cap - len, "%" PRIu64 "s", s % 60);
	}
	return len >= cap ? 0 : len;
}

static const char *ka_source(const struct ka_settings *k)
{
	uint8_t all = SP_W_KA_TIME | SP_W_KA_INTVL | SP_W_KA_PROBES;

	if (!k->from_socket)
		return "sysctl";
	return (k->from_socket & all) == all ? "socket" : "mixed";
}

static void settings_str(char *buf, size_t cap, const struct ka_settings *k)
{
	char idle[24], intvl[24];

	if (!k->enabled) {
		snprintf(buf, cap, "off");
		return;
	}
	audit_fmt_ms(idle, sizeof(idle), k->idle_ms);
	audit_fmt_ms(intvl, sizeof(intvl), k->intvl_ms);
	if (k->user_timeout_ms) {
		char uto[24];

		audit_fmt_ms(uto, sizeof(uto), k->user_timeout_ms);
		snprintf(buf, cap, "%s/%s/%u uto=%s %s", idle, intvl, k->probes, uto,
			 ka_source(k));
		return;
	}
	snprintf(buf, cap, "%s/%s/%u %s", idle, intvl, k->probes, ka_source(k));
}

/*
 * A row's keepalive: its slowest connection's settings, or, when only some of its connections
 * have keepalive, how many and the slowest of those ("3/6 on 30s/5s/3 socket"): a row is not
 * "off" because one connection is.
 */
static void row_settings(char *buf, size_t cap, const struct audit_row *r)
{
	char set[64];

	if (!r->without_keepalive || r->without_keepalive == r->conns) {
		settings_str(buf, cap, &r->worst);
		return;
	}
	settings_str(set, sizeof(set), &r->worst_on);
	snprintf(buf, cap, "%u/%u on %s", r->conns - r->without_keepalive, r->conns, set);
}

/* Worst-case detection; with a mix, the slowest connection with keepalive, then "never". */
static void row_detection(char *buf, size_t cap, const struct audit_row *r)
{
	char on[24];

	if (!r->without_keepalive || r->without_keepalive == r->conns) {
		audit_fmt_ms(buf, cap, r->worst_ms);
		return;
	}
	audit_fmt_ms(on, sizeof(on), r->worst_on_ms);
	snprintf(buf, cap, "%s/never", on);
}

static void suggest_str(char *buf, size_t cap, uint64_t worst, uint64_t target)
{
	struct ka_settings s;

	if (!target || worst <= target) {
		snprintf(buf, cap, "ok");
		return;
	}
	ka_suggest(target, &s);
	snprintf(buf, cap,
		 "SO_KEEPALIVE=1 TCP_KEEPIDLE=%u TCP_KEEPINTVL=%u TCP_KEEPCNT=%u "
		 "TCP_USER_TIMEOUT=%u",
		 s.idle_ms / 1000, s.intvl_ms / 1000, s.probes, s.user_timeout_ms);
}

void audit_print_text(FILE *out, const struct audit *a)
{
	char proc[40], worst[40], target[24], set[96], sug[128];

	fprintf(out, "%-8s %-7s %-22s %5s %5s %-12s %-8s %-22s %s\n", "SERVICE", "DIR", "PROCESS",
		"CONNS", "NO-KA", "DETECTION", "TARGET", "KEEPALIVE", "SUGGESTED");
	for (size_t i = 0; i < a->n; i++) {
		const struct audit_row *r = &a->rows[i];
		const char *dir = direction_name(r->direction);

		if (r->pid)
			snprintf(proc, sizeof(proc), "%.15s[%u]", r->comm[0] ? r->comm : "?",
				 r->pid);
		else
			snprintf(proc, sizeof(proc), "-");
		row_detection(worst, sizeof(worst), r);
		audit_fmt_ms(target, sizeof(target), r->target_ms);
		row_settings(set, sizeof(set), r);
		suggest_str(sug, sizeof(sug), r->worst_ms, r->target_ms);
		fprintf(out, "%-8u %-7s %-22s %5u %5u %-12s %-8s %-22s %s\n", r->service_port,
			dir ? dir : "-", proc, r->conns, r->without_keepalive, worst, target, set,
			sug);
	}
	fprintf(out, "%" PRIu64 " established connections, %zu rows", a->connections, a->n);
	if (a->overflow)
		fprintf(out, ", %" PRIu64 " connections not shown (too many rows)", a->overflow);
	fputc('\n', out);
}

/* ECS skeleton shared by every audit line. */
static struct json_object *line_new(const char *action, uint64_t real_ns, uint64_t *seq)
{
	struct json_object *o = json_object_new_object(), *ev = json_object_new_object();
	struct json_object *sp = json_object_new_object();
	char ts[40];

	format_rfc3339_ns(ts, sizeof(ts), real_ns);
	json_object_object_add(o, "@timestamp", json_object_new_string(ts));
	json_object_object_add(ev, "kind", json_object_new_string("state"));
	json_object_object_add(ev, "action", json_object_new_string(action));
	json_object_object_add(ev, "sequence", json_object_new_uint64(++*seq));
	json_object_object_add(o, "event", ev);
	json_object_object_add(sp, "schema", json_object_new_int(1));
	json_object_object_add(o, "sockpulse", sp);
	return o;
}

static struct json_object *sub(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v))
		return v;
	v = json_object_new_object();
	json_object_object_add(o, key, v);
	return v;
}

static void put_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static void put_ms(struct json_object *o, const char *key, uint64_t ms)
{
	if (ms != KA_NEVER)
		put_u64(o, key, ms);
}

static void put_settings(struct json_object *o, const struct ka_settings *k)
{
	struct json_object *ka = json_object_new_object();

	json_object_object_add(ka, "enabled", json_object_new_boolean(k->enabled));
	put_u64(ka, "idle_ms", k->idle_ms);
	put_u64(ka, "interval_ms", k->intvl_ms);
	put_u64(ka, "probes", k->probes);
	if (k->user_timeout_ms)
		put_u64(ka, "user_timeout_ms", k->user_timeout_ms);
	json_object_object_add(ka, "source", json_object_new_string(ka_source(k)));
	json_object_object_add(o, "keepalive", ka);
}

static void put_suggestion(struct json_object *au, uint64_t worst, uint64_t target)
{
	struct json_object *s;
	struct ka_settings k;

	if (!target || worst <= target)
		return;
	ka_suggest(target, &k);
	s = json_object_new_object();
	put_u64(s, "idle_ms", k.idle_ms);
	put_u64(s, "interval_ms", k.intvl_ms);
	put_u64(s, "probes", k.probes);
	put_u64(s, "user_timeout_ms", k.user_timeout_ms);
	json_object_object_add(au, "suggested", s);
}

static void put_process(struct json_object *o, uint32_t pid, const char *comm)
{
	struct json_object *p;

	if (!pid)
		return;
	p = sub(o, "process");
	put_u64(p, "pid", pid);
	if (comm[0])
		json_object_object_add(
		    p, "name", json_object_new_string_len(comm, (int)strnlen(comm, SP_COMM_MAX)));
}

static void put_network(struct json_object *o, uint8_t dir, uint16_t family)
{
	struct json_object *n = sub(o, "network");
	const char *d = direction_name(dir);

	json_object_object_add(n, "transport", json_object_new_string("tcp"));
	if (family)
		json_object_object_add(
		    n, "type", json_object_new_string(family == AF_INET6 ? "ipv6" : "ipv4"));
	if (d)
		json_object_object_add(n, "direction", json_object_new_string(d));
}

static void emit_line(FILE *out, struct json_object *o)
{
	fprintf(out, "%s\n",
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

void audit_print_json(FILE *out, const struct audit *a, uint64_t real_ns, uint64_t *seq)
{
	for (size_t i = 0; i < a->n; i++) {
		const struct audit_row *r = &a->rows[i];
		struct json_object *o = line_new("keepalive-audit", real_ns, seq);
		struct json_object *sp = sub(o, "sockpulse"), *au = sub(sp, "audit");

		put_u64(sub(o, "destination"), "port", r->service_port);
		put_network(o, r->direction, 0);
		put_process(o, r->pid, r->comm);
		put_u64(au, "connections", r->conns);
		put_u64(au, "without_keepalive", r->without_keepalive);
		put_u64(au, "socket_options", r->socket_set);
		put_ms(au, "worst_detection_ms", r->worst_ms);
		put_ms(au, "best_detection_ms", r->best_ms);
		put_u64(au, "busy_detection_ms", r->busy_worst_ms);
		if (r->target_ms)
			put_u64(au, "target_ms", r->target_ms);
		put_suggestion(au, r->worst_ms, r->target_ms);
		put_settings(sp, &r->worst);
		if (r->without_keepalive && r->without_keepalive < r->conns) {
			/* a mix: the slowest of those that have keepalive, too */
			struct json_object *on = json_object_new_object();

			put_settings(on, &r->worst_on);
			json_object_object_add(au, "keepalive_on",
					       json_object_get(sub(on, "keepalive")));
			json_object_put(on);
			put_u64(au, "keepalive_on_detection_ms", r->worst_on_ms);
		}
		emit_line(out, o);
	}
}

static void put_endpoint(struct json_object *o, const char *key, const struct sp_addr *a,
			 uint16_t port)
{
	struct json_object *e = sub(o, key);
	char buf[SP_ADDR_STR_MAX];

	if (format_addr(buf, sizeof(buf), a))
		json_object_object_add(e, "ip", json_object_new_string(buf));
	if (port)
		put_u64(e, "port", port);
}

void audit_print_sock_json(FILE *out, const struct audit_sock *s, uint64_t target_ms,
			   uint64_t real_ns, uint64_t *seq)
{
	struct json_object *o = line_new("keepalive-audit-connection", real_ns, seq);
	struct json_object *sp = sub(o, "sockpulse"), *au = sub(sp, "audit");
	const struct sp_conn *c = &s->conn;

	put_endpoint(o, "source", &c->src, c->sport);
	put_endpoint(o, "destination", &c->dst, c->dport);
	put_network(o, c->direction, c->src.family);
	put_process(o, c->has_pid ? c->pid : 0, c->comm);
	if (c->cookie)
		put_u64(sp, "sock", c->cookie);
	if (c->netns)
		put_u64(sp, "netns", c->netns);
	put_settings(sp, &s->ka);
	put_ms(au, "idle_detection_ms", ka_idle_detect_ms(&s->ka));
	put_u64(au, "busy_detection_ms", ka_busy_detect_ms(&s->ka));
	put_u64(au, "last_recv_ms", s->last_recv_ms);
	if (target_ms)
		put_u64(au, "target_ms", target_ms);
	put_suggestion(au, ka_idle_detect_ms(&s->ka), target_ms);
	emit_line(out, o);
}

void audit_print_sock_text(FILE *out, const struct audit_sock *s, uint64_t target_ms)
{
	char src[SP_ADDR_STR_MAX], dst[SP_ADDR_STR_MAX], det[24], set[64], sug[128], proc[40];
	const struct sp_conn *c = &s->conn;

	format_addr(src, sizeof(src), &c->src);
	format_addr(dst, sizeof(dst), &c->dst);
	audit_fmt_ms(det, sizeof(det), ka_idle_detect_ms(&s->ka));
	settings_str(set, sizeof(set), &s->ka);
	suggest_str(sug, sizeof(sug), ka_idle_detect_ms(&s->ka), target_ms);
	if (c->has_pid)
		snprintf(proc, sizeof(proc), "%.15s[%u]", c->comm[0] ? c->comm : "?", c->pid);
	else
		snprintf(proc, sizeof(proc), "-");
	fprintf(out, "  %s:%u -> %s:%u %s %s detection %s keepalive %s %s\n", src, c->sport, dst,
		c->dport, direction_name(c->direction) ? direction_name(c->direction) : "-", proc,
		det, set, sug);
}
