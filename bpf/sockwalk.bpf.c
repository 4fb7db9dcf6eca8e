// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-table walk: one struct sp_sockinfo per TCP socket of the namespace the iterator was
 * created in, written to the iterator's seq_file (user/sockwalk.c reads it). Request sockets are
 * skipped; timewait sockets carry only their addresses, state and remaining lifetime.
 *
 * The iterator hands us BTF pointers: fields are read with plain (CO-RE relocated) loads, and a
 * NULL pointer met on the way reads as zero.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "sockpulse.h"

#define AF_INET 2

/* include/net/tcp_states.h: stable values */
#define TCP_TIME_WAIT 6
#define TCP_LISTEN 10
#define TCP_NEW_SYN_RECV 12

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Read by libbpf from the kernel config; 0 when the agent found none to read. */
extern unsigned int CONFIG_HZ __kconfig __weak;

/* Before sk_flags moved into struct sock_common (as skc_flags). */
struct sock___flags_in_sock {
	unsigned long sk_flags;
} __attribute__((preserve_access_index));

/* Addresses, ports, family and netns: the part every kind of socket has. */
static __always_inline void fill_common(struct sp_sockinfo *r, const struct sock_common *skc)
{
	r->family = skc->skc_family;
	r->state = skc->skc_state;
	r->lport = skc->skc_num;
	r->rport = bpf_ntohs(skc->skc_dport);
	r->netns = skc->skc_net.net->ns.inum;
	if (r->family == AF_INET) {
		__u32 l = skc->skc_rcv_saddr, d = skc->skc_daddr;

		__builtin_memcpy(r->laddr, &l, 4);
		__builtin_memcpy(r->raddr, &d, 4);
	} else {
		BPF_CORE_READ_INTO(&r->laddr, skc, skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&r->raddr, skc, skc_v6_daddr);
	}
}

static __always_inline bool sk_keepopen(const struct sock *sk)
{
	unsigned long flags;

	if (bpf_core_field_exists(sk->__sk_common.skc_flags))
		flags = sk->__sk_common.skc_flags;
	else
		flags = ((const struct sock___flags_in_sock *)sk)->sk_flags;
	return flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_KEEPOPEN));
}

/* Jiffies since the last segment that arrived: the kernel's keepalive_time_elapsed(). */
static __always_inline __u32 since_last_recv(const struct tcp_sock *tp, __u32 now)
{
	__u32 data = tp->inet_conn.icsk_ack.lrcvtime, ack = tp->rcv_tstamp;
	__u32 last = (__s32)(data - ack) > 0 ? data : ack;

	/* the socket may have heard from its peer after we read the clock */
	return (__s32)(now - last) > 0 ? now - last : 0;
}

static __always_inline void fill_timewait(struct sp_sockinfo *r, struct tcp_timewait_sock *tw,
					  __u32 now)
{
	__u32 left = (__u32)tw->tw_sk.tw_timer.expires - now;

	/* TIME_WAIT, or FIN_WAIT2 of a socket closed before its peer (what ss and /proc show) */
	r->state = tw->tw_sk.tw_substate;
	r->flags = SP_W_TIMEWAIT;
	/* the full socket's cookie, carried over */
	r->cookie = bpf_get_socket_cookie(tw);
	/* a timer already due but not yet run */
	r->tw_expires_j = (__s32)left > 0 ? left : 0;
}

static __always_inline void fill_full(struct sp_sockinfo *r, struct tcp_sock *tp, __u32 uid,
				      __u32 now)
{
	const struct inet_connection_sock *icsk = &tp->inet_conn;
	struct sock *sk = (struct sock *)tp;
	struct net *net = sk->__sk_common.skc_net.net;
	struct socket *sock = sk->sk_socket;
	struct file *file = sock ? sock->file : NULL;
	__u32 v;

	r->cookie = bpf_get_socket_cookie(sk);
	/* the cgroup of the task that made the socket (an accepted one: its listener's) */
	r->cgroup_id = BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
	r->uid = uid;
	if (file)
		r->inode = file->f_inode->i_ino;
	else
		r->flags |= SP_W_ORPHAN;
	if (r->state == TCP_LISTEN)
		r->flags |= SP_W_LISTENER;
	if (sk_keepopen(sk))
		r->flags |= SP_W_KEEPALIVE;

	/* the effective keepalive settings, as keepalive_time_when() and friends compute them */
	r->ka_time_sysctl_j = net->ipv4.sysctl_tcp_keepalive_time;
	v = tp->keepalive_time;
	r->ka_time_j = v ?: r->ka_time_sysctl_j;
	r->flags |= v ? SP_W_KA_TIME : 0;
	v = tp->keepalive_intvl;
	r->ka_intvl_j = v ?: net->ipv4.sysctl_tcp_keepalive_intvl;
	r->flags |= v ? SP_W_KA_INTVL : 0;
	v = tp->keepalive_probes;
	r->ka_probes = v ?: net->ipv4.sysctl_tcp_keepalive_probes;
	r->flags |= v ? SP_W_KA_PROBES : 0;

	r->user_timeout_ms = icsk->icsk_user_timeout;
	r->retries2 = net->ipv4.sysctl_tcp_retries2;
	r->probes_out = icsk->icsk_probes_out;
	if (r->state == TCP_LISTEN)
		return; /* no peer: nothing received, queues hold connections, not bytes */
	r->last_recv_j = since_last_recv(tp, now);
	r->rqueue = tp->rcv_nxt - tp->copied_seq; /* + 1 for a FIN not yet read, as in ss */
	r->wqueue = tp->write_seq - tp->snd_una;
}

SEC("iter/tcp")
int sockwalk(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct sp_sockinfo rec = {};
	struct tcp_timewait_sock *tw;
	struct tcp_sock *tp;
	__u32 now;

	if (!skc || skc->skc_state == TCP_NEW_SYN_RECV)
		return 0;
	now = bpf_jiffies64(); /* tcp_jiffies32: the low half */
	fill_common(&rec, skc);
	rec.hz = CONFIG_HZ;
	if (rec.state == TCP_TIME_WAIT) {
		tw = bpf_skc_to_tcp_timewait_sock(skc);
		if (!tw)
			return 0;
		fill_timewait(&rec, tw, now);
	} else {
		tp = bpf_skc_to_tcp_sock(skc);
		if (!tp)
			return 0;
		fill_full(&rec, tp, ctx->uid, now);
	}
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
