// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Network namespaces by inode: see netns.h. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns.h"
#include "parse.h"
#include "util.h"

int netns_inode(const char *path, uint32_t *ino)
{
	struct stat st;

	*ino = 0;
	if (stat(path, &st))
		return -errno;
	*ino = (uint32_t)st.st_ino;
	return 0;
}

int netns_find_path(uint32_t ino, char *path, size_t cap)
{
	static const char *const dirs[] = {"/run/netns", "/proc"};
	struct dirent *de;
	uint32_t got;
	DIR *d;

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		d = opendir(dirs[i]);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			if (i == 1 && (de->d_name[0] < '0' || de->d_name[0] > '9'))
				continue;
			snprintf(path, cap, i == 0 ? "%s/%s" : "%s/%s/ns/net", dirs[i], de->d_name);
			if (netns_inode(path, &got) == 0 && got == ino) {
				closedir(d);
				return 0;
			}
		}
		closedir(d);
	}
	return -ENOENT;
}

int netns_parse_port_range(const char *text, uint16_t *lo, uint16_t *hi)
{
	char a[16], b[16], extra;
	uint64_t x, y;

	if (!text || sscanf(text, "%15s %15s %c", a, b, &extra) != 2)
		return -EINVAL;
	if (parse_u64(a, 1, 65535, &x) || parse_u64(b, 1, 65535, &y) || x > y)
		return -EINVAL;
	*lo = (uint16_t)x;
	*hi = (uint16_t)y;
	return 0;
}

static int read_sysctl(const char *path, char *buf, size_t cap)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	return 0;
}

static int read_here(uint16_t *lo, uint16_t *hi, uint8_t *tw_reuse)
{
	char buf[64];
	uint64_t v;
	int err;

	err = read_sysctl("/proc/sys/net/ipv4/ip_local_port_range", buf, sizeof(buf));
	if (!err)
		err = netns_parse_port_range(buf, lo, hi);
	if (err)
		return err;
	*tw_reuse = 2; /* the kernel's default, if the file cannot say */
	if (!read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse", buf, sizeof(buf))) {
		buf[strcspn(buf, "\n")] = '\0';
		if (!parse_u64(buf, 0, 2, &v))
			*tw_reuse = (uint8_t)v;
	}
	return 0;
}

int netns_port_settings(uint32_t ino, uint16_t *lo, uint16_t *hi, uint8_t *tw_reuse)
{
	char path[128];
	uint32_t self;
	int self_fd, fd, err;

	if (netns_inode("/proc/self/ns/net", &self) == 0 && (!ino || ino == self))
		return read_here(lo, hi, tw_reuse);
	err = netns_find_path(ino, path, sizeof(path));
	if (err)
		return err;
	self_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self_fd < 0)
		return -errno;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		close(self_fd);
		return err;
	}
	if (setns(fd, CLONE_NEWNET)) {
		err = -errno;
	} else {
		err = read_here(lo, hi, tw_reuse);
		/* cannot fail with the privilege that let us in; if it did, say so */
		if (setns(self_fd, CLONE_NEWNET))
			err = -errno;
	}
	close(fd);
	close(self_fd);
	return err;
}
