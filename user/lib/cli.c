// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The command line: one table of options (cli_options) drives getopt_long, the general and
 * per-command help (clihelp.c), the configuration file's keys and the config fuzzer. No libbpf
 * here: the unit tests link it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cgroup.h"
#include "cli.h"
#include "config.h"
#include "metrics.h"
#include "names.h"
#include "sockpulse.h"
#include "svctab.h"
#include "util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif
#ifndef ARRAY_SIZE
#endif

#define MS (NSEC_PER_MSEC)
#define SECS (1000ULL * MS)
#define HOUR (3600ULL * SECS)
#define DAY (24ULL * HOUR)
#define NETNS_DIR "/run/netns/"


/* A copy of an option value that must outlive the line it came from. */
struct cli_string {
	struct cli_string *next;
	char s[];
};

const char *const cli_section_labels[SEC_MAX] = {
	[SEC_OUTPUT] = "Output",
	[SEC_FILTERS] = "Filters",
	[SEC_KERNEL] = "Kernel side",
	[SEC_LEASES] = "Leases and connect-failure spikes",
	[SEC_HEALTH] = "Connection health",
	[SEC_TOP] = "Dashboard",
	[SEC_AGENT] = "Agent",
	[SEC_GENERAL] = "General",
};

static const char *const hook_names[] = {
	[SP_HOOK_NONE] = "auto",
	[SP_HOOK_FENTRY] = "fentry",
	[SP_HOOK_KPROBE] = "kprobe",
	[SP_HOOK_TRACEPOINT] = "tracepoint",
	NULL,
};

static int parse_family(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_netns_opt(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_cgroup(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_ring_size(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_lease_ttl(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_port_risk_usage(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_netns_watch(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_log(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_log_max_size(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_log_actions(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_metrics(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_web_config(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_config_opt(const struct sp_option *o, const char *arg, struct config *cfg);
static int parse_top_replay(const struct sp_option *o, const char *arg, struct config *cfg);

#define FIELD(f) .off = offsetof(struct config, f)

const struct sp_option cli_options[] = {
	/* Output */
	{ "json", 'j', OPT_FLAG, FIELD(json), .section = SEC_OUTPUT,
	  .help = "JSON lines (docs/EVENTS.md) instead of aligned text",
	  .cmds = CMDS_WATCH | CMDS_REPLAY | CMDS_AUDIT },
	{ "duration", 0, OPT_DURATION, FIELD(duration_ns), .min = 1, .max = UINT64_MAX,
	  .section = SEC_OUTPUT, .arg = "SECS", .valid = "a positive duration",
	  .help = "stop after this long (\"30\", \"1.5s\", \"2m\"), flushing everything, exit 0",
	  .cmds = CMDS_LIVE },
	{ "no-header", 0, OPT_FLAG, FIELD(no_header), .section = SEC_OUTPUT,
	  .help = "no column header in text output", .cmds = CMDS_WATCH },

	/* Filters: all run in the kernel */
	{ "port", 'p', OPT_PORTS, FIELD(filter.ports), .section = SEC_FILTERS, .arg = "LIST",
	  .valid = "a port list (ports 1-65535, lists and ranges like 80,8000-8100)",
	  .help = "only sockets with a local or remote port in LIST (\"80,443,8000-8100\"); may "
		  "repeat",
	  .cmds = CMDS_LIVE | CMDS_CHECK },
	{ "ipv4", '4', OPT_CUSTOM, .parse = parse_family, .section = SEC_FILTERS,
	  .help = "only IPv4 (including IPv4-mapped IPv6)", .cmds = CMDS_LIVE | CMDS_CHECK },
	{ "ipv6", '6', OPT_CUSTOM, .parse = parse_family, .section = SEC_FILTERS,
	  .help = "only IPv6", .cmds = CMDS_LIVE | CMDS_CHECK },
	{ "netns", 0, OPT_CUSTOM, .parse = parse_netns_opt, .section = SEC_FILTERS, .arg = "NS",
	  .valid = "a network namespace: a name from 'ip netns list', a file or an inode number",
	  .help = "only one network namespace: a name as 'ip netns list' shows it, a path such "
		  "as /run/netns/NAME or /proc/PID/ns/net, or its inode number",
	  .cmds = CMDS_LIVE | CMDS_CHECK | CMDS_AUDIT },
	{ "cgroup", 0, OPT_CUSTOM, .parse = parse_cgroup, .section = SEC_FILTERS, .arg = "PATH|UNIT",
	  .valid = "a cgroup v2 directory, or a systemd unit (nginx.service) found under the "
		   "cgroup2 mount",
	  .help = "only sockets of a cgroup v2 directory (or a unit's: nginx.service) and its "
		  "descendants",
	  .cmds = CMDS_LIVE | CMDS_CHECK },

	/* Kernel side */
	{ "coalesce", 0, OPT_DURATION, FIELD(kernel.coalesce_ns), .min = MS, .max = HOUR,
	  .section = SEC_KERNEL, .arg = "DUR", .valid = "a duration from 1ms to 1h",
	  .help = "at most one activity event per socket per DUR (default 1s)",
	  .cmds = CMDS_LIVE | CMDS_CHECK | CMDS_REPLAY },
	{ "ring-size", 0, OPT_CUSTOM, .parse = parse_ring_size, .section = SEC_KERNEL,
	  .arg = "SIZE", .valid = "a power of two from a page to 1G",
	  .help = "ring buffer size, a power of two (default 8M)", .cmds = CMDS_LIVE | CMDS_CHECK },
	{ "max-sockets", 0, OPT_U32, FIELD(kernel.max_socks), .min = 1024, .max = 1U << 20,
	  .section = SEC_KERNEL, .arg = "N", .valid = "a number from 1024 to 1048576",
	  .help = "sockets followed at once, in the kernel and in the agent (default 65536); "
		  "past it, lines lack durations and owners (counted)",
	  .cmds = CMDS_LIVE | CMDS_CHECK },
	{ "connect-hook", 0, OPT_ENUM, FIELD(kernel.hook), .names = hook_names, .section = SEC_KERNEL,
	  .arg = "H", .valid = "one of auto, fentry, kprobe, tracepoint",
	  .help = "auto (default: fentry, then kprobe, then tracepoint), or force one",
	  .cmds = CMDS_LIVE },

	/* Leases and connect-failure spikes */
	{ "lease-ttl", 0, OPT_CUSTOM, .parse = parse_lease_ttl, .section = SEC_LEASES,
	  .arg = "[PORT=]DUR", .valid = "DURATION or PORT=DURATION",
	  .help = "lease TTL (default 30s), or for one service port; may repeat",
	  .cmds = CMDS_LIVE | CMDS_REPLAY | CMDS_AUDIT },
	{ "max-leases", 0, OPT_U32, FIELD(engine.lease.max_leases), .min = 1, .max = 1U << 26,
	  .section = SEC_LEASES, .arg = "N", .valid = "a number from 1 to 67108864",
	  .help = "lease table bound (default 1048576); evictions counted",
	  .cmds = CMDS_LIVE | CMDS_REPLAY },
	{ "phi-threshold", 0, OPT_DOUBLE, FIELD(engine.lease.phi_threshold), .dmin = 0,
	  .dmax = 1000, .section = SEC_LEASES, .arg = "X", .valid = "a number from 0 to 1000",
	  .help = "suspect early when phi reaches X (default 8; 0: off)",
	  .cmds = CMDS_LIVE | CMDS_REPLAY },
	{ "hold", 0, OPT_DURATION, FIELD(engine.hold_ns), .min = 0, .max = HOUR,
	  .section = SEC_LEASES, .arg = "DUR", .valid = "a duration up to 1h",
	  .help = "hold verdicts this long after a stall or loss (default 5s)",
	  .cmds = CMDS_LIVE | CMDS_REPLAY },
	{ "no-leases", 0, OPT_FLAG, FIELD(no_engine), .section = SEC_LEASES,
	  .help = "kernel events only: no lease, spike, stuck or port verdicts, no socket-table "
		  "walk",
	  .cmds = CMDS_LIVE },
	{ "spike-window", 0, OPT_U32, FIELD(engine.spike.window_s), .min = 1,
	  .max = SPIKE_WINDOW_MAX, .section = SEC_LEASES, .arg = "S",
	  .valid = "a number of seconds from 1 to 32",
	  .help = "failures counted over S seconds (default 10)", .cmds = CMDS_LIVE | CMDS_REPLAY },
	{ "spike-min-failures", 0, OPT_U32, FIELD(engine.spike.min_failures), .min = 1,
	  .max = 1000000, .section = SEC_LEASES, .arg = "N",
	  .valid = "a number from 1 to 1000000",
	  .help = "fewest failures in the window (default 5)", .cmds = CMDS_LIVE | CMDS_REPLAY },
	{ "spike-z", 0, OPT_DOUBLE, FIELD(engine.spike.z_enter), .dmin = 0.5, .dmax = 100,
	  .section = SEC_LEASES, .arg = "Z", .valid = "a number from 0.5 to 100",
	  .help = "Poisson z-score to enter a spike (default 4)", .cmds = CMDS_LIVE | CMDS_REPLAY },
	{ "spike-min-ratio", 0, OPT_DOUBLE, FIELD(engine.spike.min_ratio), .dmin = 0, .dmax = 1,
	  .section = SEC_LEASES, .arg = "R", .valid = "a number from 0 to 1",
	  .help = "failed share of attempts to enter (default 0.1)",
	  .cmds = CMDS_LIVE | CMDS_REPLAY },
	{ "spike-quiet", 0, OPT_U32, FIELD(engine.spike.leave_s), .min = 1, .max = 86400,
	  .section = SEC_LEASES, .arg = "S", .valid = "a number of seconds from 1 to 86400",
	  .help = "calm seconds before a spike ends (default 30)",
	  .cmds = CMDS_LIVE | CMDS_REPLAY },
	{ "spike-merge", 0, OPT_U32, FIELD(engine.spike.merge_s), .min = 0, .max = 86400,
	  .section = SEC_LEASES, .arg = "S", .valid = "a number of seconds from 0 to 86400",
	  .help = "a re-fire within S seconds is the same incident (default 60)",
	  .cmds = CMDS_LIVE | CMDS_REPLAY },
	{ "spike-host-min", 0, OPT_U32, FIELD(engine.spike.host_min_dests), .min = 0,
	  .max = 65536, .section = SEC_LEASES, .arg = "N",
	  .valid = "a number from 0 (off) to 65536",
	  .help = "destinations spiking together that make one host-wide alert (default 3)",
	  .cmds = CMDS_LIVE | CMDS_REPLAY },

	/* Connection health */
	{ "stuck-after", 0, OPT_OFF_DURATION, FIELD(engine.stuck.after_ns), .min = 100 * MS,
	  .max = DAY, .section = SEC_HEALTH, .arg = "DUR",
	  .valid = "off or a duration from 100ms to 1d",
	  .help = "alert on a socket in CLOSE_WAIT or FIN_WAIT2 this long (default 60s; \"off\")",
	  .cmds = CMDS_LIVE | CMDS_REPLAY },
	{ "port-risk-usage", 0, OPT_CUSTOM, .parse = parse_port_risk_usage, .section = SEC_HEALTH,
	  .arg = "PCT", .valid = "a percentage from 1 to 100",
	  .help = "alert when this share of the local port range is in use towards one "
		  "destination (default 80)",
	  .cmds = CMDS_LIVE | CMDS_REPLAY },
	{ "port-risk-horizon", 0, OPT_OFF_DURATION, FIELD(engine.ports.horizon_ns), .min = SECS,
	  .max = DAY, .section = SEC_HEALTH, .arg = "DUR",
	  .valid = "off or a duration from 1s to 1d",
	  .help = "... or when exhaustion is predicted within DUR (default 60s; \"off\")",
	  .cmds = CMDS_LIVE | CMDS_REPLAY },
	{ "audit-interval", 0, OPT_OFF_DURATION, FIELD(walk.audit_interval_ns), .min = SECS, .max = DAY,
	  .section = SEC_HEALTH, .arg = "DUR", .valid = "off or a duration from 1s to 1d",
	  .help = "socket-table walk: keepalive audit, port counts, stuck sockets (default 60s; "
		  "\"off\": at start only)",
	  .cmds = CMDS_LIVE },
	{ "netns-watch", 0, OPT_CUSTOM, .parse = parse_netns_watch, .section = SEC_HEALTH,
	  .arg = "NS", .valid = "a network namespace: a name from 'ip netns list' or a file",
	  .help = "also walk (and, in the agent, count) this namespace's sockets: a name or a "
		  "path; may repeat",
	  .cmds = CMDS_LIVE | CMDS_AUDIT },
	{ "connections", 0, OPT_FLAG, FIELD(walk.audit_connections), .section = SEC_HEALTH,
	  .help = "one line per connection, then the rollup", .cmds = CMDS_AUDIT },

	/* Dashboard */
	{ "delay", 'd', OPT_DURATION, FIELD(top.refresh_ns), .min = 100 * MS, .max = HOUR,
	  .section = SEC_TOP, .arg = "DUR", .valid = "a duration from 100ms to 1h",
	  .help = "screen refresh interval (default 1s, 100ms..1h)", .cmds = CMDS_TOP },
	{ "no-color", 0, OPT_FLAG, FIELD(top.no_color), .section = SEC_TOP,
	  .help = "no colors (also when NO_COLOR is set)", .cmds = CMDS_TOP },
	{ "no-unicode", 0, OPT_FLAG, FIELD(top.no_unicode), .section = SEC_TOP,
	  .help = "ASCII sparklines and marks", .cmds = CMDS_TOP },
	{ "replay", 0, OPT_CUSTOM, .parse = parse_top_replay, .section = SEC_TOP, .arg = "FILE",
	  .valid = "a JSON lines log (from watch --json or the agent)",
	  .help = "the dashboard at the end of a recorded JSON lines log, no kernel",
	  .cmds = CMDS_TOP },

	/* Agent */
	{ "log", 0, OPT_CUSTOM, .parse = parse_log, .section = SEC_AGENT, .arg = "PATH",
	  .valid = "a file path",
	  .help = "JSON lines log (default " SP_DEFAULT_LOG_PATH "), \"off\" for none",
	  .cmds = CMDS_AGENT },
	{ "log-max-size", 0, OPT_CUSTOM, .parse = parse_log_max_size, .section = SEC_AGENT,
	  .arg = "SIZE", .valid = "0 or a size of at least 4K",
	  .help = "rotate past SIZE (default 100M; 0: never)", .cmds = CMDS_AGENT },
	{ "log-keep", 0, OPT_U32, FIELD(agent.log_keep), .min = 0, .max = 1000, .section = SEC_AGENT,
	  .arg = "N", .valid = "a number from 0 to 1000",
	  .help = "rotated files kept: PATH.1 .. PATH.N (default 5)", .cmds = CMDS_AGENT },
	{ "log-actions", 0, OPT_CUSTOM, .parse = parse_log_actions, .section = SEC_AGENT,
	  .arg = "LIST",
	  .valid = "a list of event.action names (tcp-connect,tcp-reset,...) or \"all\"",
	  .help = "event.action values logged, comma-separated, or \"all\" (default: all)",
	  .cmds = CMDS_AGENT },
	{ "log-activity", 0, OPT_FLAG, FIELD(agent.log_activity), .section = SEC_AGENT,
	  .help = "log tcp-activity lines too (with --log-actions)", .cmds = CMDS_AGENT },
	{ "metrics", 0, OPT_CUSTOM, .parse = parse_metrics, .section = SEC_AGENT,
	  .arg = "ADDR:PORT", .valid = "ADDR:PORT, [ADDR6]:PORT, PORT or off",
	  .help = "Prometheus /metrics (default " SP_DEFAULT_METRICS "), \"[::1]:PORT\", a bare "
		  "PORT, or \"off\"",
	  .cmds = CMDS_AGENT },
	{ "metrics-services", 0, OPT_U32, FIELD(agent.metrics_services), .min = 0, .max = SVC_TOP_MAX,
	  .section = SEC_AGENT, .arg = "N", .valid = "a number from 0 to 200",
	  .help = "services with a service label of their own in /metrics, the most active "
		  "(default 20); the rest are summed under \"other\"",
	  .cmds = CMDS_AGENT },
	{ "web-config", 0, OPT_CUSTOM, .parse = parse_web_config, .section = SEC_AGENT,
	  .arg = "FILE", .valid = "a web-config YAML file, or off",
	  .help = "TLS and basic auth for /metrics: node_exporter's web-config YAML "
		  "(tls_server_config: cert_file, key_file; basic_auth_users: NAME: bcrypt hash)",
	  .cmds = CMDS_AGENT },
	{ "sockdiag-interval", 0, OPT_OFF_DURATION, FIELD(walk.sockdiag_interval_ns), .min = 100 * MS,
	  .max = HOUR, .section = SEC_AGENT, .arg = "DUR",
	  .valid = "off or a duration from 100ms to 1h",
	  .help = "socket table gauges refresh (default 5s; \"off\")",
	  .cmds = CMDS_AGENT | CMDS_TOP },
	{ "config", 0, OPT_CUSTOM, .parse = parse_config_opt, .section = SEC_GENERAL, .arg = "FILE",
	  .valid = "a file",
	  .help = "read \"key = value\" lines, keys the long options; the command line wins",
	  .cmds = CMDS_ALL },

	/* General */
	{ "verbose", 'v', OPT_COUNT, FIELD(verbose), .section = SEC_GENERAL,
	  .help = "debug output, including libbpf's", .cmds = CMDS_ALL },
	{ "help", 'h', OPT_HELP, .section = SEC_GENERAL, .help = "this help", .cmds = CMDS_ALL },
	{ "version", 'V', OPT_VERSION, .section = SEC_GENERAL, .help = "version",
	  .cmds = CMDS_ALL },
};

const size_t cli_n_options = ARRAY_SIZE(cli_options);

const char *const cli_config_forbidden[] = { "config", "help", "version", NULL };

/* getopt's `val` of an option without a short flag: its index above every char */
#define LONG_VAL_BASE 0x100

const struct option *cli_long_options(void)
{
	static struct option opts[ARRAY_SIZE(cli_options) + 1];

	if (!opts[0].name) {
		for (size_t i = 0; i < cli_n_options; i++) {
			const struct sp_option *o = &cli_options[i];

			opts[i].name = o->name;
			opts[i].has_arg = o->arg ? required_argument : no_argument;
			opts[i].flag = NULL;
			opts[i].val = o->short_flag ? o->short_flag : LONG_VAL_BASE + (int)i;
		}
	}
	return opts;
}

static const char *short_options(void)
{
	static char s[2 * ARRAY_SIZE(cli_options) + 2];
	size_t n = 0;

	if (s[0])
		return s;
	s[n++] = ':';
	for (size_t i = 0; i < cli_n_options; i++) {
		if (!cli_options[i].short_flag)
			continue;
		s[n++] = (char)cli_options[i].short_flag;
		if (cli_options[i].arg)
			s[n++] = ':';
	}
	s[n] = '\0';
	return s;
}

const struct sp_option *cli_find_option(const char *name)
{
	for (size_t i = 0; i < cli_n_options; i++)
		if (strcmp(cli_options[i].name, name) == 0)
			return &cli_options[i];
	return NULL;
}

static const struct sp_option *option_by_val(int val)
{
	if (val >= LONG_VAL_BASE && (size_t)(val - LONG_VAL_BASE) < cli_n_options)
		return &cli_options[val - LONG_VAL_BASE];
	for (size_t i = 0; i < cli_n_options; i++)
		if (cli_options[i].short_flag && cli_options[i].short_flag == val)
			return &cli_options[i];
	return NULL;
}

/* ---- values ---- */

void config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cmd = CMD_WATCH;
	cfg->help_cmd = CMD_HELP;
	cfg->kernel.coalesce_ns = SP_DEFAULT_COALESCE_NS;
	cfg->kernel.ring_bytes = SP_DEFAULT_RING_BYTES;
	cfg->kernel.max_socks = SP_DEFAULT_MAX_SOCKS;
	cfg->kernel.hook = SP_HOOK_NONE;
	engine_config_default(&cfg->engine);
	cfg->engine.lease.coalesce_ns = cfg->kernel.coalesce_ns;
	cfg->agent.log_path = SP_DEFAULT_LOG_PATH;
	cfg->agent.log_max_size = SP_DEFAULT_LOG_MAX_SIZE;
	cfg->agent.log_keep = SP_DEFAULT_LOG_KEEP;
	/* tcp-activity included: replay needs the renewals to recompute lease verdicts */
	cfg->agent.log_actions = (1u << SP_ACT_MAX) - 1;
	cfg->agent.metrics = SP_DEFAULT_METRICS;
	cfg->agent.metrics_services = SVC_TOP_DEFAULT;
	cfg->walk.sockdiag_interval_ns = SP_DEFAULT_SOCKDIAG_NS;
	cfg->top.refresh_ns = SP_DEFAULT_REFRESH_NS;
	cfg->walk.audit_interval_ns = SP_DEFAULT_AUDIT_NS;
}

void config_release(struct config *cfg)
{
	while (cfg->strings) {
		struct cli_string *next = cfg->strings->next;

		free(cfg->strings);
		cfg->strings = next;
	}
}

/* A copy of @s owned by @cfg (values of configuration lines do not outlive their line). */
static const char *keep_string(struct config *cfg, const char *s)
{
	size_t n = strlen(s) + 1;
	struct cli_string *cs = malloc(sizeof(*cs) + n);

	if (!cs)
		return NULL;
	memcpy(cs->s, s, n);
	cs->next = cfg->strings;
	cfg->strings = cs;
	return cs->s;
}

/* Parsing context: "FILE:LINE: " while a configuration file is applied; the command whose
 * help the error points at. */
static char config_where[512];
static bool in_config;
static enum sp_command hint_cmd = CMD_HELP;

static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (hint_cmd == CMD_HELP)
		fprintf(stderr, "sockpulse: %s%s (try 'sockpulse --help')\n", config_where, msg);
	else
		fprintf(stderr, "sockpulse: %s%s (try 'sockpulse help %s')\n", config_where, msg,
			cli_command_name(hint_cmd));
	return SP_EXIT_USAGE;
}

static int parse_family(const struct sp_option *o, const char *arg, struct config *cfg)
{
	uint16_t family = o->short_flag == '4' ? AF_INET : AF_INET6;

	if (cfg->filter.family && cfg->filter.family != family)
		return usage_error("-4 and -6 exclude each other");
	cfg->filter.family = family;
	return 0;
}

/*
 * A network namespace: a name from `ip netns list` (/run/netns/NAME), a namespace file, or,
 * when @inode_ok, a bare inode number. @path receives the file it names.
 */
static int resolve_netns(const char *arg, bool inode_ok, uint32_t *inode, char *path,
			 size_t cap)
{
	struct statfs sfs;
	struct stat st;
	uint64_t v;
	int fd, type;

	if (inode_ok && parse_u64(arg, 1, UINT32_MAX, &v) == 0) {
		*inode = (uint32_t)v;
		path[0] = '\0';
		return 0;
	}
	if (!*arg)
		return -EINVAL;
	if (strchr(arg, '/')) {
		if (snprintf(path, cap, "%s", arg) >= (int)cap)
			return -ENAMETOOLONG;
	} else if (strcmp(arg, ".") == 0 || strcmp(arg, "..") == 0 ||
		   snprintf(path, cap, NETNS_DIR "%s", arg) >= (int)cap) {
		return -EINVAL;
	}
	/* nsfs before open(): opening a device or a FIFO named here could do harm or hang */
	if (statfs(path, &sfs))
		return -errno;
	if (sfs.f_type != NSFS_MAGIC)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstatfs(fd, &sfs) || sfs.f_type != NSFS_MAGIC || fstat(fd, &st)) {
		close(fd);
		return -EINVAL;
	}
	type = ioctl(fd, NS_GET_NSTYPE);
	close(fd);
	if (type != CLONE_NEWNET)
		return -EINVAL;
	*inode = (uint32_t)st.st_ino;
	return 0;
}

static int parse_netns_opt(const struct sp_option *o, const char *arg, struct config *cfg)
{
	char path[4096];

	return resolve_netns(arg, true, &cfg->filter.netns, path, sizeof(path));
}

static int parse_netns_watch(const struct sp_option *o, const char *arg, struct config *cfg)
{
	char path[4096];
	const char *kept;
	uint32_t ino;
	int err;

	err = resolve_netns(arg, false, &ino, path, sizeof(path));
	if (err)
		return err;
	if (cfg->walk.n_netns_watch >= SP_NETNS_WATCH_MAX)
		return usage_error("--%s: more than %d namespaces", o->name, SP_NETNS_WATCH_MAX);
	kept = keep_string(cfg, path);
	if (!kept)
		return -ENOMEM;
	cfg->walk.netns_watch[cfg->walk.n_netns_watch++] = kept;
	return 0;
}

/*
 * A cgroup v2 directory: its id is its inode number. A systemd unit name (nginx.service,
 * foo.scope, bar.slice: no '/') is looked for under the cgroup2 mount.
 */
static int parse_cgroup(const struct sp_option *o, const char *arg, struct config *cfg)
{
	char root[PATH_MAX], dir[PATH_MAX];
	size_t n = strlen(arg);
	struct statfs sfs;
	struct stat st;
	int err;

	if (!strchr(arg, '/') && ((n > 8 && !strcmp(arg + n - 8, ".service")) ||
				  (n > 6 && !strcmp(arg + n - 6, ".scope")) ||
				  (n > 6 && !strcmp(arg + n - 6, ".slice")))) {
		err = cg_find_mount("/proc/mounts", root, sizeof(root));
		if (!err)
			err = cg_resolve_arg(root, arg, dir, sizeof(dir));
		if (err)
			return err;
		arg = dir;
	}
	if (statfs(arg, &sfs) || stat(arg, &st))
		return -errno;
	if (sfs.f_type != CGROUP2_SUPER_MAGIC || !S_ISDIR(st.st_mode))
		return -EINVAL;
	cfg->filter.cgroup_id = st.st_ino;
	return 0;
}

static int parse_ring_size(const struct sp_option *o, const char *arg, struct config *cfg)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t bytes;

	if (page <= 0)
		page = 4096;
	if (parse_size(arg, &bytes) || bytes < (uint64_t)page || bytes > (1ULL << 30) ||
	    (bytes & (bytes - 1)))
		return -EINVAL;
	cfg->kernel.ring_bytes = bytes;
	return 0;
}

static int parse_lease_ttl(const struct sp_option *o, const char *arg, struct config *cfg)
{
	int err = engine_parse_lease_ttl(&cfg->engine, arg);

	if (err == -ENOSPC)
		return usage_error("--%s: '%s' is not %s (too many ports)", o->name, arg, o->valid);
	return err;
}

/* "80" or "80%" */
static int parse_port_risk_usage(const struct sp_option *o, const char *arg, struct config *cfg)
{
	char pct[32];
	size_t n = strlen(arg);
	double v;

	if (n && n < sizeof(pct) && arg[n - 1] == '%')
		n--;
	if (!n || n >= sizeof(pct))
		return -EINVAL;
	memcpy(pct, arg, n);
	pct[n] = '\0';
	if (parse_double(pct, 1, 100, &v))
		return -EINVAL;
	cfg->engine.ports.usage_ratio = v / 100.0;
	return 0;
}

static int parse_log(const struct sp_option *o, const char *arg, struct config *cfg)
{
	if (!*arg)
		return -EINVAL;
	if (strcmp(arg, "off") == 0) {
		cfg->agent.log_path = NULL;
		return 0;
	}
	cfg->agent.log_path = keep_string(cfg, arg);
	return cfg->agent.log_path ? 0 : -ENOMEM;
}

static int parse_top_replay(const struct sp_option *o, const char *arg, struct config *cfg)
{
	if (!*arg)
		return -EINVAL;
	cfg->replay_path = keep_string(cfg, arg);
	return cfg->replay_path ? 0 : -ENOMEM;
}

static int parse_log_max_size(const struct sp_option *o, const char *arg, struct config *cfg)
{
	uint64_t v;

	if (parse_size(arg, &v) || (v && v < 4096))
		return -EINVAL;
	cfg->agent.log_max_size = v;
	return 0;
}

/* "tcp-connect,tcp-reset" or "all": a mask of (1 << enum sp_action). */
static int parse_log_actions(const struct sp_option *o, const char *arg, struct config *cfg)
{
	char buf[512], *tok, *save = NULL;
	uint32_t m = 0;
	unsigned int a;

	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return -EINVAL;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "all") == 0) {
			m |= (1u << SP_ACT_MAX) - 1;
			continue;
		}
		for (a = 0; a < SP_ACT_MAX; a++)
			if (action_name(a) && strcmp(tok, action_name(a)) == 0)
				break;
		if (a == SP_ACT_MAX)
			return -EINVAL;
		m |= 1u << a;
	}
	if (!m)
		return -EINVAL;
	cfg->agent.log_actions = m;
	return 0;
}

static int parse_metrics(const struct sp_option *o, const char *arg, struct config *cfg)
{
	struct sockaddr_storage ss;
	socklen_t len;
	bool off;

	if (metrics_parse_listen(arg, &ss, &len, &off))
		return -EINVAL;
	cfg->agent.metrics = keep_string(cfg, arg);
	return cfg->agent.metrics ? 0 : -ENOMEM;
}

/* Only the name: the agent reads the file (and the files it names) before loading anything. */
static int parse_web_config(const struct sp_option *o, const char *arg, struct config *cfg)
{
	if (!*arg)
		return -EINVAL;
	if (strcmp(arg, "off") == 0) {
		cfg->agent.web_config = NULL;
		return 0;
	}
	cfg->agent.web_config = keep_string(cfg, arg);
	return cfg->agent.web_config ? 0 : -ENOMEM;
}

/* Applied by load_config() before the rest of the command line. */
static int parse_config_opt(const struct sp_option *o, const char *arg, struct config *cfg)
{
	if (in_config)
		return usage_error("%s: not allowed in a configuration file", o->name);
	return 0;
}

/* Stores @arg (NULL for flags) as @o says. 0, or SP_EXIT_USAGE after one line on stderr. */
static int apply_option(const struct sp_option *o, const char *arg, struct config *cfg)
{
	void *field = (char *)cfg + o->off;
	uint64_t v;
	double d;
	int err = 0;

	switch (o->kind) {
	case OPT_FLAG:
		*(bool *)field = true;
		return 0;
	case OPT_COUNT:
		(*(int *)field)++;
		return 0;
	case OPT_HELP:
		cfg->help_cmd = hint_cmd;
		cfg->cmd = CMD_HELP;
		return 0;
	case OPT_VERSION:
		cfg->cmd = CMD_VERSION;
		return 0;
	case OPT_U32:
		err = parse_u64(arg, o->min, o->max, &v);
		if (!err)
			*(uint32_t *)field = (uint32_t)v;
		break;
	case OPT_OFF_DURATION:
		if (strcmp(arg, "off") == 0) {
			*(uint64_t *)field = 0;
			return 0;
		}
		/* fall through */
	case OPT_DURATION:
		err = parse_duration(arg, &v);
		if (!err && (v < o->min || v > o->max))
			err = -ERANGE;
		if (!err)
			*(uint64_t *)field = v;
		break;
	case OPT_DOUBLE:
		err = parse_double(arg, o->dmin, o->dmax, &d);
		if (!err)
			*(double *)field = d;
		break;
	case OPT_PORTS:
		err = parse_port_list(arg, field);
		break;
	case OPT_ENUM:
		err = -EINVAL;
		for (unsigned int i = 0; o->names[i]; i++) {
			if (strcmp(o->names[i], arg) == 0) {
				*(unsigned int *)field = i;
				err = 0;
				break;
			}
		}
		break;
	case OPT_CUSTOM:
		err = o->parse(o, arg, cfg);
		if (err > 0)
			return SP_EXIT_USAGE;
		break;
	}
	if (err == -EINVAL || err == -ERANGE || err == -ENOENT || err == -ENOTDIR)
		return usage_error("--%s: '%s' is not %s", o->name, arg ? arg : "", o->valid);
	if (err) /* a file that could not be read: say why */
		return usage_error("--%s: '%s': %s", o->name, arg ? arg : "", strerror(-err));
	return 0;
}

/* ---- the configuration file ---- */

int cli_apply_setting(void *ctx, const char *name, const char *value)
{
	const struct sp_option *o = cli_find_option(name);

	/* config_load() checked the key against the table; a caller other than it may not have */
	if (!o)
		return usage_error("unknown key '%s'", name);
	if (!o->arg && value)
		return usage_error("'%s' takes true or false", name);
	if (o->arg && !value)
		return usage_error("'%s' needs a value", name);
	return apply_option(o, value, ctx);
}

/*
 * Settings for other commands are taken (checked, and unused by this one): one file may serve
 * `agent` and `top` alike. Only the command line is held to what its command takes.
 */
static int load_config(int argc, char **argv, struct config *cfg)
{
	const char *path = config_find_arg(argc, argv);
	int err;

	if (!path)
		return 0;
	cfg->config_path = path;
	in_config = true;
	err = config_load(path, cli_long_options(), cli_config_forbidden, cli_apply_setting, cfg,
			  config_where, sizeof(config_where));
	in_config = false;
	config_where[0] = '\0';
	return err ? SP_EXIT_USAGE : 0;
}

/* ---- the command line ---- */

/* No command word: the dashboard for a person at a terminal, the stream for everyone else. */
static enum sp_command default_command(const struct config *cfg)
{
	if (!cfg->json && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
		return CMD_TOP;
	return CMD_WATCH;
}

/* The options given on the command line that @cfg->cmd does not take: the first is refused. */
static int check_applies(const bool *given, const struct config *cfg)
{
	char cmds[96];

	for (size_t i = 0; i < cli_n_options; i++) {
		const struct sp_option *o = &cli_options[i];

		if (!given[i] || (o->cmds & (1u << cfg->cmd)))
			continue;
		cli_command_list(cmds, sizeof(cmds), o->cmds);
		return usage_error("--%s does not apply to %s (it is for %s)", o->name,
				   cli_command_name(cfg->cmd), cmds);
	}
	return 0;
}

/* `sockpulse help COMMAND`, `sockpulse replay FILE`; nothing else takes words. */
static int positional(int argc, char **argv, struct config *cfg, enum sp_command word)
{
	if (word == CMD_HELP && optind < argc) {
		if (cli_parse_command(argv[optind], &cfg->help_cmd) || cfg->help_cmd == CMD_HELP ||
		    cfg->help_cmd == CMD_VERSION)
			return usage_error("help: '%s' is not a command", argv[optind]);
		optind++;
	} else if (cfg->cmd == CMD_HELP) {
		return 0; /* `sockpulse replay FILE --help` */
	} else if (cfg->cmd == CMD_REPLAY) {
		if (optind != argc - 1)
			return usage_error("replay: needs exactly one FILE (or - for stdin)");
		cfg->replay_path = argv[optind++];
	}
	if (optind < argc)
		return usage_error("'%s': unexpected argument", argv[optind]);
	return 0;
}

int cli_parse(int argc, char **argv, struct config *cfg)
{
	bool given[ARRAY_SIZE(cli_options)] = { false };
	enum sp_command word = CMD_MAX; /* the command word, if any */
	const struct sp_option *o;
	int opt, err;

	hint_cmd = CMD_HELP;
	if (argc > 1 && argv[1][0] != '-') {
		if (cli_parse_command(argv[1], &cfg->cmd))
			return usage_error("unknown command '%s'", argv[1]);
		cfg->cmd_given = true;
		word = hint_cmd = cfg->cmd;
		argc--;
		argv++;
	}
	err = load_config(argc, argv, cfg);
	if (err)
		return err;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, short_options(), cli_long_options(), NULL)) != -1) {
		if (opt == ':')
			return usage_error("%s: option needs a value",
					   argv[optind - 1] ? argv[optind - 1] : "?");
		o = option_by_val(opt);
		if (!o)
			return usage_error("%s: unknown option",
					   argv[optind - 1] ? argv[optind - 1] : "?");
		err = apply_option(o, optarg, cfg);
		if (err)
			return err;
		given[o - cli_options] = true;
	}
	if (cfg->cmd == CMD_HELP || cfg->cmd == CMD_VERSION)
		/* `sockpulse watch --log x --help` is help, not an error */
		return positional(argc, argv, cfg, word);
	if (!cfg->cmd_given)
		cfg->cmd = default_command(cfg);
	hint_cmd = cfg->cmd;
	err = check_applies(given, cfg);
	if (err)
		return err;
	err = positional(argc, argv, cfg, word);
	if (err)
		return err;
	/* One interval for both sides: the engine pads silence by what the kernel coalesces. */
	cfg->engine.lease.coalesce_ns = cfg->kernel.coalesce_ns;
	return SP_EXIT_OK;
}
