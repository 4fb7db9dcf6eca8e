// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Opening operator-named files safely as root; see safefile.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "safefile.h"

static int __attribute__((format(printf, 3, 4))) refuse(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (cap) {
		va_start(ap, fmt);
		vsnprintf(why, cap, fmt, ap);
		va_end(ap);
	}
	return -SAFEFILE_REFUSED;
}

static const char *type_name(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFLNK:
		return "a symbolic link";
	case S_IFIFO:
		return "a FIFO";
	case S_IFDIR:
		return "a directory";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFSOCK:
		return "a socket";
	default:
		return "not a regular file";
	}
}

/* Anyone could swap the file in a directory writable by others, unless it is sticky. */
static int check_dir(const struct stat *dir, char *why, size_t cap)
{
	if ((dir->st_mode & S_IWOTH) && !(dir->st_mode & S_ISVTX))
		return refuse(why, cap,
			      "its directory is writable by others and not sticky (mode %04o)",
			      (unsigned int)(dir->st_mode & 07777));
	return 0;
}

int safefile_check(const struct stat *st, const struct stat *dir, uid_t euid,
		   enum safefile_kind kind, char *why, size_t cap)
{
	mode_t too_wide = kind == SAFEFILE_LOG ? (S_IWGRP | S_IWOTH) : S_IWOTH;

	if (cap)
		why[0] = '\0';
	if (dir && check_dir(dir, why, cap))
		return -SAFEFILE_REFUSED;
	if (!S_ISREG(st->st_mode))
		return refuse(why, cap, "is %s, not a regular file", type_name(st->st_mode));
	if (st->st_uid != 0 && st->st_uid != euid)
		return refuse(why, cap, "is owned by uid %u, not by root%s",
			      (unsigned int)st->st_uid, euid ? " or the agent's user" : "");
	if (st->st_mode & too_wide)
		return refuse(why, cap, "is writable by %s (mode %04o)",
			      st->st_mode & S_IWOTH ? "others" : "its group",
			      (unsigned int)(st->st_mode & 07777));
	/* a second name may be a file the agent must not write, linked here by someone else */
	if (kind == SAFEFILE_LOG && st->st_nlink > 1)
		return refuse(why, cap, "has %lu hard links", (unsigned long)st->st_nlink);
	return 0;
}

/* The directory part of @path ("." if none) into @dir, the last component's offset in @path. */
static int split(const char *path, char *dir, size_t cap, const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash) {
		snprintf(dir, cap, ".");
		*base = path;
		return 0;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= cap)
		return -ENAMETOOLONG;
	memcpy(dir, path, n);
	dir[n] = '\0';
	*base = slash + 1;
	return **base ? 0 : -EISDIR;
}

int safefile_open(const char *path, int flags, mode_t mode, enum safefile_kind kind, char *why,
		  size_t cap)
{
	struct stat dst, st, lst;
	char dir[PATH_MAX];
	const char *base;
	int dfd, fd, err;

	if (cap)
		why[0] = '\0';
	err = split(path, dir, sizeof(dir), &base);
	if (err)
		return err;
	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (fstat(dfd, &dst)) {
		err = -errno;
		goto out;
	}
	err = check_dir(&dst, why, cap);
	if (err)
		goto out;
	/* Refuse what is not a regular file before opening it: opening a FIFO or a device can
	 * block or have effects of its own. */
	if (fstatat(dfd, base, &lst, AT_SYMLINK_NOFOLLOW) == 0) {
		err = safefile_check(&lst, &dst, geteuid(), kind, why, cap);
		if (err)
			goto out;
	} else if (errno != ENOENT || !(flags & O_CREAT)) {
		err = -errno;
		goto out;
	}
	fd = openat(dfd, base, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode);
	if (fd < 0) {
		err = errno == ELOOP ? refuse(why, cap, "is a symbolic link") : -errno;
		goto out;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		close(fd);
		goto out;
	}
	err = safefile_check(&st, &dst, geteuid(), kind, why, cap);
	if (err) {
		close(fd);
		goto out;
	}
	close(dfd);
	return fd;
out:
	close(dfd);
	return err;
}
