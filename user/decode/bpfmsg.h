/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What libbpf's warnings say about a failed load, kept for the one-line error: the program that
 * failed and the verifier's verdict. libbpf prints the verifier log in one warning, between
 * "-- BEGIN PROG LOAD LOG --" and "-- END PROG LOAD LOG --". No libbpf here: unit-tested.
 */
#ifndef SP_BPFMSG_H
#define SP_BPFMSG_H

#include <stddef.h>

#define BPFMSG_LINE_MAX 160

struct bpfmsg {
	char prog[64];			/* the program whose load failed first */
	char verdict[BPFMSG_LINE_MAX];	/* the verifier's last line about it that says why */
	char warn[BPFMSG_LINE_MAX];	/* libbpf's last warning, its first line, unprefixed */
};

void bpfmsg_reset(struct bpfmsg *m);
/* Takes one message libbpf printed at warning level (whole, possibly many lines). */
void bpfmsg_note(struct bpfmsg *m, const char *msg);
/*
 * The verdict of verifier log @log (@len bytes): its last non-empty line, skipping the
 * statistics the verifier appends ("processed N insns ...", "verification time ...", ...).
 * 0, or -ENOENT when there is none.
 */
int bpfmsg_verdict(const char *log, size_t len, char *out, size_t cap);

#endif
