/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Replay: JSON lines back into events (round trip through format_json), bad lines, determinism. */
#define _GNU_SOURCE /* fopencookie */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

#include <cmocka.h>

#include "cgroup.h"
#include "engine.h"
#include "format.h"
#include "prng.h"
#include "replay.h"
#include "sockpulse.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define TS0 1795847112123456789ull /* 2026-11-28T06:25:12.123456789Z */

static struct sp_conn mkconn(int family, uint64_t cookie, uint8_t dir)
{
	struct sp_conn c = { 0 };

	c.src.family = c.dst.family = (uint16_t)family;
	if (family == AF_INET) {
		inet_pton(AF_INET, "10.0.0.1", c.src.bytes);
		inet_pton(AF_INET, "10.0.0.2", c.dst.bytes);
	} else {
		inet_pton(AF_INET6, "fd00::1", c.src.bytes);
		inet_pton(AF_INET6, "fd00::2", c.dst.bytes);
	}
	c.sport = 43210;
	c.dport = 443;
	c.has_ports = true;
	c.direction = dir;
	c.has_pid = true;
	c.pid = 4242;
	strcpy(c.comm, "client \"x\"");
	c.cookie = cookie;
	c.netns = 4026531840u;
	return c;
}

static void roundtrip(const struct sp_event *in, struct sp_event *out)
{
	char buf[SP_LINE_MAX];
	size_t n = format_json(buf, sizeof(buf), in, 1, NULL);

	assert_true(n > 0);
	assert_int_equal(replay_parse_line(buf, n, out), 0);
	assert_int_equal(out->action, in->action);
	assert_int_equal(out->mono_ns, in->real_ns);
	assert_int_equal(out->real_ns, in->real_ns);
	assert_int_equal(out->has_conn, in->has_conn);
	if (in->has_conn)
		assert_memory_equal(&out->conn, &in->conn, sizeof(in->conn));
	assert_int_equal(out->has_duration, in->has_duration);
	assert_int_equal(out->duration_ns, in->duration_ns);
	assert_int_equal(out->error, in->error);
}

/* Every engine input survives format_json -> replay_parse_line. */
static void test_roundtrip(void **state)
{
	struct sp_event in, out;

	memset(&in, 0, sizeof(in));
	in.action = SP_ACT_STATE_CHANGE;
	in.real_ns = TS0;
	in.has_conn = true;
	in.conn = mkconn(AF_INET, 12345678901234567890ull, SP_DIR_EGRESS);
	in.state.old_state = SP_ST_ESTABLISHED;
	in.state.new_state = SP_ST_FIN_WAIT1;
	in.state.segments = 3;
	in.state.payload_bytes = 1200;
	in.has_duration = true;
	in.duration_ns = 123456789;
	roundtrip(&in, &out);
	assert_int_equal(out.state.old_state, SP_ST_ESTABLISHED);
	assert_int_equal(out.state.new_state, SP_ST_FIN_WAIT1);
	assert_int_equal(out.state.segments, 3);
	assert_int_equal(out.state.payload_bytes, 1200);

	in.conn = mkconn(AF_INET6, 7, SP_DIR_INGRESS);
	in.state.old_state = SP_ST_FIN_WAIT2;
	in.state.new_state = SP_ST_CLOSE;
	in.state.time_wait = true;
	in.state.segments = 0;
	in.state.payload_bytes = 0;
	roundtrip(&in, &out);
	assert_true(out.state.time_wait);

	memset(&in, 0, sizeof(in));
	in.action = SP_ACT_ACTIVITY;
	in.real_ns = TS0 + 1;
	in.has_conn = true;
	in.conn = mkconn(AF_INET, 9, SP_DIR_EGRESS);
	in.activity.segments = 17;
	in.activity.payload_bytes = 9000;
	roundtrip(&in, &out);
	assert_int_equal(out.activity.segments, 17);
	assert_int_equal(out.activity.payload_bytes, 9000);

	memset(&in, 0, sizeof(in));
	in.action = SP_ACT_CONNECT;
	in.real_ns = TS0 + 2;
	in.has_conn = true;
	in.conn = mkconn(AF_INET, 10, SP_DIR_EGRESS);
	in.connect.failure = SP_FAIL_REFUSED;
	in.error = ECONNREFUSED;
	in.has_duration = true;
	in.duration_ns = 250000;
	roundtrip(&in, &out);
	assert_false(out.connect.success);
	assert_int_equal(out.connect.failure, SP_FAIL_REFUSED);
	in.connect.success = true;
	in.connect.failure = SP_FAIL_NONE;
	in.error = 0;
	roundtrip(&in, &out);
	assert_true(out.connect.success);

	memset(&in, 0, sizeof(in));
	in.action = SP_ACT_KEEPALIVE_TIMEOUT;
	in.real_ns = TS0 + 3;
	in.has_conn = true;
	in.conn = mkconn(AF_INET, 11, SP_DIR_EGRESS);
	in.keepalive.probes = 2;
	in.error = ETIMEDOUT;
	roundtrip(&in, &out);
	assert_int_equal(out.keepalive.probes, 2);

	in.action = SP_ACT_RETRANS_TIMEOUT;
	in.keepalive.probes = 0;
	roundtrip(&in, &out);

	memset(&in, 0, sizeof(in));
	in.action = SP_ACT_RESET;
	in.real_ns = TS0 + 4;
	in.has_conn = true;
	in.conn = mkconn(AF_INET, 12, SP_DIR_INGRESS);
	in.reset.direction = SP_RST_SENT;
	in.reset.has_old_state = true;
	in.reset.old_state = SP_ST_ESTABLISHED;
	roundtrip(&in, &out);
	assert_int_equal(out.reset.direction, SP_RST_SENT);
	assert_true(out.reset.has_old_state);
	assert_int_equal(out.reset.old_state, SP_ST_ESTABLISHED);

	memset(&in, 0, sizeof(in));
	in.action = SP_ACT_EVENTS_LOST;
	in.real_ns = TS0 + 5;
	in.lost.count = 99;
	in.lost.kind = "activity";
	roundtrip(&in, &out);
	assert_int_equal(out.lost.count, 99);
	assert_string_equal(out.lost.kind, "activity");
}

static int parse(const char *line)
{
	struct sp_event ev;

	return replay_parse_line(line, strlen(line), &ev);
}

/* Flat dotted keys, offsets, and what counts as bad or merely not an input. */
static void test_lines(void **state)
{
	struct sp_event ev;
	const char *flat = "{\"@timestamp\":\"2026-11-28T07:25:12.5+01:00\",\"event.action\":"
			   "\"tcp-activity\",\"sockpulse.sock\":\"42\",\"sockpulse.activity\":"
			   "{\"segments\":1,\"payload_bytes\":0},\"destination.ip\":\"10.0.0.2\"}";

	assert_int_equal(replay_parse_line(flat, strlen(flat), &ev), 0);
	assert_int_equal(ev.action, SP_ACT_ACTIVITY);
	assert_int_equal(ev.mono_ns, 1795847112500000000ull);
	assert_int_equal(ev.conn.cookie, 42);
	assert_int_equal(ev.conn.dst.family, AF_INET);

	/* Not inputs: the engine's own lines and unknown actions. */
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"lease-expired\"}}"),
			 -ENOENT);
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"tcp-something-new\"}}"),
			 -ENOENT);
	/* Bad. */
	assert_int_equal(parse("not json"), -EINVAL);
	assert_int_equal(parse("[1,2]"), -EINVAL);
	assert_int_equal(parse("{\"event\":{\"action\":\"tcp-activity\"}}"), -EINVAL);
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\"}"), -EINVAL);
	assert_int_equal(parse("{\"@timestamp\":\"2026-13-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"tcp-retransmit-timeout\"}}"),
			 -EINVAL);
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28 06:25:12\",\"event\":{\"action\":"
			       "\"tcp-retransmit-timeout\"}}"),
			 -EINVAL);
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"tcp-retransmit-timeout\"}} trailing"),
			 -EINVAL);
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"tcp-retransmit-timeout\"},\"source\":{\"ip\":\"10.0.0.300\"}}"),
			 -EINVAL);
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"tcp-retransmit-timeout\"},\"source\":{\"port\":70000}}"),
			 -EINVAL);
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"tcp-retransmit-timeout\"},\"sockpulse\":{\"sock\":-1}}"),
			 -EINVAL);
	/* json-c saturates numbers past 2^64 - 1: 2^64 must not pass for a cookie or a duration */
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"tcp-retransmit-timeout\"},\"sockpulse\":{\"sock\":"
			       "18446744073709551616}}"),
			 -EINVAL);
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"tcp-retransmit-timeout\",\"duration\":18446744073709551616}}"),
			 -EINVAL);
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"tcp-retransmit-timeout\",\"duration\":18446744073709551614}}"),
			 0);
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"tcp-state-change\"},\"sockpulse\":{\"new_state\":\"bogus\"}}"),
			 -EINVAL);
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"tcp-connect\",\"outcome\":\"failure\"}}"),
			 -EINVAL);
	assert_int_equal(parse("{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			       "\"tcp-retransmit-timeout\"}}"),
			 0);
}

static void count_cb(void *ctx, const struct sp_event *ev)
{
	(*(unsigned int *)ctx)++;
	(void)ev;
}

static int stream_text(const char *text, struct replay_stats *st, unsigned int *n)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int r;

	assert_non_null(f);
	*n = 0;
	r = replay_stream(f, count_cb, n, st);
	fclose(f);
	return r;
}

/*
 * fuzz_decode found watch writing "2554-07-21T23:34:33.709551615Z" (a realtime stamp saturated at
 * UINT64_MAX ns) that replay refused: the last representable second must read back whole.
 */
static void test_timestamp_limit(void **state)
{
	struct sp_event ev = { 0 }, out;

	ev.action = SP_ACT_RETRANS_TIMEOUT;
	ev.real_ns = UINT64_MAX;
	roundtrip(&ev, &out);
	ev.real_ns = UINT64_MAX - 709551615ull; /* the first ns of that second */
	roundtrip(&ev, &out);
	assert_int_equal(parse("{\"@timestamp\":\"2554-07-21T23:34:33.709551616Z\",\"event\":"
			       "{\"action\":\"tcp-retransmit-timeout\"}}"),
			 -EINVAL);
	assert_int_equal(parse("{\"@timestamp\":\"2554-07-21T23:34:34Z\",\"event\":"
			       "{\"action\":\"tcp-retransmit-timeout\"}}"),
			 -EINVAL);
}

static void test_stream_counts(void **state)
{
	const char *ok = "{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			 "\"tcp-retransmit-timeout\"}}";
	const char *skip = "{\"@timestamp\":\"2026-11-28T06:25:13Z\",\"event\":{\"action\":"
			   "\"lease-closed\"}}";
	struct replay_stats st;
	unsigned int n;
	char text[1024];

	snprintf(text, sizeof(text), "%s\n\ngarbage\n%s\r\n{\"@timestamp\":1}\n%s", ok, skip, ok);
	assert_int_equal(stream_text(text, &st, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(st.lines, 6);
	assert_int_equal(st.events, 2);
	assert_int_equal(st.skipped, 1);
	assert_int_equal(st.bad, 2);
	assert_int_equal(st.first_bad, 3);

	/* Only engine lines: valid, nothing to feed. */
	assert_int_equal(stream_text(skip, &st, &n), 0);
	assert_int_equal(n, 0);
	/* Nothing valid at all. */
	assert_int_equal(stream_text("garbage\n{}\n", &st, &n), -ENODATA);
	assert_int_equal(st.bad, 2);
	assert_int_equal(stream_text("", &st, &n), -ENODATA);
}

/* A line past REPLAY_LINE_MAX is bad, is never kept whole in memory, and the next line counts. */
static void test_line_bound(void **state)
{
	const char *ok = "{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
			 "\"tcp-retransmit-timeout\"}}";
	size_t big = 4 * REPLAY_LINE_MAX, n0 = strlen(ok);
	char *text = malloc(big + 4 * n0 + 64);
	struct replay_stats st;
	unsigned int n;
	size_t off;

	assert_non_null(text);
	off = (size_t)sprintf(text, "%s\n{\"x\":\"", ok);
	memset(text + off, 'a', big);
	off += big;
	off += (size_t)sprintf(text + off, "\"}\n%s\n", ok);
	assert_int_equal(stream_text(text, &st, &n), 0);
	assert_int_equal(st.lines, 3);
	assert_int_equal(n, 2);
	assert_int_equal(st.bad, 1);
	assert_int_equal(st.first_bad, 2);
	/* exactly at the limit is fine; a byte more is not */
	memset(text, ' ', REPLAY_LINE_MAX);
	memcpy(text + REPLAY_LINE_MAX - n0, ok, n0);
	text[REPLAY_LINE_MAX] = '\0';
	assert_int_equal(stream_text(text, &st, &n), 0);
	assert_int_equal(n, 1);
	memset(text, ' ', REPLAY_LINE_MAX + 1);
	memcpy(text + REPLAY_LINE_MAX + 1 - n0, ok, n0);
	text[REPLAY_LINE_MAX + 1] = '\0';
	assert_int_equal(stream_text(text, &st, &n), -ENODATA);
	assert_int_equal(st.bad, 1);
	free(text);
}

/* A 32 MiB line from a reader that notes the heap once the line has been handed over. */
struct gen {
	size_t left;
	const char *tail;
	size_t tail_off;
	size_t heap_at_end;
};

static size_t heap_now(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static ssize_t gen_read(void *cookie, char *buf, size_t size)
{
	struct gen *g = cookie;
	size_t n;

	if (g->left) {
		n = size < g->left ? size : g->left;
		memset(buf, 'a', n);
		g->left -= n;
		return (ssize_t)n;
	}
	if (!g->tail_off)
		g->heap_at_end = heap_now();
	n = strlen(g->tail + g->tail_off);
	n = n < size ? n : size;
	memcpy(buf, g->tail + g->tail_off, n);
	g->tail_off += n;
	return (ssize_t)n;
}

static void test_line_memory_bounded(void **state)
{
	struct gen g = { .left = 32u << 20,
			 .tail = "\n{\"@timestamp\":\"2026-11-28T06:25:12Z\",\"event\":{\"action\":"
				 "\"tcp-retransmit-timeout\"}}\n" };
	cookie_io_functions_t io = { .read = gen_read };
	struct replay_stats st;
	size_t before = heap_now();
	unsigned int n = 0;
	FILE *f = fopencookie(&g, "r", io);

	assert_non_null(f);
	assert_int_equal(replay_stream(f, count_cb, &n, &st), 0);
	fclose(f);
	assert_int_equal(n, 1);
	assert_int_equal(st.bad, 1);
	/* the long line was never held: the heap grew by far less than it (0 under ASan) */
	if (g.heap_at_end > before && g.heap_at_end - before > (4u << 20))
		fail_msg("heap grew by %zu bytes while reading a 32 MiB line",
			 g.heap_at_end - before);
}

/* ---- determinism: a synthetic log replayed twice, and against the live path ------------ */

struct out {
	char *buf;
	size_t len, cap;
	uint64_t seq;
	unsigned int leases, spikes;
};

static void out_emit(void *ctx, const struct sp_event *ev)
{
	struct out *o = ctx;
	struct sp_event copy = *ev;
	size_t n;

	assert_int_equal(ev->real_ns, 0);
	copy.real_ns = copy.mono_ns; /* replay: the log's clock is the wall clock */
	if (o->len + SP_LINE_MAX > o->cap) {
		o->cap = o->cap * 2 + SP_LINE_MAX;
		o->buf = realloc(o->buf, o->cap);
		assert_non_null(o->buf);
	}
	n = format_json(o->buf + o->len, o->cap - o->len, &copy, ++o->seq, NULL);
	assert_true(n > 0);
	o->len += n;
	if (ev->action == SP_ACT_SPIKE)
		o->spikes++;
	else
		o->leases++;
}

static void out_feed(void *ctx, const struct sp_event *ev)
{
	engine_feed(ctx, ev);
}

/* A seeded mix: connections that talk, go quiet, close, reset; a refused-connect burst. */
static char *make_log(size_t *len, struct sp_event **evs, size_t *nev)
{
	size_t cap = 8 << 20, n = 0, ecap = 8192;
	char *log = malloc(cap);
	struct sp_event *all = malloc(ecap * sizeof(*all));
	uint64_t seed = 99, t = TS0, seq = 0;
	uint64_t c;

	assert_non_null(log);
	assert_non_null(all);
	*nev = 0;
#define PUSH(ev)                                                                          \
	do {                                                                              \
		assert_true(*nev < ecap && n + SP_LINE_MAX < cap);                         \
		all[(*nev)++] = (ev);                                                      \
		n += format_json(log + n, cap - n, &(ev), ++seq, NULL);                    \
	} while (0)
	for (c = 1; c <= 40; c++) {
		struct sp_event ev = { .action = SP_ACT_STATE_CHANGE, .has_conn = true };

		ev.conn = mkconn(c % 3 ? AF_INET : AF_INET6, c, c % 2 ? SP_DIR_EGRESS : SP_DIR_INGRESS);
		ev.conn.sport = (uint16_t)(40000 + c);
		ev.state.old_state = SP_ST_SYN_SENT;
		ev.state.new_state = SP_ST_ESTABLISHED;
		t += prng_below(&seed, 200 * MS);
		ev.real_ns = ev.mono_ns = t;
		PUSH(ev);
	}
	for (int round = 0; round < 120; round++) {
		t += 1 * SEC + prng_below(&seed, 100 * MS);
		for (c = 1; c <= 40; c++) {
			struct sp_event ev = { .action = SP_ACT_ACTIVITY, .has_conn = true };

			/* 1..10 talk throughout; 11..20 stop talking data at 30 s; 21..30 vanish
			 * at 60 s; 31..40 close or reset at 90 s. */
			if (c > 20 && c <= 30 && round > 60)
				continue;
			if (c > 30 && round > 90)
				continue;
			if (prng_below(&seed, 4) == 0)
				continue;
			ev.conn = mkconn(c % 3 ? AF_INET : AF_INET6, c,
					 c % 2 ? SP_DIR_EGRESS : SP_DIR_INGRESS);
			ev.conn.sport = (uint16_t)(40000 + c);
			ev.activity.segments = 1 + (uint32_t)prng_below(&seed, 5);
			ev.activity.payload_bytes = c > 10 && c <= 20 && round > 30 ? 0 : 100;
			ev.real_ns = ev.mono_ns = t + c * MS;
			PUSH(ev);
		}
		if (round == 91) {
			for (c = 31; c <= 40; c++) {
				struct sp_event ev = { .has_conn = true };

				ev.conn = mkconn(AF_INET, c, c % 2 ? SP_DIR_EGRESS : SP_DIR_INGRESS);
				ev.conn.sport = (uint16_t)(40000 + c);
				ev.real_ns = ev.mono_ns = t + 100 * MS + c * MS;
				if (c % 2) {
					ev.action = SP_ACT_RESET;
					ev.reset.direction = SP_RST_RECEIVED;
				} else {
					ev.action = SP_ACT_STATE_CHANGE;
					ev.state.old_state = SP_ST_ESTABLISHED;
					ev.state.new_state = SP_ST_CLOSE_WAIT;
				}
				PUSH(ev);
			}
		}
		if (round >= 100 && round < 106) {
			for (int k = 0; k < 10; k++) {
				struct sp_event ev = { .action = SP_ACT_CONNECT, .has_conn = true };

				ev.conn = mkconn(AF_INET, 0, SP_DIR_EGRESS);
				ev.conn.cookie = 0;
				ev.connect.failure = SP_FAIL_REFUSED;
				ev.error = ECONNREFUSED;
				ev.real_ns = ev.mono_ns = t + (uint64_t)k * 100 * MS;
				PUSH(ev);
			}
		}
	}
#undef PUSH
	*len = n;
	*evs = all;
	return log;
}

static void run_replay(const char *log, size_t len, struct out *o)
{
	struct engine_config cfg;
	struct replay_stats st;
	struct engine *e;
	FILE *f = fmemopen((void *)log, len, "r");

	engine_config_default(&cfg);
	cfg.stall_ns = 0;
	assert_int_equal(engine_parse_lease_ttl(&cfg, "20s"), 0);
	memset(o, 0, sizeof(*o));
	e = engine_new(&cfg, out_emit, o);
	assert_non_null(e);
	assert_int_equal(replay_stream(f, out_feed, e, &st), 0);
	assert_int_equal(st.bad, 0);
	fclose(f);
	engine_free(e);
}

struct cg_out {
	struct format_ctx *ctx;
	char buf[4 * SP_LINE_MAX];
	size_t len;
};

static void cg_emit(void *p, const struct sp_event *ev)
{
	struct cg_out *o = p;
	struct sp_event copy = *ev;

	copy.real_ns = copy.mono_ns;
	if (o->len + SP_LINE_MAX < sizeof(o->buf))
		o->len += format_json(o->buf + o->len, sizeof(o->buf) - o->len, &copy, 1, o->ctx);
}

/*
 * The attribution survives a replay: the live lines' cgroup path is read back, and the engine's
 * own lines (a lease the replay makes) carry it again.
 */
static void test_cgroup_kept(void **state)
{
	static const char path[] = "/system.slice/docker-"
				   "4f1c7e2d9a8b6c5d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"
				   ".scope";
	struct cg_cache_config cc = { .capacity = 8 };
	struct cg_cache *live = cg_cache_new(&cc), *back = cg_cache_new(&cc);
	struct format_ctx lctx = { .cg = live }, rctx = { .cg = back };
	struct cg_out o = { .ctx = &rctx };
	struct engine_config cfg;
	struct engine *e;
	uint8_t states[][2] = { { SP_ST_CLOSE, SP_ST_SYN_SENT },
				{ SP_ST_SYN_SENT, SP_ST_ESTABLISHED } };

	assert_non_null(live);
	assert_non_null(back);
	assert_int_equal(cg_cache_add(live, 4242, path), 1);
	engine_config_default(&cfg);
	cfg.stall_ns = 0;
	assert_int_equal(engine_parse_lease_ttl(&cfg, "20s"), 0);
	e = engine_new(&cfg, cg_emit, &o);
	assert_non_null(e);
	for (size_t i = 0; i < 2; i++) {
		struct sp_event ev = { .action = SP_ACT_STATE_CHANGE, .has_conn = true }, in;
		char line[SP_LINE_MAX], again[SP_LINE_MAX];
		size_t n;

		ev.conn = mkconn(AF_INET, 777, SP_DIR_EGRESS);
		ev.conn.cgroup_id = 4242;
		ev.real_ns = ev.mono_ns = TS0 + i * SEC;
		ev.state.old_state = states[i][0];
		ev.state.new_state = states[i][1];
		n = format_json(line, sizeof(line), &ev, 1, &lctx);
		assert_non_null(strstr(line, "\"container\":{\"id\":\"4f1c7e2d9a8b"));
		assert_int_equal(replay_parse_line_cg(line, n, &in, back), 0);
		assert_true(in.conn.cgroup_id != 0);
		/* formatted again from the replayed event: the same line */
		assert_int_equal(format_json(again, sizeof(again), &in, 1, &rctx), n);
		assert_string_equal(again, line);
		engine_feed(e, &in);
	}
	engine_tick(e, TS0 + 60 * SEC); /* silent past the TTL */
	engine_free(e);
	assert_non_null(strstr(o.buf, "\"lease-expired\""));
	assert_non_null(strstr(o.buf, "\"container\":{\"id\":\"4f1c7e2d9a8b"));
	assert_non_null(strstr(o.buf, "\"cgroup\":\"/system.slice/docker-"));
	cg_cache_free(live);
	cg_cache_free(back);
}

static void test_deterministic(void **state)
{
	struct out a, b, live;
	struct engine_config cfg;
	struct sp_event *evs;
	struct engine *e;
	size_t len, nev, i;
	char *log = make_log(&len, &evs, &nev);

	run_replay(log, len, &a);
	run_replay(log, len, &b);
	assert_true(a.len > 0);
	assert_true(a.leases >= 30); /* payload zombies, vanished peers, closes and losses */
	assert_int_equal(a.spikes, 1);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.buf, b.buf, a.len);
	assert_non_null(strstr(a.buf, "\"lease-expired\""));
	assert_non_null(strstr(a.buf, "\"lease-lost\""));
	assert_non_null(strstr(a.buf, "\"lease-closed\""));
	assert_non_null(strstr(a.buf, "\"connect-failure-spike\""));

	/* The live path (events fed directly) says exactly the same. */
	engine_config_default(&cfg);
	cfg.stall_ns = 0;
	assert_int_equal(engine_parse_lease_ttl(&cfg, "20s"), 0);
	memset(&live, 0, sizeof(live));
	e = engine_new(&cfg, out_emit, &live);
	for (i = 0; i < nev; i++)
		engine_feed(e, &evs[i]);
	engine_free(e);
	assert_int_equal(live.len, a.len);
	assert_memory_equal(live.buf, a.buf, a.len);

	free(a.buf);
	free(b.buf);
	free(live.buf);
	free(evs);
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_timestamp_limit),
		cmocka_unit_test(test_stream_counts),
		cmocka_unit_test(test_line_bound),
		cmocka_unit_test(test_line_memory_bounded),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_cgroup_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
