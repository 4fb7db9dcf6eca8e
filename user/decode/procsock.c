// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket inode -> owning process, from /proc; see procsock.h. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parse.h"
#include "procsock.h"
#include "util.h"

#define COMM_LEN 16
#define SOCK_PREFIX "socket:["

struct ps_entry {
	uint64_t inode;		/* 0: free (no socket has inode 0) */
	uint32_t pid;
	char comm[COMM_LEN];
};

struct procsock {
	uint32_t max_entries;
	uint32_t count;
	size_t mask;		/* slots - 1 */
	struct ps_entry slot[];	/* a power of two, at least twice max_entries: never full */
};

struct procsock *procsock_new(uint32_t max_entries)
{
	struct procsock *ps;
	size_t slots = 2;

	if (!max_entries)
		return NULL;
	while (slots < 2 * (size_t)max_entries)
		slots <<= 1;
	if (slots > (SIZE_MAX - sizeof(*ps)) / sizeof(ps->slot[0]))
		return NULL;
	ps = calloc(1, sizeof(*ps) + slots * sizeof(ps->slot[0]));
	if (!ps)
		return NULL;
	ps->max_entries = max_entries;
	ps->mask = slots - 1;
	return ps;
}

void procsock_free(struct procsock *ps)
{
	free(ps);
}

uint32_t procsock_count(const struct procsock *ps)
{
	return ps ? ps->count : 0;
}

/* The slot holding @inode, or the free slot where it would go (linear probing). */
static struct ps_entry *probe(const struct procsock *ps, uint64_t inode)
{
	size_t i = sp_hash64(inode) & ps->mask;

	while (ps->slot[i].inode && ps->slot[i].inode != inode)
		i = (i + 1) & ps->mask;
	return (struct ps_entry *)&ps->slot[i];
}

static void insert(struct procsock *ps, uint64_t inode, uint32_t pid, const char *comm,
		   uint64_t *lost)
{
	struct ps_entry *e = probe(ps, inode);

	if (e->inode == inode) {
		/* shared (fork, SCM_RIGHTS): the lowest pid, whatever order /proc lists them in */
		if (pid < e->pid) {
			e->pid = pid;
			memcpy(e->comm, comm, COMM_LEN);
		}
		return;
	}
	if (ps->count >= ps->max_entries) {
		(*lost)++;
		return;
	}
	e->inode = inode;
	e->pid = pid;
	memcpy(e->comm, comm, COMM_LEN);
	ps->count++;
}

/* "socket:[12345]" -> 12345; false for any other link (files, pipes, anon inodes). */
static bool socket_inode(char *link, size_t len, uint64_t *inode)
{
	const size_t plen = sizeof(SOCK_PREFIX) - 1;

	if (len <= plen + 1 || strncmp(link, SOCK_PREFIX, plen) || link[len - 1] != ']')
		return false;
	link[len - 1] = '\0';
	return parse_u64(link + plen, 1, UINT64_MAX, inode) == 0;
}

static size_t memcspn_nl(const char *buf, size_t n)
{
	const char *nl = memchr(buf, '\n', n);

	return nl ? (size_t)(nl - buf) : n;
}

/* At most 15 characters, NUL-padded; -1 if the process is gone. */
static int read_comm(int pid_fd, char comm[COMM_LEN])
{
	char buf[64];
	size_t len;
	ssize_t n;
	int fd = openat(pid_fd, "comm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0)
		return -1;
	len = memcspn_nl(buf, n);
	memset(comm, 0, COMM_LEN);
	memcpy(comm, buf, len < COMM_LEN - 1 ? len : COMM_LEN - 1);
	return 0;
}

/* The sockets of one process. Every failure means it exited (or is not ours to read): skip it. */
static void scan_pid(struct procsock *ps, int root_fd, const char *name, uint32_t pid,
		     uint64_t *lost)
{
	char comm[COMM_LEN], link[64];
	bool have_comm = false;
	struct dirent *de;
	uint64_t inode;
	int pid_fd, fd_fd;
	ssize_t n;
	DIR *fds;

	/* one directory fd for the whole process: a recycled pid cannot mix two processes */
	pid_fd = openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pid_fd < 0)
		return;
	fd_fd = openat(pid_fd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fds = fd_fd >= 0 ? fdopendir(fd_fd) : NULL;
	if (!fds) {
		if (fd_fd >= 0)
			close(fd_fd);
		close(pid_fd);
		return;
	}
	while ((de = readdir(fds))) {
		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(fd_fd, de->d_name, link, sizeof(link) - 1);
		if (n < 0)
			continue; /* closed meanwhile */
		link[n] = '\0';
		if (!socket_inode(link, n, &inode))
			continue;
		if (!have_comm) {
			if (read_comm(pid_fd, comm))
				break;
			have_comm = true;
		}
		insert(ps, inode, pid, comm, lost);
	}
	closedir(fds);
	close(pid_fd);
}

int procsock_scan(struct procsock *ps, const char *proc_root, uint64_t *overflow)
{
	struct dirent *de;
	uint64_t lost = 0, pid;
	DIR *root;

	root = opendir(proc_root);
	if (!root)
		return -errno; /* the old content stays */
	memset(ps->slot, 0, (ps->mask + 1) * sizeof(ps->slot[0]));
	ps->count = 0;
	while ((de = readdir(root))) {
		if (parse_u64(de->d_name, 1, UINT32_MAX, &pid))
			continue; /* not a process */
		scan_pid(ps, dirfd(root), de->d_name, (uint32_t)pid, &lost);
	}
	closedir(root);
	if (overflow)
		*overflow = lost;
	return 0;
}

bool procsock_lookup(const struct procsock *ps, uint64_t inode, uint32_t *pid, char comm[16])
{
	const struct ps_entry *e;

	if (!ps || !inode)
		return false;
	e = probe(ps, inode);
	if (e->inode != inode)
		return false;
	*pid = e->pid;
	memcpy(comm, e->comm, COMM_LEN);
	return true;
}
