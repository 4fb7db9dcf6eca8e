/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ABI between the BPF programs and the agent: ring records, per-CPU counters and the
 * enumerations both sides index tables with. Fixed-width fields, largest first, explicit padding;
 * every record starts with its type. Userspace checks size and type of each record before use.
 */
#ifndef SOCKPULSE_H
#define SOCKPULSE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SP_COMM_LEN 16
#define SP_ADDR_LEN 16

/* Ring record types. Also the index of the per-CPU drop counters. */
enum sp_rec_type {
	SP_REC_NONE = 0,
	SP_REC_STATE = 1,	      /* inet_sock_set_state */
	SP_REC_CONNECT = 2,	      /* outcome of an outgoing connect */
	SP_REC_KEEPALIVE_TIMEOUT = 3, /* established connection killed by keepalive */
	SP_REC_RETRANS_TIMEOUT = 4,   /* established connection killed by RTO exhaustion */
	SP_REC_RESET = 5,	      /* RST received or sent */
	SP_REC_ACTIVITY = 6,	      /* coalesced inbound segments */
	SP_REC_TYPE_MAX = 7,
};

/* Connect outcome classes (sp_record.failure); SP_FAIL_NONE means success. */
enum sp_failure {
	SP_FAIL_NONE = 0,
	SP_FAIL_REFUSED = 1,
	SP_FAIL_TIMEOUT = 2,
	SP_FAIL_UNREACHABLE = 3,
	SP_FAIL_RESET = 4,
	SP_FAIL_CANCELED = 5,
	SP_FAIL_LOCAL = 6,
	SP_FAIL_MAX = 7,
};

enum sp_direction {
	SP_DIR_UNKNOWN = 0,
	SP_DIR_EGRESS = 1,  /* this host called connect() */
	SP_DIR_INGRESS = 2, /* this host accepted it */
	SP_DIR_MAX = 3,
};

enum sp_reset_dir {
	SP_RST_NONE = 0,
	SP_RST_RECEIVED = 1,
	SP_RST_SENT = 2,
	SP_RST_MAX = 3,
};

/* Which connect hook variant is attached (rodata, and reported by the agent). */
enum sp_connect_hook {
	SP_HOOK_NONE = 0,
	SP_HOOK_FENTRY = 1,
	SP_HOOK_KPROBE = 2,
	SP_HOOK_TRACEPOINT = 3,
	SP_HOOK_MAX = 4,
};

/* sp_record.flags */
#define SP_F_TIME_WAIT (1u << 0)	/* FIN_WAIT2/CLOSING->CLOSE that hands over to a timewait sock */
#define SP_F_OWNER (1u << 1)		/* pid/comm were captured in the owner's task context */
#define SP_F_DURATION (1u << 2)		/* duration_ns is known */
#define SP_F_NO_SOCK (1u << 3)		/* reset sent with no full socket: facts come from the packet */
#define SP_F_OLD_STATE (1u << 4)	/* old_state is meaningful (resets) */
#define SP_F_OWNER_LISTENER (1u << 5)	/* the owner is the listener's: accept() named none yet */

/* Kernel TCP states, as in include/net/tcp_states.h (stable uapi values). */
#define SP_TCP_STATE_MAX 13

/*
 * One ring record. All kinds share the layout; fields a kind does not use are zero.
 * Addresses are network order, IPv4 in the first four bytes; ports are host order.
 * local/remote are as seen by this host; the agent maps them to ECS source/destination.
 */
struct sp_record {
	__u32 type;		/* enum sp_rec_type: always first */
	__u32 pid;		/* owner tgid, when SP_F_OWNER */
	__u64 ts_ns;		/* bpf_ktime_get_ns() */
	__u64 cookie;		/* socket cookie */
	__u64 duration_ns;	/* time in old state, or connect latency (SP_F_DURATION) */
	__u64 cgroup_id;	/* socket's cgroup v2 id */
	__u64 payload_bytes;	/* activity: payload bytes since the last record */
	__u8 laddr[SP_ADDR_LEN];
	__u8 raddr[SP_ADDR_LEN];
	char comm[SP_COMM_LEN];
	__u32 netns;		/* network namespace inode */
	__u32 segments;		/* activity: segments since the last record */
	__s32 error;		/* positive errno, 0 if none */
	__u16 lport;
	__u16 rport;
	__u16 family;		/* AF_INET or AF_INET6 */
	__u16 flags;		/* SP_F_* */
	__u8 old_state;
	__u8 new_state;
	__u8 direction;		/* enum sp_direction */
	__u8 failure;		/* enum sp_failure (connect) */
	__u8 reset_dir;		/* enum sp_reset_dir */
	__u8 probes;		/* keepalive: unanswered probes */
	__u8 pad[2];
};

_Static_assert(sizeof(struct sp_record) == 128, "sp_record layout changed");

/* sp_sockinfo.flags */
#define SP_W_KEEPALIVE (1u << 0)	/* SO_KEEPALIVE is set */
#define SP_W_KA_TIME (1u << 1)		/* keepalive idle time set on the socket (TCP_KEEPIDLE) */
#define SP_W_KA_INTVL (1u << 2)		/* interval set on the socket (TCP_KEEPINTVL) */
#define SP_W_KA_PROBES (1u << 3)	/* probe count set on the socket (TCP_KEEPCNT) */
#define SP_W_ORPHAN (1u << 4)		/* no file refers to it any more: the application closed it */
#define SP_W_TIMEWAIT (1u << 5)		/* a timewait socket: addresses, state, cookie, tw_expires_j */
#define SP_W_LISTENER (1u << 6)		/* a listening socket */

/*
 * One socket of a socket-table walk (iter/tcp, bpf/sockwalk.bpf.c), written to the iterator's
 * seq_file with bpf_seq_write: full sockets in every state, timewait sockets, listeners (request
 * sockets are skipped). Times are raw jiffies of the kernel's clock (hz says how many a second;
 * 0 when the kernel config was not readable); keepalive values are the effective ones: the socket
 * option, else the namespace's sysctl (the SP_W_KA_* flags say which came from the socket).
 */
struct sp_sockinfo {
	__u64 cookie;		/* socket cookie (a timewait socket keeps its full socket's) */
	__u64 inode;		/* socket inode (the "socket:[N]" of /proc/PID/fd), 0 if orphaned */
	__u8 laddr[SP_ADDR_LEN];
	__u8 raddr[SP_ADDR_LEN];
	__u32 netns;		/* network namespace inode */
	__u32 uid;
	__u32 hz;		/* CONFIG_HZ */
	__u32 ka_time_j;	/* keepalive idle time before the first probe */
	__u32 ka_intvl_j;	/* between probes */
	__u32 ka_time_sysctl_j;	/* the namespace's net.ipv4.tcp_keepalive_time */
	__u32 user_timeout_ms;	/* TCP_USER_TIMEOUT, 0 when unset */
	__u32 last_recv_j;	/* since the last inbound segment (full sockets) */
	__u32 tw_expires_j;	/* timewait socket: until it goes away */
	__u32 rqueue, wqueue;	/* bytes not yet read / not yet acknowledged */
	__u16 family;		/* AF_INET or AF_INET6 */
	__u16 lport;		/* host order */
	__u16 rport;
	__u16 flags;		/* SP_W_* */
	__u8 state;		/* kernel TCP state; a timewait socket's substate (TIME_WAIT, or
				 * FIN_WAIT2 when its application closed first), as ss shows */
	__u8 ka_probes;		/* keepalive probes before the connection is dropped */
	__u8 retries2;		/* the namespace's net.ipv4.tcp_retries2 */
	__u8 probes_out;	/* keepalive or zero-window probes sent and unanswered */
	__u64 cgroup_id;	/* the socket's cgroup v2 id (full sockets; 0 timewait): in the
				 * former padding, 8-byte aligned at offset 104 */
};

_Static_assert(sizeof(struct sp_sockinfo) == 112, "sp_sockinfo layout changed");

/*
 * Per-CPU counters, one array element; read and summed by the agent. What reached the agent it
 * counts itself; the kernel counts what could not: ring reservations that failed, per record
 * kind, and events of sockets for which its socket table (or its listener or unnamed-child
 * table) had no room (their lines lack the duration and owner; a death's cause is still
 * classified from the socket itself).
 */
struct sp_stats {
	__u64 dropped[SP_REC_TYPE_MAX];
	__u64 no_storage;
};

#endif /* SOCKPULSE_H */
