/* SPDX-License-Identifier: Apache-2.0 */
#ifndef COMMON_HMAP_H
#define COMMON_HMAP_H
/* String-keyed hash map (open addressing, linear probing, tombstones). Keys are copied. */
#include <stddef.h>
#include <stdint.h>

struct hmap_entry {
	char *key;		/* NULL: empty; HMAP_TOMB: deleted */
	void *val;
	uint64_t hash;		/* of key: probes compare it before the bytes */
};

struct hmap {
	size_t cap, n, used;	/* used = live + tombstones */
	struct hmap_entry *e;
};

extern char hmap_tomb[];
#define HMAP_TOMB hmap_tomb

/* The maps' hash of n bytes (64 bits, 8 bytes at a time): for other uses too. */
uint64_t hmap_hash(const void *p, size_t n);
void *hmap_get(const struct hmap *m, const char *key);
/* Inserts or replaces; *ret_old (may be NULL) gets the replaced value. Returns 0 or -ENOMEM. */
int hmap_put(struct hmap *m, const char *key, void *val, void **ret_old);
/* Removes and returns the value, or NULL. */
void *hmap_del(struct hmap *m, const char *key);
/*
 * Removes the entry hmap_for_each is at and returns its value. Safe while
 * iterating: a deletion only marks its slot (nothing moves, nothing is rehashed).
 */
void *hmap_del_entry(struct hmap *m, struct hmap_entry *e);
/*
 * hmap_get with the key's hash already known: hash is hmap_hash(key,
 * strlen(key)), e.g. another map's entry for the same key (the hash is not
 * seeded: every map hashes a key alike). Spares hashing the key again.
 */
void *hmap_get_hashed(const struct hmap *m, const char *key, uint64_t hash);
/*
 * Hints for a batch of lookups in a map too large for the caches: each lookup
 * misses on its slot, then on its key and value. Asking for the slots of the
 * whole batch first (hmap_prefetch_slot), then for the key and value of each
 * slot holding that hash (hmap_prefetch_entry), lets the misses overlap
 * instead of coming one after another. Hints only: they change nothing.
 */
void hmap_prefetch_slot(const struct hmap *m, uint64_t hash);
void hmap_prefetch_entry(const struct hmap *m, uint64_t hash);
void hmap_free(struct hmap *m);	/* frees keys, not values */

#define hmap_for_each(m, it)                                                  \
	for (struct hmap_entry *it = (m)->e; (m)->e && it < (m)->e + (m)->cap; it++) \
		if (it->key && it->key != HMAP_TOMB)
#endif
