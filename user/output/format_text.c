/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The text line of `sockpulse watch`: fixed columns (time, pid, comm, source, destination), then
 * a label and the event in words, with durations for people ("1.5ms"). Terminal-safe: anything
 * from outside that is not printable ASCII is shown as '?'.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "sockpulse.h"
#include "format_internal.h"
#include "names.h"
#include "util.h"

#define COL_TIME 12
#define COL_PID 7
#define COL_COMM 15
#define COL_ADDR 21 /* "255.255.255.255:65535"; IPv6 overflows, one space still follows */
#define COL_LABEL 8

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
