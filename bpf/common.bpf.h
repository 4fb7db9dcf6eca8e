/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared by every part of the kernel side: constants the program needs from uapi headers
 * (vmlinux.h has types, not macros), the tunables the agent sets before load, per-socket and
 * per-call state, the maps, and the ring buffer with its drop counters.
 */
#ifndef SP_COMMON_BPF_H
#define SP_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sockpulse.h"

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define SOCK_STREAM 1
#define SS_UNCONNECTED 1

#define EINTR 4
#define EEXIST 17
#define O_NONBLOCK 00004000
#define SIGKILL 9
#define ETIMEDOUT 110
#define ECONNREFUSED 111
#define ECONNRESET 104
#define EALREADY 114
#define EINPROGRESS 115
#define EISCONN 106
#define ERESTARTSYS 512
#define ERESTART_RESTARTBLOCK 516

/* Tunables, set by the agent between open and load. */
const volatile __u64 coalesce_ns = 1000000000ULL;
const volatile __u64 wakeup_bytes = 0;	/* wake the consumer at each multiple waiting */
const volatile __u64 filter_cgroup = 0; /* cgroup v2 id; sockets in it or below it */
const volatile __u32 filter_netns = 0;	/* netns inode */
const volatile __u16 filter_family = 0; /* AF_INET or AF_INET6; 0 = both */
const volatile bool filter_ports = false;
const volatile __u8 port_bits[8192] = {};

/*
 * Per-socket state, in a hash keyed by socket cookie: made at the socket's first event, deleted
 * when it enters CLOSE. A child takes its listener's owner from listen_owners.
 */
struct sk_info {
	__u64 state_ts;		/* entry into the current state */
	__u64 connect_ts;	/* connect start */
	__u64 last_emit;	/* last activity record */
	__u64 rx_bytes;		/* payload bytes since the last activity record */
	__u32 rx_segs;		/* segments since the last activity record */
	__u32 pid;
	char comm[SP_COMM_LEN];
	__s32 err;		/* last error seen by inet_sk_error_report */
	__u16 retrans;		/* retransmissions since the last inbound segment */
	__u8 state;		/* last state we saw it enter */
	__u8 direction;
	__u8 flags;		/* SKF_* */
	__u8 verdict;		/* filter verdict cache for the per-segment path */
	__u8 prev_state;	/* the state it left last */
};

#define SKF_OWNER (1 << 0)		/* pid/comm captured in task context */
#define SKF_OWNER_PROVISIONAL (1 << 1)	/* inherited from the listener; accept() may refine */
#define SKF_CONNECT_PENDING (1 << 2)	/* SYN_SENT entered, outcome not reported yet */
#define SKF_RST_RCVD (1 << 3)
#define SKF_RST_SENT (1 << 4)
#define SKF_STATE_KNOWN (1 << 5)	/* state/state_ts are valid */
#define SKF_DEFER (1 << 6)		/* a blocking connect(): its return decides the outcome */
#define SKF_SYNRECV_LATE (1 << 7)	/* LISTEN->SYN_RECV seen before the child had its identity */

#define VERDICT_UNKNOWN 0
#define VERDICT_PASS 1
#define VERDICT_DROP 2

/* A connect() in flight, in the calling thread's storage: entry hook -> SYN_SENT -> exit hook. */
struct connect_req {
	__u64 ts;	/* 0: no call in flight */
	__u64 sk;	/* struct sock address, for matching only */
	__u64 cookie;	/* set when SYN_SENT is seen */
	__u8 raddr[SP_ADDR_LEN];
	__u8 laddr[SP_ADDR_LEN]; /* the SYN's source address (set when SYN_SENT is seen) */
	__u16 rport;
	__u16 family;
	__u64 out_ts;	/* outcome seen inside this call (has_outcome) */
	__s32 out_err;
	__u8 syn_sent;	/* SYN_SENT entered during this call */
	__u8 closed;	/* SYN_SENT->CLOSE without error during this call */
	__u8 blocking;	/* the call waits for the outcome (no O_NONBLOCK) */
	__u8 has_outcome; /* a deferred outcome arrived while the call ran in this task */
	__u8 out_failure;
	__u8 pad[3];
};

/*
 * Where a blocking connect()'s outcome and its return meet when they happen in different
 * contexts (the outcome in softirq, the return in the task). Keyed by socket cookie. The first
 * to arrive inserts (BPF_NOEXIST); the second finds the entry, writes the one tcp-connect line
 * and deletes it, so each attempt has exactly one line whichever comes first.
 */
#define RDV_OUTCOME 1	/* the state machine's outcome, waiting for the call's return */
#define RDV_RETURNED 2	/* the call returned first (interrupted): the outcome will emit */

struct rendezvous {
	__u64 ts;
	__s32 err;	/* RDV_OUTCOME: the kernel's error; RDV_RETURNED: what the caller saw */
	__u8 kind;
	__u8 failure;	/* RDV_OUTCOME */
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by the agent */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sp_stats);
} stats SEC(".maps");

/*
 * A map keyed by cookie rather than socket storage: storage is allocated with each socket and
 * freed with it, outside any program, and on a storm of short connections that costs several
 * times what an entry in this table does (README, Performance). Preallocated: an insert takes
 * no allocation. When it is full, a socket goes without (counted as no_storage).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* --max-sockets: the agent sizes it, as its own table */
	__type(key, __u64);
	__type(value, struct sk_info);
} sk_infos SEC(".maps");

/* Where a listener's owner waits for its children: by netns, family and port. */
struct listen_key {
	__u32 netns;
	__u16 family;
	__u16 port;
};

struct listen_owner {
	__u64 cookie;	/* the listener's: only its own CLOSE deletes the entry */
	__u32 pid;
	char comm[SP_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct listen_key);
	__type(value, struct listen_owner);
} listen_owners SEC(".maps");

/*
 * A socket's state at the moment its entry was deleted (entry into CLOSE), in a slot chosen by
 * its cookie. An abortive close sends its reset just after the socket entered CLOSE: the reset
 * line's old state and owner come from here.
 */
#define CLOSED_SLOTS 4096

struct closed_slot {
	__u64 cookie;
	struct sk_info info;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CLOSED_SLOTS);
	__type(key, __u32);
	__type(value, struct closed_slot);
} closed_slots SEC(".maps");

/*
 * A child that entered SYN_RECV before it was named (6.1, core_fixes.bpf.h) still carries its
 * listener's cookie then, so it cannot have its entry yet: the time of that transition waits
 * here, by socket address, for the child's next one. Entries live for microseconds.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} unnamed_children SEC(".maps");

/* Task storage: a lookup of the current thread's entry costs a fraction of a hash update plus
 * a delete on every connect(), and the entry goes with its thread (no table to fill or leak). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct connect_req);
} connect_reqs SEC(".maps");

/* The current thread's connect() in flight, if any. */
static __always_inline struct connect_req *current_connect(void)
{
	struct connect_req *req;

	req = bpf_task_storage_get(&connect_reqs, bpf_get_current_task_btf(), 0, 0);
	return req && req->ts ? req : NULL;
}

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct rendezvous);
} connect_rdv SEC(".maps");

/* ---- counters and ring ---------------------------------------------------------------- */

/* Only failures are counted here: what reaches the agent, the agent counts. */
static __always_inline void count_dropped(__u32 type)
{
	__u32 zero = 0;
	struct sp_stats *st = bpf_map_lookup_elem(&stats, &zero);

	if (st && type < SP_REC_TYPE_MAX)
		__sync_fetch_and_add(&st->dropped[type], 1);
}

static __always_inline void count_no_storage(void)
{
	__u32 zero = 0;
	struct sp_stats *st = bpf_map_lookup_elem(&stats, &zero);

	if (st)
		__sync_fetch_and_add(&st->no_storage, 1);
}

static __always_inline struct sp_record *rec_reserve(__u32 type, __u64 now)
{
	struct sp_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		count_dropped(type);
		return NULL;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->type = type;
	r->ts_ns = now;
	return r;
}

/*
 * Wake the consumer only as the data waiting crosses a multiple of wakeup_bytes (within a few
 * records, so records submitted side by side on other CPUs cannot all step over it); the agent
 * also drains on a short timer. A wake-up is an interrupt raised on this CPU (on a virtual
 * machine, an exit to the hypervisor): woken for every record once the backlog passed the mark,
 * as before, they took 4.5 % of the machine's CPU on the rst storm (perf).
 */
#define WAKE_WINDOW (4 * (sizeof(struct sp_record) + 8))

static __always_inline void rec_submit(struct sp_record *r)
{
	__u64 flags = BPF_RB_NO_WAKEUP, avail;

	if (!wakeup_bytes) {
		flags = BPF_RB_FORCE_WAKEUP;
	} else {
		/* wakeup_bytes is an eighth of the ring, a power of two: a mask, not a division */
		avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
		if (avail >= wakeup_bytes && (avail & (wakeup_bytes - 1)) < WAKE_WINDOW)
			flags = BPF_RB_FORCE_WAKEUP;
	}
	bpf_ringbuf_submit(r, flags);
}

#endif
