/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Line-batching output buffer. Lines are appended whole and written in one write(2) per flush;
 * a short write (pipe full, signal) continues with the remainder, so the byte stream is exactly
 * the lines in order. SIGPIPE is the caller's business: ignore it to get -EPIPE here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outbuf.h"

int outbuf_init(struct outbuf *ob, int fd, size_t cap)
{
	memset(ob, 0, sizeof(*ob));
	ob->fd = fd;
	if (!cap)
		return -EINVAL;
	ob->buf = malloc(cap);
	if (!ob->buf)
		return -ENOMEM;
	ob->cap = cap;
	return 0;
}

static uint64_t count_lines(const char *p, size_t n)
{
	const char *end = p + n, *nl;
	uint64_t lines = 0;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p)))) {
		lines++;
		p = nl + 1;
	}
	return lines;
}

int outbuf_flush(struct outbuf *ob)
{
	size_t off = 0;
	ssize_t n;
	int err = 0;

	while (off < ob->len) {
		n = write(ob->fd, ob->buf + off, ob->len - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		err = n < 0 ? errno : EIO; /* write() returning 0 for a non-empty buffer */
		ob->write_errors++;
		ob->last_errno = err;
		break;
	}

	if (err && err != EAGAIN && err != EWOULDBLOCK) {
		/*
		 * The reader is gone or the device failed: what is buffered cannot be written, and
		 * keeping it would wedge every later reserve. Drop it and count the lines.
		 */
		ob->dropped_lines += count_lines(ob->buf + off, ob->len - off);
		off = ob->len;
	}
	/* Keep the unwritten tail (EAGAIN) at the front; it is the rest of whole lines. */
	if (off && off < ob->len)
		memmove(ob->buf, ob->buf + off, ob->len - off);
	ob->len -= off;
	return -err;
}

char *outbuf_reserve(struct outbuf *ob, size_t need)
{
	if (!ob->buf || need > ob->cap)
		return NULL;
	if (ob->cap - ob->len < need) {
		outbuf_flush(ob);
		if (ob->cap - ob->len < need)
			return NULL; /* the fd is not accepting (EAGAIN): caller drops this line */
	}
	return ob->buf + ob->len;
}

void outbuf_commit(struct outbuf *ob, size_t n)
{
	if (n > ob->cap - ob->len)
		n = ob->cap - ob->len; /* caller bug; never run past the buffer */
	ob->lines += count_lines(ob->buf + ob->len, n);
	ob->len += n;
}

void outbuf_free(struct outbuf *ob)
{
	if (!ob)
		return;
	free(ob->buf);
	ob->buf = NULL;
	ob->len = 0;
	ob->cap = 0;
}
