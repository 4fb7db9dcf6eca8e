/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * libbpf's warnings about a failed load: the failing program and the verifier's verdict (its
 * last line that is not a statistic) are picked out of the messages libbpf prints.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bpfmsg.h"

/* The shape libbpf 1.x prints when the verifier rejects a program. */
static const char rejected[] =
	"libbpf: prog 'sp_state': -- BEGIN PROG LOAD LOG --\n"
	"0: R1=ctx() R10=fp0\n"
	"; int BPF_PROG(sp_state, const struct sock *sk, int oldstate, int newstate)\n"
	"0: (79) r6 = *(u64 *)(r1 +0)         ; R1=ctx() R6_w=ptr_sock()\n"
	"117: (61) r2 = *(u32 *)(r7 +0)\n"
	"R7 invalid mem access 'scalar'\n"
	"\n"
	"processed 456 insns (limit 1000000) max_states_per_insn 2 total_states 30 peak_states 30 "
	"mark_read 8\n"
	"-- END PROG LOAD LOG --\n";

static void test_verifier_rejection(void **state)
{
	struct bpfmsg m;

	bpfmsg_reset(&m);
	bpfmsg_note(&m, "libbpf: prog 'sp_state': BPF program load failed: Permission denied\n");
	assert_string_equal(m.prog, "sp_state");
	assert_string_equal(m.verdict, "");
	assert_string_equal(m.warn, "prog 'sp_state': BPF program load failed: Permission denied");
	bpfmsg_note(&m, rejected);
	assert_string_equal(m.prog, "sp_state");
	assert_string_equal(m.verdict, "R7 invalid mem access 'scalar'");
	bpfmsg_note(&m, "libbpf: prog 'sp_state': failed to load: -13\n");
	bpfmsg_note(&m, "libbpf: failed to load object 'sockpulse_bpf'\n");
	assert_string_equal(m.prog, "sp_state");
	assert_string_equal(m.verdict, "R7 invalid mem access 'scalar'");
	assert_string_equal(m.warn, "failed to load object 'sockpulse_bpf'");
	bpfmsg_reset(&m);
	assert_string_equal(m.prog, "");
	assert_string_equal(m.verdict, "");
}

/* A refusal without a log (EPERM before the verifier ran): the program, no verdict. */
static void test_refusal_without_log(void **state)
{
	struct bpfmsg m;

	bpfmsg_reset(&m);
	bpfmsg_note(&m, "libbpf: prog 'sp_fentry_v4_connect': BPF program load failed: "
			"Operation not permitted\n");
	bpfmsg_note(&m, "libbpf: prog 'sp_other': failed to load: -1\n");
	assert_string_equal(m.prog, "sp_fentry_v4_connect"); /* the first one */
	assert_string_equal(m.verdict, "");
	/* a warning that names no failing program leaves it unset */
	bpfmsg_reset(&m);
	bpfmsg_note(&m, "libbpf: failed to open '/sys/bus/event_source/devices/kprobe/type': No "
			"such file or directory\n");
	assert_string_equal(m.prog, "");
}

static void test_verdict(void **state)
{
	static const char stats[] = "R1 type=scalar expected=fp\n"
				    "verification time 12 usec\n"
				    "stack depth 64\n"
				    "processed 3 insns (limit 1000000)\n\n  \n";
	char out[BPFMSG_LINE_MAX];
	char small[8];

	assert_int_equal(bpfmsg_verdict(stats, strlen(stats), out, sizeof(out)), 0);
	assert_string_equal(out, "R1 type=scalar expected=fp");
	assert_int_equal(bpfmsg_verdict("", 0, out, sizeof(out)), -ENOENT);
	assert_string_equal(out, "");
	assert_int_equal(bpfmsg_verdict("\n\nprocessed 1 insns\n", 19, out, sizeof(out)), -ENOENT);
	assert_int_equal(bpfmsg_verdict("  back-edge from insn 9 to 4\r\n", 30, out, sizeof(out)),
			 0);
	assert_string_equal(out, "back-edge from insn 9 to 4");
	/* only @len bytes are read, and the line is cut to fit */
	assert_int_equal(bpfmsg_verdict("first\nsecond", 5, out, sizeof(out)), 0);
	assert_string_equal(out, "first");
	assert_int_equal(bpfmsg_verdict("a long verdict line", 19, small, sizeof(small)), 0);
	assert_string_equal(small, "a long ");
}

/* A log without its end marker (cut short) still gives its last line. */
static void test_unterminated_log(void **state)
{
	struct bpfmsg m;

	bpfmsg_reset(&m);
	bpfmsg_note(&m, "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\nunreachable insn 7\n");
	assert_string_equal(m.prog, "p");
	assert_string_equal(m.verdict, "unreachable insn 7");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verifier_rejection),
		cmocka_unit_test(test_refusal_without_log),
		cmocka_unit_test(test_verdict),
		cmocka_unit_test(test_unterminated_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
