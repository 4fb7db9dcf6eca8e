/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * event.sequence of the agent's log, and the lines that keep it honest:
 *   - every line the agent meant to write consumes a number, written or dropped, so a gap in
 *     the numbers is a loss;
 *   - the first line written after a loss is a `log-gap` line saying how many were dropped,
 *     which numbers, and why;
 *   - a start continues the numbers of the file it appends to (its last line's sequence) and
 *     writes a `log-start` line with a new agent.ephemeral_id, so a restart is visible even where
 *     the numbers run on.
 * Pure formatting and counting: the caller owns the file and the clock.
 */
#ifndef SP_LOGSEQ_H
#define SP_LOGSEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGSEQ_LINE_MAX	  512	      /* a log-start or log-gap line */
#define LOGSEQ_TAIL_BYTES (64 * 1024) /* how much of a file's end is read for its last line */

struct logseq {
	uint64_t seq;	       /* the last number given out */
	uint64_t gap_first;    /* first dropped number of the pending gap; 0: no gap */
	uint64_t gap_count;    /* numbers dropped in the pending gap */
	uint64_t dropped;      /* all numbers ever dropped */
	int gap_errno;	       /* the file's error when the gap began; 0: it was only slow */
	char ephemeral_id[37]; /* this run's UUID (version 4) */
};

/* Numbers continue after @last (0 for a new file); @rnd: 16 random bytes for the run's id. */
void logseq_init(struct logseq *ls, uint64_t last, const uint8_t rnd[16]);
/* The number the next line gets, without taking it. */
static inline uint64_t logseq_peek(const struct logseq *ls)
{
	return ls->seq + 1;
}
/* Takes the number of a line that was written (queued). */
void logseq_take(struct logseq *ls);
/* Takes the number of a line that was dropped: the gap grows. @err: the file's last error. */
void logseq_drop(struct logseq *ls, int err);
static inline bool logseq_gap_pending(const struct logseq *ls)
{
	return ls->gap_count != 0;
}
/*
 * The log-gap line for the pending gap, with the next number, '\n'-terminated, into @buf.
 * Returns its length (0 if it did not fit). The caller takes the number (logseq_take) and clears
 * the gap (logseq_gap_done) once the line is queued.
 */
size_t logseq_format_gap(const struct logseq *ls, char *buf, size_t cap, uint64_t real_ns);
void logseq_gap_done(struct logseq *ls);
/* The log-start line with the next number; @previous: the file's last sequence (0: none). */
size_t logseq_format_start(const struct logseq *ls, char *buf, size_t cap, uint64_t real_ns,
			   const char *version, uint64_t previous);
/*
 * The event.sequence of the last whole line of the file open at @fd (read with pread, the end
 * only): 0 and *seq set, or -ENOENT if the file has no line carrying one.
 */
int logseq_last_in_fd(int fd, uint64_t *seq);

#endif
