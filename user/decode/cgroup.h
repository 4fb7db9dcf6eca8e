/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Who owns a socket, from its owner's cgroup v2: the id in a ring record is the cgroup
 * directory's inode on the cgroup2 mount. This turns an id into the directory's path (a bounded
 * cache, refreshed by a bounded, rate-limited walk of the hierarchy when an unknown id is seen)
 * and a path into what it says: the systemd unit, the container and its runtime, the Kubernetes
 * pod. A cgroup removed after it was seen keeps its last known path until evicted.
 *
 * No libbpf; the clock is injected, so the cache is unit-testable.
 */
#ifndef SP_CGROUP_H
#define SP_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CG_PATH_MAX	 512 /* a path relative to the mount, '/' first, NUL included */
#define CG_POD_UID_MAX	 40  /* 36 characters of a UUID, NUL included */
#define CG_SHORT_ID_LEN	 12  /* a container's short id, as docker ps prints it */
#define CG_CACHE_DEFAULT 1024

/* A piece of cg_attr.path: offset and length (not NUL-terminated). */
struct cg_span {
	uint16_t off, len;
};

/* What a cgroup path says (docs/EVENTS.md: systemd.unit, container.*, kubernetes.pod.uid). */
struct cg_attr {
	const char *runtime;	  /* container.runtime: "docker", "containerd", "cri-o", "podman" */
	bool kubernetes;	  /* orchestrator.type: kubernetes */
	struct cg_span unit;	  /* systemd.unit, len 0 when none */
	struct cg_span container; /* container.id, len 0 when none */
	char pod_uid[CG_POD_UID_MAX]; /* kubernetes.pod.uid with dashes, "" when none */
	uint16_t path_len;
	char path[CG_PATH_MAX]; /* sockpulse.cgroup */
};

/*
 * Parses a path relative to the cgroup2 mount ("/system.slice/nginx.service"). -EINVAL if it does
 * not start with '/', -ENAMETOOLONG if it does not fit; *a is then cleared.
 */
int cg_parse_path(const char *path, struct cg_attr *a);

/*
 * The name a person looks for: the unit, else the container's short id; *len 0 when neither
 * (callers fall back to the command).
 */
const char *cg_service(const struct cg_attr *a, size_t *len);

/*
 * The cgroup2 mount point from a mounts file (/proc/mounts format, octal escapes decoded): pure v2
 * hosts and the `unified` mount of a hybrid one. -ENOENT when there is none.
 */
int cg_find_mount(const char *mounts_file, char *out, size_t cap);

struct cg_stats {
	uint64_t hits, misses;
	uint64_t walks;		 /* walks of the hierarchy */
	uint64_t walks_limited;	 /* unknown ids not walked for: the last walk was too recent */
	uint64_t walk_truncated; /* walks that stopped at the directory bound */
	uint64_t evictions;	 /* entries dropped for room */
	uint64_t entries;
};

struct cg_cache;

struct cg_cache_config {
	const char *root;	   /* the cgroup2 mount; NULL: no walking (replay) */
	uint32_t capacity;	   /* entries; 0: CG_CACHE_DEFAULT */
	uint32_t walk_max_dirs;	   /* 0: 4 x capacity */
	uint64_t walk_interval_ns; /* at most one walk per interval; 0: one second */
	uint64_t (*clock)(void);   /* CLOCK_MONOTONIC ns; NULL: never rate-limited */
};

struct cg_cache *cg_cache_new(const struct cg_cache_config *cfg);
void cg_cache_free(struct cg_cache *c);

/*
 * The attribution of a cgroup id, or NULL when unknown (a walk for it is made unless one was made
 * less than walk_interval_ns ago). The pointer is valid until the next call that changes the
 * cache (lookup, add, walk).
 */
const struct cg_attr *cg_lookup(struct cg_cache *c, uint64_t id);
/* Records id -> path (the walk does; replay uses it with ids of its own). */
int cg_cache_add(struct cg_cache *c, uint64_t id, const char *path);
/* Walks the hierarchy now, whatever the rate limit says; entries added or -errno. */
int cg_cache_walk(struct cg_cache *c);
/* The id of a path the cache holds, or a new one from ids reserved for paths (replay). */
uint64_t cg_cache_intern(struct cg_cache *c, const char *path);
void cg_cache_stats(const struct cg_cache *c, struct cg_stats *st);

/*
 * A cgroup argument: a systemd unit name (`nginx.service`, `foo.scope`, `bar.slice`) found under
 * the mount, or a path (absolute, or relative to the mount). Writes the directory to out.
 */
int cg_resolve_arg(const char *root, const char *arg, char *out, size_t cap);

#endif
