/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Command-line value parsing. strtoull alone accepts leading blanks, a sign ("-1" wraps to
 * UINT64_MAX) and trailing junk, so every parser here insists on a digit first, checks errno
 * and checks that the whole string was consumed.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "util.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Decimal digits at *s (at least one, no sign, no blanks); advances *s past them. */
static int scan_u64(const char **s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!is_digit(**s))
		return -EINVAL;
	errno = 0;
	v = strtoull(*s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || end == *s)
		return -EINVAL;
	*s = end;
	*out = v;
	return 0;
}

static const struct {
	const char *name;
	uint64_t ns;
} duration_units[] = {
	{ "ns", 1ULL },
	{ "us", 1000ULL },
	{ "ms", NSEC_PER_MSEC },
	{ "s", NSEC_PER_SEC },
	{ "m", 60ULL * NSEC_PER_SEC },
	{ "h", 3600ULL * NSEC_PER_SEC },
};

/*
 * Exact decimal arithmetic rather than strtod: "0.1s" must be 100000000 ns, not 99999999, and
 * values near 2^64 ns must be checked exactly. Fractions below one nanosecond are truncated.
 */
int parse_duration(const char *s, uint64_t *ns)
{
	unsigned __int128 total, frac = 0, scale = 1;
	uint64_t whole, mult = 0;
	const char *p = s;
	size_t i;
	int err;

	if (!s || !*s)
		return -EINVAL;
	err = scan_u64(&p, &whole);
	if (err)
		return err;
	if (*p == '.') {
		p++;
		if (!is_digit(*p))
			return -EINVAL;
		for (; is_digit(*p); p++) {
			/* Past 19 digits (10^19 fits) the rest is worth < 1 ns even in hours. */
			if (scale < 10000000000000000000ULL) {
				frac = frac * 10 + (unsigned int)(*p - '0');
				scale *= 10;
			}
		}
	}
	if (!*p) {
		mult = NSEC_PER_SEC;
	} else {
		for (i = 0; i < ARRAY_SIZE(duration_units); i++) {
			if (!strcmp(p, duration_units[i].name)) {
				mult = duration_units[i].ns;
				break;
			}
		}
		if (!mult)
			return -EINVAL;
	}
	total = (unsigned __int128)whole * mult + frac * mult / scale;
	if (total > UINT64_MAX)
		return -ERANGE;
	*ns = (uint64_t)total;
	return 0;
}

/* One port, 1..65535, at *s; advances *s past its digits. */
static int scan_port(const char **s, uint32_t *port)
{
	uint64_t v;
	int err;

	err = scan_u64(s, &v);
	if (err)
		return -EINVAL;
	if (v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint32_t)v;
	return 0;
}

static bool port_set_add(struct port_set *set, uint32_t port)
{
	uint8_t bit = (uint8_t)(1u << (port & 7));

	if (set->bits[port >> 3] & bit)
		return false;
	set->bits[port >> 3] |= bit;
	set->count++;
	return true;
}

/* Two passes, validate then apply, so that a bad item late in the list leaves @set untouched. */
static int port_list_walk(const char *s, struct port_set *set)
{
	const char *p = s;
	uint32_t lo, hi, port;

	for (;;) {
		if (scan_port(&p, &lo))
			return -EINVAL;
		hi = lo;
		if (*p == '-') {
			p++;
			if (scan_port(&p, &hi) || hi < lo)
				return -EINVAL;
		}
		if (set) {
			for (port = lo; port <= hi; port++)
				port_set_add(set, port);
		}
		if (!*p)
			return 0;
		if (*p != ',')
			return -EINVAL;
		p++;
	}
}

int parse_port_list(const char *s, struct port_set *set)
{
	int err;

	if (!s || !*s || !set)
		return -EINVAL;
	err = port_list_walk(s, NULL);
	if (err)
		return err;
	return port_list_walk(s, set);
}

bool port_set_has(const struct port_set *set, uint16_t port)
{
	return set->bits[port >> 3] & (1u << (port & 7));
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *p = s;
	uint64_t v;
	int err;

	if (!s || !*s)
		return -EINVAL;
	err = scan_u64(&p, &v);
	if (err)
		return err;
	if (*p)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	/* A leading digit, as for the other parsers: no sign, no blanks, no "nan"/"inf". */
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (*end || errno == ERANGE || !isfinite(v))
		return errno == ERANGE ? -ERANGE : -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t *bytes)
{
	const char *p = s;
	unsigned int shift = 0;
	uint64_t v;
	int err;

	if (!s || !*s)
		return -EINVAL;
	err = scan_u64(&p, &v);
	if (err)
		return err;
	switch (*p) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	}
	if (shift) {
		p++;
		if (!strcmp(p, "iB") || !strcmp(p, "B"))
			p += strlen(p);
	} else if (!strcmp(p, "B")) {
		p++;
	}
	if (*p)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*bytes = v << shift;
	return 0;
}
