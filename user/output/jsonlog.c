// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Append-only JSON lines file with size rotation. See jsonlog.h for the guarantees. The file is
 * only ever extended by whole lines: a short write (disk full) is cut back to the last newline
 * it wrote, and the rest stays queued for the next attempt.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonlog.h"
#include "log.h"
#include "safefile.h"
#include "util.h"

#define RETRY_NS NSEC_PER_SEC /* a failed open is retried at most once a second */
/*
 * A healthy file gets what is queued in pieces of this size, while the lines are still in the
 * CPU's cache: copying a cold multi-megabyte queue into the page cache cost the agent a third of
 * its time under a connection storm. The queue itself stays large for when the file is not.
 */
#define WRITE_AT (256 * 1024)

/* One error per episode: the retries of a disk that stays full are not new errors. */
static void fail(struct jsonlog *lg, const char *op, int err)
{
	if (!lg->last_errno)
		lg->st.write_errors++;
	lg->last_errno = err;
	lg->last_op = op;
}

/* mkdir -p of the directory part of @path. */
static int make_parent_dirs(const char *path)
{
	char dir[PATH_MAX];
	size_t n;
	char *p;

	n = strlen(path);
	if (n >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, n + 1);
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, JSONLOG_DIR_MODE) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, JSONLOG_DIR_MODE) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Opens (creating) the path; a file not ending in '\n' gets one so our first line stays whole. */
static int open_file(struct jsonlog *lg)
{
	struct stat st;
	char last;
	int fd, err;

	err = make_parent_dirs(lg->path);
	if (err) {
		fail(lg, "mkdir", -err);
		return err;
	}
	lg->refused[0] = '\0';
	fd = safefile_open(lg->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL, JSONLOG_MODE,
			   SAFEFILE_LOG, lg->refused, sizeof(lg->refused));
	if (fd >= 0) {
		/* the umask must not widen or narrow the documented mode */
		if (fchmod(fd, JSONLOG_MODE))
			pr_debug("log %s: chmod: %s", lg->path, strerror(errno));
	} else if (fd == -EEXIST) {
		fd = safefile_open(lg->path, O_RDWR | O_APPEND, 0, SAFEFILE_LOG, lg->refused,
				   sizeof(lg->refused));
	}
	if (fd < 0) {
		fail(lg, "open", -fd);
		return fd;
	}
	/* One writer per file: two agents appending to one log would interleave two
	 * event.sequence series, and a gap would no longer mean a lost line. */
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		fail(lg, "lock", -err);
		return err;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		close(fd);
		fail(lg, "stat", -err);
		return err;
	}
	lg->size = (uint64_t)st.st_size;
	if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n') {
		if (write(fd, "\n", 1) == 1)
			lg->size++;
	}
	lg->fd = fd;
	lg->dev = st.st_dev;
	lg->ino = st.st_ino;
	return 0;
}

static void close_file(struct jsonlog *lg)
{
	if (lg->fd >= 0)
		close(lg->fd);
	lg->fd = -1;
}

int jsonlog_open(struct jsonlog *lg, const char *path, uint64_t max_size, unsigned int keep,
		 size_t queue_bytes)
{
	memset(lg, 0, sizeof(*lg));
	lg->fd = -1;
	if (!path || !*path || path[strlen(path) - 1] == '/' || keep > JSONLOG_KEEP_MAX ||
	    queue_bytes < 4096)
		return -EINVAL;
	lg->path = strdup(path);
	lg->buf = malloc(queue_bytes);
	if (!lg->path || !lg->buf) {
		free(lg->path);
		free(lg->buf);
		lg->path = lg->buf = NULL;
		return -ENOMEM;
	}
	lg->cap = queue_bytes;
	lg->max_size = max_size;
	lg->keep = keep;
	return open_file(lg);
}

static size_t count_lines(const char *p, size_t n)
{
	size_t lines = 0;
	const char *end = p + n;

	while (p < end && (p = memchr(p, '\n', end - p))) {
		lines++;
		p++;
	}
	return lines;
}

/*
 * Length of the whole lines at @p (at most @n bytes, all of them whole lines) that fit in @room;
 * at least one line. One backward scan: the queue is hundreds of lines per write.
 */
static size_t fitting_lines(const char *p, size_t n, uint64_t room)
{
	const char *nl;

	if (room >= n)
		return n;
	nl = room ? memrchr(p, '\n', (size_t)room) : NULL;
	if (!nl)
		nl = memchr(p, '\n', n); /* the first line alone is longer than the room */
	return nl ? (size_t)(nl - p) + 1 : n;
}

int jsonlog_rotate(struct jsonlog *lg)
{
	char from[PATH_MAX], to[PATH_MAX];
	int err = 0;

	if (lg->keep == 0) {
		if (unlink(lg->path) && errno != ENOENT)
			err = -errno;
	} else {
		for (unsigned int i = lg->keep - 1; i >= 1; i--) {
			snprintf(from, sizeof(from), "%s.%u", lg->path, i);
			snprintf(to, sizeof(to), "%s.%u", lg->path, i + 1);
			if (rename(from, to) && errno != ENOENT)
				pr_debug("log rotation: rename %s: %s", from, strerror(errno));
		}
		snprintf(to, sizeof(to), "%s.1", lg->path);
		if (rename(lg->path, to) && errno != ENOENT)
			err = -errno;
	}
	if (err) {
		/* keep writing to the current file rather than losing lines */
		fail(lg, "rotate", -err);
		return err;
	}
	lg->st.rotations++;
	close_file(lg);
	return open_file(lg);
}

/*
 * Writes the queue from its start; returns bytes consumed, *lines the lines among them, sets
 * *err on failure. The lines of the whole rest of the queue are known from the commits: only a
 * part of it (a rotation boundary, a short write) is counted by scanning.
 */
static size_t write_queue(struct jsonlog *lg, size_t *lines, int *err)
{
	size_t off = 0, chunk, keep, done_lines = 0, k;
	bool rotate_failed = false;
	const char *nl;
	ssize_t n;

	*err = 0;
	while (off < lg->len) {
		uint64_t room = UINT64_MAX;

		if (lg->max_size && !rotate_failed) {
			const char *first_nl = memchr(lg->buf + off, '\n', lg->len - off);
			size_t first = first_nl ? (size_t)(first_nl - (lg->buf + off)) + 1 : 0;

			if (lg->size > 0 && lg->size + first > lg->max_size) {
				*err = jsonlog_rotate(lg);
				if (lg->fd < 0)
					break;
				rotate_failed = *err != 0;
			}
			if (!rotate_failed)
				room = lg->max_size > lg->size ? lg->max_size - lg->size : 0;
		}
		chunk = fitting_lines(lg->buf + off, lg->len - off, room);
		n = write(lg->fd, lg->buf + off, chunk);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				/* a slow sink: the lines wait (bounded), the loop does not */
				*err = -EAGAIN;
				break;
			}
			*err = -errno;
			fail(lg, "write", errno);
			break;
		}
		if ((size_t)n == chunk) {
			k = chunk == lg->len - off ? lg->qlines - done_lines
						   : count_lines(lg->buf + off, chunk);
			lg->size += chunk;
			lg->st.bytes_written += chunk;
			lg->st.lines_written += k;
			done_lines += k;
			off += chunk;
			continue;
		}
		/* Short write (disk full): keep the whole lines, cut the partial one off. */
		nl = memrchr(lg->buf + off, '\n', n);
		keep = nl ? (size_t)(nl - (lg->buf + off)) + 1 : 0;
		if (ftruncate(lg->fd, lg->size + keep)) {
			if (errno == EINVAL) {
				/* a stream (pipe): nothing can be taken back, the rest of the line
				 * follows when the reader makes room */
				k = count_lines(lg->buf + off, (size_t)n);
				lg->size += (size_t)n;
				lg->st.bytes_written += (size_t)n;
				lg->st.lines_written += k;
				done_lines += k;
				off += (size_t)n;
				*err = -EAGAIN;
				break;
			}
			pr_warn("log %s: cannot remove a partial line: %s", lg->path,
				strerror(errno));
		}
		k = count_lines(lg->buf + off, keep);
		lg->size += keep;
		lg->st.bytes_written += keep;
		lg->st.lines_written += k;
		done_lines += k;
		off += keep;
		*err = -ENOSPC;
		fail(lg, "write", ENOSPC);
		if (!keep)
			break; /* no progress: try again later */
	}
	*lines = done_lines;
	return off;
}

static int reopen_file(struct jsonlog *lg)
{
	close_file(lg);
	lg->st.reopens++;
	return open_file(lg);
}

static int flush_queue(struct jsonlog *lg)
{
	struct stat st;
	size_t done, lines;
	int err;

	if (!lg->len)
		return 0;
	if (lg->fd < 0)
		return lg->last_errno ? -lg->last_errno : -EBADF;
	/* Deleted under us: what we would write now is lost, so reopen first rather than count
	 * it as written. */
	if (!fstat(lg->fd, &st) && st.st_nlink == 0) {
		err = reopen_file(lg);
		if (err)
			return err;
	}
	done = write_queue(lg, &lines, &err);
	if (done) {
		memmove(lg->buf, lg->buf + done, lg->len - done);
		lg->len -= done;
		lg->qlines -= lines;
	}
	if (!err && lg->last_errno) {
		if (lg->last_report_ns)
			pr_warn("log %s: writing again", lg->path);
		lg->last_errno = 0;
	}
	return err;
}

char *jsonlog_reserve(struct jsonlog *lg, size_t need)
{
	if (need > lg->cap) {
		lg->st.lines_dropped++;
		return NULL;
	}
	if ((lg->len + need > lg->cap || (lg->len >= WRITE_AT && !lg->last_errno)) && lg->fd >= 0)
		flush_queue(lg);
	if (lg->len + need > lg->cap) {
		lg->st.lines_dropped++;
		return NULL;
	}
	return lg->buf + lg->len;
}

void jsonlog_commit(struct jsonlog *lg, size_t n)
{
	lg->len += n;
	lg->qlines++;
}

int jsonlog_flush(struct jsonlog *lg, uint64_t now_ns)
{
	int err;

	if (!lg->len)
		return 0;
	if (lg->fd < 0) {
		if (now_ns - lg->last_retry_ns < RETRY_NS)
			return -lg->last_errno;
		lg->last_retry_ns = now_ns;
		err = open_file(lg);
		if (err)
			return err;
	}
	return flush_queue(lg);
}

int jsonlog_reopen(struct jsonlog *lg, uint64_t now_ns)
{
	if (lg->fd >= 0)
		flush_queue(lg);
	lg->last_retry_ns = now_ns;
	return reopen_file(lg);
}

void jsonlog_tick(struct jsonlog *lg, uint64_t now_ns, uint64_t report_every_ns)
{
	struct stat st;

	if (lg->fd >= 0) {
		if (stat(lg->path, &st) || st.st_dev != lg->dev || st.st_ino != lg->ino)
			jsonlog_reopen(lg, now_ns);
	} else if (now_ns - lg->last_retry_ns >= RETRY_NS) {
		lg->last_retry_ns = now_ns;
		open_file(lg);
	}
	if (lg->len)
		jsonlog_flush(lg, now_ns);
	if ((lg->st.write_errors != lg->errors_reported ||
	     lg->st.lines_dropped != lg->dropped_reported) &&
	    (!lg->last_report_ns || now_ns - lg->last_report_ns >= report_every_ns)) {
		pr_warn("log %s: %s failed: %s (%llu errors and %llu lines dropped so far; "
			"reported at most once a minute)",
			lg->path, lg->last_op ? lg->last_op : "write",
			lg->refused[0] ? lg->refused : strerror(lg->last_errno ? lg->last_errno : EIO),
			(unsigned long long)lg->st.write_errors,
			(unsigned long long)lg->st.lines_dropped);
		lg->errors_reported = lg->st.write_errors;
		lg->dropped_reported = lg->st.lines_dropped;
		lg->last_report_ns = now_ns ? now_ns : 1;
	}
}

void jsonlog_close(struct jsonlog *lg, uint64_t now_ns)
{
	if (!lg)
		return;
	if (lg->len && lg->path)
		jsonlog_flush(lg, now_ns + RETRY_NS);
	lg->st.lines_dropped += lg->qlines;
	close_file(lg);
	free(lg->buf);
	free(lg->path);
	lg->buf = NULL;
	lg->path = NULL;
	lg->len = 0;
	lg->qlines = 0;
}
