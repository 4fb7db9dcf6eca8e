// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor of the benchmark: the least a tracer of TCP state changes can do. One 128-byte ring
 * record per transition, with the socket cookie, the two states, family and ports, submitted
 * without a wake-up; no socket storage, no maps but the ring and a drop counter, no other hook.
 * tools/floor.c drains the ring every 100 ms and counts. What sockpulse costs beyond this is
 * what its design adds.
 *
 * With keep_mode set (floor --keep), the floor also keeps a per-socket entry the size of
 * sockpulse's socket state in one of the ways the kernel offers, created at a socket's first
 * transition, written at every one, and gone at CLOSE: what each way costs is what the floor
 * loses against the bare one in the same rounds.
 *
 * With probe_mode set (floor --probe), it also counts inbound segments of established sockets
 * (tcp_probe) and sends one activity record per socket per second, keeping the counts and the
 * time of the last record in socket storage or in a fixed array of slots indexed by cookie.
 *
 * The hook programs at the end (floor --hook) do nothing: what they cost is that they are there.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "floor.h"

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

const volatile __u32 keep_mode = KEEP_NONE;

/* sockpulse's struct sk_info is 72 bytes: the entry is as large. */
struct kept {
	__u64 state_ts;
	__u64 first_ts;
	__u32 netns; /* so a test can tell its own sockets' entries from the host's */
	__u8 state;
	__u8 rest[51];
};

_Static_assert(sizeof(struct kept) == 72, "kept entry is sockpulse's socket state's size");

#define KEPT_MAX 65536 /* resized by the loader: 1 for the maps the mode does not use */

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct kept);
} kept_storage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KEPT_MAX);
	__type(key, __u64);
	__type(value, struct kept);
} kept_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(max_entries, KEPT_MAX);
	__type(key, __u64);
	__type(value, struct kept);
} kept_lru_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KEPT_MAX);
	__type(key, __u64);
	__type(value, struct kept);
} kept_hash SEC(".maps");

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

const volatile __u32 probe_mode = PROBE_NONE;
const volatile __u64 coalesce_ns = 1000000000ULL; /* sockpulse's default interval */

struct probe_counts {
	__u64 last_emit;
	__u64 rx_bytes;
	__u32 rx_segs;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct probe_counts);
} probe_storage SEC(".maps");

struct probe_slot {
	__u64 cookie;
	__u64 last_emit;
};

#define PROBE_SLOTS_N 65536 /* a power of two; resized to 1 when unused */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PROBE_SLOTS_N);
	__type(key, __u32);
	__type(value, struct probe_slot);
} probe_slots SEC(".maps");

/* An entry in a hash keyed by cookie: found or made, written; deleted when the socket closes. */
static __always_inline void keep_in_hash(void *map, struct sock *sk, __u64 cookie, int newstate,
					 __u64 now)
{
	struct kept *k, fresh = {};

	if (newstate == TCP_CLOSE) {
		bpf_map_delete_elem(map, &cookie);
		return;
	}
	k = bpf_map_lookup_elem(map, &cookie);
	if (k) {
		k->state_ts = now;
		k->state = newstate;
		return;
	}
	fresh.state_ts = now;
	fresh.first_ts = now;
	fresh.netns = sk->__sk_common.skc_net.net->ns.inum;
	fresh.state = newstate;
	bpf_map_update_elem(map, &cookie, &fresh, BPF_NOEXIST);
}

static __always_inline void keep(struct sock *sk, __u64 cookie, int newstate, __u64 now)
{
	struct kept *k;

	switch (keep_mode) {
	case KEEP_STORAGE:
		k = bpf_sk_storage_get(&kept_storage, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (k) {
			if (!k->first_ts)
				k->first_ts = now;
			k->state_ts = now;
			k->state = newstate;
		}
		break;
	case KEEP_LRU:
		keep_in_hash(&kept_lru, sk, cookie, newstate, now);
		break;
	case KEEP_LRU_PERCPU:
		keep_in_hash(&kept_lru_percpu, sk, cookie, newstate, now);
		break;
	case KEEP_HASH:
		keep_in_hash(&kept_hash, sk, cookie, newstate, now);
		break;
	}
}

/* A zeroed record of @type, or NULL after counting the drop. */
static __always_inline struct floor_record *reserve(__u32 type, __u64 now)
{
	struct floor_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	__u32 zero = 0;
	__u64 *n;

	if (!r) {
		n = bpf_map_lookup_elem(&dropped, &zero);
		if (n)
			*n += 1; /* per CPU: no other writer */
		return NULL;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->type = type;
	r->ts_ns = now;
	return r;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(floor_state, struct sock *sk, int oldstate, int newstate)
{
	struct floor_record *r;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	r = reserve(TYPE_STATE, bpf_ktime_get_ns());
	if (!r)
		return 0;
	r->cookie = bpf_get_socket_cookie(sk);
	r->family = sk->__sk_common.skc_family;
	r->lport = sk->__sk_common.skc_num;
	r->rport = bpf_ntohs(sk->__sk_common.skc_dport);
	r->old_state = oldstate;
	r->new_state = newstate;
	keep(sk, r->cookie, newstate, r->ts_ns);
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	return 0;
}

static __always_inline void activity_record(__u64 cookie, __u64 now, __u64 segs, __u64 bytes)
{
	struct floor_record *r = reserve(TYPE_ACTIVITY, now);

	if (!r)
		return;
	r->cookie = cookie;
	__builtin_memcpy(r->rest, &segs, sizeof(segs));
	__builtin_memcpy(r->rest + 8, &bytes, sizeof(bytes));
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
}

/* Counts in storage made at a socket's first segment; the first interval starts there. */
static __always_inline void probe_in_storage(struct sock *sk, struct sk_buff *skb)
{
	struct probe_counts *c;
	__u64 now;

	c = bpf_sk_storage_get(&probe_storage, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!c)
		return;
	c->rx_segs++;
	c->rx_bytes += skb->len;
	now = bpf_ktime_get_ns();
	if (!c->last_emit) {
		c->last_emit = now;
		return;
	}
	if (now - c->last_emit < coalesce_ns)
		return;
	activity_record(bpf_get_socket_cookie(sk), now, c->rx_segs, c->rx_bytes);
	c->rx_segs = 0;
	c->rx_bytes = 0;
	c->last_emit = now;
}

/* No per-socket memory: a slot remembers one socket's last record; the counts are the kernel's. */
static __always_inline void probe_in_slots(struct sock *sk)
{
	struct probe_slot *slot;
	struct tcp_sock *tp;
	__u64 cookie, now;
	__u32 idx;

	cookie = bpf_get_socket_cookie(sk);
	idx = cookie & (PROBE_SLOTS_N - 1);
	slot = bpf_map_lookup_elem(&probe_slots, &idx);
	if (!slot)
		return;
	now = bpf_ktime_get_ns();
	if (slot->cookie != cookie) {
		slot->cookie = cookie;
		slot->last_emit = now;
		return;
	}
	if (now - slot->last_emit < coalesce_ns)
		return;
	slot->last_emit = now;
	tp = bpf_skc_to_tcp_sock(sk); /* only for the record: most segments end above */
	if (tp)
		activity_record(cookie, now, tp->segs_in, tp->bytes_received);
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(floor_probe, struct sock *sk, struct sk_buff *skb)
{
	switch (probe_mode) {
	case PROBE_STORAGE:
		probe_in_storage(sk, skb);
		break;
	case PROBE_SLOTS:
		probe_in_slots(sk);
		break;
	}
	return 0;
}

/* floor --hook syscalls: the connect and accept syscall tracepoints sockpulse's tracepoint
 * variant uses (loaded only then). */
SEC("tracepoint/syscalls/sys_enter_connect")
int floor_sys_enter_connect(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int floor_sys_exit_connect(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int floor_sys_exit_accept4(void *ctx)
{
	return 0;
}

/* floor --hook cgroup: connect() seen from the root cgroup; 1 lets the call go on. */
SEC("cgroup/connect4")
int floor_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/connect6")
int floor_connect6(struct bpf_sock_addr *ctx)
{
	return 1;
}
