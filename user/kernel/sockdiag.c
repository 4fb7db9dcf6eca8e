// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sock_diag dumps over libmnl; see sockdiag.h. Message parsing is in diag.c. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include <libmnl/libmnl.h>

#include "clock.h"
#include "log.h"
#include "netns.h"
#include "sockdiag.h"
#include "util.h"

#define RX_BYTES (64 * 1024)

static const uint8_t families[] = {AF_INET, AF_INET6};

static struct mnl_socket *open_nl(void)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int err = errno;

		mnl_socket_close(nl);
		errno = err;
		return NULL;
	}
	return nl;
}

/* A netlink socket inside the namespace at @path; we return to our own namespace. */
static struct mnl_socket *open_nl_in(const char *path, int self_fd, int *err)
{
	struct mnl_socket *nl;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*err = 0;
	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	if (setns(fd, CLONE_NEWNET)) {
		*err = -errno;
		close(fd);
		return NULL;
	}
	close(fd);
	nl = open_nl();
	if (!nl)
		*err = -errno;
	if (setns(self_fd, CLONE_NEWNET)) {
		/* cannot happen with the privilege that let us in; never go on in the wrong one */
		*err = -errno;
		if (nl)
			mnl_socket_close(nl);
		return NULL;
	}
	return nl;
}

static int add_ns(struct sockdiag *sd, const char *path, uint32_t ino, uint32_t self_ino,
		  int self_fd)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct sockdiag_ns *n;
	uint8_t reuse;
	int err = 0;

	for (int i = 0; i < sd->n_ns; i++)
		if (sd->ns[i].inode == ino)
			return 0;
	if (sd->n_ns >= SOCKDIAG_NS_MAX)
		return -E2BIG;
	n = &sd->ns[sd->n_ns];
	if (ino == self_ino) {
		n->nl = open_nl();
		err = n->nl ? 0 : -errno;
	} else {
		n->nl = open_nl_in(path, self_fd, &err);
	}
	if (!n->nl) {
		if (err == -EPERM)
			pr_warn("sock_diag: cannot enter network namespace %s: setns needs "
				"CAP_SYS_ADMIN; its sockets are not counted",
				path);
		else
			pr_warn("sock_diag: network namespace %s: %s", path, strerror(-err));
		return err == -EINVAL || err == -E2BIG ? err : 0;
	}
	n->inode = ino;
	n->portid = mnl_socket_get_portid(n->nl);
	if (netns_port_settings(ino, &n->port_lo, &n->port_hi, &reuse))
		n->port_lo = n->port_hi = 0;
	ev.data.u32 = sd->n_ns;
	if (epoll_ctl(sd->epfd, EPOLL_CTL_ADD, mnl_socket_get_fd(n->nl), &ev)) {
		err = -errno;
		mnl_socket_close(n->nl);
		n->nl = NULL;
		return err;
	}
	pr_debug("sock_diag: watching network namespace %u (%s)", ino, path);
	sd->n_ns++;
	return 0;
}

int sockdiag_open(struct sockdiag *sd, const struct config *cfg, sockdiag_done_fn on_done,
		  void *ctx)
{
	char path[128];
	uint32_t self_ino, ino;
	int self_fd, err;

	memset(sd, 0, sizeof(*sd));
	sd->epfd = -1;
	sd->on_done = on_done;
	sd->ctx = ctx;
	err = diag_tally_init(&sd->tally);
	if (err)
		return err;
	sd->buf = malloc(RX_BYTES);
	sd->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!sd->buf || sd->epfd < 0)
		return sd->buf ? -errno : -ENOMEM;
	self_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self_fd < 0)
		return -errno;
	err = netns_inode("/proc/self/ns/net", &self_ino);
	if (err)
		goto out;
	if (cfg->filter.netns && cfg->filter.netns != self_ino) {
		if (netns_find_path(cfg->filter.netns, path, sizeof(path))) {
			pr_warn("sock_diag: no path names network namespace %u (not in /run/netns, "
				"no process in it): its sockets are not counted",
				cfg->filter.netns);
		} else {
			err = add_ns(sd, path, cfg->filter.netns, self_ino, self_fd);
			if (err)
				goto out;
		}
	} else {
		err = add_ns(sd, "/proc/self/ns/net", self_ino, self_ino, self_fd);
		if (err)
			goto out;
	}
	for (unsigned int i = 0; i < cfg->walk.n_netns_watch; i++) {
		err = netns_inode(cfg->walk.netns_watch[i], &ino);
		if (!err)
			err = add_ns(sd, cfg->walk.netns_watch[i], ino, self_ino, self_fd);
		if (err) {
			pr_warn("sock_diag: %s: %s", cfg->walk.netns_watch[i], strerror(-err));
			goto out;
		}
	}
	err = sd->n_ns ? 0 : -ENOENT;
out:
	close(self_fd);
	return err;
}

int sockdiag_fd(const struct sockdiag *sd)
{
	return sd->epfd;
}

static int send_request(struct sockdiag *sd)
{
	char req[128];
	size_t len = diag_build_request(req, sizeof(req), families[sd->fam], ++sd->seq);

	if (mnl_socket_sendto(sd->ns[sd->cur].nl, req, len) < 0)
		return -errno;
	return 0;
}

/* Reads and throws away whatever a socket holds (the rest of an aborted dump). */
static void drain(struct sockdiag_ns *n)
{
	char junk[4096];

	while (recv(mnl_socket_get_fd(n->nl), junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
}

static void finish(struct sockdiag *sd)
{
	sd->busy = false;
	sd->last_duration_ns = clock_mono_ns() - sd->started_ns;
	if (sd->cycle_ok)
		sd->dumps++;
	else
		sd->errors++;
	if (sd->on_done)
		sd->on_done(sd->ctx, &sd->tally, sd->cycle_ok);
}

/* Moves to the next family or namespace and asks for it; ends the cycle after the last. */
static void advance(struct sockdiag *sd)
{
	int err;

	for (;;) {
		if (++sd->fam >= (int)sizeof(families)) {
			sd->fam = 0;
			if (++sd->cur >= sd->n_ns) {
				finish(sd);
				return;
			}
			diag_tally_next_netns(&sd->tally, sd->ns[sd->cur].port_lo,
					      sd->ns[sd->cur].port_hi);
		}
		err = send_request(sd);
		if (!err)
			return;
		pr_debug("sock_diag: request failed: %s", strerror(-err));
		sd->cycle_ok = false;
	}
}

int sockdiag_start(struct sockdiag *sd, sockdiag_sock_fn on_sock)
{
	int err;

	if (sd->busy)
		return -EBUSY;
	if (!sd->n_ns)
		return -ENOENT;
	diag_tally_reset(&sd->tally);
	diag_tally_next_netns(&sd->tally, sd->ns[0].port_lo, sd->ns[0].port_hi);
	sd->on_sock = on_sock;
	sd->busy = true;
	sd->cycle_ok = true;
	sd->cur = 0;
	sd->fam = 0;
	sd->started_ns = clock_mono_ns();
	err = send_request(sd);
	if (err) {
		sd->cycle_ok = false;
		advance(sd);
	}
	return 0;
}

static int on_msg(const struct nlmsghdr *nlh, void *data)
{
	struct sockdiag *sd = data;
	struct diag_sock s;

	if (diag_parse(nlh, nlh->nlmsg_len, &s)) {
		sd->parse_errors++;
		return MNL_CB_OK;
	}
	s.netns = sd->ns[sd->cur].inode;
	diag_tally_add(&sd->tally, &s);
	if (sd->on_sock)
		sd->on_sock(sd->ctx, &sd->tally, &s);
	return MNL_CB_OK;
}

void sockdiag_process(struct sockdiag *sd)
{
	struct epoll_event evs[SOCKDIAG_NS_MAX];
	struct sockdiag_ns *n;
	ssize_t len;
	int ret, k;

	/* readiness of sockets other than the current one: leftovers, thrown away */
	k = epoll_wait(sd->epfd, evs, SOCKDIAG_NS_MAX, 0);
	for (int i = 0; i < k; i++)
		if (!sd->busy || (int)evs[i].data.u32 != sd->cur)
			drain(&sd->ns[evs[i].data.u32]);
	while (sd->busy) {
		n = &sd->ns[sd->cur];
		len = mnl_socket_recvfrom(n->nl, sd->buf, RX_BYTES);
		if (len < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			ret = MNL_CB_ERROR;
		} else {
			ret = mnl_cb_run(sd->buf, len, sd->seq, n->portid, on_msg, sd);
		}
		if (ret == MNL_CB_ERROR) {
			pr_debug("sock_diag: namespace %u: %s", n->inode, strerror(errno));
			sd->cycle_ok = false;
			drain(n);
			sd->fam = (int)sizeof(families) - 1; /* skip to the next namespace */
			advance(sd);
		} else if (ret == MNL_CB_STOP) {
			advance(sd);
		}
	}
}

int sockdiag_dump_sync(struct sockdiag *sd, sockdiag_sock_fn on_sock, int timeout_ms)
{
	uint64_t deadline = clock_mono_ns() + (uint64_t)timeout_ms * NSEC_PER_MSEC, now;
	struct pollfd pfd = {.fd = sd->epfd, .events = POLLIN};
	int err = sockdiag_start(sd, on_sock);

	if (err)
		return err;
	while (sd->busy) {
		now = clock_mono_ns();
		if (now >= deadline)
			return -ETIMEDOUT; /* the loop finishes it later */
		if (poll(&pfd, 1, (int)((deadline - now) / NSEC_PER_MSEC) + 1) < 0 && errno != EINTR)
			return -errno;
		sockdiag_process(sd);
	}
	return sd->cycle_ok ? 0 : -EIO;
}

void sockdiag_close(struct sockdiag *sd)
{
	if (!sd)
		return;
	for (int i = 0; i < sd->n_ns; i++)
		if (sd->ns[i].nl)
			mnl_socket_close(sd->ns[i].nl);
	sd->n_ns = 0;
	if (sd->epfd >= 0)
		close(sd->epfd);
	sd->epfd = -1;
	free(sd->buf);
	sd->buf = NULL;
	diag_tally_free(&sd->tally);
}
