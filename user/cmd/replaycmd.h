/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef SP_REPLAYCMD_H
#define SP_REPLAYCMD_H

#include "cli.h"

/* Runs `sockpulse replay FILE`: the engine over a JSON lines log; returns an enum sp_exit. */
int replay_run(const struct config *cfg);

#endif
