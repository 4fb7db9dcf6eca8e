/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Output buffer of whole lines: a write(2) never splits a line, lines are batched between
 * flushes. Write errors are counted and returned, never fatal here.
 */
#ifndef SP_OUTBUF_H
#define SP_OUTBUF_H

#include <stddef.h>
#include <stdint.h>

struct outbuf {
	int fd;
	char *buf;
	size_t len;
	size_t cap;
	uint64_t lines;
	uint64_t write_errors;
	int last_errno;	/* errno of the last failed write, 0 if none */
};

int outbuf_init(struct outbuf *ob, int fd, size_t cap);
/* Space for one line of up to @need bytes, flushing first if needed; NULL only if need > cap. */
char *outbuf_reserve(struct outbuf *ob, size_t need);
/* Commits @n bytes (one or more whole lines) written into the reserved space. */
void outbuf_commit(struct outbuf *ob, size_t n);
/* Writes everything buffered; 0, or -errno (EPIPE: the reader went away). */
int outbuf_flush(struct outbuf *ob);
void outbuf_free(struct outbuf *ob);

#endif
