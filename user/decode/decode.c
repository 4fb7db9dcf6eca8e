/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Ring record -> normalized event. The record comes from the kernel side of a shared ABI that
 * may be built from another revision, so nothing in it is trusted: size, type, family and every
 * enum are checked before any of them indexes a table further down the pipeline.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "decode.h"
#include "sockpulse.h"
#include "util.h"

static const char *const decode_result_names[] = {
	[DECODE_OK] = "ok",
	[DECODE_SHORT] = "short",
	[DECODE_SIZE] = "size",
	[DECODE_TYPE] = "type",
	[DECODE_FIELD] = "field",
};
_Static_assert(ARRAY_SIZE(decode_result_names) == DECODE_RESULT_MAX,
	       "decode result table");

const char *decode_result_name(enum decode_result r)
{
	if ((unsigned int)r >= DECODE_RESULT_MAX)
		return NULL;
	return decode_result_names[r];
}

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Fills @a from a record address; IPv4-mapped IPv6 becomes IPv4, all-zero with port 0 absent. */
static void decode_addr(struct sp_addr *a, const __u8 *raw, __u16 family, __u16 port)
{
	static const uint8_t zero[16];

	memset(a, 0, sizeof(*a));
	if (family == AF_INET6 && !memcmp(raw, v4mapped_prefix, sizeof(v4mapped_prefix))) {
		a->family = AF_INET;
		memcpy(a->bytes, raw + 12, 4);
	} else if (family == AF_INET6) {
		a->family = AF_INET6;
		memcpy(a->bytes, raw, 16);
	} else {
		a->family = AF_INET;
		memcpy(a->bytes, raw, 4);
	}
	if (!port && !memcmp(a->bytes, zero, sizeof(zero)))
		a->family = 0;
}

static bool state_ok(unsigned int s, bool required)
{
	if (s >= SP_TCP_STATE_MAX)
		return false;
	return s != 0 || !required;
}

static enum decode_result check_fields(const struct sp_record *r)
{
	if (r->family != AF_INET && r->family != AF_INET6)
		return DECODE_FIELD;
	if (r->direction >= SP_DIR_MAX || r->failure >= SP_FAIL_MAX || r->reset_dir >= SP_RST_MAX)
		return DECODE_FIELD;
	/* Unused fields are zero, so the states are range-checked in every kind of record. */
	if (!state_ok(r->old_state, r->type == SP_REC_STATE))
		return DECODE_FIELD;
	if (!state_ok(r->new_state, r->type == SP_REC_STATE))
		return DECODE_FIELD;
	if (r->type == SP_REC_RESET) {
		if (r->reset_dir != SP_RST_RECEIVED && r->reset_dir != SP_RST_SENT)
			return DECODE_FIELD;
		if ((r->flags & SP_F_OLD_STATE) && !r->old_state)
			return DECODE_FIELD;
	}
	/*
	 * An errno is below the kernel's MAX_ERRNO (4095) either way round; anything else (INT_MIN
	 * included, which could not be negated below) is not one, and would not read back from
	 * the JSON line either (replay takes error.code up to 4095).
	 */
	if (r->error <= -4096 || r->error >= 4096)
		return DECODE_FIELD;
	/*
	 * No cookie, duration or byte count of a real socket reaches 2^64 - 1, and a line that
	 * carried it would not read back: json-c turns every larger number into that same value,
	 * so replay refuses it.
	 */
	if (r->cookie == UINT64_MAX || r->payload_bytes == UINT64_MAX ||
	    ((r->flags & SP_F_DURATION) && r->duration_ns == UINT64_MAX))
		return DECODE_FIELD;
	return DECODE_OK;
}

static void decode_conn(struct sp_conn *c, const struct sp_record *r)
{
	struct sp_addr local, remote;

	decode_addr(&local, r->laddr, r->family, r->lport);
	decode_addr(&remote, r->raddr, r->family, r->rport);
	memset(c, 0, sizeof(*c));
	c->direction = r->direction;
	c->has_ports = true;
	/* ECS source is the side that opened the connection. */
	if (r->direction == SP_DIR_INGRESS) {
		c->src = remote;
		c->sport = r->rport;
		c->dst = local;
		c->dport = r->lport;
	} else {
		c->src = local;
		c->sport = r->lport;
		c->dst = remote;
		c->dport = r->rport;
	}
	if (r->flags & SP_F_OWNER) {
		c->has_pid = true;
		c->owner_source = r->flags & SP_F_OWNER_LISTENER ? SP_OWNER_LISTENER : SP_OWNER_TASK;
		c->pid = r->pid;
		_Static_assert(sizeof(c->comm) <= sizeof(r->comm), "comm sizes");
		memcpy(c->comm, r->comm, sizeof(c->comm) - 1);
		c->comm[sizeof(c->comm) - 1] = '\0';
	}
	c->cookie = r->cookie;
	c->cgroup_id = r->cgroup_id;
	c->netns = r->netns;
}

enum decode_result decode_record(const void *data, size_t size, int64_t real_offset_ns,
				 struct sp_event *ev)
{
	struct sp_record r;
	enum decode_result res;
	__u32 type;

	if (size < sizeof(type))
		return DECODE_SHORT;
	/* Ring data is only 8-byte aligned by convention; copy instead of casting. */
	memcpy(&type, data, sizeof(type));
	if (type == SP_REC_NONE || type >= SP_REC_TYPE_MAX)
		return DECODE_TYPE;
	if (size < sizeof(r))
		return DECODE_SHORT;
	if (size != sizeof(r))
		return DECODE_SIZE;
	memcpy(&r, data, sizeof(r));
	res = check_fields(&r);
	if (res != DECODE_OK)
		return res;

	memset(ev, 0, sizeof(*ev));
	ev->mono_ns = r.ts_ns;
	if (real_offset_ns < 0 && (uint64_t)-(real_offset_ns + 1) >= r.ts_ns)
		ev->real_ns = 0;
	else if (real_offset_ns > 0 && r.ts_ns + (uint64_t)real_offset_ns < r.ts_ns)
		ev->real_ns = UINT64_MAX;
	else
		ev->real_ns = r.ts_ns + (uint64_t)real_offset_ns;
	ev->has_conn = true;
	decode_conn(&ev->conn, &r);
	if (r.flags & SP_F_DURATION) {
		ev->has_duration = true;
		ev->duration_ns = r.duration_ns;
	}
	/* The ABI says positive errno; accept a kernel-style negative one rather than drop it. */
	ev->error = r.error < 0 ? -r.error : r.error;

	switch (r.type) {
	case SP_REC_STATE:
		ev->action = SP_ACT_STATE_CHANGE;
		ev->state.old_state = r.old_state;
		ev->state.new_state = r.new_state;
		ev->state.time_wait = r.flags & SP_F_TIME_WAIT;
		ev->state.segments = r.segments;
		ev->state.payload_bytes = r.payload_bytes;
		break;
	case SP_REC_CONNECT:
		ev->action = SP_ACT_CONNECT;
		ev->connect.success = r.failure == SP_FAIL_NONE;
		ev->connect.failure = r.failure;
		break;
	case SP_REC_KEEPALIVE_TIMEOUT:
		ev->action = SP_ACT_KEEPALIVE_TIMEOUT;
		ev->keepalive.probes = r.probes;
		/* The kind itself means ETIMEDOUT (docs/EVENTS.md requires error.code). */
		if (!ev->error)
			ev->error = ETIMEDOUT;
		break;
	case SP_REC_RETRANS_TIMEOUT:
		ev->action = SP_ACT_RETRANS_TIMEOUT;
		if (!ev->error)
			ev->error = ETIMEDOUT;
		break;
	case SP_REC_RESET:
		ev->action = SP_ACT_RESET;
		ev->reset.direction = r.reset_dir;
		ev->reset.has_old_state = r.flags & SP_F_OLD_STATE;
		ev->reset.old_state = ev->reset.has_old_state ? r.old_state : 0;
		break;
	case SP_REC_ACTIVITY:
		ev->action = SP_ACT_ACTIVITY;
		ev->activity.segments = r.segments;
		ev->activity.payload_bytes = r.payload_bytes;
		break;
	default:
		return DECODE_TYPE; /* unreachable: checked above */
	}
	return DECODE_OK;
}
