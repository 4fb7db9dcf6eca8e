/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Opening files safely as root: each kind of unsafe path (symbolic link, FIFO, directory, device,
 * another user's file, too-wide modes, an unsafe directory, a second hard link) is refused with a
 * reason, before anything could block; a safe file opens, and O_CREAT still creates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "safefile.h"

#include "tmpdir.h"

static int setup(void **state)
{
	return tmpdir_make("safefile");
}

static void make_file(const char *name, mode_t mode)
{
	int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x = 1\n", 6), 6);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* Opens @name as @kind; expects a refusal whose reason contains @want (NULL: success). */
static void expect(const char *name, int flags, enum safefile_kind kind, const char *want)
{
	char why[160];
	int fd = safefile_open(at(name), flags, 0640, kind, why, sizeof(why));

	if (!want) {
		assert_true(fd >= 0);
		assert_string_equal(why, "");
		close(fd);
		return;
	}
	assert_int_equal(fd, -SAFEFILE_REFUSED);
	if (!strstr(why, want))
		fail_msg("%s: reason '%s' lacks '%s'", name, why, want);
}

static void test_safe_files_open(void **state)
{
	make_file("ok.log", 0640);
	make_file("ok.conf", 0664); /* group-writable is fine for a config */
	expect("ok.log", O_RDWR | O_APPEND, SAFEFILE_LOG, NULL);
	expect("ok.conf", O_RDONLY, SAFEFILE_CONFIG, NULL);
	expect("new.log", O_RDWR | O_APPEND | O_CREAT | O_EXCL, SAFEFILE_LOG, NULL);
	assert_int_equal(access(at("new.log"), F_OK), 0);
}

static void test_missing_is_an_open_error(void **state)
{
	char why[160];

	assert_int_equal(safefile_open(at("none"), O_RDONLY, 0, SAFEFILE_CONFIG, why, sizeof(why)),
			 -ENOENT);
	assert_string_equal(why, "");
	assert_int_equal(
	    safefile_open("/nonexistent-dir/x", O_RDONLY, 0, SAFEFILE_CONFIG, why, sizeof(why)),
	    -ENOENT);
}

static void test_symlink_refused(void **state)
{
	make_file("target", 0600);
	assert_int_equal(symlink(at("target"), at("link")), 0);
	expect("link", O_RDWR | O_APPEND | O_CREAT, SAFEFILE_LOG, "symbolic link");
	expect("link", O_RDONLY, SAFEFILE_CONFIG, "symbolic link");
	/* a dangling link is not followed to create its target either */
	assert_int_equal(symlink(at("nowhere"), at("dangling")), 0);
	expect("dangling", O_RDWR | O_CREAT, SAFEFILE_LOG, "symbolic link");
	assert_int_equal(access(at("nowhere"), F_OK), -1);
}

static void test_not_regular_refused(void **state)
{
	char why[160];

	assert_int_equal(mkfifo(at("fifo"), 0600), 0);
	expect("fifo", O_WRONLY | O_APPEND, SAFEFILE_LOG,
	       "FIFO"); /* would block without a reader */
	expect("fifo", O_RDONLY, SAFEFILE_CONFIG, "FIFO");
	assert_int_equal(mkdir(at("sub"), 0700), 0);
	expect("sub", O_RDONLY, SAFEFILE_CONFIG, "directory");
	assert_int_equal(
	    safefile_open("/dev/null", O_RDWR | O_APPEND, 0, SAFEFILE_LOG, why, sizeof(why)),
	    -SAFEFILE_REFUSED);
	assert_non_null(strstr(why, "character device"));
}

static void test_owner_and_mode_refused(void **state)
{
	make_file("foreign", 0600);
	assert_int_equal(chown(at("foreign"), 65534, 65534), 0);
	expect("foreign", O_RDWR | O_APPEND, SAFEFILE_LOG, "owned by uid 65534");
	expect("foreign", O_RDONLY, SAFEFILE_CONFIG, "owned by uid 65534");
	make_file("wide", 0666);
	expect("wide", O_RDWR | O_APPEND, SAFEFILE_LOG, "writable by others");
	expect("wide", O_RDONLY, SAFEFILE_CONFIG, "writable by others");
	make_file("group", 0660);
	expect("group", O_RDWR | O_APPEND, SAFEFILE_LOG, "writable by its group");
}

static void test_hard_link_refused(void **state)
{
	make_file("one", 0640);
	assert_int_equal(link(at("one"), at("two")), 0);
	expect("two", O_RDWR | O_APPEND, SAFEFILE_LOG, "2 hard links");
}

static void test_unsafe_directory_refused(void **state)
{
	assert_int_equal(mkdir(at("pub"), 0700), 0);
	assert_int_equal(chmod(at("pub"), 0777), 0);
	make_file("pub/f", 0640);
	expect("pub/f", O_RDWR | O_APPEND, SAFEFILE_LOG, "directory is writable by others");
	expect("pub/new", O_RDWR | O_CREAT, SAFEFILE_LOG, "directory is writable by others");
	assert_int_equal(access(at("pub/new"), F_OK), -1);
	/* sticky, like /tmp: fine */
	assert_int_equal(chmod(at("pub"), 01777), 0);
	expect("pub/f", O_RDWR | O_APPEND, SAFEFILE_LOG, NULL);
}

static void test_check_alone(void **state)
{
	struct stat st = {.st_mode = S_IFREG | 0640, .st_uid = 1000, .st_nlink = 1};
	struct stat d = {.st_mode = S_IFDIR | 0755};
	char why[160];

	/* the agent's own user may own its files; another non-root user may not */
	assert_int_equal(safefile_check(&st, &d, 1000, SAFEFILE_LOG, why, sizeof(why)), 0);
	assert_int_equal(safefile_check(&st, &d, 1001, SAFEFILE_LOG, why, sizeof(why)),
			 -SAFEFILE_REFUSED);
	assert_string_equal(why, "is owned by uid 1000, not by root or the agent's user");
	st.st_uid = 0;
	assert_int_equal(safefile_check(&st, NULL, 0, SAFEFILE_CONFIG, why, sizeof(why)), 0);
	st.st_mode = S_IFSOCK | 0600;
	assert_int_equal(safefile_check(&st, &d, 0, SAFEFILE_CONFIG, why, sizeof(why)),
			 -SAFEFILE_REFUSED);
	assert_string_equal(why, "is a socket, not a regular file");
	st.st_mode = S_IFBLK | 0600;
	safefile_check(&st, &d, 0, SAFEFILE_LOG, why, sizeof(why));
	assert_string_equal(why, "is a block device, not a regular file");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_safe_files_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_is_an_open_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_regular_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_owner_and_mode_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hard_link_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unsafe_directory_refused, setup, teardown),
	    cmocka_unit_test(test_check_alone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
