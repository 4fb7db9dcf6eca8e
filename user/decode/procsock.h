/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Which process holds a socket: socket inode -> (pid, comm), built by scanning /proc/PID/fd
 * ("socket:[N]" links) and /proc/PID/comm. For sockets older than the agent, whose owner no BPF
 * hook saw. A bounded open-addressing table in one allocation; a scan replaces the content.
 */
#ifndef SP_PROCSOCK_H
#define SP_PROCSOCK_H

#include <stdbool.h>
#include <stdint.h>

struct procsock;

struct procsock *procsock_new(uint32_t max_entries); /* NULL on ENOMEM or max 0 */
/* Rescans @proc_root ("/proc"); entries beyond max_entries are counted in *overflow, not stored.
 * Processes that vanish mid-scan are skipped silently. 0 or -errno (proc_root unreadable). */
int procsock_scan(struct procsock *ps, const char *proc_root, uint64_t *overflow);
/* true and the owner when @inode is held by a process (the lowest pid when several share it);
 * comm is NUL-terminated, at most 15 characters. */
bool procsock_lookup(const struct procsock *ps, uint64_t inode, uint32_t *pid, char comm[16]);
uint32_t procsock_count(const struct procsock *ps);
void procsock_free(struct procsock *ps);

#endif
