/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef SP_AGENT_H
#define SP_AGENT_H

#include "cli.h"

/* Runs `sockpulse agent` until --duration, SIGINT or SIGTERM; returns an enum sp_exit. */
int agent_run(const struct config *cfg);

#endif
