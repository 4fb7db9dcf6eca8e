// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Ring records: decode_record() on arbitrary bytes, then every event it accepts through both
 * formatters. An accepted event must hold only in-range values, format to one complete line
 * (JSON that json-c parses, '\n' last), never to half a line when the buffer is short, and read
 * back through the replay parser as the same event facts (replay's contract with watch --json).
 *
 * Input: the record bytes. A 136-byte input is a 128-byte record followed by the
 * CLOCK_REALTIME - CLOCK_MONOTONIC offset to decode it with (host order); other sizes use a
 * fixed offset, so the size checks see every length.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "sockpulse.h"
#include "decode.h"
#include "format.h"
#include "replay.h"

#include "fuzz_common.h"

#define DEFAULT_OFFSET 1764000000000000000LL /* late 2025, in ns */

static void check_ranges(const struct sp_event *ev)
{
	const struct sp_conn *c = &ev->conn;

	fuzz_assert((unsigned int)ev->action < SP_ACT_MAX, "action %d", ev->action);
	fuzz_assert(action_name(ev->action), "unnamed action %d", ev->action);
	fuzz_assert(ev->has_conn, "decoded event without connection");
	fuzz_assert(c->direction < SP_DIR_MAX, "direction %u", c->direction);
	fuzz_assert(c->src.family == 0 || c->src.family == AF_INET || c->src.family == AF_INET6,
		    "src family %u", c->src.family);
	fuzz_assert(c->dst.family == 0 || c->dst.family == AF_INET || c->dst.family == AF_INET6,
		    "dst family %u", c->dst.family);
	fuzz_assert(memchr(c->comm, '\0', sizeof(c->comm)), "comm not NUL-terminated");
	fuzz_assert(ev->error >= 0, "negative error %d", ev->error);
	switch (ev->action) {
	case SP_ACT_STATE_CHANGE:
		fuzz_assert(tcp_state_name(ev->state.new_state) && ev->state.new_state,
			    "new_state %u", ev->state.new_state);
		fuzz_assert(ev->state.old_state < SP_ST_MAX, "old_state %u", ev->state.old_state);
		break;
	case SP_ACT_CONNECT:
		fuzz_assert(ev->connect.failure < SP_FAIL_MAX, "failure %u", ev->connect.failure);
		fuzz_assert(ev->connect.success == (ev->connect.failure == SP_FAIL_NONE),
			    "success/failure disagree");
		break;
	case SP_ACT_RESET:
		fuzz_assert(ev->reset.direction == SP_RST_RECEIVED ||
				ev->reset.direction == SP_RST_SENT,
			    "reset direction %u", ev->reset.direction);
		fuzz_assert(!ev->reset.has_old_state ||
				(ev->reset.old_state && ev->reset.old_state < SP_ST_MAX),
			    "reset old_state %u", ev->reset.old_state);
		break;
	default:
		break;
	}
}

static bool same_addr(const struct sp_addr *a, const struct sp_addr *b)
{
	size_t len = a->family == AF_INET ? 4 : 16;

	return a->family == b->family && (!a->family || !memcmp(a->bytes, b->bytes, len));
}

/* The JSON line read back by the replay parser: the same engine input. */
static void check_replay(const char *line, size_t n, const struct sp_event *ev)
{
	struct sp_event back;
	int r = replay_parse_line(line, n - 1, &back);

	fuzz_assert(r == 0, "replay rejects a watch --json line (%d): %s", r, line);
	fuzz_assert(back.action == ev->action, "action %d read back as %d", ev->action,
		    back.action);
	fuzz_assert(back.mono_ns == ev->real_ns, "@timestamp %llu read back as %llu: %s",
		    (unsigned long long)ev->real_ns, (unsigned long long)back.mono_ns, line);
	fuzz_assert(back.conn.cookie == ev->conn.cookie, "cookie: %s", line);
	fuzz_assert(back.conn.netns == ev->conn.netns, "netns: %s", line);
	fuzz_assert(same_addr(&back.conn.src, &ev->conn.src), "source.ip: %s", line);
	fuzz_assert(same_addr(&back.conn.dst, &ev->conn.dst), "destination.ip: %s", line);
	fuzz_assert(back.has_duration == ev->has_duration &&
			(!ev->has_duration || back.duration_ns == ev->duration_ns),
		    "event.duration: %s", line);
	fuzz_assert(back.error == ev->error, "error %d read back as %d: %s", ev->error, back.error,
		    line);
	if (ev->action == SP_ACT_STATE_CHANGE)
		fuzz_assert(back.state.new_state == ev->state.new_state &&
				back.state.old_state == ev->state.old_state,
			    "states: %s", line);
	if (ev->action == SP_ACT_CONNECT)
		fuzz_assert(back.connect.success == ev->connect.success &&
				back.connect.failure == ev->connect.failure,
			    "connect outcome: %s", line);
	if (ev->action == SP_ACT_RESET)
		fuzz_assert(back.reset.direction == ev->reset.direction &&
				back.reset.has_old_state == ev->reset.has_old_state,
			    "reset: %s", line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct format_ctx ctx = {.connect_hook = "tracepoint"};
	char line[SP_LINE_MAX], small[SP_LINE_MAX];
	int64_t offset = DEFAULT_OFFSET;
	enum decode_result r;
	struct sp_event ev;
	size_t n, m;

	if (size == sizeof(struct sp_record) + sizeof(offset)) {
		memcpy(&offset, data + sizeof(struct sp_record), sizeof(offset));
		size = sizeof(struct sp_record);
	}
	r = decode_record(data, size, offset, &ev);
	fuzz_assert(decode_result_name(r), "unnamed decode result %d", r);
	if (r != DECODE_OK) {
		fuzz_assert(size == sizeof(struct sp_record) || r != DECODE_FIELD,
			    "field error on a record of the wrong size");
		return 0;
	}
	fuzz_assert(size == sizeof(struct sp_record), "accepted %zu bytes", size);
	check_ranges(&ev);

	n = format_json(line, sizeof(line), &ev, size, &ctx);
	fuzz_check_json_line(line, n, action_name(ev.action));
	/* One byte short (the NUL): nothing, never half a line. Exactly enough: the same line. */
	m = format_json(small, n, &ev, size, &ctx);
	fuzz_assert(m == 0, "format_json wrote %zu bytes into %zu", m, n);
	m = format_json(small, n + 1, &ev, size, &ctx);
	fuzz_assert(m == n && !memcmp(small, line, n + 1), "format_json differs at cap n + 1");
	check_replay(line, n, &ev);

	n = format_text(line, sizeof(line), &ev);
	fuzz_check_text_line(line, n);
	m = format_text(small, n, &ev);
	fuzz_assert(m == 0, "format_text wrote %zu bytes into %zu", m, n);
	return 0;
}
