// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup v2 ids to paths, and paths to the unit, container and pod they name (cgroup.h).
 *
 * Path shapes (the components that matter; anything around them is free):
 *   systemd:          /system.slice/nginx.service, /user.slice/user-1000.slice/session-2.scope
 *   docker (systemd): /system.slice/docker-<64 hex>.scope
 *   docker (cgroupfs): /docker/<64 hex>
 *   containerd:       .../cri-containerd-<hex>.scope
 *   cri-o:            .../crio-<hex>.scope (crio-conmon-<hex>.scope is its monitor, a unit)
 *   podman:           .../libpod-<hex>.scope (libpod-conmon-<hex>.scope likewise)
 *   kubelet, systemd driver:  /kubepods.slice/kubepods-burstable.slice/
 *                             kubepods-burstable-pod<uid with _>.slice/<container scope>
 *   kubelet, cgroupfs driver: /kubepods/burstable/pod<uid>/<hex>, /kubepods/pod<uid>/<hex>
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "util.h"

#define WALK_MAX_DEPTH 32
#define INTERN_BASE    (1ULL << 63) /* ids cg_cache_intern() hands out; inodes never get there */

/* ---- path parsing ---------------------------------------------------------------------- */

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static bool starts_with(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && memcmp(s, prefix, k) == 0;
}

static bool all_hex(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return false;
	}
	return true;
}

static const struct {
	const char *prefix;
	const char *runtime;
	size_t exact_len; /* 0: any length */
} scopes[] = {
    {"docker-", "docker", 64},
    {"cri-containerd-", "containerd", 0},
    {"crio-", "cri-o", 0},
    {"libpod-", "podman", 0},
};

/* <runtime prefix><hex id>.scope: the container's own scope. */
static bool container_scope(const char *s, size_t n, const char **runtime, size_t *id_off,
			    size_t *id_len)
{
	if (!ends_with(s, n, ".scope"))
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(scopes); i++) {
		size_t p = strlen(scopes[i].prefix), len;

		if (!starts_with(s, n, scopes[i].prefix))
			continue;
		len = n - p - strlen(".scope");
		if (!all_hex(s + p, len) || (scopes[i].exact_len && len != scopes[i].exact_len))
			continue;
		*runtime = scopes[i].runtime;
		*id_off = p;
		*id_len = len;
		return true;
	}
	return false;
}

/* A pod uid: 32 hex digits in 5 groups, separated by '-' (cgroupfs) or '_' (systemd). */
static bool set_pod_uid(struct cg_attr *a, const char *s, size_t n)
{
	if (n == 0 || n >= sizeof(a->pod_uid))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (ch != '-' && ch != '_' && !all_hex(&ch, 1))
			return false;
	}
	for (size_t i = 0; i < n; i++)
		a->pod_uid[i] = s[i] == '_' ? '-' : s[i];
	a->pod_uid[n] = '\0';
	a->kubernetes = true;
	return true;
}

/* kubepods-pod<uid>.slice, kubepods-<qos>-pod<uid>.slice (and any prefix kubelet nests it in). */
static bool kube_slice(struct cg_attr *a, const char *s, size_t n)
{
	const char *pod = NULL;

	if (!ends_with(s, n, ".slice") || !memmem(s, n, "kubepods", 8))
		return false;
	for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), "-pod", 4)) != NULL; p++)
		pod = p;
	if (!pod)
		return false;
	pod += 4;
	return set_pod_uid(a, pod, n - (size_t)(pod - s) - strlen(".slice"));
}

static void span(struct cg_span *sp, size_t off, size_t len)
{
	sp->off = (uint16_t)off;
	sp->len = (uint16_t)len;
}

int cg_parse_path(const char *path, struct cg_attr *a)
{
	size_t len = strlen(path), s, e;
	/* cgroupfs layouts: where the kubepods and docker components were, in components */
	int comp = 0, kubepods_at = -100, pod_at = -100, docker_at = -100;

	memset(a, 0, sizeof(*a));
	if (path[0] != '/')
		return -EINVAL;
	if (len >= sizeof(a->path))
		return -ENAMETOOLONG;
	memcpy(a->path, path, len + 1);
	a->path_len = (uint16_t)len;

	for (s = 1; s < len; s = e + 1, comp++) {
		const char *c = a->path + s, *rt;
		size_t n, id_off, id_len;

		for (e = s; e < len && a->path[e] != '/'; e++)
			;
		n = e - s;
		if (!n)
			continue;
		if (container_scope(c, n, &rt, &id_off, &id_len)) {
			a->runtime = rt;
			span(&a->container, s + id_off, id_len);
		} else if (ends_with(c, n, ".service") || ends_with(c, n, ".scope")) {
			span(&a->unit, s, n);
		} else if (kube_slice(a, c, n)) {
			/* recorded */
		} else if (n == 8 && !memcmp(c, "kubepods", 8)) {
			kubepods_at = comp;
		} else if (n == 6 && !memcmp(c, "docker", 6)) {
			docker_at = comp;
		} else if (comp - kubepods_at <= 2 && starts_with(c, n, "pod") &&
			   set_pod_uid(a, c + 3, n - 3)) {
			pod_at = comp;
		} else if (comp == pod_at + 1 && all_hex(c, n)) {
			span(&a->container, s, n); /* runtime: not in the path */
		} else if (comp == docker_at + 1 && n == 64 && all_hex(c, n)) {
			a->runtime = "docker";
			span(&a->container, s, n);
		}
	}
	return 0;
}

const char *cg_service(const struct cg_attr *a, size_t *len)
{
	if (a->unit.len) {
		*len = a->unit.len;
		return a->path + a->unit.off;
	}
	if (a->container.len) {
		*len = a->container.len < CG_SHORT_ID_LEN ? a->container.len : CG_SHORT_ID_LEN;
		return a->path + a->container.off;
	}
	*len = 0;
	return "";
}

/* ---- the mount ------------------------------------------------------------------------- */

/* /proc/mounts escapes space, tab, newline and backslash as \ooo. */
static void unescape_mount(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

int cg_find_mount(const char *mounts_file, char *out, size_t cap)
{
	char line[4096];
	int err = -ENOENT;
	FILE *f = fopen(mounts_file, "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *dev, *dir, *type;

		dev = strtok_r(line, " \t\n", &save);
		dir = dev ? strtok_r(NULL, " \t\n", &save) : NULL;
		type = dir ? strtok_r(NULL, " \t\n", &save) : NULL;
		if (!type || strcmp(type, "cgroup2") != 0)
			continue;
		unescape_mount(dir);
		if (strlen(dir) >= cap) {
			err = -ENAMETOOLONG;
			continue;
		}
		strcpy(out, dir);
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

/* ---- the cache ------------------------------------------------------------------------- */

#define NIL UINT32_MAX

struct cg_entry {
	uint64_t id; /* 0: free */
	uint32_t hnext;
	bool ref; /* looked up since the clock hand last passed */
	struct cg_attr attr;
};

struct cg_cache {
	struct cg_cache_config cfg;
	char *root;
	struct cg_entry *e;
	uint32_t *buckets;
	uint32_t mask, hand, count;
	uint64_t last_walk_ns;
	bool walked;
	struct cg_stats st;
};

struct cg_cache *cg_cache_new(const struct cg_cache_config *cfg)
{
	struct cg_cache *c = calloc(1, sizeof(*c));
	uint32_t nb = 2;

	if (!c)
		return NULL;
	c->cfg = *cfg;
	if (!c->cfg.capacity)
		c->cfg.capacity = CG_CACHE_DEFAULT;
	if (!c->cfg.walk_max_dirs)
		c->cfg.walk_max_dirs = 4 * c->cfg.capacity;
	if (!c->cfg.walk_interval_ns)
		c->cfg.walk_interval_ns = NSEC_PER_SEC;
	while (nb < 2 * c->cfg.capacity)
		nb <<= 1;
	c->mask = nb - 1;
	c->root = cfg->root ? strdup(cfg->root) : NULL;
	c->e = calloc(c->cfg.capacity, sizeof(*c->e));
	c->buckets = malloc(nb * sizeof(*c->buckets));
	if ((cfg->root && !c->root) || !c->e || !c->buckets) {
		cg_cache_free(c);
		return NULL;
	}
	memset(c->buckets, 0xff, nb * sizeof(*c->buckets));
	return c;
}

void cg_cache_free(struct cg_cache *c)
{
	if (!c)
		return;
	free(c->root);
	free(c->e);
	free(c->buckets);
	free(c);
}

static struct cg_entry *find(struct cg_cache *c, uint64_t id)
{
	for (uint32_t i = c->buckets[sp_hash64(id) & c->mask]; i != NIL; i = c->e[i].hnext)
		if (c->e[i].id == id)
			return &c->e[i];
	return NULL;
}

static void unlink_entry(struct cg_cache *c, uint32_t idx)
{
	uint32_t *p = &c->buckets[sp_hash64(c->e[idx].id) & c->mask];

	while (*p != idx)
		p = &c->e[*p].hnext;
	*p = c->e[idx].hnext;
	c->e[idx].id = 0;
	c->count--;
}

/* A free slot, or with evict the first entry not looked up since the hand last passed it. */
static int take_slot(struct cg_cache *c, bool evict, uint32_t *out)
{
	uint32_t cap = c->cfg.capacity;

	if (c->count < cap) {
		for (uint32_t n = 0; n < cap; n++, c->hand = (c->hand + 1) % cap)
			if (!c->e[c->hand].id) {
				*out = c->hand;
				return 0;
			}
	}
	if (!evict)
		return -ENOSPC;
	for (uint32_t n = 0; n < 2 * cap; n++, c->hand = (c->hand + 1) % cap) {
		if (c->e[c->hand].ref) {
			c->e[c->hand].ref = false;
			continue;
		}
		break;
	}
	*out = c->hand;
	unlink_entry(c, c->hand);
	c->st.evictions++;
	return 0;
}

static int add(struct cg_cache *c, uint64_t id, const char *path, bool evict)
{
	struct cg_entry *e = find(c, id);
	struct cg_attr a;
	uint32_t idx, b;
	int err = cg_parse_path(path, &a);

	if (err)
		return err;
	if (e) {
		if (strcmp(e->attr.path, path) != 0)
			e->attr = a; /* renamed */
		return 0;
	}
	err = take_slot(c, evict, &idx);
	if (err)
		return err;
	b = sp_hash64(id) & c->mask;
	c->e[idx].id = id;
	c->e[idx].ref = false;
	c->e[idx].attr = a;
	c->e[idx].hnext = c->buckets[b];
	c->buckets[b] = idx;
	c->count++;
	return 1;
}

int cg_cache_add(struct cg_cache *c, uint64_t id, const char *path)
{
	if (!id)
		return -EINVAL;
	return add(c, id, path, true);
}

/* FNV-1a: a path's id in the interned range, so a path is found by its id's hash chain */
static uint64_t path_id(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *path; path++)
		h = (h ^ (uint8_t)*path) * 0x100000001b3ULL;
	return INTERN_BASE | h;
}

uint64_t cg_cache_intern(struct cg_cache *c, const char *path)
{
	uint64_t id = path_id(path);

	/* a collision moves on to the next id; a handful of tries is plenty */
	for (int i = 0; i < 8; i++, id = INTERN_BASE | (id + 1)) {
		struct cg_entry *e = find(c, id);

		if (!e)
			return add(c, id, path, true) < 0 ? 0 : id;
		if (strcmp(e->attr.path, path) == 0) {
			e->ref = true;
			return id;
		}
	}
	return 0;
}

struct walk {
	struct cg_cache *c;
	uint64_t want;
	uint32_t dirs;
	bool truncated;
	int added;
	char path[CG_PATH_MAX]; /* relative to the root */
};

static void walk_dir(struct walk *w, int dfd, size_t plen, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;

	if (!d) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		int sub;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (w->dirs >= w->c->cfg.walk_max_dirs) {
			w->truncated = true;
			break;
		}
		w->dirs++;
		if (plen + 1 + n >= sizeof(w->path))
			continue;
		w->path[plen] = '/';
		memcpy(w->path + plen + 1, de->d_name, n + 1);
		/* on cgroup2 the directory entry's inode is the cgroup id */
		if (add(w->c, de->d_ino, w->path, de->d_ino == w->want) > 0)
			w->added++;
		if (depth + 1 >= WALK_MAX_DEPTH)
			continue;
		sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub >= 0)
			walk_dir(w, sub, plen + 1 + n, depth + 1);
		w->path[plen] = '\0';
	}
	closedir(d);
}

static int walk(struct cg_cache *c, uint64_t want)
{
	struct walk w = {.c = c, .want = want};
	struct stat st;
	int fd;

	if (!c->root)
		return -ENOENT;
	c->st.walks++;
	c->walked = true;
	c->last_walk_ns = c->cfg.clock ? c->cfg.clock() : 0;
	fd = open(c->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && add(c, st.st_ino, "/", st.st_ino == want) > 0)
		w.added++;
	walk_dir(&w, fd, 0, 0);
	if (w.truncated)
		c->st.walk_truncated++;
	return w.added;
}

int cg_cache_walk(struct cg_cache *c)
{
	return walk(c, 0);
}

const struct cg_attr *cg_lookup(struct cg_cache *c, uint64_t id)
{
	struct cg_entry *e;

	if (!c || !id)
		return NULL;
	e = find(c, id);
	if (e) {
		c->st.hits++;
		e->ref = true;
		return &e->attr;
	}
	c->st.misses++;
	if (!c->root || id >= INTERN_BASE)
		return NULL;
	if (c->walked && c->cfg.clock &&
	    c->cfg.clock() - c->last_walk_ns < c->cfg.walk_interval_ns) {
		c->st.walks_limited++;
		return NULL;
	}
	walk(c, id);
	e = find(c, id);
	if (!e)
		return NULL;
	e->ref = true;
	return &e->attr;
}

void cg_cache_stats(const struct cg_cache *c, struct cg_stats *st)
{
	*st = c->st;
	st->entries = c->count;
}

/* ---- --cgroup arguments ---------------------------------------------------------------- */

static bool is_unit_name(const char *s)
{
	size_t n = strlen(s);

	return !strchr(s, '/') && (ends_with(s, n, ".service") || ends_with(s, n, ".scope") ||
				   ends_with(s, n, ".slice"));
}

/* Depth first, bounded: the first directory named `name`. */
static bool find_dir(char *path, size_t cap, const char *name, int depth, uint32_t *budget)
{
	size_t plen = strlen(path);
	struct dirent *de;
	bool found = false;
	DIR *d;

	if (depth >= WALK_MAX_DEPTH || !(d = opendir(path)))
		return false;
	while (!found && (de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.' || !*budget)
			continue;
		(*budget)--;
		if ((size_t)snprintf(path + plen, cap - plen, "/%s", de->d_name) >= cap - plen)
			continue;
		found =
		    strcmp(de->d_name, name) == 0 || find_dir(path, cap, name, depth + 1, budget);
		if (!found)
			path[plen] = '\0';
	}
	closedir(d);
	return found;
}

int cg_resolve_arg(const char *root, const char *arg, char *out, size_t cap)
{
	uint32_t budget = 65536;
	int n;

	if (!*arg)
		return -EINVAL;
	if (arg[0] == '/') {
		n = snprintf(out, cap, "%s", arg);
	} else if (!is_unit_name(arg)) {
		if (!root)
			return -ENOENT;
		n = snprintf(out, cap, "%s/%s", root, arg);
	} else {
		if (!root)
			return -ENOENT;
		if ((size_t)snprintf(out, cap, "%s", root) >= cap)
			return -ENAMETOOLONG;
		return find_dir(out, cap, arg, 0, &budget) ? 0 : -ENOENT;
	}
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}
