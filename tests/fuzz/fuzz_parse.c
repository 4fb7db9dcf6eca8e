// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Command-line and config values: parse_duration, parse_port_list, parse_size, parse_u64,
 * parse_double, engine_parse_lease_ttl, metrics_parse_listen and config_find_arg on arbitrary
 * strings. Besides the sanitizers, results are checked against slow reference parsers written
 * here, and error paths must leave their outputs untouched where the header promises it.
 *
 * Input: one selector byte, then the string (copied into a buffer of its exact length + NUL,
 * so any read past the terminator is caught). For lease-ttl and config_find_arg the string is
 * split at '\n' into several arguments.
 */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "config.h"
#include "metrics.h"
#include "parse.h"

#include "fuzz_common.h"

/* Reference: all digits, at least one, no overflow. */
static int ref_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!len)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static void fuzz_u64(const char *s)
{
	uint64_t v = 12345, ref = 0;
	int r = parse_u64(s, 0, UINT64_MAX, &v), rr = ref_u64(s, strlen(s), &ref);

	fuzz_assert(r == rr, "parse_u64(\"%s\") = %d, reference %d", s, r, rr);
	fuzz_assert(r ? v == 12345 : v == ref, "parse_u64(\"%s\") value", s);
	if (!r) {
		uint64_t lo = ref / 2, hi = ref / 2 + ref % 7;

		r = parse_u64(s, lo, hi, &v);
		fuzz_assert(r == (ref >= lo && ref <= hi ? 0 : -ERANGE), "parse_u64 range");
	}
}

static void fuzz_duration(const char *s)
{
	uint64_t ns = 777, whole;
	const char *dot, *unit;
	int r = parse_duration(s, &ns);

	fuzz_assert(r == 0 || r == -EINVAL || r == -ERANGE, "parse_duration: %d", r);
	if (r) {
		fuzz_assert(ns == 777, "parse_duration(\"%s\") wrote on error", s);
		return;
	}
	/* Accepted: digits, optional .digits, optional known unit, nothing else. */
	unit = s + strspn(s, "0123456789.");
	dot = strchr(s, '.');
	fuzz_assert(s[0] >= '0' && s[0] <= '9', "accepted \"%s\"", s);
	fuzz_assert(!*unit || !strcmp(unit, "ns") || !strcmp(unit, "us") || !strcmp(unit, "ms") ||
			!strcmp(unit, "s") || !strcmp(unit, "m") || !strcmp(unit, "h"),
		    "accepted unit of \"%s\"", s);
	/* Whole numbers in a unit: exact. */
	if (!dot && ref_u64(s, (size_t)(unit - s), &whole) == 0) {
		static const struct {
			const char *u;
			uint64_t m;
		} units[] = {{"", 1000000000ULL},    {"ns", 1},
			     {"us", 1000},	     {"ms", 1000000},
			     {"s", 1000000000ULL},   {"m", 60000000000ULL},
			     {"h", 3600000000000ULL}};

		for (size_t i = 0; i < ARRAY_SIZE(units); i++)
			if (!strcmp(unit, units[i].u))
				fuzz_assert(ns / units[i].m == whole && ns % units[i].m == 0,
					    "parse_duration(\"%s\") = %llu", s,
					    (unsigned long long)ns);
	}
}

static void fuzz_ports(const char *s)
{
	static struct port_set set, before;
	uint32_t bits = 0;
	int r;

	memset(&set, 0, sizeof(set));
	set.bits[100] = 0x5a; /* "adds to what @set already holds" */
	set.count = 4;
	before = set;
	r = parse_port_list(s, &set);
	fuzz_assert(r == 0 || r == -EINVAL, "parse_port_list: %d", r);
	if (r) {
		fuzz_assert(!memcmp(&set, &before, sizeof(set)), "set touched on error: \"%s\"", s);
		return;
	}
	fuzz_assert(!port_set_has(&set, 0), "port 0 accepted: \"%s\"", s);
	for (size_t i = 0; i < sizeof(set.bits); i++)
		bits += (uint32_t)__builtin_popcount(set.bits[i]);
	fuzz_assert(bits == set.count, "count %u, bits %u: \"%s\"", set.count, bits, s);
	fuzz_assert((before.bits[100] & set.bits[100]) == before.bits[100], "earlier ports lost");
}

static void fuzz_size(const char *s)
{
	uint64_t v = 99;
	int r = parse_size(s, &v);

	fuzz_assert(r == 0 || r == -EINVAL || r == -ERANGE, "parse_size: %d", r);
	fuzz_assert(!r || v == 99, "parse_size(\"%s\") wrote on error", s);
	if (!r) {
		uint64_t digits = 0;
		size_t nd = strspn(s, "0123456789");

		fuzz_assert(ref_u64(s, nd, &digits) == 0, "parse_size(\"%s\") digits", s);
		fuzz_assert(digits == 0 ? v == 0 : v % digits == 0 && v >= digits,
			    "parse_size(\"%s\") = %llu", s, (unsigned long long)v);
	}
}

static void fuzz_double(const char *s)
{
	double v = -1;
	int r = parse_double(s, 0, 1e6, &v);

	fuzz_assert(r == 0 || r == -EINVAL || r == -ERANGE, "parse_double: %d", r);
	if (r) {
		fuzz_assert(v == -1, "parse_double(\"%s\") wrote on error", s);
		return;
	}
	fuzz_assert(isfinite(v) && v >= 0 && v <= 1e6, "parse_double(\"%s\") = %g", s, v);
	fuzz_assert(s[0] >= '0' && s[0] <= '9', "parse_double accepted \"%s\"", s);
}

static void fuzz_listen(const char *s)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	bool off = true;
	int r = metrics_parse_listen(s, &ss, &len, &off);

	fuzz_assert(r == 0 || r == -EINVAL, "metrics_parse_listen: %d", r);
	if (r || off)
		return;
	fuzz_assert((ss.ss_family == AF_INET && len == sizeof(struct sockaddr_in)) ||
			(ss.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6)),
		    "family %u len %u", ss.ss_family, (unsigned int)len);
}

static void fuzz_lease_ttl(char *s)
{
	struct engine_config cfg;
	char *line, *next;

	engine_config_default(&cfg);
	for (line = s; line; line = next) {
		struct engine_config before = cfg;
		int r;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		r = engine_parse_lease_ttl(&cfg, line);
		fuzz_assert(r == 0 || r == -EINVAL || r == -ERANGE || r == -ENOSPC,
			    "engine_parse_lease_ttl: %d", r);
		if (r)
			fuzz_assert(!memcmp(&before, &cfg, sizeof(cfg)), "config changed on error");
		fuzz_assert(cfg.lease.n_port_ttl <= LEASE_MAX_PORT_TTL, "n_port_ttl %u",
			    cfg.lease.n_port_ttl);
		fuzz_assert(cfg.lease.ttl_ns > 0, "zero default TTL");
		for (uint32_t i = 0; i < cfg.lease.n_port_ttl; i++) {
			fuzz_assert(cfg.lease.port_ttl[i].port && cfg.lease.port_ttl[i].ttl_ns,
				    "port TTL %u", i);
			for (uint32_t j = 0; j < i; j++)
				fuzz_assert(cfg.lease.port_ttl[i].port !=
						cfg.lease.port_ttl[j].port,
					    "port %u twice", cfg.lease.port_ttl[i].port);
		}
	}
}

static void fuzz_find_arg(char *s)
{
	char *argv[64];
	int argc = 0;
	const char *v;

	argv[argc++] = "sockpulse";
	for (char *p = s; p && argc < 63;) {
		argv[argc++] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = '\0';
	}
	argv[argc] = NULL;
	v = config_find_arg(argc, argv);
	if (v) {
		bool inside = false;

		for (int i = 1; i < argc; i++)
			inside = inside || (v >= argv[i] && v <= argv[i] + strlen(argv[i]));
		fuzz_assert(inside, "config_find_arg points outside argv");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (!size)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] & 7) {
	case 0:
		fuzz_duration(s);
		break;
	case 1:
		fuzz_ports(s);
		break;
	case 2:
		fuzz_size(s);
		break;
	case 3:
		fuzz_u64(s);
		break;
	case 4:
		fuzz_double(s);
		break;
	case 5:
		fuzz_lease_ttl(s);
		break;
	case 6:
		fuzz_listen(s);
		break;
	case 7:
		fuzz_find_arg(s);
		break;
	}
	free(s);
	return 0;
}
