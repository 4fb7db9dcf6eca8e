// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sockpulse watch`: every event as a line on stdout, aligned text or JSON. Lines are batched
 * and written whole after each loop iteration.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "format.h"
#include "log.h"
#include "names.h"
#include "outbuf.h"
#include "runtime.h"
#include "watch.h"

#define OUTBUF_BYTES (256 * 1024)

struct watch {
	const struct config *cfg;
	struct runtime rt;
	struct outbuf out;
	struct format_ctx fmt;
	uint64_t seq;
	uint64_t last_text_ns; /* the time on the last text line */
	int exit_code;
};

static void write_line(struct watch *w, const char *line, size_t n)
{
	char *dst = outbuf_reserve(&w->out, n);

	if (!dst)
		return; /* counted by outbuf as dropped */
	memcpy(dst, line, n);
	outbuf_commit(&w->out, n);
}

static void on_event(void *ctx, const struct sp_event *ev)
{
	struct watch *w = ctx;
	char *line = outbuf_reserve(&w->out, SP_LINE_MAX);
	size_t n;

	if (!line)
		return;
	if (w->cfg->json)
		n = format_json(line, SP_LINE_MAX, ev, ++w->seq, &w->fmt);
	else
		n = format_text_ordered(line, SP_LINE_MAX, ev, &w->last_text_ns);
	if (n)
		outbuf_commit(&w->out, n);
}

static bool on_flush(void *ctx)
{
	struct watch *w = ctx;
	int err = outbuf_flush(&w->out);

	if (err == -EPIPE)
		return false; /* the reader went away (`| head`): nothing left to do */
	if (err && err != -EAGAIN) {
		pr_warn("writing events: %s", strerror(-err));
		w->exit_code = SP_EXIT_FAILURE;
		return false;
	}
	return true;
}

int watch_run(const struct config *cfg)
{
	struct watch w = { .cfg = cfg };
	const struct runtime_sink sink = { .ctx = &w, .on_event = on_event, .on_flush = on_flush };
	char header[SP_LINE_MAX];
	size_t n;
	int ret, err;

	err = outbuf_init(&w.out, STDOUT_FILENO, OUTBUF_BYTES);
	if (err) {
		pr_warn("cannot allocate the output buffer: %s", strerror(-err));
		return SP_EXIT_FAILURE;
	}
	ret = runtime_open(&w.rt, cfg, &sink);
	if (ret)
		goto out;
	w.fmt.connect_hook = connect_hook_name(w.rt.loader.hook);
	w.fmt.cg = w.rt.cg;
	runtime_walk_start(&w.rt);
	pr_info("ready: %d programs attached, ring %llu KiB, output %s", runtime_programs(&w.rt),
		(unsigned long long)(cfg->kernel.ring_bytes >> 10), cfg->json ? "json" : "text");
	if (!cfg->json && !cfg->no_header) {
		n = format_text_header(header, sizeof(header));
		if (n)
			write_line(&w, header, n);
	}
	ret = runtime_run(&w.rt);
	if (!ret)
		ret = w.exit_code;
	runtime_summary(&w.rt);
	if (w.out.dropped_lines)
		pr_warn("summary: %llu output lines could not be written",
			(unsigned long long)w.out.dropped_lines);
out:
	runtime_close(&w.rt);
	outbuf_free(&w.out);
	return ret;
}
