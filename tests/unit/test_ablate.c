/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The benchmark's part switches: the parser, and which programs each part keeps unloaded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ablate.h"

static void test_parse(void **state)
{
	const char *bad = NULL;
	unsigned int mask = 99;
	int bad_len = 0;

	assert_int_equal(ablate_parse("", &mask, &bad, &bad_len), 0);
	assert_int_equal(mask, 0);
	assert_int_equal(ablate_parse("engine", &mask, &bad, &bad_len), 0);
	assert_int_equal(mask, ABLATE_ENGINE);
	assert_int_equal(ablate_parse("syscalls,tcp_probe,engine,format,write", &mask, &bad,
				      &bad_len),
			 0);
	assert_int_equal(mask, ABLATE_SYSCALLS | ABLATE_TCP_PROBE | ABLATE_ENGINE |
				       ABLATE_FORMAT | ABLATE_WRITE);
}

static void test_parse_rejects(void **state)
{
	static const struct {
		const char *in;
		const char *bad;
	} cases[] = {
		{ "storage", "storage" },	/* build-time only */
		{ "engine,formats", "formats" }, /* no prefix matches */
		{ "engin", "engin" },
		{ "engine,,write", "" },	/* empty part */
		{ "write,", NULL },		/* a trailing comma is allowed */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *bad = NULL;
		unsigned int mask;
		int bad_len = -1, err;

		err = ablate_parse(cases[i].in, &mask, &bad, &bad_len);
		if (!cases[i].bad) {
			assert_int_equal(err, 0);
			continue;
		}
		assert_int_equal(err, -EINVAL);
		assert_int_equal(bad_len, (int)strlen(cases[i].bad));
		assert_memory_equal(bad, cases[i].bad, bad_len);
	}
}

static void test_progs(void **state)
{
	assert_true(ablate_prog_off(ABLATE_SYSCALLS, "sp_sys_enter_connect"));
	assert_true(ablate_prog_off(ABLATE_SYSCALLS, "sp_sys_exit_accept4"));
	assert_true(ablate_prog_off(ABLATE_SYSCALLS, "sp_fexit_connect"));
	assert_false(ablate_prog_off(ABLATE_SYSCALLS, "sp_tcp_probe"));
	assert_false(ablate_prog_off(ABLATE_SYSCALLS, "sp_state"));
	assert_true(ablate_prog_off(ABLATE_TCP_PROBE, "sp_tcp_probe"));
	assert_false(ablate_prog_off(ABLATE_TCP_PROBE, "sp_sys_enter_connect"));
	assert_false(ablate_prog_off(ABLATE_ENGINE | ABLATE_FORMAT | ABLATE_WRITE, "sp_tcp_probe"));
	assert_false(ablate_prog_off(0, "sp_tcp_probe"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_progs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
