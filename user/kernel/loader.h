/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Probe, choose the connect-hook variant, open, configure, load, attach. */
#ifndef SP_LOADER_H
#define SP_LOADER_H

#include <stdarg.h>
#include <stdint.h>

#include <bpf/libbpf.h>

#include "cli.h"
#include "retprobe.h"
#include "sockpulse.h"

#define LOADER_MAX_LINKS 32
#define LOADER_WHY_MAX 320

struct sockpulse_bpf;
struct bpf_link;

struct loader {
	struct sockpulse_bpf *skel;
	struct bpf_link *links[LOADER_MAX_LINKS];
	int n_links;
	unsigned int hook;			/* enum sp_connect_hook attached */
	char why[SP_HOOK_MAX][LOADER_WHY_MAX];	/* why a variant was not used, in detail */
	const char *lacks[SP_HOOK_MAX];		/* what the kernel lacks for it, or NULL */
	int ncpus;
	struct retprobe retprobe;		/* the kprobe variant's connect() return probe */
	int ret_maxactive;			/* its calls followed at once; 0: the kernel's default */
	char ret_why[LOADER_WHY_MAX];		/* why it has the default, if it does */
};

/* BTF present, capabilities enough to load BPF: an enum sp_exit code, one line saying why not. */
int loader_preflight(void);
/* Returns an enum sp_exit code; on failure prints one line saying why. */
int loader_start(struct loader *ld, const struct config *cfg);
void loader_stop(struct loader *ld);
int loader_ring_map_fd(const struct loader *ld);
/* Sums the per-CPU counters, plus each program's runs the kernel skipped (recursion_misses,
 * under the record kind the program makes). 0 or -errno. */
int loader_read_stats(const struct loader *ld, struct sp_stats *sum);
/* `sockpulse check`: load each variant, try to attach it, report; returns an exit code. */
int loader_check(const struct config *cfg);
/* How the connect and accept hooks find a socket from a file descriptor: "btf" (plain loads,
 * Linux 6.2+) or "compat" (probe reads). */
const char *loader_fd_walk(void);
/*
 * The one libbpf print callback (loader and socket walk): libbpf's lines at debug level (-v),
 * whole; from its warnings, the failing program and the verifier's verdict are kept for the
 * one-line error.
 */
int loader_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap);
/* libbpf's last warning since loader_libbpf_reset(), its first line ("" if none) */
const char *loader_libbpf_warning(void);
void loader_libbpf_reset(void);
/* libbpf's version, "1.1" */
const char *loader_libbpf_version(void);

#endif
