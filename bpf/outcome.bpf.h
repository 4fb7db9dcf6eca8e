/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connect outcomes and deaths of established connections: the error a connect() or a
 * connection ended with, classified, and written as one record per attempt.
 */
#ifndef SP_OUTCOME_BPF_H
#define SP_OUTCOME_BPF_H

#include "sockfacts.bpf.h"

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
 * (the socket has no entry): sk_err and the socket's own counters still tell. */
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

#endif
