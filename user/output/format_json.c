/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The JSON line (docs/EVENTS.md, the contract of `watch --json` and the agent's log): ECS-style
 * objects for the event, the connection and its owner, then the sockpulse object with the
 * action's own fields. Written key by key through the line writer (format_internal.h), no
 * printf and no locale: a setlocale() elsewhere in the process must not turn "0.5" into "0,5".
 */
#include <math.h>
#include <string.h>

#include "cgroup.h"
#include "format_internal.h"
#include "names.h"

#define JSON_DEPTH 5 /* depths 1..4 open at once: the line, sockpulse, stuck, its process */

/* A literal key and its length, known at compile time: no strlen per key. */
#define KEY(lit) "" lit, sizeof(lit) - 1

/*
 * The writer lives apart from the nesting state: a json never has its address taken outside the
 * inlined helpers, so the compiler keeps depth and first[] in registers and, where a line's shape
 * is fixed, folds the comma decisions away.
 */
struct json {
	struct wr *w;
	int depth;
	bool first[JSON_DEPTH];
};

SP_INLINE void j_key(struct json *j, const char *key, size_t n)
{
	bool comma = !j->first[j->depth];
	struct wr *w = j->w;
	char *p;

	j->first[j->depth] = false;
	/* One bound check for ,"key": */
	if (!wr_room(w, n + 4))
		return;
	p = w->p;
	if (comma)
		*p++ = ',';
	*p++ = '"';
	memcpy(p, key, n);
	p += n;
	p[0] = '"';
	p[1] = ':';
	w->p = p + 2;
}

/* Opens an object (as the value of @key, or the top level when @key is NULL). */
SP_INLINE void j_open(struct json *j, const char *key, size_t klen)
{
	if (j->depth + 1 >= JSON_DEPTH) {
		wr_fail(j->w); /* a nesting this file never writes: no line rather than a bad one */
		return;
	}
	if (key)
		j_key(j, key, klen);
	put_ch(j->w, '{');
	j->depth++;
	j->first[j->depth] = true;
}

SP_INLINE void j_close(struct json *j)
{
	put_ch(j->w, '}');
	j->depth--;
}

SP_INLINE void j_u64(struct json *j, const char *key, size_t klen, uint64_t v)
{
	j_key(j, key, klen);
	put_u64(j->w, v);
}

/* A value the code itself wrote, already valid JSON (literal, number, array). */
#define j_raw(j, k, lit) j_rawn((j), k, "" lit, sizeof(lit) - 1) /* k: KEY("...") */

SP_INLINE void j_rawn(struct json *j, const char *key, size_t klen, const char *raw, size_t n)
{
	j_key(j, key, klen);
	put(j->w, raw, n);
}

/* A name from the code's own tables ("established", "egress"): plain ASCII, nothing to escape. */
SP_INLINE void j_name(struct json *j, const char *key, size_t klen, const char *name)
{
	size_t n = strlen(name);
	struct wr *w = j->w;

	j_key(j, key, klen);
	if (!wr_room(w, n + 2))
		return;
	w->p[0] = '"';
	memcpy(w->p + 1, name, n);
	w->p[n + 1] = '"';
	w->p += n + 2;
}

/* Any string: escaped. */
static void j_str(struct json *j, const char *key, size_t klen, const char *s)
{
	j_key(j, key, klen);
	put_ch(j->w, '"');
	put_escaped(j->w, s, strlen(s));
	put_ch(j->w, '"');
}

/* A string of a known length: escaped. */
static void j_strn(struct json *j, const char *key, size_t klen, const char *s, size_t n)
{
	j_key(j, key, klen);
	put_ch(j->w, '"');
	put_escaped(j->w, s, n);
	put_ch(j->w, '"');
}

/* Who the socket belongs to, read from its cgroup path (cgroup.h); the path itself is in
 * sockpulse.cgroup. */
static void json_cgroup(struct json *j, const struct cg_attr *a)
{
	if (a->unit.len) {
		j_open(j, KEY("systemd"));
		j_strn(j, KEY("unit"), a->path + a->unit.off, a->unit.len);
		j_close(j);
	}
	if (a->container.len) {
		j_open(j, KEY("container"));
		j_strn(j, KEY("id"), a->path + a->container.off, a->container.len);
		if (a->runtime)
			j_name(j, KEY("runtime"), a->runtime);
		j_close(j);
	}
	if (a->kubernetes) {
		j_open(j, KEY("orchestrator"));
		j_raw(j, KEY("type"), "\"kubernetes\"");
		j_close(j);
		if (a->pod_uid[0]) {
			j_open(j, KEY("kubernetes"));
			j_open(j, KEY("pod"));
			j_name(j, KEY("uid"), a->pod_uid);
			j_close(j);
			j_close(j);
		}
	}
}

SP_INLINE void json_addr(struct json *j, const char *key, size_t klen, const struct sp_addr *a,
			 bool has_port, uint16_t port)
{
	const uint8_t *bytes;
	bool has_ip = addr_family(a, &bytes) != 0;

	if (!has_ip && !(has_port && port))
		return;
	j_open(j, key, klen);
	if (has_ip) {
		j_key(j, KEY("ip"));
		put_ch(j->w, '"');
		put_addr(j->w, a);
		put_ch(j->w, '"');
	}
	if (has_port && port)
		j_u64(j, KEY("port"), port);
	j_close(j);
}

/* network.type: 6 or 4 (a v4-mapped address counts as IPv4, as it is printed), 0 unknown. */
SP_INLINE int net_type(const struct sp_addr *a)
{
	const uint8_t *bytes;
	int af = addr_family(a, &bytes);

	return af == AF_INET6 ? 6 : af == AF_INET ? 4 : 0;
}

SP_INLINE void json_conn(struct json *j, const struct sp_event *ev)
{
	const struct sp_conn *c = &ev->conn;
	bool no_dst = ev->action == SP_ACT_SPIKE && ev->spike.host_wide;
	const char *dir;
	int type;

	json_addr(j, KEY("source"), &c->src, c->has_ports, c->sport);
	if (!no_dst)
		json_addr(j, KEY("destination"), &c->dst, c->has_ports, c->dport);

	type = net_type(&c->src);
	if (!type && !no_dst)
		type = net_type(&c->dst);
	dir = direction_name(c->direction);
	j_open(j, KEY("network"));
	j_raw(j, KEY("transport"), "\"tcp\"");
	if (type == 6)
		j_raw(j, KEY("type"), "\"ipv6\"");
	else if (type == 4)
		j_raw(j, KEY("type"), "\"ipv4\"");
	if (dir)
		j_name(j, KEY("direction"), dir);
	j_close(j);

	if (c->has_pid) {
		j_open(j, KEY("process"));
		j_u64(j, KEY("pid"), c->pid);
		if (c->comm[0]) {
			j_key(j, KEY("name"));
			put_ch(j->w, '"');
			put_escaped(j->w, c->comm, strnlen(c->comm, sizeof(c->comm)));
			put_ch(j->w, '"');
		}
		j_close(j);
	}
}

SP_INLINE void json_state_name(struct json *j, const char *key, size_t klen, unsigned int state)
{
	const char *name = tcp_state_name(state);

	if (name)
		j_name(j, key, klen, name);
}

/* sockpulse.activity: inbound traffic not yet reported. */
SP_INLINE void json_activity(struct json *j, uint64_t segments, uint64_t payload_bytes)
{
	j_open(j, KEY("activity"));
	j_u64(j, KEY("segments"), segments);
	j_u64(j, KEY("payload_bytes"), payload_bytes);
	j_close(j);
}

SP_INLINE void json_lease(struct json *j, const struct sp_event *ev)
{
	const char *name = lease_kind_name(ev->lease.kind);

	j_open(j, KEY("lease"));
	if (name)
		j_name(j, KEY("kind"), name);
	/* Silence and TTL describe a live lease; a closed or lost one has neither. */
	if (ev->action != SP_ACT_LEASE_CLOSED && ev->action != SP_ACT_LEASE_LOST) {
		j_u64(j, KEY("silent_ms"), ev->lease.silent_ms);
		j_u64(j, KEY("ttl_ms"), ev->lease.ttl_ms);
		if (ev->lease.untrusted)
			j_raw(j, KEY("untrusted"), "true");
	}
	j_close(j);
}

SP_INLINE void json_spike(struct json *j, const struct sp_event *ev)
{
	const char *name = failure_name(ev->spike.failure);

	j_open(j, KEY("spike"));
	j_u64(j, KEY("failures"), ev->spike.failures);
	j_u64(j, KEY("window_s"), ev->spike.window_s);
	if (isfinite(ev->spike.baseline_per_s)) {
		j_key(j, KEY("baseline_per_s"));
		put_double(j->w, ev->spike.baseline_per_s);
	}
	if (name)
		j_name(j, KEY("failure"), name);
	if (ev->spike.host_wide && ev->spike.destinations)
		j_u64(j, KEY("destinations"), ev->spike.destinations);
	j_close(j);
}

SP_INLINE void json_stuck(struct json *j, const struct sp_event *ev)
{
	j_open(j, KEY("stuck"));
	json_state_name(j, KEY("state"), ev->stuck.state);
	j_u64(j, KEY("age_ms"), ev->stuck.age_ms);
	j_u64(j, KEY("after_ms"), ev->stuck.after_ms);
	if (ev->stuck.seeded)
		j_raw(j, KEY("since_start"), "true");
	j_open(j, KEY("process"));
	j_u64(j, KEY("sockets"), ev->stuck.proc_stuck);
	j_name(j, KEY("trend"),
	       ev->stuck.trend > 0   ? "growing"
	       : ev->stuck.trend < 0 ? "shrinking"
				     : "steady");
	j_close(j);
	j_close(j);
}

SP_INLINE void json_ports(struct json *j, const struct sp_event *ev)
{
	j_open(j, KEY("ports"));
	j_u64(j, KEY("used"), ev->ports.used);
	j_u64(j, KEY("time_wait"), ev->ports.time_wait);
	j_u64(j, KEY("capacity"), ev->ports.capacity);
	j_key(j, KEY("used_ratio"));
	put_double(j->w, ev->ports.capacity ? (double)ev->ports.used / ev->ports.capacity : 0);
	j_u64(j, KEY("range_start"), ev->ports.range_lo);
	j_u64(j, KEY("range_end"), ev->ports.range_hi);
	j_key(j, KEY("connect_rate"));
	put_double(j->w, ev->ports.connect_rate);
	j_key(j, KEY("growth_rate"));
	put_double(j->w, ev->ports.growth_rate);
	if (ev->ports.eta_ms != UINT64_MAX)
		j_u64(j, KEY("exhaustion_ms"), ev->ports.eta_ms);
	j_close(j);
}

SP_INLINE void json_hold(struct json *j, const struct sp_event *ev)
{
	j_open(j, KEY("hold"));
	j_u64(j, KEY("grace_ms"), ev->hold.grace_ms);
	if (ev->hold.stall_ms)
		j_u64(j, KEY("stall_ms"), ev->hold.stall_ms);
	if (ev->hold.lost)
		j_u64(j, KEY("lost"), ev->hold.lost);
	j_close(j);
}

/* The line's own namespace: the socket's identity, then the fields of its action. */
SP_INLINE void json_sockpulse(struct json *j, const struct sp_event *ev,
			      const struct format_ctx *ctx, const struct cg_attr *cg)
{
	const char *name;

	j_open(j, KEY("sockpulse"));
	j_raw(j, KEY("schema"), "1");
	if (cg)
		j_strn(j, KEY("cgroup"), cg->path, cg->path_len);
	/* A JSON number, as docs/EVENTS.md says; consumers that parse numbers as doubles (jq < 1.7,
	 * JavaScript) round cookies above 2^53, so compare them as text there. */
	if (ev->has_conn && ev->conn.cookie)
		j_u64(j, KEY("sock"), ev->conn.cookie);
	if (ev->has_conn && ev->conn.netns)
		j_u64(j, KEY("netns"), ev->conn.netns);
	if (ctx && ctx->connect_hook)
		j_name(j, KEY("connect_hook"), ctx->connect_hook);
	if (ev->has_conn && ev->conn.has_pid &&
	    (name = owner_source_name(ev->conn.owner_source)) != NULL) {
		j_open(j, KEY("owner"));
		j_name(j, KEY("source"), name);
		j_close(j);
	}

	switch (ev->action) {
	case SP_ACT_STATE_CHANGE:
		json_state_name(j, KEY("old_state"), ev->state.old_state);
		json_state_name(j, KEY("new_state"), ev->state.new_state);
		if (ev->state.time_wait)
			j_raw(j, KEY("time_wait"), "true");
		if (ev->state.segments)
			json_activity(j, ev->state.segments, ev->state.payload_bytes);
		break;
	case SP_ACT_ACTIVITY:
		json_activity(j, ev->activity.segments, ev->activity.payload_bytes);
		break;
	case SP_ACT_CONNECT:
		name = ev->connect.success ? NULL : failure_name(ev->connect.failure);
		if (name)
			j_name(j, KEY("failure"), name);
		break;
	case SP_ACT_KEEPALIVE_TIMEOUT:
		j_open(j, KEY("keepalive"));
		j_u64(j, KEY("probes"), ev->keepalive.probes);
		j_close(j);
		break;
	case SP_ACT_RESET:
		name = reset_dir_name(ev->reset.direction);
		if (name) {
			j_open(j, KEY("reset"));
			j_name(j, KEY("direction"), name);
			j_close(j);
		}
		if (ev->reset.has_old_state)
			json_state_name(j, KEY("old_state"), ev->reset.old_state);
		break;
	case SP_ACT_LEASE_SUSPECT:
	case SP_ACT_LEASE_EXPIRED:
	case SP_ACT_LEASE_RECOVERED:
	case SP_ACT_LEASE_CLOSED:
	case SP_ACT_LEASE_LOST:
		json_lease(j, ev);
		break;
	case SP_ACT_SPIKE:
		json_spike(j, ev);
		break;
	case SP_ACT_TCP_STUCK:
		json_stuck(j, ev);
		break;
	case SP_ACT_PORT_RISK:
		json_ports(j, ev);
		break;
	case SP_ACT_LEASE_HOLD:
		json_hold(j, ev);
		break;
	case SP_ACT_EVENTS_LOST:
		j_open(j, KEY("lost"));
		j_u64(j, KEY("count"), ev->lost.count);
		if (ev->lost.kind)
			j_str(j, KEY("kind"), ev->lost.kind);
		j_close(j);
		break;
	default:
		break;
	}
	j_close(j);
}

/*
 * error.code: the errno's symbolic name; an errno without a name in the table is written as its
 * decimal number in a string ("error":{"code":"135"}): no real name is all digits, so a
 * consumer can tell the two apart, and nothing is invented.
 */
SP_INLINE void json_error(struct json *j, int err)
{
	const char *name = errno_name(err);

	if (err <= 0)
		return;
	j_open(j, KEY("error"));
	j_key(j, KEY("code"));
	put_ch(j->w, '"');
	if (name)
		put_str(j->w, name);
	else
		put_u64(j->w, (uint64_t)err);
	put_ch(j->w, '"');
	j_close(j);
}

/* event.type of an incident's opening or closing line. */
SP_INLINE void j_type(struct json *j, bool start)
{
	if (start)
		j_raw(j, KEY("type"), "[\"start\"]");
	else
		j_raw(j, KEY("type"), "[\"end\"]");
}

size_t format_json(char *buf, size_t cap, const struct sp_event *ev, uint64_t seq,
		   const struct format_ctx *ctx)
{
	const char *action = ev ? action_name(ev->action) : NULL;
	const struct cg_attr *cg = NULL;
	struct wr w;
	struct json j = { .w = &w, .depth = 0 };
	bool alert;

	if (!action)
		return 0;
	wr_init(&w, buf, cap);
	alert = ev->action == SP_ACT_LEASE_EXPIRED || ev->action == SP_ACT_SPIKE ||
		ev->action == SP_ACT_TCP_STUCK || ev->action == SP_ACT_PORT_RISK;

	j_open(&j, NULL, 0);
	j_key(&j, KEY("@timestamp"));
	put_ch(&w, '"');
	put_rfc3339(&w, ev->real_ns);
	put_ch(&w, '"');

	j_open(&j, KEY("event"));
	if (alert)
		j_raw(&j, KEY("kind"), "\"alert\"");
	else
		j_raw(&j, KEY("kind"), "\"event\"");
	j_name(&j, KEY("action"), action);
	j_u64(&j, KEY("sequence"), seq);
	if (ev->action == SP_ACT_SPIKE)
		j_type(&j, ev->spike.start);
	if (ev->action == SP_ACT_TCP_STUCK)
		j_type(&j, ev->stuck.start);
	if (ev->action == SP_ACT_PORT_RISK) {
		j_type(&j, ev->ports.start);
		if (ev->ports.forecast)
			j_raw(&j, KEY("reason"), "\"forecast\"");
		else
			j_raw(&j, KEY("reason"), "\"usage\"");
	}
	if (ev->action == SP_ACT_CONNECT) {
		if (ev->connect.success)
			j_raw(&j, KEY("outcome"), "\"success\"");
		else
			j_raw(&j, KEY("outcome"), "\"failure\"");
	}
	if (ev->action == SP_ACT_LEASE_LOST && ev->lease.reason)
		j_name(&j, KEY("reason"), ev->lease.reason);
	if (ev->action == SP_ACT_LEASE_HOLD && ev->hold.reason)
		j_name(&j, KEY("reason"), ev->hold.reason);
	if (ev->has_duration)
		j_u64(&j, KEY("duration"), ev->duration_ns);
	j_close(&j);

	if (ev->has_conn) {
		json_conn(&j, ev);
		if (ctx && ctx->cg && ev->conn.cgroup_id)
			cg = cg_lookup(ctx->cg, ev->conn.cgroup_id);
		if (cg)
			json_cgroup(&j, cg);
	}
	json_error(&j, ev->error);
	json_sockpulse(&j, ev, ctx, cg);
	j_close(&j);
	put_ch(&w, '\n');
	return wr_finish(&w);
}
