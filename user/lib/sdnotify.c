// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sd_notify(3) without libsystemd: see sdnotify.h. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "parse.h"
#include "sdnotify.h"

int sdnotify_open(struct sdnotify *sd)
{
	const char *path = getenv("NOTIFY_SOCKET");
	const char *usec = getenv("WATCHDOG_USEC");
	const char *wpid = getenv("WATCHDOG_PID");
	uint64_t us, pid;
	size_t n;

	memset(sd, 0, sizeof(*sd));
	sd->fd = -1;
	if (usec && parse_u64(usec, 1, UINT64_MAX / 1000, &us) == 0 &&
	    (!wpid || (parse_u64(wpid, 1, INT32_MAX, &pid) == 0 && (pid_t)pid == getpid())))
		sd->watchdog_ns = us * 1000;
	if (!path || !*path)
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sd->addr.sun_path))
		return -EINVAL;
	memset(&sd->addr, 0, sizeof(sd->addr));
	sd->addr.sun_family = AF_UNIX;
	memcpy(sd->addr.sun_path, path, n);
	if (path[0] == '@')
		sd->addr.sun_path[0] = '\0'; /* abstract namespace */
	sd->addr_len = offsetof(struct sockaddr_un, sun_path) + n;
	sd->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	return sd->fd < 0 ? -errno : 0;
}

int sdnotify_send(struct sdnotify *sd, const char *msg)
{
	ssize_t n;

	if (sd->fd < 0)
		return 0;
	do
		n = sendto(sd->fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sd->addr,
			   sd->addr_len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

void sdnotify_watchdog(struct sdnotify *sd, uint64_t now_ns)
{
	if (sd->fd < 0 || !sd->watchdog_ns || now_ns - sd->last_ping_ns < sd->watchdog_ns / 2)
		return;
	sd->last_ping_ns = now_ns;
	sdnotify_send(sd, "WATCHDOG=1");
}

void sdnotify_close(struct sdnotify *sd)
{
	if (sd && sd->fd >= 0)
		close(sd->fd);
	if (sd)
		sd->fd = -1;
}
