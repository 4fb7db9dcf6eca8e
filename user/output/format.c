/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The line writer's out-of-line pieces (format_internal.h), shared by the JSON line
 * (format_json.c) and the text line: numbers are formatted by hand (no printf per field, no
 * locale: a setlocale() elsewhere in the process must not turn "0.5" into "0,5" in JSON), JSON
 * string escaping, RFC 3339 timestamps, addresses. Also the aligned text lines.
 *
 * Every produced line is also NUL-terminated (the NUL is not counted in the returned length),
 * so cap must leave room for it.
 */
#include <arpa/inet.h>
#include <math.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "sockpulse.h"
#include "format_internal.h"
#include "names.h"
#include "util.h"

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
				     "25262728293031323334353637383940414243444546474849"
				     "50515253545556575859606162636465666768697071727374"
				     "75767778798081828384858687888990919293949596979899";

static const uint64_t pow10_u64[20] = {
	1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
	100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
	10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
	100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL,
};

/* Decimal digits of v (1..20): log10 from the bit length (1233/4096 ~ log10(2)), then one
 * comparison, no loop. */
SP_INLINE unsigned int dec_len(uint64_t v)
{
	uint64_t x = v | 1; /* 0 has one digit, like 1 */
	unsigned int t = ((64 - (unsigned int)__builtin_clzll(x)) * 1233) >> 12;

	return t + 1 - (x < pow10_u64[t]);
}

/* The last @n digits of v written backwards from end, two per division; n >= digits of v. */
SP_INLINE void dec_write(char *end, uint64_t v, unsigned int n)
{
	char *q = end;

	while (n >= 2) {
		unsigned int d = (unsigned int)(v % 100) * 2;

		v /= 100;
		q -= 2;
		q[0] = digit_pairs[d];
		q[1] = digit_pairs[d + 1];
		n -= 2;
	}
	if (n)
		*--q = (char)('0' + v % 10);
}

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

/* Spaces up to @width characters since @from, then at least one separator. */
static void pad_col(struct wr *w, const char *from, size_t width)
{
	size_t used;

	if (w->full)
		return;
	used = (size_t)(w->p - from);
	while (used++ < width)
		put_ch(w, ' ');
	put_ch(w, ' ');
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

void put_escaped(struct wr *w, const char *str, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run, seq;
	char u[6] = { '\\', 'u', '0', '0', 0, 0 };

	while (i < len && !w->full) {
		/* Copy runs of bytes that need nothing in one go. */
		for (run = i; run < len && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' &&
			      s[run] != '\\';
		     run++)
			;
		put(w, str + i, run - i);
		i = run;
		if (i >= len)
			break;
		switch (s[i]) {
		case '"':
			PUTS(w, "\\\"");
			break;
		case '\\':
			PUTS(w, "\\\\");
			break;
		case '\n':
			PUTS(w, "\\n");
			break;
		case '\r':
			PUTS(w, "\\r");
			break;
		case '\t':
			PUTS(w, "\\t");
			break;
		case '\b':
			PUTS(w, "\\b");
			break;
		case '\f':
			PUTS(w, "\\f");
			break;
		default:
			if (s[i] < 0x20 || s[i] == 0x7f) {
				/* DEL is legal JSON, but escaped it cannot reach a terminal raw. */
				u[4] = hex[s[i] >> 4];
				u[5] = hex[s[i] & 0xf];
				put(w, u, sizeof(u));
				break;
			}
			seq = utf8_seq_len(s + i, len - i);
			if (!seq) {
				PUTS(w, "\\ufffd");
				break;
			}
			put(w, str + i, seq);
			i += seq;
			continue;
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
void put_rfc3339(struct wr *w, uint64_t real_ns)
{
	static time_t cached_secs = -1;
	static char cached[19];
	time_t secs = (time_t)(real_ns / NSEC_PER_SEC);
	struct tm tm;
	struct wr cw;

	if (secs != cached_secs) {
		if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 > 9999) {
			wr_fail(w);
			return;
		}
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
		if (cw.full || cw.p != cached + sizeof(cached)) {
			wr_fail(w);
			return;
		}
		cached_secs = secs;
	}
	/* "YYYY-MM-DDTHH:MM:SS" ".nnnnnnnnn" "Z" */
	if (!wr_room(w, sizeof(cached) + 11))
		return;
	memcpy(w->p, cached, sizeof(cached));
	w->p[sizeof(cached)] = '.';
	dec_write(w->p + sizeof(cached) + 10, real_ns % NSEC_PER_SEC, 9);
	w->p[sizeof(cached) + 10] = 'Z';
	w->p += sizeof(cached) + 11;
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
static void put_ipv4(struct wr *w, const uint8_t *b)
{
	char *p;

	if (!wr_room(w, 15))
		return;
	p = w->p;
	for (int i = 0; i < 4; i++) {
		unsigned int v = b[i], n = 1 + (v >= 10) + (v >= 100);

		if (i)
			*p++ = '.';
		dec_write(p + n, v, n);
		p += n;
	}
	w->p = p;
}

void put_addr(struct wr *w, const struct sp_addr *a)
{
	char tmp[SP_ADDR_STR_MAX];
	const uint8_t *bytes;
	int af = addr_family(a, &bytes);

	if (af == AF_INET)
		put_ipv4(w, bytes);
	else if (af == AF_INET6 && inet_ntop(AF_INET6, bytes, tmp, sizeof(tmp)))
		put_str(w, tmp);
}

size_t addr_str(char *tmp, const struct sp_addr *a, bool *v6)
{
	const uint8_t *bytes;
	int af = addr_family(a, &bytes);
	struct wr w;

	*v6 = af == AF_INET6;
	if (!af)
		return 0;
	wr_init(&w, tmp, SP_ADDR_STR_MAX);
	put_addr(&w, a);
	return wr_finish(&w);
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

/* ---- text ---- */

#define COL_TIME 12
#define COL_PID 7
#define COL_COMM 15
#define COL_ADDR 21 /* "255.255.255.255:65535"; IPv6 overflows, one space still follows */
#define COL_LABEL 8

/* Text goes to terminals: anything but printable ASCII becomes '?'. */
static void put_sanitized(struct wr *w, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		put_ch(w, c >= 0x20 && c < 0x7f ? (char)c : '?');
	}
}

/* "850ns", "12.3us", "1.5ms", "2.0s": one decimal, truncated. */
static void put_human_ns(struct wr *w, uint64_t ns)
{
	static const struct {
		uint64_t div;
		const char *unit;
	} units[] = {
		{ NSEC_PER_SEC, "s" },
		{ NSEC_PER_MSEC, "ms" },
		{ 1000ULL, "us" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(units); i++) {
		if (ns >= units[i].div) {
			put_u64(w, ns / units[i].div);
			put_ch(w, '.');
			put_ch(w, (char)('0' + (ns % units[i].div) * 10 / units[i].div));
			put_str(w, units[i].unit);
			return;
		}
	}
	put_u64(w, ns);
	PUTS(w, "ns");
}

size_t format_human_ns(char *buf, size_t cap, uint64_t ns)
{
	char tmp[32];
	struct wr w;
	size_t n;

	if (!cap)
		return 0;
	wr_init(&w, tmp, sizeof(tmp));
	put_human_ns(&w, ns);
	n = wr_finish(&w);
	if (n >= cap)
		n = cap - 1; /* cut, like snprintf */
	memcpy(buf, tmp, n);
	buf[n] = '\0';
	return n;
}

static void put_human_ms(struct wr *w, uint64_t ms)
{
	put_human_ns(w, ms > UINT64_MAX / NSEC_PER_MSEC ? UINT64_MAX : ms * NSEC_PER_MSEC);
}

static void put_text_addr(struct wr *w, const struct sp_addr *a, bool has_port, uint16_t port)
{
	char tmp[SP_ADDR_STR_MAX];
	size_t n;
	bool v6;

	n = addr_str(tmp, a, &v6);
	if (!n) {
		put_ch(w, '-');
		return;
	}
	if (v6)
		put_ch(w, '[');
	put(w, tmp, n);
	if (v6)
		put_ch(w, ']');
	if (has_port && port) {
		put_ch(w, ':');
		put_u64(w, port);
	}
}

static void put_errno_text(struct wr *w, int err)
{
	const char *name = errno_name(err);

	if (name) {
		put_str(w, name);
	} else {
		PUTS(w, "errno=");
		put_u64(w, (uint64_t)err);
	}
}

static void put_label(struct wr *w, const char *label)
{
	const char *from = w->p;

	put_str(w, label);
	pad_col(w, from, COL_LABEL);
}

static void put_or_q(struct wr *w, const char *s)
{
	put_str(w, s ? s : "?");
}

static void text_state(struct wr *w, const struct sp_event *ev)
{
	put_label(w, "state");
	put_or_q(w, tcp_state_name(ev->state.old_state));
	PUTS(w, " -> ");
	put_or_q(w, tcp_state_name(ev->state.new_state));
	if (ev->has_duration) {
		PUTS(w, " (");
		put_human_ns(w, ev->duration_ns);
		put_ch(w, ')');
	}
	if (ev->state.time_wait)
		PUTS(w, " time_wait");
	if (ev->state.segments) {
		PUTS(w, " segs=");
		put_u64(w, ev->state.segments);
		PUTS(w, " bytes=");
		put_u64(w, ev->state.payload_bytes);
	}
}

static void text_lease(struct wr *w, const struct sp_event *ev)
{
	static const char *const verdicts[] = {
		[SP_ACT_LEASE_SUSPECT] = "suspect ",
		[SP_ACT_LEASE_EXPIRED] = "expired ",
		[SP_ACT_LEASE_RECOVERED] = "recovered ",
		[SP_ACT_LEASE_CLOSED] = "closed ",
		[SP_ACT_LEASE_LOST] = "lost ",
	};

	put_label(w, "lease");
	put_str(w, verdicts[ev->action]);
	put_or_q(w, lease_kind_name(ev->lease.kind));
	if (ev->action == SP_ACT_LEASE_LOST) {
		if (ev->lease.reason) {
			PUTS(w, " reason=");
			put_sanitized(w, ev->lease.reason, strlen(ev->lease.reason));
		}
	} else if (ev->action != SP_ACT_LEASE_CLOSED) {
		PUTS(w, " silent=");
		put_human_ms(w, ev->lease.silent_ms);
		PUTS(w, " ttl=");
		put_human_ms(w, ev->lease.ttl_ms);
		if (ev->lease.untrusted)
			PUTS(w, " untrusted");
	}
}

static void text_spike(struct wr *w, const struct sp_event *ev)
{
	put_label(w, "spike");
	put_str(w, ev->spike.start ? "start" : "end");
	if (ev->spike.host_wide)
		PUTS(w, " host-wide");
	PUTS(w, " failures=");
	put_u64(w, ev->spike.failures);
	PUTS(w, " window=");
	put_u64(w, ev->spike.window_s);
	PUTS(w, "s");
	if (isfinite(ev->spike.baseline_per_s)) {
		PUTS(w, " baseline=");
		put_double(w, ev->spike.baseline_per_s);
		PUTS(w, "/s");
	}
}

static void text_stuck(struct wr *w, const struct sp_event *ev)
{
	put_label(w, "stuck");
	put_str(w, ev->stuck.start ? "start " : "end ");
	put_or_q(w, tcp_state_name(ev->stuck.state));
	put_str(w, ev->stuck.seeded ? " age>=" : " age=");
	put_human_ms(w, ev->stuck.age_ms);
	PUTS(w, " process-stuck=");
	put_u64(w, ev->stuck.proc_stuck);
	if (ev->stuck.trend > 0)
		PUTS(w, " growing");
}

static void text_ports(struct wr *w, const struct sp_event *ev)
{
	put_label(w, "ports");
	put_str(w, ev->ports.start ? "risk " : "ok ");
	PUTS(w, "used=");
	put_u64(w, ev->ports.used);
	PUTS(w, "/");
	put_u64(w, ev->ports.capacity);
	PUTS(w, " time_wait=");
	put_u64(w, ev->ports.time_wait);
	PUTS(w, " growth=");
	put_double(w, ev->ports.growth_rate);
	PUTS(w, "/s");
	if (ev->ports.eta_ms != UINT64_MAX) {
		PUTS(w, " exhausted-in=");
		put_human_ms(w, ev->ports.eta_ms);
	}
}

static void text_hold(struct wr *w, const struct sp_event *ev)
{
	put_label(w, "hold");
	PUTS(w, "lease verdicts held ");
	put_human_ms(w, ev->hold.grace_ms);
	if (ev->hold.reason) {
		PUTS(w, " reason=");
		put_sanitized(w, ev->hold.reason, strlen(ev->hold.reason));
	}
	if (ev->hold.stall_ms) {
		PUTS(w, " stall=");
		put_human_ms(w, ev->hold.stall_ms);
	}
	if (ev->hold.lost) {
		PUTS(w, " lost=");
		put_u64(w, ev->hold.lost);
	}
}

/* Every label fits COL_LABEL, so what follows it starts in the same column on every line. */
static void text_event(struct wr *w, const struct sp_event *ev)
{
	switch (ev->action) {
	case SP_ACT_STATE_CHANGE:
		text_state(w, ev);
		return;
	case SP_ACT_ACTIVITY:
		put_label(w, "activity");
		PUTS(w, "segs=");
		put_u64(w, ev->activity.segments);
		PUTS(w, " bytes=");
		put_u64(w, ev->activity.payload_bytes);
		return;
	case SP_ACT_CONNECT:
		put_label(w, "connect");
		if (ev->connect.success) {
			PUTS(w, "ok");
		} else {
			PUTS(w, "FAILED ");
			put_or_q(w, failure_name(ev->connect.failure));
			if (ev->error) {
				put_ch(w, ' ');
				put_errno_text(w, ev->error);
			}
		}
		break;
	case SP_ACT_KEEPALIVE_TIMEOUT:
		put_label(w, "timeout");
		PUTS(w, "keepalive probes=");
		put_u64(w, ev->keepalive.probes);
		if (ev->error) {
			put_ch(w, ' ');
			put_errno_text(w, ev->error);
		}
		break;
	case SP_ACT_RETRANS_TIMEOUT:
		put_label(w, "timeout");
		PUTS(w, "retransmit");
		if (ev->error) {
			put_ch(w, ' ');
			put_errno_text(w, ev->error);
		}
		break;
	case SP_ACT_RESET:
		put_label(w, "reset");
		put_or_q(w, reset_dir_name(ev->reset.direction));
		if (ev->reset.has_old_state) {
			PUTS(w, " in ");
			put_or_q(w, tcp_state_name(ev->reset.old_state));
		}
		return;
	case SP_ACT_LEASE_SUSPECT:
	case SP_ACT_LEASE_EXPIRED:
	case SP_ACT_LEASE_RECOVERED:
	case SP_ACT_LEASE_CLOSED:
	case SP_ACT_LEASE_LOST:
		text_lease(w, ev);
		return;
	case SP_ACT_SPIKE:
		text_spike(w, ev);
		return;
	case SP_ACT_TCP_STUCK:
		text_stuck(w, ev);
		return;
	case SP_ACT_PORT_RISK:
		text_ports(w, ev);
		return;
	case SP_ACT_LEASE_HOLD:
		text_hold(w, ev);
		return;
	case SP_ACT_EVENTS_LOST:
		put_label(w, "lost");
		PUTS(w, "count=");
		put_u64(w, ev->lost.count);
		if (ev->lost.kind) {
			PUTS(w, " kind=");
			put_sanitized(w, ev->lost.kind, strlen(ev->lost.kind));
		}
		return;
	default:
		put_label(w, "unknown");
		return;
	}
	/* connect and the timeouts end with their duration when known */
	if (ev->has_duration) {
		put_ch(w, ' ');
		put_human_ns(w, ev->duration_ns);
	}
}

size_t format_text_header(char *buf, size_t cap)
{
	struct wr w;
	char *from;

	wr_init(&w, buf, cap);
	from = w.p;
	PUTS(&w, "TIME");
	pad_col(&w, from, COL_TIME);
	from = w.p;
	PUTS(&w, "PID");
	pad_col(&w, from, COL_PID);
	from = w.p;
	PUTS(&w, "COMM");
	pad_col(&w, from, COL_COMM);
	from = w.p;
	PUTS(&w, "SOURCE");
	pad_col(&w, from, COL_ADDR);
	from = w.p;
	PUTS(&w, "DESTINATION");
	pad_col(&w, from, COL_ADDR);
	PUTS(&w, "EVENT\n");
	return wr_finish(&w);
}

static bool same_host_addr(const struct sp_addr *a, const struct sp_addr *b)
{
	const uint8_t *ab, *bb;
	int af = addr_family(a, &ab);

	if (!af || af != addr_family(b, &bb))
		return false;
	if (af == AF_INET)
		return (ab[0] == 127 && bb[0] == 127) || !memcmp(ab, bb, 4);
	return !memcmp(ab, bb, 16);
}

/*
 * When both ends of a connection are on this host (loopback, or the same address), each end has
 * its own socket and its own lines, with the same SOURCE and DESTINATION: the end a line is
 * about gets a '*'. 1: the source, 2: the destination, 0: no mark.
 */
static int text_local_end(const struct sp_conn *c)
{
	if (!c->direction || !same_host_addr(&c->src, &c->dst))
		return 0;
	return c->direction == SP_DIR_EGRESS ? 1 : 2;
}

size_t format_text(char *buf, size_t cap, const struct sp_event *ev)
{
	const struct sp_conn *c = &ev->conn;
	int local_end;
	time_t secs = (time_t)(ev->real_ns / NSEC_PER_SEC);
	bool no_dst = ev->action == SP_ACT_SPIKE && ev->spike.host_wide;
	struct tm tm;
	struct wr w;
	char *from;

	wr_init(&w, buf, cap);
	if (!localtime_r(&secs, &tm))
		return 0;
	from = w.p;
	put_u64_pad(&w, (uint64_t)tm.tm_hour, 2);
	put_ch(&w, ':');
	put_u64_pad(&w, (uint64_t)tm.tm_min, 2);
	put_ch(&w, ':');
	put_u64_pad(&w, (uint64_t)tm.tm_sec, 2);
	put_ch(&w, '.');
	put_u64_pad(&w, ev->real_ns % NSEC_PER_SEC / NSEC_PER_MSEC, 3);
	pad_col(&w, from, COL_TIME);

	from = w.p;
	if (ev->has_conn && c->has_pid)
		put_u64(&w, c->pid);
	else
		put_ch(&w, '-');
	pad_col(&w, from, COL_PID);

	from = w.p;
	if (ev->has_conn && c->has_pid && c->comm[0])
		put_sanitized(&w, c->comm, sizeof(c->comm));
	else
		put_ch(&w, '-');
	pad_col(&w, from, COL_COMM);

	local_end = ev->has_conn && !no_dst ? text_local_end(c) : 0;
	from = w.p;
	if (ev->has_conn)
		put_text_addr(&w, &c->src, c->has_ports, c->sport);
	else
		put_ch(&w, '-');
	if (local_end == 1)
		put_ch(&w, '*');
	pad_col(&w, from, COL_ADDR);

	from = w.p;
	if (ev->has_conn && !no_dst)
		put_text_addr(&w, &c->dst, c->has_ports, c->dport);
	else
		put_ch(&w, '-');
	if (local_end == 2)
		put_ch(&w, '*');
	pad_col(&w, from, COL_ADDR);

	text_event(&w, ev);
	put_ch(&w, '\n');
	return wr_finish(&w);
}

size_t format_text_ordered(char *buf, size_t cap, const struct sp_event *ev, uint64_t *last_ns)
{
	struct sp_event shown;

	if (ev->real_ns >= *last_ns) {
		*last_ns = ev->real_ns;
		return format_text(buf, cap, ev);
	}
	shown = *ev;
	shown.real_ns = *last_ns;
	return format_text(buf, cap, &shown);
}
