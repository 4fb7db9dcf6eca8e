// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor of the benchmark: the least a tracer of TCP state changes can do. One 128-byte ring
 * record per transition, with the socket cookie, the two states, family and ports, submitted
 * without a wake-up; no socket storage, no maps but the ring and a drop counter, no other hook.
 * tools/floor.c drains the ring every 100 ms and counts. What sockpulse costs beyond this is
 * what its design adds.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The size of sockpulse's ring record (include/sockpulse.h), so the ring moves as many bytes. */
struct floor_record {
	__u32 type;
	__u32 pad0;
	__u64 ts_ns;
	__u64 cookie;
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u8 old_state;
	__u8 new_state;
	__u8 rest[96];
};

_Static_assert(sizeof(struct floor_record) == 128, "floor record is sockpulse's size");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* sockpulse's default ring size */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(floor_state, struct sock *sk, int oldstate, int newstate)
{
	struct floor_record *r;
	__u32 zero = 0;
	__u64 *n;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		n = bpf_map_lookup_elem(&dropped, &zero);
		if (n)
			*n += 1; /* per CPU: no other writer */
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->type = 1;
	r->ts_ns = bpf_ktime_get_ns();
	r->cookie = bpf_get_socket_cookie(sk);
	r->family = sk->__sk_common.skc_family;
	r->lport = sk->__sk_common.skc_num;
	r->rport = bpf_ntohs(sk->__sk_common.skc_dport);
	r->old_state = oldstate;
	r->new_state = newstate;
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	return 0;
}
