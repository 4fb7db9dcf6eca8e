// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sockpulse top`: the keys. A key changes what is shown (sort column, filter, grouping by
 * service, focused pane, selection, a peer's connections, the help) or pauses; the filter being
 * typed takes every key until Enter or Esc. All the keys waiting are handled before one redraw.
 */
#define _GNU_SOURCE
#define NCURSES_WIDECHAR 1
#include <stdio.h>
#include <string.h>

#include <ncursesw/curses.h>

#include "runtime.h"
#include "top_int.h"
#include "topfmt.h"

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
		top_apply_view(t);
		return;
	} else if (t->focus == PANE_TABLE && t->n_view) {
		t->det_peer = *t->view[t->sel];
	} else {
		return;
	}
	t->view_mode = VIEW_DETAILS;
	t->focus = PANE_TABLE;
	t->det_sel = t->det_scroll = 0;
	top_build_details(t, top_mono_ns(t));
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
	top_apply_view(t);
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
		top_apply_view(t);
		break;
	case '<':
		t->sort_col = (t->sort_col + TF_COL_MAX - 1) % TF_COL_MAX;
		top_apply_view(t);
		break;
	case 'b':
		t->by_service = !t->by_service;
		t->have_sel_key = false;
		t->sel = t->scroll = 0;
		top_apply_view(t);
		break;
	case 'r':
		t->reverse = !t->reverse;
		top_apply_view(t);
		break;
	case '/':
		snprintf(t->filter_saved, sizeof(t->filter_saved), "%s", t->filter);
		t->filtering = true;
		break;
	case ' ':
		t->paused = !t->paused;
		if (!t->paused)
			top_refresh(t);
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
			top_apply_view(t);
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
bool top_process_keys(struct top *t)
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
