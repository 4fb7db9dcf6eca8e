/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Replay input: JSON lines -> events (see replay.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "names.h"
#include "cgroup.h"
#include "replay.h"
#include "sockpulse.h"

/* A field by dotted path: nested objects, flat dotted keys, or any mix of the two. */
static struct json_object *field(struct json_object *obj, const char *path)
{
	struct json_object *v;
	const char *dot;
	char head[64];

	if (!obj || !json_object_is_type(obj, json_type_object))
		return NULL;
	if (json_object_object_get_ex(obj, path, &v))
		return v;
	for (dot = strchr(path, '.'); dot; dot = strchr(dot + 1, '.')) {
		if ((size_t)(dot - path) >= sizeof(head))
			return NULL;
		memcpy(head, path, (size_t)(dot - path));
		head[dot - path] = '\0';
		if (json_object_object_get_ex(obj, head, &v) && (v = field(v, dot + 1)))
			return v;
	}
	return NULL;
}

static const char *str_field(struct json_object *root, const char *path)
{
	struct json_object *v = field(root, path);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Unsigned integer field: 1 present and valid, 0 absent, -1 present but not a valid number. */
static int u64_field(struct json_object *root, const char *path, uint64_t max, uint64_t *out)
{
	struct json_object *v = field(root, path);
	const char *s;
	char *end;

	if (!v)
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		/* json-c keeps integers above INT64_MAX as unsigned: ask for the matching view. */
		if (json_object_get_int64(v) < 0 && json_object_get_uint64(v) <= INT64_MAX)
			return -1;
		*out = json_object_get_uint64(v);
		/* json-c turns every number past 2^64 - 1 into 2^64 - 1: it cannot be trusted */
		if (*out == UINT64_MAX)
			return -1;
	} else if (json_object_is_type(v, json_type_string)) {
		/* Cookies may travel as text for consumers that read numbers as doubles. */
		s = json_object_get_string(v);
		if (*s < '0' || *s > '9')
			return -1;
		errno = 0;
		*out = strtoull(s, &end, 10);
		if (errno || *end)
			return -1;
	} else {
		return -1;
	}
	return *out <= max ? 1 : -1;
}

static int lookup_name(const char *s, const char *(*name)(unsigned int), unsigned int max)
{
	unsigned int i;

	if (!s)
		return -1;
	for (i = 0; i < max; i++) {
		const char *n = name(i);

		if (n && !strcmp(n, s))
			return (int)i;
	}
	return -1;
}

static int errno_from_name(const char *s)
{
	char *end;
	long v;
	int i;

	if (!s)
		return 0;
	for (i = 1; i < 4096; i++) {
		const char *n = errno_name(i);

		if (n && !strcmp(n, s))
			return i;
	}
	/* Unnamed errnos are written as decimal strings. */
	v = strtol(s, &end, 10);
	return *s && !*end && v > 0 && v < 4096 ? (int)v : 0;
}

static int parse_2(const char *p)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return -1;
	return (p[0] - '0') * 10 + (p[1] - '0');
}

/* RFC 3339: "2026-11-28T06:45:12.123456789Z" or with a "+hh:mm"/"-hh:mm" offset. */
static int parse_rfc3339(const char *s, uint64_t *ns)
{
	struct tm tm = { 0 };
	int64_t secs, off = 0;
	uint64_t frac = 0, scale = 1000000000ull;
	const char *p = s + 19;
	int year, v[5], i;
	time_t t;

	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -EINVAL;
	year = 0;
	for (i = 0; i < 4; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		year = year * 10 + (s[i] - '0');
	}
	v[0] = parse_2(s + 5);
	v[1] = parse_2(s + 8);
	v[2] = parse_2(s + 11);
	v[3] = parse_2(s + 14);
	v[4] = parse_2(s + 17);
	if (year < 1970 || v[0] < 1 || v[0] > 12 || v[1] < 1 || v[1] > 31 || v[2] < 0 ||
	    v[2] > 23 || v[3] < 0 || v[3] > 59 || v[4] < 0 || v[4] > 60)
		return -EINVAL;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && parse_2(p + 1) >= 0 && p[3] == ':' &&
		   parse_2(p + 4) >= 0) {
		off = (parse_2(p + 1) * 60 + parse_2(p + 4)) * 60;
		if (*p == '-')
			off = -off;
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	tm.tm_year = year - 1900;
	tm.tm_mon = v[0] - 1;
	tm.tm_mday = v[1];
	tm.tm_hour = v[2];
	tm.tm_min = v[3];
	tm.tm_sec = v[4];
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	secs = (int64_t)t - off;
	/* Up to UINT64_MAX ns exactly: watch writes that when the realtime stamp saturates. */
	if (secs < 0 || (uint64_t)secs > (UINT64_MAX - frac) / 1000000000ull)
		return -EINVAL;
	*ns = (uint64_t)secs * 1000000000ull + frac;
	return 0;
}

static int parse_addr(const char *s, struct sp_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->bytes) == 1) {
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a->bytes) == 1) {
		a->family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

/* Connection facts; -EINVAL when one is present but malformed. */
static int parse_conn(struct json_object *root, struct sp_event *ev)
{
	struct sp_conn *c = &ev->conn;
	const char *s;
	uint64_t v;
	int r;

	memset(c, 0, sizeof(*c));
	if ((s = str_field(root, "source.ip"))) {
		if (parse_addr(s, &c->src))
			return -EINVAL;
		ev->has_conn = true;
	}
	if ((s = str_field(root, "destination.ip"))) {
		if (parse_addr(s, &c->dst))
			return -EINVAL;
		ev->has_conn = true;
	}
	if ((r = u64_field(root, "source.port", 65535, &v)) < 0)
		return -EINVAL;
	if (r) {
		c->sport = (uint16_t)v;
		c->has_ports = true;
	}
	if ((r = u64_field(root, "destination.port", 65535, &v)) < 0)
		return -EINVAL;
	if (r) {
		c->dport = (uint16_t)v;
		c->has_ports = true;
	}
	if ((s = str_field(root, "network.direction"))) {
		r = lookup_name(s, direction_name, SP_DIR_MAX);
		if (r < 0)
			return -EINVAL;
		c->direction = (uint8_t)r;
	}
	if ((r = u64_field(root, "process.pid", UINT32_MAX, &v)) < 0)
		return -EINVAL;
	if (r) {
		c->has_pid = true;
		c->pid = (uint32_t)v;
	}
	if ((s = str_field(root, "sockpulse.owner.source"))) {
		r = lookup_name(s, owner_source_name, SP_OWNER_SOURCE_MAX);
		if (r < 0)
			return -EINVAL;
		c->owner_source = (uint8_t)r;
	}
	if ((s = str_field(root, "process.name"))) {
		strncpy(c->comm, s, sizeof(c->comm) - 1);
		c->comm[sizeof(c->comm) - 1] = '\0';
	}
	if ((r = u64_field(root, "sockpulse.sock", UINT64_MAX, &v)) < 0)
		return -EINVAL;
	if (r) {
		c->cookie = v;
		ev->has_conn = true;
	}
	if ((r = u64_field(root, "sockpulse.netns", UINT32_MAX, &v)) < 0)
		return -EINVAL;
	if (r)
		c->netns = (uint32_t)v;
	return 0;
}

static int state_field(struct json_object *root, const char *path, uint8_t *out, bool required)
{
	const char *s = str_field(root, path);
	int r;

	if (!s)
		return required ? -EINVAL : 0;
	r = lookup_name(s, tcp_state_name, SP_ST_MAX);
	if (r <= 0)
		return -EINVAL;
	*out = (uint8_t)r;
	return 1;
}

/* Static kind names, so the event does not point into the freed JSON tree. */
static const char *lost_kind(const char *s)
{
	int r = lookup_name(s, rec_type_name, SP_REC_TYPE_MAX);

	return r > 0 ? rec_type_name((unsigned int)r) : NULL;
}

static int parse_action(struct json_object *root, struct sp_event *ev)
{
	struct json_object *v;
	const char *s;
	uint64_t n;
	int r;

	switch (ev->action) {
	case SP_ACT_STATE_CHANGE:
		if (state_field(root, "sockpulse.new_state", &ev->state.new_state, true) < 0 ||
		    state_field(root, "sockpulse.old_state", &ev->state.old_state, false) < 0)
			return -EINVAL;
		v = field(root, "sockpulse.time_wait");
		ev->state.time_wait = v && json_object_get_boolean(v);
		if (u64_field(root, "sockpulse.activity.segments", UINT32_MAX, &n) > 0)
			ev->state.segments = (uint32_t)n;
		if (u64_field(root, "sockpulse.activity.payload_bytes", UINT64_MAX, &n) > 0)
			ev->state.payload_bytes = n;
		return 0;
	case SP_ACT_ACTIVITY:
		if (u64_field(root, "sockpulse.activity.segments", UINT32_MAX, &n) != 1)
			return -EINVAL;
		ev->activity.segments = (uint32_t)n;
		if (u64_field(root, "sockpulse.activity.payload_bytes", UINT64_MAX, &n) < 0)
			return -EINVAL;
		ev->activity.payload_bytes = field(root, "sockpulse.activity.payload_bytes") ? n : 0;
		return 0;
	case SP_ACT_CONNECT:
		s = str_field(root, "event.outcome");
		if (!s)
			return -EINVAL;
		if (!strcmp(s, "success")) {
			ev->connect.success = true;
			return 0;
		}
		if (strcmp(s, "failure"))
			return -EINVAL;
		r = lookup_name(str_field(root, "sockpulse.failure"), failure_name, SP_FAIL_MAX);
		if (r <= 0)
			return -EINVAL;
		ev->connect.failure = (uint8_t)r;
		return 0;
	case SP_ACT_KEEPALIVE_TIMEOUT:
		if (u64_field(root, "sockpulse.keepalive.probes", UINT32_MAX, &n) > 0)
			ev->keepalive.probes = (uint32_t)n;
		return 0;
	case SP_ACT_RETRANS_TIMEOUT:
		return 0;
	case SP_ACT_RESET:
		r = lookup_name(str_field(root, "sockpulse.reset.direction"), reset_dir_name,
				SP_RST_MAX);
		if (r <= 0)
			return -EINVAL;
		ev->reset.direction = (uint8_t)r;
		r = state_field(root, "sockpulse.old_state", &ev->reset.old_state, false);
		if (r < 0)
			return -EINVAL;
		ev->reset.has_old_state = r > 0;
		return 0;
	case SP_ACT_EVENTS_LOST:
		if (u64_field(root, "sockpulse.lost.count", UINT64_MAX, &n) != 1)
			return -EINVAL;
		ev->lost.count = n;
		ev->lost.kind = lost_kind(str_field(root, "sockpulse.lost.kind"));
		return 0;
	default:
		return -ENOENT;
	}
}

int replay_parse_line(const char *line, size_t len, struct sp_event *ev)
{
	return replay_parse_line_cg(line, len, ev, NULL);
}

int replay_parse_line_cg(const char *line, size_t len, struct sp_event *ev, struct cg_cache *cg)
{
	struct json_tokener *tok;
	struct json_object *root;
	const char *s;
	uint64_t n;
	int r, err = -EINVAL;

	memset(ev, 0, sizeof(*ev));
	if (len > INT32_MAX)
		return -EINVAL;
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, line, (int)len);
	/* Exactly one complete object, nothing after it but blanks. */
	if (!root || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(root, json_type_object))
		goto out;
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n')
			goto out;
	s = str_field(root, "@timestamp");
	if (!s || parse_rfc3339(s, &ev->mono_ns))
		goto out;
	ev->real_ns = ev->mono_ns;
	r = lookup_name(str_field(root, "event.action"), action_name, SP_ACT_MAX);
	if (r < 0) {
		/* A newer agent's action is not an error; a missing one is. */
		err = str_field(root, "event.action") ? -ENOENT : -EINVAL;
		goto out;
	}
	ev->action = (enum sp_action)r;
	if (parse_conn(root, ev))
		goto out;
	/* the attribution fields follow from the path: keep the path, the formatter rederives
	 * them (ids of the replay's own, cgroup.h) */
	if (cg && ev->has_conn && (s = str_field(root, "sockpulse.cgroup")) != NULL)
		ev->conn.cgroup_id = cg_cache_intern(cg, s);
	if ((r = u64_field(root, "event.duration", UINT64_MAX, &n)) < 0)
		goto out;
	if (r) {
		ev->has_duration = true;
		ev->duration_ns = n;
	}
	ev->error = errno_from_name(str_field(root, "error.code"));
	err = parse_action(root, ev);
out:
	json_object_put(root);
	json_tokener_free(tok);
	return err;
}

/*
 * One line of at most @cap bytes into @buf (without its '\n'); a longer one is read to its end
 * but not kept (*too_long), so memory stays bounded whatever the input. -1 at the end.
 */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len, bool *too_long)
{
	size_t n = 0;
	int c;

	*too_long = false;
	flockfile(f);
	while ((c = getc_unlocked(f)) != EOF && c != '\n') {
		if (n < cap)
			buf[n++] = (char)c;
		else
			*too_long = true;
	}
	funlockfile(f);
	*len = n;
	return c == EOF && !n && !*too_long ? -1 : 0;
}

int replay_stream(FILE *f, void (*fn)(void *ctx, const struct sp_event *ev), void *ctx,
		  struct replay_stats *st)
{
	return replay_stream_cg(f, fn, ctx, st, NULL);
}

int replay_stream_cg(FILE *f, void (*fn)(void *ctx, const struct sp_event *ev), void *ctx,
		     struct replay_stats *st, struct cg_cache *cg)
{
	struct replay_stats local;
	struct sp_event ev;
	char *line = malloc(REPLAY_LINE_MAX + 1);
	bool too_long;
	size_t len;
	int err = 0;

	if (!line)
		return -ENOMEM;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	errno = 0;
	while (read_line(f, line, REPLAY_LINE_MAX + 1, &len, &too_long) == 0) {
		int r;

		st->lines++;
		while (len && line[len - 1] == '\r')
			len--;
		if (!len && !too_long)
			continue;
		r = too_long || len > REPLAY_LINE_MAX ? -EINVAL
							 : replay_parse_line_cg(line, len, &ev, cg);
		if (r == 0) {
			st->events++;
			fn(ctx, &ev);
		} else if (r == -ENOENT) {
			st->skipped++;
		} else if (r == -ENOMEM) {
			err = -ENOMEM;
			break;
		} else {
			st->bad++;
			if (!st->first_bad)
				st->first_bad = st->lines;
		}
		errno = 0;
	}
	if (!err && ferror(f))
		err = errno ? -errno : -EIO;
	free(line);
	if (err)
		return err;
	return st->events + st->skipped ? 0 : -ENODATA;
}
