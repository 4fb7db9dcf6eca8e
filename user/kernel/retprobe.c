// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The kprobe variant's connect() return probe, made through tracefs.
 *
 * A kretprobe follows a call from entry to return with one instance per call in flight. The
 * kretprobes libbpf makes (perf_event_open() on the kprobe PMU) have the kernel's default
 * number, max(10, 2 x CPUs): with more blocking connect() calls waiting at once (a pool of
 * clients against a slow peer), the others return unseen and their outcome lines with them. A
 * probe written to kprobe_events names its own number ("r4096:..."), and tracefs' kprobe_profile
 * says how many returns it still missed, which the agent reports as lost tcp-connect records.
 *
 * The probe lives in tracefs until it is removed: retprobe_remove() does so after the link is
 * gone, and the next start removes probes whose process died without doing it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/perf_event.h>

#include <bpf/libbpf.h>

#include "log.h"
#include "retprobe.h"

#define GROUP "sockpulse"
#define EVENT_PREFIX "connret_"

static const char *const tracefs_dirs[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };

/* Appends one command line to @dir's kprobe_events: 0 or -errno. */
static int kprobe_events_write(const char *dir, const char *cmd)
{
	char path[64];
	ssize_t n;
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/kprobe_events", dir);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, cmd, strlen(cmd));
	if (n < 0)
		err = -errno;
	else if ((size_t)n != strlen(cmd))
		err = -EIO;
	close(fd);
	return err;
}

/* Removes this group's probes whose process is gone (killed before it could remove them). */
static void remove_stale(const char *dir)
{
	char path[96], cmd[320];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/events/" GROUP, dir);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		long pid;

		if (strncmp(de->d_name, EVENT_PREFIX, strlen(EVENT_PREFIX)) != 0)
			continue;
		pid = strtol(de->d_name + strlen(EVENT_PREFIX), &end, 10);
		if (pid <= 0 || *end != '_' || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(cmd, sizeof(cmd), "-:" GROUP "/%s\n", de->d_name);
		if (kprobe_events_write(dir, cmd) == 0)
			pr_debug("removed the kretprobe %s left by process %ld", de->d_name, pid);
	}
	closedir(d);
}

static int read_event_id(const char *dir, const char *event, long *id)
{
	char path[128];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/events/" GROUP "/%s/id", dir, event);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	ok = fscanf(f, "%ld", id) == 1;
	fclose(f);
	return ok ? 0 : -EINVAL;
}

/* Makes the probe in @dir: 0, or -errno with @why. */
static int make_probe(struct retprobe *rp, const char *dir, const char *func, char *why,
		      size_t len)
{
	static unsigned int seq;
	char cmd[160];
	int err;

	remove_stale(dir);
	snprintf(rp->event, sizeof(rp->event), EVENT_PREFIX "%d_%u", (int)getpid(), seq++);
	snprintf(cmd, sizeof(cmd), "r%d:" GROUP "/%s %s\n", RETPROBE_MAXACTIVE, rp->event, func);
	err = kprobe_events_write(dir, cmd);
	if (err) {
		snprintf(why, len, "%s/kprobe_events: %s", dir, strerror(-err));
		return err;
	}
	snprintf(rp->dir, sizeof(rp->dir), "%s", dir);
	return 0;
}

struct bpf_link *retprobe_attach(struct retprobe *rp, struct bpf_program *prog, const char *func,
				 char *why, size_t len)
{
	struct perf_event_attr attr;
	struct bpf_link *link;
	long id = 0;
	int err = -ENOENT, pfd;

	memset(rp, 0, sizeof(*rp));
	snprintf(why, len, "no tracefs with kprobe_events");
	for (size_t i = 0; i < sizeof(tracefs_dirs) / sizeof(tracefs_dirs[0]); i++) {
		char path[64];

		snprintf(path, sizeof(path), "%s/kprobe_events", tracefs_dirs[i]);
		if (access(path, F_OK) != 0)
			continue;
		err = make_probe(rp, tracefs_dirs[i], func, why, len);
		break;
	}
	if (err)
		goto fail;
	err = read_event_id(rp->dir, rp->event, &id);
	if (err) {
		snprintf(why, len, "%s/events/" GROUP "/%s/id: %s", rp->dir, rp->event,
			 strerror(-err));
		goto fail;
	}
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.config = (__u64)id;
	/* one event on CPU 0 for every task: the program runs on every CPU (the event's BPF
	 * program is the trace event's, not the perf event's) */
	pfd = (int)syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0) {
		err = -errno;
		snprintf(why, len, "perf_event_open: %s", strerror(-err));
		goto fail;
	}
	link = bpf_program__attach_perf_event(prog, pfd);
	if (!link) {
		err = errno ? -errno : -EINVAL;
		close(pfd);
		snprintf(why, len, "attach: %s", strerror(-err));
		goto fail;
	}
	return link; /* the link owns pfd now and closes it when destroyed */
fail:
	retprobe_remove(rp);
	errno = -err;
	return NULL;
}

void retprobe_remove(struct retprobe *rp)
{
	char cmd[96];
	int err;

	if (!rp->dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "-:" GROUP "/%s\n", rp->event);
	err = kprobe_events_write(rp->dir, cmd);
	if (err)
		pr_warn("cannot remove the kretprobe %s (%s/kprobe_events: %s); the next start "
			"removes it", rp->event, rp->dir, strerror(-err));
	rp->dir[0] = '\0';
}

int retprobe_missed(const struct retprobe *rp, uint64_t *missed)
{
	char path[64], line[256], name[128];
	unsigned long long hits, miss;
	int err = -ENOENT;
	FILE *f;

	if (!rp->dir[0])
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/kprobe_profile", rp->dir);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	/* "  <event>  <hits>  <missed>" per probe, the event without its group */
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %llu %llu", name, &hits, &miss) == 3 &&
		    strcmp(name, rp->event) == 0) {
			*missed = miss;
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}
