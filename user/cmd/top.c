// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sockpulse top`: the live dashboard. A sink on the agent core like watch: events update small
 * tables (peers with their connect failures per second, connections by cookie, recent events,
 * spikes) in O(1) each; the lease engine and sock_diag are read once per refresh. The screen is
 * drawn at most once per refresh interval and once per batch of keys, from a snapshot, so
 * drawing never competes with draining the ring. The terminal is one more descriptor of the
 * agent's epoll loop; SIGWINCH arrives through a signalfd (no signal handler does work).
 *
 * This file sets the dashboard up (the terminal, the sink on the runtime, sock_diag, the signalfd),
 * runs it live or over a replayed log, and gives the terminal back. The rest, by concern:
 * top_model.c the tables events feed, top_snapshot.c what the screen shows (snapshot and view),
 * top_draw.c drawing, top_input.c the keys; top_int.h is what they share.
 */
#define _GNU_SOURCE
#define NCURSES_WIDECHAR 1
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <ncursesw/curses.h>

#include "runtime.h"
#include "cgroup.h"
#include "clock.h"
#include "engine.h"
#include "log.h"
#include "loop.h"
#include "names.h"
#include "replay.h"
#include "sockdiag.h"
#include "top.h"
#include "top_int.h"
#include "topfmt.h"
#include "util.h"

#define TOP_REPLAY_CGROUPS 4096 /* distinct cgroup paths of a replayed log */

/* atexit() cannot take a context: the one screen that must be given back on exit(). */
static bool curses_active;

static void restore_terminal(void)
{
	if (curses_active && !isendwin())
		endwin();
	curses_active = false;
}

/* ---- the loop's callbacks: terminal, resize, tick, sock_diag, hang-up ----------------------- */

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

static void on_resize(struct top *t)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
		resizeterm(ws.ws_row, ws.ws_col);
	clearok(curscr, TRUE);
}

static void on_tty(void *ctx, int fd, uint32_t events)
{
	struct top *t = ctx;

	if (!top_process_keys(t) && (events & (EPOLLHUP | EPOLLERR)))
		runtime_stop(&t->rt, SP_EXIT_OK); /* the terminal went away */
}

static void on_winch(void *ctx, int fd, uint32_t events)
{
	struct top *t = ctx;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == sizeof(si))
		;
	on_resize(t);
	if (!top_process_keys(t))
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
		top_refresh(t);
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
	t->unicode = !t->cfg->top.no_unicode && strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
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
	t->color = !t->cfg->top.no_color && !(no_color && no_color[0]) && has_colors();
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

static void replay_signal(void *ctx, int signo)
{
	((struct top *)ctx)->rt.stop = true;
}

/* Keys and resizes until q, a hang-up, SIGINT or SIGTERM: nothing else changes the screen. */
static int replay_loop(struct top *t)
{
	const struct loop_ops ops = { .ctx = t, .on_signal = replay_signal };
	struct loop l;
	int err;

	err = loop_open(&l, 0, &ops); /* nothing to do on a tick */
	if (!err)
		err = loop_add_fd(&l, STDIN_FILENO, on_tty, t);
	if (!err)
		err = loop_add_fd(&l, t->winch_fd, on_winch, t);
	while (!err && !t->rt.stop) {
		err = loop_wait(&l, -1);
		err = err < 0 ? err : 0;
	}
	loop_close(&l);
	return err;
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
	top_refresh(t);
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
	t.refresh_ns = cfg->top.refresh_ns ? cfg->top.refresh_ns : NSEC_PER_SEC;
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
	if (cfg->walk.sockdiag_interval_ns) {
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
	top_refresh(&t);
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
