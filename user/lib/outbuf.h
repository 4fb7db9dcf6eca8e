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
	uint64_t dropped_lines; /* discarded after a write error other than EAGAIN */
};

int outbuf_init(struct outbuf *ob, int fd, size_t cap);
/*
 * Space for one line of up to @need bytes, flushing first if needed. NULL if need > cap, or if
 * the flush could not make room (the fd returned EAGAIN): the caller drops or retries that line.
 */
char *outbuf_reserve(struct outbuf *ob, size_t need);
/* Commits @n bytes (one or more whole lines) written into the reserved space. */
void outbuf_commit(struct outbuf *ob, size_t n);
/*
 * Writes everything buffered, looping over EINTR and short writes; 0, or -errno. -EAGAIN keeps
 * the unwritten rest for the next flush; any other error (-EPIPE: the reader went away) drops
 * it and counts the lines in dropped_lines. Each failed write(2) counts in write_errors.
 */
int outbuf_flush(struct outbuf *ob);
/* Frees the buffer without flushing; NULL-safe. */
void outbuf_free(struct outbuf *ob);

#endif
