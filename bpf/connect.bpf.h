/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The connect() and accept() hooks' shared logic. Three variants attach (the loader picks
 * the first that works): fentry/fexit and kprobe/kretprobe on inet_stream_connect(), and the
 * syscall tracepoints. The programs themselves are in sockpulse.bpf.c.
 */
#ifndef SP_CONNECT_BPF_H
#define SP_CONNECT_BPF_H

#include "core_fixes.bpf.h"
#include "outcome.bpf.h"

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
	/* After SYN_SENT, the address the SYN left from: a connect() that failed has had its
	 * source address cleared (tcp_disconnect()) by the time it returns. */
	if (req->syn_sent)
		__builtin_memcpy(r->laddr, req->laddr, sizeof(r->laddr));
	else if (req->family == AF_INET)
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

/*
 * accept(): the process that really took the connection (prefork servers) becomes the owner in
 * the socket's entry, which this makes for a socket older than the agent that the state hooks
 * have not met yet (not for one already closed: no CLOSE would come to delete it).
 */
static __always_inline void accept_exit(long ret)
{
	struct sk_info *s;
	struct sock *sk;
	bool create;
	__u64 key;

#ifdef SP_ABLATE_NO_OWNERS /* benchmark attribution only (Makefile: build/ablate/) */
	return;
#endif
	if (ret < 0)
		return;
	sk = fd_tcp_sock((int)ret, false);
	if (!sk)
		return;
	/* The state hooks made the cookie; a socket they never saw has none and needs no entry
	 * (the agent's socket-table walk names its owner). */
	key = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	if (!key)
		return;
	create = BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_CLOSE;
	s = sk_info_by_key(key, create);
	if (s)
		owner_from_current(s);
	else if (create)
		count_no_storage();
}

#endif
