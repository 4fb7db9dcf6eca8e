// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sockpulse top`: the live dashboard. A sink on the agent core like watch: events update small
 * tables here (peers with their connect failures per second, connections by cookie, recent
 * events, spikes) in O(1) each; the lease engine and sock_diag are read once per refresh. The
 * screen is drawn at most once per refresh interval and once per batch of keys, from a snapshot,
 * so drawing never competes with draining the ring. The terminal is one more descriptor of the
 * agent's epoll loop; SIGWINCH arrives through a signalfd (no signal handler does work).
 *
 * The screen is drawn by top_draw.c.
 */
#define _GNU_SOURCE
#define NCURSES_WIDECHAR 1
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <ncursesw/curses.h>

#include "runtime.h"
#include "audit.h"
#include "cgroup.h"
#include "clock.h"
#include "engine.h"
#include "format.h"
#include "log.h"
#include "names.h"
#include "replay.h"
#include "sockdiag.h"
#include "top.h"
#include "top_int.h"
#include "topfmt.h"
#include "util.h"

#define TOP_REPLAY_CGROUPS 4096 /* distinct cgroup paths of a replayed log */
#define PEER_IDLE_NS (120 * NSEC_PER_SEC) /* a peer with nothing left to show is forgotten */

/* atexit() cannot take a context: the one screen that must be given back on exit(). */
static bool curses_active;

static void restore_terminal(void)
{
	if (curses_active && !isendwin())
		endwin();
	curses_active = false;
}

/* ---- snapshot ------------------------------------------------------------------------------- */

/* Of the connections holding a lease of one kind, how many are in the given state. */
static void worst_share(const uint32_t count[LEASE_STATE_MAX], uint8_t st, uint32_t *n,
			uint32_t *of)
{
	*of = count[LEASE_ALIVE] + count[LEASE_SUSPECT] + count[LEASE_EXPIRED];
	*n = st == TF_LEASE_EXPIRED   ? count[LEASE_EXPIRED]
	     : st == TF_LEASE_SUSPECT ? count[LEASE_SUSPECT]
				      : count[LEASE_ALIVE];
}

static uint8_t worst(const uint32_t count[LEASE_STATE_MAX])
{
	if (count[LEASE_EXPIRED])
		return TF_LEASE_EXPIRED;
	if (count[LEASE_SUSPECT])
		return TF_LEASE_SUSPECT;
	if (count[LEASE_ALIVE])
		return TF_LEASE_ALIVE;
	return TF_LEASE_NONE;
}

/* Time left on the leases of each peer: the earliest verdict among its connections. */
static void compute_left(struct top *t, const struct lease_table *lt, uint64_t now)
{
	struct lease_info li;

	for (uint32_t i = 0; i < PEERS_MAX; i++)
		t->peers[i].has_left = false;
	if (!lt)
		return;
	for (uint32_t i = 0; i < t->conn_hwm; i++) {
		struct conn *cn = &t->conns[i];
		struct peer *p;
		int64_t left;

		if (!cn->used || cn->peer == NIL || !lease_get(lt, cn->cookie, &li))
			continue;
		p = &t->peers[cn->peer];
		for (int k = 0; k < SP_LEASE_KIND_MAX; k++) {
			if (k == SP_LEASE_PAYLOAD && !li.payload_armed)
				continue;
			left = (int64_t)(li.last_ns[k] + li.ttl_ns) - (int64_t)now;
			if (!p->has_left || left < p->min_left_ns) {
				p->min_left_ns = left;
				p->has_left = true;
			}
		}
	}
}

/* The owner's unit, else its container's short id, else its command. */
static void row_service(struct top *t, struct tf_row *r, uint64_t cgroup_id)
{
	const struct cg_attr *a = cgroup_id ? cg_lookup(t->rt.cg, cgroup_id) : NULL;
	const char *name = NULL;
	size_t len = 0;

	if (a)
		name = cg_service(a, &len);
	if (!len) {
		name = r->comm;
		len = strnlen(r->comm, SP_COMM_MAX);
	}
	if (len >= sizeof(r->service))
		len = sizeof(r->service) - 1;
	memcpy(r->service, name, len);
	r->service[len] = '\0';
}

static void build_rows(struct top *t, uint64_t now)
{
	const struct lease_table *lt = t->rt.engine ? engine_leases(t->rt.engine) : NULL;
	struct snapshot *s = &t->snap;
	struct lease_peer_info lp;

	compute_left(t, lt, now);
	s->n_rows = 0;
	for (uint32_t i = 0; i < PEERS_MAX; i++) {
		struct peer *p = &t->peers[i];
		struct tf_row *r = &s->rows[s->n_rows];
		bool leased = lt && lease_peer_get(lt, &p->addr, p->netns, p->port, &lp);
		uint64_t last;

		if (!p->used)
			continue;
		top_ring_roll(&p->sec, p->fail, p->att, now);
		memset(r, 0, sizeof(*r));
		for (int k = 0; k < SPARK_SECS; k++) {
			r->fails_min += p->fail[k];
			r->attempts_min += p->att[k];
		}
		if (!leased && !p->live && !r->attempts_min && now - p->touched_ns > PEER_IDLE_NS) {
			top_peer_free(t, i);
			continue;
		}
		r->addr = p->addr;
		r->netns = p->netns;
		r->port = p->port;
		r->conns = leased ? lp.conns : p->live;
		if (leased) {
			r->transport = worst(lp.count[SP_LEASE_TRANSPORT]);
			r->payload = worst(lp.count[SP_LEASE_PAYLOAD]);
			worst_share(lp.count[SP_LEASE_TRANSPORT], r->transport, &r->transport_n,
				    &r->transport_of);
			worst_share(lp.count[SP_LEASE_PAYLOAD], r->payload, &r->payload_n,
				    &r->payload_of);
			if (!lp.conns)
				r->transport = lp.lost ? TF_LEASE_LOST : TF_LEASE_CLOSED;
		}
		last = p->last_seen_ns;
		if (leased && lp.last_seen_ns > last)
			last = lp.last_seen_ns;
		if (last) {
			r->has_last = true;
			r->last_ago_ns = now > last ? now - last : 0;
		}
		r->has_left = p->has_left;
		r->left_ns = p->min_left_ns;
		r->pid = p->pid;
		memcpy(r->comm, p->comm, SP_COMM_MAX);
		row_service(t, r, p->cgroup_id);
		tf_row_prepare(r);
		s->n_rows++;
	}
}

static void incident_failures(void *ctx, const struct spike_incident *inc)
{
	struct snapshot *s = ctx;

	for (size_t i = 0; i < s->n_spikes; i++) {
		struct spike_row *r = &s->spikes[i];

		/* the window the panel names ("N failures in 10s"), not the incident's total */
		if (!r->host_wide && r->port == inc->port && r->netns == inc->netns &&
		    top_same_addr(&r->addr, &inc->addr))
			r->failures = inc->window_failures;
	}
}

static void build_details(struct top *t, uint64_t now)
{
	const struct lease_table *lt = t->rt.engine ? engine_leases(t->rt.engine) : NULL;
	struct snapshot *s = &t->snap;
	uint32_t pi = top_peer_find(t, &t->det_peer.addr, t->det_peer.netns, t->det_peer.port);

	s->n_details = 0;
	if (pi == NIL)
		return;
	for (uint32_t i = 0; i < t->conn_hwm && s->n_details < DETAILS_MAX; i++) {
		struct detail_row *d = &s->details[s->n_details];

		if (!t->conns[i].used || t->conns[i].peer != pi)
			continue;
		d->c = t->conns[i];
		d->has_lease = lt && lease_get(lt, d->c.cookie, &d->li);
		s->n_details++;
	}
}

/* The dashboard's clock: the host's, or a replayed log's last timestamp. */
static uint64_t top_mono_ns(const struct top *t)
{
	return t->replay ? t->replay_ns : clock_mono_ns();
}

static void refresh_snapshot(struct top *t)
{
	struct snapshot *s = &t->snap;
	uint64_t now = top_mono_ns(t), received = 0, lost = 0;
	size_t k;

	for (int r = 1; r < SP_REC_TYPE_MAX; r++) {
		received += t->rt.counts.received[r];
		lost += t->rt.counts.lost[r];
	}
	if (t->prev_mono && now > t->prev_mono)
		s->events_per_s = (double)(received - t->prev_received) * 1e9 /
				  (double)(now - t->prev_mono);
	t->prev_received = received;
	t->prev_mono = now;
	s->lost = t->replay ? t->replay_lost : lost;
	s->mono_ns = now;
	s->real_ns = t->replay ? now : clock_real_ns();

	memset(s->states, 0, sizeof(s->states));
	s->states_exact = t->diag_valid;
	if (t->diag_valid) {
		memcpy(s->states, t->diag_states, sizeof(s->states));
	} else {
		for (uint32_t i = 0; i < t->conn_hwm; i++)
			if (t->conns[i].used && t->conns[i].state < SP_ST_MAX)
				s->states[t->conns[i].state]++;
	}

	top_ring_roll(&t->global.sec, t->global.fail, t->global.att, now);
	s->fails_min = s->atts_min = 0;
	for (k = 0; k < SPARK_SECS; k++) {
		/* oldest first: the second after the current one is the oldest kept */
		uint64_t sec = t->global.sec + 1 + k;

		s->spark_fail[k] = t->global.fail[sec % SPARK_SECS];
		s->fails_min += t->global.fail[k];
		s->atts_min += t->global.att[k];
	}

	build_rows(t, now);
	memcpy(s->spikes, t->spikes, t->n_spikes * sizeof(t->spikes[0]));
	s->n_spikes = t->n_spikes;
	s->host_spike = false;
	for (k = 0; k < s->n_spikes; k++)
		s->host_spike |= s->spikes[k].host_wide;
	if (t->rt.engine) {
		spike_for_each_incident(engine_spikes(t->rt.engine), incident_failures, s);
		const struct stuck_stats *st = stuck_stats(engine_stuck(t->rt.engine));

		s->leases_live = engine_lease_stats(t->rt.engine)->live;
		s->stuck = st->stuck[0] + st->stuck[1];
		s->has_stuck_top = stuck_top_procs(engine_stuck(t->rt.engine), &s->stuck_top, 1);
		s->has_ports = portfc_top(engine_ports(t->rt.engine), &s->ports, 1) &&
			       (s->ports.alert || s->ports.used * 2 >= s->ports.capacity);
	}
	s->n_recent = t->n_recent;
	for (k = 0; k < t->n_recent; k++)
		s->recent[k] = t->recent[(t->recent_head + RECENT_MAX - 1 - k) % RECENT_MAX];
	if (t->view_mode == VIEW_DETAILS || t->back_mode == VIEW_DETAILS)
		build_details(t, now);
}

static bool same_peer(const struct tf_row *a, const struct tf_row *b)
{
	if (a->peers || b->peers)
		return a->peers && b->peers && !strcmp(a->service, b->service);
	return a->port == b->port && a->netns == b->netns && top_same_addr(&a->addr, &b->addr);
}

/* The filtered rows folded into one row per service (services are few: a scan will do). */
static void group_view(struct top *t)
{
	size_t n_groups = 0;

	for (size_t i = 0; i < t->n_view; i++) {
		const struct tf_row *r = t->view[i];
		size_t g;

		for (g = 0; g < n_groups; g++)
			if (!strcmp(t->groups[g].service, r->service))
				break;
		if (g == n_groups)
			memset(&t->groups[n_groups++], 0, sizeof(t->groups[0]));
		tf_row_group(&t->groups[g], r);
	}
	for (size_t g = 0; g < n_groups; g++) {
		/* the selection follows a service by its name: ports and addresses are 0 */
		struct tf_row *r = &t->groups[g];

		snprintf(r->text, sizeof(r->text), "%.*s", (int)sizeof(r->text) - 1, r->service);
		t->view[g] = r;
	}
	t->n_view = n_groups;
}

/* Filter and sort the snapshot's rows; keep the selected peer selected. */
static void apply_view(struct top *t)
{
	size_t i;

	t->n_view = 0;
	for (i = 0; i < t->snap.n_rows; i++)
		if (tf_row_match(&t->snap.rows[i], t->filter))
			t->view[t->n_view++] = &t->snap.rows[i];
	if (t->by_service)
		group_view(t);
	tf_sort(t->view, t->n_view, t->sort_col, t->reverse);
	if (t->have_sel_key) {
		for (i = 0; i < t->n_view; i++) {
			if (same_peer(t->view[i], &t->sel_key)) {
				t->sel = i;
				break;
			}
		}
	}
	if (t->sel >= t->n_view)
		t->sel = t->n_view ? t->n_view - 1 : 0;
	if (t->n_view) {
		t->sel_key = *t->view[t->sel];
		t->have_sel_key = true;
	}
}

/*
 * Drains the ring between the steps of a refresh and a draw, so that none of them is added to
 * the time the kernel has to hold records (a small --ring-size fills in a few milliseconds under
 * a connection storm). Records go through the agent's own path: order kept, engine fed.
 */
void top_drain_ring(struct top *t)
{
	if (t->rt.ring)
		runtime_drain(&t->rt);
}

/* ---- keys ----------------------------------------------------------------------------------- */

static void refresh_all(struct top *t)
{
	uint64_t t0 = clock_mono_ns(), d;

	refresh_snapshot(t);
	apply_view(t);
	d = clock_mono_ns() - t0;
	t->refreshes++;
	t->refresh_sum_ns += d;
	if (d > t->refresh_max_ns)
		t->refresh_max_ns = d;
}

static void open_details(struct top *t)
{
	if (t->focus == PANE_SPIKES && t->sel_spike < t->snap.n_spikes &&
	    !t->snap.spikes[t->sel_spike].host_wide) {
		const struct spike_row *r = &t->snap.spikes[t->sel_spike];

		memset(&t->det_peer, 0, sizeof(t->det_peer));
		t->det_peer.addr = r->addr;
		t->det_peer.netns = r->netns;
		t->det_peer.port = r->port;
	} else if (t->focus == PANE_TABLE && t->n_view && t->view[t->sel]->peers) {
		/* a service's row opens into its peers: filtered by its name, ungrouped */
		snprintf(t->filter, sizeof(t->filter), "%s", t->view[t->sel]->service);
		t->by_service = false;
		t->have_sel_key = false;
		t->sel = t->scroll = 0;
		apply_view(t);
		return;
	} else if (t->focus == PANE_TABLE && t->n_view) {
		t->det_peer = *t->view[t->sel];
	} else {
		return;
	}
	t->view_mode = VIEW_DETAILS;
	t->focus = PANE_TABLE;
	t->det_sel = t->det_scroll = 0;
	build_details(t, top_mono_ns(t));
}

static void move_sel(struct top *t, long delta)
{
	size_t *sel, n;

	if (t->focus == PANE_EVENTS) {
		sel = &t->ev_scroll;
		n = t->snap.n_recent;
	} else if (t->focus == PANE_SPIKES) {
		sel = &t->sel_spike;
		n = t->snap.n_spikes;
	} else if (t->view_mode == VIEW_DETAILS) {
		sel = &t->det_sel;
		n = t->snap.n_details;
	} else {
		sel = &t->sel;
		n = t->n_view;
	}
	if (!n) {
		*sel = 0;
		return;
	}
	if (delta < 0 && (size_t)-delta > *sel)
		*sel = 0;
	else if (delta > 0 && *sel + (size_t)delta >= n)
		*sel = n - 1;
	else
		*sel = (size_t)((long)*sel + delta);
	if (sel == &t->sel && t->n_view) {
		t->sel_key = *t->view[t->sel];
		t->have_sel_key = true;
	}
}

static void filter_key(struct top *t, int ch)
{
	size_t n = strlen(t->filter);

	switch (ch) {
	case 27:
		snprintf(t->filter, sizeof(t->filter), "%s", t->filter_saved);
		t->filtering = false;
		break;
	case '\n':
	case '\r':
	case KEY_ENTER:
		t->filtering = false;
		break;
	case KEY_BACKSPACE:
	case 127:
	case 8:
		if (n)
			t->filter[n - 1] = '\0';
		break;
	default:
		if (ch >= 32 && ch < 256 && ch != 127 && n + 1 < sizeof(t->filter)) {
			t->filter[n] = (char)ch;
			t->filter[n + 1] = '\0';
		}
		break;
	}
	t->sel = 0;
	t->have_sel_key = false;
	apply_view(t);
}

static void on_resize(struct top *t)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
		resizeterm(ws.ws_row, ws.ws_col);
	clearok(curscr, TRUE);
}

/* Returns false when the dashboard should stop. */
static bool handle_key(struct top *t, int ch)
{
	if (t->filtering) {
		filter_key(t, ch);
		return true;
	}
	if (t->view_mode == VIEW_HELP && ch != KEY_RESIZE) {
		t->view_mode = t->back_mode;
		if (ch != 'q' && ch != KEY_F(10))
			return true;
	}
	switch (ch) {
	case 'q':
	case 'Q':
	case KEY_F(10):
		return false;
	case '?':
	case 'h':
	case KEY_F(1):
		t->back_mode = t->view_mode;
		t->view_mode = VIEW_HELP;
		break;
	case 's':
	case '>':
		t->sort_col = (t->sort_col + 1) % TF_COL_MAX;
		apply_view(t);
		break;
	case '<':
		t->sort_col = (t->sort_col + TF_COL_MAX - 1) % TF_COL_MAX;
		apply_view(t);
		break;
	case 'b':
		t->by_service = !t->by_service;
		t->have_sel_key = false;
		t->sel = t->scroll = 0;
		apply_view(t);
		break;
	case 'r':
		t->reverse = !t->reverse;
		apply_view(t);
		break;
	case '/':
		snprintf(t->filter_saved, sizeof(t->filter_saved), "%s", t->filter);
		t->filtering = true;
		break;
	case ' ':
		t->paused = !t->paused;
		if (!t->paused)
			refresh_all(t);
		break;
	case '\t':
		t->focus = (t->focus + 1) % PANE_MAX;
		break;
	case KEY_BTAB:
		t->focus = (t->focus + PANE_MAX - 1) % PANE_MAX;
		break;
	case KEY_UP:
	case 'k':
		move_sel(t, -1);
		break;
	case KEY_DOWN:
	case 'j':
		move_sel(t, 1);
		break;
	case KEY_PPAGE:
		move_sel(t, -(LINES / 2));
		break;
	case KEY_NPAGE:
		move_sel(t, LINES / 2);
		break;
	case KEY_HOME:
	case 'g':
		move_sel(t, -1000000);
		break;
	case KEY_END:
	case 'G':
		move_sel(t, 1000000);
		break;
	case '\n':
	case '\r':
	case KEY_ENTER:
		if (t->view_mode == VIEW_TABLE)
			open_details(t);
		break;
	case 27:
		if (t->view_mode == VIEW_DETAILS) {
			t->view_mode = VIEW_TABLE;
			t->back_mode = VIEW_TABLE;
		} else if (t->filter[0]) {
			t->filter[0] = '\0';
			apply_view(t);
		}
		break;
	case KEY_RESIZE:
		/* ncurses has resized (resizeterm() queues this key): the redraw follows */
		break;
	default:
		break;
	}
	return true;
}

/* Every key waiting (and the KEY_RESIZE a resize queued), then one redraw. */
static bool process_keys(struct top *t)
{
	bool any = false;
	int ch;

	while ((ch = getch()) != ERR) {
		any = true;
		if (!handle_key(t, ch)) {
			runtime_stop(&t->rt, SP_EXIT_OK);
			return true;
		}
	}
	if (any)
		top_draw(t);
	return any;
}

static void on_tty(void *ctx, int fd, uint32_t events)
{
	struct top *t = ctx;

	if (!process_keys(t) && (events & (EPOLLHUP | EPOLLERR)))
		runtime_stop(&t->rt, SP_EXIT_OK); /* the terminal went away */
}

static void on_winch(void *ctx, int fd, uint32_t events)
{
	struct top *t = ctx;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == sizeof(si))
		;
	on_resize(t);
	if (!process_keys(t))
		top_draw(t);
}

static void on_tick(void *ctx, uint64_t now)
{
	struct top *t = ctx;

	if (now < t->next_refresh_ns)
		return;
	t->next_refresh_ns = now + t->refresh_ns;
	top_diag_start(t);
	if (!t->paused) {
		refresh_all(t);
		top_drain_ring(t);
	}
	top_draw(t);
}

static void on_diag(void *ctx, int fd, uint32_t events)
{
	sockdiag_process(ctx);
}

static void on_hup(void *ctx)
{
	struct top *t = ctx;

	runtime_stop(&t->rt, SP_EXIT_OK); /* our terminal hung up */
}

/* ---- set-up and tear-down ------------------------------------------------------------------ */

/*
 * While the screen is ours, diagnostics on a terminal stderr would scribble over it: they are
 * kept in memory and written out once the terminal is restored.
 */
static void capture_stderr(struct top *t)
{
	t->stderr_saved = t->stderr_capture = -1;
	if (!isatty(STDERR_FILENO))
		return;
	t->stderr_capture = memfd_create("sockpulse-top-stderr", MFD_CLOEXEC);
	if (t->stderr_capture < 0)
		return;
	t->stderr_saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
	if (t->stderr_saved < 0 || dup2(t->stderr_capture, STDERR_FILENO) < 0) {
		close(t->stderr_capture);
		if (t->stderr_saved >= 0)
			close(t->stderr_saved);
		t->stderr_saved = t->stderr_capture = -1;
	}
}

static void release_stderr(struct top *t)
{
	char buf[4096];
	ssize_t n;

	if (t->stderr_saved < 0)
		return;
	fflush(stderr);
	dup2(t->stderr_saved, STDERR_FILENO);
	close(t->stderr_saved);
	if (lseek(t->stderr_capture, 0, SEEK_SET) == 0)
		while ((n = read(t->stderr_capture, buf, sizeof(buf))) > 0)
			if (write(STDERR_FILENO, buf, (size_t)n) != n)
				break;
	close(t->stderr_capture);
	t->stderr_saved = t->stderr_capture = -1;
}

static int start_screen(struct top *t)
{
	const char *no_color = getenv("NO_COLOR");
	sigset_t mask;

	/* SIGWINCH through the loop, never through ncurses' handler */
	sigemptyset(&mask);
	sigaddset(&mask, SIGWINCH);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	t->winch_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (t->winch_fd < 0)
		return -errno;

	setlocale(LC_ALL, "");
	setlocale(LC_NUMERIC, "C");
	t->unicode = !t->cfg->no_unicode && strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
	if (!newterm(NULL, stdout, stdin))
		return -ENOTTY;
	curses_active = true;
	t->curses_on = true;
	atexit(restore_terminal);
	cbreak();
	noecho();
	nonl();
	intrflush(stdscr, FALSE);
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	t->color = !t->cfg->no_color && !(no_color && no_color[0]) && has_colors();
	if (t->color && start_color() == OK) {
		use_default_colors();
		init_pair(C_TITLE, COLOR_CYAN, -1);
		init_pair(C_GOOD, COLOR_GREEN, -1);
		init_pair(C_WARN, COLOR_YELLOW, -1);
		init_pair(C_BAD, COLOR_RED, -1);
		init_pair(C_DIM, COLOR_BLUE, -1);
	} else {
		t->color = false;
	}
	return 0;
}

static void stop_screen(struct top *t)
{
	if (!t->curses_on)
		return;
	restore_terminal();
	t->curses_on = false;
}

/* ---- --replay FILE ----------------------------------------------------------------------- */

static void replay_emit(void *ctx, const struct sp_event *ev)
{
	struct sp_event out = *ev;

	out.real_ns = out.mono_ns; /* the log's clock */
	top_on_event(ctx, &out);
}

static void replay_hold(void *ctx, const struct engine_hold *hold)
{
	struct sp_event ev;

	engine_hold_event(hold, &ev);
	replay_emit(ctx, &ev);
}

static void replay_feed(void *ctx, const struct sp_event *ev)
{
	struct top *t = ctx;

	t->replay_ns = ev->mono_ns;
	t->replay_events++;
	if (ev->action == SP_ACT_EVENTS_LOST)
		t->replay_lost += ev->lost.count;
	top_on_event(t, ev);
	engine_feed(t->rt.engine, ev);
}

/* Feeds the whole log through the engine and the dashboard's tables, as replay does. */
static int replay_load(struct top *t)
{
	struct engine_config ecfg = t->cfg->engine;
	const char *path = t->cfg->replay_path, *base = strrchr(path, '/');
	struct replay_stats st;
	FILE *f;
	int err;

	snprintf(t->host, sizeof(t->host), "%s", base ? base + 1 : path);
	ecfg.stall_ns = 0; /* no wall clock: a gap between two lines is not a stall */
	t->rt.engine = engine_new(&ecfg, replay_emit, t);
	if (!t->rt.engine) {
		pr_warn("top: cannot set up the lease engine: out of memory");
		return SP_EXIT_FAILURE;
	}
	engine_set_hold_fn(t->rt.engine, replay_hold, t);
	f = fopen(path, "re");
	if (!f) {
		pr_warn("top: cannot open %s: %s", path, strerror(errno));
		return SP_EXIT_FAILURE;
	}
	/* the log's cgroup paths, interned: the SERVICE column reads them as live reads ids */
	t->rt.cg = cg_cache_new(&(struct cg_cache_config){ .capacity = TOP_REPLAY_CGROUPS });
	if (!t->rt.cg) {
		fclose(f);
		pr_warn("top: cannot set up the cgroup table: out of memory");
		return SP_EXIT_FAILURE;
	}
	err = replay_stream_cg(f, replay_feed, t, &st, t->rt.cg);
	fclose(f);
	if (err) {
		pr_warn("top: %s: %s", path,
			err == -ENODATA ? "no valid event line" : strerror(-err));
		return SP_EXIT_FAILURE;
	}
	if (st.bad)
		pr_warn("top: %s: %llu malformed line%s skipped (first at line %llu)", path,
			(unsigned long long)st.bad, st.bad == 1 ? "" : "s",
			(unsigned long long)st.first_bad);
	return SP_EXIT_OK;
}

/* Keys and resizes until q, a hang-up, SIGINT or SIGTERM: nothing else changes the screen. */
static int replay_loop(struct top *t)
{
	struct pollfd p[3] = {
		{ .fd = STDIN_FILENO, .events = POLLIN },
		{ .fd = t->winch_fd, .events = POLLIN },
		{ .fd = -1, .events = POLLIN },
	};
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	p[2].fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (p[2].fd < 0)
		return -errno;
	while (!t->rt.stop) {
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents)
			break;
		if (p[0].revents)
			on_tty(t, STDIN_FILENO,
			       p[0].revents & (POLLHUP | POLLERR) ? EPOLLHUP : EPOLLIN);
		if (p[1].revents)
			on_winch(t, t->winch_fd, EPOLLIN);
	}
	close(p[2].fd);
	return 0;
}

static int top_replay(struct top *t)
{
	int ret = replay_load(t), err;

	if (ret)
		goto out;
	t->hook = "replay";
	err = start_screen(t);
	if (err) {
		stop_screen(t);
		pr_warn("top: cannot set up the terminal: %s", strerror(-err));
		ret = SP_EXIT_FAILURE;
		goto out;
	}
	capture_stderr(t);
	refresh_all(t);
	top_draw(t);
	err = replay_loop(t);
	stop_screen(t);
	release_stderr(t);
	if (err) {
		pr_warn("top: %s", strerror(-err));
		ret = SP_EXIT_FAILURE;
	}
out:
	engine_free(t->rt.engine);
	t->rt.engine = NULL;
	cg_cache_free(t->rt.cg);
	t->rt.cg = NULL;
	if (t->winch_fd >= 0)
		close(t->winch_fd);
	top_free_tables(t);
	return ret;
}

int top_run(const struct config *cfg)
{
	static struct top t; /* large: not on the stack */
	const struct runtime_sink sink = {
	    .ctx = &t,
	    .on_event = top_on_event,
	    .on_tick = on_tick,
	    .on_hup = on_hup,
	    .on_walk_sock = top_walk_sock,
	};
	int ret, err;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "sockpulse: top needs a terminal; use `sockpulse watch` for a stream "
				"of events (try 'sockpulse --help')\n");
		return SP_EXIT_USAGE;
	}
	memset(&t, 0, sizeof(t));
	t.cfg = cfg;
	t.winch_fd = t.stderr_saved = t.stderr_capture = -1;
	t.refresh_ns = cfg->refresh_ns ? cfg->refresh_ns : NSEC_PER_SEC;
	t.sort_col = TF_COL_TRANSPORT;
	if (gethostname(t.host, sizeof(t.host) - 1))
		snprintf(t.host, sizeof(t.host), "?");
	if (top_alloc_tables(&t)) {
		pr_warn("top: out of memory");
		ret = SP_EXIT_FAILURE;
		goto out;
	}
	if (cfg->replay_path) {
		t.replay = true;
		return top_replay(&t);
	}
	ret = runtime_open(&t.rt, cfg, &sink);
	if (ret)
		goto out;
	t.hook = connect_hook_name(t.rt.loader.hook);
	if (!t.hook)
		t.hook = "?";
	if (cfg->sockdiag_interval_ns) {
		err = sockdiag_open(&t.diag, cfg, top_diag_done, &t);
		if (!err)
			err = runtime_add_fd(&t.rt, sockdiag_fd(&t.diag), on_diag, &t.diag);
		if (err)
			pr_warn("sock_diag: %s: state counts come from events", strerror(-err));
		else
			t.diag_on = true;
	}
	runtime_walk_start(&t.rt);
	pr_info("ready: %d programs attached, dashboard on the terminal", runtime_programs(&t.rt));
	err = start_screen(&t);
	if (!err)
		err = runtime_add_fd(&t.rt, STDIN_FILENO, on_tty, &t);
	if (!err)
		err = runtime_add_fd(&t.rt, t.winch_fd, on_winch, &t);
	if (err) {
		stop_screen(&t);
		pr_warn("top: cannot set up the terminal: %s", strerror(-err));
		ret = SP_EXIT_FAILURE;
		goto out;
	}
	capture_stderr(&t);
	refresh_all(&t);
	top_draw(&t);
	t.next_refresh_ns = clock_mono_ns() + t.refresh_ns;
	ret = runtime_run(&t.rt);
	stop_screen(&t);
	release_stderr(&t);
	runtime_summary(&t.rt);
	if (t.refreshes && t.draws)
		pr_info("summary: top refreshed %llu times (mean %.2f ms, slowest %.2f ms), drew %llu "
			"screens (mean %.2f ms, slowest %.2f ms)",
			(unsigned long long)t.refreshes, t.refresh_sum_ns / 1e6 / t.refreshes,
			t.refresh_max_ns / 1e6, (unsigned long long)t.draws,
			t.draw_sum_ns / 1e6 / t.draws, t.draw_max_ns / 1e6);
	if (t.conns_dropped || t.peers_dropped)
		pr_info("summary: top followed at most %u connections and %u peers: %llu and %llu "
			"more not shown",
			CONNS_MAX, PEERS_MAX, (unsigned long long)t.conns_dropped,
			(unsigned long long)t.peers_dropped);
out:
	stop_screen(&t);
	release_stderr(&t);
	if (t.diag_on || t.diag.buf)
		sockdiag_close(&t.diag);
	runtime_close(&t.rt);
	if (t.winch_fd >= 0)
		close(t.winch_fd);
	top_free_tables(&t);
	return ret;
}
