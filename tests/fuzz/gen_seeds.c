// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Writes the seed corpus of fuzz_decode: ring records as the BPF side emits them, one file per
 * kind and family (IPv4, IPv6, IPv4-mapped IPv6), plus a few with the flags the decoder treats
 * specially, one with a negative errno and one with a trailing realtime offset (136 bytes).
 * Committed (tests/fuzz/corpus/decode/) so a fuzz run needs no build step first; rewrite them
 * with `make fuzz-seeds` after a change to struct sp_record.
 *
 * usage: gen_seeds DIR
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "sockpulse.h"

static const char *dir;

static int put(const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		fprintf(stderr, "gen_seeds: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void set_v4(struct sp_record *r)
{
	static const __u8 l[4] = {10, 0, 0, 1}, rm[4] = {10, 0, 0, 2};

	r->family = AF_INET;
	memcpy(r->laddr, l, 4);
	memcpy(r->raddr, rm, 4);
}

static void set_v6(struct sp_record *r)
{
	static const __u8 l[16] = {0xfd, 0, 0, 7, [15] = 1}, rm[16] = {0xfd, 0, 0, 7, [15] = 2};

	r->family = AF_INET6;
	memcpy(r->laddr, l, 16);
	memcpy(r->raddr, rm, 16);
}

static void set_mapped(struct sp_record *r)
{
	static const __u8 l[16] = {[10] = 0xff, 0xff, 127, 0, 0, 1};
	static const __u8 rm[16] = {[10] = 0xff, 0xff, 192, 0, 2, 7};

	r->family = AF_INET6;
	memcpy(r->laddr, l, 16);
	memcpy(r->raddr, rm, 16);
}

static struct sp_record base(__u32 type)
{
	struct sp_record r;

	memset(&r, 0, sizeof(r));
	r.type = type;
	r.pid = 4242;
	r.ts_ns = 123456789012345ULL;
	r.cookie = 0x1122334455667788ULL;
	r.cgroup_id = 7777;
	memcpy(r.comm, "curl", 5);
	r.netns = 4026531840u;
	r.lport = 43210;
	r.rport = 443;
	r.flags = SP_F_OWNER;
	r.direction = SP_DIR_EGRESS;
	return r;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*set)(struct sp_record *r);
	} fams[] = {{"v4", set_v4}, {"v6", set_v6}, {"mapped", set_mapped}};
	unsigned char with_offset[sizeof(struct sp_record) + 8];
	long long offset = 1764000000000000000LL;
	struct sp_record r;
	char name[64];
	int err = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_seeds DIR\n");
		return 2;
	}
	dir = argv[1];
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		r = base(SP_REC_STATE);
		fams[f].set(&r);
		r.old_state = 2; /* syn_sent */
		r.new_state = 1; /* established */
		r.flags |= SP_F_DURATION;
		r.duration_ns = 95077;
		snprintf(name, sizeof(name), "state-%s", fams[f].name);
		err |= put(name, &r, sizeof(r));

		r = base(SP_REC_STATE);
		fams[f].set(&r);
		r.old_state = 5; /* fin_wait2 */
		r.new_state = 7; /* close */
		r.flags |= SP_F_TIME_WAIT;
		r.segments = 3;
		r.payload_bytes = 100;
		snprintf(name, sizeof(name), "state-timewait-%s", fams[f].name);
		err |= put(name, &r, sizeof(r));

		r = base(SP_REC_CONNECT);
		fams[f].set(&r);
		r.flags |= SP_F_DURATION;
		r.duration_ns = 14127;
		snprintf(name, sizeof(name), "connect-ok-%s", fams[f].name);
		err |= put(name, &r, sizeof(r));

		r = base(SP_REC_CONNECT);
		fams[f].set(&r);
		r.failure = SP_FAIL_REFUSED;
		r.error = 111; /* ECONNREFUSED */
		snprintf(name, sizeof(name), "connect-refused-%s", fams[f].name);
		err |= put(name, &r, sizeof(r));

		r = base(SP_REC_KEEPALIVE_TIMEOUT);
		fams[f].set(&r);
		r.probes = 9;
		snprintf(name, sizeof(name), "keepalive-%s", fams[f].name);
		err |= put(name, &r, sizeof(r));

		r = base(SP_REC_RETRANS_TIMEOUT);
		fams[f].set(&r);
		r.direction = SP_DIR_INGRESS;
		snprintf(name, sizeof(name), "retrans-%s", fams[f].name);
		err |= put(name, &r, sizeof(r));

		r = base(SP_REC_RESET);
		fams[f].set(&r);
		r.reset_dir = SP_RST_SENT;
		r.old_state = 1;
		r.flags = SP_F_OLD_STATE | SP_F_NO_SOCK;
		snprintf(name, sizeof(name), "reset-sent-%s", fams[f].name);
		err |= put(name, &r, sizeof(r));

		r = base(SP_REC_RESET);
		fams[f].set(&r);
		r.reset_dir = SP_RST_RECEIVED;
		r.direction = SP_DIR_INGRESS;
		snprintf(name, sizeof(name), "reset-received-%s", fams[f].name);
		err |= put(name, &r, sizeof(r));

		r = base(SP_REC_ACTIVITY);
		fams[f].set(&r);
		r.segments = 2;
		r.payload_bytes = 1448;
		snprintf(name, sizeof(name), "activity-%s", fams[f].name);
		err |= put(name, &r, sizeof(r));
	}

	/* a listener: no remote address, no remote port (the decoder drops the absent side) */
	r = base(SP_REC_STATE);
	r.family = AF_INET;
	r.new_state = 10; /* listen */
	r.old_state = 7;
	r.rport = 0;
	r.flags = 0;
	err |= put("state-listen", &r, sizeof(r));

	/* a kernel-style negative errno and an unknown-owner keepalive */
	r = base(SP_REC_KEEPALIVE_TIMEOUT);
	set_v4(&r);
	r.error = -110;
	r.flags = 0;
	err |= put("keepalive-negative-errno", &r, sizeof(r));

	/* the harness reads a 136-byte input as a record plus the realtime offset */
	r = base(SP_REC_CONNECT);
	set_v6(&r);
	r.failure = SP_FAIL_TIMEOUT;
	r.error = 110;
	memcpy(with_offset, &r, sizeof(r));
	memcpy(with_offset + sizeof(r), &offset, sizeof(offset));
	err |= put("connect-timeout-offset", with_offset, sizeof(with_offset));
	return err ? 1 : 0;
}
