/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-service numbers behind the metrics' `service` label. A service is a name (the systemd
 * unit, else the container's short id, else the command: cgroup.h's cg_service()), interned once
 * and never forgotten: a host runs a bounded set of services, and a table that is full sends the
 * rest to slot 0, which renders as "other". At render only the top N by activity keep their own
 * label; the others are summed under "other" too, and how many were folded is reported.
 * Pure logic, unit-tested.
 */
#ifndef SP_SVCTAB_H
#define SP_SVCTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "sockpulse.h"
#include "stuck.h"

#define SVC_NAME_MAX	96
#define SVC_MAX		512 /* services with a slot of their own; the rest go to slot 0 */
#define SVC_TOP_DEFAULT 20  /* --metrics-services */
#define SVC_TOP_MAX	200 /* its bound */
#define SVC_OTHER	0   /* the slot of everything without one */

enum { SVC_LEASE_ALIVE = 0, SVC_LEASE_SUSPECT, SVC_LEASE_EXPIRED, SVC_LEASE_STATES };

struct svc_stat {
	char name[SVC_NAME_MAX];
	uint64_t activity; /* connects, leases made, stuck sockets: what the top N is chosen by */
	uint64_t connects[2]; /* success, failure */
	uint64_t failures[SP_FAIL_MAX];
	int64_t leases[SP_LEASE_KIND_MAX][SVC_LEASE_STATES];
	uint64_t stuck[STUCK_STATES];
};

struct svc_tab {
	struct svc_stat *s; /* SVC_MAX */
	uint16_t *slots;    /* hash of names -> index + 1, 0 empty */
	uint32_t n;	    /* slots in use, SVC_OTHER included */
	uint64_t full;	    /* names sent to "other" because the table was full */
};

int svc_init(struct svc_tab *t);
void svc_free(struct svc_tab *t);
/* The index of a name (created if new, SVC_OTHER when full or empty). */
uint16_t svc_intern(struct svc_tab *t, const char *name, size_t len);
/*
 * The top @n (<= SVC_TOP_MAX) indexes by activity and stuck sockets held, most active first, into
 * @out (SVC_OTHER never among them); returns how many. *folded: services with numbers that are
 * summed under "other".
 */
size_t svc_top(const struct svc_tab *t, size_t n, uint16_t *out, uint32_t *folded);

#endif
