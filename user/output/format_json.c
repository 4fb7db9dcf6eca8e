/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The JSON line (docs/EVENTS.md, the contract of `watch --json` and the agent's log): ECS-style
 * objects for the event, the connection and its owner, then the sockpulse object with the
 * action's own fields. Written key by key with the pieces of format_internal.h, no printf and
 * no locale: a setlocale() elsewhere in the process must not turn "0.5" into "0,5".
 */
#include <math.h>
#include <string.h>

#include "cgroup.h"
#include "format_internal.h"
#include "names.h"
#include "sockpulse.h"
#include "util.h"

#define JSON_DEPTH 5 /* depths 1..4 open at once: the line, sockpulse, stuck, its process */

/*
 * The line has a cursor of its own rather than the shared writer (format_internal.h): a json
 * never has its address passed to a function that is not inlined, so the compiler keeps the
 * cursor, the depth and first[] in registers and, where a line's shape is fixed, folds the comma
 * decisions away. (The shared writer's cursor went to put_u64() and the like by address, so it
 * lived in memory, and a store through a char pointer may alias it: it was reloaded after every
 * piece.) Out-of-line pieces take the cursor and give it back (fmt_*() of format_internal.h).
 *
 * Room is checked once per piece, its value included. A check may ask for more than the piece
 * turns out to take (an address asks for its longest form), never for more than the line still
 * has to write after it: a check fails only when the line does not fit, as before.
 */
struct json {
	char *p;
	char *end; /* last byte, kept for the NUL; collapsed onto p on overflow */
	bool full;
	int depth;
	bool first[JSON_DEPTH];
};

/* Marks the line as failed: nothing more is written, the line is reported as 0. */
SP_INLINE void j_fail(struct json *j)
{
	j->full = true;
	j->end = j->p;
}

SP_INLINE bool j_room(struct json *j, size_t n)
{
	if (__builtin_expect((size_t)(j->end - j->p) >= n, 1))
		return true;
	j_fail(j);
	return false;
}

SP_INLINE void j_ch(struct json *j, char c)
{
	if (j_room(j, 1))
		*j->p++ = c;
}

/*
 * A literal key as ",\"key\":" and the length of "key", known at compile time: the key goes out
 * with one copy of a constant size, from the comma or from the quote after it.
 */
#define KEY(lit) ",\"" lit "\":", sizeof(lit) - 1

/* The key and room for @vmax bytes of its value; false (the line failed) when there is none. */
SP_INLINE bool j_key(struct json *j, const char *key, size_t n, size_t vmax)
{
	bool comma = !j->first[j->depth];

	j->first[j->depth] = false;
	if (!j_room(j, n + 4 + vmax))
		return false;
	memcpy(j->p, key + !comma, n + 3 + comma);
	j->p += n + 3 + comma;
	return true;
}

/* Opens an object (as the value of @key, or the top level when @key is NULL). */
SP_INLINE void j_open(struct json *j, const char *key, size_t klen)
{
	if (j->depth + 1 >= JSON_DEPTH) {
		j_fail(j); /* a nesting this file never writes: no line rather than a bad one */
		return;
	}
	if (!key)
		j_ch(j, '{');
	else if (j_key(j, key, klen, 1))
		*j->p++ = '{';
	j->depth++;
	j->first[j->depth] = true;
}

SP_INLINE void j_close(struct json *j)
{
	j_ch(j, '}');
	j->depth--;
}

SP_INLINE void j_u64(struct json *j, const char *key, size_t klen, uint64_t v)
{
	unsigned int n = dec_len(v);

	if (j_key(j, key, klen, n))
		j->p = fmt_dec(j->p, v, n);
}

/* A value the code itself wrote, already valid JSON (literal, number, array). */
#define j_raw(j, k, lit) j_rawn((j), k, "" lit, sizeof(lit) - 1) /* k: KEY("...") */

SP_INLINE void j_rawn(struct json *j, const char *key, size_t klen, const char *raw, size_t n)
{
	if (!j_key(j, key, klen, n))
		return;
	memcpy(j->p, raw, n);
	j->p += n;
}

/* A name from the code's own tables ("established", "egress"): plain ASCII, nothing to escape. */
SP_INLINE void j_namen(struct json *j, const char *key, size_t klen, const char *name, size_t n)
{
	char *p;

	if (!j_key(j, key, klen, n + 2))
		return;
	p = j->p;
	p[0] = '"';
	memcpy(p + 1, name, n);
	p[n + 1] = '"';
	j->p = p + n + 2;
}

SP_INLINE void j_name(struct json *j, const char *key, size_t klen, const char *name)
{
	j_namen(j, key, klen, name, strlen(name));
}

/*
 * The names of names.h's tables with their lengths, learnt on the first line: a strlen() per
 * name was a twentieth of the line's time. (The agent has one thread, as for fmt_rfc3339().)
 */
struct jname {
	const char *s; /* NULL: no name */
	size_t n;
};

static struct {
	bool ready;
	struct jname action[SP_ACT_MAX];
	struct jname state[SP_ST_MAX];
	struct jname dir[SP_DIR_MAX];
	struct jname failure[SP_FAIL_MAX];
	struct jname reset_dir[SP_RST_MAX];
	struct jname owner[SP_OWNER_SOURCE_MAX];
	struct jname lease_kind[SP_LEASE_KIND_MAX];
} jnames;

static void jnames_learn(struct jname *t, unsigned int count, const char *(*name)(unsigned int))
{
	for (unsigned int i = 0; i < count; i++) {
		t[i].s = name(i);
		t[i].n = t[i].s ? strlen(t[i].s) : 0;
	}
}

static void jnames_init(void)
{
	jnames_learn(jnames.action, ARRAY_SIZE(jnames.action), action_name);
	jnames_learn(jnames.state, ARRAY_SIZE(jnames.state), tcp_state_name);
	jnames_learn(jnames.dir, ARRAY_SIZE(jnames.dir), direction_name);
	jnames_learn(jnames.failure, ARRAY_SIZE(jnames.failure), failure_name);
	jnames_learn(jnames.reset_dir, ARRAY_SIZE(jnames.reset_dir), reset_dir_name);
	jnames_learn(jnames.owner, ARRAY_SIZE(jnames.owner), owner_source_name);
	jnames_learn(jnames.lease_kind, ARRAY_SIZE(jnames.lease_kind), lease_kind_name);
	jnames.ready = true;
}

/* Bound-checked as names.h's lookups are (their tables have these sizes): NULL when unnamed. */
SP_INLINE const struct jname *jname_at(const struct jname *t, size_t count, unsigned int i)
{
	return i < count && t[i].s ? &t[i] : NULL;
}

#define JNAME(table, i) jname_at(jnames.table, ARRAY_SIZE(jnames.table), (i))

/* j_name() of a JNAME(), when there is one. */
SP_INLINE void j_jname(struct json *j, const char *key, size_t klen, const struct jname *name)
{
	if (name)
		j_namen(j, key, klen, name->s, name->n);
}

/*
 * A piece written through the shared writer (format.c), on a writer of its own: the json's
 * address is not taken. j_wr_done() takes the cursor back.
 */
SP_INLINE struct wr j_wr(const struct json *j)
{
	return (struct wr){ .start = j->p, .p = j->p, .end = j->end, .full = j->full };
}

SP_INLINE void j_wr_done(struct json *j, const struct wr *w)
{
	j->p = w->p;
	if (w->full)
		j_fail(j);
}

/* A string body, escaped: unchecked where even six bytes per byte fit, the closing quote too. */
SP_INLINE void j_escaped(struct json *j, const char *s, size_t n)
{
	struct wr w;

	if (n < (size_t)(j->end - j->p) / 6) {
		j->p = fmt_escaped(j->p, s, n);
		*j->p++ = '"';
		return;
	}
	w = j_wr(j);
	put_escaped(&w, s, n);
	j_wr_done(j, &w);
	j_ch(j, '"');
}

/* A string of a known length: escaped. */
SP_INLINE void j_strn(struct json *j, const char *key, size_t klen, const char *s, size_t n)
{
	if (!j_key(j, key, klen, 2))
		return;
	*j->p++ = '"';
	j_escaped(j, s, n);
}

/* Any string: escaped. */
SP_INLINE void j_str(struct json *j, const char *key, size_t klen, const char *s)
{
	j_strn(j, key, klen, s, strlen(s));
}

SP_INLINE void j_double(struct json *j, const char *key, size_t klen, double v)
{
	struct wr w;

	if (!j_key(j, key, klen, 1))
		return;
	w = j_wr(j);
	put_double(&w, v);
	j_wr_done(j, &w);
}

/* Who the socket belongs to, read from its cgroup path (cgroup.h); the path itself is in
 * sockpulse.cgroup. */
SP_INLINE void json_cgroup(struct json *j, const struct cg_attr *a)
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
	/* The longest address, not this one: at least the rest of this object, "network" and
	 * "sockpulse" follow it, more than the difference. */
	if (has_ip && j_key(j, KEY("ip"), SP_ADDR_STR_MAX + 1)) {
		*j->p++ = '"';
		j->p = fmt_addr(j->p, a);
		*j->p++ = '"';
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
	const struct jname *dir;
	int type;

	json_addr(j, KEY("source"), &c->src, c->has_ports, c->sport);
	if (!no_dst)
		json_addr(j, KEY("destination"), &c->dst, c->has_ports, c->dport);

	type = net_type(&c->src);
	if (!type && !no_dst)
		type = net_type(&c->dst);
	dir = JNAME(dir, c->direction);
	j_open(j, KEY("network"));
	j_raw(j, KEY("transport"), "\"tcp\"");
	if (type == 6)
		j_raw(j, KEY("type"), "\"ipv6\"");
	else if (type == 4)
		j_raw(j, KEY("type"), "\"ipv4\"");
	j_jname(j, KEY("direction"), dir);
	j_close(j);

	if (c->has_pid) {
		j_open(j, KEY("process"));
		j_u64(j, KEY("pid"), c->pid);
		if (c->comm[0])
			j_strn(j, KEY("name"), c->comm, strnlen(c->comm, sizeof(c->comm)));
		j_close(j);
	}
}

SP_INLINE void json_state_name(struct json *j, const char *key, size_t klen, unsigned int state)
{
	j_jname(j, key, klen, JNAME(state, state));
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
	j_open(j, KEY("lease"));
	j_jname(j, KEY("kind"), JNAME(lease_kind, ev->lease.kind));
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
	j_open(j, KEY("spike"));
	j_u64(j, KEY("failures"), ev->spike.failures);
	j_u64(j, KEY("window_s"), ev->spike.window_s);
	if (isfinite(ev->spike.baseline_per_s))
		j_double(j, KEY("baseline_per_s"), ev->spike.baseline_per_s);
	j_jname(j, KEY("failure"), JNAME(failure, ev->spike.failure));
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
	j_double(j, KEY("used_ratio"),
		 ev->ports.capacity ? (double)ev->ports.used / ev->ports.capacity : 0);
	j_u64(j, KEY("range_start"), ev->ports.range_lo);
	j_u64(j, KEY("range_end"), ev->ports.range_hi);
	j_double(j, KEY("connect_rate"), ev->ports.connect_rate);
	j_double(j, KEY("growth_rate"), ev->ports.growth_rate);
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
	const struct jname *name;

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
	    (name = JNAME(owner, ev->conn.owner_source)) != NULL) {
		j_open(j, KEY("owner"));
		j_jname(j, KEY("source"), name);
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
		if (!ev->connect.success)
			j_jname(j, KEY("failure"), JNAME(failure, ev->connect.failure));
		break;
	case SP_ACT_KEEPALIVE_TIMEOUT:
		j_open(j, KEY("keepalive"));
		j_u64(j, KEY("probes"), ev->keepalive.probes);
		j_close(j);
		break;
	case SP_ACT_RESET:
		name = JNAME(reset_dir, ev->reset.direction);
		if (name) {
			j_open(j, KEY("reset"));
			j_jname(j, KEY("direction"), name);
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
	if (name) {
		j_name(j, KEY("code"), name);
	} else if (j_key(j, KEY("code"), dec_len((uint64_t)err) + 2)) {
		*j->p++ = '"';
		j->p = fmt_dec(j->p, (uint64_t)err, dec_len((uint64_t)err));
		*j->p++ = '"';
	}
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
	const struct jname *action;
	const struct cg_attr *cg = NULL;
	struct json j = { .depth = 0 };
	bool alert;
	char *end;

	if (!jnames.ready)
		jnames_init();
	action = ev ? JNAME(action, ev->action) : NULL;
	if (!action)
		return 0;
	/* as wr_init() */
	j.p = buf;
	j.end = buf && cap ? buf + cap - 1 : buf;
	j.full = !buf || !cap;
	alert = ev->action == SP_ACT_LEASE_EXPIRED || ev->action == SP_ACT_SPIKE ||
		ev->action == SP_ACT_TCP_STUCK || ev->action == SP_ACT_PORT_RISK;

	j_open(&j, NULL, 0);
	if (j_key(&j, KEY("@timestamp"), SP_RFC3339_LEN + 2)) {
		*j.p = '"';
		end = fmt_rfc3339(j.p + 1, ev->real_ns);
		if (!end) {
			j_fail(&j);
		} else {
			*end = '"';
			j.p = end + 1;
		}
	}

	j_open(&j, KEY("event"));
	if (alert)
		j_raw(&j, KEY("kind"), "\"alert\"");
	else
		j_raw(&j, KEY("kind"), "\"event\"");
	j_jname(&j, KEY("action"), action);
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
	j_ch(&j, '\n');
	if (j.full)
		return 0;
	*j.p = '\0';
	return (size_t)(j.p - buf);
}
