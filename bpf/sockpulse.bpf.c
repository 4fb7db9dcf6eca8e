// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sockpulse kernel side: TCP state changes, connect outcomes, keepalive/retransmission timeouts,
 * resets and coalesced inbound activity, streamed through one ring buffer.
 *
 * Per-socket facts live in a table keyed by socket cookie, deleted when the socket enters CLOSE.
 * Per-segment work (tcp_probe) only updates that entry and emits at most one record per socket
 * per coalescing interval.
 * Every failed ring reservation is counted per CPU per record kind.
 *
 * This file holds the programs; what they share is in the headers below, one concern each.
 */
#include "common.bpf.h"	 /* constants, tunables, maps, the ring */
#include "sockfacts.bpf.h" /* filters, socket facts, owners, the socket table */
#include "core_fixes.bpf.h" /* kernel differences */
#include "outcome.bpf.h"	 /* connect outcomes and deaths */
#include "connect.bpf.h"	 /* the connect/accept hooks' logic */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- tracepoints ----------------------------------------------------------------------- */

/*
 * The state machine, in two steps: what the transition changes in the socket's entry and
 * the connect outcome or death it decides (state_enter), then the state line itself
 * (state_emit). Only the first needs the entry; without it the line still goes out.
 */

/* A child of a listener, new in SYN_RECV: its listener's owner until accept() names one. */
static __always_inline void child_init(struct sock *sk, struct tcp_sock *tp, struct sk_info *s)
{
	owner_from_listener(sk, tp, s);
	s->direction = SP_DIR_INGRESS;
}

/*
 * A child whose LISTEN -> SYN_RECV came before it was named (6.1): on its next transition, with
 * its own cookie, it gets its entry as of then, and its line for that transition goes out first
 * (state_emit). Nothing if it is no such child.
 */
static __always_inline void child_named_late(struct sock *sk, struct tcp_sock *tp,
					     struct sk_info *s)
{
	__u64 key = (__u64)sk, *ts;

	if (s->flags & SKF_STATE_KNOWN)
		return;
	ts = bpf_map_lookup_elem(&unnamed_children, &key);
	if (!ts)
		return;
	child_init(sk, tp, s);
	s->state = TCP_SYN_RECV;
	s->prev_state = TCP_LISTEN;
	s->state_ts = *ts;
	s->flags |= SKF_STATE_KNOWN | SKF_SYNRECV_LATE;
	bpf_map_delete_elem(&unnamed_children, &key);
}

/* Bookkeeping: the owner, the connect in flight, the per-connection counters, and the connect
 * outcome or death the transition decides. *has_dur and *dur: the time spent in the state left,
 * when known. */
static __always_inline void state_enter(struct sock *sk, struct tcp_sock *tp, struct sk_info *s,
					int oldstate, int newstate, __u64 now, __u64 *dur,
					bool *has_dur)
{
	struct connect_req *req;

	if ((s->flags & SKF_STATE_KNOWN) && s->state == oldstate && now >= s->state_ts) {
		*dur = now - s->state_ts;
		*has_dur = true;
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
			/* a failed connect() clears it before it returns (tcp_disconnect()) */
			if (sk->__sk_common.skc_family == AF_INET)
				__builtin_memcpy(req->laddr, &sk->__sk_common.skc_rcv_saddr, 4);
			else
				bpf_probe_read_kernel(req->laddr, 16,
						      &sk->__sk_common.skc_v6_rcv_saddr);
			req->blocking = !(sk->sk_socket->file->f_flags & O_NONBLOCK);
			if (req->blocking)
				s->flags |= SKF_DEFER;
		}
		break;
	case TCP_LISTEN:
		owner_from_current(s);
		s->direction = SP_DIR_UNKNOWN;
		listen_owner_set(sk, tp, s);
		break;
	case TCP_SYN_RECV:
		if (oldstate == TCP_LISTEN)
			child_init(sk, tp, s); /* a new entry: no duration */
		break;
	}
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
}

/* The state line (has_dur: dur is the time spent in oldstate). */
static __always_inline void state_emit(struct sock *sk, struct tcp_sock *tp, struct sk_info *s,
				       int oldstate, int newstate, __u64 now, bool has_dur,
				       __u64 dur)
{
	struct sp_record *r;

	if (s && (s->flags & SKF_SYNRECV_LATE)) {
		/* the child has its own identity now: the line it could not have then */
		s->flags &= ~SKF_SYNRECV_LATE;
		r = rec_for_sk(SP_REC_STATE, s->state_ts, sk, tp, s);
		if (r) {
			r->old_state = TCP_LISTEN;
			r->new_state = TCP_SYN_RECV;
			rec_submit(r);
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
		/* FIN_WAIT2/CLOSING -> CLOSE hands over to a timewait socket unless the
		 * connection was aborted: an error, or a reset either way (FIN_WAIT2 timeout,
		 * linger 0). */
		if (newstate == TCP_CLOSE &&
		    (oldstate == TCP_FIN_WAIT2 || oldstate == TCP_CLOSING) && s &&
		    !(s->flags & (SKF_RST_RCVD | SKF_RST_SENT)) && !sk->sk_err)
			r->flags |= SP_F_TIME_WAIT;
		rec_submit(r);
	}
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sp_state, struct sock *sk, int oldstate, int newstate)
{
	struct tcp_sock *tp = tcp_full_sock(sk);
	struct sk_info *s, fresh;
	bool has_dur = false;
	__u64 now, key, dur = 0;

	if (!tp)
		return 0;
	if (!sk_filter_ok(sk, tp)) {
		/* tcp_probe keeps a verdict for a socket the filters drop: its entry goes too */
		if (newstate == TCP_CLOSE) {
			key = bpf_get_socket_cookie(sk);
			bpf_map_delete_elem(&sk_infos, &key);
		}
		return 0;
	}
	now = bpf_ktime_get_ns();
	if (oldstate == TCP_LISTEN && newstate == TCP_SYN_RECV && core_child_unnamed(sk)) {
		key = (__u64)sk;
		/* the line goes out at the child's next transition (child_named_late) */
		if (bpf_map_update_elem(&unnamed_children, &key, &now, BPF_ANY))
			count_no_storage();
		return 0;
	}
	key = bpf_get_socket_cookie(sk);
	s = sk_info_by_key(key, newstate != TCP_CLOSE);
	if (!s && newstate == TCP_CLOSE) {
		/* Older than the agent and never seen: no entry to make, as it would go at once.
		 * One on the stack serves this line and the closed slot. */
		__builtin_memset(&fresh, 0, sizeof(fresh));
		s = &fresh;
	}
	if (s) {
		if (oldstate == TCP_SYN_RECV)
			child_named_late(sk, tp, s);
		state_enter(sk, tp, s, oldstate, newstate, now, &dur, &has_dur);
	} else {
		count_no_storage();
	}
	state_emit(sk, tp, s, oldstate, newstate, now, has_dur, dur);
	if (oldstate == TCP_LISTEN && newstate == TCP_CLOSE)
		listen_owner_drop(sk, tp, key);
	if (s) {
		s->prev_state = oldstate;
		s->state = newstate;
		s->state_ts = now;
		s->flags |= SKF_STATE_KNOWN;
		if (newstate == TCP_CLOSE)
			sk_info_forget(key, s);
	}
	return 0;
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
	s = sk_info_get(sk, sk->__sk_common.skc_state != TCP_CLOSE);
	if (s)
		s->flags |= SKF_RST_RCVD;
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
	struct sk_info *s = NULL, closed;
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
		/* An abortive close (SO_LINGER 0, tcp_disconnect) moves to CLOSE before it sends
		 * the reset: the socket's entry is gone, what it held is in its closed slot, and
		 * the state the connection was in is the one it just left. */
		if (tp && state == TCP_CLOSE) {
			if (sk_info_closed(sk, &closed))
				s = &closed;
		} else if (tp) {
			s = sk_info_get(sk, true);
			if (s)
				s->flags |= SKF_RST_SENT;
		}
		r = rec_for_sk(SP_REC_RESET, now, sk, tp, s);
		if (!r)
			return 0;
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

/* Every inbound segment of an established socket: its entry only, one record per interval. */
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
