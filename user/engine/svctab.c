// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Per-service numbers behind the metrics' service label: see svctab.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "svctab.h"
#include "util.h"

#define SVC_SLOTS (4 * SVC_MAX) /* power of two: a quarter full at most */

int svc_init(struct svc_tab *t)
{
	memset(t, 0, sizeof(*t));
	t->s = calloc(SVC_MAX, sizeof(*t->s));
	t->slots = calloc(SVC_SLOTS, sizeof(*t->slots));
	if (!t->s || !t->slots) {
		svc_free(t);
		return -ENOMEM;
	}
	strcpy(t->s[SVC_OTHER].name, "other");
	t->n = 1;
	return 0;
}

void svc_free(struct svc_tab *t)
{
	free(t->s);
	free(t->slots);
	t->s = NULL;
	t->slots = NULL;
	t->n = 0;
}

/* FNV-1a */
static uint32_t name_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

uint16_t svc_intern(struct svc_tab *t, const char *name, size_t len)
{
	uint32_t i;

	if (!t->s || !len)
		return SVC_OTHER;
	if (len >= SVC_NAME_MAX)
		len = SVC_NAME_MAX - 1;
	for (i = name_hash(name, len) & (SVC_SLOTS - 1); t->slots[i];
	     i = (i + 1) & (SVC_SLOTS - 1)) {
		const struct svc_stat *s = &t->s[t->slots[i] - 1];

		if (!strncmp(s->name, name, len) && s->name[len] == '\0')
			return (uint16_t)(t->slots[i] - 1);
	}
	if (t->n >= SVC_MAX) {
		t->full++;
		return SVC_OTHER;
	}
	memcpy(t->s[t->n].name, name, len);
	t->s[t->n].name[len] = '\0';
	/* "other" is the fold's own label: a service of that name joins it */
	if (!strcmp(t->s[t->n].name, "other"))
		return SVC_OTHER;
	t->slots[i] = (uint16_t)(t->n + 1);
	return (uint16_t)t->n++;
}

/* what the top N is chosen by: what it did, and what it holds stuck now */
static uint64_t score(const struct svc_stat *s)
{
	uint64_t v = s->activity;

	for (int k = 0; k < STUCK_STATES; k++)
		v += s->stuck[k];
	return v;
}

size_t svc_top(const struct svc_tab *t, size_t n, uint16_t *out, uint32_t *folded)
{
	size_t k = 0;

	*folded = 0;
	/* insertion into a sorted list of at most n: n is small (a flag, default 20) */
	for (uint32_t i = 1; i < t->n; i++) {
		const struct svc_stat *s = &t->s[i];
		size_t j;

		uint64_t v = score(s);

		if (!v)
			continue;
		if (k == n && (!n || score(&t->s[out[k - 1]]) >= v)) {
			(*folded)++;
			continue;
		}
		if (k == n) {
			k--;
			(*folded)++;
		}
		for (j = k; j > 0 && score(&t->s[out[j - 1]]) < v; j--)
			out[j] = out[j - 1];
		out[j] = (uint16_t)i;
		k++;
	}
	return k;
}
