// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "ablate.h"
#include "bpfmsg.h"
#include "loader.h"
#include "log.h"
#include "names.h"
#include "retprobe.h"
#include "sockpulse.skel.h"
#include "sockpulse_compat.skel.h"
#include "util.h"

#define CAP_SYS_ADMIN_BIT 21
#define CAP_PERFMON_BIT 38
#define CAP_BPF_BIT 39

#define VARIANT_PROGS_MAX 4 /* programs of one connect-hook variant */

/* Which programs belong to which connect-hook variant; the rest are always loaded. */
static const char *const variant_progs[SP_HOOK_MAX][VARIANT_PROGS_MAX] = {
	[SP_HOOK_FENTRY] = { "sp_fentry_connect", "sp_fexit_connect" },
	[SP_HOOK_KPROBE] = { "sp_kprobe_connect", "sp_kretprobe_connect" },
	[SP_HOOK_TRACEPOINT] = { "sp_sys_enter_connect", "sp_sys_exit_connect" },
};

/* The variants in the order they are tried, best first (start and `check` alike). */
static const unsigned int hook_order[] = { SP_HOOK_FENTRY, SP_HOOK_KPROBE, SP_HOOK_TRACEPOINT };

/* Programs whose failure to attach costs a refinement, not the run. */
static const char *const optional_progs[] = { "sp_sys_exit_accept4", "sp_sys_exit_accept" };

/*
 * Programs that find a socket from a file descriptor come in two builds of the same source, two
 * objects with the same programs and maps: plain loads through BTF pointers (bpf_rdonly_cast,
 * Linux 6.2+) and probe reads (compat). One object is loaded; see bpf/sockpulse.bpf.c.
 */
/* -1: not decided yet; SOCKPULSE_FD_WALK=compat forces the compat build (tests, comparisons). */
static int btf_walk = -1;

/* What libbpf said about the load in progress (reset before each). */
static struct bpfmsg bpf_msgs;

/* @msg line by line at debug level: a verifier log is longer than one log line holds. */
static void debug_lines(const char *msg)
{
	while (*msg) {
		size_t n = strcspn(msg, "\n");

		if (n)
			pr_debug("%.*s", (int)n, msg);
		msg += n + (msg[n] == '\n');
	}
}

int loader_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	bool debug = log_get_level() >= LOG_DEBUG;
	char *msg = NULL;

	if (level != LIBBPF_WARN && !debug)
		return 0;
	if (vasprintf(&msg, fmt, ap) < 0)
		return 0;
	if (level == LIBBPF_WARN)
		bpfmsg_note(&bpf_msgs, msg);
	if (debug)
		debug_lines(msg);
	free(msg);
	return 0;
}

const char *loader_libbpf_warning(void)
{
	return bpf_msgs.warn;
}

void loader_libbpf_reset(void)
{
	bpfmsg_reset(&bpf_msgs);
}

const char *loader_libbpf_version(void)
{
	static char buf[16];

	snprintf(buf, sizeof(buf), "%u.%u", libbpf_major_version(), libbpf_minor_version());
	return buf;
}

static int prog_variant(const char *name)
{
	for (int v = 0; v < SP_HOOK_MAX; v++)
		for (int i = 0; i < VARIANT_PROGS_MAX; i++)
			if (variant_progs[v][i] && strcmp(variant_progs[v][i], name) == 0)
				return v;
	return SP_HOOK_NONE;
}

/* Whether the kernel has bpf_rdonly_cast(), the kfunc the BTF walk needs. */
static bool kernel_has_rdonly_cast(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool found;

	if (!btf)
		return false;
	found = btf__find_by_name_kind(btf, "bpf_rdonly_cast", BTF_KIND_FUNC) > 0;
	btf__free(btf);
	return found;
}

static bool use_btf_walk(void)
{
	const char *force = getenv("SOCKPULSE_FD_WALK");

	if (btf_walk < 0) {
		if (force && strcmp(force, "compat") == 0)
			btf_walk = 0;
		else
			btf_walk = kernel_has_rdonly_cast();
		pr_debug("fd lookup: %s", btf_walk ? "btf" : "compat");
	}
	return btf_walk;
}

const char *loader_fd_walk(void)
{
	return use_btf_walk() ? "btf" : "compat";
}

static bool prog_optional(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(optional_progs); i++)
		if (strcmp(optional_progs[i], name) == 0)
			return true;
	return false;
}

/* Effective capabilities from /proc/self/status; false on failure to tell. */
static bool has_caps(bool *bpf, bool *perfmon, bool *sys_admin)
{
	char line[256];
	unsigned long long eff = 0;
	bool found = false;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			found = true;
			break;
		}
	}
	fclose(f);
	*bpf = eff & (1ULL << CAP_BPF_BIT);
	*perfmon = eff & (1ULL << CAP_PERFMON_BIT);
	*sys_admin = eff & (1ULL << CAP_SYS_ADMIN_BIT);
	return found;
}

/*
 * Why attaching a kprobe or a tracepoint (both through perf_event_open()) was refused. Debian's
 * kernels default to kernel.perf_event_paranoid=3, which lets only CAP_SYS_ADMIN open perf
 * events, CAP_PERFMON or not; fentry links do not need perf events.
 */
static const char *eacces_hint(const char *sec)
{
	bool bpf, perfmon, sys_admin = false;
	bool tp = strncmp(sec, "tracepoint/", 11) == 0;
	int paranoid = 0;
	FILE *f;

	if (!tp && strncmp(sec, "kprobe/", 7) != 0 && strncmp(sec, "kretprobe/", 10) != 0)
		return "";
	f = fopen("/proc/sys/kernel/perf_event_paranoid", "re");
	if (f) {
		if (fscanf(f, "%d", &paranoid) != 1)
			paranoid = 0;
		fclose(f);
	}
	if (paranoid >= 3 && has_caps(&bpf, &perfmon, &sys_admin) && !sys_admin)
		return " (kernel.perf_event_paranoid=3 allows perf events to CAP_SYS_ADMIN only: set "
		       "it to 2, or use --connect-hook fentry)";
	if (tp)
		return " (tracefs is not readable by this user)";
	return "";
}

int loader_preflight(void)
{
	bool bpf, perfmon, sys_admin;

	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		pr_warn("kernel BTF not found at /sys/kernel/btf/vmlinux: sockpulse needs a kernel "
			"built with CONFIG_DEBUG_INFO_BTF=y");
		return SP_EXIT_KERNEL;
	}
	if (has_caps(&bpf, &perfmon, &sys_admin) && !sys_admin && !(bpf && perfmon)) {
		pr_warn("missing capability %s: run as root, or grant CAP_BPF and CAP_PERFMON",
			!bpf && !perfmon ? "CAP_BPF and CAP_PERFMON"
			: !bpf		 ? "CAP_BPF"
					 : "CAP_PERFMON");
		return SP_EXIT_PRIVILEGE;
	}
	return SP_EXIT_OK;
}

/* Syscall tracepoints need tracefs; mount it where libbpf looks if nobody has. */
/*
 * The generated open, with the compat object's bytes where the kernel lacks the kfunc: both
 * objects have the same programs, maps and rodata, so one skeleton type serves both.
 */
static struct sockpulse_bpf *open_skel(void)
{
	struct sockpulse_bpf *skel;
	int err;

	if (use_btf_walk())
		return sockpulse_bpf__open();
	skel = calloc(1, sizeof(*skel));
	if (!skel) {
		errno = ENOMEM;
		return NULL;
	}
	err = sockpulse_bpf__create_skeleton(skel);
	if (!err) {
		skel->skeleton->data = (void *)sockpulse_compat_bpf__elf_bytes(
			&skel->skeleton->data_sz);
		err = bpf_object__open_skeleton(skel->skeleton, NULL);
	}
	if (err) {
		sockpulse_bpf__destroy(skel);
		errno = -err;
		return NULL;
	}
	return skel;
}

static void ensure_tracefs(void)
{
	if (access("/sys/kernel/tracing/events", F_OK) == 0 ||
	    access("/sys/kernel/debug/tracing/events", F_OK) == 0)
		return;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) != 0)
		pr_debug("cannot mount tracefs on /sys/kernel/tracing: %s", strerror(errno));
}

static int configure(struct sockpulse_bpf *skel, const struct config *cfg, unsigned int hook)
{
	struct bpf_program *prog;
	int v, err;

	skel->rodata->coalesce_ns = cfg->kernel.coalesce_ns;
	skel->rodata->wakeup_bytes = cfg->kernel.ring_bytes / 8;
	skel->rodata->filter_family = cfg->filter.family;
	skel->rodata->filter_netns = cfg->filter.netns;
	skel->rodata->filter_cgroup = cfg->filter.cgroup_id;
	skel->rodata->filter_ports = cfg->filter.ports.count > 0;
	memcpy((void *)skel->rodata->port_bits, cfg->filter.ports.bits, sizeof(cfg->filter.ports.bits));
	err = bpf_map__set_max_entries(skel->maps.events, cfg->kernel.ring_bytes);
	if (err)
		return err;
	err = bpf_map__set_max_entries(skel->maps.sk_infos, cfg->kernel.max_socks);
	if (err)
		return err;

	bpf_object__for_each_program(prog, skel->obj)
	{
		const char *name = bpf_program__name(prog);
		bool load = true;

		v = prog_variant(name);
		if (v != SP_HOOK_NONE)
			load = v == (int)hook;
		if (ablate_prog_off(cfg->ablate, name))
			load = false;
		err = bpf_program__set_autoload(prog, load);
		if (err)
			return err;
	}
	return 0;
}

static void detach_all(struct loader *ld)
{
	for (int i = ld->n_links - 1; i >= 0; i--)
		bpf_link__destroy(ld->links[i]);
	ld->n_links = 0;
	retprobe_remove(&ld->retprobe);
}

/*
 * The kprobe variant's return probe: through tracefs with RETPROBE_MAXACTIVE calls followed at
 * once, else libbpf's (the kernel's default number; a user without write access to tracefs).
 */
static struct bpf_link *attach_connect_return(struct loader *ld, struct bpf_program *prog)
{
	const char *func = strchr(bpf_program__section_name(prog), '/');
	struct bpf_link *link;

	link = retprobe_attach(&ld->retprobe, prog, func + 1, ld->ret_why, sizeof(ld->ret_why));
	if (link) {
		ld->ret_maxactive = RETPROBE_MAXACTIVE;
		return link;
	}
	ld->ret_maxactive = 0;
	pr_debug("kretprobe through tracefs: %s", ld->ret_why);
	return bpf_program__attach(prog);
}

/* Attaches autoloaded programs; @only_variant: attach just the connect-hook ones. */
static int attach(struct loader *ld, unsigned int hook, bool only_variant, char *why, size_t len)
{
	struct bpf_program *prog;
	struct bpf_link *link;
	const char *name;
	int err;

	bpf_object__for_each_program(prog, ld->skel->obj)
	{
		if (!bpf_program__autoload(prog))
			continue;
		name = bpf_program__name(prog);
		if (only_variant && prog_variant(name) != (int)hook)
			continue;
		if (ld->n_links >= LOADER_MAX_LINKS)
			return -E2BIG;
		if (strcmp(name, "sp_kretprobe_connect") == 0)
			link = attach_connect_return(ld, prog);
		else
			link = bpf_program__attach(prog);
		if (!link) {
			err = errno ? -errno : -EINVAL;
			if (prog_optional(name)) {
				pr_info("%s not attached (%s): accepted sockets keep their "
					"listener's owner",
					name, strerror(-err));
				continue;
			}
			snprintf(why, len, "attach %s failed: %s%s", name, strerror(-err),
				 err == -EACCES ? eacces_hint(bpf_program__section_name(prog)) : "");
			return err;
		}
		ld->links[ld->n_links++] = link;
	}
	return 0;
}

/* Whether this kernel can make kprobes at all: the perf PMU, or tracefs' legacy interface. */
static bool kernel_has_kprobes(void)
{
	return access("/sys/bus/event_source/devices/kprobe/type", F_OK) == 0 ||
	       access("/sys/kernel/tracing/kprobe_events", F_OK) == 0 ||
	       access("/sys/kernel/debug/tracing/kprobe_events", F_OK) == 0;
}

#define ENOTSUPP_KERNEL 524 /* the kernel's ENOTSUPP, not in the C library */

/*
 * When variant @hook failed because this kernel lacks what it needs (not for want of privilege:
 * preflight checked that; not the verifier: it would have said), says what, plainly.
 */
static const char *kernel_lacks(unsigned int hook, int load_err, int attach_err)
{
	if (hook == SP_HOOK_FENTRY && load_err && !bpf_msgs.verdict[0] &&
	    (load_err == -EPERM || load_err == -EOPNOTSUPP || load_err == -ENOTSUPP_KERNEL))
		return "it refuses fentry programs";
	if (hook == SP_HOOK_KPROBE && (attach_err == -ENOENT || attach_err == -EOPNOTSUPP) &&
	    !kernel_has_kprobes())
		return "it has no kprobes (CONFIG_KPROBES is off)";
	return NULL;
}

/* Why the load failed: the verifier's verdict and the program, when libbpf passed them on. */
static void load_failed(char *why, size_t len, int err)
{
	if (bpf_msgs.verdict[0])
		snprintf(why, len, "load failed: the verifier rejected %s: %s",
			 bpf_msgs.prog[0] ? bpf_msgs.prog : "a program", bpf_msgs.verdict);
	else if (bpf_msgs.prog[0])
		snprintf(why, len, "load of %s failed: %s", bpf_msgs.prog, strerror(-err));
	else
		snprintf(why, len, "load failed: %s", strerror(-err));
}

static int try_variant(struct loader *ld, const struct config *cfg, unsigned int hook,
		       bool only_variant_attach, int *load_err)
{
	char *why = ld->why[hook];
	int err;

	*load_err = 0;
	ld->lacks[hook] = NULL;
	loader_libbpf_reset();
	ld->skel = open_skel();
	if (!ld->skel) {
		err = errno ? -errno : -EINVAL;
		snprintf(why, LOADER_WHY_MAX, "open failed: %s", strerror(-err));
		return err;
	}
	err = configure(ld->skel, cfg, hook);
	if (err) {
		snprintf(why, LOADER_WHY_MAX, "configure failed: %s", strerror(-err));
		goto fail;
	}
	err = sockpulse_bpf__load(ld->skel);
	if (err) {
		*load_err = err;
		load_failed(why, LOADER_WHY_MAX, err);
		ld->lacks[hook] = kernel_lacks(hook, err, 0);
		goto fail;
	}
	err = attach(ld, hook, only_variant_attach, why, LOADER_WHY_MAX);
	if (err) {
		ld->lacks[hook] = kernel_lacks(hook, 0, err);
		goto fail;
	}
	ld->hook = hook;
	return 0;
fail:
	detach_all(ld);
	sockpulse_bpf__destroy(ld->skel);
	ld->skel = NULL;
	return err;
}

/* Why variant @hook is not used, in one phrase: plainly when the kernel lacks it. */
static const char *not_used(const struct loader *ld, unsigned int hook, char *buf, size_t len)
{
	if (!ld->lacks[hook])
		return ld->why[hook];
	snprintf(buf, len, "not supported by this kernel: %s", ld->lacks[hook]);
	return buf;
}

/* libbpf's messages go through ours (debug level, with -v); the loader's own set-up. */
static int loader_setup(struct loader *ld)
{
	int ret;

	memset(ld, 0, sizeof(*ld));
	ret = loader_preflight();
	if (ret)
		return ret;
	libbpf_set_print(loader_libbpf_print);
	ensure_tracefs();
	ld->ncpus = libbpf_num_possible_cpus();
	if (ld->ncpus <= 0) {
		pr_warn("cannot tell the number of CPUs: %s", strerror(-ld->ncpus));
		return SP_EXIT_FAILURE;
	}
	return SP_EXIT_OK;
}

int loader_start(struct loader *ld, const struct config *cfg)
{
	int err = -ENOENT, load_err = 0, last_load_err = 0, ret;
	char skipped[3 * LOADER_WHY_MAX + 64] = "", buf[LOADER_WHY_MAX];
	size_t off = 0;

	ret = loader_setup(ld);
	if (ret)
		return ret;
	for (size_t i = 0; i < ARRAY_SIZE(hook_order); i++) {
		unsigned int hook = hook_order[i];

		if (cfg->kernel.hook != SP_HOOK_NONE && cfg->kernel.hook != hook)
			continue;
		err = try_variant(ld, cfg, hook, false, &load_err);
		if (!err)
			break;
		if (load_err)
			last_load_err = load_err;
		pr_debug("connect hook %s: %s", connect_hook_name(hook), ld->why[hook]);
		if (off < sizeof(skipped))
			off += snprintf(skipped + off, sizeof(skipped) - off, "%s%s: %s",
					off ? "; " : "", connect_hook_name(hook),
					not_used(ld, hook, buf, sizeof(buf)));
	}
	if (err && cfg->kernel.hook == SP_HOOK_NONE) {
		/* Still worth running: the TCP hooks see every connect outcome from the state
		 * changes; only failures before any SYN and accept()ing owners are missed. */
		err = try_variant(ld, cfg, SP_HOOK_NONE, false, &load_err);
		if (!err) {
			pr_warn("no connect hook could be attached (%s): connect outcomes come from "
				"TCP state changes only; connect() failures before any SYN are not "
				"reported",
				skipped);
			return SP_EXIT_OK;
		}
		if (load_err)
			last_load_err = load_err;
		pr_debug("TCP hooks alone: %s", ld->why[SP_HOOK_NONE]);
	}
	if (err) {
		/* preflight() saw the capabilities: a refusal now is the kernel's (lockdown, a
		 * missing feature, the verifier), not ours to fix by privilege. */
		pr_warn("no connect hook variant could be used (%s)", skipped);
		return last_load_err ? SP_EXIT_KERNEL : SP_EXIT_ATTACH;
	}
	if (off)
		pr_info("connect hook: %s (%s)", connect_hook_name(ld->hook), skipped);
	else
		pr_info("connect hook: %s", connect_hook_name(ld->hook));
	if (ld->hook == SP_HOOK_KPROBE && !ld->ret_maxactive)
		pr_warn("connect hook kprobe: its return probe follows the kernel's default number "
			"of calls at once, max(10, 2 x CPUs), as no tracefs probe could be made (%s): "
			"outcomes of blocking connect() calls beyond that are lost uncounted; run as "
			"root or use --connect-hook fentry",
			ld->ret_why);
	return SP_EXIT_OK;
}

void loader_stop(struct loader *ld)
{
	if (!ld)
		return;
	detach_all(ld);
	sockpulse_bpf__destroy(ld->skel);
	ld->skel = NULL;
}

int loader_ring_map_fd(const struct loader *ld)
{
	return bpf_map__fd(ld->skel->maps.events);
}

/* The record kind a program's skipped runs would have made. */
static int prog_rec_type(const char *name)
{
	static const struct {
		const char *prefix;
		int type;
	} kinds[] = {
		{ "sp_tcp_probe", SP_REC_ACTIVITY },
		{ "sp_receive_reset", SP_REC_RESET },
		{ "sp_send_reset", SP_REC_RESET },
		{ "sp_sys_", SP_REC_CONNECT },
		{ "sp_fentry", SP_REC_CONNECT },
		{ "sp_fexit", SP_REC_CONNECT },
		{ "sp_kprobe", SP_REC_CONNECT },
		{ "sp_kretprobe", SP_REC_CONNECT },
	};

	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (!strncmp(name, kinds[i].prefix, strlen(kinds[i].prefix)))
			return kinds[i].type;
	return SP_REC_STATE; /* state changes, error reports, retransmissions */
}

/*
 * Runs the kernel skipped: a tracing program does not run when it is already running on that
 * CPU (a timer's state change in softirq over a syscall's, say), and counts it. Such a run made
 * no record, as surely as a full ring: counted with the drops of its kind.
 */
static void add_recursion_misses(const struct loader *ld, struct sp_stats *sum)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, ld->skel->obj) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog);

		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) || len < offsetof(struct bpf_prog_info,
								      recursion_misses) + 8)
			continue;
		sum->dropped[prog_rec_type(bpf_program__name(prog))] += info.recursion_misses;
	}
}

int loader_read_stats(const struct loader *ld, struct sp_stats *sum)
{
	struct sp_stats *percpu;
	__u32 key = 0;
	int err = 0;

	memset(sum, 0, sizeof(*sum));
	percpu = calloc(ld->ncpus, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	if (bpf_map_lookup_elem(bpf_map__fd(ld->skel->maps.stats), &key, percpu)) {
		err = -errno;
		goto out;
	}
	for (int cpu = 0; cpu < ld->ncpus; cpu++) {
		for (int t = 0; t < SP_REC_TYPE_MAX; t++)
			sum->dropped[t] += percpu[cpu].dropped[t];
		sum->no_storage += percpu[cpu].no_storage;
	}
	add_recursion_misses(ld, sum);
	if (ld->ret_maxactive) {
		uint64_t missed;

		/* a return the probe missed: a tcp-connect line that may not have been written */
		if (!retprobe_missed(&ld->retprobe, &missed))
			sum->dropped[SP_REC_CONNECT] += missed;
	}
out:
	free(percpu);
	return err;
}

int loader_check(const struct config *cfg)
{
	struct loader ld;
	int ret, load_err, usable = 0;

	ret = loader_setup(&ld);
	if (ret)
		return ret;
	for (size_t i = 0; i < ARRAY_SIZE(hook_order); i++) {
		unsigned int hook = hook_order[i];
		int err = try_variant(&ld, cfg, hook, true, &load_err);
		const char *lacks = ld.lacks[hook];

		if (!err) {
			printf("%s: load ok, attach ok%s%s", connect_hook_name(hook),
			       hook == SP_HOOK_TRACEPOINT ? ", fd lookup " : "",
			       hook == SP_HOOK_TRACEPOINT ? loader_fd_walk() : "");
			if (hook == SP_HOOK_KPROBE && ld.ret_maxactive)
				printf(", %d calls followed at once", ld.ret_maxactive);
			else if (hook == SP_HOOK_KPROBE)
				printf(", the kernel's default calls followed at once (%s)",
				       ld.ret_why);
			putchar('\n');
			usable++;
			loader_stop(&ld);
			continue;
		}
		printf("%s: %s%s", connect_hook_name(hook), load_err ? "" : "load ok, ",
		       ld.why[hook]);
		if (lacks)
			printf(" (not supported by this kernel: %s)", lacks);
		putchar('\n');
	}
	fflush(stdout);
	return usable ? SP_EXIT_OK : SP_EXIT_ATTACH;
}
