/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * JSON lines log file: directories and mode, whole lines in order, rotation by size keeping N
 * files with no line split or lost, reopen after rename (SIGHUP) and after the file vanished,
 * and a full disk (RLIMIT_FSIZE stands in for ENOSPC) that never leaves a partial line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "jsonlog.h"

#define S 1000000000ULL

static char dir[256];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/sp-jsonlog-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Queues line number @n: {"n":N,"pad":"xxx..."} of exactly @len bytes. */
static void put_line(struct jsonlog *lg, unsigned int n, size_t len)
{
	char *p = jsonlog_reserve(lg, len);
	int k;

	assert_non_null(p);
	k = snprintf(p, len, "{\"n\":%u,\"pad\":\"", n);
	assert_true(k > 0 && (size_t)k + 3 <= len);
	memset(p + k, 'x', len - k - 3);
	memcpy(p + len - 3, "\"}\n", 3);
	jsonlog_commit(lg, len);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/*
 * Checks that @path holds whole lines numbered consecutively from *next; advances *next.
 * Returns the number of lines.
 */
static unsigned int check_file(const char *path, unsigned int *next)
{
	size_t len, off = 0;
	char *buf = slurp(path, &len);
	unsigned int lines = 0, n;

	if (!buf)
		return 0;
	if (len)
		assert_int_equal(buf[len - 1], '\n');
	while (off < len) {
		char *nl = memchr(buf + off, '\n', len - off);

		assert_non_null(nl);
		assert_int_equal(sscanf(buf + off, "{\"n\":%u,", &n), 1);
		if (n != *next)
			fail_msg("%s: line %u is number %u, expected %u", path, lines, n, *next);
		assert_memory_equal(nl - 2, "\"}", 2);
		(*next)++;
		lines++;
		off = nl - buf + 1;
	}
	free(buf);
	return lines;
}

static void test_open_creates_dirs_and_mode(void **state)
{
	struct jsonlog lg;
	char path[300];
	struct stat st;
	mode_t old = umask(0);

	snprintf(path, sizeof(path), "%s/a/b/events.jsonl", dir);
	assert_int_equal(jsonlog_open(&lg, path, 0, 3, 65536), 0);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	snprintf(path, sizeof(path), "%s/a/b", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0750);
	put_line(&lg, 0, 40);
	put_line(&lg, 1, 50);
	assert_int_equal(jsonlog_flush(&lg, S), 0);
	assert_int_equal(lg.st.lines_written, 2);
	jsonlog_close(&lg, S);

	/* reopening appends; a file not ending in a newline gets one first */
	snprintf(path, sizeof(path), "%s/a/b/events.jsonl", dir);
	assert_int_equal(jsonlog_open(&lg, path, 0, 3, 65536), 0);
	put_line(&lg, 2, 60);
	jsonlog_close(&lg, S);
	{
		unsigned int next = 0;

		assert_int_equal(check_file(path, &next), 3);
	}
}

/* One writer per file: a second open of the same log is refused while the first holds it. */
static void test_one_writer(void **state)
{
	struct jsonlog a, b;
	char path[300];

	snprintf(path, sizeof(path), "%s/one/events.jsonl", dir);
	assert_int_equal(jsonlog_open(&a, path, 0, 1, 65536), 0);
	assert_int_equal(jsonlog_open(&b, path, 0, 1, 65536), -EBUSY);
	jsonlog_close(&b, S);
	jsonlog_close(&a, S);
	assert_int_equal(jsonlog_open(&b, path, 0, 1, 65536), 0);
	jsonlog_close(&b, S);
}

static void test_bad_args(void **state)
{
	struct jsonlog lg;

	assert_int_equal(jsonlog_open(&lg, "", 0, 1, 65536), -EINVAL);
	assert_int_equal(jsonlog_open(&lg, "/tmp/dir/", 0, 1, 65536), -EINVAL);
	assert_int_equal(jsonlog_open(&lg, "/tmp/x.jsonl", 0, JSONLOG_KEEP_MAX + 1, 65536),
			 -EINVAL);
	jsonlog_close(&lg, 0); /* harmless after a failed open */
}

/* Rotation by size: files never exceed the limit, keep N, all lines in order across files. */
static void test_rotation(void **state)
{
	struct jsonlog lg;
	char path[300], name[320];
	unsigned int next, total = 0, n_lines = 400, first;
	uint64_t bytes = 0;
	struct stat st;

	snprintf(path, sizeof(path), "%s/rot/events.jsonl", dir);
	assert_int_equal(jsonlog_open(&lg, path, 4096, 3, 65536), 0);
	for (unsigned int i = 0; i < n_lines; i++) {
		put_line(&lg, i, 60 + (i * 37) % 200);
		bytes += 60 + (i * 37) % 200;
		if (i % 7 == 0)
			assert_int_equal(jsonlog_flush(&lg, S), 0);
	}
	jsonlog_close(&lg, S);
	assert_true(lg.st.rotations > 3);
	/* the counts hold when a flush splits the queue at a rotation */
	assert_int_equal(lg.st.lines_written, n_lines);
	assert_int_equal(lg.st.bytes_written, bytes);
	assert_int_equal(lg.qlines, 0);

	/* the oldest surviving file is .3; numbering continues through .2, .1 and the live one */
	snprintf(name, sizeof(name), "%s.4", path);
	assert_int_not_equal(stat(name, &st), 0);
	snprintf(name, sizeof(name), "%s.3", path);
	{
		size_t len;
		char *buf = slurp(name, &len);

		assert_non_null(buf);
		assert_int_equal(sscanf(buf, "{\"n\":%u,", &first), 1);
		free(buf);
	}
	next = first;
	for (int k = 3; k >= 0; k--) {
		if (k)
			snprintf(name, sizeof(name), "%s.%d", path, k);
		else
			snprintf(name, sizeof(name), "%s", path);
		assert_int_equal(stat(name, &st), 0);
		assert_true(st.st_size <= 4096);
		total += check_file(name, &next);
	}
	assert_int_equal(next, n_lines);
	assert_true(total > 0);
}

static void test_keep_zero_deletes(void **state)
{
	struct jsonlog lg;
	char path[300], name[320];
	struct stat st;

	snprintf(path, sizeof(path), "%s/k0.jsonl", dir);
	assert_int_equal(jsonlog_open(&lg, path, 4096, 0, 65536), 0);
	for (unsigned int i = 0; i < 100; i++)
		put_line(&lg, i, 100);
	assert_int_equal(jsonlog_flush(&lg, S), 0);
	jsonlog_close(&lg, S);
	snprintf(name, sizeof(name), "%s.1", path);
	assert_int_not_equal(stat(name, &st), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size <= 4096 && st.st_size > 0);
}

/* logrotate without copytruncate: rename, then SIGHUP (reopen); nothing lost or split. */
static void test_rename_and_reopen(void **state)
{
	struct jsonlog lg;
	char path[300], moved[320];
	unsigned int next = 0;

	snprintf(path, sizeof(path), "%s/hup.jsonl", dir);
	snprintf(moved, sizeof(moved), "%s/hup.jsonl-20261128", dir);
	assert_int_equal(jsonlog_open(&lg, path, 0, 1, 65536), 0);
	for (unsigned int i = 0; i < 10; i++)
		put_line(&lg, i, 80);
	assert_int_equal(jsonlog_flush(&lg, S), 0);
	assert_int_equal(rename(path, moved), 0);
	/* written after the rename, before the signal: still lands in the moved file */
	for (unsigned int i = 10; i < 15; i++)
		put_line(&lg, i, 80);
	assert_int_equal(jsonlog_reopen(&lg, 2 * S), 0);
	for (unsigned int i = 15; i < 30; i++)
		put_line(&lg, i, 80);
	jsonlog_close(&lg, 3 * S);
	assert_int_equal(check_file(moved, &next), 15);
	assert_int_equal(check_file(path, &next), 15);
	assert_int_equal(lg.st.reopens, 1);
}

/* The file was renamed or removed with nobody telling us: the tick notices and reopens. */
static void test_tick_notices_vanished_file(void **state)
{
	struct jsonlog lg;
	char path[300], sub[300];
	unsigned int next = 5;

	snprintf(sub, sizeof(sub), "%s/gone", dir);
	snprintf(path, sizeof(path), "%s/gone/events.jsonl", dir);
	assert_int_equal(jsonlog_open(&lg, path, 0, 1, 65536), 0);
	for (unsigned int i = 0; i < 5; i++)
		put_line(&lg, i, 80);
	assert_int_equal(jsonlog_flush(&lg, S), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(sub), 0);
	jsonlog_tick(&lg, 2 * S, 60 * S);
	assert_int_equal(lg.st.reopens, 1);
	for (unsigned int i = 5; i < 9; i++)
		put_line(&lg, i, 80);
	jsonlog_close(&lg, 3 * S);
	assert_int_equal(check_file(path, &next), 4);
}

/*
 * A write that only partly fits (RLIMIT_FSIZE: EFBIG after a short write, as with a full disk)
 * leaves whole lines only; the lines that did not fit stay queued and are written once there
 * is room again.
 */
static void test_short_write_leaves_whole_lines(void **state)
{
	struct jsonlog lg;
	struct rlimit old, lim;
	char path[300];
	unsigned int next = 0;
	struct stat st;
	int err;

	signal(SIGXFSZ, SIG_IGN);
	snprintf(path, sizeof(path), "%s/full.jsonl", dir);
	assert_int_equal(jsonlog_open(&lg, path, 0, 1, 65536), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1000; /* 1000 bytes: 6 lines of 150, then the 7th is cut */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (unsigned int i = 0; i < 20; i++)
		put_line(&lg, i, 150);
	err = jsonlog_flush(&lg, S);
	assert_int_not_equal(err, 0);
	assert_int_equal(lg.st.write_errors, 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 900);
	assert_int_equal(check_file(path, &next), 6);
	assert_int_equal(lg.len, 14 * 150);

	/* still failing: nothing changes, nothing partial, and it is the same episode */
	assert_int_not_equal(jsonlog_flush(&lg, 2 * S), 0);
	assert_int_equal(lg.st.write_errors, 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 900);

	/* room again: the rest follows in order */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(jsonlog_flush(&lg, 3 * S), 0);
	jsonlog_close(&lg, 4 * S);
	next = 0;
	assert_int_equal(check_file(path, &next), 20);
	signal(SIGXFSZ, SIG_DFL);
}

/* A queue that cannot be written and is full drops new lines and counts them. */
static void test_queue_full_drops(void **state)
{
	struct jsonlog lg;
	char path[300];

	snprintf(path, sizeof(path), "%s/nodir/x.jsonl", dir);
	assert_int_equal(jsonlog_open(&lg, path, 0, 1, 4096), 0);
	/* make the directory unusable: a file where the directory should be */
	jsonlog_close(&lg, 0);
	snprintf(path, sizeof(path), "%s/nodir", dir);
	{
		char cmd[700];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && touch '%s'", path, path);
		assert_int_equal(system(cmd), 0);
	}
	snprintf(path, sizeof(path), "%s/nodir/x.jsonl", dir);
	assert_int_equal(jsonlog_open(&lg, path, 0, 1, 4096), -ENOTDIR);
	for (unsigned int i = 0; i < 100; i++) {
		char *p = jsonlog_reserve(&lg, 100);

		if (!p)
			continue;
		memset(p, 'x', 99);
		p[99] = '\n';
		jsonlog_commit(&lg, 100);
	}
	assert_int_equal(lg.st.lines_dropped, 100 - 4096 / 100);
	assert_int_not_equal(jsonlog_flush(&lg, 5 * S), 0);
	/* the failed open and its retry are one episode, not two errors */
	assert_int_equal(lg.st.write_errors, 1);
	jsonlog_close(&lg, 6 * S);
	assert_int_equal(lg.st.lines_dropped, 100);
}


/*
 * A sink that takes nothing (a pipe nobody reads, with the flags the log file was opened with)
 * never holds the caller: flushes return at once, the queue fills, further lines are dropped and
 * counted, and once the sink drains the queued lines follow in order. A blocking log descriptor
 * would hang here: the alarm turns that into a failure.
 */
static void test_stuck_sink_never_blocks(void **state)
{
	struct jsonlog lg;
	char path[300], sink[65536];
	size_t got = 0;
	int p[2], flags, dropped = 0;
	unsigned int i, next = 0, lines = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/stuck.jsonl", dir);
	assert_int_equal(jsonlog_open(&lg, path, 0, 1, 16384), 0);
	flags = fcntl(lg.fd, F_GETFL);
	assert_true(flags & O_NONBLOCK);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(fcntl(p[1], F_SETFL, flags & O_NONBLOCK), 0);
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0); /* the test's reader */
	assert_int_equal(fcntl(p[1], F_SETPIPE_SZ, 4096), 4096);
	assert_int_equal(dup2(p[1], lg.fd), lg.fd);
	close(p[1]);
	alarm(5);
	for (i = 0; i < 400; i++) {
		char *q = jsonlog_reserve(&lg, 100);

		if (!q) {
			dropped++;
			continue;
		}
		snprintf(q, 100, "{\"n\":%u,\"pad\":\"", i - dropped);
		memset(q + strlen(q), 'x', 100 - strlen(q) - 3);
		memcpy(q + 97, "\"}\n", 3);
		jsonlog_commit(&lg, 100);
		assert_true(jsonlog_flush(&lg, i * S / 100) == 0 ||
			    jsonlog_flush(&lg, i * S / 100) == -EAGAIN);
	}
	alarm(0);
	/* 4096 bytes in the pipe, 16384 queued: the rest of 40000 bytes dropped, no error */
	assert_true(dropped > 0);
	assert_int_equal(lg.st.lines_dropped, (uint64_t)dropped);
	assert_int_equal(lg.st.lines_written + lg.qlines + dropped, 400);
	assert_int_equal(lg.st.write_errors, 0);
	/* the reader wakes up: everything queued follows, whole and in order */
	for (int k = 0; k < 100 && (lg.qlines || k == 0); k++) {
		n = read(p[0], sink + got, sizeof(sink) - got);
		if (n > 0)
			got += (size_t)n;
		jsonlog_flush(&lg, 10 * S);
	}
	while ((n = read(p[0], sink + got, sizeof(sink) - got)) > 0)
		got += (size_t)n;
	for (size_t off = 0; off < got; off += 100) {
		assert_int_equal(sscanf(sink + off, "{\"n\":%u,", &i), 1);
		assert_int_equal(i, next++);
		assert_int_equal(sink[off + 99], '\n');
		lines++;
	}
	assert_int_equal(lg.qlines, 0);
	assert_int_equal(lines, 400 - dropped);
	close(p[0]);
	jsonlog_close(&lg, 11 * S);
}

/* A log deleted under the agent: lines are written to a new file, not counted into the old one. */
static void test_deleted_file_reopened_before_write(void **state)
{
	struct jsonlog lg;
	char path[300];
	unsigned int next = 0;

	snprintf(path, sizeof(path), "%s/del.jsonl", dir);
	assert_int_equal(jsonlog_open(&lg, path, 0, 1, 65536), 0);
	put_line(&lg, 0, 50);
	assert_int_equal(jsonlog_flush(&lg, S), 0);
	assert_int_equal(unlink(path), 0);
	put_line(&lg, 1, 50);
	put_line(&lg, 2, 50);
	assert_int_equal(jsonlog_flush(&lg, 2 * S), 0); /* before any tick noticed */
	assert_int_equal(lg.st.reopens, 1);
	next = 1;
	assert_int_equal(check_file(path, &next), 2);
	jsonlog_close(&lg, 3 * S);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_creates_dirs_and_mode),
	    cmocka_unit_test(test_bad_args),
	    cmocka_unit_test(test_one_writer),
	    cmocka_unit_test(test_rotation),
	    cmocka_unit_test(test_keep_zero_deletes),
	    cmocka_unit_test(test_rename_and_reopen),
	    cmocka_unit_test(test_tick_notices_vanished_file),
	    cmocka_unit_test(test_short_write_leaves_whole_lines),
	    cmocka_unit_test(test_queue_full_drops),
	    cmocka_unit_test(test_stuck_sink_never_blocks),
	    cmocka_unit_test(test_deleted_file_reopened_before_write),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
