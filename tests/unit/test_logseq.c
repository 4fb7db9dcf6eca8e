/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * event.sequence of the log: dropped lines consume numbers, the log-gap line names the gap and
 * why, the log-start line carries a version-4 agent.ephemeral_id and the file's last number, and
 * the last number of a file is found from its end (whole lines only).
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
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "logseq.h"

static const uint8_t rnd[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* The value at a dotted @path of the one JSON line @line (which must end in '\n'). */
static struct json_object *get(struct json_object *root, const char *path)
{
	char key[64];
	const char *dot;
	struct json_object *o = root;

	while (o && *path) {
		dot = strchr(path, '.');
		snprintf(key, sizeof(key), "%.*s", dot ? (int)(dot - path) : (int)strlen(path),
			 path);
		if (!json_object_object_get_ex(o, key, &o))
			return NULL;
		path = dot ? dot + 1 : "";
	}
	return o;
}

static struct json_object *parse_line(const char *line, size_t n)
{
	struct json_object *root;

	assert_true(n > 0);
	assert_int_equal(line[n - 1], '\n');
	assert_null(memchr(line, '\n', n - 1));
	root = json_tokener_parse(line);
	assert_non_null(root);
	return root;
}

static void test_numbers_and_gap(void **state)
{
	struct logseq ls;
	struct json_object *root;
	char line[LOGSEQ_LINE_MAX];
	size_t n;

	logseq_init(&ls, 0, rnd);
	assert_int_equal(logseq_peek(&ls), 1);
	logseq_take(&ls);
	logseq_take(&ls);
	assert_false(logseq_gap_pending(&ls));
	logseq_drop(&ls, 0);	  /* 3: the file was slow */
	logseq_drop(&ls, ENOSPC); /* 4: then full */
	logseq_drop(&ls, 0);	  /* 5: the error is remembered */
	assert_true(logseq_gap_pending(&ls));
	assert_int_equal(logseq_peek(&ls), 6);
	n = logseq_format_gap(&ls, line, sizeof(line), 1000000000ULL);
	root = parse_line(line, n);
	assert_string_equal(json_object_get_string(get(root, "event.action")), "log-gap");
	assert_int_equal(json_object_get_int64(get(root, "event.sequence")), 6);
	assert_string_equal(json_object_get_string(get(root, "event.reason")), "queue-full");
	assert_string_equal(json_object_get_string(get(root, "error.message")),
			    "No space left on device");
	assert_int_equal(json_object_get_int64(get(root, "sockpulse.gap.dropped")), 3);
	assert_int_equal(json_object_get_int64(get(root, "sockpulse.gap.first_sequence")), 3);
	assert_int_equal(json_object_get_int64(get(root, "sockpulse.gap.last_sequence")), 5);
	assert_string_equal(json_object_get_string(get(root, "@timestamp")),
			    "1970-01-01T00:00:01.000000000Z");
	json_object_put(root);
	logseq_take(&ls);
	logseq_gap_done(&ls);
	assert_false(logseq_gap_pending(&ls));
	assert_int_equal(logseq_peek(&ls), 7);
	/* a second gap starts afresh; without an error there is no error.message */
	logseq_drop(&ls, 0);
	n = logseq_format_gap(&ls, line, sizeof(line), 0);
	root = parse_line(line, n);
	assert_int_equal(json_object_get_int64(get(root, "sockpulse.gap.first_sequence")), 7);
	assert_int_equal(json_object_get_int64(get(root, "sockpulse.gap.dropped")), 1);
	assert_null(get(root, "error"));
	json_object_put(root);
	assert_int_equal(ls.dropped, 4);
	/* too small a buffer: nothing, not a cut line */
	assert_int_equal(logseq_format_gap(&ls, line, 40, 0), 0);
}

static void test_start_line(void **state)
{
	struct logseq ls, other;
	struct json_object *root;
	char line[LOGSEQ_LINE_MAX];
	size_t n;

	logseq_init(&ls, 41, rnd);
	assert_string_equal(ls.ephemeral_id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
	n = logseq_format_start(&ls, line, sizeof(line), 0, "1.2.3", 41);
	root = parse_line(line, n);
	assert_string_equal(json_object_get_string(get(root, "event.action")), "log-start");
	assert_int_equal(json_object_get_int64(get(root, "event.sequence")), 42);
	assert_int_equal(json_object_get_int64(get(root, "sockpulse.log.previous_sequence")), 41);
	assert_int_equal(json_object_get_int64(get(root, "sockpulse.schema")), 1);
	assert_string_equal(json_object_get_string(get(root, "agent.ephemeral_id")),
			    ls.ephemeral_id);
	assert_string_equal(json_object_get_string(get(root, "agent.version")), "1.2.3");
	json_object_put(root);
	/* a new file: no previous_sequence */
	memset(&other, 0, sizeof(other));
	logseq_init(&other, 0, (const uint8_t[16]){0});
	assert_string_equal(other.ephemeral_id, "00000000-0000-4000-8000-000000000000");
	n = logseq_format_start(&other, line, sizeof(line), 0, "1.2.3", 0);
	root = parse_line(line, n);
	assert_int_equal(json_object_get_int64(get(root, "event.sequence")), 1);
	assert_null(get(root, "sockpulse.log"));
	json_object_put(root);
}

static int file_with(const char *text, size_t len)
{
	char path[] = "/tmp/sp-logseq-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	return fd;
}

static void test_last_in_file(void **state)
{
	static const char two[] = "{\"event\":{\"sequence\":7}}\n{\"event\":{\"sequence\":8}}\n";
	static const char tail[] = "{\"event\":{\"sequence\":9}}\nnot json\n{\"event\":{}}\n";
	uint64_t seq = 0;
	char *big;
	size_t off = 0;
	int fd;

	fd = file_with("", 0);
	assert_int_equal(logseq_last_in_fd(fd, &seq), -ENOENT);
	close(fd);
	fd = file_with(two, strlen(two));
	assert_int_equal(logseq_last_in_fd(fd, &seq), 0);
	assert_int_equal(seq, 8);
	close(fd);
	/* lines without a sequence at the end are passed over */
	fd = file_with(tail, strlen(tail));
	assert_int_equal(logseq_last_in_fd(fd, &seq), 0);
	assert_int_equal(seq, 9);
	close(fd);
	/* a file much larger than the part that is read: its last line still counts */
	big = malloc(4 * LOGSEQ_TAIL_BYTES);
	assert_non_null(big);
	for (unsigned int i = 1; off + 64 < 4 * LOGSEQ_TAIL_BYTES; i++)
		off += (size_t)sprintf(big + off, "{\"event\":{\"sequence\":%u},\"x\":1}\n", i);
	fd = file_with(big, off);
	assert_int_equal(logseq_last_in_fd(fd, &seq), 0);
	assert_true(seq > 5000);
	close(fd);
	/* one line longer than the tail: not whole, no number */
	memset(big, 'x', 2 * LOGSEQ_TAIL_BYTES);
	memcpy(big, "{\"event\":{\"sequence\":3},\"p\":\"", 30);
	memcpy(big + 2 * LOGSEQ_TAIL_BYTES - 3, "\"}\n", 3);
	fd = file_with(big, 2 * LOGSEQ_TAIL_BYTES);
	assert_int_equal(logseq_last_in_fd(fd, &seq), -ENOENT);
	close(fd);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_numbers_and_gap),
	    cmocka_unit_test(test_start_line),
	    cmocka_unit_test(test_last_in_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
