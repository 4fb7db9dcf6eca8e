/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket inode -> owner: against the real /proc with sockets of this process, and against
 * made-up proc trees for what /proc cannot be made to show on demand (shared sockets, odd links,
 * processes that vanish, a full table).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "procsock.h"

static uint64_t sock_inode(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

static int new_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	return fd;
}

static void test_bounds(void **state)
{
	uint32_t pid;
	char comm[16];

	assert_null(procsock_new(0));
	procsock_free(NULL);
	assert_int_equal(procsock_count(NULL), 0);
	assert_false(procsock_lookup(NULL, 1, &pid, comm));
}

static void test_own_socket(void **state)
{
	struct procsock *ps = procsock_new(65536);
	char comm[16] = "x", want[17] = "";
	uint64_t overflow = 99;
	uint32_t pid = 0;
	int fd = new_socket();

	assert_non_null(ps);
	assert_int_equal(prctl(PR_GET_NAME, want), 0);
	assert_int_equal(procsock_scan(ps, "/proc", &overflow), 0);
	assert_int_equal(overflow, 0);
	assert_true(procsock_count(ps) >= 1);
	assert_true(procsock_lookup(ps, sock_inode(fd), &pid, comm));
	assert_int_equal(pid, getpid());
	assert_string_equal(comm, want);
	close(fd);
	procsock_free(ps);
}

static void test_unknown_inode(void **state)
{
	struct procsock *ps = procsock_new(65536);
	int fd = new_socket();
	uint64_t gone = sock_inode(fd);
	uint32_t pid = 12345;
	char comm[16] = "untouched";

	close(fd); /* socket inodes are not reused soon: nobody holds this one */
	assert_int_equal(procsock_scan(ps, "/proc", NULL), 0);
	assert_false(procsock_lookup(ps, gone, &pid, comm));
	assert_false(procsock_lookup(ps, 0, &pid, comm));
	assert_false(procsock_lookup(ps, UINT64_MAX, &pid, comm));
	assert_int_equal(pid, 12345);
	assert_string_equal(comm, "untouched");
	procsock_free(ps);
}

static void test_overflow(void **state)
{
	struct procsock *ps = procsock_new(1);
	uint64_t overflow = 0;
	int fd[3];

	for (int i = 0; i < 3; i++)
		fd[i] = new_socket();
	assert_int_equal(procsock_scan(ps, "/proc", &overflow), 0);
	assert_int_equal(procsock_count(ps), 1);
	assert_true(overflow >= 2); /* ours alone are three */
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	procsock_free(ps);
}

static void test_unreadable_root(void **state)
{
	struct procsock *ps = procsock_new(1024);
	int fd = new_socket();
	uint32_t pid;
	char comm[16];

	assert_int_equal(procsock_scan(ps, "/proc", NULL), 0);
	assert_int_equal(procsock_scan(ps, "/nonexistent/procsock", NULL), -ENOENT);
	assert_int_equal(procsock_scan(ps, "/proc/self/status", NULL), -ENOTDIR);
	/* a failed scan leaves the last good one in place */
	assert_true(procsock_lookup(ps, sock_inode(fd), &pid, comm));
	close(fd);
	procsock_free(ps);
}

static void test_rescan_replaces(void **state)
{
	struct procsock *ps = procsock_new(65536);
	int a = new_socket(), b;
	uint64_t ino_a = sock_inode(a), ino_b;
	uint32_t pid;
	char comm[16];

	assert_int_equal(procsock_scan(ps, "/proc", NULL), 0);
	assert_true(procsock_lookup(ps, ino_a, &pid, comm));
	close(a);
	b = new_socket();
	ino_b = sock_inode(b);
	assert_false(procsock_lookup(ps, ino_b, &pid, comm));
	assert_int_equal(procsock_scan(ps, "/proc", NULL), 0);
	assert_false(procsock_lookup(ps, ino_a, &pid, comm));
	assert_true(procsock_lookup(ps, ino_b, &pid, comm));
	close(b);
	procsock_free(ps);
}

/* ---- made-up proc trees ------------------------------------------------------------------ */

static char root[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int tree_setup(void **state)
{
	strcpy(root, "/tmp/test_procsock.XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int tree_teardown(void **state)
{
	return nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkpath(const char *fmt, ...)
{
	char path[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	assert_int_equal(mkdir(path, 0755), 0);
}

/* Process @pid with @comm (NULL: no comm file) and an fd directory (unless @fds < 0). */
static void fake_proc(const char *pid, const char *comm, int fds)
{
	char path[256];
	FILE *f;

	mkpath("%s/%s", root, pid);
	if (comm) {
		snprintf(path, sizeof(path), "%s/%s/comm", root, pid);
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "%s\n", comm);
		fclose(f);
	}
	if (fds >= 0)
		mkpath("%s/%s/fd", root, pid);
}

static void fake_fd(const char *pid, int fd, const char *target)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s/fd/%d", root, pid, fd);
	assert_int_equal(symlink(target, path), 0);
}

static void want_owner(const struct procsock *ps, uint64_t inode, uint32_t want_pid,
		       const char *want_comm)
{
	uint32_t pid = 0;
	char comm[16];

	if (!procsock_lookup(ps, inode, &pid, comm))
		fail_msg("inode %llu not found", (unsigned long long)inode);
	assert_int_equal(pid, want_pid);
	assert_string_equal(comm, want_comm);
}

static void test_fake_tree(void **state)
{
	struct procsock *ps = procsock_new(64);
	uint64_t overflow = 99;
	uint32_t pid;
	char comm[16];

	/* a socket shared by three processes: the lowest pid owns it, whatever the order */
	fake_proc("300", "third", 0);
	fake_fd("300", 7, "socket:[777]");
	fake_proc("12", "first", 0);
	fake_fd("12", 3, "socket:[777]");
	fake_fd("12", 4, "pipe:[778]");
	fake_fd("12", 5, "/dev/null");
	fake_proc("4000", "fourth", 0);
	fake_fd("4000", 9, "socket:[777]");
	/* comm longer than the kernel's 15: cut */
	fake_proc("55", "averyveryverylongname", 0);
	fake_fd("55", 0, "socket:[555]");
	/* links that only look like sockets */
	fake_proc("56", "odd", 0);
	fake_fd("56", 0, "socket:[]");
	fake_fd("56", 1, "socket:[12a]");
	fake_fd("56", 2, "socket:[13]x");
	fake_fd("56", 3, "socket:[0]");
	fake_fd("56", 4, "socket:[-5]");
	fake_fd("56", 5, "socket:[18446744073709551616]");
	fake_fd("56", 6, "anon_inode:[eventpoll]");
	/* gone before its fd directory was read, and gone before its comm was */
	fake_proc("57", "gone", -1);
	fake_proc("58", NULL, 0);
	fake_fd("58", 0, "socket:[585]");
	/* not processes */
	mkpath("%s/self", root);
	mkpath("%s/0", root);
	fake_proc("59x", "nope", 0);
	fake_fd("59x", 0, "socket:[595]");

	assert_int_equal(procsock_scan(ps, root, &overflow), 0);
	assert_int_equal(overflow, 0);
	assert_int_equal(procsock_count(ps), 2);
	want_owner(ps, 777, 12, "first");
	want_owner(ps, 555, 55, "averyveryverylo");
	assert_false(procsock_lookup(ps, 778, &pid, comm));
	assert_false(procsock_lookup(ps, 13, &pid, comm));
	assert_false(procsock_lookup(ps, 585, &pid, comm));
	assert_false(procsock_lookup(ps, 595, &pid, comm));
	procsock_free(ps);
}

/* Exactly full, then one more: every stored inode still found, the extra one counted. */
static void test_fake_full(void **state)
{
	enum { N = 1000 };
	struct procsock *ps = procsock_new(N);
	uint64_t overflow = 99;
	char target[32];
	uint32_t pid;
	char comm[16];

	fake_proc("42", "many", 0);
	for (int i = 0; i < N; i++) {
		/* consecutive inodes, as the kernel hands them out */
		snprintf(target, sizeof(target), "socket:[%d]", 100000 + i);
		fake_fd("42", i, target);
	}
	assert_int_equal(procsock_scan(ps, root, &overflow), 0);
	assert_int_equal(overflow, 0);
	assert_int_equal(procsock_count(ps), N);
	for (int i = 0; i < N; i++)
		want_owner(ps, 100000 + i, 42, "many");

	/* sockets the table already holds are no overflow, even when it is full */
	fake_proc("43", "again", 0);
	fake_fd("43", 0, "socket:[100000]");
	fake_proc("41", "lower", 0);
	fake_fd("41", 0, "socket:[100001]");
	assert_int_equal(procsock_scan(ps, root, &overflow), 0);
	assert_int_equal(overflow, 0);
	assert_int_equal(procsock_count(ps), N);
	want_owner(ps, 100000, 42, "many");
	want_owner(ps, 100001, 41, "lower");

	fake_fd("43", 1, "socket:[7]");
	assert_int_equal(procsock_scan(ps, root, &overflow), 0);
	assert_int_equal(overflow, 1);
	assert_int_equal(procsock_count(ps), N);
	assert_false(procsock_lookup(ps, 1, &pid, comm));
	procsock_free(ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_own_socket),
		cmocka_unit_test(test_unknown_inode),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_unreadable_root),
		cmocka_unit_test(test_rescan_replaces),
		cmocka_unit_test_setup_teardown(test_fake_tree, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_fake_full, tree_setup, tree_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
