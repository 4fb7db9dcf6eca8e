/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The option table and what it drives: every option parses a good value into its field and
 * refuses a bad one, bounds hold at both ends, an option a command does not take is refused with
 * exit 2 and one line, every option has help and shows in its commands' help (and only there),
 * and the configuration file takes the same keys.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli.h"
#include "sockpulse.h"

#define NS_PER_MS 1000000ULL
#define NS_PER_S 1000000000ULL

/* A good and a bad value for each option; every option of the table must be here. */
static const struct {
	const char *name;
	const char *good;	/* NULL: a flag */
	const char *bad;
} samples[] = {
	{ "json", NULL, NULL },
	{ "duration", "1.5s", "0" },
	{ "no-header", NULL, NULL },
	{ "port", "80,8000-8100", "65536" },
	{ "ipv4", NULL, NULL },
	{ "ipv6", NULL, NULL },
	{ "netns", "/proc/self/ns/net", "/proc/self/ns/mnt" },
	{ "cgroup", NULL /* found at run time */, "/proc" },
	{ "coalesce", "500ms", "999us" },
	{ "ring-size", "64K", "3000" },
	{ "max-sockets", "200000", "1023" },
	{ "connect-hook", "kprobe", "uprobe" },
	{ "lease-ttl", "80=2s", "80=" },
	{ "max-leases", "1000", "0" },
	{ "phi-threshold", "12.5", "-1" },
	{ "hold", "2s", "2h" },
	{ "no-leases", NULL, NULL },
	{ "spike-window", "20", "33" },
	{ "spike-min-failures", "3", "0" },
	{ "spike-z", "0.5", "0.4" },
	{ "spike-min-ratio", "1", "1.1" },
	{ "spike-quiet", "5", "0" },
	{ "spike-merge", "0", "86401" },
	{ "spike-host-min", "0", "65537" },
	{ "stuck-after", "off", "99ms" },
	{ "port-risk-usage", "50%", "0" },
	{ "port-risk-horizon", "24h", "999ms" },
	{ "audit-interval", "off", "0" },
	{ "netns-watch", "/proc/self/ns/net", "/etc/passwd" },
	{ "connections", NULL, NULL },
	{ "delay", "100ms", "99ms" },
	{ "no-color", NULL, NULL },
	{ "no-unicode", NULL, NULL },
	{ "replay", "top.jsonl", "" },
	{ "log", "/tmp/sockpulse-test.jsonl", "" },
	{ "log-max-size", "0", "4095" },
	{ "log-keep", "1000", "1001" },
	{ "log-actions", "tcp-connect,tcp-reset", "tcp-nothing" },
	{ "log-activity", NULL, NULL },
	{ "metrics", "[::1]:9477", "localhost:99999" },
	{ "metrics-services", "200", "201" },
	{ "web-config", "/etc/sockpulse/web.yml", "" },
	{ "sockdiag-interval", "100ms", "2h" },
	{ "config", NULL, NULL },	/* its own test */
	{ "verbose", NULL, NULL },
	{ "help", NULL, NULL },
	{ "version", NULL, NULL },
};

static const enum sp_command run_cmds[] = { CMD_WATCH, CMD_TOP, CMD_AGENT, CMD_AUDIT, CMD_REPLAY,
					    CMD_CHECK };

/* A fresh configuration; what the last parse allocated is freed. */
static void reinit(struct config *cfg)
{
	config_release(cfg);
	config_init(cfg);
}

/* stderr of the parser, captured */
static char err_buf[4096];
static int saved_stderr = -1;
static FILE *err_file;

static void capture_stderr(void)
{
	fflush(stderr);
	err_file = tmpfile();
	assert_non_null(err_file);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(dup2(fileno(err_file), STDERR_FILENO) >= 0);
}

static const char *captured(void)
{
	size_t n;

	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	rewind(err_file);
	n = fread(err_buf, 1, sizeof(err_buf) - 1, err_file);
	err_buf[n] = '\0';
	fclose(err_file);
	return err_buf;
}

static unsigned int count_lines(const char *s)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* `sockpulse CMD ARGS...` into @cfg; returns the exit code; @err: its stderr */
static int parse(struct config *cfg, const char **err, const char *cmd, ...)
{
	char *argv[32] = { "sockpulse" };
	int argc = 1, ret;
	const char *a;
	va_list ap;

	if (cmd)
		argv[argc++] = (char *)cmd;
	va_start(ap, cmd);
	while ((a = va_arg(ap, const char *)) && argc < 31)
		argv[argc++] = (char *)a;
	va_end(ap);
	capture_stderr();
	ret = cli_parse(argc, argv, cfg);
	*err = captured();
	return ret;
}

static const char *cgroup_dir(void)
{
	static char dir[256];
	char line[512], type[64];
	FILE *f = fopen("/proc/mounts", "re");

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %255s %63s", dir, type) == 2 && !strcmp(type, "cgroup2")) {
			fclose(f);
			return dir;
		}
	fclose(f);
	return NULL;
}

static const char *sample_good(size_t i)
{
	if (!strcmp(samples[i].name, "cgroup"))
		return cgroup_dir();
	return samples[i].good;
}

static size_t sample_of(const char *name)
{
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		if (!strcmp(samples[i].name, name))
			return i;
	fail_msg("option --%s has no sample values in this test", name);
	return 0;
}

static enum sp_command first_cmd(const struct sp_option *o)
{
	for (size_t c = 0; c < sizeof(run_cmds) / sizeof(run_cmds[0]); c++)
		if (o->cmds & (1u << run_cmds[c]))
			return run_cmds[c];
	fail_msg("--%s applies to no command", o->name);
	return CMD_WATCH;
}

/* replay takes a FILE */
static const char *replay_file(const struct sp_option *o)
{
	return first_cmd(o) == CMD_REPLAY ? "-" : NULL;
}

static void test_table_complete(void **state)
{
	const struct option *lo = cli_long_options();

	for (size_t i = 0; i < cli_n_options; i++) {
		const struct sp_option *o = &cli_options[i];

		assert_non_null(o->name);
		if (!o->help || !*o->help)
			fail_msg("--%s has no help text", o->name);
		if (o->arg && (!o->valid || !*o->valid))
			fail_msg("--%s takes a value but does not say what a good one is", o->name);
		if (!(o->cmds & CMDS_ALL))
			fail_msg("--%s applies to no command", o->name);
		assert_true(o->section < SEC_MAX);
		assert_true((o->kind == OPT_CUSTOM) == (o->parse != NULL));
		assert_true((o->kind == OPT_ENUM) == (o->names != NULL));
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(cli_options[j].name, o->name))
				fail_msg("--%s twice in the table", o->name);
			if (o->short_flag && cli_options[j].short_flag == o->short_flag)
				fail_msg("-%c twice in the table", o->short_flag);
		}
		/* the getopt table is the option table */
		assert_string_equal(lo[i].name, o->name);
		assert_int_equal(lo[i].has_arg, o->arg ? required_argument : no_argument);
		sample_of(o->name);
	}
	assert_null(lo[cli_n_options].name);
	for (unsigned int s = 0; s < SEC_MAX; s++)
		assert_non_null(cli_section_labels[s]);
}

/* Each option with a good value: exit 0, with the long name and, if any, the short flag. */
static void test_every_option_parses(void **state)
{
	struct config cfg = { 0 };
	const char *err;
	char flag[3];

	for (size_t i = 0; i < cli_n_options; i++) {
		const struct sp_option *o = &cli_options[i];
		const char *cmd = cli_command_name(first_cmd(o));
		const char *good = sample_good(sample_of(o->name));
		char longopt[128];
		int ret;

		if (o->kind == OPT_HELP || o->kind == OPT_VERSION || !strcmp(o->name, "config"))
			continue;
		if (o->arg && !good)
			continue; /* no cgroup2 mount here */
		snprintf(longopt, sizeof(longopt), "--%s", o->name);
		reinit(&cfg);
		ret = parse(&cfg, &err, cmd, longopt, o->arg ? good : replay_file(o),
			    o->arg ? replay_file(o) : NULL, NULL);
		if (ret)
			fail_msg("%s --%s %s: exit %d: %s", cmd, o->name, o->arg ? good : "", ret,
				 err);
		assert_string_equal(err, "");
		config_release(&cfg);
		if (!o->short_flag)
			continue;
		snprintf(flag, sizeof(flag), "-%c", o->short_flag);
		reinit(&cfg);
		ret = parse(&cfg, &err, cmd, flag, o->arg ? good : replay_file(o),
			    o->arg ? replay_file(o) : NULL, NULL);
		if (ret)
			fail_msg("%s %s: exit %d: %s", cmd, flag, ret, err);
		config_release(&cfg);
	}
	config_release(&cfg);
}

/* Each option with a bad value: exit 2, one line naming the option and the value. */
static void test_every_option_refuses_bad_values(void **state)
{
	struct config cfg = { 0 };
	const char *err;

	for (size_t i = 0; i < cli_n_options; i++) {
		const struct sp_option *o = &cli_options[i];
		size_t s = sample_of(o->name);
		char longopt[128], want[192];
		int ret;

		if (!o->arg || !samples[s].bad)
			continue;
		snprintf(longopt, sizeof(longopt), "--%s=%s", o->name, samples[s].bad);
		reinit(&cfg);
		ret = parse(&cfg, &err, cli_command_name(first_cmd(o)), longopt, replay_file(o),
			    NULL);
		if (ret != SP_EXIT_USAGE)
			fail_msg("--%s=%s: exit %d, want 2", o->name, samples[s].bad, ret);
		snprintf(want, sizeof(want), "--%s: '%s' is not ", o->name, samples[s].bad);
		if (!strstr(err, want) || count_lines(err) != 1)
			fail_msg("--%s=%s: stderr \"%s\"", o->name, samples[s].bad, err);
		config_release(&cfg);
	}
	config_release(&cfg);
}

/* What a good value sets, and the bounds of the numeric kinds at both ends. */
static void test_values_and_bounds(void **state)
{
	struct config cfg = { 0 };
	const char *err;

	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "watch", "--coalesce", "1ms", "--hold", "0", "-p",
			       "80", "-p", "443", "--connect-hook", "tracepoint", "-v", "-v",
			       "--max-leases", "67108864", NULL),
			 0);
	assert_int_equal(cfg.kernel.coalesce_ns, NS_PER_MS);
	assert_int_equal(cfg.engine.lease.coalesce_ns, NS_PER_MS); /* one interval, both sides */
	assert_int_equal(cfg.engine.hold_ns, 0);
	assert_int_equal(cfg.filter.ports.count, 2);
	assert_int_equal(cfg.kernel.hook, SP_HOOK_TRACEPOINT);
	assert_int_equal(cfg.verbose, 2);
	assert_int_equal(cfg.engine.lease.max_leases, 1U << 26);

	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "watch", "--coalesce", "1h", "--stuck-after", "off",
			       "--port-risk-usage", "80%", "--spike-z", "100", "-4", "-4", NULL),
			 0);
	assert_int_equal(cfg.kernel.coalesce_ns, 3600 * NS_PER_S);
	assert_int_equal(cfg.engine.stuck.after_ns, 0);
	assert_true(cfg.engine.ports.usage_ratio > 0.799 && cfg.engine.ports.usage_ratio < 0.801);
	assert_int_equal(cfg.filter.family, AF_INET);

	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "watch", "--coalesce", "3600000000001ns", NULL), 2);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "watch", "--max-leases", "67108865", NULL), 2);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "watch", "--spike-z", "100.01", NULL), 2);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "watch", "-4", "-6", NULL), 2);
	assert_non_null(strstr(err, "-4 and -6 exclude each other"));
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "agent", "--log", "off", "--metrics", "off", NULL), 0);
	assert_null(cfg.agent.log_path);
	assert_string_equal(cfg.agent.metrics, "off");
	config_release(&cfg);
}

/* Every option, under every command that does not take it: exit 2, one line saying so. */
static void test_refused_where_it_does_not_apply(void **state)
{
	struct config cfg = { 0 };
	const char *err;
	unsigned int refused = 0;

	for (size_t i = 0; i < cli_n_options; i++) {
		const struct sp_option *o = &cli_options[i];
		const char *good = sample_good(sample_of(o->name));
		char longopt[128], want[128];

		if (o->arg && !good)
			continue;
		for (size_t c = 0; c < sizeof(run_cmds) / sizeof(run_cmds[0]); c++) {
			const char *cmd = cli_command_name(run_cmds[c]);
			int ret;

			if (o->cmds & (1u << run_cmds[c]))
				continue;
			snprintf(longopt, sizeof(longopt), "--%s", o->name);
			reinit(&cfg);
			ret = parse(&cfg, &err, cmd, longopt, o->arg ? good : NULL,
				    run_cmds[c] == CMD_REPLAY ? "-" : NULL, NULL);
			snprintf(want, sizeof(want), "--%s does not apply to %s", o->name, cmd);
			if (ret != SP_EXIT_USAGE || !strstr(err, want) || count_lines(err) != 1)
				fail_msg("%s --%s: exit %d, stderr \"%s\"", cmd, o->name, ret, err);
			config_release(&cfg);
			refused++;
		}
	}
	assert_true(refused > 50);
}

static char *help_of(enum sp_command cmd)
{
	static char buf[32768];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	assert_non_null(f);
	cli_usage(f, cmd);
	assert_false(ferror(f));
	fclose(f);
	return buf;
}

static bool help_mentions(const char *help, const char *name)
{
	char want[128];
	const char *p = help;
	size_t n;

	n = (size_t)snprintf(want, sizeof(want), "--%s", name);
	while ((p = strstr(p, want))) {
		if (p[n] == ' ' || p[n] == '\n')
			return true;
		p += n;
	}
	return false;
}

static void check_width(const char *help)
{
	for (const char *l = help; *l;) {
		size_t n = strcspn(l, "\n");

		if (n > 80)
			fail_msg("help line of %zu columns: %.*s", n, (int)n, l);
		l += n + (l[n] == '\n');
	}
}

/* The general help shows every option and section; a command's help exactly its options. */
static void test_help(void **state)
{
	const char *help = help_of(CMD_HELP);

	check_width(help);
	for (size_t i = 0; i < cli_n_options; i++)
		if (!help_mentions(help, cli_options[i].name))
			fail_msg("--%s is not in the general help", cli_options[i].name);
	for (unsigned int s = 0; s < SEC_MAX; s++) {
		char label[128];

		snprintf(label, sizeof(label), "\n%s", cli_section_labels[s]);
		if (!strstr(help, label))
			fail_msg("section \"%s\" is not in the general help",
				 cli_section_labels[s]);
	}
	for (size_t c = 0; c < sizeof(run_cmds) / sizeof(run_cmds[0]); c++) {
		char usage[64];

		help = help_of(run_cmds[c]);
		check_width(help);
		snprintf(usage, sizeof(usage), "Usage: sockpulse %s",
			 cli_command_name(run_cmds[c]));
		assert_non_null(strstr(help, usage));
		assert_non_null(strstr(help, "Exit status:"));
		for (size_t i = 0; i < cli_n_options; i++) {
			bool applies = cli_options[i].cmds & (1u << run_cmds[c]);

			if (help_mentions(help, cli_options[i].name) != applies)
				fail_msg("help of %s %s --%s", cli_command_name(run_cmds[c]),
					 applies ? "lacks" : "shows", cli_options[i].name);
		}
	}
}

/* `help CMD`, `CMD --help`, `--help`: whose help is printed; help beats other errors. */
static void test_help_words(void **state)
{
	struct config cfg = { 0 };
	const char *err;

	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "help", "watch", NULL), 0);
	assert_int_equal(cfg.cmd, CMD_HELP);
	assert_int_equal(cfg.help_cmd, CMD_WATCH);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "top", "--help", NULL), 0);
	assert_int_equal(cfg.cmd, CMD_HELP);
	assert_int_equal(cfg.help_cmd, CMD_TOP);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "watch", "--log", "/tmp/x", "-h", NULL), 0);
	assert_int_equal(cfg.help_cmd, CMD_WATCH);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "replay", "x.jsonl", "--help", NULL), 0);
	assert_int_equal(cfg.help_cmd, CMD_REPLAY);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, NULL, "--help", NULL), 0);
	assert_int_equal(cfg.help_cmd, CMD_HELP);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "help", NULL), 0);
	assert_int_equal(cfg.help_cmd, CMD_HELP);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "help", "frobnicate", NULL), 2);
	assert_int_equal(count_lines(err), 1);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "help", "watch", "top", NULL), 2);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "frobnicate", NULL), 2);
	assert_non_null(strstr(err, "unknown command 'frobnicate'"));
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "watch", "--frobnicate", NULL), 2);
	assert_non_null(strstr(err, "--frobnicate: unknown option"));
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "watch", "--port", NULL), 2);
	assert_non_null(strstr(err, "needs a value"));
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "replay", NULL), 2);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "replay", "a", "b", NULL), 2);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "replay", "log.jsonl", "--json", NULL), 0);
	assert_string_equal(cfg.replay_path, "log.jsonl");
	/* without a command word and without a terminal: watch */
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, NULL, "--json", NULL), 0);
	assert_int_equal(cfg.cmd, CMD_WATCH);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "version", "x", NULL), 2);
	config_release(&cfg);
}

/* The defaults README and --help promise. */
static void test_defaults(void **state)
{
	struct config cfg = { 0 };

	reinit(&cfg);
	assert_int_equal(cfg.kernel.coalesce_ns, NS_PER_S);
	assert_int_equal(cfg.kernel.ring_bytes, 8u << 20);
	assert_int_equal(cfg.kernel.max_socks, 65536);
	assert_int_equal(cfg.kernel.hook, SP_HOOK_NONE);
	assert_int_equal(cfg.engine.lease.ttl_ns, 30 * NS_PER_S);
	assert_int_equal(cfg.engine.lease.max_leases, 1048576);
	assert_true(cfg.engine.lease.phi_threshold == 8);
	assert_int_equal(cfg.engine.hold_ns, 5 * NS_PER_S);
	assert_int_equal(cfg.engine.spike.window_s, 10);
	assert_int_equal(cfg.engine.spike.min_failures, 5);
	assert_true(cfg.engine.spike.z_enter == 4);
	assert_true(cfg.engine.spike.min_ratio == 0.1);
	assert_int_equal(cfg.engine.spike.leave_s, 30);
	assert_int_equal(cfg.engine.spike.merge_s, 60);
	assert_int_equal(cfg.engine.spike.host_min_dests, 3);
	assert_int_equal(cfg.engine.stuck.after_ns, 60 * NS_PER_S);
	assert_int_equal(cfg.engine.ports.horizon_ns, 60 * NS_PER_S);
	assert_int_equal(cfg.walk.audit_interval_ns, 60 * NS_PER_S);
	assert_int_equal(cfg.top.refresh_ns, NS_PER_S);
	assert_string_equal(cfg.agent.log_path, "/var/log/sockpulse/events.jsonl");
	assert_int_equal(cfg.agent.log_max_size, 100u << 20);
	assert_int_equal(cfg.agent.log_keep, 5);
	assert_string_equal(cfg.agent.metrics, "127.0.0.1:9477");
	assert_int_equal(cfg.walk.sockdiag_interval_ns, 5 * NS_PER_S);
	config_release(&cfg);
}

/* The configuration file: the long names as keys, the command line after it. A key of another
 * command is taken (one file may serve several), the same flag on the command line is not. */
static void test_config_file(void **state)
{
	char path[] = "/tmp/sockpulse-test-cli-XXXXXX";
	static const char text[] = "# agent\n"
				   "log = /srv/sp/events.jsonl\n"
				   "lease-ttl = 80=2s\n"
				   "log-activity = yes\n"
				   "delay = 2s\n"
				   "netns-watch = /proc/self/ns/net\n"
				   "metrics = \"[::1]:9477\"\n";
	struct config cfg = { 0 };
	const char *err;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "agent", "--config", path, "--lease-ttl", "80=3s",
			       NULL),
			 0);
	assert_string_equal(cfg.agent.log_path, "/srv/sp/events.jsonl");
	assert_string_equal(cfg.agent.metrics, "[::1]:9477");
	assert_true(cfg.agent.log_activity);
	assert_int_equal(cfg.walk.n_netns_watch, 1);
	assert_int_equal(cfg.top.refresh_ns, 2 * NS_PER_S); /* a top key, taken */
	assert_int_equal(cfg.engine.lease.n_port_ttl, 1);
	assert_int_equal(cfg.engine.lease.port_ttl[0].ttl_ns, 3 * NS_PER_S); /* flag wins */
	config_release(&cfg);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "agent", "--config", path, "--delay", "2s", NULL), 2);
	assert_non_null(strstr(err, "--delay does not apply to agent"));

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "spike-z = 101\n", 14), 14);
	close(fd);
	reinit(&cfg);
	assert_int_equal(parse(&cfg, &err, "agent", "--config", path, NULL), 2);
	assert_non_null(strstr(err, ":1: --spike-z: '101' is not a number from 0.5 to 100"));
	assert_int_equal(count_lines(err), 1);
	unlink(path);
	config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_complete),
		cmocka_unit_test(test_every_option_parses),
		cmocka_unit_test(test_every_option_refuses_bad_values),
		cmocka_unit_test(test_values_and_bounds),
		cmocka_unit_test(test_refused_where_it_does_not_apply),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_help_words),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_config_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
