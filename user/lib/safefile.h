/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Opening files named by an operator or a config file, as root, without being turned against
 * the host: the last path component is never followed if it is a symbolic link, the file must be
 * a regular file with one name, owned by root or by the agent's own user, and not writable by
 * those who should not write it; its directory must not be writable by others unless it is
 * sticky (the rule logrotate applies). The checks run on the opened descriptor (fstat), and the
 * file is opened relative to the directory that was checked, so nothing can be swapped between
 * the check and the use.
 */
#ifndef SP_SAFEFILE_H
#define SP_SAFEFILE_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* What the file is for: it decides which permission bits are too wide. */
enum safefile_kind {
	SAFEFILE_LOG,	 /* written by the agent: not writable by group or others */
	SAFEFILE_CONFIG, /* read by the agent: not writable by others */
};

/* The descriptor was refused; the reason is in the caller's buffer. */
#define SAFEFILE_REFUSED EPERM

/*
 * Checks @st (the file) and @dir (its directory) for @kind, for a process whose effective user
 * is @euid. 0, or -SAFEFILE_REFUSED with the reason ("is a symbolic link", ...) in @why.
 */
int safefile_check(const struct stat *st, const struct stat *dir, uid_t euid,
		   enum safefile_kind kind, char *why, size_t cap);

/*
 * open(2) of @path with @flags (O_CREAT allowed, with @mode), made safe: O_NOFOLLOW, O_CLOEXEC,
 * O_NOCTTY and O_NONBLOCK are added (a FIFO or a device is refused before it is opened, so
 * nothing can block), then safefile_check(). Returns the descriptor, or -errno: an open error,
 * or -SAFEFILE_REFUSED with the reason in @why (@why is "" for plain open errors).
 */
int safefile_open(const char *path, int flags, mode_t mode, enum safefile_kind kind, char *why,
		  size_t cap);

#endif
