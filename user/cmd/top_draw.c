// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sockpulse top`: drawing. The screen is drawn from the snapshot and the view, never from the
 * live tables; what it writes back is only where each pane is scrolled (so the selection stays
 * on screen) and what drawing costs. Layout (top to bottom): three header lines, the peer table
 * (or a peer's connections, or the help), the spike panel, the recent-events pane, the footer
 * with the keys.
 */
#define _GNU_SOURCE
#define NCURSES_WIDECHAR 1
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>

#include <ncursesw/curses.h>

#include "audit.h"
#include "clock.h"
#include "format.h"
#include "names.h"
#include "top_int.h"
#include "topfmt.h"
#include "util.h"

#define LINE_CAP 4096

static void set_attr(const struct top *t, enum color c, bool on)
{
	attr_t a = 0;

	switch (c) {
	case C_TITLE:
		a = A_BOLD;
		break;
	case C_SEL:
		a = A_REVERSE;
		break;
	case C_BAD:
		a = A_BOLD;
		break;
	case C_DIM:
		a = t->color ? 0 : A_DIM;
		break;
	default:
		break;
	}
	if (t->color && c != C_NONE && c != C_SEL)
		a |= COLOR_PAIR(c);
	if (on)
		attron(a);
	else
		attroff(a);
}

/* A whole line fitted to the screen width. */
static void put_line(const struct top *t, int y, const char *text, enum color c)
{
	char buf[LINE_CAP];
	int cols = COLS;

	if (y < 0 || y >= LINES)
		return;
	tf_fit(buf, sizeof(buf), text, (size_t)cols < LINE_CAP / 4 ? (size_t)cols : LINE_CAP / 4,
	       TF_LEFT, TF_TRUNC_END, t->unicode);
	set_attr(t, c, true);
	mvaddstr(y, 0, buf);
	set_attr(t, c, false);
}

static enum color lease_color(uint8_t st)
{
	switch (st) {
	case TF_LEASE_ALIVE:
		return C_GOOD;
	case TF_LEASE_SUSPECT:
		return C_WARN;
	case TF_LEASE_EXPIRED:
	case TF_LEASE_LOST:
		return C_BAD;
	default:
		return C_DIM;
	}
}

/* Some connections silent, others heard from: a warning, not red. */
static enum color row_lease_color(uint8_t st, uint32_t n, uint32_t of)
{
	return tf_lease_partial(st, n, of) ? C_WARN : lease_color(st);
}

static void draw_header(const struct top *t)
{
	const struct snapshot *s = &t->snap;
	static const uint8_t shown[] = { SP_ST_ESTABLISHED, SP_ST_SYN_SENT, SP_ST_SYN_RECV,
					 SP_ST_TIME_WAIT,   SP_ST_CLOSE_WAIT, SP_ST_FIN_WAIT1,
					 SP_ST_FIN_WAIT2,   SP_ST_LAST_ACK, SP_ST_CLOSING,
					 SP_ST_LISTEN };
	char line[LINE_CAP], up[32], spark[SPARK_SECS * 4 + 1], clk[16];
	struct sysinfo si;
	size_t off, spark_w;
	time_t secs = (time_t)(s->real_ns / NSEC_PER_SEC);
	struct tm tm;

	if (sysinfo(&si) == 0)
		tf_duration(up, sizeof(up), (uint64_t)si.uptime * NSEC_PER_SEC);
	else
		snprintf(up, sizeof(up), "?");
	clk[0] = '\0';
	if (localtime_r(&secs, &tm))
		strftime(clk, sizeof(clk), "%H:%M:%S", &tm);
	if (t->replay)
		snprintf(line, sizeof(line),
			 "sockpulse top  %s  replay of %s  %llu events  lost %llu  leases %u%s%s",
			 clk, t->host, (unsigned long long)t->replay_events,
			 (unsigned long long)s->lost, s->leases_live, t->filter[0] ? "  filter: " : "",
			 t->filter);
	else
		snprintf(line, sizeof(line),
			 "sockpulse top  %s  host %s  up %s  hook %s  %.0f ev/s  lost %llu  leases "
			 "%u%s%s%s",
			 clk, t->host, up, t->hook, s->events_per_s, (unsigned long long)s->lost,
			 s->leases_live, t->paused ? "  [PAUSED]" : "",
			 t->filter[0] ? "  filter: " : "", t->filter);
	put_line(t, 0, line, C_TITLE);
	if (s->lost) {
		/* lost events in red, where they are */
		char *p = strstr(line, "  lost ");

		if (p && p - line < COLS) {
			set_attr(t, C_BAD, true);
			mvaddstr(0, (int)(p - line) + 2, "lost");
			set_attr(t, C_BAD, false);
		}
	}

	/* sock_diag knows no cgroup: with --cgroup the counts are the namespace's */
	off = (size_t)snprintf(line, sizeof(line), "conns%s:",
			       !s->states_exact     ? " (seen)"
			       : t->cfg->filter.cgroup_id ? " (every cgroup)"
						   : "");
	for (size_t i = 0; i < ARRAY_SIZE(shown) && off < sizeof(line); i++) {
		uint8_t st = shown[i];

		if (!s->states[st] && st != SP_ST_ESTABLISHED && st != SP_ST_TIME_WAIT &&
		    st != SP_ST_SYN_SENT && st != SP_ST_CLOSE_WAIT)
			continue;
		off += (size_t)snprintf(line + off, sizeof(line) - off, " %s %llu",
					tcp_state_name(st), (unsigned long long)s->states[st]);
	}
	/* stuck sockets and port pressure only when there are some */
	if (s->stuck && off < sizeof(line)) {
		const struct stuck_proc *p = &s->stuck_top;

		off += (size_t)snprintf(line + off, sizeof(line) - off, "  STUCK %llu",
					(unsigned long long)s->stuck);
		if (s->has_stuck_top && off < sizeof(line))
			off += (size_t)snprintf(line + off, sizeof(line) - off, " (%.15s/%u: %u%s)",
						p->comm[0] ? p->comm : "?", p->pid,
						p->stuck[0] + p->stuck[1],
						p->trend > 0 ? " growing" : "");
	}
	if (s->has_ports && off < sizeof(line)) {
		char dst[SP_ADDR_STR_MAX];

		format_addr(dst, sizeof(dst), &s->ports.dst);
		off += (size_t)snprintf(line + off, sizeof(line) - off, "  PORTS %s:%u %u/%u%s",
					dst, s->ports.dport, s->ports.used, s->ports.capacity,
					s->ports.alert ? " RUNNING OUT" : "");
	}
	put_line(t, 1, line, s->stuck || (s->has_ports && s->ports.alert) ? C_WARN : C_NONE);

	spark_w = COLS >= 120 ? SPARK_SECS : COLS >= 80 ? 30 : 10;
	tf_sparkline(spark, sizeof(spark), s->spark_fail, SPARK_SECS, spark_w, t->unicode);
	off = (size_t)snprintf(line, sizeof(line), "connect failures %u/min of %u  ", s->fails_min,
			       s->atts_min);
	put_line(t, 2, line, C_NONE);
	if (off < (size_t)COLS) {
		set_attr(t, s->fails_min ? C_BAD : C_DIM, true);
		mvaddstr(2, (int)off, spark);
		set_attr(t, s->fails_min ? C_BAD : C_DIM, false);
		off += spark_w;
	}
	snprintf(line, sizeof(line), "  spikes %zu%s", s->n_spikes,
		 s->host_spike ? " (host-wide)" : "");
	if (off < (size_t)COLS) {
		char buf[LINE_CAP];

		tf_fit(buf, sizeof(buf), line, (size_t)COLS - off, TF_LEFT, TF_TRUNC_END,
		       t->unicode);
		set_attr(t, s->n_spikes ? C_BAD : C_NONE, true);
		mvaddstr(2, (int)off, buf);
		set_attr(t, s->n_spikes ? C_BAD : C_NONE, false);
	}
}

static void draw_table(struct top *t, int y0, int h)
{
	size_t w[TF_COL_MAX], i, n;
	char buf[LINE_CAP];
	int y, x;

	tf_layout((size_t)COLS, w);
	tf_header(buf, sizeof(buf), w, t->sort_col, t->reverse, t->unicode);
	put_line(t, y0, buf, t->focus == PANE_TABLE ? C_TITLE : C_DIM);
	h--;
	if (h <= 0)
		return;
	if (!t->n_view) {
		put_line(t, y0 + 1,
			 t->snap.n_rows ? "  (no peer matches the filter; Esc clears it)"
					: "  (no peers yet: connections and connect attempts show here)",
			 C_DIM);
		return;
	}
	if (t->sel < t->scroll)
		t->scroll = t->sel;
	if (t->sel >= t->scroll + (size_t)h)
		t->scroll = t->sel - (size_t)h + 1;
	n = t->n_view - t->scroll < (size_t)h ? t->n_view - t->scroll : (size_t)h;
	for (i = 0; i < n; i++) {
		const struct tf_row *r = t->view[t->scroll + i];
		bool sel = t->focus == PANE_TABLE && t->scroll + i == t->sel;

		y = y0 + 1 + (int)i;
		x = 0;
		for (unsigned int c = 0; c < TF_COL_MAX; c++) {
			enum color col = C_NONE;

			if (!w[c])
				continue; /* no room for this column */
			tf_cell(buf, sizeof(buf), r, c, w[c], t->unicode);
			if (c == TF_COL_TRANSPORT)
				col = row_lease_color(r->transport, r->transport_n,
						      r->transport_of);
			else if (c == TF_COL_PAYLOAD)
				col = row_lease_color(r->payload, r->payload_n, r->payload_of);
			else if (c == TF_COL_FAILS && r->fails_min)
				col = C_BAD;
			else if (c == TF_COL_LEFT && r->has_left && r->left_ns < 0)
				col = C_BAD;
			if (sel)
				attron(A_REVERSE);
			set_attr(t, col, true);
			mvaddstr(y, x, buf);
			if (c != TF_COL_PROCESS && x + (int)w[c] < COLS)
				mvaddstr(y, x + (int)w[c], " ");
			set_attr(t, col, false);
			if (sel)
				attroff(A_REVERSE);
			x += (int)w[c] + 1;
			if (x >= COLS)
				break;
		}
	}
}

static uint8_t tf_state(uint8_t lease_state)
{
	if (lease_state == LEASE_EXPIRED)
		return TF_LEASE_EXPIRED;
	return lease_state == LEASE_SUSPECT ? TF_LEASE_SUSPECT : TF_LEASE_ALIVE;
}

static void keepalive_text(char *buf, size_t cap, const struct conn *c)
{
	char d[32], det[24], idle[24], intvl[24];
	size_t n;

	/* what the settings imply (the audit), then what the timer does now (sock_diag) */
	if (c->has_ka) {
		audit_fmt_ms(det, sizeof(det), ka_idle_detect_ms(&c->ka));
		if (c->ka.enabled) {
			audit_fmt_ms(idle, sizeof(idle), c->ka.idle_ms);
			audit_fmt_ms(intvl, sizeof(intvl), c->ka.intvl_ms);
			/* idle/interval/probes (time to notice a dead idle peer) */
			n = (size_t)snprintf(buf, cap, "%s/%s/%u (%s)", idle, intvl, c->ka.probes,
					     det);
		} else {
			n = (size_t)snprintf(buf, cap, "off (never)");
		}
		if (n < cap && c->has_diag && c->diag_timer == 2) {
			tf_duration(d, sizeof(d), (uint64_t)c->diag_expires_ms * NSEC_PER_MSEC);
			snprintf(buf + n, cap - n, ", probe in %.12s", d);
		}
		return;
	}
	if (!c->has_diag) {
		snprintf(buf, cap, "?");
		return;
	}
	switch (c->diag_timer) {
	case 0:
		snprintf(buf, cap, "off");
		break;
	case 2: /* the keepalive timer is pending */
		tf_duration(d, sizeof(d), (uint64_t)c->diag_expires_ms * NSEC_PER_MSEC);
		if (c->diag_retrans)
			snprintf(buf, cap, "on, probe in %s, %u unanswered", d, c->diag_retrans);
		else
			snprintf(buf, cap, "on, probe in %s", d);
		break;
	case 1:
		snprintf(buf, cap, "? (retransmitting)");
		break;
	case 4:
		snprintf(buf, cap, "? (zero window)");
		break;
	default:
		snprintf(buf, cap, "?");
		break;
	}
}

/* One connection of the details view, as text: the columns are sized to what they hold. */
struct detail_text {
	char local[TF_CELL_CAP(47)], state[16], transport[16], payload[16], ka[96], last[32];
	char age[32], proc[48];
};

enum { DC_LOCAL, DC_STATE, DC_TRANSPORT, DC_PAYLOAD, DC_KA, DC_LAST, DC_AGE, DC_PROC, DC_MAX };

static const char *detail_col(const struct detail_text *x, int c)
{
	const char *v[DC_MAX] = { x->local,   x->state, x->transport, x->payload,
				  x->ka,      x->last,  x->age,       x->proc };

	return v[c];
}

static void detail_fill(const struct top *t, const struct detail_row *d, struct detail_text *x)
{
	const struct snapshot *s = &t->snap;
	const char *st = tcp_state_name(d->c.state);
	size_t n;

	tf_fit_endpoint(x->local, sizeof(x->local), &d->c.local, d->c.lport, 47, t->unicode);
	for (n = strlen(x->local); n && x->local[n - 1] == ' '; n--)
		x->local[n - 1] = '\0';
	snprintf(x->state, sizeof(x->state), "%s", st ? st : "?");
	tf_duration(x->age, sizeof(x->age),
		    s->mono_ns > d->c.first_ns ? s->mono_ns - d->c.first_ns : 0);
	if (d->c.last_act_ns)
		tf_duration(x->last, sizeof(x->last),
			    s->mono_ns > d->c.last_act_ns ? s->mono_ns - d->c.last_act_ns : 0);
	else
		snprintf(x->last, sizeof(x->last), "-");
	if (d->c.comm[0])
		snprintf(x->proc, sizeof(x->proc), "%.15s/%u", d->c.comm, d->c.pid);
	else
		snprintf(x->proc, sizeof(x->proc), "-");
	snprintf(x->transport, sizeof(x->transport), "%s",
		 d->has_lease ? tf_lease_name(tf_state(d->li.state[SP_LEASE_TRANSPORT])) : "-");
	snprintf(x->payload, sizeof(x->payload), "%s",
		 d->has_lease && d->li.payload_armed
			 ? tf_lease_name(tf_state(d->li.state[SP_LEASE_PAYLOAD]))
			 : "-");
	keepalive_text(x->ka, sizeof(x->ka), &d->c);
}

/* Columns joined by one space, each padded to its width (LAST and AGE to the right). */
static void detail_line(char *buf, size_t cap, const struct detail_text *x,
			const size_t w[DC_MAX])
{
	size_t off = 0;

	buf[0] = '\0';
	for (int c = 0; c < DC_MAX && off < cap; c++) {
		const char *v = detail_col(x, c);
		int pad = (int)w[c] - (int)tf_width(v);
		bool right = c == DC_LAST || c == DC_AGE;

		if (pad < 0)
			pad = 0;
		off += (size_t)snprintf(buf + off, cap - off, "%s%*s%s%*s", c ? " " : "",
					right ? pad : 0, "", v, right || c == DC_PROC ? 0 : pad,
					"");
	}
}

/*
 * A peer's connections. Columns are as wide as what they hold, and the lease states and
 * keepalive come before the age and the process: a narrow screen cuts those first.
 */
static void draw_details(struct top *t, int y0, int h)
{
	static struct detail_text text[DETAILS_MAX]; /* large: not on the stack */
	static const struct detail_text head = {
		"LOCAL", "STATE", "TRANSPORT", "PAYLOAD", "KEEPALIVE", "LAST", "AGE", "PROCESS",
	};
	const struct snapshot *s = &t->snap;
	char line[LINE_CAP], local[TF_CELL_CAP(47)], title[LINE_CAP];
	size_t i, n, w[DC_MAX];

	tf_fit_endpoint(local, sizeof(local), &t->det_peer.addr, t->det_peer.port, 47, false);
	for (n = strlen(local); n && local[n - 1] == ' '; n--)
		local[n - 1] = '\0';
	snprintf(title, sizeof(title), "PEER %s: %zu connection%s (Esc back)", local, s->n_details,
		 s->n_details == 1 ? "" : "s");
	put_line(t, y0, title, C_TITLE);
	if (h < 3)
		return;
	if (t->det_sel >= s->n_details)
		t->det_sel = s->n_details ? s->n_details - 1 : 0;
	if (t->det_sel < t->det_scroll)
		t->det_scroll = t->det_sel;
	if (t->det_sel >= t->det_scroll + (size_t)(h - 2))
		t->det_scroll = t->det_sel - (size_t)(h - 2) + 1;
	for (int c = 0; c < DC_MAX; c++)
		w[c] = tf_width(detail_col(&head, c));
	for (i = 0; i + t->det_scroll < s->n_details && i < (size_t)(h - 2); i++) {
		detail_fill(t, &s->details[t->det_scroll + i], &text[i]);
		for (int c = 0; c < DC_MAX; c++)
			if (tf_width(detail_col(&text[i], c)) > w[c])
				w[c] = tf_width(detail_col(&text[i], c));
	}
	detail_line(line, sizeof(line), &head, w);
	put_line(t, y0 + 1, line, C_DIM);
	if (!s->n_details) {
		put_line(t, y0 + 2, "  (no open connection followed for this peer)", C_DIM);
		return;
	}
	for (n = i, i = 0; i < n; i++) {
		detail_line(line, sizeof(line), &text[i], w);
		put_line(t, y0 + 2 + (int)i, line,
			 t->focus == PANE_TABLE && t->det_scroll + i == t->det_sel ? C_SEL : C_NONE);
	}
}

static void draw_help(const struct top *t, int y0, int h)
{
	static const char *const lines[] = {
		"sockpulse top: keys",
		"",
		"  q, F10        quit",
		"  ?, F1         this help (any key closes it)",
		"  s, <, >       sort column: next, left, right",
		"  r             reverse the sort",
		"  /             filter by address, port, service or process (Enter keeps, Esc drops)",
		"  b             group the peers by service (Enter on a service: its peers)",
		"  space         pause the display (events are still counted)",
		"  Tab           next pane: peers, spikes, events",
		"  arrows, j/k   move; PgUp/PgDn, g/G: page, first, last",
		"  Enter         the connections of the selected peer (or spike destination)",
		"  Esc           back; in the table, clear the filter",
		"",
		"Peers are a remote address and the service port connected to. TRANSPORT: any inbound",
		"segment renews the lease; PAYLOAD: inbound data. LAST: since the peer was last heard",
		"from; LEFT: until the earliest lease verdict; FAIL/M: connect failures in 60 s.",
	};

	for (size_t i = 0; i < ARRAY_SIZE(lines) && (int)i < h; i++)
		put_line(t, y0 + (int)i, lines[i], i == 0 ? C_TITLE : C_NONE);
}

static void draw_spikes(const struct top *t, int y0, int h)
{
	const struct snapshot *s = &t->snap;
	char line[LINE_CAP], dest[TF_CELL_CAP(47)], since[32];
	size_t i;

	snprintf(line, sizeof(line), "SPIKES %zu%s", s->n_spikes,
		 s->n_spikes ? "" : "  (no destination in a connect-failure spike)");
	put_line(t, y0, line, t->focus == PANE_SPIKES ? C_TITLE : C_DIM);
	for (i = 0; i < s->n_spikes && (int)i < h - 1; i++) {
		const struct spike_row *r = &s->spikes[i];
		uint64_t ago = s->real_ns > r->start_real_ns ? s->real_ns - r->start_real_ns : 0;

		if (r->host_wide)
			snprintf(dest, sizeof(dest), "host-wide (%u destinations)", r->destinations);
		else
			tf_fit_endpoint(dest, sizeof(dest), &r->addr, r->port, 30, t->unicode);
		tf_duration(since, sizeof(since), ago);
		snprintf(line, sizeof(line),
			 "  %s %llu failures in the last %us, baseline %.2f/s, for %s", dest,
			 (unsigned long long)r->failures, r->window_s, r->baseline, since);
		put_line(t, y0 + 1 + (int)i, line,
			 t->focus == PANE_SPIKES && i == t->sel_spike ? C_SEL : C_BAD);
	}
}

static void draw_events(struct top *t, int y0, int h)
{
	const struct snapshot *s = &t->snap;
	char line[LINE_CAP];
	size_t i;

	if (t->ev_scroll + 1 > s->n_recent)
		t->ev_scroll = s->n_recent ? s->n_recent - 1 : 0;
	snprintf(line, sizeof(line), "EVENTS latest first%s", t->ev_scroll ? " (scrolled)" : "");
	put_line(t, y0, line, t->focus == PANE_EVENTS ? C_TITLE : C_DIM);
	for (i = 0; i + t->ev_scroll < s->n_recent && (int)i < h - 1; i++) {
		const struct sp_event *ev = &s->recent[t->ev_scroll + i];
		enum color c = C_NONE;

		tf_event_line(line, sizeof(line), ev, t->unicode);
		if ((ev->action == SP_ACT_CONNECT && !ev->connect.success) ||
		    ev->action == SP_ACT_KEEPALIVE_TIMEOUT || ev->action == SP_ACT_RETRANS_TIMEOUT ||
		    ev->action == SP_ACT_LEASE_EXPIRED || ev->action == SP_ACT_LEASE_LOST ||
		    ev->action == SP_ACT_SPIKE || ev->action == SP_ACT_EVENTS_LOST)
			c = C_BAD;
		else if (ev->action == SP_ACT_LEASE_SUSPECT || ev->action == SP_ACT_RESET)
			c = C_WARN;
		else if (ev->action == SP_ACT_LEASE_RECOVERED)
			c = C_GOOD;
		put_line(t, y0 + 1 + (int)i, line, c);
	}
}

static void draw_footer(const struct top *t)
{
	char line[LINE_CAP];

	if (t->filtering)
		snprintf(line, sizeof(line), "filter: %s_   (Enter keep, Esc drop)", t->filter);
	else if (t->view_mode == VIEW_DETAILS)
		snprintf(line, sizeof(line),
			 "Esc back  %s move  space %s  q quit  ? help",
			 t->unicode ? "\xe2\x86\x91\xe2\x86\x93" : "j/k",
			 t->paused ? "resume" : "pause");
	else
		snprintf(line, sizeof(line),
			 "q quit  ? help  s/</> sort  r reverse  / filter  space %s  Tab pane  %s "
			 "move  Enter details",
			 t->paused ? "resume" : "pause",
			 t->unicode ? "\xe2\x86\x91\xe2\x86\x93" : "j/k");
	attron(A_REVERSE);
	mvhline(LINES - 1, 0, ' ', COLS);
	put_line(t, LINES - 1, line, C_NONE);
	attroff(A_REVERSE);
}

static void draw_screen(struct top *t)
{
	int rows = LINES, ev_h, sp_h, main_h;

	erase();
	if (rows < 12 || COLS < 40) {
		put_line(t, 0, "sockpulse top: the terminal is too small (80x24 or more)", C_BAD);
		refresh();
		return;
	}
	draw_header(t);
	ev_h = rows >= 30 ? (rows - 4) / 4 : 5;
	sp_h = 1 + (int)(t->snap.n_spikes < 3 ? t->snap.n_spikes : 3);
	main_h = rows - 3 - ev_h - sp_h - 1;
	if (main_h < 3) {
		ev_h = 2;
		main_h = rows - 3 - ev_h - sp_h - 1;
	}
	/* table rows nobody needs go to the events pane (the table takes them back as it grows) */
	if (t->view_mode != VIEW_HELP) {
		int need = t->view_mode == VIEW_DETAILS
				   ? 2 + (t->snap.n_details > 2 ? (int)t->snap.n_details : 2)
				   : 1 + (t->n_view > 2 ? (int)t->n_view : 2);

		if (main_h > need) {
			ev_h += main_h - need;
			main_h = need;
		}
	}
	switch (t->view_mode) {
	case VIEW_HELP:
		draw_help(t, 3, main_h);
		break;
	case VIEW_DETAILS:
		draw_details(t, 3, main_h);
		break;
	default:
		draw_table(t, 3, main_h);
		break;
	}
	draw_spikes(t, 3 + main_h, sp_h);
	draw_events(t, 3 + main_h + sp_h, ev_h);
	draw_footer(t);
	top_drain_ring(t);
	refresh();
}

/* Draws the screen from the snapshot, and counts what that cost. */
void top_draw(struct top *t)
{
	uint64_t t0 = clock_mono_ns(), d;

	draw_screen(t);
	d = clock_mono_ns() - t0;
	t->draws++;
	t->draw_sum_ns += d;
	if (d > t->draw_max_ns)
		t->draw_max_ns = d;
}
