/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the formatters of format.h share (format.c, format_json.c, format_text.c), no one else:
 * the bounded writer every line goes through. It remembers overflow, so a formatter either
 * produces a whole line or reports 0: a consumer never sees half an object. The smallest pieces
 * are inline here; numbers, JSON escaping, timestamps and addresses are in format.c.
 */
#ifndef SP_FORMAT_INTERNAL_H
#define SP_FORMAT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "format.h"

/*
 * The writer is on the agent's hottest path (a dozen lines per connection under a connect storm),
 * so the pieces are inlined into each formatter and work on a local copy of the cursor: a store
 * through a char pointer may alias anything, and a cursor kept in the struct would be reloaded
 * after every byte written. Overflow collapses end onto the cursor, so one "room" comparison per
 * piece also covers "already full".
 */
#define SP_INLINE static inline __attribute__((always_inline))

struct wr {
	char *start;
	char *p;
	char *end; /* last byte, kept for the NUL */
	bool full;
};

static inline void wr_init(struct wr *w, char *buf, size_t cap)
{
	w->start = buf;
	w->p = buf;
	w->end = buf && cap ? buf + cap - 1 : buf;
	w->full = !buf || !cap;
}

/* Length of the finished string, NUL-terminated, or 0 if anything did not fit. */
static inline size_t wr_finish(struct wr *w)
{
	if (w->full)
		return 0;
	*w->p = '\0';
	return (size_t)(w->p - w->start);
}

/* Marks the line as failed: nothing more is written, wr_finish() reports 0. */
SP_INLINE void wr_fail(struct wr *w)
{
	w->full = true;
	w->end = w->p;
}

/* Room for @n more bytes; on overflow the writer stays full (no later piece fits either). */
SP_INLINE bool wr_room(struct wr *w, size_t n)
{
	if (__builtin_expect((size_t)(w->end - w->p) >= n, 1))
		return true;
	wr_fail(w);
	return false;
}

SP_INLINE void put(struct wr *w, const char *s, size_t n)
{
	if (!wr_room(w, n))
		return;
	memcpy(w->p, s, n); /* inlined where n is a constant, which most pieces are */
	w->p += n;
}

#define PUTS(w, lit) put((w), "" lit, sizeof(lit) - 1) /* "" lit: literals only */

static inline void put_str(struct wr *w, const char *s)
{
	put(w, s, strlen(s));
}

SP_INLINE void put_ch(struct wr *w, char c)
{
	if (!wr_room(w, 1))
		return;
	*w->p++ = c;
}

/*
 * Pieces at a bare cursor, for a writer of its own (the JSON line's): each writes at p without a
 * check, the caller having made room for the bound given, and returns the end of what it wrote.
 */
extern const uint64_t sp_pow10[20];
extern const char sp_digit_pairs[201]; /* "00" to "99" */

/* Decimal digits of v (1..20): log10 from the bit length (1233/4096 ~ log10(2)), then one
 * comparison, no loop. */
SP_INLINE unsigned int dec_len(uint64_t v)
{
	uint64_t x = v | 1; /* 0 has one digit, like 1 */
	unsigned int t = ((64 - (unsigned int)__builtin_clzll(x)) * 1233) >> 12;

	return t + 1 - (x < sp_pow10[t]);
}

/* Four digits of v < 10000, zero-padded. */
SP_INLINE void dec4(char *p, uint32_t v)
{
	memcpy(p, sp_digit_pairs + v / 100 * 2, 2);
	memcpy(p + 2, sp_digit_pairs + v % 100 * 2, 2);
}

/*
 * The last @n digits of v written backwards from end; n >= digits of v. Eight digits at a time
 * in two independent halves of four, then pairs: the multiplications overlap instead of each
 * waiting for the one before, as two digits per division did (put_u64 was 6% of the agent).
 */
SP_INLINE void dec_write(char *end, uint64_t v, unsigned int n)
{
	char *q = end;
	uint32_t x;

	while (n > 8) {
		if (v <= UINT32_MAX) { /* a 32-bit division is the cheaper, and most values fit */
			x = (uint32_t)v % 100000000;
			v = (uint32_t)v / 100000000;
		} else {
			x = (uint32_t)(v % 100000000);
			v /= 100000000;
		}
		q -= 8;
		dec4(q, x / 10000);
		dec4(q + 4, x % 10000);
		n -= 8;
	}
	x = (uint32_t)v; /* < 10^8 now */
	if (n > 4) {
		q -= 4;
		dec4(q, x % 10000);
		x /= 10000;
		n -= 4;
	}
	if (n > 2) {
		q -= 2;
		memcpy(q, sp_digit_pairs + x % 100 * 2, 2);
		x /= 100;
		n -= 2;
	}
	if (n == 2)
		memcpy(q - 2, sp_digit_pairs + x * 2, 2);
	else if (n)
		q[-1] = (char)('0' + x);
}

/* v in @n digits, n >= dec_len(v) (zero-padded). */
SP_INLINE char *fmt_dec(char *p, uint64_t v, unsigned int n)
{
	dec_write(p + n, v, n);
	return p + n;
}

/* 6 bytes per byte of str at most, as put_escaped(). */
char *fmt_escaped(char *p, const char *str, size_t len);
/* SP_RFC3339_LEN bytes, as put_rfc3339(); NULL (nothing written) for a year past 9999. */
#define SP_RFC3339_LEN 30
char *fmt_rfc3339(char *p, uint64_t real_ns);
/* SP_ADDR_STR_MAX - 1 bytes at most, as format_addr(); nothing for family 0. */
char *fmt_addr(char *p, const struct sp_addr *a);

/* Decimal, written in place. */
void put_u64(struct wr *w, uint64_t v);
/* Zero-padded to @width digits (timestamps). */
void put_u64_pad(struct wr *w, uint64_t v, unsigned int width);
/*
 * Non-negative finite value with up to 6 decimals, trailing zeros trimmed ("0.016667", "4",
 * "12.5"). The caller skips NaN and infinities, which JSON cannot carry.
 */
void put_double(struct wr *w, double v);
/* JSON string body, as json_escape(). */
void put_escaped(struct wr *w, const char *str, size_t len);
/* "2026-11-28T06:45:12.123456789Z", as format_rfc3339_ns(). */
void put_rfc3339(struct wr *w, uint64_t real_ns);

/* The family an address is printed as (a v4-mapped one as IPv4), 0 when unknown; *bytes its
 * address bytes in that family. */
SP_INLINE int addr_family(const struct sp_addr *a, const uint8_t **bytes)
{
	static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	*bytes = a->bytes;
	if (a->family == AF_INET6 && !memcmp(a->bytes, v4mapped_prefix, sizeof(v4mapped_prefix))) {
		*bytes = a->bytes + 12;
		return AF_INET;
	}
	return a->family == AF_INET || a->family == AF_INET6 ? a->family : 0;
}

/* Address text into tmp (SP_ADDR_STR_MAX); its length, 0 when absent or unknown family. */
size_t addr_str(char *tmp, const struct sp_addr *a, bool *v6);

#endif
