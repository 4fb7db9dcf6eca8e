/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Network namespaces by inode: finding a file that names one, and reading its sysctls from
 * inside it (/proc/sys/net shows the namespace of the task that opens it). Entering another
 * namespace needs CAP_SYS_ADMIN; the caller's namespace is always restored before returning.
 */
#ifndef SP_NETNS_H
#define SP_NETNS_H

#include <stddef.h>
#include <stdint.h>

/* The inode of the namespace at @path. 0 or -errno. */
int netns_inode(const char *path, uint32_t *ino);
/* A path naming namespace @ino: /run/netns/<name> or /proc/<pid>/ns/net. 0 or -ENOENT. */
int netns_find_path(uint32_t ino, char *path, size_t cap);
/* "32768\t60999\n" (ip_local_port_range) -> lo, hi. 0 or -EINVAL. */
int netns_parse_port_range(const char *text, uint16_t *lo, uint16_t *hi);
/* net.ipv4.ip_local_port_range and tcp_tw_reuse of namespace @ino (0: the caller's). 0 or -errno. */
int netns_port_settings(uint32_t ino, uint16_t *lo, uint16_t *hi, uint8_t *tw_reuse);

#endif
