// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The configuration file: config_load() over arbitrary file contents, with the real option
 * table of the command line (cli_long_options(), built from cli_options) and the real setter
 * (cli_apply_setting()) behind a checking callback.
 *
 * Checks: every setting handed over names an option of the table that is not forbidden; flags
 * get NULL, others a value without a line break; the "FILE:LINE: " context names a line that
 * exists; the result is 0 or a negative errno; what was set stays within the option's bounds.
 *
 * Input: the file's bytes (a memfd, opened by path as the CLI does).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "sockpulse.h"

#include "fuzz_common.h"

static char path[64];
static int fd = -1;
static FILE *devnull;

struct state {
	struct config cfg;
	unsigned int settings, lines;
	const char *where;
};

static int apply(void *ctx, const char *name, const char *value)
{
	struct state *st = ctx;
	const struct sp_option *o = cli_find_option(name);
	unsigned int line = 0;
	const char *colon;

	fuzz_assert(o, "unknown option \"%s\" applied", name);
	for (const char *const *f = cli_config_forbidden; *f; f++)
		fuzz_assert(strcmp(*f, name), "forbidden option \"%s\" applied", name);
	/* "FILE:LINE: " for the messages of the callback */
	fuzz_assert(!strncmp(st->where, path, strlen(path)), "where: \"%s\"", st->where);
	colon = st->where + strlen(path);
	fuzz_assert(sscanf(colon, ":%u: ", &line) == 1 && line >= 1 && line <= st->lines,
		    "where \"%s\" of a %u-line file", st->where, st->lines);
	st->settings++;
	if (!o->arg)
		fuzz_assert(!value, "flag \"%s\" with a value", name);
	else
		/* A quoted value keeps its blanks, so only the line break is sure to be gone. */
		fuzz_assert(value && !strchr(value, '\n'), "value of \"%s\"", name);
	return cli_apply_setting(&st->cfg, name, value);
}

/* What the setters may leave behind, whatever the file said. */
static void check_config(const struct config *c)
{
	const struct engine_config *e = &c->engine;

	fuzz_assert(c->kernel.coalesce_ns >= 1000000ULL && c->kernel.coalesce_ns <= 3600000000000ULL,
		    "coalesce %llu", (unsigned long long)c->kernel.coalesce_ns);
	fuzz_assert(c->kernel.ring_bytes && !(c->kernel.ring_bytes & (c->kernel.ring_bytes - 1)), "ring size");
	fuzz_assert(c->kernel.hook < SP_HOOK_MAX, "hook %u", c->kernel.hook);
	fuzz_assert(c->filter.family == 0 || c->filter.family == AF_INET || c->filter.family == AF_INET6, "family");
	fuzz_assert(c->walk.n_netns_watch <= SP_NETNS_WATCH_MAX, "netns-watch count");
	fuzz_assert(e->lease.n_port_ttl <= LEASE_MAX_PORT_TTL, "port TTLs");
	fuzz_assert(e->lease.max_leases >= 1 && e->lease.max_leases <= 1U << 26, "max-leases");
	fuzz_assert(e->spike.window_s >= 1 && e->spike.window_s <= SPIKE_WINDOW_MAX, "window");
	fuzz_assert(e->ports.usage_ratio > 0 && e->ports.usage_ratio <= 1, "port usage");
	fuzz_assert(c->agent.log_keep <= 1000, "log-keep");
	fuzz_assert(c->agent.log_actions, "log-actions empty");
	fuzz_assert(c->agent.metrics && *c->agent.metrics, "metrics");
	fuzz_assert(!c->agent.log_path || *c->agent.log_path, "log path empty");
	fuzz_assert(!c->agent.web_config || *c->agent.web_config, "web-config path empty");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fd = memfd_create("sockpulse-fuzz-config", MFD_CLOEXEC);
	fuzz_assert(fd >= 0, "memfd_create");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	devnull = fopen("/dev/null", "we");
	fuzz_assert(devnull, "/dev/null");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char where[128] = "";
	struct state st = { .where = where };
	FILE *saved = stderr;
	int r;

	fuzz_assert(ftruncate(fd, 0) == 0 && pwrite(fd, data, size, 0) == (ssize_t)size,
		    "memfd write");
	config_init(&st.cfg);
	for (size_t i = 0; i < size; i++)
		st.lines += data[i] == '\n';
	st.lines += size && data[size - 1] != '\n';
	/* The "FILE:LINE: why" diagnostics are part of the code under test, not of the output. */
	stderr = devnull;
	r = config_load(path, cli_long_options(), cli_config_forbidden, apply, &st, where,
			sizeof(where));
	stderr = saved;
	fuzz_assert(r <= 0, "config_load: %d", r);
	fuzz_assert(where[0] == '\0', "where not cleared: \"%s\"", where);
	check_config(&st.cfg);
	config_release(&st.cfg);
	return 0;
}
