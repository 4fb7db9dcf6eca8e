/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The TCP socket table of a network namespace, walked by a BPF iterator (iter/tcp,
 * bpf/sockwalk.bpf.c): one struct sp_sockinfo per socket, with what sock_diag does not say
 * (effective keepalive settings, user timeout, time since the last inbound segment). The
 * iterator walks the namespace of the thread that creates it, so a walk enters the namespace
 * just for that and returns before reading.
 */
#ifndef SP_SOCKWALK_H
#define SP_SOCKWALK_H

#include <stdint.h>

#include "sockpulse.h"

struct sockwalk;

/* The namespace a walk ran in, and its settings (read from /proc/sys inside it). */
struct sockwalk_ns {
	uint32_t netns;			/* inode */
	uint16_t port_lo, port_hi;	/* net.ipv4.ip_local_port_range */
	uint32_t tw_reuse;		/* net.ipv4.tcp_tw_reuse (2 when unreadable) */
	uint32_t ka_time_s, ka_intvl_s, ka_probes; /* net.ipv4.tcp_keepalive_{time,intvl,probes} */
	uint32_t retries2;		/* net.ipv4.tcp_retries2 */
	/* kernel HZ: CONFIG_HZ, else tcp_keepalive_time jiffies / seconds (0 until a full socket
	 * came by, when the kernel config was not readable) */
	uint32_t hz;
};

typedef void (*sockwalk_fn)(void *ctx, const struct sockwalk_ns *ns, const struct sp_sockinfo *si);

/* Loads and attaches the iterator. NULL with *err = -errno, and one pr_warn line saying why
 * (no BTF, no permission, iterators unsupported). */
struct sockwalk *sockwalk_open(int *err);
/* Walks the TCP sockets of the network namespace at @ns_path ("/run/netns/x", "/proc/PID/ns/net";
 * NULL: the caller's own) and calls @fn once per socket. @ns is filled before the first call.
 * Returns the number of sockets, or -errno (-ENOENT path missing, -EPERM setns refused, -EIO a
 * short or misaligned read). Always returns to the caller's namespace (if that fails: -errno and
 * nothing more is done, never continue in a wrong namespace). */
int sockwalk_run(struct sockwalk *w, const char *ns_path, struct sockwalk_ns *ns, sockwalk_fn fn,
		 void *ctx);
void sockwalk_close(struct sockwalk *w); /* NULL-safe */

#endif
