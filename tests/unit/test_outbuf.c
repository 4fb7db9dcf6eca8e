/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Output buffer against real pipes: batching, whole lines in order, EAGAIN keeps data, EPIPE
 * drops it and says so, and signals interrupting a blocked write lose nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "outbuf.h"

static void make_pipe(int fds[2], bool nonblock_write)
{
	assert_int_equal(pipe(fds), 0);
	/* the smallest pipe (one page) fills quickly and deterministically */
	assert_true(fcntl(fds[1], F_SETPIPE_SZ, 4096) >= 4096);
	if (nonblock_write)
		assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
}

/* Appends one line "<prefix><n padded>\n" of exactly @len bytes. */
static bool add_line(struct outbuf *ob, unsigned int n, size_t len)
{
	char *p = outbuf_reserve(ob, len);

	if (!p)
		return false;
	memset(p, 'a' + n % 26, len - 1);
	snprintf(p, len, "%08u", n);
	p[8] = ' ';
	p[len - 1] = '\n';
	outbuf_commit(ob, len);
	return true;
}

static size_t read_all(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap) {
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* Checks that @buf holds lines 0..count-1 of @len bytes each, in order, each whole. */
static void check_lines(const char *buf, size_t got, unsigned int count, size_t len)
{
	char want[64];
	unsigned int i;

	assert_int_equal(got, count * len);
	for (i = 0; i < count; i++) {
		memset(want, 'a' + i % 26, len - 1);
		snprintf(want, len, "%08u", i);
		want[8] = ' ';
		want[len - 1] = '\n';
		if (memcmp(buf + i * len, want, len))
			fail_msg("line %u differs", i);
	}
}

static void test_batching(void **state)
{
	struct outbuf ob;
	char rd[256];
	int fds[2];

	make_pipe(fds, false);
	assert_int_equal(outbuf_init(&ob, fds[1], 64), 0);
	assert_true(add_line(&ob, 0, 30));
	assert_true(add_line(&ob, 1, 30));
	assert_int_equal(ob.len, 60);
	assert_true(add_line(&ob, 2, 30)); /* no room: the first two went out in one write */
	assert_int_equal(ob.len, 30);
	assert_int_equal(ob.lines, 3);

	/* exactly the two flushed lines are in the pipe */
	assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(read(fds[0], rd, sizeof(rd)), 60);
	assert_int_equal(outbuf_flush(&ob), 0);
	assert_int_equal(ob.len, 0);
	assert_int_equal(read(fds[0], rd + 60, sizeof(rd) - 60), 30);
	check_lines(rd, 90, 3, 30);

	assert_null(outbuf_reserve(&ob, 65)); /* larger than the buffer */
	assert_non_null(outbuf_reserve(&ob, 64));
	assert_int_equal(outbuf_flush(&ob), 0); /* nothing buffered: fine */
	assert_int_equal(ob.write_errors, 0);
	assert_int_equal(ob.last_errno, 0);

	outbuf_free(&ob);
	assert_null(ob.buf);
	outbuf_free(&ob); /* twice is harmless */
	outbuf_free(NULL);
	close(fds[0]);
	close(fds[1]);

	assert_int_equal(outbuf_init(&ob, 1, 0), -EINVAL);
}

static void test_eagain_keeps_data(void **state)
{
	enum { LEN = 50, CAP = 8192 };
	static char rd[65536];
	struct outbuf ob;
	unsigned int n = 0;
	size_t got;
	int fds[2], err;

	make_pipe(fds, true);
	assert_int_equal(outbuf_init(&ob, fds[1], CAP), 0);
	/* fill buffer and pipe until the pipe refuses */
	for (;;) {
		if (!add_line(&ob, n, LEN))
			break;
		n++;
		assert_true(n < 2000);
	}
	assert_int_equal(ob.last_errno, EAGAIN);
	assert_true(ob.write_errors >= 1);
	assert_true(ob.len > CAP - LEN); /* kept, not dropped */
	assert_int_equal(ob.dropped_lines, 0);
	err = outbuf_flush(&ob);
	assert_int_equal(err, -EAGAIN);

	/*
	 * The reader catches up: everything arrives, in order, nothing lost or doubled. Reads
	 * take what is there (EAGAIN means the pipe holds data, so each one makes progress).
	 */
	assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	got = 0;
	do {
		size_t before = got;

		got += read_all(fds[0], rd + got, sizeof(rd) - got);
		assert_true(got > before);
	} while ((err = outbuf_flush(&ob)) == -EAGAIN);
	assert_int_equal(err, 0);
	assert_int_equal(ob.len, 0);
	close(fds[1]);
	got += read_all(fds[0], rd + got, sizeof(rd) - got);
	check_lines(rd, got, n, LEN);
	assert_int_equal(ob.lines, n);

	outbuf_free(&ob);
	close(fds[0]);
}

static void test_epipe(void **state)
{
	struct outbuf ob;
	int fds[2];

	signal(SIGPIPE, SIG_IGN);
	make_pipe(fds, false);
	close(fds[0]);
	assert_int_equal(outbuf_init(&ob, fds[1], 256), 0);
	assert_true(add_line(&ob, 0, 20));
	assert_true(add_line(&ob, 1, 20));
	assert_int_equal(outbuf_flush(&ob), -EPIPE);
	assert_int_equal(ob.last_errno, EPIPE);
	assert_int_equal(ob.write_errors, 1);
	assert_int_equal(ob.dropped_lines, 2);
	assert_int_equal(ob.len, 0); /* not wedged: later lines still get space */
	assert_true(add_line(&ob, 2, 20));
	assert_int_equal(outbuf_flush(&ob), -EPIPE);
	assert_int_equal(ob.write_errors, 2);
	assert_int_equal(ob.dropped_lines, 3);

	outbuf_free(&ob);
	close(fds[1]);
	signal(SIGPIPE, SIG_DFL);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	alarms++;
}

struct reader {
	int fd;
	char *buf;
	size_t cap;
	size_t got;
};

static void *slow_reader(void *arg)
{
	struct reader *r = arg;
	ssize_t n;

	for (;;) {
		usleep(200);
		n = read(r->fd, r->buf + r->got, r->cap - r->got < 512 ? r->cap - r->got : 512);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		r->got += (size_t)n;
	}
	return NULL;
}

/* A blocked write interrupted by signals (EINTR or a short count) must still deliver all. */
static void test_signals_and_short_writes(void **state)
{
	enum { LEN = 40, LINES = 3000 };
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
	struct itimerval it = { { 0, 500 }, { 0, 500 } };
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	struct reader r = { 0 };
	sigset_t block, old;
	struct outbuf ob;
	pthread_t th;
	unsigned int i;
	int fds[2];

	make_pipe(fds, false);
	assert_int_equal(outbuf_init(&ob, fds[1], LEN * LINES), 0);
	for (i = 0; i < LINES; i++)
		assert_true(add_line(&ob, i, LEN));

	r.fd = fds[0];
	r.cap = LEN * LINES + 1;
	r.buf = malloc(r.cap);
	assert_non_null(r.buf);
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &block, &old); /* the reader thread never takes SIGALRM */
	assert_int_equal(pthread_create(&th, NULL, slow_reader, &r), 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	assert_int_equal(outbuf_flush(&ob), 0);
	setitimer(ITIMER_REAL, &off, NULL);
	/* A tick may still be pending (valgrind delivers late): SIG_IGN discards it before the
	 * default action, which would kill the test, comes back. */
	signal(SIGALRM, SIG_IGN);
	signal(SIGALRM, SIG_DFL);

	close(fds[1]);
	pthread_join(th, NULL);
	check_lines(r.buf, r.got, LINES, LEN);
	assert_int_equal(ob.write_errors, 0);
	print_message("      %d signals arrived during the flush\n", (int)alarms);

	free(r.buf);
	outbuf_free(&ob);
	close(fds[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batching),
		cmocka_unit_test(test_eagain_keeps_data),
		cmocka_unit_test(test_epipe),
		cmocka_unit_test(test_signals_and_short_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
