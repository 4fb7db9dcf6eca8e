// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket-table walk records: audit_decode() on arbitrary bytes, 112 at a time (the first two
 * bytes pick HZ and the lease TTL the suggestions aim at). Every accepted socket must hold
 * in-range values, its detection times must follow the kernel's arithmetic (idle detection at
 * least the idle time, never shorter than the first probe; suggestions within their target),
 * its JSON line must parse, and the rollup and both reports must hold whatever was added.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "audit.h"
#include "sockpulse.h"

#include "fuzz_common.h"

FUZZ_CHECKER static void check_sock(const struct audit_sock *s, uint64_t target_ms)
{
	uint64_t idle = ka_idle_detect_ms(&s->ka), busy = ka_busy_detect_ms(&s->ka);
	struct ka_settings sug;
	struct json_object *o;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	uint64_t seq = 0;

	fuzz_assert(s->state && s->state < SP_ST_MAX, "state %u", s->state);
	fuzz_assert(s->conn.direction < SP_DIR_MAX, "direction %u", s->conn.direction);
	fuzz_assert(s->conn.src.family == 0 || s->conn.src.family == AF_INET ||
			s->conn.src.family == AF_INET6,
		    "family %u", s->conn.src.family);
	if (s->ka.enabled) {
		fuzz_assert(idle != KA_NEVER && idle >= s->ka.idle_ms, "idle detection %llu < %u",
			    (unsigned long long)idle, s->ka.idle_ms);
		if (s->ka.user_timeout_ms && s->ka.intvl_ms)
			fuzz_assert(idle >= (uint64_t)s->ka.idle_ms + s->ka.intvl_ms,
				    "user timeout detection before the first probe");
	} else {
		fuzz_assert(idle == KA_NEVER, "detection without keepalive");
	}
	fuzz_assert(busy > 0, "zero busy detection");
	ka_suggest(target_ms, &sug);
	fuzz_assert((uint64_t)sug.idle_ms + (uint64_t)sug.probes * sug.intvl_ms <=
			(target_ms < 4000 ? 4000 : target_ms),
		    "suggestion misses its target %llu", (unsigned long long)target_ms);
	f = open_memstream(&text, &len);
	fuzz_assert(f, "open_memstream");
	audit_print_sock_json(f, s, target_ms, 1764000000000000000ULL, &seq);
	audit_print_sock_text(f, s, target_ms);
	fclose(f);
	fuzz_assert(len && strchr(text, '\n'), "no line");
	*strchr(text, '\n') = '\0';
	o = json_tokener_parse(text);
	fuzz_assert(o, "not JSON: %s", text);
	json_object_put(o);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t hzs[] = {0, 100, 250, 300, 1000};
	struct audit_walk w;
	struct audit a;
	struct audit_sock s;
	uint64_t target_ms;
	char *text = NULL;
	size_t len = 0, added = 0;
	uint64_t seq = 0;
	uint32_t hz;
	FILE *f;

	if (size < 2)
		return 0;
	hz = hzs[data[0] % ARRAY_SIZE(hzs)];
	target_ms = (uint64_t)data[1] * 1000;
	data += 2;
	size -= 2;
	if (audit_init(&a, 4))
		return 0;
	audit_walk_reset(&w, 0);
	while (size) {
		size_t n = size < sizeof(struct sp_sockinfo) ? size : sizeof(struct sp_sockinfo);
		int r = audit_decode(&w, data, n, hz, &s);

		fuzz_assert(r == 0 || r == -EINVAL || r == -ENODATA, "decode returned %d", r);
		if (!r) {
			check_sock(&s, target_ms);
			audit_add(&a, &s, target_ms);
			added += s.state == SP_ST_ESTABLISHED;
		}
		data += n;
		size -= n;
	}
	fuzz_assert(a.connections == added, "rollup counted %llu of %zu",
		    (unsigned long long)a.connections, added);
	fuzz_assert(a.n <= 4, "rows %zu", a.n);
	audit_sort(&a);
	f = open_memstream(&text, &len);
	fuzz_assert(f, "open_memstream");
	audit_print_text(f, &a);
	audit_print_json(f, &a, 1764000000000000000ULL, &seq);
	fclose(f);
	fuzz_assert(seq == a.n, "one JSON line per row");
	free(text);
	audit_free(&a);
	return 0;
}
