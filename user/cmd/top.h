/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef SP_TOP_H
#define SP_TOP_H

#include "cli.h"

/*
 * Runs `sockpulse top`, the live ncursesw dashboard, until q, SIGINT, SIGTERM or SIGHUP; the
 * terminal is restored on every way out. Needs a terminal on stdin and stdout: without one it
 * says to use `sockpulse watch` and returns SP_EXIT_USAGE. Returns an enum sp_exit.
 */
int top_run(const struct config *cfg);

#endif
