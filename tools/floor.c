// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * floor: loads tools/floor.bpf.c (one ring record per TCP state change, nothing else), drains
 * the ring every 100 ms, and on SIGINT/SIGTERM prints what it got as one JSON object on stdout:
 * {"records":N,"activity":A,"lost":M}. tools/bench.sh runs it beside sockpulse as the cost
 * floor of a tracer of TCP state changes. Says "floor: ready" on stderr once attached.
 *
 * floor --keep WAY adds a per-socket entry kept in the kernel (tools/floor.bpf.c): storage
 * (socket storage), lru, lru-percpu or hash (maps keyed by socket cookie). tools/bench.sh runs
 * these as the tracers floor-WAY, to measure what each way of keeping socket state costs.
 * floor --probe WAY adds one activity record per socket per second from inbound segments
 * (tcp_probe), the counts kept in socket storage (storage) or taken from the socket itself with
 * a fixed array of slots for the coalescing (slots): the tracers floor-probe-WAY.
 * floor --hook WAY adds connect/accept hooks that do nothing, to measure what their presence
 * costs: the syscall tracepoints (syscalls) or cgroup connect programs on the root cgroup v2
 * (cgroup, mounting cgroup2 for a moment where it is not mounted): the tracers floor-hook-WAY.
 */
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "floor.h"
#include "floor.skel.h"

#define DRAIN_NS      (100 * 1000000L)
#define N_OF(a)	      (sizeof(a) / sizeof((a)[0]))
#define RECORD_SIZE   128

enum floor_exit {
	FLOOR_EXIT_OK = 0,
	FLOOR_EXIT_FAILURE = 1, /* could not load, attach or drain (reason on stderr) */
	FLOOR_EXIT_USAGE = 2,
};

struct counts {
	unsigned long long records;
	unsigned long long activity; /* of them, activity records (--probe) */
	unsigned long long bad;	     /* records of another size: a bug, reported */
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct counts *c = ctx;

	if (size == RECORD_SIZE) {
		c->records++;
		c->activity += *(const __u32 *)data == TYPE_ACTIVITY;
	} else {
		c->bad++;
	}
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

static const char *const keep_names[] = {
	[KEEP_NONE] = "none",
	[KEEP_STORAGE] = "storage",
	[KEEP_LRU] = "lru",
	[KEEP_LRU_PERCPU] = "lru-percpu",
	[KEEP_HASH] = "hash",
};

static const char *const probe_names[] = {
	[PROBE_NONE] = "none",
	[PROBE_STORAGE] = "storage",
	[PROBE_SLOTS] = "slots",
};

static const char *const hook_names[] = {
	[HOOK_NONE] = "none",
	[HOOK_SYSCALLS] = "syscalls",
	[HOOK_CGROUP] = "cgroup",
};

/* The ways asked for: indexes into the name tables above. */
struct ways {
	int keep;
	int probe;
	int hook;
};

static int name_index(const char *const *names, unsigned n, const char *s)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: floor [--keep none|storage|lru|lru-percpu|hash]"
		   " [--probe none|storage|slots]\n"
		   "             [--hook none|syscalls|cgroup]\n"
		   "One ring record per TCP state change, drained every 100 ms;\n"
		   "on SIGINT/SIGTERM prints {\"records\":N,\"activity\":A,\"lost\":M}\n"
		   "(A: the activity records among the N).\n"
		   "--keep: also keep a per-socket entry that way (default none).\n"
		   "--probe: also one activity record per socket per second from inbound segments,\n"
		   "  counted in socket storage or taken from the socket with slots (default none).\n"
		   "--hook: also connect/accept hooks that do nothing: the syscall tracepoints or\n"
		   "  cgroup connect programs on the root cgroup (default none).\n"
		   "Exit codes: 0 ran; 1 could not load, attach or drain; 2 bad usage.\n");
}

/* Only the ways' maps keep their size and their programs load; the others shrink to one entry
 * and stay out. */
static int select_ways(struct floor_bpf *skel, const struct ways *w)
{
	bool sys = w->hook == HOOK_SYSCALLS, cg = w->hook == HOOK_CGROUP;
	struct {
		struct bpf_map *map;
		int mode;
	} maps[] = {
		{ skel->maps.kept_lru, KEEP_LRU },
		{ skel->maps.kept_lru_percpu, KEEP_LRU_PERCPU },
		{ skel->maps.kept_hash, KEEP_HASH },
	};

	for (unsigned i = 0; i < N_OF(maps); i++)
		if (maps[i].mode != w->keep && bpf_map__set_max_entries(maps[i].map, 1))
			return -EINVAL;
	if (w->probe != PROBE_SLOTS && bpf_map__set_max_entries(skel->maps.probe_slots, 1))
		return -EINVAL;
	if (bpf_program__set_autoload(skel->progs.floor_probe, w->probe != PROBE_NONE) ||
	    bpf_program__set_autoload(skel->progs.floor_sys_enter_connect, sys) ||
	    bpf_program__set_autoload(skel->progs.floor_sys_exit_connect, sys) ||
	    bpf_program__set_autoload(skel->progs.floor_sys_exit_accept4, sys) ||
	    bpf_program__set_autoload(skel->progs.floor_connect4, cg) ||
	    bpf_program__set_autoload(skel->progs.floor_connect6, cg))
		return -EINVAL;
	return 0;
}

/* The root of the cgroup v2 hierarchy, opened: from its mount, else from a mount made for a
 * moment (the open directory keeps it). A negative errno on failure. */
static int cgroup2_root(void)
{
	char dir[] = "/tmp/floor-cgroup2.XXXXXX";
	struct mntent *m;
	FILE *mounts;
	int fd = -ENOENT;

	mounts = setmntent("/proc/self/mounts", "r");
	while (mounts && (m = getmntent(mounts)))
		if (strcmp(m->mnt_type, "cgroup2") == 0) {
			fd = open(m->mnt_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			fd = fd < 0 ? -errno : fd;
			break;
		}
	if (mounts)
		endmntent(mounts);
	if (fd != -ENOENT)
		return fd;
	if (!mkdtemp(dir))
		return -errno;
	if (mount("cgroup2", dir, "cgroup2", 0, NULL) == 0) {
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		fd = fd < 0 ? -errno : fd;
		umount2(dir, MNT_DETACH);
	} else {
		fd = -errno;
	}
	rmdir(dir);
	return fd;
}

/* The cgroup programs: the skeleton does not attach them by itself. */
static int attach_cgroup(struct floor_bpf *skel)
{
	int cg = cgroup2_root(), err = 0;

	if (cg < 0)
		return cg;
	skel->links.floor_connect4 = bpf_program__attach_cgroup(skel->progs.floor_connect4, cg);
	if (!skel->links.floor_connect4)
		err = -errno;
	if (!err) {
		skel->links.floor_connect6 =
			bpf_program__attach_cgroup(skel->progs.floor_connect6, cg);
		if (!skel->links.floor_connect6)
			err = -errno;
	}
	close(cg);
	return err;
}

/* --keep, --probe and --hook WAY, in any order; 0, or FLOOR_EXIT_USAGE after saying why. */
static int parse_args(int argc, char **argv, struct ways *w)
{
	const struct {
		const char *opt;
		const char *const *names;
		unsigned n;
		const char *list;
		int *way;
	} opts[] = {
		{ "--keep", keep_names, N_OF(keep_names), "none, storage, lru, lru-percpu, hash",
		  &w->keep },
		{ "--probe", probe_names, N_OF(probe_names), "none, storage, slots", &w->probe },
		{ "--hook", hook_names, N_OF(hook_names), "none, syscalls, cgroup", &w->hook },
	};

	for (int i = 1; i < argc; i += 2) {
		unsigned o = 0;

		while (o < N_OF(opts) && strcmp(argv[i], opts[o].opt) != 0)
			o++;
		if (o == N_OF(opts)) {
			usage(stderr);
			return FLOOR_EXIT_USAGE;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "floor: %s needs a way\n", argv[i]);
			return FLOOR_EXIT_USAGE;
		}
		*opts[o].way = name_index(opts[o].names, opts[o].n, argv[i + 1]);
		if (*opts[o].way < 0) {
			fprintf(stderr, "floor: %s: unknown way '%s' (%s)\n", argv[i], argv[i + 1],
				opts[o].list);
			return FLOOR_EXIT_USAGE;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct counts c = { 0 };
	struct ring_buffer *rb = NULL;
	struct floor_bpf *skel;
	unsigned long long lost = 0;
	sigset_t stop;
	struct ways w = { KEEP_NONE, PROBE_NONE, HOOK_NONE };
	int err;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return FLOOR_EXIT_OK;
	}
	err = parse_args(argc, argv, &w);
	if (err)
		return err;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	libbpf_set_print(libbpf_quiet);

	skel = floor_bpf__open();
	if (!skel) {
		fprintf(stderr, "floor: cannot open: %s\n", strerror(errno));
		return FLOOR_EXIT_FAILURE;
	}
	skel->rodata->keep_mode = w.keep;
	skel->rodata->probe_mode = w.probe;
	err = select_ways(skel, &w);
	if (!err)
		err = floor_bpf__load(skel);
	if (err) {
		fprintf(stderr, "floor: cannot load: %s\n", strerror(-err));
		goto out;
	}
	err = floor_bpf__attach(skel);
	if (!err && w.hook == HOOK_CGROUP)
		err = attach_cgroup(skel);
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
	printf("{\"records\":%llu,\"activity\":%llu,\"lost\":%llu}\n", c.records, c.activity, lost);
out:
	ring_buffer__free(rb);
	floor_bpf__destroy(skel);
	return err ? FLOOR_EXIT_FAILURE : FLOOR_EXIT_OK;
}
