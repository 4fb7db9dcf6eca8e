// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Replay input: each '\n'-separated line through replay_parse_line(), and every event it
 * accepts into an engine with tiny tables (8 leases, 4 spike destinations, low spike thresholds)
 * so eviction, verdicts, holds and spikes all happen within a few lines. The engine is ticked
 * as `sockpulse replay` would see time pass, then far ahead to flush every verdict.
 *
 * Checks: the parser returns only 0, -ENOENT or -EINVAL and keeps enums in range; everything
 * the engine emits formats to a valid JSON line that replay reads back as "not an input"
 * (-ENOENT), as `sockpulse replay` relies on when its own output is fed to it again.
 *
 * Input: one byte of options (bit 0: stall guard on, bit 1: phi off, bit 2: batched feeding),
 * then the lines.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "sockpulse.h"
#include "engine.h"
#include "format.h"
#include "replay.h"

#include "fuzz_common.h"

#define BATCH 8
#define SEC   1000000000ull

struct run {
	struct engine *engine;
	uint64_t seq, emitted;
};

static void emit(void *ctx, const struct sp_event *ev)
{
	struct run *r = ctx;
	struct sp_event out = *ev, back;
	char line[SP_LINE_MAX];
	const char *name = action_name(out.action);
	size_t n;
	int rc;

	fuzz_assert(name, "engine emitted action %d", out.action);
	out.real_ns = out.mono_ns; /* as replay_emit() does */
	n = format_json(line, sizeof(line), &out, ++r->seq, NULL);
	fuzz_check_json_line(line, n, name);
	rc = replay_parse_line(line, n, &back);
	fuzz_assert(rc == -ENOENT, "engine line read back as %d: %s", rc, line);
	n = format_text(line, sizeof(line), &out);
	fuzz_check_text_line(line, n);
	r->emitted++;
}

static void on_hold(void *ctx, const struct engine_hold *hold)
{
	struct sp_event ev;

	fuzz_assert(hold->until_ns >= hold->mono_ns, "hold ends before it starts");
	engine_hold_event(hold, &ev);
	emit(ctx, &ev);
}

static void check_event(const struct sp_event *ev)
{
	fuzz_assert((unsigned int)ev->action < SP_ACT_MAX, "action %d", ev->action);
	fuzz_assert(ev->mono_ns == ev->real_ns, "replay clocks differ");
	fuzz_assert(ev->conn.direction < SP_DIR_MAX, "direction %u", ev->conn.direction);
	fuzz_assert(memchr(ev->conn.comm, '\0', sizeof(ev->conn.comm)), "comm not terminated");
	fuzz_assert(ev->error >= 0 && ev->error < 4096, "error %d", ev->error);
	switch (ev->action) {
	case SP_ACT_STATE_CHANGE:
		fuzz_assert(ev->state.new_state > 0 && ev->state.new_state < SP_ST_MAX &&
				ev->state.old_state < SP_ST_MAX,
			    "states %u %u", ev->state.old_state, ev->state.new_state);
		break;
	case SP_ACT_CONNECT:
		fuzz_assert(ev->connect.failure < SP_FAIL_MAX, "failure %u", ev->connect.failure);
		break;
	case SP_ACT_RESET:
		fuzz_assert(ev->reset.direction < SP_RST_MAX && ev->reset.old_state < SP_ST_MAX,
			    "reset %u %u", ev->reset.direction, ev->reset.old_state);
		break;
	case SP_ACT_EVENTS_LOST: {
		bool named = !ev->lost.kind;

		for (unsigned int t = 1; t < SP_REC_TYPE_MAX; t++)
			named = named || ev->lost.kind == rec_type_name(t);
		fuzz_assert(named, "lost kind not a static name");
		break;
	}
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_event batch[BATCH];
	struct engine_config cfg;
	struct run r = {0};
	uint64_t now = 0;
	size_t nb = 0, pos = 1;
	uint8_t opts;

	if (!size)
		return 0;
	opts = data[0];
	engine_config_default(&cfg);
	cfg.lease.max_leases = 8;
	cfg.stuck.max_sockets = 8; /* small tables: an engine per input stays cheap */
	cfg.stuck.max_procs = 4;
	cfg.ports.max_tuples = 8;
	cfg.lease.ttl_ns = 2 * SEC;
	cfg.lease.port_ttl[0].port = 443;
	cfg.lease.port_ttl[0].ttl_ns = 5 * SEC;
	cfg.lease.n_port_ttl = 1;
	if (opts & 2)
		cfg.lease.phi_threshold = 0;
	cfg.spike.max_dests = 4;
	cfg.spike.min_failures = 2;
	cfg.spike.confirm_need = 1;
	cfg.spike.host_min_dests = 2;
	cfg.stall_ns = opts & 1 ? 2 * SEC : 0;
	r.engine = engine_new(&cfg, emit, &r);
	fuzz_assert(r.engine, "engine_new");
	engine_set_hold_fn(r.engine, on_hold, &r);

	while (pos < size) {
		const char *line = (const char *)data + pos;
		const char *nl = memchr(line, '\n', size - pos);
		size_t len = nl ? (size_t)(nl - line) : size - pos;
		struct sp_event *ev = &batch[nb];
		int rc;

		pos += len + 1;
		rc = replay_parse_line(line, len, ev);
		fuzz_assert(rc == 0 || rc == -ENOENT || rc == -EINVAL, "replay_parse_line: %d", rc);
		if (rc)
			continue;
		check_event(ev);
		if (opts & 4) {
			if (++nb == BATCH) {
				engine_feed_batch(r.engine, batch, nb);
				nb = 0;
			}
		} else {
			engine_feed(r.engine, ev);
		}
		/* The agent's tick: 100 ms after the newest event seen. */
		if (ev->mono_ns > now) {
			now = ev->mono_ns;
			engine_tick(r.engine, now + SEC / 10);
		}
	}
	if (nb)
		engine_feed_batch(r.engine, batch, nb);
	/* Far ahead (saturating): every pending verdict runs. */
	engine_tick(r.engine, now > UINT64_MAX - 3600 * SEC ? UINT64_MAX : now + 3600 * SEC);
	fuzz_assert(engine_stats(r.engine)->emitted <= r.emitted, "emitted count");
	engine_free(r.engine);
	return 0;
}
