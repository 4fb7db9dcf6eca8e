/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Command-line value parsers: good values exactly, and every class of bad input rejected. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "parse.h"

#define NS_PER_S 1000000000ULL

static void dur_ok(const char *s, uint64_t want)
{
	uint64_t ns = 12345;

	if (parse_duration(s, &ns) != 0)
		fail_msg("parse_duration(\"%s\") rejected", s);
	if (ns != want)
		fail_msg("parse_duration(\"%s\") = %llu, want %llu", s, (unsigned long long)ns,
			 (unsigned long long)want);
}

static void dur_bad(const char *s, int want_err)
{
	uint64_t ns = 12345;
	int err = parse_duration(s, &ns);

	if (err != want_err)
		fail_msg("parse_duration(\"%s\") = %d, want %d", s, err, want_err);
	assert_int_equal(ns, 12345); /* untouched */
}

static void test_double(void **state)
{
	double v = -1;

	assert_int_equal(parse_double("8", 0, 1000, &v), 0);
	assert_true(v == 8.0);
	assert_int_equal(parse_double("0.25", 0, 1, &v), 0);
	assert_true(v == 0.25);
	assert_int_equal(parse_double("1e-3", 0, 1, &v), 0);
	assert_true(v == 0.001);
	v = 7;
	assert_int_equal(parse_double("", 0, 1, &v), -EINVAL);
	assert_int_equal(parse_double("-1", -5, 1, &v), -EINVAL);
	assert_int_equal(parse_double(" 1", 0, 1, &v), -EINVAL);
	assert_int_equal(parse_double("1x", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_double("nan", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_double("inf", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_double("1e999", 0, 10, &v), -ERANGE);
	assert_int_equal(parse_double("1.5", 0, 1, &v), -ERANGE);
	assert_true(v == 7);
}

static void test_duration_good(void **state)
{
	dur_ok("10ns", 10);
	dur_ok("250us", 250000);
	dur_ok("500ms", 500000000);
	dur_ok("2s", 2 * NS_PER_S);
	dur_ok("2m", 120 * NS_PER_S);
	dur_ok("1h", 3600 * NS_PER_S);
	dur_ok("30", 30 * NS_PER_S);
	dur_ok("0", 0);
	dur_ok("0s", 0);
	dur_ok("0.5", NS_PER_S / 2);
	dur_ok("1.5s", 1500000000);
	dur_ok("0.1s", 100000000); /* exact, not 99999999 as binary floating point would give */
	dur_ok("1.5ms", 1500000);
	dur_ok("0.25h", 900 * NS_PER_S);
	dur_ok("1.5ns", 1); /* below a nanosecond: truncated */
	dur_ok("007s", 7 * NS_PER_S);
	dur_ok("0.000000001", 1);
	dur_ok("1.0000000000000000000000001s", NS_PER_S); /* long fractions are fine */
	dur_ok("18446744073709551615ns", UINT64_MAX);
	dur_ok("18446744073.709551615s", UINT64_MAX);
}

static void test_duration_bad(void **state)
{
	dur_bad("", -EINVAL);
	dur_bad(NULL, -EINVAL);
	dur_bad("-1s", -EINVAL);
	dur_bad("-0", -EINVAL);
	dur_bad("+1s", -EINVAL);
	dur_bad(" 1s", -EINVAL);
	dur_bad("1s ", -EINVAL);
	dur_bad("1 s", -EINVAL);
	dur_bad("abc", -EINVAL);
	dur_bad("s", -EINVAL);
	dur_bad("1x", -EINVAL);
	dur_bad("1sec", -EINVAL);
	dur_bad("1S", -EINVAL);
	dur_bad("1ss", -EINVAL);
	dur_bad("1s1", -EINVAL);
	dur_bad("1.s", -EINVAL);
	dur_bad(".5s", -EINVAL);
	dur_bad("1..5s", -EINVAL);
	dur_bad("1.5.s", -EINVAL);
	dur_bad("1e3", -EINVAL);
	dur_bad("0x10", -EINVAL);
	dur_bad("inf", -EINVAL);
	dur_bad("nan", -EINVAL);
	dur_bad("18446744073709551616ns", -ERANGE); /* 2^64 */
	dur_bad("99999999999999999999999", -ERANGE);
	dur_bad("18446744074s", -ERANGE);
	dur_bad("18446744073.709551616s", -ERANGE);
	dur_bad("5124096h", -ERANGE);
}

static void ports_ok(const char *s, uint32_t count)
{
	struct port_set set;

	memset(&set, 0, sizeof(set));
	if (parse_port_list(s, &set) != 0)
		fail_msg("parse_port_list(\"%s\") rejected", s);
	if (set.count != count)
		fail_msg("parse_port_list(\"%s\") count %u, want %u", s, set.count, count);
}

static void ports_bad(const char *s)
{
	static struct port_set set, before;
	int err;

	memset(&set, 0, sizeof(set));
	assert_int_equal(parse_port_list("22", &set), 0);
	before = set;
	err = parse_port_list(s, &set);
	if (err != -EINVAL)
		fail_msg("parse_port_list(\"%s\") = %d, want -EINVAL", s, err);
	if (memcmp(&set, &before, sizeof(set)))
		fail_msg("parse_port_list(\"%s\") changed the set on error", s);
}

static void test_ports_good(void **state)
{
	struct port_set set;

	memset(&set, 0, sizeof(set));
	assert_int_equal(parse_port_list("80,443", &set), 0);
	assert_int_equal(set.count, 2);
	assert_true(port_set_has(&set, 80));
	assert_true(port_set_has(&set, 443));
	assert_false(port_set_has(&set, 81));
	assert_false(port_set_has(&set, 0));

	/* adds to what is there; overlap counts once */
	assert_int_equal(parse_port_list("8000-8100,80,8050", &set), 0);
	assert_int_equal(set.count, 2 + 101);
	assert_true(port_set_has(&set, 8000));
	assert_true(port_set_has(&set, 8100));
	assert_false(port_set_has(&set, 7999));
	assert_false(port_set_has(&set, 8101));

	memset(&set, 0, sizeof(set));
	assert_int_equal(parse_port_list("1-65535", &set), 0);
	assert_int_equal(set.count, 65535);
	assert_false(port_set_has(&set, 0));
	assert_true(port_set_has(&set, 65535));

	ports_ok("1", 1);
	ports_ok("65535", 1);
	ports_ok("9090-9090", 1);
	ports_ok("80,80,80", 1);
	ports_ok("080", 1);
	ports_ok("10-20,15-25", 16);
}

static void test_ports_bad(void **state)
{
	ports_bad("");
	ports_bad("0");
	ports_bad("65536");
	ports_bad("99999999999999999999999");
	ports_bad("-1");
	ports_bad("-80");
	ports_bad("+80");
	ports_bad("80,,81");
	ports_bad(",80");
	ports_bad("80,");
	ports_bad(",");
	ports_bad("80 ");
	ports_bad(" 80");
	ports_bad("80, 81");
	ports_bad("http");
	ports_bad("80x");
	ports_bad("0x50");
	ports_bad("81-80");
	ports_bad("0-80");
	ports_bad("80-65536");
	ports_bad("80-");
	ports_bad("-");
	ports_bad("80--90");
	ports_bad("80-90-100");
	ports_bad("1,2,3,70000"); /* a late bad item: nothing of the list is applied */
	assert_int_equal(parse_port_list(NULL, &(struct port_set){ .count = 0 }), -EINVAL);
}

static void test_u64(void **state)
{
	uint64_t v = 7;

	assert_int_equal(parse_u64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_u64("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);

	v = 7;
	assert_int_equal(parse_u64("11", 0, 10, &v), -ERANGE);
	assert_int_equal(parse_u64("4", 5, 10, &v), -ERANGE);
	assert_int_equal(parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_u64("", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("-1", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(parse_u64("+1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64(" 1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("1 ", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("1a", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u64("abc", 0, 10, &v), -EINVAL);
	assert_int_equal(v, 7);
}

static void test_size(void **state)
{
	uint64_t b = 7;

	assert_int_equal(parse_size("4096", &b), 0);
	assert_int_equal(b, 4096);
	assert_int_equal(parse_size("4096B", &b), 0);
	assert_int_equal(b, 4096);
	assert_int_equal(parse_size("64K", &b), 0);
	assert_int_equal(b, 65536);
	assert_int_equal(parse_size("64KiB", &b), 0);
	assert_int_equal(b, 65536);
	assert_int_equal(parse_size("64KB", &b), 0);
	assert_int_equal(b, 65536);
	assert_int_equal(parse_size("8M", &b), 0);
	assert_int_equal(b, 8ULL << 20);
	assert_int_equal(parse_size("1G", &b), 0);
	assert_int_equal(b, 1ULL << 30);
	assert_int_equal(parse_size("2T", &b), 0);
	assert_true(b == 2ULL << 40);
	assert_int_equal(parse_size("16777215T", &b), 0);
	assert_true(b == 16777215ULL << 40);

	b = 7;
	assert_int_equal(parse_size("", &b), -EINVAL);
	assert_int_equal(parse_size("K", &b), -EINVAL);
	assert_int_equal(parse_size("-1K", &b), -EINVAL);
	assert_int_equal(parse_size("1X", &b), -EINVAL);
	assert_int_equal(parse_size("1KiBB", &b), -EINVAL);
	assert_int_equal(parse_size("1iB", &b), -EINVAL);
	assert_int_equal(parse_size("1.5M", &b), -EINVAL);
	assert_int_equal(parse_size("1 M", &b), -EINVAL);
	assert_int_equal(parse_size("16777216T", &b), -ERANGE);
	assert_int_equal(parse_size("18446744073709551616", &b), -ERANGE);
	assert_int_equal(b, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_double),
		cmocka_unit_test(test_duration_good), cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_ports_good),    cmocka_unit_test(test_ports_bad),
		cmocka_unit_test(test_u64),	      cmocka_unit_test(test_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
