/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* `sockpulse audit`: one socket-table walk, the keepalive report, exit. */
#ifndef SP_AUDITCMD_H
#define SP_AUDITCMD_H

#include "cli.h"

/* enum sp_exit */
int audit_run(const struct config *cfg);

#endif
