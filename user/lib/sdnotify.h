/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The systemd notification protocol, by hand (no libsystemd): datagrams of "KEY=VALUE\n" lines to
 * the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract name starting with '@').
 * Without $NOTIFY_SOCKET everything is a no-op, so the agent runs the same outside systemd.
 */
#ifndef SP_SDNOTIFY_H
#define SP_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

struct sdnotify {
	int fd;		      /* -1: not under systemd (or the socket is unusable) */
	uint64_t watchdog_ns; /* WATCHDOG_USEC for us, 0 if none */
	uint64_t last_ping_ns;
	struct sockaddr_un addr;
	socklen_t addr_len;
};

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID. 0, or -errno for a bad socket name. */
int sdnotify_open(struct sdnotify *sd);
/* Sends @msg ("READY=1\nSTATUS=..."); 0, -errno, or 0 doing nothing when not under systemd. */
int sdnotify_send(struct sdnotify *sd, const char *msg);
/* Sends WATCHDOG=1 when half the watchdog interval has passed since the last one. */
void sdnotify_watchdog(struct sdnotify *sd, uint64_t now_ns);
void sdnotify_close(struct sdnotify *sd);

#endif
