/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's append-only JSON lines file. Lines are queued in memory and written whole, in
 * batches, after each loop iteration. The file never ends in a partial line: a short write is cut
 * back to the last complete line. Rotation by size renames FILE to FILE.1 (a name that no longer
 * matches *.jsonl), FILE.1 to FILE.2 ... keeping @keep old files, then reopens FILE. Write errors
 * are counted and never fatal: unwritten lines stay queued (bounded) and writing resumes when it
 * can; lines that do not fit the queue are dropped and counted. The file is non-blocking: a sink
 * that is not ready (EAGAIN) keeps the lines queued and never holds the caller. A file deleted
 * under us is noticed before each write and reopened, so no line is counted written into it.
 *
 * Time is passed in by the caller (monotonic ns), so the module is testable.
 */
#ifndef SP_JSONLOG_H
#define SP_JSONLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JSONLOG_MODE	 0640
#define JSONLOG_DIR_MODE 0750
#define JSONLOG_KEEP_MAX 1000

struct jsonlog_stats {
	uint64_t lines_written;
	uint64_t bytes_written;
	uint64_t lines_dropped; /* did not fit the queue while the file could not be written */
	uint64_t write_errors;	/* episodes of failing write(2)/open(2)/rename(2): the retries of
				 * one full disk are one error */
	uint64_t rotations;
	uint64_t reopens; /* SIGHUP, or the path no longer names our file */
};

struct jsonlog {
	char *path;
	int fd;		   /* -1 while the file cannot be opened */
	uint64_t max_size; /* 0: no rotation by size */
	unsigned int keep; /* rotated files kept: FILE.1 .. FILE.keep (0: delete) */
	uint64_t size;	   /* current file size as we know it */
	dev_t dev;
	ino_t ino;

	char *buf; /* queued whole lines */
	size_t len, cap;
	size_t qlines; /* lines in buf[0..len) */

	struct jsonlog_stats st;
	int last_errno;		  /* of the last failure, 0 once writing works again */
	const char *last_op;	  /* "write", "open", "rename" */
	char refused[160];	  /* why the last open refused the file (safefile.h), or "" */
	uint64_t errors_reported; /* write_errors at the last stderr report */
	uint64_t dropped_reported;
	uint64_t last_report_ns;
	uint64_t last_retry_ns;
};

/*
 * Creates missing directories (0750) and opens @path for appending (0640 when created).
 * A failure to open is not fatal (-errno returned, lines are queued and the open retried), except
 * for bad arguments and allocation failure. A file refused as unsafe (a symbolic link, not a
 * regular file, another user's, writable by others: safefile.h) returns -SAFEFILE_REFUSED with
 * the reason in lg->refused. @queue_bytes bounds the memory queue.
 */
int jsonlog_open(struct jsonlog *lg, const char *path, uint64_t max_size, unsigned int keep,
		 size_t queue_bytes);
/* Space for one line of up to @need bytes; NULL if it cannot be queued (counted as dropped). */
char *jsonlog_reserve(struct jsonlog *lg, size_t need);
/* Commits @n bytes, one whole '\n'-terminated line, written into the reserved space. */
void jsonlog_commit(struct jsonlog *lg, size_t n);
/* Writes what is queued, rotating on the way as needed. 0 or the -errno of a failure. */
int jsonlog_flush(struct jsonlog *lg, uint64_t now_ns);
/* Writes what is queued to the current file, then reopens the path (logrotate's postrotate). */
int jsonlog_reopen(struct jsonlog *lg, uint64_t now_ns);
/*
 * Periodic: reopens if the path no longer names our file (deleted or renamed without SIGHUP),
 * retries a failed open, and reports errors on stderr at most once per @report_every_ns.
 */
void jsonlog_tick(struct jsonlog *lg, uint64_t now_ns, uint64_t report_every_ns);
/* Rotates now (used by tests and by flush). 0 or -errno. */
int jsonlog_rotate(struct jsonlog *lg);
/* Flushes (best effort) and closes; NULL-safe. */
void jsonlog_close(struct jsonlog *lg, uint64_t now_ns);

#endif
