/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What an engine part emits, captured for assertions. The including test defines MAXEV (how
 * many events one step may produce) before including this.
 */
#ifndef SP_TEST_CAPTURE_H
#define SP_TEST_CAPTURE_H

#include "event.h"

#define MS 1000000ull
#define SEC 1000000000ull

struct cap {
	struct sp_event ev[MAXEV];
	unsigned int n;
};

static void on_emit(void *ctx, const struct sp_event *ev)
{
	struct cap *c = ctx;

	assert_true(c->n < MAXEV);
	c->ev[c->n++] = *ev;
}

#endif
