/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Name tables: exact names at every valid index, NULL in holes and past the end. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sockpulse.h"
#include "names.h"

static void test_tcp_states(void **state)
{
	static const char *const want[] = {
		NULL,	     "established", "syn_sent", "syn_recv",   "fin_wait1",
		"fin_wait2", "time_wait",   "close",	"close_wait", "last_ack",
		"listen",    "closing",	    "new_syn_recv",
	};
	unsigned int i;

	assert_int_equal(sizeof(want) / sizeof(want[0]), SP_TCP_STATE_MAX);
	for (i = 0; i < SP_TCP_STATE_MAX; i++) {
		if (want[i])
			assert_string_equal(tcp_state_name(i), want[i]);
		else
			assert_null(tcp_state_name(i));
	}
	assert_null(tcp_state_name(SP_TCP_STATE_MAX));
	assert_null(tcp_state_name(255));
	assert_null(tcp_state_name(UINT_MAX));
}

static void test_failures(void **state)
{
	assert_null(failure_name(SP_FAIL_NONE));
	assert_string_equal(failure_name(SP_FAIL_REFUSED), "refused");
	assert_string_equal(failure_name(SP_FAIL_TIMEOUT), "timeout");
	assert_string_equal(failure_name(SP_FAIL_UNREACHABLE), "unreachable");
	assert_string_equal(failure_name(SP_FAIL_RESET), "reset");
	assert_string_equal(failure_name(SP_FAIL_CANCELED), "canceled");
	assert_string_equal(failure_name(SP_FAIL_LOCAL), "local");
	assert_null(failure_name(SP_FAIL_MAX));
	assert_null(failure_name(UINT_MAX));
}

static void test_errnos(void **state)
{
#define CHECK(e) assert_string_equal(errno_name(e), #e)
	CHECK(ECONNREFUSED);
	CHECK(ETIMEDOUT);
	CHECK(EHOSTUNREACH);
	CHECK(ENETUNREACH);
	CHECK(ECONNRESET);
	CHECK(EADDRNOTAVAIL);
	CHECK(EADDRINUSE);
	CHECK(ECONNABORTED);
	CHECK(EPIPE);
	CHECK(EACCES);
	CHECK(EPERM);
	CHECK(EINVAL);
	CHECK(EAFNOSUPPORT);
	CHECK(ENOBUFS);
	CHECK(ENOMEM);
	CHECK(EHOSTDOWN);
	CHECK(ENONET);
	CHECK(EPROTO);
	CHECK(EAGAIN);
	CHECK(ENETDOWN);
	CHECK(ECANCELED);
	CHECK(EINTR);
	CHECK(EISCONN);
	CHECK(EALREADY);
	CHECK(EINPROGRESS);
	CHECK(ENOPROTOOPT);
	CHECK(ENETRESET);
#undef CHECK
	assert_null(errno_name(0));
	assert_null(errno_name(-ECONNREFUSED));
	assert_null(errno_name(INT_MIN));
	assert_null(errno_name(4095));
	assert_null(errno_name(INT_MAX));
	assert_null(errno_name(EDOM)); /* a hole inside the table */
}

static void test_actions(void **state)
{
	static const char *const want[SP_ACT_MAX] = {
	    "tcp-state-change",
	    "tcp-activity",
	    "tcp-connect",
	    "tcp-keepalive-timeout",
	    "tcp-retransmit-timeout",
	    "tcp-reset",
	    "lease-suspect",
	    "lease-expired",
	    "lease-recovered",
	    "lease-closed",
	    "lease-lost",
	    "connect-failure-spike",
	    "events-lost",
	    "lease-hold",
	    "tcp-stuck",
	    "port-exhaustion-risk",
	};
	unsigned int i;

	for (i = 0; i < SP_ACT_MAX; i++)
		assert_string_equal(action_name(i), want[i]);
	assert_null(action_name(SP_ACT_MAX));
	assert_null(action_name(UINT_MAX));
}

static void test_rec_types(void **state)
{
	assert_null(rec_type_name(SP_REC_NONE));
	assert_string_equal(rec_type_name(SP_REC_STATE), "state");
	assert_string_equal(rec_type_name(SP_REC_CONNECT), "connect");
	assert_string_equal(rec_type_name(SP_REC_KEEPALIVE_TIMEOUT), "keepalive-timeout");
	assert_string_equal(rec_type_name(SP_REC_RETRANS_TIMEOUT), "retransmit-timeout");
	assert_string_equal(rec_type_name(SP_REC_RESET), "reset");
	assert_string_equal(rec_type_name(SP_REC_ACTIVITY), "activity");
	assert_null(rec_type_name(SP_REC_TYPE_MAX));
	assert_null(rec_type_name(UINT_MAX));
}

static void test_small_enums(void **state)
{
	assert_null(direction_name(SP_DIR_UNKNOWN));
	assert_string_equal(direction_name(SP_DIR_EGRESS), "egress");
	assert_string_equal(direction_name(SP_DIR_INGRESS), "ingress");
	assert_null(direction_name(SP_DIR_MAX));

	assert_null(reset_dir_name(SP_RST_NONE));
	assert_string_equal(reset_dir_name(SP_RST_RECEIVED), "received");
	assert_string_equal(reset_dir_name(SP_RST_SENT), "sent");
	assert_null(reset_dir_name(SP_RST_MAX));

	assert_string_equal(lease_kind_name(SP_LEASE_TRANSPORT), "transport");
	assert_string_equal(lease_kind_name(SP_LEASE_PAYLOAD), "payload");
	assert_null(lease_kind_name(SP_LEASE_KIND_MAX));

	assert_string_equal(connect_hook_name(SP_HOOK_NONE), "none");
	assert_string_equal(connect_hook_name(SP_HOOK_FENTRY), "fentry");
	assert_string_equal(connect_hook_name(SP_HOOK_KPROBE), "kprobe");
	assert_string_equal(connect_hook_name(SP_HOOK_TRACEPOINT), "tracepoint");
	assert_null(connect_hook_name(SP_HOOK_MAX));
	assert_null(connect_hook_name(UINT_MAX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_states), cmocka_unit_test(test_failures),
		cmocka_unit_test(test_errnos),	   cmocka_unit_test(test_actions),
		cmocka_unit_test(test_rec_types),  cmocka_unit_test(test_small_enums),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
