// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sockpulse kernel side: TCP state changes, connect outcomes, keepalive/retransmission timeouts,
 * resets and coalesced inbound activity, streamed through one ring buffer.
 *
 * Per-socket facts live in socket storage (freed with the socket). Per-segment work (tcp_probe)
 * only updates that storage and emits at most one record per socket per coalescing interval.
 * Every failed ring reservation is counted per CPU per record kind.
 */
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

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Tunables, set by the agent between open and load. */
const volatile __u64 coalesce_ns = 1000000000ULL;
const volatile __u64 wakeup_bytes = 0;	/* wake the consumer only past this much data */
const volatile __u64 filter_cgroup = 0; /* cgroup v2 id; sockets in it or below it */
const volatile __u32 filter_netns = 0;	/* netns inode */
const volatile __u16 filter_family = 0; /* AF_INET or AF_INET6; 0 = both */
const volatile bool filter_ports = false;
const volatile __u8 port_bits[8192] = {};

/* Per-socket state, in socket storage. Cloned from a listener into its accepted children. */
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
	__u8 owner_tries;	/* lookups left for the accept()ing owner */
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

#define ACCEPT_OWNER_TRIES 8

/* A connect() in flight, in the calling thread's storage: entry hook -> SYN_SENT -> exit hook. */
struct connect_req {
	__u64 ts;	/* 0: no call in flight */
	__u64 sk;	/* struct sock address, for matching only */
	__u64 cookie;	/* set when SYN_SENT is seen */
	__u8 raddr[SP_ADDR_LEN];
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

struct owner {
	__u32 pid;
	char comm[SP_COMM_LEN];
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

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct sk_info);
} sk_infos SEC(".maps");

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
	__type(value, struct owner);
} accept_owners SEC(".maps");

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

static __always_inline void rec_submit(struct sp_record *r)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	/* Batch wake-ups: the agent also drains on a short timer. */
	if (!wakeup_bytes || bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(r, flags);
}

/* ---- socket facts ----------------------------------------------------------------------
 * tp_btf arguments are BTF pointers: their fields are read with plain loads, not helper
 * calls. The connect/accept hooks of the other program types hold raw addresses and use the
 * *_core variants (CO-RE probe reads).
 */

static __always_inline bool is_v4_mapped(const __u8 *a)
{
	__u32 w[4];

	__builtin_memcpy(w, a, 16);
	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

static __always_inline bool port_selected(__u16 port)
{
	__u32 idx = port >> 3;

	/* Clang drops the mask (a u16 shifted by 3 is below 8192), and verifiers before 6.2 do
	 * not know that a byte swap leaves 16 bits: they see an unbounded index. Keep the mask. */
	barrier_var(idx);
	idx &= 8191;
	return port_bits[idx] & (1 << (port & 7));
}

static __always_inline bool sk_in_cgroup(const struct sock *sk)
{
	struct cgroup *cgrp = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);

	for (int i = 0; i < 32 && cgrp; i++) {
		if (BPF_CORE_READ(cgrp, kn, id) == filter_cgroup)
			return true;
		cgrp = BPF_CORE_READ(cgrp, self.parent, cgroup);
	}
	return false;
}

static __always_inline bool no_filters(void)
{
	/* rodata: the verifier folds this and drops the filter code when nothing is set */
	return !filter_family && !filter_netns && !filter_ports && !filter_cgroup;
}

/* In-kernel filters. raddr may be NULL (not known yet); sk may be NULL (no socket). */
static __always_inline bool pass_filters(const struct sock *sk, __u16 family, __u16 lport,
					 __u16 rport, __u32 netns, const __u8 *raddr)
{
	if (no_filters())
		return true;
	if (filter_family && family != filter_family) {
		/* An IPv6 socket talking to an IPv4 peer counts as IPv4. */
		if (!(filter_family == AF_INET && family == AF_INET6 && raddr && is_v4_mapped(raddr)))
			return false;
	}
	if (filter_family == AF_INET6 && raddr && family == AF_INET6 && is_v4_mapped(raddr))
		return false;
	if (filter_netns && netns != filter_netns)
		return false;
	if (filter_ports && !port_selected(lport) && !port_selected(rport))
		return false;
	if (filter_cgroup && sk && !sk_in_cgroup(sk))
		return false;
	return true;
}

/*
 * Local port. Full sockets: inet_sport, which survives inet_put_port() (the CLOSE trace point
 * runs after the port is released and inet_num cleared). Timewait and request sockets (tp NULL)
 * keep it in the common part only.
 */
static __always_inline __u16 sk_lport(const struct sock *sk, const struct tcp_sock *tp)
{
	if (tp)
		return bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport);
	return sk->__sk_common.skc_num;
}

/* Fills addresses, ports, family and netns from a socket (full, timewait or request). */
static __always_inline void fill_from_sk(struct sp_record *r, const struct sock *sk,
					 const struct tcp_sock *tp)
{
	__u16 family = sk->__sk_common.skc_family;

	r->family = family;
	r->lport = sk_lport(sk, tp);
	r->rport = bpf_ntohs(sk->__sk_common.skc_dport);
	r->netns = sk->__sk_common.skc_net.net->ns.inum;
	if (family == AF_INET) {
		__u32 l = sk->__sk_common.skc_rcv_saddr, d = sk->__sk_common.skc_daddr;

		__builtin_memcpy(r->laddr, &l, 4);
		__builtin_memcpy(r->raddr, &d, 4);
	} else {
		bpf_probe_read_kernel(r->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_probe_read_kernel(r->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

static __always_inline bool sk_filter_ok(const struct sock *sk, const struct tcp_sock *tp)
{
	__u16 family;
	__u8 raddr[16] = {};

	if (no_filters())
		return true;
	family = sk->__sk_common.skc_family;
	if (family == AF_INET6)
		bpf_probe_read_kernel(raddr, 16, &sk->__sk_common.skc_v6_daddr);
	return pass_filters(sk, family, sk_lport(sk, tp), bpf_ntohs(sk->__sk_common.skc_dport),
			    sk->__sk_common.skc_net.net->ns.inum, raddr);
}

/*
 * Kernel difference: on 6.1 (Debian 12's kernel, seen under qemu) inet_csk_clone_lock() moves a
 * child to SYN_RECV before it copies the request's ports and addresses into it, and the clone
 * still carries its listener's cookie then; 6.18 names the child first. A child that is still
 * unnamed at that transition (no remote port) has its line written at its next transition,
 * with its own identity and the original time.
 */
static __always_inline bool core_child_unnamed(const struct sock *sk)
{
	return sk->__sk_common.skc_dport == 0;
}

/* A full TCP socket over IPv4 or IPv6, as a tcp_sock; NULL otherwise. */
static __always_inline struct tcp_sock *tcp_full_sock(struct sock *sk)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	__u16 family;

	if (!tp)
		return NULL;
	family = sk->__sk_common.skc_family;
	return family == AF_INET || family == AF_INET6 ? tp : NULL;
}

/* Raw-pointer variants for the connect and accept hooks. */
static __always_inline __u32 sk_netns_core(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline __u16 sk_lport_core(const struct sock *sk)
{
	return bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
}

static __always_inline bool is_tcp_core(const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family != AF_INET && family != AF_INET6)
		return false;
	return BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) == IPPROTO_TCP;
}

static __always_inline void owner_from_current(struct sk_info *s)
{
	s->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	s->flags |= SKF_OWNER;
	s->flags &= ~SKF_OWNER_PROVISIONAL;
}

/*
 * Accepted sockets inherit the listener's owner; the accept() exit hook may name the real one.
 * Keyed by socket cookie, never reused, so a stale entry cannot name another socket's owner.
 */
static __always_inline void owner_refine(struct sock *sk, struct sk_info *s)
{
	__u64 key;
	struct owner *o;

#ifdef SP_ABLATE_NO_OWNERS /* benchmark attribution only (Makefile: build/ablate/) */
	return;
#endif
	if ((s->flags & SKF_OWNER) || !s->owner_tries)
		return;
	s->owner_tries--;
	key = bpf_get_socket_cookie(sk);
	o = bpf_map_lookup_elem(&accept_owners, &key);
	if (!o)
		return;
	s->pid = o->pid;
	__builtin_memcpy(s->comm, o->comm, sizeof(s->comm));
	s->flags |= SKF_OWNER;
	s->flags &= ~SKF_OWNER_PROVISIONAL;
	bpf_map_delete_elem(&accept_owners, &key);
}

/*
 * Storage just made for a socket older than the agent (or than its last run): nobody named its
 * owner, and it may still be waiting in an accept queue. Let accept() name it when it comes.
 */
static __always_inline void first_seen(struct sk_info *s)
{
	if (!(s->flags & (SKF_STATE_KNOWN | SKF_OWNER | SKF_OWNER_PROVISIONAL)) && !s->owner_tries &&
	    !s->verdict)
		s->owner_tries = ACCEPT_OWNER_TRIES;
}

static __always_inline void fill_owner(struct sp_record *r, const struct sk_info *s)
{
	if (!s || !(s->flags & (SKF_OWNER | SKF_OWNER_PROVISIONAL)))
		return;
	r->pid = s->pid;
	__builtin_memcpy(r->comm, s->comm, sizeof(r->comm));
	r->flags |= SP_F_OWNER;
	if (!(s->flags & SKF_OWNER))
		r->flags |= SP_F_OWNER_LISTENER;
}

static __always_inline struct sp_record *rec_for_sk(__u32 type, __u64 now, struct sock *sk,
						    const struct tcp_sock *tp,
						    const struct sk_info *s)
{
	struct sp_record *r = rec_reserve(type, now);

	if (!r)
		return NULL;
	fill_from_sk(r, sk, tp);
	r->cookie = bpf_get_socket_cookie(sk);
	/* the cgroup of the task that made the socket (an accepted one: its listener's) */
	if (tp)
		r->cgroup_id = sk->sk_cgrp_data.cgroup->kn->id;
	if (s)
		r->direction = s->direction;
	fill_owner(r, s);
	return r;
}

static __always_inline struct sk_info *sk_info_get(struct sock *sk, bool create)
{
#ifdef SP_ABLATE_NO_STORAGE /* benchmark attribution only (Makefile: build/ablate/) */
	return NULL;
#endif
	return bpf_sk_storage_get(&sk_infos, sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
}

/* ---- connect outcome classification ---------------------------------------------------- */

static __always_inline __u8 classify_connect_error(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return SP_FAIL_REFUSED;
	case ETIMEDOUT:
		return SP_FAIL_TIMEOUT;
	case ECONNRESET:
		return SP_FAIL_RESET;
	case 0:
		return SP_FAIL_CANCELED;
	default:
		/* EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENONET, EPROTO, EACCES...: ICMP errors */
		return SP_FAIL_UNREACHABLE;
	}
}

static __always_inline void emit_connect(struct sock *sk, const struct tcp_sock *tp,
					 struct sk_info *s, __u64 now, __u8 failure, int err)
{
	struct sp_record *r = rec_for_sk(SP_REC_CONNECT, now, sk, tp, s);

	if (!r)
		return;
	r->direction = SP_DIR_EGRESS;
	r->failure = failure;
	r->error = err;
	if (s->connect_ts && now >= s->connect_ts) {
		r->duration_ns = now - s->connect_ts;
		r->flags |= SP_F_DURATION;
	}
	rec_submit(r);
}

/*
 * A connect attempt's outcome, as the state machine sees it. A non-blocking connect() returned
 * long ago: this is the outcome, written now. A blocking one (SKF_DEFER) is still waiting in
 * connect(), whose return is what the caller sees: the exit hook writes the line, with the
 * outcome handed over in the caller's task storage (same task, inside the call) or through the
 * rendezvous map (another context).
 */
static __always_inline void connect_outcome(struct sock *sk, const struct tcp_sock *tp,
					    struct sk_info *s, __u64 now, __u8 failure, int err)
{
	struct rendezvous rdv = {}, *found;
	struct connect_req *req;
	__u64 key;

	if (!(s->flags & SKF_DEFER)) {
		emit_connect(sk, tp, s, now, failure, err);
		return;
	}
	s->flags &= ~SKF_DEFER;
	req = current_connect();
	if (req && req->sk == (__u64)sk) {
		req->has_outcome = 1;
		req->out_ts = now;
		req->out_err = err;
		req->out_failure = failure;
		return;
	}
	key = bpf_get_socket_cookie(sk);
	rdv.kind = RDV_OUTCOME;
	rdv.ts = now;
	rdv.err = err;
	rdv.failure = failure;
	if (!bpf_map_update_elem(&connect_rdv, &key, &rdv, BPF_NOEXIST))
		return; /* the call's return writes the line */
	/* The call returned first (a signal, SO_SNDTIMEO): the outcome is written here. What the
	 * caller saw then names a cancel that had no network error. */
	found = bpf_map_lookup_elem(&connect_rdv, &key);
	if (found && found->kind == RDV_RETURNED && failure == SP_FAIL_CANCELED && !err)
		err = found->err;
	bpf_map_delete_elem(&connect_rdv, &key);
	emit_connect(sk, tp, s, now, failure, err);
}

/*
 * The error a connect attempt ended with: sk_err, which the kernel writes before tcp_done()
 * moves the socket to CLOSE; else the soft error an ICMP message left while the owner held the
 * socket lock (SO_ERROR returns and clears it, so a caller that read it closes a socket that
 * shows none); else what the error report hook kept of either.
 */
static __always_inline int connect_error(const struct sock *sk, const struct sk_info *s)
{
	int err = sk->sk_err;

	if (!err)
		err = sk->sk_err_soft;
	if (!err)
		err = s->err;
	return err;
}

/* SYN_SENT -> CLOSE. */
static __always_inline void connect_closed(struct sock *sk, const struct tcp_sock *tp,
					   struct sk_info *s, __u64 now)
{
	int err = connect_error(sk, s);
	struct connect_req *req;

	if (!err) {
		/* Closed without error inside the connect() call itself: the call's return value
		 * (EADDRNOTAVAIL from port selection, ENOBUFS...) is the outcome, reported at exit. */
		req = current_connect();
		if (req && req->sk == (__u64)sk) {
			req->closed = 1;
			s->flags &= ~SKF_DEFER;
			return;
		}
	}
	connect_outcome(sk, tp, s, now, classify_connect_error(err), err);
}

/* ESTABLISHED-side death with ETIMEDOUT: keepalive if probes went unanswered on an idle
 * socket, retransmission timeout otherwise. Written to sk_err before tcp_done(). @s may be NULL
 * (no storage could be made for the socket): sk_err and the socket's own counters still tell. */
static __always_inline void established_closed(struct sock *sk, const struct tcp_sock *tp,
					       struct sk_info *s, __u64 now)
{
	int err = sk->sk_err;
	__u8 probes;
	__u64 sk_flags;
	struct sp_record *r;
	bool keepalive;

	if (!err && s)
		err = s->err;
	if (err != ETIMEDOUT)
		return;
	probes = tp->inet_conn.icsk_probes_out;
	sk_flags = sk->__sk_common.skc_flags;
	keepalive = probes > 0 && (!s || s->retrans == 0) &&
		    (sk_flags & (1ULL << bpf_core_enum_value(enum sock_flags, SOCK_KEEPOPEN)));
	r = rec_for_sk(keepalive ? SP_REC_KEEPALIVE_TIMEOUT : SP_REC_RETRANS_TIMEOUT, now, sk, tp,
		       s);
	if (!r)
		return;
	r->error = err;
	r->probes = probes;
	rec_submit(r);
}

/* ---- tracepoints ----------------------------------------------------------------------- */

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sp_state, struct sock *sk, int oldstate, int newstate)
{
	struct tcp_sock *tp = tcp_full_sock(sk);
	struct sk_info *s;
	struct sp_record *r;
	struct connect_req *req;
	__u64 now, dur = 0;
	bool has_dur = false;

	if (!tp || !sk_filter_ok(sk, tp))
		return 0;
	now = bpf_ktime_get_ns();
	s = sk_info_get(sk, true);
	if (s) {
		first_seen(s);
		if ((s->flags & SKF_STATE_KNOWN) && s->state == oldstate && now >= s->state_ts) {
			dur = now - s->state_ts;
			has_dur = true;
		}
		switch (newstate) {
		case TCP_SYN_SENT:
			/* Runs in the connecting task: the owner is current. */
			s->flags &= ~(SKF_RST_RCVD | SKF_RST_SENT | SKF_DEFER);
			s->flags |= SKF_CONNECT_PENDING;
			s->direction = SP_DIR_EGRESS;
			s->err = 0;
			s->retrans = 0;
			s->connect_ts = now;
			s->verdict = VERDICT_UNKNOWN;
			owner_from_current(s);
			req = current_connect();
			if (req && req->sk == (__u64)sk) {
				if (req->ts && req->ts <= now)
					s->connect_ts = req->ts;
				req->syn_sent = 1;
				req->cookie = bpf_get_socket_cookie(sk);
				req->blocking = !(sk->sk_socket->file->f_flags & O_NONBLOCK);
				if (req->blocking)
					s->flags |= SKF_DEFER;
			}
			break;
		case TCP_LISTEN:
			owner_from_current(s);
			s->direction = SP_DIR_UNKNOWN;
			break;
		case TCP_SYN_RECV:
			if (oldstate == TCP_LISTEN) {
				/* A child just cloned from its listener: storage came with it. */
				has_dur = false;
				s->flags &= (SKF_OWNER | SKF_OWNER_PROVISIONAL);
				if (s->flags & SKF_OWNER)
					s->flags = SKF_OWNER_PROVISIONAL;
				if (core_child_unnamed(sk))
					s->flags |= SKF_SYNRECV_LATE;
				s->direction = SP_DIR_INGRESS;
				s->owner_tries = ACCEPT_OWNER_TRIES;
				s->err = 0;
				s->retrans = 0;
				s->last_emit = 0;
				s->rx_bytes = 0;
				s->rx_segs = 0;
				s->verdict = VERDICT_UNKNOWN;
			}
			break;
		}
		/* A child reaches SYN_RECV and ESTABLISHED before it is queued for accept(): no
		 * accept() can have named its owner yet, so no lookup until the next state. */
		if (newstate != TCP_SYN_RECV && newstate != TCP_ESTABLISHED)
			owner_refine(sk, s);
		if (newstate == TCP_ESTABLISHED) {
			/* The transition itself proves the peer alive: the first activity record
			 * comes one interval later, and short connections need none at all (what
			 * arrived rides on the line that leaves ESTABLISHED). */
			s->last_emit = now;
			s->rx_segs = 0;
			s->rx_bytes = 0;
		}
		if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_SENT &&
		    (s->flags & SKF_CONNECT_PENDING)) {
			s->flags &= ~SKF_CONNECT_PENDING;
			connect_outcome(sk, tp, s, now, SP_FAIL_NONE, 0);
		} else if (newstate == TCP_CLOSE) {
			if (oldstate == TCP_SYN_SENT && (s->flags & SKF_CONNECT_PENDING)) {
				s->flags &= ~SKF_CONNECT_PENDING;
				connect_closed(sk, tp, s, now);
			} else if (oldstate != TCP_SYN_SENT && oldstate != TCP_LISTEN &&
				   oldstate != TCP_SYN_RECV) {
				established_closed(sk, tp, s, now);
			}
		}
	} else if (newstate == TCP_CLOSE && oldstate != TCP_SYN_SENT && oldstate != TCP_LISTEN &&
		   oldstate != TCP_SYN_RECV) {
		/* No storage for this socket: the death's cause is still in sk_err. */
		count_no_storage();
		established_closed(sk, tp, NULL, now);
	} else {
		count_no_storage();
	}

	if (s && (s->flags & SKF_SYNRECV_LATE)) {
		if (oldstate != TCP_LISTEN) {
			/* the child has its own identity now: the line it could not have then */
			s->flags &= ~SKF_SYNRECV_LATE;
			r = rec_for_sk(SP_REC_STATE, s->state_ts, sk, tp, s);
			if (r) {
				r->old_state = TCP_LISTEN;
				r->new_state = TCP_SYN_RECV;
				rec_submit(r);
			}
		} else {
			goto done;
		}
	}
	r = rec_for_sk(SP_REC_STATE, now, sk, tp, s);
	if (r) {
		r->old_state = oldstate;
		r->new_state = newstate;
		if (has_dur) {
			r->duration_ns = dur;
			r->flags |= SP_F_DURATION;
		}
		/* Inbound activity not yet reported rides on the line that leaves ESTABLISHED:
		 * no extra record, and nothing that arrived goes unaccounted. */
		if (s && oldstate == TCP_ESTABLISHED && s->rx_segs) {
			r->segments = s->rx_segs;
			r->payload_bytes = s->rx_bytes;
			s->rx_segs = 0;
			s->rx_bytes = 0;
		}
		/* FIN_WAIT2/CLOSING -> CLOSE hands over to a timewait socket unless the connection
		 * was aborted: an error, or a reset either way (FIN_WAIT2 timeout, linger 0). */
		if (newstate == TCP_CLOSE && (oldstate == TCP_FIN_WAIT2 || oldstate == TCP_CLOSING) &&
		    s && !(s->flags & (SKF_RST_RCVD | SKF_RST_SENT)) && !sk->sk_err)
			r->flags |= SP_F_TIME_WAIT;
		rec_submit(r);
	}
done:
	if (s) {
		s->prev_state = oldstate;
		s->state = newstate;
		s->state_ts = now;
		s->flags |= SKF_STATE_KNOWN;
	}
	return 0;
}

#define SO_EE_ORIGIN_ICMP 2
#define SO_EE_ORIGIN_ICMP6 3

/*
 * The ICMP error just queued on the socket's error queue (ip_icmp_error() reports it before
 * tcp_v4_err() stores the soft error on 6.1, and SO_ERROR clears that one later anyway): its
 * errno, 0 if the newest queued error is not an ICMP one.
 */
static __always_inline int queued_icmp_error(struct sock *sk)
{
	struct sk_buff *skb;
	struct sock_extended_err ee = {};

	if (!sk->sk_error_queue.qlen)
		return 0;
	skb = sk->sk_error_queue.prev;
	if (!skb || bpf_probe_read_kernel(&ee, sizeof(ee),
					  (void *)skb->cb +
						  bpf_core_field_offset(struct sock_exterr_skb, ee)))
		return 0;
	return ee.ee_origin == SO_EE_ORIGIN_ICMP || ee.ee_origin == SO_EE_ORIGIN_ICMP6
		       ? (int)ee.ee_errno
		       : 0;
}

SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(sp_error_report, struct sock *sk)
{
	struct sk_info *s;
	int err;

	if (!tcp_full_sock(sk))
		return 0;
	err = sk->sk_err;
	if (!err)
		err = sk->sk_err_soft; /* an ICMP error while the owner held the lock */
	if (!err)
		err = queued_icmp_error(sk);
	if (!err)
		return 0;
	s = sk_info_get(sk, false);
	if (s)
		s->err = err;
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(sp_receive_reset, struct sock *sk)
{
	struct tcp_sock *tp = tcp_full_sock(sk);
	struct sk_info *s;
	struct sp_record *r;

	if (!tp || !sk_filter_ok(sk, tp))
		return 0;
	s = sk_info_get(sk, true);
	if (s) {
		s->flags |= SKF_RST_RCVD;
		owner_refine(sk, s);
	}
	r = rec_for_sk(SP_REC_RESET, bpf_ktime_get_ns(), sk, tp, s);
	if (!r)
		return 0;
	r->reset_dir = SP_RST_RECEIVED;
	r->old_state = sk->__sk_common.skc_state;
	r->flags |= SP_F_OLD_STATE;
	rec_submit(r);
	return 0;
}

/* Facts of a reset sent for a packet that has no full socket: taken from that packet. */
static __always_inline bool fill_from_skb(struct sp_record *r, const struct sk_buff *skb)
{
	unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	__u16 th = skb->transport_header;
	struct tcphdr tcp;
	__u8 ver = 0;

	if (bpf_probe_read_kernel(&ver, 1, head + nh))
		return false;
	if (bpf_probe_read_kernel(&tcp, sizeof(tcp), head + th))
		return false;
	ver >>= 4;
	if (ver == 4) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return false;
		r->family = AF_INET;
		__builtin_memcpy(r->laddr, &ip.daddr, 4);
		__builtin_memcpy(r->raddr, &ip.saddr, 4);
	} else if (ver == 6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return false;
		r->family = AF_INET6;
		__builtin_memcpy(r->laddr, &ip6.daddr, 16);
		__builtin_memcpy(r->raddr, &ip6.saddr, 16);
	} else {
		return false;
	}
	r->lport = bpf_ntohs(tcp.dest);
	r->rport = bpf_ntohs(tcp.source);
	r->netns = skb->dev->nd_net.net->ns.inum;
	/* The peer sent the packet we answer with a reset: it opened the exchange. */
	r->direction = SP_DIR_INGRESS;
	r->flags |= SP_F_NO_SOCK;
	return true;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(sp_send_reset, struct sock *sk, struct sk_buff *skb)
{
	struct tcp_sock *tp = NULL;
	struct sk_info *s = NULL;
	struct sp_record *r;
	__u8 state = 0;
	__u64 now = bpf_ktime_get_ns();

	if (sk)
		state = sk->__sk_common.skc_state;
	if (sk && state != TCP_LISTEN) {
		/* NULL for timewait and request sockets: their facts are in the common part */
		tp = tcp_full_sock(sk);
		if (!sk_filter_ok(sk, tp))
			return 0;
		if (tp) {
			s = sk_info_get(sk, true);
			if (s) {
				s->flags |= SKF_RST_SENT;
				owner_refine(sk, s);
			}
		}
		r = rec_for_sk(SP_REC_RESET, now, sk, tp, s);
		if (!r)
			return 0;
		/* An abortive close (SO_LINGER 0, tcp_disconnect) moves to CLOSE before it sends
		 * the reset: the state the connection was in is the one it just left. */
		if (state == TCP_CLOSE && s && (s->flags & SKF_STATE_KNOWN) && s->state == TCP_CLOSE)
			state = s->prev_state;
		r->old_state = state;
		r->flags |= SP_F_OLD_STATE;
	} else {
		if (!skb)
			return 0;
		r = rec_reserve(SP_REC_RESET, now);
		if (!r)
			return 0;
		if (!fill_from_skb(r, skb) ||
		    !pass_filters(NULL, r->family, r->lport, r->rport, r->netns, r->raddr)) {
			/* Not a record after all: hand the space back uncounted. */
			bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
			return 0;
		}
	}
	r->reset_dir = SP_RST_SENT;
	rec_submit(r);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(sp_retransmit_skb, struct sock *sk)
{
	struct sk_info *s = sk_info_get(sk, false);

	if (s && s->retrans < 0xffff)
		s->retrans++;
	return 0;
}

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(sp_retransmit_synack, struct sock *sk)
{
	struct sk_info *s = sk_info_get(sk, false);

	if (s && s->retrans < 0xffff)
		s->retrans++;
	return 0;
}

/* Every inbound segment of an established socket: storage only, one record per interval. */
SEC("tp_btf/tcp_probe")
int BPF_PROG(sp_tcp_probe, struct sock *sk, struct sk_buff *skb)
{
	struct sk_info *s = sk_info_get(sk, true);
	struct tcp_sock *tp;
	struct sp_record *r;
	__u32 len, hdr;
	__u8 doff = 0;
	__u64 now;

	if (!s)
		return 0;
	if (s->verdict == VERDICT_UNKNOWN) {
		first_seen(s);
		tp = tcp_full_sock(sk);
		s->verdict = tp && sk_filter_ok(sk, tp) ? VERDICT_PASS : VERDICT_DROP;
	}
	if (s->verdict != VERDICT_PASS)
		return 0;

	/* skb->data is the TCP header here; its data offset is the high nibble of byte 12 */
	len = skb->len;
	bpf_probe_read_kernel(&doff, 1, skb->data + 12);
	hdr = (doff >> 4) * 4;
	s->rx_segs++;
	s->rx_bytes += len > hdr ? len - hdr : 0;
	s->retrans = 0;

	now = bpf_ktime_get_ns();
	if (s->last_emit && now - s->last_emit < coalesce_ns)
		return 0;
	tp = tcp_full_sock(sk);
	if (!tp)
		return 0;
	owner_refine(sk, s);
	r = rec_for_sk(SP_REC_ACTIVITY, now, sk, tp, s);
	if (!r)
		return 0; /* counted; the pending totals ride on the next record */
	r->segments = s->rx_segs;
	r->payload_bytes = s->rx_bytes;
	rec_submit(r);
	s->rx_segs = 0;
	s->rx_bytes = 0;
	s->last_emit = now;
	return 0;
}

/* ---- connect hooks: the three variants share enter/exit logic -------------------------- */

/* A socket address as connect() got it: read once, then parsed. */
union sp_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

/* Reads up to @len bytes of a socket address (user or kernel memory); the family, 0 if none. */
static __always_inline __u16 read_sockaddr(union sp_sockaddr *u, const void *addr, __u64 len,
					   bool user)
{
	long err;

	__builtin_memset(u, 0, sizeof(*u));
	if (len > sizeof(*u))
		len = sizeof(*u);
	if (len < sizeof(u->sa.sa_family))
		return 0;
	err = user ? bpf_probe_read_user(u, len, addr) : bpf_probe_read_kernel(u, len, addr);
	return err ? 0 : u->sa.sa_family;
}

static __always_inline void connect_enter(__u64 sk, const union sp_sockaddr *u)
{
	struct connect_req req = {}, *slot;
	__u16 family = u->sa.sa_family;

	if (family == AF_INET) {
		req.rport = bpf_ntohs(u->sin.sin_port);
		__builtin_memcpy(req.raddr, &u->sin.sin_addr.s_addr, 4);
	} else if (family == AF_INET6) {
		req.rport = bpf_ntohs(u->sin6.sin6_port);
		__builtin_memcpy(req.raddr, &u->sin6.sin6_addr, 16);
	} else {
		return; /* AF_UNSPEC disconnects; nothing else is a TCP connect */
	}
	req.family = family;
	req.sk = sk;
	req.ts = bpf_ktime_get_ns();
	slot = bpf_task_storage_get(&connect_reqs, bpf_get_current_task_btf(), 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!slot) {
		count_no_storage();
		return;
	}
	*slot = req;
}

/* The call did not end the attempt: non-blocking, interrupted, or a repeated call. */
static __always_inline bool connect_pending(long ret)
{
	return ret == -EINPROGRESS || ret == -EALREADY || ret == -EINTR ||
	       (ret <= -ERESTARTSYS && ret >= -ERESTART_RESTARTBLOCK);
}

/* A tcp-connect record from what the call knows: its address, its socket, its caller. */
static __always_inline struct sp_record *rec_for_call(const struct connect_req *req, __u64 ts)
{
	struct sock *sk = (struct sock *)req->sk;
	struct sp_record *r = rec_reserve(SP_REC_CONNECT, ts);

	if (!r)
		return NULL;
	r->family = req->family;
	r->lport = sk_lport_core(sk);
	r->rport = req->rport;
	r->netns = sk_netns_core(sk);
	__builtin_memcpy(r->raddr, req->raddr, sizeof(r->raddr));
	if (req->family == AF_INET)
		bpf_core_read(r->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
	else
		bpf_core_read(r->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	/* Failed before SYN_SENT, the socket has a cookie only if someone asked for one (this
	 * hook cannot make one): then it is known, else the line goes without. */
	r->cookie = req->cookie ? req->cookie : BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	r->cgroup_id = BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
	r->direction = SP_DIR_EGRESS;
	if (ts >= req->ts) {
		r->duration_ns = ts - req->ts;
		r->flags |= SP_F_DURATION;
	}
	/* Exit hooks run in the caller's context. */
	r->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->flags |= SP_F_OWNER;
	return r;
}

static __always_inline void emit_call(const struct connect_req *req, __u64 ts, __u8 failure,
				      int err)
{
	struct sock *sk = (struct sock *)req->sk;
	struct sp_record *r;

	/* the socket, for --cgroup: the state hook filtered the same socket the same way */
	if (!pass_filters(sk, req->family, sk_lport_core(sk), req->rport, sk_netns_core(sk),
			  req->raddr))
		return;
	r = rec_for_call(req, ts);
	if (!r)
		return;
	r->failure = failure;
	r->error = err;
	rec_submit(r);
}

/* A fatal signal (SIGKILL) is pending: the caller dies and sees no return at all. */
static __always_inline bool fatal_signal(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return task->pending.signal.sig[0] & (1UL << (SIGKILL - 1));
}

/*
 * The return of a blocking connect() that reached SYN_SENT: what the caller sees decides the
 * line. A final return (0 or an error) comes after the outcome, whose facts (time, class) it
 * takes from the task storage or the rendezvous map when they are there. An interrupted call
 * leaves the outcome to the state machine, with what the caller saw.
 */
static __always_inline void connect_returned(const struct connect_req *req, long ret)
{
	struct rendezvous rdv = {}, *found;
	__u64 key = req->cookie, ts = bpf_ktime_get_ns();
	bool have = false;
	__u8 failure = 0;
	int err = 0;

	if (req->has_outcome) {
		have = true;
		ts = req->out_ts;
		err = req->out_err;
		failure = req->out_failure;
	} else if (key) {
		found = bpf_map_lookup_elem(&connect_rdv, &key);
		if (found && found->kind == RDV_OUTCOME) {
			have = true;
			ts = found->ts;
			err = found->err;
			failure = found->failure;
		}
		if (found && !connect_pending(ret))
			bpf_map_delete_elem(&connect_rdv, &key);
	}
	if (!connect_pending(ret)) {
		if (ret == 0) {
			failure = SP_FAIL_NONE;
			err = 0;
		} else {
			err = (int)-ret;
			/* the kernel's class where it saw a cause; a cancel keeps the caller's errno */
			if (!have || failure == SP_FAIL_NONE)
				failure = classify_connect_error(err);
		}
		emit_call(req, ts, failure, err);
		return;
	}
	if (have) {
		/* the outcome came inside the call, which then returned interrupted */
		if (req->has_outcome) {
			emit_call(req, ts, failure, err);
		} else {
			bpf_map_delete_elem(&connect_rdv, &key);
			emit_call(req, ts, failure, err);
		}
		return;
	}
	if (!key)
		return;
	rdv.kind = RDV_RETURNED;
	rdv.ts = ts;
	rdv.err = ret == -EINPROGRESS || ret == -EALREADY ? (int)-ret
		  : fatal_signal()			 ? 0
							 : EINTR;
	if (!bpf_map_update_elem(&connect_rdv, &key, &rdv, BPF_NOEXIST))
		return; /* the state machine writes the line when the outcome comes */
	found = bpf_map_lookup_elem(&connect_rdv, &key);
	if (found && found->kind == RDV_OUTCOME)
		emit_call(req, found->ts, found->failure, found->err);
	bpf_map_delete_elem(&connect_rdv, &key);
}

static __always_inline void connect_exit(long ret)
{
	struct connect_req *p = current_connect();
	struct connect_req req;

	if (!p)
		return;
	req = *p;
	p->ts = 0; /* the call is over */
	p->has_outcome = 0;
	if (req.syn_sent && req.blocking && !req.closed) {
		connect_returned(&req, ret);
		return;
	}
	if (ret == 0 || connect_pending(ret) || ret == -EISCONN)
		return;
	/* After SYN_SENT the state machine reports the outcome, unless the call failed on its
	 * own (closed without a network error, see connect_closed()). */
	if (req.syn_sent && !req.closed)
		return;
	emit_call(&req, bpf_ktime_get_ns(), SP_FAIL_LOCAL, (int)-ret);
}

/*
 * The struct sock behind a file descriptor of the current task, if it is a TCP socket. Two
 * builds of this file (see the Makefile): with bpf_rdonly_cast() (6.2+) every field is a plain
 * load through a BTF pointer; the compat build (SP_FD_WALK_COMPAT) pays a probe-read helper call
 * per field, several times the cost on each connect() and accept(). They are two objects, not
 * two programs in one: libbpf resolves every kfunc extern of an object, and on a kernel without
 * this one it searches module BTFs, which needs CAP_SYS_ADMIN (non-root agents fail to load).
 */
static __always_inline bool sock_wanted(__u16 type, __u8 state, bool want_unconnected)
{
	/* Only a connect() on an unconnected socket is a new attempt; a repeated call on a
	 * connecting socket only collects the earlier outcome. */
	return type == SOCK_STREAM && (!want_unconnected || state == SS_UNCONNECTED);
}

#ifndef SP_FD_WALK_COMPAT
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

static __always_inline struct sock *fd_tcp_sock(int fd, bool want_unconnected)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file *f = NULL;
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	/* fdt->fd is an array of pointers: the element at a variable index is read */
	if (bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]) || !f)
		return NULL;
	f = bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
	if ((f->f_inode->i_mode & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = bpf_rdonly_cast(f->private_data, bpf_core_type_id_kernel(struct socket));
	if (!sock || !sock_wanted(sock->type, sock->state, want_unconnected))
		return NULL;
	sk = sock->sk;
	if (!sk)
		return NULL;
	family = sk->__sk_common.skc_family;
	if ((family != AF_INET && family != AF_INET6) || sk->sk_protocol != IPPROTO_TCP)
		return NULL;
	return sk;
}
#else
static __always_inline struct sock *fd_tcp_sock(int fd, bool want_unconnected)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = NULL;
	struct socket *sock;
	struct sock *sk;

	if (fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(f, private_data);
	if (!sock || !sock_wanted(BPF_CORE_READ(sock, type), BPF_CORE_READ(sock, state),
				  want_unconnected))
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || !is_tcp_core(sk))
		return NULL;
	return sk;
}
#endif

/*
 * Variant 3 (runs here): syscall tracepoints + the CLOSE->SYN_SENT transition. The context is
 * the kernel's struct syscall_trace_enter/exit (the syscalls:sys_* events), not the
 * raw_syscalls layout (trace_event_raw_sys_enter: "long id"): PREEMPT_RT kernels grow the
 * common header to 12 bytes, which moves "args" of the latter to 24 while the event keeps it at
 * 16, and an access past the event's size fails the attach with EACCES.
 */
static __always_inline void sys_enter_connect(struct syscall_trace_enter *ctx)
{
	struct connect_req *req;
	union sp_sockaddr u;
	__u16 family;
	struct sock *sk;

	/* AF_UNIX connects (journald, nscd, D-Bus) are common: skip them before the fd walk. */
	family = read_sockaddr(&u, (const void *)ctx->args[1], ctx->args[2], true);
	if (family == AF_INET || family == AF_INET6) {
		sk = fd_tcp_sock((int)ctx->args[0], true);
		if (sk) {
			connect_enter((__u64)sk, &u);
			return;
		}
	}
	/* Not an attempt we follow: an entry whose exit never ran (a skipped program run) must
	 * not take this call's result for its own. */
	req = current_connect();
	if (req)
		req->ts = 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int sp_sys_enter_connect(struct syscall_trace_enter *ctx)
{
	sys_enter_connect(ctx);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int sp_sys_exit_connect(struct syscall_trace_exit *ctx)
{
	connect_exit(ctx->ret);
	return 0;
}

/*
 * Variants 1 and 2 hook inet_stream_connect(), the TCP connect() behind the syscall for both
 * families: its return is the caller's (tcp_v4_connect() returns as soon as the SYN is out,
 * before a blocking connect() waits for the outcome).
 */
static __always_inline void stream_connect_enter(struct socket *sock, const void *uaddr, int len)
{
	union sp_sockaddr u;
	struct sock *sk = BPF_CORE_READ(sock, sk);

	if (!sk || BPF_CORE_READ(sock, state) != SS_UNCONNECTED || !is_tcp_core(sk))
		return;
	if (read_sockaddr(&u, uaddr, (__u64)len, false))
		connect_enter((__u64)sk, &u);
}

/* Variant 2: kprobes. */
SEC("kprobe/inet_stream_connect")
int BPF_KPROBE(sp_kprobe_connect, struct socket *sock, struct sockaddr *uaddr, int addr_len)
{
	stream_connect_enter(sock, uaddr, addr_len);
	return 0;
}

SEC("kretprobe/inet_stream_connect")
int BPF_KRETPROBE(sp_kretprobe_connect, int ret)
{
	connect_exit(ret);
	return 0;
}

/* Variant 1: fentry/fexit. */
SEC("fentry/inet_stream_connect")
int BPF_PROG(sp_fentry_connect, struct socket *sock, struct sockaddr *uaddr, int addr_len)
{
	stream_connect_enter(sock, uaddr, addr_len);
	return 0;
}

SEC("fexit/inet_stream_connect")
int BPF_PROG(sp_fexit_connect, struct socket *sock, struct sockaddr *uaddr, int addr_len,
	     int flags, int ret)
{
	connect_exit(ret);
	return 0;
}

/* accept(): name the process that really took the connection (prefork servers). */
static __always_inline void accept_exit(long ret)
{
	struct sock *sk;
	struct owner o = {};
	__u64 key;

#ifdef SP_ABLATE_NO_OWNERS /* benchmark attribution only (Makefile: build/ablate/) */
	return;
#endif
	if (ret < 0)
		return;
	sk = fd_tcp_sock((int)ret, false);
	if (!sk)
		return;
	/* Our SYN_RECV hook made the cookie; a socket we never saw has none and needs no entry. */
	key = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	if (!key)
		return;
	o.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(o.comm, sizeof(o.comm));
	bpf_map_update_elem(&accept_owners, &key, &o, BPF_ANY);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int sp_sys_exit_accept4(struct syscall_trace_exit *ctx)
{
	accept_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int sp_sys_exit_accept(struct syscall_trace_exit *ctx)
{
	accept_exit(ctx->ret);
	return 0;
}
