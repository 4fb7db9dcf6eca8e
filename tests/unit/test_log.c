/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Diagnostics: control bytes are escaped, so a message stays one line and nothing raw is shown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

static void test_escape(void **state)
{
	char out[64];

	assert_int_equal(log_escape(out, sizeof(out), "plain é"), strlen("plain é"));
	assert_string_equal(out, "plain é");
	log_escape(out, sizeof(out), "a\nb\x1b[2Jc\x7f\td");
	assert_string_equal(out, "a\\x0ab\\x1b[2Jc\\x7f\\x09d");
	/* cut to fit, never in the middle of an escape */
	assert_int_equal(log_escape(out, 8, "\x01\x02\x03"), 4);
	assert_string_equal(out, "\\x01");
}

static void test_one_line_on_stderr(void **state)
{
	char buf[256];
	int p[2], saved;
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	fflush(stderr);
	saved = dup(2);
	dup2(p[1], 2);
	pr_warn("config %s: bad", "x\ny\x1b");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "sockpulse: config x\\x0ay\\x1b: bad\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_one_line_on_stderr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
