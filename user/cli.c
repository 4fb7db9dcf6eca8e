// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
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

#include "cli.h"
#include "config.h"
#include "metrics.h"
#include "names.h"
#include "sockpulse.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

enum {
	OPT_DURATION = 0x100,
	OPT_NETNS,
	OPT_CGROUP,
	OPT_COALESCE,
	OPT_RING_SIZE,
	OPT_CONNECT_HOOK,
	OPT_NO_HEADER,
	OPT_LOG,
	OPT_LOG_MAX_SIZE,
	OPT_LOG_KEEP,
	OPT_LOG_ACTIONS,
	OPT_LOG_ACTIVITY,
	OPT_METRICS,
	OPT_CONFIG,
	OPT_SOCKDIAG_INTERVAL,
	OPT_NETNS_WATCH,
	OPT_LEASE_TTL,
	OPT_MAX_LEASES,
	OPT_PHI,
	OPT_NO_LEASES,
	OPT_HOLD,
	OPT_SPIKE_WINDOW,
	OPT_SPIKE_MIN_FAILURES,
	OPT_SPIKE_Z,
	OPT_SPIKE_MIN_RATIO,
	OPT_SPIKE_QUIET,
	OPT_SPIKE_MERGE,
	OPT_SPIKE_HOST_MIN,
	OPT_NO_COLOR,
	OPT_NO_UNICODE,
	OPT_STUCK_AFTER,
	OPT_PORT_RISK_USAGE,
	OPT_PORT_RISK_HORIZON,
	OPT_AUDIT_INTERVAL,
	OPT_CONNECTIONS,
	OPT_TOP_REPLAY,
};

static const struct option long_options[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "port", required_argument, NULL, 'p' },
	{ "ipv4", no_argument, NULL, '4' },
	{ "ipv6", no_argument, NULL, '6' },
	{ "netns", required_argument, NULL, OPT_NETNS },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "coalesce", required_argument, NULL, OPT_COALESCE },
	{ "ring-size", required_argument, NULL, OPT_RING_SIZE },
	{ "connect-hook", required_argument, NULL, OPT_CONNECT_HOOK },
	{ "no-header", no_argument, NULL, OPT_NO_HEADER },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "log-max-size", required_argument, NULL, OPT_LOG_MAX_SIZE },
	{ "log-keep", required_argument, NULL, OPT_LOG_KEEP },
	{ "log-actions", required_argument, NULL, OPT_LOG_ACTIONS },
	{ "log-activity", no_argument, NULL, OPT_LOG_ACTIVITY },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "sockdiag-interval", required_argument, NULL, OPT_SOCKDIAG_INTERVAL },
	{ "netns-watch", required_argument, NULL, OPT_NETNS_WATCH },
	{ "lease-ttl", required_argument, NULL, OPT_LEASE_TTL },
	{ "max-leases", required_argument, NULL, OPT_MAX_LEASES },
	{ "phi-threshold", required_argument, NULL, OPT_PHI },
	{ "no-leases", no_argument, NULL, OPT_NO_LEASES },
	{ "hold", required_argument, NULL, OPT_HOLD },
	{ "spike-window", required_argument, NULL, OPT_SPIKE_WINDOW },
	{ "spike-min-failures", required_argument, NULL, OPT_SPIKE_MIN_FAILURES },
	{ "spike-z", required_argument, NULL, OPT_SPIKE_Z },
	{ "spike-min-ratio", required_argument, NULL, OPT_SPIKE_MIN_RATIO },
	{ "spike-quiet", required_argument, NULL, OPT_SPIKE_QUIET },
	{ "spike-merge", required_argument, NULL, OPT_SPIKE_MERGE },
	{ "spike-host-min", required_argument, NULL, OPT_SPIKE_HOST_MIN },
	{ "stuck-after", required_argument, NULL, OPT_STUCK_AFTER },
	{ "port-risk-usage", required_argument, NULL, OPT_PORT_RISK_USAGE },
	{ "port-risk-horizon", required_argument, NULL, OPT_PORT_RISK_HORIZON },
	{ "audit-interval", required_argument, NULL, OPT_AUDIT_INTERVAL },
	{ "connections", no_argument, NULL, OPT_CONNECTIONS },
	{ "delay", required_argument, NULL, 'd' },
	{ "no-color", no_argument, NULL, OPT_NO_COLOR },
	{ "no-unicode", no_argument, NULL, OPT_NO_UNICODE },
	{ "replay", required_argument, NULL, OPT_TOP_REPLAY },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{},
};

void cli_usage(FILE *out)
{
	fputs("Usage: sockpulse [COMMAND] [OPTIONS]\n"
	      "\n"
	      "Watches TCP from inside the kernel with eBPF: state changes, connect outcomes,\n"
	      "keepalive and retransmission timeouts, resets and inbound activity.\n"
	      "\n"
	      "Commands:\n"
	      "  watch                 stream events to stdout (the default when stdout is\n"
	      "                        not a terminal)\n"
	      "  top                   live dashboard: peers, leases, failures, spikes (the\n"
	      "                        default on a terminal)\n"
	      "  check                 load every connect-hook variant, report what works here\n"
	      "  replay FILE           feed a JSON lines log (watch --json, agent log; - for\n"
	      "                        stdin) through the engine, print its lease/spike lines\n"
	      "  agent                 the host agent: JSON lines log, Prometheus /metrics,\n"
	      "                        socket table gauges; for systemd (tools/sockpulse.service)\n"
	      "  audit                 one-shot keepalive audit of established connections per\n"
	      "                        service port and process: worst-case time to notice a\n"
	      "                        dead peer, suggested settings (--json, --connections)\n"
	      "  help, version\n"
	      "\n"
	      "Options:\n"
	      "  -j, --json            JSON lines (docs/EVENTS.md) instead of aligned text\n"
	      "      --duration SECS   stop after this long (\"30\", \"1.5s\", \"2m\"), exit 0\n"
	      "  -p, --port LIST       only sockets with a local or remote port in LIST\n"
	      "                        (\"80,443,8000-8100\"); may repeat\n"
	      "  -4, --ipv4            only IPv4 (including IPv4-mapped IPv6)\n"
	      "  -6, --ipv6            only IPv6\n"
	      "      --netns NS        only one network namespace: a path such as\n"
	      "                        /run/netns/NAME or /proc/PID/ns/net, or its inode number\n"
	      "      --cgroup PATH     only sockets of a cgroup v2 directory and its descendants\n"
	      "      --coalesce DUR    at most one activity event per socket per DUR (default 1s)\n"
	      "      --ring-size SIZE  ring buffer size, a power of two (default 8M)\n"
	      "      --connect-hook H  auto (default), fentry, kprobe or tracepoint\n"
	      "      --no-header       no column header in text output\n"
	      "\n"
	      "Leases and connect-failure spikes (watch, agent, replay):\n"
	      "      --lease-ttl [PORT=]DUR  lease TTL (default 30s), or for one service port;\n"
	      "                        may repeat\n"
	      "      --max-leases N    lease table bound (default 1048576); evictions counted\n"
	      "      --phi-threshold X suspect early when phi reaches X (default 8; 0: off)\n"
	      "      --hold DUR        hold verdicts this long after a stall or loss (default 5s)\n"
	      "      --no-leases       kernel events only: no lease, spike, stuck or\n"
	      "                        port verdicts, no socket-table walk\n"
	      "      --spike-window S  failures counted over S seconds (default 10)\n"
	      "      --spike-min-failures N  fewest failures in the window (default 5)\n"
	      "      --spike-z Z       Poisson z-score to enter a spike (default 4)\n"
	      "      --spike-min-ratio R  failed share of attempts to enter (default 0.1)\n"
	      "      --spike-quiet S   calm seconds before a spike ends (default 30)\n"
	      "      --spike-merge S   a re-fire within S seconds is the same incident (60)\n"
	      "      --spike-host-min N  destinations spiking together that make one\n"
	      "                        host-wide alert (default 3)\n"
	      "\n"
	      "Connection health (watch, top, agent, replay):\n"
	      "      --stuck-after DUR  alert on a socket in CLOSE_WAIT or FIN_WAIT2 this long\n"
	      "                        (default 60s; \"off\")\n"
	      "      --port-risk-usage PCT  alert when this share of the local port range is in\n"
	      "                        use towards one destination (default 80)\n"
	      "      --port-risk-horizon DUR  ... or when exhaustion is predicted within DUR\n"
	      "                        (default 60s; \"off\")\n"
	      "      --audit-interval DUR  socket-table walk: keepalive audit, port counts\n"
	      "                        (default 60s; \"off\": at start only)\n"
	      "      --connections     audit: one line per connection, then the rollup\n"
	      "\n"
	      "Dashboard options (sockpulse top):\n"
	      "  -d, --delay DUR       screen refresh interval (default 1s, 100ms..1h)\n"
	      "      --no-color        no colors (also when NO_COLOR is set)\n"
	      "      --no-unicode      ASCII sparklines and marks\n"
	      "      --replay FILE     top: the dashboard at the end of a recorded JSON lines log\n"
	      "\n"
	      "Agent options (sockpulse agent):\n"
	      "      --log PATH        JSON lines log (default " SP_DEFAULT_LOG_PATH "),\n"
	      "                        \"off\" for none\n"
	      "      --log-max-size SIZE  rotate past SIZE (default 100M; 0: never)\n"
	      "      --log-keep N      rotated files kept: PATH.1 .. PATH.N (default 5)\n"
	      "      --log-actions LIST  event.action values logged, comma-separated, or \"all\"\n"
	      "                        (default: all)\n"
	      "      --log-activity    log tcp-activity lines too (with --log-actions)\n"
	      "      --metrics ADDR:PORT  Prometheus /metrics (default " SP_DEFAULT_METRICS "),\n"
	      "                        \"[::1]:PORT\", a bare PORT, or \"off\"\n"
	      "      --sockdiag-interval DUR  socket table gauges refresh (default 5s; \"off\")\n"
	      "      --netns-watch PATH  also count and audit sockets of this namespace; may\n"
	      "                        repeat (top, agent, audit)\n"
	      "      --config FILE     read \"key = value\" lines, keys the long options;\n"
	      "                        the command line wins\n"
	      "\n"
	      "  -v, --verbose         debug output, including libbpf's\n"
	      "  -h, --help            this help\n"
	      "  -V, --version         version\n"
	      "\n"
	      "Exit status:\n"
	      "  0  success (also after --duration, SIGINT or SIGTERM)\n"
	      "  1  runtime error\n"
	      "  2  usage error: bad command or option value\n"
	      "  3  missing privilege: needs root or CAP_BPF and CAP_PERFMON\n"
	      "  4  kernel unsupported: no BTF (/sys/kernel/btf/vmlinux) or BPF feature missing\n"
	      "  5  nothing attached: programs loaded but no hook could be attached\n",
	      out);
}

void config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cmd = CMD_WATCH;
	cfg->coalesce_ns = SP_DEFAULT_COALESCE_NS;
	cfg->ring_bytes = SP_DEFAULT_RING_BYTES;
	cfg->hook = SP_HOOK_NONE;
	engine_config_default(&cfg->engine);
	cfg->engine.lease.coalesce_ns = cfg->coalesce_ns;
	cfg->log_path = SP_DEFAULT_LOG_PATH;
	cfg->log_max_size = SP_DEFAULT_LOG_MAX_SIZE;
	cfg->log_keep = SP_DEFAULT_LOG_KEEP;
	/* tcp-activity included: replay needs the renewals to recompute lease verdicts. */
	cfg->log_actions = (1u << SP_ACT_MAX) - 1;
	cfg->metrics = SP_DEFAULT_METRICS;
	cfg->sockdiag_interval_ns = SP_DEFAULT_SOCKDIAG_NS;
	cfg->refresh_ns = SP_DEFAULT_REFRESH_NS;
	cfg->audit_interval_ns = SP_DEFAULT_AUDIT_NS;
}

/* "FILE:LINE: " while a configuration file is applied, else empty. */
static char config_where[512];
static bool in_config;

static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "sockpulse: %s%s (try 'sockpulse --help')\n", config_where, msg);
	return SP_EXIT_USAGE;
}

/* A namespace file (path) or a bare inode number. */
static int parse_netns(const char *arg, uint32_t *inode)
{
	uint64_t v;
	struct statfs sfs;
	struct stat st;
	int fd, type;

	if (parse_u64(arg, 1, UINT32_MAX, &v) == 0) {
		*inode = (uint32_t)v;
		return 0;
	}
	fd = open(arg, O_RDONLY | O_CLOEXEC);
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

/* A cgroup v2 directory: its id is its inode number. */
static int parse_cgroup(const char *arg, uint64_t *id)
{
	struct statfs sfs;
	struct stat st;

	if (statfs(arg, &sfs) || stat(arg, &st))
		return -errno;
	if (sfs.f_type != CGROUP2_SUPER_MAGIC || !S_ISDIR(st.st_mode))
		return -EINVAL;
	*id = st.st_ino;
	return 0;
}

static int parse_hook(const char *arg, unsigned int *hook)
{
	static const char *const names[] = {
		[SP_HOOK_NONE] = "auto",
		[SP_HOOK_FENTRY] = "fentry",
		[SP_HOOK_KPROBE] = "kprobe",
		[SP_HOOK_TRACEPOINT] = "tracepoint",
	};

	for (unsigned int i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i] && strcmp(arg, names[i]) == 0) {
			*hook = i;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_command(const char *word, enum sp_command *cmd)
{
	static const struct {
		const char *name;
		enum sp_command cmd;
	} cmds[] = {
		{ "watch", CMD_WATCH },
		{ "check", CMD_CHECK },
		{ "help", CMD_HELP },
		{ "version", CMD_VERSION },
		{ "agent", CMD_AGENT },
		{ "replay", CMD_REPLAY },
		{ "top", CMD_TOP },
		{ "audit", CMD_AUDIT },
	};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(word, cmds[i].name) == 0) {
			*cmd = cmds[i].cmd;
			return 0;
		}
	}
	return -EINVAL;
}

/* "off" (0), or a duration within [min_ns, max_ns]. 0 or -EINVAL. */
static int parse_off_duration(const char *arg, uint64_t min_ns, uint64_t max_ns, uint64_t *out)
{
	uint64_t v;

	if (strcmp(arg, "off") == 0) {
		*out = 0;
		return 0;
	}
	if (parse_duration(arg, &v) || v < min_ns || v > max_ns)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_u32_opt(const char *arg, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	int err = parse_u64(arg, min, max, &v);

	if (!err)
		*out = (uint32_t)v;
	return err;
}

static int check_ring_size(uint64_t bytes)
{
	long page = sysconf(_SC_PAGESIZE);

	if (page <= 0)
		page = 4096;
	if (bytes < (uint64_t)page || bytes > (1ULL << 30) || (bytes & (bytes - 1)))
		return -EINVAL;
	return 0;
}

/* "tcp-connect,tcp-reset" or "all": a mask of (1 << enum sp_action). */
static int parse_actions(const char *arg, uint32_t *mask)
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
	*mask = m;
	return 0;
}

/* One setting of the configuration file, through the same parser as the command line. */
static int apply_config_setting(void *ctx, const char *name, const char *value)
{
	/* struct config keeps pointers to option values: they live as long as the process */
	static char arena[64 * 1024];
	static size_t used;
	char *opt = arena + used;
	char *argv[] = { "sockpulse", opt, NULL };
	int n;

	n = snprintf(opt, sizeof(arena) - used, value ? "--%s=%s" : "--%s", name,
		     value ? value : "");
	if (n < 0 || (size_t)n >= sizeof(arena) - used)
		return usage_error("%s%s", "configuration file too large", "");
	used += n + 1;
	return cli_parse(2, argv, ctx);
}

static int load_config(int argc, char **argv, struct config *cfg)
{
	static const char *const forbidden[] = { "config", "help", "version", NULL };
	const char *path = config_find_arg(argc, argv);
	int err;

	if (!path)
		return 0;
	cfg->config_path = path;
	in_config = true;
	err = config_load(path, long_options, forbidden, apply_config_setting, cfg, config_where,
			  sizeof(config_where));
	in_config = false;
	config_where[0] = '\0';
	return err ? SP_EXIT_USAGE : 0;
}

int cli_parse(int argc, char **argv, struct config *cfg)
{
	int opt, err;

	if (!in_config) {
		err = load_config(argc, argv, cfg);
		if (err)
			return err;
	}

	if (argc > 1 && argv[1][0] != '-') {
		if (parse_command(argv[1], &cfg->cmd))
			return usage_error("unknown command '%s%s'", "", argv[1]);
		cfg->cmd_given = true;
		argc--;
		argv++;
	}
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":jp:46d:vhV", long_options, NULL)) != -1) {
		switch (opt) {
		case 'j':
			cfg->json = true;
			break;
		case OPT_DURATION:
			if (parse_duration(optarg, &cfg->duration_ns) || cfg->duration_ns == 0)
				return usage_error("%s: '%s' is not a positive duration", "--duration",
						   optarg);
			break;
		case 'p':
			if (parse_port_list(optarg, &cfg->ports))
				return usage_error("%s: '%s' is not a port list (ports 1-65535, "
						   "lists and ranges like 80,8000-8100)",
						   "--port", optarg);
			break;
		case '4':
		case '6':
			if (cfg->family)
				return usage_error("%s%s: -4 and -6 exclude each other", "", "");
			cfg->family = opt == '4' ? AF_INET : AF_INET6;
			break;
		case OPT_NETNS:
			err = parse_netns(optarg, &cfg->netns);
			if (err)
				return usage_error("%s: '%s' is not a network namespace file or inode",
						   "--netns", optarg);
			break;
		case OPT_CGROUP:
			err = parse_cgroup(optarg, &cfg->cgroup_id);
			if (err)
				return usage_error("%s: '%s' is not a cgroup v2 directory", "--cgroup",
						   optarg);
			break;
		case OPT_COALESCE:
			if (parse_duration(optarg, &cfg->coalesce_ns) || cfg->coalesce_ns < 1000000 ||
			    cfg->coalesce_ns > 3600ULL * 1000000000ULL)
				return usage_error("%s: '%s' is not a duration from 1ms to 1h",
						   "--coalesce", optarg);
			break;
		case OPT_RING_SIZE:
			if (parse_size(optarg, &cfg->ring_bytes) || check_ring_size(cfg->ring_bytes))
				return usage_error("%s: '%s' is not a power of two from a page to 1G",
						   "--ring-size", optarg);
			break;
		case OPT_CONNECT_HOOK:
			if (parse_hook(optarg, &cfg->hook))
				return usage_error("%s: '%s' is not one of auto, fentry, kprobe, "
						   "tracepoint",
						   "--connect-hook", optarg);
			break;
		case OPT_NO_HEADER:
			cfg->no_header = true;
			break;
		case OPT_LOG:
			if (!*optarg)
				return usage_error("%s: '%s' is not a file path", "--log", optarg);
			cfg->log_path = strcmp(optarg, "off") == 0 ? NULL : optarg;
			break;
		case OPT_LOG_MAX_SIZE:
			if (parse_size(optarg, &cfg->log_max_size) ||
			    (cfg->log_max_size && cfg->log_max_size < 4096))
				return usage_error("%s: '%s' is not 0 or a size of at least 4K",
						   "--log-max-size", optarg);
			break;
		case OPT_LOG_KEEP: {
			uint64_t v;

			if (parse_u64(optarg, 0, 1000, &v))
				return usage_error("%s: '%s' is not a number from 0 to 1000",
						   "--log-keep", optarg);
			cfg->log_keep = (unsigned int)v;
			break;
		}
		case OPT_LOG_ACTIONS:
			if (parse_actions(optarg, &cfg->log_actions))
				return usage_error("%s: '%s' is not a list of event.action names "
						   "(tcp-connect,tcp-reset,...) or \"all\"",
						   "--log-actions", optarg);
			break;
		case OPT_LOG_ACTIVITY:
			cfg->log_activity = true;
			break;
		case OPT_METRICS: {
			struct sockaddr_storage ss;
			socklen_t len;
			bool off;

			if (metrics_parse_listen(optarg, &ss, &len, &off))
				return usage_error("%s: '%s' is not ADDR:PORT, [ADDR6]:PORT, PORT or "
						   "off",
						   "--metrics", optarg);
			cfg->metrics = optarg;
			break;
		}
		case OPT_CONFIG:
			/* applied by load_config() before the command line */
			if (in_config)
				return usage_error("%s%s: not allowed in a configuration file", "",
						   "config");
			break;
		case OPT_SOCKDIAG_INTERVAL:
			if (parse_off_duration(optarg, 100000000ULL, 3600ULL * 1000000000ULL,
					       &cfg->sockdiag_interval_ns))
				return usage_error("%s: '%s' is not off or a duration from 100ms to 1h",
						   "--sockdiag-interval", optarg);
			break;
		case OPT_NETNS_WATCH: {
			uint32_t ino;

			if (optarg[0] != '/' || parse_netns(optarg, &ino))
				return usage_error("%s: '%s' is not a network namespace file",
						   "--netns-watch", optarg);
			if (cfg->n_netns_watch >= SP_NETNS_WATCH_MAX)
				return usage_error("%s: more than %d namespaces", "--netns-watch",
						   SP_NETNS_WATCH_MAX);
			cfg->netns_watch[cfg->n_netns_watch++] = optarg;
			break;
		}
		case OPT_LEASE_TTL:
			err = engine_parse_lease_ttl(&cfg->engine, optarg);
			if (err)
				return usage_error("%s: '%s' is not DURATION or PORT=DURATION%s",
						   "--lease-ttl", optarg,
						   err == -ENOSPC ? " (too many ports)" : "");
			break;
		case OPT_MAX_LEASES:
			if (parse_u32_opt(optarg, 1, 1U << 26, &cfg->engine.lease.max_leases))
				return usage_error("%s: '%s' is not a number from 1 to 67108864",
						   "--max-leases", optarg);
			break;
		case OPT_PHI:
			if (parse_double(optarg, 0, 1000, &cfg->engine.lease.phi_threshold))
				return usage_error("%s: '%s' is not a number from 0 to 1000",
						   "--phi-threshold", optarg);
			break;
		case OPT_NO_LEASES:
			cfg->no_engine = true;
			break;
		case OPT_HOLD:
			if (parse_duration(optarg, &cfg->engine.hold_ns) ||
			    cfg->engine.hold_ns > 3600ULL * 1000000000ULL)
				return usage_error("%s: '%s' is not a duration up to 1h", "--hold",
						   optarg);
			break;
		case OPT_SPIKE_WINDOW:
			if (parse_u32_opt(optarg, 1, SPIKE_WINDOW_MAX, &cfg->engine.spike.window_s))
				return usage_error("%s: '%s' is not a number of seconds from 1 to %d",
						   "--spike-window", optarg, SPIKE_WINDOW_MAX);
			break;
		case OPT_SPIKE_MIN_FAILURES:
			if (parse_u32_opt(optarg, 1, 1000000, &cfg->engine.spike.min_failures))
				return usage_error("%s: '%s' is not a number from 1 to 1000000",
						   "--spike-min-failures", optarg);
			break;
		case OPT_SPIKE_QUIET:
			if (parse_u32_opt(optarg, 1, 86400, &cfg->engine.spike.leave_s))
				return usage_error("%s: '%s' is not a number of seconds from 1 to 86400",
						   "--spike-quiet", optarg);
			break;
		case OPT_SPIKE_MERGE:
			if (parse_u32_opt(optarg, 0, 86400, &cfg->engine.spike.merge_s))
				return usage_error("%s: '%s' is not a number of seconds from 0 to 86400",
						   "--spike-merge", optarg);
			break;
		case OPT_SPIKE_HOST_MIN:
			if (parse_u32_opt(optarg, 0, 65536, &cfg->engine.spike.host_min_dests))
				return usage_error("%s: '%s' is not a number from 0 (off) to 65536",
						   "--spike-host-min", optarg);
			break;
		case OPT_SPIKE_Z:
			if (parse_double(optarg, 0.5, 100, &cfg->engine.spike.z_enter))
				return usage_error("%s: '%s' is not a number from 0.5 to 100",
						   "--spike-z", optarg);
			break;
		case OPT_SPIKE_MIN_RATIO:
			if (parse_double(optarg, 0, 1, &cfg->engine.spike.min_ratio))
				return usage_error("%s: '%s' is not a number from 0 to 1",
						   "--spike-min-ratio", optarg);
			break;
		case OPT_STUCK_AFTER:
			if (parse_off_duration(optarg, 100000000ULL, 86400ULL * 1000000000ULL,
					       &cfg->engine.stuck.after_ns))
				return usage_error("%s: '%s' is not off or a duration from 100ms to 1d",
						   "--stuck-after", optarg);
			break;
		case OPT_PORT_RISK_USAGE: {
			char pct[32];
			size_t n = strlen(optarg);
			double v;

			/* "80" or "80%" */
			if (n && n < sizeof(pct) && optarg[n - 1] == '%')
				n--;
			if (!n || n >= sizeof(pct))
				return usage_error("%s: '%s' is not a percentage from 1 to 100",
						   "--port-risk-usage", optarg);
			memcpy(pct, optarg, n);
			pct[n] = '\0';
			if (parse_double(pct, 1, 100, &v))
				return usage_error("%s: '%s' is not a percentage from 1 to 100",
						   "--port-risk-usage", optarg);
			cfg->engine.ports.usage_ratio = v / 100.0;
			break;
		}
		case OPT_PORT_RISK_HORIZON:
			if (parse_off_duration(optarg, 1000000000ULL, 86400ULL * 1000000000ULL,
					       &cfg->engine.ports.horizon_ns))
				return usage_error("%s: '%s' is not off or a duration from 1s to 1d",
						   "--port-risk-horizon", optarg);
			break;
		case OPT_AUDIT_INTERVAL:
			if (parse_off_duration(optarg, 1000000000ULL, 86400ULL * 1000000000ULL,
					       &cfg->audit_interval_ns))
				return usage_error("%s: '%s' is not off or a duration from 1s to 1d",
						   "--audit-interval", optarg);
			break;
		case OPT_CONNECTIONS:
			cfg->audit_connections = true;
			break;
		case 'd':
			if (parse_duration(optarg, &cfg->refresh_ns) || cfg->refresh_ns < 100000000ULL ||
			    cfg->refresh_ns > 3600ULL * 1000000000ULL)
				return usage_error("%s: '%s' is not a duration from 100ms to 1h",
						   "--delay", optarg);
			break;
		case OPT_NO_COLOR:
			cfg->no_color = true;
			break;
		case OPT_NO_UNICODE:
			cfg->no_unicode = true;
			break;
		case OPT_TOP_REPLAY:
			if (cfg->cmd != CMD_TOP)
				return usage_error("%s", "--replay: only for top (sockpulse top "
							 "--replay FILE)");
			cfg->replay_path = optarg;
			break;
		case 'v':
			cfg->verbose++;
			break;
		case 'h':
			cfg->cmd = CMD_HELP;
			break;
		case 'V':
			cfg->cmd = CMD_VERSION;
			break;
		case ':':
			return usage_error("%s%s: option needs a value", "",
					   argv[optind - 1] ? argv[optind - 1] : "?");
		default:
			return usage_error("%s%s: unknown option", "",
					   argv[optind - 1] ? argv[optind - 1] : "?");
		}
	}
	if (cfg->cmd == CMD_REPLAY && !in_config) {
		if (optind != argc - 1)
			return usage_error("%s%s", "replay: ", "needs exactly one FILE (or - for stdin)");
		cfg->replay_path = argv[optind++];
	}
	if (optind < argc)
		return usage_error("%s'%s': unexpected argument", "", argv[optind]);
	/* One interval for both sides: the engine pads silence by what the kernel coalesces. */
	cfg->engine.lease.coalesce_ns = cfg->coalesce_ns;
	return SP_EXIT_OK;
}
