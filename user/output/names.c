/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Name tables. Values come from the kernel or the ring and are untrusted: every lookup checks
 * the index against the table size, and holes in a table (designated initializers) give NULL.
 */
#include <errno.h>

#include "event.h"
#include "names.h"
#include "sockpulse.h"
#include "util.h"

#ifndef ARRAY_SIZE
#endif

#define LOOKUP(table, i) ((i) < ARRAY_SIZE(table) ? (table)[i] : NULL)

/* include/net/tcp_states.h, lowercased (the names tcpstates and ss use). */
static const char *const tcp_state_names[] = {
	[SP_ST_ESTABLISHED] = "established",
	[SP_ST_SYN_SENT] = "syn_sent",
	[SP_ST_SYN_RECV] = "syn_recv",
	[SP_ST_FIN_WAIT1] = "fin_wait1",
	[SP_ST_FIN_WAIT2] = "fin_wait2",
	[SP_ST_TIME_WAIT] = "time_wait",
	[SP_ST_CLOSE] = "close",
	[SP_ST_CLOSE_WAIT] = "close_wait",
	[SP_ST_LAST_ACK] = "last_ack",
	[SP_ST_LISTEN] = "listen",
	[SP_ST_CLOSING] = "closing",
	[SP_ST_NEW_SYN_RECV] = "new_syn_recv",
};
_Static_assert(ARRAY_SIZE(tcp_state_names) == SP_ST_MAX, "tcp state table");
_Static_assert(SP_ST_MAX == SP_TCP_STATE_MAX, "event.h and sockpulse.h disagree on TCP states");

static const char *const failure_names[] = {
	[SP_FAIL_REFUSED] = "refused",	   [SP_FAIL_TIMEOUT] = "timeout",
	[SP_FAIL_UNREACHABLE] = "unreachable", [SP_FAIL_RESET] = "reset",
	[SP_FAIL_CANCELED] = "canceled",   [SP_FAIL_LOCAL] = "local",
};
_Static_assert(ARRAY_SIZE(failure_names) == SP_FAIL_MAX, "failure table");

#define E(x) [x] = #x
static const char *const errno_names[] = {
	E(EPERM),	 E(EINTR),	  E(EAGAIN),	    E(ENOMEM),	     E(EACCES),
	E(EINVAL),	 E(EPIPE),	  E(ENONET),	    E(EPROTO),	     E(ENOPROTOOPT),
	E(EAFNOSUPPORT), E(EADDRINUSE),	  E(EADDRNOTAVAIL), E(ENETDOWN),     E(ENETUNREACH),
	E(ENETRESET),	 E(ECONNABORTED), E(ECONNRESET),    E(ENOBUFS),	     E(EISCONN),
	E(ETIMEDOUT),	 E(ECONNREFUSED), E(EHOSTDOWN),	    E(EHOSTUNREACH), E(EALREADY),
	E(EINPROGRESS),	 E(ECANCELED),	  E(ENOENT),	    E(EBADF),	     E(ENOTCONN),
	E(ESHUTDOWN),	 E(EMSGSIZE),	  E(ENOTSOCK),	    E(EOPNOTSUPP),   E(ENOSPC),
};
#undef E

static const char *const action_names[] = {
	[SP_ACT_STATE_CHANGE] = "tcp-state-change",
	[SP_ACT_ACTIVITY] = "tcp-activity",
	[SP_ACT_CONNECT] = "tcp-connect",
	[SP_ACT_KEEPALIVE_TIMEOUT] = "tcp-keepalive-timeout",
	[SP_ACT_RETRANS_TIMEOUT] = "tcp-retransmit-timeout",
	[SP_ACT_RESET] = "tcp-reset",
	[SP_ACT_LEASE_SUSPECT] = "lease-suspect",
	[SP_ACT_LEASE_EXPIRED] = "lease-expired",
	[SP_ACT_LEASE_RECOVERED] = "lease-recovered",
	[SP_ACT_LEASE_CLOSED] = "lease-closed",
	[SP_ACT_LEASE_LOST] = "lease-lost",
	[SP_ACT_SPIKE] = "connect-failure-spike",
	[SP_ACT_EVENTS_LOST] = "events-lost",
	[SP_ACT_LEASE_HOLD] = "lease-hold",
	[SP_ACT_TCP_STUCK] = "tcp-stuck",
	[SP_ACT_PORT_RISK] = "port-exhaustion-risk",
};
_Static_assert(ARRAY_SIZE(action_names) == SP_ACT_MAX, "action table");

static const char *const rec_type_names[] = {
	[SP_REC_STATE] = "state",
	[SP_REC_CONNECT] = "connect",
	[SP_REC_KEEPALIVE_TIMEOUT] = "keepalive-timeout",
	[SP_REC_RETRANS_TIMEOUT] = "retransmit-timeout",
	[SP_REC_RESET] = "reset",
	[SP_REC_ACTIVITY] = "activity",
};
_Static_assert(ARRAY_SIZE(rec_type_names) == SP_REC_TYPE_MAX, "record type table");

static const char *const direction_names[] = {
	[SP_DIR_EGRESS] = "egress",
	[SP_DIR_INGRESS] = "ingress",
};
_Static_assert(ARRAY_SIZE(direction_names) == SP_DIR_MAX, "direction table");

/* Only inferred owners are named: an owner seen in its own task needs no word. */
static const char *const owner_source_names[] = {
	[SP_OWNER_LISTENER] = "listener",
	[SP_OWNER_TABLE] = "socket-table",
};
_Static_assert(ARRAY_SIZE(owner_source_names) == SP_OWNER_SOURCE_MAX, "owner source table");

static const char *const reset_dir_names[] = {
	[SP_RST_RECEIVED] = "received",
	[SP_RST_SENT] = "sent",
};
_Static_assert(ARRAY_SIZE(reset_dir_names) == SP_RST_MAX, "reset direction table");

static const char *const lease_kind_names[] = {
	[SP_LEASE_TRANSPORT] = "transport",
	[SP_LEASE_PAYLOAD] = "payload",
};
_Static_assert(ARRAY_SIZE(lease_kind_names) == SP_LEASE_KIND_MAX, "lease kind table");

static const char *const connect_hook_names[] = {
	[SP_HOOK_NONE] = "none", /* outcomes from state changes only */
	[SP_HOOK_FENTRY] = "fentry",
	[SP_HOOK_KPROBE] = "kprobe",
	[SP_HOOK_TRACEPOINT] = "tracepoint",
};
_Static_assert(ARRAY_SIZE(connect_hook_names) == SP_HOOK_MAX, "connect hook table");

const char *tcp_state_name(unsigned int state)
{
	return LOOKUP(tcp_state_names, state);
}

const char *failure_name(unsigned int failure)
{
	return LOOKUP(failure_names, failure);
}

const char *errno_name(int err)
{
	if (err <= 0)
		return NULL;
	return LOOKUP(errno_names, (unsigned int)err);
}

const char *action_name(unsigned int action)
{
	return LOOKUP(action_names, action);
}

const char *rec_type_name(unsigned int type)
{
	return LOOKUP(rec_type_names, type);
}

const char *direction_name(unsigned int dir)
{
	return LOOKUP(direction_names, dir);
}

const char *owner_source_name(unsigned int source)
{
	return LOOKUP(owner_source_names, source);
}

const char *reset_dir_name(unsigned int dir)
{
	return LOOKUP(reset_dir_names, dir);
}

const char *lease_kind_name(unsigned int kind)
{
	return LOOKUP(lease_kind_names, kind);
}

const char *connect_hook_name(unsigned int hook)
{
	return LOOKUP(connect_hook_names, hook);
}
