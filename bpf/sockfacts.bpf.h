/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket facts: the in-kernel filters, addresses and ports of a socket, its owner, its entry,
 * and a ring record filled from all of them.
 */
#ifndef SP_SOCKFACTS_BPF_H
#define SP_SOCKFACTS_BPF_H

#include "common.bpf.h"

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

/*
 * The entry of the socket with cookie @key; with @create, made when missing. NULL when there is
 * none, or when the table is full (the caller counts that).
 */
static __always_inline struct sk_info *sk_info_by_key(__u64 key, bool create)
{
	struct sk_info *s;
	long err;

#ifdef SP_ABLATE_NO_STORAGE /* benchmark attribution only (Makefile: build/ablate/) */
	return NULL;
#endif
	s = bpf_map_lookup_elem(&sk_infos, &key);
	if (s || !create)
		return s;
	{
		struct sk_info fresh = {};

		err = bpf_map_update_elem(&sk_infos, &key, &fresh, BPF_NOEXIST);
	}
	if (err && err != -EEXIST)
		return NULL;
	return bpf_map_lookup_elem(&sk_infos, &key);
}

static __always_inline struct sk_info *sk_info_get(struct sock *sk, bool create)
{
	return sk_info_by_key(bpf_get_socket_cookie(sk), create);
}

/* The slot a socket's last state waits in once its entry is gone (closed_slots). */
static __always_inline struct closed_slot *closed_slot_of(__u64 key)
{
	__u32 idx = key & (CLOSED_SLOTS - 1);

	return bpf_map_lookup_elem(&closed_slots, &idx);
}

/*
 * The socket with cookie @key entered CLOSE: what @s holds is kept in its closed slot for the
 * reset an abortive close sends next, and its entry goes (if @s is it, not to be used after).
 */
static __always_inline void sk_info_forget(__u64 key, const struct sk_info *s)
{
	struct closed_slot *c = closed_slot_of(key);

	if (c) {
		c->cookie = key;
		c->info = *s;
	}
	bpf_map_delete_elem(&sk_infos, &key);
}

/* What a socket that entered CLOSE held then, copied into @out; false if its slot moved on. */
static __always_inline bool sk_info_closed(struct sock *sk, struct sk_info *out)
{
	__u64 key = bpf_get_socket_cookie(sk);
	struct closed_slot *c = closed_slot_of(key);

	if (!c || c->cookie != key)
		return false;
	*out = c->info;
	/* another socket's close may have written the slot while it was read */
	return c->cookie == key;
}

/* Listener owners, for the children a listener's accept queue will hand out. */
static __always_inline void listen_key_of(struct listen_key *k, const struct sock *sk,
					  const struct tcp_sock *tp)
{
	k->netns = sk->__sk_common.skc_net.net->ns.inum;
	k->family = sk->__sk_common.skc_family;
	k->port = sk_lport(sk, tp);
}

static __always_inline void listen_owner_set(struct sock *sk, const struct tcp_sock *tp,
					     const struct sk_info *s)
{
	struct listen_owner o = {};
	struct listen_key k = {};

	listen_key_of(&k, sk, tp);
	o.cookie = bpf_get_socket_cookie(sk);
	o.pid = s->pid;
	__builtin_memcpy(o.comm, s->comm, sizeof(o.comm));
	if (bpf_map_update_elem(&listen_owners, &k, &o, BPF_ANY))
		count_no_storage();
}

/* The listener with cookie @key closed: its owner goes, unless another listener's replaced it. */
static __always_inline void listen_owner_drop(struct sock *sk, const struct tcp_sock *tp,
					      __u64 key)
{
	struct listen_owner *o;
	struct listen_key k = {};

	listen_key_of(&k, sk, tp);
	o = bpf_map_lookup_elem(&listen_owners, &k);
	if (o && o->cookie == key)
		bpf_map_delete_elem(&listen_owners, &k);
}

/* A new child: its listener's owner, provisional until accept() names the taker. */
static __always_inline void owner_from_listener(struct sock *sk, const struct tcp_sock *tp,
						struct sk_info *s)
{
	struct listen_owner *o;
	struct listen_key k = {};

	listen_key_of(&k, sk, tp);
	o = bpf_map_lookup_elem(&listen_owners, &k);
	if (!o)
		return;
	s->pid = o->pid;
	__builtin_memcpy(s->comm, o->comm, sizeof(s->comm));
	s->flags |= SKF_OWNER_PROVISIONAL;
}

#endif
