// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The event loop: see loop.h. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "loop.h"
#include "util.h"

static int setup(struct loop *l, uint64_t tick_ns)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = tick_ns / NSEC_PER_SEC, .tv_nsec = tick_ns % NSEC_PER_SEC },
		.it_value = { .tv_sec = tick_ns / NSEC_PER_SEC, .tv_nsec = tick_ns % NSEC_PER_SEC },
	};
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	/* An ignored signal is discarded before signalfd sees it, and a script's background
	 * jobs (or nohup) start with SIGINT/SIGHUP ignored: the agent's contract is to stop
	 * cleanly on SIGINT and SIGTERM and to reopen on SIGHUP, so take them back. */
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	l->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->sfd < 0 || l->tfd < 0 || l->epfd < 0)
		return -errno;
	if (timerfd_settime(l->tfd, 0, &its, NULL))
		return -errno;
	ev.data.fd = l->sfd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sfd, &ev))
		return -errno;
	ev.data.fd = l->tfd;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &ev))
		return -errno;
	return 0;
}

int loop_open(struct loop *l, uint64_t tick_ns, const struct loop_ops *ops)
{
	int err;

	memset(l, 0, sizeof(*l));
	l->epfd = l->tfd = l->sfd = -1;
	l->ops = *ops;
	err = setup(l, tick_ns);
	if (err)
		loop_close(l);
	return err;
}

int loop_add_fd(struct loop *l, int fd, loop_fd_fn fn, void *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	if (l->n_fds >= LOOP_MAX_FDS)
		return -E2BIG;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	l->fds[l->n_fds++] = (struct loop_fd){ .fd = fd, .fn = fn, .ctx = ctx };
	return 0;
}

static void on_signal(struct loop *l)
{
	struct signalfd_siginfo si;

	while (read(l->sfd, &si, sizeof(si)) == sizeof(si))
		if (l->ops.on_signal)
			l->ops.on_signal(l->ops.ctx, (int)si.ssi_signo);
}

static void on_timer(struct loop *l)
{
	uint64_t expirations;

	while (read(l->tfd, &expirations, sizeof(expirations)) == sizeof(expirations))
		;
	if (l->ops.on_tick)
		l->ops.on_tick(l->ops.ctx);
}

static void dispatch(struct loop *l, const struct epoll_event *ev)
{
	int fd = ev->data.fd;

	if (fd == l->sfd) {
		on_signal(l);
		return;
	}
	if (fd == l->tfd) {
		on_timer(l);
		return;
	}
	for (int i = 0; i < l->n_fds; i++) {
		if (l->fds[i].fd == fd) {
			l->fds[i].fn(l->fds[i].ctx, fd, ev->events);
			return;
		}
	}
}

int loop_wait(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[LOOP_MAX_FDS + 2];
	int n;

	n = epoll_wait(l->epfd, evs, ARRAY_SIZE(evs), timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++)
		dispatch(l, &evs[i]);
	return n;
}

void loop_close(struct loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->tfd >= 0)
		close(l->tfd);
	if (l->sfd >= 0)
		close(l->sfd);
	l->epfd = l->tfd = l->sfd = -1;
	l->n_fds = 0;
}
