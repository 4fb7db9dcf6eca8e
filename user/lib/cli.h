/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Command line: parsed once into struct config. */
#ifndef SP_CLI_H
#define SP_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "engine.h"
#include "parse.h"
#include "util.h"

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
	CMD_MAX,
};

/* The commands an option applies to: a mask of (1 << enum sp_command). */
#define CMDS_WATCH (1u << CMD_WATCH)
#define CMDS_TOP (1u << CMD_TOP)
#define CMDS_AGENT (1u << CMD_AGENT)
#define CMDS_AUDIT (1u << CMD_AUDIT)
#define CMDS_REPLAY (1u << CMD_REPLAY)
#define CMDS_CHECK (1u << CMD_CHECK)
#define CMDS_LIVE (CMDS_WATCH | CMDS_TOP | CMDS_AGENT) /* the ones that run the BPF programs */
#define CMDS_ALL (CMDS_LIVE | CMDS_AUDIT | CMDS_REPLAY | CMDS_CHECK)

#define SP_DEFAULT_COALESCE_NS NSEC_PER_SEC
#define SP_DEFAULT_RING_BYTES (8ULL << 20)
#define SP_DEFAULT_MAX_SOCKS 65536u
#define SP_DEFAULT_REFRESH_NS NSEC_PER_SEC

/* `sockpulse agent` defaults (README, "sockpulse agent") */
#define SP_DEFAULT_LOG_PATH "/var/log/sockpulse/events.jsonl"
#define SP_DEFAULT_LOG_MAX_SIZE (100ULL << 20)
#define SP_DEFAULT_LOG_KEEP 5
#define SP_DEFAULT_METRICS "127.0.0.1:9477"
#define SP_DEFAULT_SOCKDIAG_NS (5ULL * NSEC_PER_SEC)
#define SP_NETNS_WATCH_MAX 16
#define SP_DEFAULT_AUDIT_NS (60ULL * NSEC_PER_SEC)

/* What the in-kernel filters select (--port, --family, --netns, --cgroup). */
struct filter_config {
	struct port_set ports;	/* count 0: every port */
	uint16_t family;	/* AF_INET, AF_INET6, 0 both */
	uint32_t netns;		/* inode, 0 every namespace */
	uint64_t cgroup_id;	/* cgroup v2 id, 0 every cgroup */
};

/* What the BPF side is loaded with. */
struct kernel_config {
	uint64_t coalesce_ns;	/* at most one activity record per socket per interval */
	uint64_t ring_bytes;
	uint32_t max_socks;	/* sockets followed at once: the kernel's table and the agent's */
	unsigned int hook;	/* enum sp_connect_hook; SP_HOOK_NONE: probe */
};

/* `sockpulse top` */
struct top_config {
	uint64_t refresh_ns;	/* -d, --delay: screen refresh interval */
	bool no_color;		/* --no-color (NO_COLOR in the environment does the same) */
	bool no_unicode;	/* --no-unicode: ASCII sparklines and marks */
};

/* `sockpulse agent` */
struct agent_config {
	const char *log_path;		/* JSON lines file; NULL: no log (--log off) */
	uint64_t log_max_size;		/* rotate past this size; 0: never */
	unsigned int log_keep;		/* rotated files kept */
	uint32_t log_actions;		/* bit (1 << enum sp_action): logged */
	bool log_activity;		/* --log-activity: tcp-activity too */
	const char *metrics;		/* --metrics ADDR:PORT (validated), or "off" */
	unsigned int metrics_services;	/* --metrics-services: services with their own label */
	const char *web_config;		/* --web-config FILE: TLS, basic auth; NULL: neither */
};

/* Socket-table walks and sock_diag dumps: keepalive audit, port counts, stuck sockets. */
struct walk_config {
	uint64_t sockdiag_interval_ns;	/* socket table refresh; 0: off */
	const char *netns_watch[SP_NETNS_WATCH_MAX]; /* more namespaces for sock_diag */
	unsigned int n_netns_watch;
	uint64_t audit_interval_ns;	/* top and agent; 0: only at start */
	bool audit_connections;		/* `sockpulse audit --connections` */
};

/* The whole configuration, one part per concern: a module takes the part it needs. */
struct config {
	enum sp_command cmd;
	bool cmd_given;		/* a command word was on the command line */
	bool json;
	bool no_header;
	int verbose;
	uint64_t duration_ns;	/* 0: until interrupted */
	struct filter_config filter;
	struct kernel_config kernel;
	struct engine_config engine; /* leases and spikes (--lease-ttl, --spike-*) */
	bool no_engine;		/* --no-leases: the kernel's events only */
	unsigned int ablate;	/* enum ablate_part bits: parts off for a benchmark (ablate.h) */
	const char *replay_path; /* `sockpulse replay FILE` ("-": stdin), `top --replay FILE` */
	struct top_config top;
	struct agent_config agent;
	struct walk_config walk;
	const char *config_path;	/* --config FILE, applied before the command line */

	/* `sockpulse help CMD`, `sockpulse CMD --help`: whose help (CMD_HELP: the general one) */
	enum sp_command help_cmd;
	struct cli_string *strings;	/* owned copies of option values: config_release() */
};

/* What an option's value is; the kind decides the parser and where the value goes. */
enum sp_opt_kind {
	OPT_FLAG,	/* bool, set to true */
	OPT_COUNT,	/* int, incremented (-v -v) */
	OPT_U32,	/* uint32_t (or unsigned int) within [min, max] */
	OPT_DURATION,	/* uint64_t ns within [min, max] */
	OPT_OFF_DURATION, /* uint64_t ns: "off" (0) or a duration within [min, max] */
	OPT_DOUBLE,	/* double within [dmin, dmax] */
	OPT_PORTS,	/* struct port_set, added to */
	OPT_ENUM,	/* unsigned int: index of the value in names[] */
	OPT_CUSTOM,	/* parse() does it all */
	OPT_HELP,	/* -h: help for the command given */
	OPT_VERSION,	/* -V */
};

enum sp_opt_section {
	SEC_OUTPUT,
	SEC_FILTERS,
	SEC_KERNEL,
	SEC_LEASES,
	SEC_HEALTH,
	SEC_TOP,
	SEC_AGENT,
	SEC_GENERAL,
	SEC_MAX,
};

struct sp_option;
/* 0; -errno: the value is not what the option's `valid` says; SP_EXIT_USAGE: already reported */
typedef int (*sp_opt_parse_fn)(const struct sp_option *o, const char *arg, struct config *cfg);

/*
 * One command-line option: the one table of them drives getopt_long, --help and per-command
 * help, the configuration file's keys and its fuzzer.
 */
struct sp_option {
	const char *name;	/* long name: --name, and the configuration file's key */
	int short_flag;		/* 0: long only */
	enum sp_opt_kind kind;
	size_t off;		/* offsetof(struct config, field) of the value */
	uint64_t min, max;	/* OPT_U32 and the durations (ns) */
	double dmin, dmax;	/* OPT_DOUBLE */
	const char *const *names; /* OPT_ENUM: NULL-terminated, index = value */
	sp_opt_parse_fn parse;	/* OPT_CUSTOM */
	const char *arg;	/* the value in help ("DUR"), NULL for flags */
	const char *valid;	/* a good value, for errors: "a duration from 1ms to 1h" */
	const char *help;
	enum sp_opt_section section;
	unsigned int cmds;	/* CMDS_*: the commands it applies to */
};

extern const struct sp_option cli_options[];
extern const size_t cli_n_options;
/* Section labels of --help, as in README "Commands and flags". */
extern const char *const cli_section_labels[SEC_MAX];

void config_init(struct config *cfg);
/* Frees what parsing allocated (strings from the configuration file, resolved paths). */
void config_release(struct config *cfg);
/*
 * Parses argv (the configuration file of --config first); on error prints one line to stderr
 * and returns SP_EXIT_USAGE. A flag that does not apply to the command is an error.
 */
int cli_parse(int argc, char **argv, struct config *cfg);
/* --help: @cmd's own help, or the general one for CMD_HELP. */
void cli_usage(FILE *out, enum sp_command cmd);
const struct sp_option *cli_find_option(const char *name);
const char *cli_command_name(enum sp_command cmd);
/* "watch" -> CMD_WATCH; 0 or -EINVAL */
int cli_parse_command(const char *word, enum sp_command *cmd);
/* "watch, top, agent" for a CMDS_* mask */
void cli_command_list(char *buf, size_t cap, unsigned int cmds);
/* getopt_long's table built from cli_options ({0}-terminated) */
const struct option *cli_long_options(void);
/* Keys a configuration file may not set */
extern const char *const cli_config_forbidden[];
/* One `key = value` of a configuration file (config_apply_fn; @ctx a struct config). */
int cli_apply_setting(void *ctx, const char *name, const char *value);

#endif
