// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket-table walks with the iter/tcp program; see sockwalk.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include "log.h"
#include "parse.h"
#include "sockwalk.h"
#include "sockwalk.skel.h"

#define SELF_NS "/proc/thread-self/ns/net"	/* setns() moves this thread only */
#define SYSCTL_DIR "/proc/sys/net/ipv4/"
#define READ_RECS 64				/* records per read() */

struct sockwalk {
	struct sockwalk_bpf *skel;
	struct bpf_link *link;
	uint32_t hz;	/* CONFIG_HZ as libbpf found it; 0 if the config was not readable */
};

/*
 * libbpf fails the load when an object has kconfig externs and it finds no kernel config, even
 * if they are all weak: then we tell it CONFIG_HZ is unknown, and derive HZ from a sysctl.
 */
static bool kconfig_readable(void)
{
	char path[128];
	struct utsname uts;

	if (access("/proc/config.gz", R_OK) == 0)
		return true;
	if (uname(&uts))
		return false;
	snprintf(path, sizeof(path), "/boot/config-%s", uts.release);
	return access(path, R_OK) == 0;
}

static void open_failed(int err, const char *step)
{
	const char *said = loader_libbpf_warning();
	const char *sep = said[0] ? ": " : "";

	if (err == -EPERM || err == -EACCES)
		pr_warn("socket walk: %s: permission denied: BPF iterators need CAP_BPF and "
			"CAP_PERFMON (or root)%s%s",
			step, sep, said);
	else if (err == -ESRCH || err == -ENOENT || err == -EOPNOTSUPP ||
		 err == -524 /* ENOTSUPP */)
		pr_warn("socket walk: %s: this kernel has no TCP socket iterator (iter/tcp, Linux "
			"5.9+)%s%s",
			step, sep, said);
	else
		pr_warn("socket walk: %s failed: %s%s%s", step, strerror(-err), sep, said);
}

struct sockwalk *sockwalk_open(int *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	struct sockwalk *w;
	const char *step;

	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		*err = -errno;
		pr_warn("socket walk: kernel BTF not found at /sys/kernel/btf/vmlinux: the "
			"iterator needs a kernel built with CONFIG_DEBUG_INFO_BTF=y");
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		*err = -ENOMEM;
		pr_warn("socket walk: out of memory");
		return NULL;
	}
	libbpf_set_print(loader_libbpf_print);
	loader_libbpf_reset();
	if (!kconfig_readable())
		opts.kconfig = "CONFIG_HZ=0\n";
	step = "open";
	w->skel = sockwalk_bpf__open_opts(&opts);
	if (!w->skel) {
		*err = -errno;
		goto fail;
	}
	step = "load";
	*err = sockwalk_bpf__load(w->skel);
	if (*err)
		goto fail;
	step = "attach";
	w->link = bpf_program__attach_iter(w->skel->progs.sockwalk, NULL);
	if (!w->link) {
		*err = -errno;
		goto fail;
	}
	w->hz = w->skel->kconfig->CONFIG_HZ;
	*err = 0;
	return w;
fail:
	if (!*err)
		*err = -EINVAL;
	open_failed(*err, step);
	sockwalk_close(w);
	return NULL;
}

void sockwalk_close(struct sockwalk *w)
{
	if (!w)
		return;
	bpf_link__destroy(w->link);
	sockwalk_bpf__destroy(w->skel);
	free(w);
}

/* @n unsigned numbers, separated by blanks, from /proc/sys/net/ipv4/@name. */
static int read_sysctl(const char *name, uint32_t *v, int n)
{
	char path[sizeof(SYSCTL_DIR) + 64], buf[64], *tok, *save = NULL;
	uint64_t x;
	ssize_t len;
	int fd, err = 0;

	snprintf(path, sizeof(path), SYSCTL_DIR "%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	err = len < 0 ? -errno : 0;
	close(fd);
	if (len < 0)
		return err;
	buf[len] = '\0';
	tok = strtok_r(buf, " \t\n", &save);
	for (int i = 0; i < n; i++, tok = strtok_r(NULL, " \t\n", &save)) {
		if (!tok)
			return -EINVAL;
		err = parse_u64(tok, 0, UINT32_MAX, &x);
		if (err)
			return err;
		v[i] = (uint32_t)x;
	}
	return tok ? -EINVAL : 0;
}

/* The namespace's settings; must run inside it (/proc/sys/net follows the reader's netns). */
static int read_ns_settings(struct sockwalk_ns *ns)
{
	uint32_t range[2];
	int err;

	err = read_sysctl("ip_local_port_range", range, 2);
	if (!err && (range[0] > UINT16_MAX || range[1] > UINT16_MAX))
		err = -ERANGE;
	if (!err) {
		ns->port_lo = range[0];
		ns->port_hi = range[1];
		err = read_sysctl("tcp_keepalive_time", &ns->ka_time_s, 1);
	}
	if (!err)
		err = read_sysctl("tcp_keepalive_intvl", &ns->ka_intvl_s, 1);
	if (!err)
		err = read_sysctl("tcp_keepalive_probes", &ns->ka_probes, 1);
	if (!err)
		err = read_sysctl("tcp_retries2", &ns->retries2, 1);
	if (!err && read_sysctl("tcp_tw_reuse", &ns->tw_reuse, 1))
		ns->tw_reuse = 2; /* the kernel's default */
	if (err)
		pr_debug("socket walk: reading " SYSCTL_DIR "*: %s", strerror(-err));
	return err;
}

/*
 * Inside the namespace at @ns_fd (-1: ours): its settings, and an iterator bound to it.
 * Returns the iterator fd or -errno; back in our namespace either way, or -errno if that failed.
 */
static int iter_in(struct sockwalk *w, int ns_fd, int self_fd, struct sockwalk_ns *ns)
{
	int fd, err;

	if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET))
		return -errno;
	err = read_ns_settings(ns);
	fd = err ? err : bpf_iter_create(bpf_link__fd(w->link)); /* libbpf 1.x: -errno */
	if (ns_fd >= 0 && setns(self_fd, CLONE_NEWNET)) {
		/* cannot happen with the privilege that let us in; never go on in the wrong one */
		err = -errno;
		pr_warn("socket walk: cannot return to our network namespace: %s", strerror(-err));
		if (fd >= 0)
			close(fd);
		return err;
	}
	return fd;
}

/* Reads whole records and hands each to @fn; a stream that ends mid-record is -EIO. */
static int read_records(int fd, struct sockwalk_ns *ns, sockwalk_fn fn, void *ctx)
{
	struct sp_sockinfo buf[READ_RECS];
	size_t have = 0, done;
	int count = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, (char *)buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return have ? -EIO : count;
		have += n;
		for (done = 0; have - done >= sizeof(buf[0]); done += sizeof(buf[0])) {
			const struct sp_sockinfo *si = &buf[done / sizeof(buf[0])];

			if (!ns->hz && !(si->flags & SP_W_TIMEWAIT) && si->ka_time_sysctl_j &&
			    ns->ka_time_s)
				ns->hz = (si->ka_time_sysctl_j + ns->ka_time_s / 2) / ns->ka_time_s;
			if (fn)
				fn(ctx, ns, si);
			count++;
		}
		/* a partial record moves to the front, where it stays aligned */
		have -= done;
		memmove(buf, (char *)buf + done, have);
	}
}

int sockwalk_run(struct sockwalk *w, const char *ns_path, struct sockwalk_ns *ns, sockwalk_fn fn,
		 void *ctx)
{
	int self_fd, ns_fd = -1, iter_fd, err;
	struct stat st;

	memset(ns, 0, sizeof(*ns));
	self_fd = open(SELF_NS, O_RDONLY | O_CLOEXEC);
	if (self_fd < 0)
		return -errno;
	if (ns_path) {
		ns_fd = open(ns_path, O_RDONLY | O_CLOEXEC);
		if (ns_fd < 0) {
			err = -errno;
			goto out;
		}
	}
	if (fstat(ns_fd >= 0 ? ns_fd : self_fd, &st)) {
		err = -errno;
		goto out;
	}
	ns->netns = (uint32_t)st.st_ino;
	ns->hz = w->hz;
	iter_fd = iter_in(w, ns_fd, self_fd, ns);
	if (iter_fd < 0) {
		err = iter_fd;
		goto out;
	}
	err = read_records(iter_fd, ns, fn, ctx);
	close(iter_fd);
out:
	if (ns_fd >= 0)
		close(ns_fd);
	close(self_fd);
	return err;
}
