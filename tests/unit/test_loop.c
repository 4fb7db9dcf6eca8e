/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The event loop: descriptors reach their callback, signals arrive as calls (not as a default
 * action), the timer ticks, and the registry is bounded. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"

struct seen {
	int ticks;
	int signals[4];
	int n_signals;
	int fd_calls;
	int last_fd;
	char byte;
};

static void on_tick(void *ctx)
{
	((struct seen *)ctx)->ticks++;
}

static void on_signal(void *ctx, int signo)
{
	struct seen *s = ctx;

	if (s->n_signals < 4)
		s->signals[s->n_signals++] = signo;
}

static void on_fd(void *ctx, int fd, uint32_t events)
{
	struct seen *s = ctx;

	s->fd_calls++;
	s->last_fd = fd;
	assert_int_equal(read(fd, &s->byte, 1), 1);
}

/* Runs the loop until cond holds, at most 200 waits of up to 50 ms (10 s). */
#define WAIT_FOR(l, cond)                                                                          \
	do {                                                                                       \
		for (int i_ = 0; i_ < 200 && !(cond); i_++)                                        \
			assert_true(loop_wait(l, 50) >= 0);                                        \
		assert_true(cond);                                                                 \
	} while (0)

static void test_loop(void **state)
{
	struct seen s = { 0 };
	const struct loop_ops ops = { .ctx = &s, .on_tick = on_tick, .on_signal = on_signal };
	struct loop l;
	int p[2];

	assert_int_equal(loop_open(&l, 10 * 1000000ULL, &ops), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(loop_add_fd(&l, p[0], on_fd, &s), 0);

	assert_int_equal(write(p[1], "x", 1), 1);
	WAIT_FOR(&l, s.fd_calls == 1);
	assert_int_equal(s.last_fd, p[0]);
	assert_int_equal(s.byte, 'x');

	/* Blocked and read from the signalfd: the process survives SIGTERM and SIGHUP. */
	assert_int_equal(kill(getpid(), SIGHUP), 0);
	assert_int_equal(kill(getpid(), SIGTERM), 0);
	WAIT_FOR(&l, s.n_signals == 2);
	assert_true((s.signals[0] == SIGHUP && s.signals[1] == SIGTERM) ||
		    (s.signals[0] == SIGTERM && s.signals[1] == SIGHUP));

	WAIT_FOR(&l, s.ticks >= 3);

	loop_close(&l);
	close(p[0]);
	close(p[1]);
}

static void test_registry_bounded(void **state)
{
	struct seen s = { 0 };
	const struct loop_ops ops = { .ctx = &s };
	struct loop l;
	int fds[LOOP_MAX_FDS + 1][2];

	assert_int_equal(loop_open(&l, 1000000000ULL, &ops), 0);
	for (int i = 0; i <= LOOP_MAX_FDS; i++) {
		assert_int_equal(pipe(fds[i]), 0);
		assert_int_equal(loop_add_fd(&l, fds[i][0], on_fd, &s), i < LOOP_MAX_FDS ? 0 : -E2BIG);
	}
	/* Full: refused before epoll is asked, whatever the descriptor. */
	assert_int_equal(loop_add_fd(&l, -1, on_fd, &s), -E2BIG);
	loop_close(&l);
	assert_int_equal(l.epfd, -1);
	for (int i = 0; i <= LOOP_MAX_FDS; i++) {
		close(fds[i][0]);
		close(fds[i][1]);
	}
}

static void test_bad_fd(void **state)
{
	struct seen s = { 0 };
	const struct loop_ops ops = { .ctx = &s };
	struct loop l;

	assert_int_equal(loop_open(&l, 1000000000ULL, &ops), 0);
	assert_int_equal(loop_add_fd(&l, -1, on_fd, &s), -EBADF);
	assert_int_equal(l.n_fds, 0);
	loop_close(&l);
}

/* tick_ns 0: the timer stays disarmed, and a wait with nothing ready returns 0. */
static void test_no_timer(void **state)
{
	struct seen s = { 0 };
	const struct loop_ops ops = { .ctx = &s, .on_tick = on_tick };
	struct loop l;

	assert_int_equal(loop_open(&l, 0, &ops), 0);
	assert_int_equal(loop_wait(&l, 20), 0);
	assert_int_equal(s.ticks, 0);
	loop_close(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop),
		cmocka_unit_test(test_registry_bounded),
		cmocka_unit_test(test_bad_fd),
		cmocka_unit_test(test_no_timer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
