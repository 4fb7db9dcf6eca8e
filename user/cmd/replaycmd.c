// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sockpulse replay FILE`: a JSON lines log (watch --json, the agent's log) read back through
 * the engine, offline: the lease, spike and stuck verdicts the log's own events lead to, on the
 * log's own clock, written like watch writes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "engine.h"
#include "format.h"
#include "log.h"
#include "names.h"
#include "outbuf.h"
#include "replay.h"
#include "replaycmd.h"

#define OUTBUF_BYTES (256 * 1024)
#define REPLAY_CGROUPS 4096 /* distinct cgroup paths a replay keeps; more: the oldest go */

struct replay_run {
	const struct config *cfg;
	struct engine *engine;
	struct outbuf out;
	struct format_ctx fmt; /* .cg: the log's cgroup paths, interned */
	uint64_t seq;
	bool untrusted; /* the log lacks the renewals lease verdicts need */
};

/* What the log holds that lease verdicts depend on (the first pass over it). */
struct replay_scan {
	uint64_t established;
	uint64_t activity;
};

/* The log's own clock: an engine line is stamped with the engine's (log) time. */
static void replay_emit(void *ctx, const struct sp_event *ev)
{
	struct replay_run *r = ctx;
	struct sp_event out = *ev;
	char *line = outbuf_reserve(&r->out, SP_LINE_MAX);
	size_t n;

	if (!line)
		return;
	out.real_ns = out.mono_ns;
	if (r->untrusted && (ev->action == SP_ACT_LEASE_SUSPECT ||
			     ev->action == SP_ACT_LEASE_EXPIRED ||
			     ev->action == SP_ACT_LEASE_RECOVERED))
		out.lease.untrusted = true;
	if (r->cfg->json)
		n = format_json(line, SP_LINE_MAX, &out, ++r->seq, &r->fmt);
	else
		n = format_text(line, SP_LINE_MAX, &out);
	if (n)
		outbuf_commit(&r->out, n);
}

static void replay_hold(void *ctx, const struct engine_hold *hold)
{
	struct sp_event ev;

	engine_hold_event(hold, &ev);
	replay_emit(ctx, &ev);
}

static void replay_feed(void *ctx, const struct sp_event *ev)
{
	struct replay_run *r = ctx;

	engine_feed(r->engine, ev);
	if (r->out.len > r->out.cap / 2 && outbuf_flush(&r->out) == -EPIPE)
		return;
}

static void replay_count(void *ctx, const struct sp_event *ev)
{
	struct replay_scan *s = ctx;

	if (ev->action == SP_ACT_ACTIVITY)
		s->activity++;
	else if (ev->action == SP_ACT_STATE_CHANGE && ev->state.new_state == SP_ST_ESTABLISHED)
		s->established++;
}

/* A pipe cannot be read twice: spool it to an unnamed temporary file first. */
static FILE *replay_seekable(FILE *f)
{
	char buf[65536];
	FILE *tmp;
	size_t n;

	if (fseeko(f, 0, SEEK_CUR) == 0)
		return f;
	tmp = tmpfile();
	if (!tmp)
		return NULL;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (fwrite(buf, 1, n, tmp) != n) {
			fclose(tmp);
			errno = EIO;
			return NULL;
		}
	}
	if (ferror(f) || fflush(tmp) || fseeko(tmp, 0, SEEK_SET)) {
		fclose(tmp);
		errno = EIO;
		return NULL;
	}
	return tmp;
}

/*
 * Leases are renewed by tcp-activity lines. A log with established connections and none of them
 * (tcp-activity left out of the agent's --log-actions) would expire every lease for want of
 * renewals: say so before any output and mark the verdicts that depend on renewals.
 */
static int replay_check_input(struct replay_run *r, FILE *f)
{
	struct replay_scan scan = { 0 };
	struct replay_stats st;

	if (replay_stream(f, replay_count, &scan, &st) == -ENOMEM)
		return -ENOMEM;
	if (fseeko(f, 0, SEEK_SET))
		return -errno;
	clearerr(f);
	if (scan.established && !scan.activity) {
		r->untrusted = true;
		pr_warn("replay: %s has %llu established connection%s but no tcp-activity line: "
			"lease suspect/expired/recovered verdicts are marked untrusted (the agent "
			"logs them unless --log-actions leaves them out)",
			r->cfg->replay_path, (unsigned long long)scan.established,
			scan.established == 1 ? "" : "s");
	}
	return 0;
}

int replay_run(const struct config *cfg)
{
	struct replay_run r = { .cfg = cfg };
	struct engine_config ecfg = cfg->engine;
	struct replay_stats st = { 0 };
	bool is_stdin = strcmp(cfg->replay_path, "-") == 0;
	FILE *f, *in;
	int err, ret = SP_EXIT_OK;

	/* No wall clock in a replay: a gap between two lines is not an agent stall. */
	ecfg.stall_ns = 0;
	in = is_stdin ? stdin : fopen(cfg->replay_path, "re");
	if (!in) {
		pr_warn("replay: cannot open %s: %s", cfg->replay_path, strerror(errno));
		return SP_EXIT_FAILURE;
	}
	f = replay_seekable(in);
	if (!f) {
		pr_warn("replay: cannot read %s: %s", cfg->replay_path, strerror(errno));
		if (!is_stdin)
			fclose(in);
		return SP_EXIT_FAILURE;
	}
	err = replay_check_input(&r, f);
	if (err) {
		pr_warn("replay: reading %s: %s", cfg->replay_path, strerror(-err));
		ret = SP_EXIT_FAILURE;
		goto out;
	}
	err = outbuf_init(&r.out, STDOUT_FILENO, OUTBUF_BYTES);
	if (err) {
		pr_warn("cannot allocate the output buffer: %s", strerror(-err));
		ret = SP_EXIT_FAILURE;
		goto out;
	}
	r.engine = engine_new(&ecfg, replay_emit, &r);
	if (!r.engine) {
		pr_warn("replay: cannot set up the lease engine: out of memory");
		ret = SP_EXIT_FAILURE;
		goto out;
	}
	engine_set_hold_fn(r.engine, replay_hold, &r);
	r.fmt.cg = cg_cache_new(&(struct cg_cache_config){ .capacity = REPLAY_CGROUPS });
	if (!r.fmt.cg) {
		pr_warn("replay: cannot set up the cgroup table: out of memory");
		ret = SP_EXIT_FAILURE;
		goto out;
	}
	err = replay_stream_cg(f, replay_feed, &r, &st, r.fmt.cg);
	if (outbuf_flush(&r.out) && !r.out.dropped_lines)
		ret = SP_EXIT_FAILURE;
	if (st.bad)
		pr_warn("replay: %llu malformed line%s skipped (first at line %llu)",
			(unsigned long long)st.bad, st.bad == 1 ? "" : "s",
			(unsigned long long)st.first_bad);
	if (err == -ENODATA) {
		pr_warn("replay: no valid event line in %s", cfg->replay_path);
		ret = SP_EXIT_FAILURE;
	} else if (err) {
		pr_warn("replay: reading %s: %s", cfg->replay_path, strerror(-err));
		ret = SP_EXIT_FAILURE;
	}
out:
	cg_cache_free(r.fmt.cg);
	engine_free(r.engine);
	outbuf_free(&r.out);
	if (f != in)
		fclose(f);
	if (!is_stdin)
		fclose(in);
	return ret;
}
