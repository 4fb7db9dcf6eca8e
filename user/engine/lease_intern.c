/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Lease table: interning (addresses, owners, peers: fixed-size keys, reference counted, indices
 * that stay valid as the arrays grow) and the rollups read through it, per peer and per owner.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lease_priv.h"

/* Keys are a few words (addresses, owners, peers): each goes through the agent's hash. */
static uint64_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = n, v;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&v, b + i, 8);
		h = sp_hash64(h ^ v);
	}
	if (i < n) {
		v = 0;
		memcpy(&v, b + i, n - i);
		h = sp_hash64(h ^ v);
	}
	return h;
}

int itab_init(struct itab *t, uint32_t key_size, uint32_t rec_size)
{
	memset(t, 0, sizeof(*t));
	t->key_size = key_size;
	t->rec_size = rec_size;
	t->free_head = NIL;
	t->nbuckets = 64;
	t->buckets = malloc(t->nbuckets * sizeof(uint32_t));
	if (!t->buckets)
		return -ENOMEM;
	memset(t->buckets, 0xff, t->nbuckets * sizeof(uint32_t));
	return 0;
}

void itab_destroy(struct itab *t)
{
	free(t->recs);
	free(t->ref);
	free(t->hnext);
	free(t->buckets);
}

size_t itab_bytes(const struct itab *t)
{
	return (size_t)t->cap * (t->rec_size + 8) + (size_t)t->nbuckets * 4;
}

static uint32_t itab_find(const struct itab *t, const void *key, uint64_t h)
{
	uint32_t i;

	for (i = t->buckets[h & (t->nbuckets - 1)]; i != NIL; i = t->hnext[i])
		if (!memcmp(itab_rec(t, i), key, t->key_size))
			return i;
	return NIL;
}

static int itab_grow(struct itab *t)
{
	uint32_t ncap = t->cap ? t->cap * 2 : 64, i;
	uint8_t *recs;
	uint32_t *ref, *hnext;

	recs = realloc(t->recs, (size_t)ncap * t->rec_size);
	if (!recs)
		return -ENOMEM;
	t->recs = recs;
	ref = realloc(t->ref, ncap * sizeof(uint32_t));
	if (!ref)
		return -ENOMEM;
	t->ref = ref;
	hnext = realloc(t->hnext, ncap * sizeof(uint32_t));
	if (!hnext)
		return -ENOMEM;
	t->hnext = hnext;
	t->cap = ncap;
	if (t->cap > t->nbuckets) {
		uint32_t *b = malloc(t->cap * sizeof(uint32_t));

		if (!b)
			return 0; /* still correct, just longer chains */
		free(t->buckets);
		t->buckets = b;
		t->nbuckets = t->cap;
		memset(b, 0xff, t->nbuckets * sizeof(uint32_t));
		for (i = 0; i < t->used; i++) {
			uint64_t h;

			if (!t->ref[i])
				continue;
			h = hash_bytes(itab_rec(t, i), t->key_size) & (t->nbuckets - 1);
			t->hnext[i] = b[h];
			b[h] = i;
		}
	}
	return 0;
}

/* Finds or inserts @key and takes a reference; NIL when out of memory. *fresh says "inserted". */
uint32_t itab_get(struct itab *t, const void *key, bool *fresh)
{
	uint64_t h = hash_bytes(key, t->key_size);
	uint32_t i = itab_find(t, key, h), b;

	*fresh = false;
	if (i != NIL) {
		t->ref[i]++;
		return i;
	}
	if (t->free_head != NIL) {
		i = t->free_head;
		t->free_head = t->hnext[i];
	} else {
		if (t->used == t->cap && itab_grow(t))
			return NIL;
		i = t->used++;
	}
	memset(itab_rec(t, i), 0, t->rec_size);
	memcpy(itab_rec(t, i), key, t->key_size);
	t->ref[i] = 1;
	b = h & (t->nbuckets - 1);
	t->hnext[i] = t->buckets[b];
	t->buckets[b] = i;
	t->count++;
	*fresh = true;
	return i;
}

/* Drops a reference; true when the entry was freed. */
bool itab_put(struct itab *t, uint32_t i)
{
	uint32_t *pp;

	if (i == NIL || --t->ref[i])
		return false;
	pp = &t->buckets[hash_bytes(itab_rec(t, i), t->key_size) & (t->nbuckets - 1)];
	while (*pp != i)
		pp = &t->hnext[*pp];
	*pp = t->hnext[i];
	t->hnext[i] = t->free_head;
	t->free_head = i;
	t->count--;
	return true;
}

uint32_t lease_intern_addr(struct lease_table *t, const struct sp_addr *a, uint32_t netns)
{
	struct addr_key key = { .netns = netns, .family = a->family };
	bool fresh;

	memcpy(key.bytes, a->bytes, 16);
	return itab_get(&t->addrs, &key, &fresh);
}

static void peer_info(const struct lease_table *t, uint32_t i, struct lease_peer_info *out)
{
	const struct peer_rec *p = itab_rec(&t->peers, i);
	const struct addr_key *a = itab_rec(&t->addrs, p->addr);

	memset(out, 0, sizeof(*out));
	out->addr.family = a->family;
	memcpy(out->addr.bytes, a->bytes, 16);
	out->netns = a->netns;
	out->port = p->port;
	out->conns = p->conns;
	memcpy(out->count, p->count, sizeof(out->count));
	out->last_seen_ns = p->last_seen;
	out->closed = p->closed;
	out->lost = p->lost;
}

bool lease_peer_get(const struct lease_table *t, const struct sp_addr *addr, uint32_t netns,
		    uint16_t port, struct lease_peer_info *out)
{
	struct addr_key key = { .netns = netns, .family = addr->family };
	uint8_t pkey[PEER_KEY_SIZE] = { 0 };
	uint32_t a, p;

	memcpy(key.bytes, addr->bytes, 16);
	a = itab_find(&t->addrs, &key, hash_bytes(&key, sizeof(key)));
	if (a == NIL)
		return false;
	memcpy(pkey, &a, 4);
	memcpy(pkey + 4, &port, 2);
	p = itab_find(&t->peers, pkey, hash_bytes(pkey, sizeof(pkey)));
	if (p == NIL)
		return false;
	peer_info(t, p, out);
	return true;
}

size_t lease_for_each_peer(const struct lease_table *t,
			   void (*fn)(void *ctx, const struct lease_peer_info *p), void *ctx)
{
	struct lease_peer_info info;
	size_t n = 0;
	uint32_t i;

	for (i = 0; i < t->peers.used; i++) {
		if (!t->peers.ref[i])
			continue;
		peer_info(t, i, &info);
		fn(ctx, &info);
		n++;
	}
	return n;
}

size_t lease_for_each_owner(const struct lease_table *t,
			    void (*fn)(void *ctx, const struct lease_owner_info *o), void *ctx)
{
	struct lease_owner_info info;
	size_t n = 0;
	uint32_t i;

	for (i = 0; i < t->owners.used; i++) {
		const struct owner_rec *o = itab_rec(&t->owners, i);

		if (!t->owners.ref[i])
			continue;
		memset(&info, 0, sizeof(info));
		info.cgroup_id = o->key.cgroup_id;
		if (o->key.source != OWNER_CGROUP_ONLY) {
			info.has_pid = true;
			info.pid = o->key.pid;
			memcpy(info.comm, o->key.comm, sizeof(info.comm));
		}
		memcpy(info.count, o->count, sizeof(info.count));
		fn(ctx, &info);
		n++;
	}
	memset(&info, 0, sizeof(info));
	memcpy(info.count, t->unowned, sizeof(info.count));
	for (unsigned int k = 0; k < SP_LEASE_KIND_MAX; k++)
		for (unsigned int s = 0; s < LEASE_STATE_MAX; s++)
			if (info.count[k][s]) {
				fn(ctx, &info);
				return n + 1;
			}
	return n;
}
