/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Command line: parsed once into struct config. */
#ifndef SP_CLI_H
#define SP_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <stdio.h>

#include "engine.h"
#include "parse.h"

/* Exit codes, documented in --help and README. */
enum sp_exit {
	SP_EXIT_OK = 0,
	SP_EXIT_FAILURE = 1,	/* runtime error */
	SP_EXIT_USAGE = 2,	/* bad command line */
	SP_EXIT_PRIVILEGE = 3,	/* missing capability */
	SP_EXIT_KERNEL = 4,	/* kernel lacks what is needed (BTF, BPF features) */
	SP_EXIT_ATTACH = 5,	/* programs loaded but could not be attached */
};

enum sp_command {
	CMD_WATCH = 0,
	CMD_CHECK,
	CMD_HELP,
	CMD_VERSION,
	CMD_AGENT,
	CMD_REPLAY,
	CMD_TOP,
	CMD_AUDIT,
};

#define SP_DEFAULT_COALESCE_NS 1000000000ULL
#define SP_DEFAULT_RING_BYTES (8ULL << 20)
#define SP_DEFAULT_REFRESH_NS 1000000000ULL

/* `sockpulse agent` defaults (README, "sockpulse agent") */
#define SP_DEFAULT_LOG_PATH "/var/log/sockpulse/events.jsonl"
#define SP_DEFAULT_LOG_MAX_SIZE (100ULL << 20)
#define SP_DEFAULT_LOG_KEEP 5
#define SP_DEFAULT_METRICS "127.0.0.1:9477"
#define SP_DEFAULT_SOCKDIAG_NS (5ULL * 1000000000ULL)
#define SP_NETNS_WATCH_MAX 16
#define SP_DEFAULT_AUDIT_NS (60ULL * 1000000000ULL)

struct config {
	enum sp_command cmd;
	bool cmd_given;		/* a command word was on the command line */
	bool json;
	bool no_header;
	int verbose;
	uint64_t duration_ns;	/* 0: until interrupted */
	uint64_t coalesce_ns;
	uint64_t ring_bytes;
	struct port_set ports;	/* count 0: every port */
	uint16_t family;	/* AF_INET, AF_INET6, 0 both */
	uint32_t netns;		/* inode, 0 every namespace */
	uint64_t cgroup_id;	/* cgroup v2 id, 0 every cgroup */
	unsigned int hook;	/* enum sp_connect_hook; SP_HOOK_NONE: probe */
	struct engine_config engine; /* leases and spikes (--lease-ttl, --spike-*) */
	bool no_engine;		/* --no-leases: the kernel's events only */
	unsigned int ablate;	/* enum ablate_part bits: parts off for a benchmark (ablate.h) */
	const char *replay_path; /* `sockpulse replay FILE` ("-": stdin) */

	/* `sockpulse top` */
	uint64_t refresh_ns;	/* -d, --delay: screen refresh interval */
	bool no_color;		/* --no-color (NO_COLOR in the environment does the same) */
	bool no_unicode;	/* --no-unicode: ASCII sparklines and marks */

	/* `sockpulse agent` */
	const char *log_path;		/* JSON lines file; NULL: no log (--log off) */
	uint64_t log_max_size;		/* rotate past this size; 0: never */
	unsigned int log_keep;		/* rotated files kept */
	uint32_t log_actions;		/* bit (1 << enum sp_action): logged */
	bool log_activity;		/* --log-activity: tcp-activity too */
	const char *metrics;		/* --metrics ADDR:PORT (validated), or "off" */
	const char *config_path;	/* --config FILE, applied before the command line */
	uint64_t sockdiag_interval_ns;	/* socket table refresh; 0: off */
	const char *netns_watch[SP_NETNS_WATCH_MAX]; /* more namespaces for sock_diag */
	unsigned int n_netns_watch;

	/* socket-table walks: keepalive audit, port counts, stuck sockets found at start */
	uint64_t audit_interval_ns;	/* top and agent; 0: only at start */
	bool audit_connections;		/* `sockpulse audit --connections` */
};

void config_init(struct config *cfg);
/* Parses argv; on error prints one line to stderr and returns SP_EXIT_USAGE. */
int cli_parse(int argc, char **argv, struct config *cfg);
void cli_usage(FILE *out);

#endif
