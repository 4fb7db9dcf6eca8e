/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cgroup paths as systemd, docker, containerd, cri-o, podman and the kubelet (both drivers) make
 * them; the id cache against a hierarchy of directories made here; the mount from mounts files.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cgroup.h"

#define DOCKER_ID "4f1c7e2d9a8b6c5d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"
#define CTR_ID	  "a3b1f0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1"
#define POD_UID	  "1b2c3d4e-5f6a-7b8c-9d0e-1f2a3b4c5d6e"
#define POD_UID_  "1b2c3d4e_5f6a_7b8c_9d0e_1f2a3b4c5d6e"

struct want {
	const char *path;
	const char *unit;
	const char *container;
	const char *runtime;
	const char *pod_uid;
	const char *service;
};

static void span_eq(const struct cg_attr *a, struct cg_span s, const char *want, const char *path)
{
	if (!want) {
		if (s.len)
			fail_msg("%s: unexpected %.*s", path, s.len, a->path + s.off);
		return;
	}
	if (s.len != strlen(want) || memcmp(a->path + s.off, want, s.len) != 0)
		fail_msg("%s: got '%.*s', want '%s'", path, s.len, a->path + s.off, want);
}

static const struct want shapes[] = {
    /* systemd */
    {"/system.slice/nginx.service", "nginx.service", NULL, NULL, NULL, "nginx.service"},
    {"/user.slice/user-1000.slice/session-4.scope", "session-4.scope", NULL, NULL, NULL,
     "session-4.scope"},
    {"/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-2211.scope",
     "app-gnome-firefox-2211.scope", NULL, NULL, NULL, "app-gnome-firefox-2211.scope"},
    {"/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service", NULL, NULL, NULL,
     "getty@tty1.service"},
    {"/", NULL, NULL, NULL, NULL, ""},
    {"/init.scope", "init.scope", NULL, NULL, NULL, "init.scope"},
    {"/system.slice", NULL, NULL, NULL, NULL, ""},
    /* docker, systemd driver and cgroupfs driver */
    {"/system.slice/docker-" DOCKER_ID ".scope", NULL, DOCKER_ID, "docker", NULL, "4f1c7e2d9a8b"},
    {"/docker/" DOCKER_ID, NULL, DOCKER_ID, "docker", NULL, "4f1c7e2d9a8b"},
    {"/system.slice/docker.service", "docker.service", NULL, NULL, NULL, "docker.service"},
    /* a short id is no docker scope: a unit */
    {"/system.slice/docker-4f1c7e2d.scope", "docker-4f1c7e2d.scope", NULL, NULL, NULL,
     "docker-4f1c7e2d.scope"},
    /* containerd, cri-o, podman */
    {"/system.slice/cri-containerd-" CTR_ID ".scope", NULL, CTR_ID, "containerd", NULL,
     "a3b1f0c9d8e7"},
    {"/machine.slice/libpod-" CTR_ID ".scope", NULL, CTR_ID, "podman", NULL, "a3b1f0c9d8e7"},
    {"/machine.slice/libpod-conmon-" CTR_ID ".scope", "libpod-conmon-" CTR_ID ".scope", NULL, NULL,
     NULL, "libpod-conmon-" CTR_ID ".scope"},
    {"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" CTR_ID ".scope/container",
     "user@1000.service", CTR_ID, "podman", NULL, "user@1000.service"},
    /* a unit inside the container's scope is still a unit */
    {"/system.slice/docker-" DOCKER_ID ".scope/system.slice/redis.service", "redis.service",
     DOCKER_ID, "docker", NULL, "redis.service"},
    /* Kubernetes, systemd driver */
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" POD_UID_
     ".slice/cri-containerd-" CTR_ID ".scope",
     NULL, CTR_ID, "containerd", POD_UID, "a3b1f0c9d8e7"},
    {"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" POD_UID_
     ".slice/crio-" CTR_ID ".scope",
     NULL, CTR_ID, "cri-o", POD_UID, "a3b1f0c9d8e7"},
    {"/kubepods.slice/kubepods-pod" POD_UID_ ".slice/crio-" CTR_ID ".scope", NULL, CTR_ID, "cri-o",
     POD_UID, "a3b1f0c9d8e7"},
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" POD_UID_
     ".slice/crio-conmon-" CTR_ID ".scope",
     "crio-conmon-" CTR_ID ".scope", NULL, NULL, POD_UID, "crio-conmon-" CTR_ID ".scope"},
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" POD_UID_
     ".slice/docker-" DOCKER_ID ".scope",
     NULL, DOCKER_ID, "docker", POD_UID, "4f1c7e2d9a8b"},
    /* the pod's own slice (its pause sandbox, before a container) */
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" POD_UID_ ".slice", NULL,
     NULL, NULL, POD_UID, ""},
    /* Kubernetes, cgroupfs driver */
    {"/kubepods/burstable/pod" POD_UID "/" CTR_ID, NULL, CTR_ID, NULL, POD_UID, "a3b1f0c9d8e7"},
    {"/kubepods/besteffort/pod" POD_UID "/" CTR_ID, NULL, CTR_ID, NULL, POD_UID, "a3b1f0c9d8e7"},
    {"/kubepods/pod" POD_UID "/" CTR_ID, NULL, CTR_ID, NULL, POD_UID, "a3b1f0c9d8e7"},
    {"/kubepods/burstable", NULL, NULL, NULL, NULL, ""},
    /* a pod directory far from kubepods is nobody's pod */
    {"/srv/a/b/pod" POD_UID, NULL, NULL, NULL, NULL, ""},
    /* kind / nested kubelet */
    {"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/"
     "kubelet-kubepods-burstable-pod" POD_UID_ ".slice/cri-containerd-" CTR_ID ".scope",
     NULL, CTR_ID, "containerd", POD_UID, "a3b1f0c9d8e7"},
};

static void test_shapes(void **state)
{
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const struct want *w = &shapes[i];
		struct cg_attr a;
		const char *svc;
		size_t len;

		assert_int_equal(cg_parse_path(w->path, &a), 0);
		assert_string_equal(a.path, w->path);
		assert_int_equal(a.path_len, strlen(w->path));
		span_eq(&a, a.unit, w->unit, w->path);
		span_eq(&a, a.container, w->container, w->path);
		if (w->runtime)
			assert_string_equal(a.runtime, w->runtime);
		else
			assert_null(a.runtime);
		assert_string_equal(a.pod_uid, w->pod_uid ? w->pod_uid : "");
		assert_int_equal(a.kubernetes, w->pod_uid != NULL);
		svc = cg_service(&a, &len);
		if (len != strlen(w->service) || memcmp(svc, w->service, len) != 0)
			fail_msg("%s: service '%.*s', want '%s'", w->path, (int)len, svc,
				 w->service);
	}
}

static void test_bad_paths(void **state)
{
	char longp[CG_PATH_MAX + 8];
	struct cg_attr a;

	assert_int_equal(cg_parse_path("system.slice/x.service", &a), -EINVAL);
	assert_int_equal(a.unit.len, 0);
	assert_int_equal(cg_parse_path("", &a), -EINVAL);
	memset(longp, 'a', sizeof(longp));
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(cg_parse_path(longp, &a), -ENAMETOOLONG);
	assert_int_equal(a.path_len, 0);
	/* upper-case hex is no container id the runtimes write */
	assert_int_equal(
	    cg_parse_path(
		"/docker/4F1C7E2D9A8B6C5D3E2F1A0B9C8D7E6F5A4B3C2D1E0F9A8B7C6D5E4F3A2B1C0D", &a),
	    0);
	assert_int_equal(a.container.len, 0);
	/* a uid with other characters is no pod */
	assert_int_equal(cg_parse_path("/kubepods.slice/kubepods-podxyz.slice", &a), 0);
	assert_false(a.kubernetes);
}

static char tmpdir[64];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_mounts(void **state)
{
	char path[128], out[256];

	snprintf(path, sizeof(path), "%s/mounts", tmpdir);
	/* hybrid: v1 controllers and the unified mount */
	write_file(path, "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
			 "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
			 "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nsdelegate 0 0\n");
	assert_int_equal(cg_find_mount(path, out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/unified");
	/* pure v2 */
	write_file(path, "proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n");
	assert_int_equal(cg_find_mount(path, out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup");
	/* elsewhere, with an escaped space */
	write_file(path, "none /run/my\\040cg cgroup2 rw 0 0\n");
	assert_int_equal(cg_find_mount(path, out, sizeof(out)), 0);
	assert_string_equal(out, "/run/my cg");
	/* v1 only */
	write_file(path, "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n");
	assert_int_equal(cg_find_mount(path, out, sizeof(out)), -ENOENT);
	assert_int_equal(cg_find_mount("/nonexistent/mounts", out, sizeof(out)), -ENOENT);
	write_file(path, "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n");
	assert_int_equal(cg_find_mount(path, out, 4), -ENAMETOOLONG);
}

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
	return fake_now;
}

static uint64_t ino_of(const char *rel)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/root%s", tmpdir, rel);
	assert_int_equal(stat(p, &st), 0);
	return st.st_ino;
}

static void mkd(const char *rel)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/root%s", tmpdir, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void rmd(const char *rel)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/root%s", tmpdir, rel);
	assert_int_equal(rmdir(p), 0);
}

/* A directory tree stands in for the hierarchy: its inodes are the ids. */
static void test_cache(void **state)
{
	char root[128];
	struct cg_cache_config cfg = {
	    .root = root, .capacity = 4, .clock = fake_clock, .walk_interval_ns = 1000};
	const struct cg_attr *a;
	struct cg_cache *c;
	struct cg_stats st;
	uint64_t svc, dock, late;

	snprintf(root, sizeof(root), "%s/root", tmpdir);
	mkd("");
	mkd("/system.slice");
	mkd("/system.slice/web.service");
	mkd("/system.slice/docker-" DOCKER_ID ".scope");
	svc = ino_of("/system.slice/web.service");
	dock = ino_of("/system.slice/docker-" DOCKER_ID ".scope");

	fake_now = 10000;
	c = cg_cache_new(&cfg);
	assert_non_null(c);
	assert_null(cg_lookup(c, 0));
	a = cg_lookup(c, svc); /* unknown: walks */
	assert_non_null(a);
	assert_string_equal(a->path, "/system.slice/web.service");
	a = cg_lookup(c, dock);
	assert_non_null(a);
	assert_string_equal(a->runtime, "docker");
	cg_cache_stats(c, &st);
	assert_int_equal(st.walks, 1);
	assert_int_equal(st.entries, 4); /* root, the slice, the two leaves */

	/* a new cgroup, seen within the interval: not walked for, then walked for */
	mkd("/system.slice/late.service");
	late = ino_of("/system.slice/late.service");
	assert_null(cg_lookup(c, late));
	cg_cache_stats(c, &st);
	assert_int_equal(st.walks_limited, 1);
	fake_now += 1000;
	/* the cache is full: the new one evicts an entry not looked up lately */
	a = cg_lookup(c, late);
	assert_non_null(a);
	assert_string_equal(a->path, "/system.slice/late.service");
	cg_cache_stats(c, &st);
	assert_int_equal(st.walks, 2);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.entries, 4);
	/* the two looked up before are still there */
	assert_non_null(cg_lookup(c, svc));
	assert_non_null(cg_lookup(c, dock));

	/* removed: the last known path stays */
	rmd("/system.slice/late.service");
	fake_now += 1000;
	a = cg_lookup(c, late);
	assert_non_null(a);
	assert_string_equal(a->path, "/system.slice/late.service");
	cg_cache_stats(c, &st);
	assert_int_equal(st.walks, 2); /* a hit walks nothing */

	/* an id no walk finds */
	fake_now += 1000;
	assert_null(cg_lookup(c, 123456789));
	cg_cache_stats(c, &st);
	assert_int_equal(st.walks, 3);
	cg_cache_free(c);

	rmd("/system.slice/docker-" DOCKER_ID ".scope");
	rmd("/system.slice/web.service");
	rmd("/system.slice");
	rmd("");
}

static void test_walk_bound(void **state)
{
	char root[128];
	struct cg_cache_config cfg = {.root = root, .capacity = 64, .walk_max_dirs = 3};
	struct cg_cache *c;
	struct cg_stats st;

	snprintf(root, sizeof(root), "%s/root", tmpdir);
	mkd("");
	mkd("/a");
	mkd("/b");
	mkd("/c");
	mkd("/d");
	c = cg_cache_new(&cfg);
	assert_non_null(c);
	assert_int_equal(cg_cache_walk(c), 4); /* the root and three directories */
	cg_cache_stats(c, &st);
	assert_int_equal(st.walk_truncated, 1);
	cg_cache_free(c);
	rmd("/a");
	rmd("/b");
	rmd("/c");
	rmd("/d");
	rmd("");
}

static void test_intern(void **state)
{
	struct cg_cache_config cfg = {.capacity = 2};
	struct cg_cache *c = cg_cache_new(&cfg);
	uint64_t a, b;

	assert_non_null(c);
	a = cg_cache_intern(c, "/system.slice/a.service");
	b = cg_cache_intern(c, "/system.slice/b.service");
	assert_true(a && b && a != b);
	assert_int_equal(cg_cache_intern(c, "/system.slice/a.service"), a);
	assert_string_equal(cg_lookup(c, b)->path, "/system.slice/b.service");
	assert_int_equal(cg_cache_intern(c, "relative"), 0);
	/* no root: an unknown id is not walked for */
	assert_null(cg_lookup(c, 42));
	cg_cache_free(c);
}

static void test_resolve(void **state)
{
	char root[128], out[256], want[256];

	snprintf(root, sizeof(root), "%s/root", tmpdir);
	mkd("");
	mkd("/system.slice");
	mkd("/system.slice/nginx.service");
	snprintf(want, sizeof(want), "%s/system.slice/nginx.service", root);
	assert_int_equal(cg_resolve_arg(root, "nginx.service", out, sizeof(out)), 0);
	assert_string_equal(out, want);
	assert_int_equal(cg_resolve_arg(root, "system.slice/nginx.service", out, sizeof(out)), 0);
	assert_string_equal(out, want);
	assert_int_equal(cg_resolve_arg(root, want, out, sizeof(out)), 0);
	assert_string_equal(out, want);
	assert_int_equal(cg_resolve_arg(root, "missing.service", out, sizeof(out)), -ENOENT);
	assert_int_equal(cg_resolve_arg(root, "", out, sizeof(out)), -EINVAL);
	assert_int_equal(cg_resolve_arg(root, "nginx.service", out, 8), -ENAMETOOLONG);
	rmd("/system.slice/nginx.service");
	rmd("/system.slice");
	rmd("");
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sp-cgroup-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/mounts", tmpdir);
	unlink(p);
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shapes),     cmocka_unit_test(test_bad_paths),
	    cmocka_unit_test(test_mounts),     cmocka_unit_test(test_cache),
	    cmocka_unit_test(test_walk_bound), cmocka_unit_test(test_intern),
	    cmocka_unit_test(test_resolve),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
