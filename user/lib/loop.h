/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one event loop every command runs: epoll over a periodic timerfd, a signalfd and a small
 * registry of descriptors. Nothing is done in a signal handler: SIGINT, SIGTERM and SIGHUP are
 * blocked and read from the signalfd like any other input; SIGPIPE is ignored (a write to a
 * closed pipe returns EPIPE instead).
 */
#ifndef SP_LOOP_H
#define SP_LOOP_H

#include <stdint.h>

#define LOOP_MAX_FDS 10 /* registered descriptors (the timer and signals not counted) */

typedef void (*loop_fd_fn)(void *ctx, int fd, uint32_t events);

struct loop_ops {
	void *ctx;
	/* the timer fired (once, however many periods passed since the last call) */
	void (*on_tick)(void *ctx);
	/* SIGINT, SIGTERM or SIGHUP arrived */
	void (*on_signal)(void *ctx, int signo);
};

struct loop_fd {
	int fd;
	loop_fd_fn fn;
	void *ctx;
};

struct loop {
	struct loop_ops ops;
	int epfd, tfd, sfd;
	struct loop_fd fds[LOOP_MAX_FDS];
	int n_fds;
};

/* Blocks and takes over SIGINT, SIGTERM and SIGHUP, arms a timer every tick_ns (0: no timer).
 * 0 or -errno;
 * on failure what was opened is closed. */
int loop_open(struct loop *l, uint64_t tick_ns, const struct loop_ops *ops);
/* Adds a descriptor (EPOLLIN); fn gets it with the epoll events. 0, -E2BIG or -errno. */
int loop_add_fd(struct loop *l, int fd, loop_fd_fn fn, void *ctx);
/* Waits up to timeout_ms (-1: no limit) and dispatches what is ready. The number of
 * descriptors dispatched, or -errno (EINTR is not an error: 0). */
int loop_wait(struct loop *l, int timeout_ms);
/* Closes the loop's own descriptors; the registered ones belong to their owners. */
void loop_close(struct loop *l);

#endif
