/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Configuration file: settings reach the option parser in order with their values, comments
 * and blanks are skipped, booleans map to flags, and every kind of bad line is refused with its
 * line number. Also sd_notify by hand: the datagrams systemd would receive.
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
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "sdnotify.h"

static const struct option opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "log", required_argument, NULL, 1 },
	{ "log-keep", required_argument, NULL, 2 },
	{ "duration", required_argument, NULL, 3 },
	{ "config", required_argument, NULL, 4 },
	{ "help", no_argument, NULL, 'h' },
	{},
};
static const char *const forbidden[] = {"config", "help", NULL};

struct seen {
	char log[4096];
	int n;
	char names[16][32];
	char values[16][128];
	int fail_on; /* setting index the callback rejects, -1 none */
};

static int apply(void *ctx, const char *name, const char *value)
{
	struct seen *s = ctx;

	if (s->n == s->fail_on)
		return 1;
	assert_true(s->n < 16);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	snprintf(s->values[s->n], sizeof(s->values[0]), "%s", value ? value : "(flag)");
	s->n++;
	return 0;
}

static char path[64];

static void write_file(const char *text)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/sp-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Loads @text with stderr captured into *err (the "FILE:LINE: why" line). */
static int load(const char *text, struct seen *s, char *err, size_t cap)
{
	char where[512];
	int saved, pipefd[2], ret;
	ssize_t n;

	memset(s, 0, sizeof(*s));
	s->fail_on = -1;
	write_file(text);
	assert_int_equal(pipe(pipefd), 0);
	fflush(stderr);
	saved = dup(2);
	dup2(pipefd[1], 2);
	ret = config_load(path, opts, forbidden, apply, s, where, sizeof(where));
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(pipefd[1]);
	n = read(pipefd[0], err, cap - 1);
	err[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	assert_string_equal(where, ""); /* the context is cleared afterwards */
	unlink(path);
	return ret;
}

static void test_good(void **state)
{
	struct seen s;
	char err[512];

	assert_int_equal(load("# sockpulse agent\n"
			      "\n"
			      "log = /var/log/x/events.jsonl\n"
			      "  log-keep=3   \n"
			      "\t# indented comment\n"
			      "json = yes\n"
			      "json = false\n"
			      "duration = \"1m \"\n"
			      "log = /path/with = sign # not a comment\n",
			      &s, err, sizeof(err)),
			 0);
	assert_string_equal(err, "");
	assert_int_equal(s.n, 5);
	assert_string_equal(s.names[0], "log");
	assert_string_equal(s.values[0], "/var/log/x/events.jsonl");
	assert_string_equal(s.names[1], "log-keep");
	assert_string_equal(s.values[1], "3");
	assert_string_equal(s.names[2], "json");
	assert_string_equal(s.values[2], "(flag)"); /* true: the flag; false: nothing */
	assert_string_equal(s.names[3], "duration");
	assert_string_equal(s.values[3], "1m ");
	assert_string_equal(s.values[4], "/path/with = sign # not a comment");

	/* no final newline, CR-free, empty file */
	assert_int_equal(load("log-keep = 4", &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(load("", &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 0);
}

static void bad(const char *text, const char *want)
{
	struct seen s;
	char err[512];

	assert_int_not_equal(load(text, &s, err, sizeof(err)), 0);
	if (!strstr(err, want))
		fail_msg("for %s: stderr '%s' lacks '%s'", text, err, want);
}

static void test_bad(void **state)
{
	char big[CONFIG_LINE_MAX + 64];

	bad("log = a\nnonsense = 1\n", ":2: unknown key 'nonsense'");
	bad("\n\n# c\njust words\n", ":4: expected 'key = value', got 'just words'");
	bad("= value\n", ":1: missing key before '='");
	bad("json = maybe\n", ":1: 'json' takes true or false");
	bad("log =\n", ":1: 'log' needs a value");
	bad("log = \"a\n", ":1: unbalanced quotes");
	bad("config = /etc/other\n", ":1: unknown key 'config'");
	bad("help = true\n", ":1: unknown key 'help'");
	bad("--log = x\n", ":1: unknown key '--log'");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "log = ", 6);
	bad(big, ":1: line longer than");

	/* a value the option parser refuses: loading stops there, the error is the caller's */
	{
		struct seen s;
		char where[512];

		memset(&s, 0, sizeof(s));
		s.fail_on = 1;
		write_file("log = a\nlog-keep = x\nlog = b\n");
		assert_int_equal(
		    config_load(path, opts, forbidden, apply, &s, where, sizeof(where)), -EINVAL);
		assert_int_equal(s.n, 1);
		unlink(path);
	}
	/* a missing file */
	{
		struct seen s;
		char where[64];

		assert_int_equal(config_load("/nonexistent/sockpulse.conf", opts, forbidden, apply,
					     &s, where, sizeof(where)),
				 -ENOENT);
	}
}

static void test_find_arg(void **state)
{
	char *a1[] = {"sockpulse", "agent", "--log", "x", "--config", "/etc/s.conf", NULL};
	char *a2[] = {"sockpulse", "--config=/c", NULL};
	char *a3[] = {"sockpulse", "--config", NULL};
	char *a4[] = {"sockpulse", "--", "--config", "x", NULL};

	assert_string_equal(config_find_arg(6, a1), "/etc/s.conf");
	assert_string_equal(config_find_arg(2, a2), "/c");
	assert_null(config_find_arg(2, a3));
	assert_null(config_find_arg(4, a4));
}

static void test_sdnotify(void **state)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct sdnotify sd;
	char buf[256], env[64];
	int rx;
	ssize_t n;

	/* not under systemd: everything is a no-op */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(sdnotify_open(&sd), 0);
	assert_int_equal(sd.fd, -1);
	assert_int_equal(sdnotify_send(&sd, "READY=1"), 0);
	sdnotify_close(&sd);

	/* an abstract socket, as systemd may use; watchdog for our pid */
	rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(rx >= 0);
	snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "sp-notify-%d", getpid());
	assert_int_equal(
	    bind(rx, (struct sockaddr *)&addr,
		 offsetof(struct sockaddr_un, sun_path) + 1 + strlen(addr.sun_path + 1)),
	    0);
	snprintf(env, sizeof(env), "@%s", addr.sun_path + 1);
	setenv("NOTIFY_SOCKET", env, 1);
	setenv("WATCHDOG_USEC", "2000000", 1);
	snprintf(buf, sizeof(buf), "%d", getpid());
	setenv("WATCHDOG_PID", buf, 1);
	assert_int_equal(sdnotify_open(&sd), 0);
	assert_true(sd.fd >= 0);
	assert_true(sd.watchdog_ns == 2000000000ULL);
	assert_int_equal(sdnotify_send(&sd, "READY=1\nSTATUS=ok"), 0);
	n = recv(rx, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "READY=1\nSTATUS=ok");
	sdnotify_watchdog(&sd, 5000000000ULL);
	n = recv(rx, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "WATCHDOG=1");
	sdnotify_watchdog(&sd, 5500000000ULL); /* less than half the interval later: nothing */
	assert_true(recv(rx, buf, sizeof(buf), 0) < 0);
	sdnotify_watchdog(&sd, 6000000000ULL);
	assert_true(recv(rx, buf, sizeof(buf), 0) > 0);
	sdnotify_close(&sd);

	/* the watchdog of another process is not ours */
	setenv("WATCHDOG_PID", "1", 1);
	assert_int_equal(sdnotify_open(&sd), 0);
	assert_true(sd.watchdog_ns == 0);
	sdnotify_close(&sd);

	/* a relative name is refused */
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(sdnotify_open(&sd), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	close(rx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_find_arg),
	    cmocka_unit_test(test_sdnotify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
