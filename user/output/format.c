/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The line writer's out-of-line pieces (format_internal.h), shared by the JSON line
 * (format_json.c) and the text line (format_text.c), and the format.h formatters of a single
 * value built on them. Numbers are formatted by hand (no printf per field, no locale: a
 * setlocale() elsewhere in the process must not turn "0.5" into "0,5" in JSON).
 */
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "format_internal.h"
#include "util.h"

const char sp_digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
				 "25262728293031323334353637383940414243444546474849"
				 "50515253545556575859606162636465666768697071727374"
				 "75767778798081828384858687888990919293949596979899";

const uint64_t sp_pow10[20] = {
	1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
	100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
	10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
	100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL,
};

/* Numbers are most of a line (ports, pids, cookies, sequence): written in place. */
void put_u64(struct wr *w, uint64_t v)
{
	unsigned int n = dec_len(v);

	if (!wr_room(w, n))
		return;
	dec_write(w->p + n, v, n);
	w->p += n;
}

void put_u64_pad(struct wr *w, uint64_t v, unsigned int width)
{
	unsigned int n = dec_len(v);

	if (n < width)
		n = width;
	if (!wr_room(w, n))
		return;
	dec_write(w->p + n, v, n);
	w->p += n;
}

void put_double(struct wr *w, double v)
{
	uint64_t scaled, frac;
	char digits[6];
	int n;

	if (v < 0) {
		put_ch(w, '-');
		v = -v;
	}
	if (v >= 1e15) {
		put_u64(w, v >= 1.8e19 ? UINT64_MAX : (uint64_t)v);
		return;
	}
	scaled = (uint64_t)(v * 1e6 + 0.5);
	put_u64(w, scaled / 1000000);
	frac = scaled % 1000000;
	if (!frac)
		return;
	for (n = 5; n >= 0; n--) {
		digits[n] = (char)('0' + frac % 10);
		frac /= 10;
	}
	for (n = 6; n > 0 && digits[n - 1] == '0'; n--)
		;
	put_ch(w, '.');
	put(w, digits, (size_t)n);
}

/* ---- JSON string escaping ---- */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0) {
		len = 2;
	} else if (c < 0xf0) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c < 0xf5) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return len;
}

/*
 * What a byte becomes in a JSON string: 0 itself, 'u' \u00XX, '8' the start of a UTF-8
 * sequence to check, else the letter after a backslash. DEL is legal JSON, but escaped it cannot
 * reach a terminal raw.
 */
static const char json_esc[256] = {
	[0x00 ... 0x07] = 'u', ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', [0x0b] = 'u', ['\f'] = 'f',
	['\r'] = 'r', [0x0e ... 0x1f] = 'u', ['"'] = '"', ['\\'] = '\\', [0x7f] = 'u',
	[0x80 ... 0xff] = '8',
};

char *fmt_escaped(char *p, const char *str, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, seq;

	while (i < len) {
		unsigned char c = s[i];
		char e = json_esc[c];

		if (!e) {
			*p++ = (char)c;
			i++;
			continue;
		}
		if (e == '8') {
			seq = utf8_seq_len(s + i, len - i);
			if (!seq) {
				memcpy(p, "\\ufffd", 6);
				p += 6;
				i++;
				continue;
			}
			memcpy(p, s + i, seq);
			p += seq;
			i += seq;
			continue;
		}
		p[0] = '\\';
		if (e == 'u') {
			memcpy(p + 1, "u00", 3);
			p[4] = hex[c >> 4];
			p[5] = hex[c & 0xf];
			p += 6;
		} else {
			p[1] = e;
			p += 2;
		}
		i++;
	}
	return p;
}

/*
 * Where all of it fits at the worst (six bytes per byte), unchecked; near the end of the buffer,
 * piece by piece, so the verdict is the same as for the exact length.
 */
void put_escaped(struct wr *w, const char *str, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run, seq;
	char u[6] = { '\\', 'u', '0', '0', 0, 0 };

	if (len <= (size_t)(w->end - w->p) / 6) {
		w->p = fmt_escaped(w->p, str, len);
		return;
	}
	while (i < len && !w->full) {
		/* Copy runs of bytes that need nothing in one go. */
		for (run = i; run < len && !json_esc[s[run]]; run++)
			;
		put(w, str + i, run - i);
		i = run;
		if (i >= len)
			break;
		if (json_esc[s[i]] == '8') {
			seq = utf8_seq_len(s + i, len - i);
			if (!seq) {
				PUTS(w, "\\ufffd");
				i++;
				continue;
			}
			put(w, str + i, seq);
			i += seq;
			continue;
		}
		if (json_esc[s[i]] == 'u') {
			u[4] = hex[s[i] >> 4];
			u[5] = hex[s[i] & 0xf];
			put(w, u, sizeof(u));
		} else {
			char e[2] = { '\\', json_esc[s[i]] };

			put(w, e, sizeof(e));
		}
		i++;
	}
}

size_t json_escape(char *buf, size_t cap, const char *s, size_t len)
{
	struct wr w;

	wr_init(&w, buf, cap);
	put_escaped(&w, s, len);
	return wr_finish(&w);
}

/* ---- timestamps and addresses ---- */

/*
 * The date and time of day change once a second while events come by the thousand: the
 * "YYYY-MM-DDTHH:MM:SS" part is kept for the last second seen (the agent has one thread).
 */
char *fmt_rfc3339(char *p, uint64_t real_ns)
{
	static time_t cached_secs = -1;
	static char cached[19];
	time_t secs = (time_t)(real_ns / NSEC_PER_SEC);
	struct tm tm;
	struct wr cw;

	if (secs != cached_secs) {
		if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 > 9999)
			return NULL;
		wr_init(&cw, cached, sizeof(cached) + 1);
		cw.end = cached + sizeof(cached); /* no NUL needed */
		put_u64_pad(&cw, (uint64_t)tm.tm_year + 1900, 4);
		put_ch(&cw, '-');
		put_u64_pad(&cw, (uint64_t)tm.tm_mon + 1, 2);
		put_ch(&cw, '-');
		put_u64_pad(&cw, (uint64_t)tm.tm_mday, 2);
		put_ch(&cw, 'T');
		put_u64_pad(&cw, (uint64_t)tm.tm_hour, 2);
		put_ch(&cw, ':');
		put_u64_pad(&cw, (uint64_t)tm.tm_min, 2);
		put_ch(&cw, ':');
		put_u64_pad(&cw, (uint64_t)tm.tm_sec, 2);
		if (cw.full || cw.p != cached + sizeof(cached))
			return NULL;
		cached_secs = secs;
	}
	/* "YYYY-MM-DDTHH:MM:SS" ".nnnnnnnnn" "Z" */
	memcpy(p, cached, sizeof(cached));
	p[sizeof(cached)] = '.';
	dec_write(p + sizeof(cached) + 10, real_ns % NSEC_PER_SEC, 9);
	p[sizeof(cached) + 10] = 'Z';
	return p + SP_RFC3339_LEN;
}

void put_rfc3339(struct wr *w, uint64_t real_ns)
{
	char *end;

	if (!wr_room(w, SP_RFC3339_LEN))
		return;
	end = fmt_rfc3339(w->p, real_ns);
	if (!end) {
		wr_fail(w);
		return;
	}
	w->p = end;
}

size_t format_rfc3339_ns(char *buf, size_t cap, uint64_t real_ns)
{
	struct wr w;

	wr_init(&w, buf, cap);
	put_rfc3339(&w, real_ns);
	return wr_finish(&w);
}

/* Dotted quad in place ("255.255.255.255" at most); glibc's inet_ntop goes through sprintf for
 * IPv4, too slow per event. */
SP_INLINE char *fmt_ipv4(char *p, const uint8_t *b)
{
	for (int i = 0; i < 4; i++) {
		unsigned int v = b[i], n = 1 + (v >= 10) + (v >= 100);

		if (i)
			*p++ = '.';
		dec_write(p + n, v, n);
		p += n;
	}
	return p;
}

/*
 * RFC 5952 text, byte for byte as glibc's inet_ntop() writes it (which went through sprintf per
 * group): lower case without leading zeros, the longest run of two or more zero groups (the first
 * of equals) as "::", and the last four bytes of ::a.b.c.d dotted.
 */
static char *fmt_ipv6(char *p, const uint8_t *b)
{
	static const char hex[] = "0123456789abcdef";
	unsigned int g[8], zero = 8, zlen = 0, i, run, n;

	for (i = 0; i < 8; i++)
		g[i] = (unsigned int)b[2 * i] << 8 | b[2 * i + 1];
	for (i = 0; i < 8; i += run + 1) {
		for (run = 0; i + run < 8 && !g[i + run]; run++)
			;
		if (run >= 2 && run > zlen) {
			zero = i;
			zlen = run;
		}
	}
	for (i = 0; i < 8; i++) {
		if (i == zero) {
			*p++ = ':'; /* the second ':' is the next group's, or the one at the end */
			i += zlen - 1;
			continue;
		}
		if (i)
			*p++ = ':';
		if (i == 6 && zero == 0 &&
		    (zlen == 6 || (zlen == 7 && g[7] != 1) || (zlen == 5 && g[5] == 0xffff)))
			return fmt_ipv4(p, b + 12);
		n = 1 + (g[i] >= 0x10) + (g[i] >= 0x100) + (g[i] >= 0x1000);
		for (unsigned int k = n, v = g[i]; k--; v >>= 4)
			p[k] = hex[v & 0xf];
		p += n;
	}
	if (zlen && zero + zlen == 8)
		*p++ = ':';
	return p;
}

char *fmt_addr(char *p, const struct sp_addr *a)
{
	const uint8_t *bytes;
	int af = addr_family(a, &bytes);

	if (af == AF_INET)
		return fmt_ipv4(p, bytes);
	if (af == AF_INET6)
		return fmt_ipv6(p, bytes);
	return p;
}

size_t addr_str(char *tmp, const struct sp_addr *a, bool *v6)
{
	const uint8_t *bytes;
	int af = addr_family(a, &bytes);
	char *end;

	*v6 = af == AF_INET6;
	if (!af)
		return 0;
	end = fmt_addr(tmp, a);
	*end = '\0';
	return (size_t)(end - tmp);
}

size_t format_addr(char *buf, size_t cap, const struct sp_addr *addr)
{
	char tmp[SP_ADDR_STR_MAX];
	struct wr w;
	bool v6;

	wr_init(&w, buf, cap);
	put(&w, tmp, addr_str(tmp, addr, &v6));
	return wr_finish(&w);
}
