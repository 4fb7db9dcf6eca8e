// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * floor: loads tools/floor.bpf.c (one ring record per TCP state change, nothing else), drains
 * the ring every 100 ms, and on SIGINT/SIGTERM prints what it got as one JSON object on stdout:
 * {"records":N,"lost":M}. tools/bench.sh runs it beside sockpulse as the cost floor of a
 * tracer of TCP state changes. Says "floor: ready" on stderr once attached.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "floor.skel.h"

#define DRAIN_NS (100 * 1000000L)
#define RECORD_SIZE 128

enum floor_exit {
	FLOOR_EXIT_OK = 0,
	FLOOR_EXIT_FAILURE = 1, /* could not load, attach or drain (reason on stderr) */
	FLOOR_EXIT_USAGE = 2,
};

struct counts {
	unsigned long long records;
	unsigned long long bad; /* records of another size: a bug, reported */
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct counts *c = ctx;

	(void)data;
	if (size == RECORD_SIZE)
		c->records++;
	else
		c->bad++;
	return 0;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

/* Ring reservations that failed, all CPUs. */
static int read_lost(struct floor_bpf *skel, unsigned long long *lost)
{
	int ncpus = libbpf_num_possible_cpus(), err;
	__u32 zero = 0;
	__u64 *vals;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	vals = calloc(ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	err = bpf_map_lookup_elem(bpf_map__fd(skel->maps.dropped), &zero, vals) ? -errno : 0;
	*lost = 0;
	for (int i = 0; !err && i < ncpus; i++)
		*lost += vals[i];
	free(vals);
	return err;
}

/* Drains every 100 ms until SIGINT or SIGTERM; signals are taken synchronously. */
static int run(struct ring_buffer *rb, const sigset_t *stop)
{
	const struct timespec tick = { .tv_sec = 0, .tv_nsec = DRAIN_NS };
	int sig, n;

	for (;;) {
		sig = sigtimedwait(stop, NULL, &tick);
		n = ring_buffer__consume(rb);
		if (n < 0 && n != -EINTR)
			return n;
		if (sig > 0)
			return 0;
		if (sig < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

int main(int argc, char **argv)
{
	struct counts c = { 0 };
	struct ring_buffer *rb = NULL;
	struct floor_bpf *skel;
	unsigned long long lost = 0;
	sigset_t stop;
	int err;

	if (argc > 1) {
		bool help = strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0;

		fprintf(help ? stdout : stderr,
			"Usage: floor\nOne ring record per TCP state change, drained every 100 ms;\n"
			"on SIGINT/SIGTERM prints {\"records\":N,\"lost\":M}.\n"
			"Exit codes: 0 ran; 1 could not load, attach or drain; 2 bad usage.\n");
		return help ? FLOOR_EXIT_OK : FLOOR_EXIT_USAGE;
	}
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	libbpf_set_print(libbpf_quiet);

	skel = floor_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "floor: cannot load: %s\n", strerror(errno));
		return FLOOR_EXIT_FAILURE;
	}
	err = floor_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "floor: cannot attach: %s\n", strerror(-err));
		goto out;
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_record, &c, NULL);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "floor: ring buffer: %s\n", strerror(-err));
		goto out;
	}
	fprintf(stderr, "floor: ready\n");
	err = run(rb, &stop);
	if (err)
		fprintf(stderr, "floor: %s\n", strerror(-err));
	if (read_lost(skel, &lost))
		fprintf(stderr, "floor: cannot read the drop counter\n");
	if (c.bad)
		fprintf(stderr, "floor: %llu records of an unexpected size\n", c.bad);
	printf("{\"records\":%llu,\"lost\":%llu}\n", c.records, lost);
out:
	ring_buffer__free(rb);
	floor_bpf__destroy(skel);
	return err ? FLOOR_EXIT_FAILURE : FLOOR_EXIT_OK;
}
