/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Parsing of command-line values. Every function checks the whole string; 0 or -errno. */
#ifndef SP_PARSE_H
#define SP_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#define SP_PORT_BITMAP_BYTES (65536 / 8)

struct port_set {
	uint8_t bits[SP_PORT_BITMAP_BYTES]; /* bit p set: port p selected */
	uint32_t count;			    /* number of distinct ports selected */
};

/*
 * "1.5s", "500ms", "250us", "10ns", "2m", "1h", or a bare number of seconds ("30", "0.5").
 * Rejects empty strings, negatives, garbage, unknown units and overflow: -EINVAL or -ERANGE.
 */
int parse_duration(const char *s, uint64_t *ns);

/*
 * "80", "80,443", "8000-8100,9090": ports 1..65535 (0 is rejected), ranges lo<=hi.
 * Empty items ("80,,81", ",80", "80,"), 65536, negatives, garbage: -EINVAL (set untouched
 * on error). Adds to what @set already holds.
 */
int parse_port_list(const char *s, struct port_set *set);
bool port_set_has(const struct port_set *set, uint16_t port);

/* Unsigned decimal in [min, max]; -EINVAL for garbage/empty/sign, -ERANGE out of range. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Decimal number in [min, max] ("8", "0.25", "1e-3"); no NaN, no infinities, no trailing junk. */
int parse_double(const char *s, double min, double max, double *out);

/* Byte sizes: "4096", "64K", "8M", "1G" (binary units, optional trailing "iB"/"B"). */
int parse_size(const char *s, uint64_t *bytes);

#endif
