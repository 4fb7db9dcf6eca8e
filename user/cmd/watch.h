/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef SP_WATCH_H
#define SP_WATCH_H

#include "cli.h"

/* Runs `sockpulse watch` until --duration, SIGINT or SIGTERM; returns an enum sp_exit. */
int watch_run(const struct config *cfg);

#endif
