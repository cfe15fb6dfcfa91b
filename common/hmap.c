// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

char hmap_tomb[1];

/* 8 bytes at a time (keys here are long: stacks, paths), then a final mix. */
uint64_t hmap_hash(const void *p, size_t n)
{
	const char *s = p;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull), w;

	for (; n >= 8; n -= 8, s += 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
	}
	w = 0;
	memcpy(&w, s, n);
	h = (h ^ w) * 0x94d049bb133111ebull;
	h ^= h >> 29;
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 32);
}

static uint64_t hash_str(const char *s)
{
	return hmap_hash(s, strlen(s));
}

static struct hmap_entry *find(const struct hmap *m, const char *key, uint64_t h,
			       struct hmap_entry **ret_free)
{
	size_t i, mask;
	struct hmap_entry *tomb = NULL;

	if (ret_free)
		*ret_free = NULL;
	if (!m->cap)
		return NULL;
	mask = m->cap - 1;
	for (i = h & mask;; i = (i + 1) & mask) {
		struct hmap_entry *e = &m->e[i];

		if (!e->key) {
			if (ret_free)
				*ret_free = tomb ? tomb : e;
			return NULL;
		}
		if (e->key == HMAP_TOMB) {
			if (!tomb)
				tomb = e;
		} else if (e->hash == h && !strcmp(e->key, key)) {
			return e;
		}
	}
}

static int grow(struct hmap *m)
{
	size_t ncap = m->cap ? m->cap : 16;
	struct hmap old = *m;

	while (ncap / 2 < m->n + 1)
		ncap *= 2;
	if (ncap < m->cap)
		ncap = m->cap;
	m->e = calloc(ncap, sizeof(*m->e));
	if (!m->e) {
		*m = old;
		return -ENOMEM;
	}
	m->cap = ncap;
	m->n = m->used = 0;
	for (size_t i = 0; i < old.cap; i++) {
		struct hmap_entry *slot;

		if (!old.e[i].key || old.e[i].key == HMAP_TOMB)
			continue;
		find(m, old.e[i].key, old.e[i].hash, &slot);
		*slot = old.e[i];
		m->n++;
		m->used++;
	}
	free(old.e);
	return 0;
}

void *hmap_get(const struct hmap *m, const char *key)
{
	struct hmap_entry *e = m->cap ? find(m, key, hash_str(key), NULL) : NULL;

	return e ? e->val : NULL;
}

void *hmap_get_hashed(const struct hmap *m, const char *key, uint64_t hash)
{
	struct hmap_entry *e = m->cap ? find(m, key, hash, NULL) : NULL;

	return e ? e->val : NULL;
}

void hmap_prefetch_slot(const struct hmap *m, uint64_t hash)
{
	if (m->cap)
		__builtin_prefetch(&m->e[hash & (m->cap - 1)]);
}

void hmap_prefetch_entry(const struct hmap *m, uint64_t hash)
{
	const struct hmap_entry *e;

	if (!m->cap)
		return;
	e = &m->e[hash & (m->cap - 1)];
	if (e->hash != hash || !e->key || e->key == HMAP_TOMB)
		return;	/* probed further at the lookup: no hint */
	__builtin_prefetch(e->key);
	__builtin_prefetch(e->val);
}

int hmap_put(struct hmap *m, const char *key, void *val, void **ret_old)
{
	struct hmap_entry *e, *slot;
	uint64_t h = hash_str(key);
	char *k;

	if (ret_old)
		*ret_old = NULL;
	if ((m->used + 1) * 4 > m->cap * 3 && grow(m))
		return -ENOMEM;
	e = find(m, key, h, &slot);
	if (e) {
		if (ret_old)
			*ret_old = e->val;
		e->val = val;
		return 0;
	}
	/* copied before the slot is touched: a tombstone made empty would cut the
	 * probe chain of the keys past it */
	if (!(k = strdup(key)))
		return -ENOMEM;
	if (slot->key != HMAP_TOMB)
		m->used++;
	slot->key = k;
	slot->val = val;
	slot->hash = h;
	m->n++;
	return 0;
}

void *hmap_del(struct hmap *m, const char *key)
{
	struct hmap_entry *e = m->cap ? find(m, key, hash_str(key), NULL) : NULL;

	return e ? hmap_del_entry(m, e) : NULL;
}

void *hmap_del_entry(struct hmap *m, struct hmap_entry *e)
{
	void *v = e->val;

	free(e->key);
	e->key = HMAP_TOMB;
	e->val = NULL;
	m->n--;
	return v;
}

void hmap_free(struct hmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->e[i].key && m->e[i].key != HMAP_TOMB)
			free(m->e[i].key);
	free(m->e);
	memset(m, 0, sizeof(*m));
}
