// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The configuration file: config_load() over arbitrary file contents, with the option table of
 * the real command line (names and argument kinds as in user/cli.c) and an apply callback that
 * hands each value to the core parser the CLI would use for it.
 *
 * Checks: every setting handed over names an option of the table that is not forbidden; flags
 * get NULL, others a value without a line break; the
 * "FILE:LINE: " context names a line that exists; the result is 0 or a negative errno.
 *
 * Input: the file's bytes (a memfd, opened by path as the CLI does).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "metrics.h"
#include "parse.h"

#include "fuzz_common.h"

enum kind { K_FLAG, K_DURATION, K_PORTS, K_SIZE, K_U64, K_DOUBLE, K_TTL, K_LISTEN, K_TEXT };

/* The long options of user/cli.c, with the parser each value goes to. */
static const struct {
	struct option o;
	enum kind k;
} table[] = {
    {{"json", no_argument, NULL, 'j'}, K_FLAG},
    {{"duration", required_argument, NULL, 1}, K_DURATION},
    {{"port", required_argument, NULL, 'p'}, K_PORTS},
    {{"ipv4", no_argument, NULL, '4'}, K_FLAG},
    {{"ipv6", no_argument, NULL, '6'}, K_FLAG},
    {{"netns", required_argument, NULL, 2}, K_TEXT},
    {{"cgroup", required_argument, NULL, 3}, K_TEXT},
    {{"coalesce", required_argument, NULL, 4}, K_DURATION},
    {{"ring-size", required_argument, NULL, 5}, K_SIZE},
    {{"connect-hook", required_argument, NULL, 6}, K_TEXT},
    {{"no-header", no_argument, NULL, 7}, K_FLAG},
    {{"log", required_argument, NULL, 8}, K_TEXT},
    {{"log-max-size", required_argument, NULL, 9}, K_SIZE},
    {{"log-keep", required_argument, NULL, 10}, K_U64},
    {{"log-actions", required_argument, NULL, 11}, K_TEXT},
    {{"log-activity", no_argument, NULL, 12}, K_FLAG},
    {{"metrics", required_argument, NULL, 13}, K_LISTEN},
    {{"config", required_argument, NULL, 14}, K_TEXT},
    {{"sockdiag-interval", required_argument, NULL, 15}, K_DURATION},
    {{"lease-ttl", required_argument, NULL, 16}, K_TTL},
    {{"max-leases", required_argument, NULL, 17}, K_U64},
    {{"phi-threshold", required_argument, NULL, 18}, K_DOUBLE},
    {{"no-leases", no_argument, NULL, 19}, K_FLAG},
    {{"hold", required_argument, NULL, 20}, K_DURATION},
    {{"spike-z", required_argument, NULL, 21}, K_DOUBLE},
    {{"spike-quiet", required_argument, NULL, 22}, K_U64},
    {{"delay", optional_argument, NULL, 'd'}, K_DURATION},
    {{"help", no_argument, NULL, 'h'}, K_FLAG},
    {{"version", no_argument, NULL, 'V'}, K_FLAG},
};

static const char *const forbidden[] = {"config", "help", "version", NULL};
static struct option opts[ARRAY_SIZE(table) + 1];
static char path[64];
static int fd = -1;
static FILE *devnull;

struct state {
	struct engine_config ecfg;
	unsigned int settings, lines;
	const char *where;
};

static int apply(void *ctx, const char *name, const char *value)
{
	struct state *st = ctx;
	struct sockaddr_storage ss;
	struct port_set ports;
	unsigned int line = 0;
	const char *colon;
	socklen_t len;
	uint64_t u;
	double d;
	bool off;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(table); i++)
		if (!strcmp(table[i].o.name, name))
			break;
	fuzz_assert(i < ARRAY_SIZE(table), "unknown option \"%s\" applied", name);
	for (const char *const *f = forbidden; *f; f++)
		fuzz_assert(strcmp(*f, name), "forbidden option \"%s\" applied", name);
	/* "FILE:LINE: " for the messages of the callback */
	fuzz_assert(!strncmp(st->where, path, strlen(path)), "where: \"%s\"", st->where);
	colon = st->where + strlen(path);
	fuzz_assert(sscanf(colon, ":%u: ", &line) == 1 && line >= 1 && line <= st->lines,
		    "where \"%s\" of a %u-line file", st->where, st->lines);
	st->settings++;
	if (table[i].k == K_FLAG) {
		fuzz_assert(!value, "flag \"%s\" with a value", name);
		return 0;
	}
	if (!value) /* optional_argument given as "key =" */
		return 0;
	/* A quoted value keeps its blanks, so only the line break is sure to be gone. */
	fuzz_assert(!strchr(value, '\n'), "newline in a value");
	memset(&ports, 0, sizeof(ports));
	switch (table[i].k) {
	case K_DURATION:
		return parse_duration(value, &u) ? 1 : 0;
	case K_PORTS:
		return parse_port_list(value, &ports) ? 1 : 0;
	case K_SIZE:
		return parse_size(value, &u) ? 1 : 0;
	case K_U64:
		return parse_u64(value, 0, UINT32_MAX, &u) ? 1 : 0;
	case K_DOUBLE:
		return parse_double(value, 0, 1e6, &d) ? 1 : 0;
	case K_TTL:
		return engine_parse_lease_ttl(&st->ecfg, value) ? 1 : 0;
	case K_LISTEN:
		return metrics_parse_listen(value, &ss, &len, &off) ? 1 : 0;
	default:
		return 0;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		opts[i] = table[i].o;
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
	struct state st = {.where = where};
	FILE *saved = stderr;
	int r;

	fuzz_assert(ftruncate(fd, 0) == 0 && pwrite(fd, data, size, 0) == (ssize_t)size,
		    "memfd write");
	engine_config_default(&st.ecfg);
	for (size_t i = 0; i < size; i++)
		st.lines += data[i] == '\n';
	st.lines += size && data[size - 1] != '\n';
	/* The "FILE:LINE: why" diagnostics are part of the code under test, not of the output. */
	stderr = devnull;
	r = config_load(path, opts, forbidden, apply, &st, where, sizeof(where));
	stderr = saved;
	fuzz_assert(r <= 0, "config_load: %d", r);
	fuzz_assert(where[0] == '\0', "where not cleared: \"%s\"", where);
	fuzz_assert(st.ecfg.lease.n_port_ttl <= LEASE_MAX_PORT_TTL, "port TTLs");
	return 0;
}
