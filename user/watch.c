// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sockpulse watch`: one epoll loop over the ring buffer, a timerfd and a signalfd. The ring
 * wakes us only past a fill threshold; the timer drains it every tick so quiet hosts still see
 * events within a tick. Output is batched whole lines, flushed after every drain.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "clock.h"
#include "decode.h"
#include "format.h"
#include "loader.h"
#include "log.h"
#include "names.h"
#include "outbuf.h"
#include "watch.h"

#define TICK_NS (100 * 1000000ULL)	    /* drain and flush period */
#define LOST_CHECK_NS (1000 * 1000000ULL) /* kernel drop counters read period */
#define OUTBUF_BYTES (256 * 1024)

struct watch {
	const struct config *cfg;
	struct loader loader;
	struct ring_buffer *ring;
	struct outbuf out;
	struct format_ctx fmt;
	int epfd, tfd, sfd;
	int64_t real_offset;
	uint64_t seq;
	uint64_t received[SP_REC_TYPE_MAX];
	uint64_t lost_reported[SP_REC_TYPE_MAX];
	uint64_t decode_errors[DECODE_RESULT_MAX];
	uint64_t last_lost_check;
	bool stop;
	int exit_code;
};

static void emit(struct watch *w, const struct sp_event *ev)
{
	char *line = outbuf_reserve(&w->out, SP_LINE_MAX);
	size_t n;

	if (!line)
		return;
	if (w->cfg->json)
		n = format_json(line, SP_LINE_MAX, ev, ++w->seq, &w->fmt);
	else
		n = format_text(line, SP_LINE_MAX, ev);
	if (n)
		outbuf_commit(&w->out, n);
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct watch *w = ctx;
	struct sp_event ev;
	enum decode_result r = decode_record(data, size, w->real_offset, &ev);

	if (r != DECODE_OK) {
		w->decode_errors[r]++;
		if (w->decode_errors[r] == 1)
			pr_warn("dropped a malformed ring record (%s, %zu bytes); further ones are "
				"counted in the summary",
				decode_result_name(r), size);
		return 0;
	}
	if (size >= sizeof(__u32)) {
		__u32 type;

		memcpy(&type, data, sizeof(type));
		if (type < SP_REC_TYPE_MAX)
			w->received[type]++;
	}
	emit(w, &ev);
	return 0;
}

/* Turns growth of the kernel's drop counters into events-lost lines. */
static void check_lost(struct watch *w, uint64_t now)
{
	struct sp_stats st;
	struct sp_event ev;

	w->last_lost_check = now;
	if (loader_read_stats(&w->loader, &st))
		return;
	for (int t = 1; t < SP_REC_TYPE_MAX; t++) {
		if (st.dropped[t] <= w->lost_reported[t])
			continue;
		memset(&ev, 0, sizeof(ev));
		ev.action = SP_ACT_EVENTS_LOST;
		ev.mono_ns = now;
		ev.real_ns = now + w->real_offset;
		ev.lost.count = st.dropped[t] - w->lost_reported[t];
		ev.lost.kind = rec_type_name(t);
		w->lost_reported[t] = st.dropped[t];
		emit(w, &ev);
	}
}

static void drain(struct watch *w)
{
	int n = ring_buffer__consume(w->ring);

	if (n < 0 && n != -EINTR)
		pr_warn("ring buffer: %s", strerror(-n));
}

static void flush(struct watch *w)
{
	int err = outbuf_flush(&w->out);

	if (err == -EPIPE) {
		/* The reader went away (`| head`): nothing left to do. */
		w->stop = true;
	} else if (err && err != -EAGAIN) {
		pr_warn("writing events: %s", strerror(-err));
		w->stop = true;
		w->exit_code = SP_EXIT_FAILURE;
	}
}

static void summary(struct watch *w)
{
	char buf[512];
	size_t off = 0;
	uint64_t total = 0, lost = 0, bad = 0;

	for (int t = 1; t < SP_REC_TYPE_MAX; t++)
		total += w->received[t];
	off += snprintf(buf + off, sizeof(buf) - off, "summary: events %llu:",
			(unsigned long long)total);
	for (int t = 1; t < SP_REC_TYPE_MAX && off < sizeof(buf); t++)
		off += snprintf(buf + off, sizeof(buf) - off, " %s=%llu", rec_type_name(t),
				(unsigned long long)w->received[t]);
	pr_info("%s", buf);

	off = 0;
	for (int t = 1; t < SP_REC_TYPE_MAX; t++)
		lost += w->lost_reported[t];
	off += snprintf(buf + off, sizeof(buf) - off, "summary: lost %llu:",
			(unsigned long long)lost);
	for (int t = 1; t < SP_REC_TYPE_MAX && off < sizeof(buf); t++)
		off += snprintf(buf + off, sizeof(buf) - off, " %s=%llu", rec_type_name(t),
				(unsigned long long)w->lost_reported[t]);
	pr_info("%s", buf);

	for (int r = 1; r < DECODE_RESULT_MAX; r++)
		bad += w->decode_errors[r];
	if (bad)
		pr_warn("summary: %llu malformed ring records dropped", (unsigned long long)bad);
	if (w->out.write_errors)
		pr_warn("summary: %llu failed writes of output", (unsigned long long)w->out.write_errors);
}

static int setup_fds(struct watch *w)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = 0, .tv_nsec = TICK_NS },
		.it_value = { .tv_sec = 0, .tv_nsec = TICK_NS },
	};
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	w->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->sfd < 0 || w->tfd < 0 || w->epfd < 0)
		return -errno;
	if (timerfd_settime(w->tfd, 0, &its, NULL))
		return -errno;
	ev.data.fd = w->sfd;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->sfd, &ev))
		return -errno;
	ev.data.fd = w->tfd;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tfd, &ev))
		return -errno;
	ev.data.fd = ring_buffer__epoll_fd(w->ring);
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
		return -errno;
	return 0;
}

static void on_signal(struct watch *w)
{
	struct signalfd_siginfo si;

	while (read(w->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM)
			w->stop = true;
	}
}

static void on_tick(struct watch *w, uint64_t deadline)
{
	uint64_t expirations, now;

	while (read(w->tfd, &expirations, sizeof(expirations)) == sizeof(expirations))
		;
	now = clock_mono_ns();
	w->real_offset = clock_real_offset_ns();
	drain(w);
	if (now - w->last_lost_check >= LOST_CHECK_NS)
		check_lost(w, now);
	if (deadline && now >= deadline)
		w->stop = true;
}

static int run_loop(struct watch *w)
{
	struct epoll_event evs[4];
	uint64_t start = clock_mono_ns();
	uint64_t deadline = w->cfg->duration_ns ? start + w->cfg->duration_ns : 0;
	int n;

	w->last_lost_check = start;
	while (!w->stop) {
		n = epoll_wait(w->epfd, evs, 4, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			pr_warn("epoll_wait: %s", strerror(errno));
			return SP_EXIT_FAILURE;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == w->sfd)
				on_signal(w);
			else if (evs[i].data.fd == w->tfd)
				on_tick(w, deadline);
			else
				drain(w);
		}
		flush(w);
	}
	/* Everything the kernel handed over before we stopped goes out. */
	drain(w);
	check_lost(w, clock_mono_ns());
	flush(w);
	return w->exit_code;
}

static void watch_close(struct watch *w)
{
	ring_buffer__free(w->ring);
	loader_stop(&w->loader);
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->tfd >= 0)
		close(w->tfd);
	if (w->sfd >= 0)
		close(w->sfd);
	outbuf_free(&w->out);
}

int watch_run(const struct config *cfg)
{
	struct watch w = { .cfg = cfg, .epfd = -1, .tfd = -1, .sfd = -1 };
	char header[SP_LINE_MAX];
	size_t n;
	int ret, err;

	err = outbuf_init(&w.out, STDOUT_FILENO, OUTBUF_BYTES);
	if (err) {
		pr_warn("cannot allocate the output buffer: %s", strerror(-err));
		return SP_EXIT_FAILURE;
	}
	ret = loader_start(&w.loader, cfg);
	if (ret)
		goto out;
	w.fmt.connect_hook = connect_hook_name(w.loader.hook);
	w.real_offset = clock_real_offset_ns();
	w.ring = ring_buffer__new(loader_ring_map_fd(&w.loader), on_record, &w, NULL);
	if (!w.ring) {
		pr_warn("cannot set up the ring buffer: %s", strerror(errno));
		ret = SP_EXIT_FAILURE;
		goto out;
	}
	err = setup_fds(&w);
	if (err) {
		pr_warn("cannot set up the event loop: %s", strerror(-err));
		ret = SP_EXIT_FAILURE;
		goto out;
	}
	pr_info("ready: %d programs attached, ring %llu KiB, output %s", w.loader.n_links,
		(unsigned long long)(cfg->ring_bytes >> 10), cfg->json ? "json" : "text");
	if (!cfg->json && !cfg->no_header) {
		n = format_text_header(header, sizeof(header));
		if (n && outbuf_reserve(&w.out, n)) {
			memcpy(outbuf_reserve(&w.out, n), header, n);
			outbuf_commit(&w.out, n);
		}
	}
	ret = run_loop(&w);
	summary(&w);
out:
	watch_close(&w);
	return ret;
}
