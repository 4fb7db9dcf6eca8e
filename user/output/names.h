/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Name tables for the enumerations of include/sockpulse.h and user/event.h. Every lookup is
 * bound-checked: an out-of-range value gives NULL, never an out-of-bounds read.
 */
#ifndef SP_NAMES_H
#define SP_NAMES_H

#include "event.h"

const char *tcp_state_name(unsigned int state);	   /* "established", "syn_sent", ... */
const char *failure_name(unsigned int failure);	   /* "refused", ...; NULL for success */
const char *errno_name(int err);		   /* "ECONNREFUSED", ... for positive errno */
const char *action_name(unsigned int action);	   /* "tcp-state-change", ... */
const char *rec_type_name(unsigned int type);	   /* ring record kinds: "state", "connect", ... */
const char *direction_name(unsigned int dir);	   /* "egress", "ingress"; NULL if unknown */
const char *reset_dir_name(unsigned int dir);	   /* "received", "sent" */
const char *owner_source_name(unsigned int source); /* "listener", "socket-table"; NULL: task */
const char *lease_kind_name(unsigned int kind);	   /* "transport", "payload" */
const char *connect_hook_name(unsigned int hook);  /* "none", "fentry", "kprobe", "tracepoint" */

#endif
