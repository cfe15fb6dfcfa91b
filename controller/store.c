// SPDX-License-Identifier: Apache-2.0
/* The built-in profile store; see store.h. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hmap.h"
#include "k8s.h"
#include "log.h"
#include "pprof.h"
#include "pprof_merge.h"

/*
 * One policy's link to a profile. An upload for several policies of one
 * namespace is written once and hard-linked into each policy's directory: the
 * links share a blob id, and the bytes count once, to the namespace.
 */
struct entry {
	char *rel;		/* path under the store directory */
	char *key;		/* policy key */
	uint64_t size;
	uint64_t blob;
	bool counted;		/* the link that carries the blob's bytes in the totals */
	int64_t from_s, until_s;
};

/* What one namespace holds ("" for cluster policies): its quota applies to it. */
struct bucket {
	uint64_t bytes, blobs;
};

/* An upload's bytes and times, as store_put was given them. */
struct store_put_info {
	int64_t from_s, until_s;
	const uint8_t *buf;
	size_t len;
};

struct store {
	struct store_opts o;
	pthread_mutex_t lock;
	struct entry *e;	/* sorted by from_s: the oldest first */
	size_t n, cap;
	uint64_t seq, next_blob;
	struct hmap buckets;	/* namespace -> struct bucket */
	bool prune;		/* a bucket went empty: prune_buckets() has work */
	struct store_stats st;
};

int store_policy_dir(const char *key, char *buf, size_t len)
{
	const char *slash;

	if ((slash = strchr(key, '/'))) {
		if (!k8s_name_valid(key, (size_t)(slash - key)) ||
		    !k8s_name_valid(slash + 1, strlen(slash + 1)))
			return -EINVAL;
		snprintf(buf, len, "ns/%.*s/%s", (int)(slash - key), key, slash + 1);
		return 0;
	}
	if (k8s_name_valid(key, strlen(key))) {
		snprintf(buf, len, "cluster/%s", key);
		return 0;
	}
	return -EINVAL;
}

static void entry_free(struct entry *e)
{
	free(e->rel);
	free(e->key);
}

/* The namespace of a policy key into buf ("" for a cluster policy's). */
static const char *bucket_name(const char *key, char *buf, size_t len)
{
	const char *slash = strchr(key, '/');

	snprintf(buf, len, "%.*s", slash ? (int)(slash - key) : 0, key);
	return buf;
}

/* The bucket of a policy key, made when absent (NULL: out of memory). */
static struct bucket *bucket_of(struct store *s, const char *key)
{
	char name[300];
	struct bucket *b = hmap_get(&s->buckets, bucket_name(key, name, sizeof(name)));

	if (b)
		return b;
	b = calloc(1, sizeof(*b));
	if (b && hmap_put(&s->buckets, name, b, NULL)) {
		free(b);
		b = NULL;
	}
	return b;
}

/*
 * What an entry weighs against the bounds: its file's bytes for the link
 * that carries them, and for every link STORE_ENTRY_CHARGE more (its index entry
 * and directory entry), so that links are not free: a tenant's policies
 * cannot grow the index past what its share allows.
 */
static uint64_t charge(const struct entry *e)
{
	return (e->counted ? e->size : 0) + STORE_ENTRY_CHARGE;
}

/* Adds or takes away (sign -1) an entry in the totals and in its bucket b. */
static void account(struct store *s, struct bucket *b, const struct entry *e, int sign)
{
	uint64_t w = charge(e);

	if (sign > 0) {
		s->st.files += e->counted;
		s->st.bytes += w;
		b->blobs += e->counted;
		b->bytes += w;
	} else if (b) {
		s->st.files -= e->counted;
		s->st.bytes -= w;
		b->blobs -= e->counted;
		b->bytes -= w;
		s->prune |= !b->bytes;
	}
}

/*
 * Frees the buckets of namespaces that hold nothing any more: namespaces come
 * and go, and kept they would pile up. Not from drop(): its callers hold a
 * bucket (enforce) or iterate them (store_open); this runs where none does.
 * Under the lock.
 */
static void prune_buckets(struct store *s)
{
	if (!s->prune)
		return;
	s->prune = false;
	hmap_for_each(&s->buckets, it) {
		const struct bucket *b = it->val;

		if (!b->bytes && !b->blobs)	/* deleting the current entry: safe */
			free(hmap_del_entry(&s->buckets, it));
	}
}

/* Inserts keeping the order by from_s (equal times: after the others); returns the
 * position, or -ENOMEM. */
static long insert(struct store *s, struct entry *ne)
{
	struct bucket *b = bucket_of(s, ne->key);
	size_t lo = 0, hi = s->n;

	if (!b)
		return -ENOMEM;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct entry *p = realloc(s->e, cap * sizeof(*p));

		if (!p) {
			s->prune |= !b->bytes;	/* made for this entry, maybe */
			return -ENOMEM;
		}
		s->e = p;
		s->cap = cap;
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->e[mid].from_s <= ne->from_s)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(&s->e[lo + 1], &s->e[lo], (s->n - lo) * sizeof(*s->e));
	s->e[lo] = *ne;
	s->n++;
	account(s, b, ne, 1);
	return (long)lo;
}

/* Removes an entry's file rel (one link of its blob); one already gone is fine. */
static void remove_file(const struct store *s, const char *rel)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", s->o.dir, rel);
	if (unlink(path) && errno != ENOENT)
		log_warn("store: cannot remove %s: %s", path, strerror(errno));
}

/* Takes entry e out of the totals and out of its bucket's. Under the lock. */
static void unaccount(struct store *s, const struct entry *e)
{
	char name[300];

	/* every entry's bucket was made when it was inserted: looked up, never added
	 * (store_open's hmap_for_each may be dropping) */
	account(s, hmap_get(&s->buckets, bucket_name(e->key, name, sizeof(name))), e, -1);
}

/* Removes entry i and its file (one link of its blob). Under the lock. */
static void drop(struct store *s, size_t i)
{
	remove_file(s, s->e[i].rel);
	unaccount(s, &s->e[i]);
	entry_free(&s->e[i]);
	memmove(&s->e[i], &s->e[i + 1], (s->n - i - 1) * sizeof(*s->e));
	s->n--;
}

/* Removes every link of entry i's blob: they have its from_s, so they sit next to it. */
static void drop_blob(struct store *s, size_t i)
{
	uint64_t blob = s->e[i].blob;
	int64_t from = s->e[i].from_s;
	size_t k = i;

	while (k > 0 && s->e[k - 1].from_s == from)
		k--;
	while (k < s->n && s->e[k].from_s == from) {
		if (s->e[k].blob == blob)
			drop(s, k);
		else
			k++;
	}
}

/* Whether policy key is of namespace bucket ("" for cluster policies). */
static bool in_bucket(const char *key, const char *bucket)
{
	size_t n = strlen(bucket);

	return n ? !strncmp(key, bucket, n) && key[n] == '/' : !strchr(key, '/');
}

/*
 * The index of the oldest entry of namespace bucket (NULL: any) of a blob
 * older than keep (the upload being stored: ids from keep on), or -1.
 */
static long oldest_of(const struct store *s, const char *bucket, uint64_t keep)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].blob < keep && (!bucket || in_bucket(s->e[i].key, bucket)))
			return (long)i;
	return -1;
}

/*
 * What goes when the store is full: the oldest profile of the namespace
 * holding the most bytes (so that no tenant's uploads push out another's
 * smaller share), never a blob of the upload being stored (ids from keep
 * on). -1: nothing.
 */
static long victim(const struct store *s, uint64_t keep)
{
	const char *fullest = NULL;
	uint64_t most = 0;
	long i;

	hmap_for_each(&s->buckets, it) {
		const struct bucket *b = it->val;

		if (b->bytes > most) {
			most = b->bytes;
			fullest = it->key;
		}
	}
	i = fullest ? oldest_of(s, fullest, keep) : -1;
	return i >= 0 ? i : oldest_of(s, NULL, keep);
}

/*
 * Back within the bounds after an upload (its blobs: ids from keep on) went
 * into namespace bucket (NULL: after the scan, keep UINT64_MAX): the
 * namespace's quota first, then the total. Under the lock.
 */
static void enforce(struct store *s, const char *bucket, uint64_t keep)
{
	const struct bucket *b = bucket ? hmap_get(&s->buckets, bucket) : NULL;
	long i;

	while (b && b->bytes > s->o.ns_max_bytes && (i = oldest_of(s, bucket, keep)) >= 0) {
		drop_blob(s, (size_t)i);
		s->st.evicted_quota++;
	}
	while (s->st.bytes > s->o.max_bytes && (i = victim(s, keep)) >= 0) {
		drop_blob(s, (size_t)i);
		s->st.evicted_full++;
	}
}

static int mkdirs(const char *path)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(buf, 0750) && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	if (mkdir(buf, 0750) && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * The blob of a file found at start: the one its inode already has (another
 * policy's link to it), else a new one, which carries the bytes (*counted).
 * 0 when out of memory.
 */
static uint64_t blob_of_inode(struct store *s, struct hmap *inodes, const struct stat *st,
			      bool *counted)
{
	char k[64];
	void *v;

	snprintf(k, sizeof(k), "%llu:%llu", (unsigned long long)st->st_dev,
		 (unsigned long long)st->st_ino);
	v = hmap_get(inodes, k);
	*counted = !v;
	if (v)
		return (uint64_t)(uintptr_t)v;
	if (hmap_put(inodes, k, (void *)(uintptr_t)(s->next_blob + 1), NULL))
		return 0;
	return ++s->next_blob;
}

/* A name's "-<seq>.pb.gz": the next names are made past it (no two uploads share one). */
static void note_seq(struct store *s, const char *name)
{
	const char *end = strstr(name, ".pb.gz"), *dash = end;
	unsigned long long seq;

	while (dash && dash > name && dash[-1] != '-')
		dash--;
	if (dash && dash > name && sscanf(dash, "%llu.pb.gz", &seq) == 1 && seq > s->seq)
		s->seq = seq;
}

/*
 * Adds the files of one policy directory to the index (at start). Links of
 * one file (by device and inode, in inodes) are one blob.
 */
static void scan_policy(struct store *s, struct hmap *inodes, const char *rel, const char *key)
{
	char path[4096];
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/%s", s->o.dir, rel);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		long long from, until;
		int off = 0;
		struct entry ne = { 0 };
		struct stat st;
		char fpath[4400];

		if (de->d_name[0] == '.')
			continue;
		snprintf(fpath, sizeof(fpath), "%s/%s", path, de->d_name);
		if (strstr(de->d_name, ".tmp")) {	/* a write cut short */
			unlink(fpath);
			continue;
		}
		if (sscanf(de->d_name, "%lld-%lld-%n", &from, &until, &off) != 2 || !off ||
		    !strstr(de->d_name, ".pb.gz") || stat(fpath, &st) || !S_ISREG(st.st_mode))
			continue;
		note_seq(s, de->d_name);
		ne.from_s = from;
		ne.until_s = until;
		ne.size = (uint64_t)st.st_size;
		ne.blob = blob_of_inode(s, inodes, &st, &ne.counted);
		if (!ne.blob)
			break;
		if (asprintf(&ne.rel, "%s/%s", rel, de->d_name) < 0) {
			ne.rel = NULL;
			break;
		}
		ne.key = strdup(key);
		if (!ne.key || insert(s, &ne) < 0) {
			entry_free(&ne);
			break;
		}
	}
	closedir(d);
}

static void scan(struct store *s)
{
	struct hmap inodes = { 0 };
	char path[4096];
	DIR *d, *d2;
	struct dirent *de, *de2;

	snprintf(path, sizeof(path), "%s/ns", s->o.dir);
	if ((d = opendir(path))) {
		while ((de = readdir(d))) {
			char p2[4400];

			if (de->d_name[0] == '.')
				continue;
			snprintf(p2, sizeof(p2), "%s/%s", path, de->d_name);
			if (!(d2 = opendir(p2)))
				continue;
			while ((de2 = readdir(d2))) {
				char key[600], rel[600], chk[600];

				if (de2->d_name[0] == '.')
					continue;
				snprintf(key, sizeof(key), "%s/%s", de->d_name, de2->d_name);
				snprintf(rel, sizeof(rel), "ns/%s/%s", de->d_name, de2->d_name);
				if (!store_policy_dir(key, chk, sizeof(chk)))
					scan_policy(s, &inodes, rel, key);
			}
			closedir(d2);
		}
		closedir(d);
	}
	snprintf(path, sizeof(path), "%s/cluster", s->o.dir);
	if ((d = opendir(path))) {
		while ((de = readdir(d))) {
			char key[600], rel[600], chk[600];

			if (de->d_name[0] == '.')
				continue;
			snprintf(key, sizeof(key), "%s", de->d_name);
			snprintf(rel, sizeof(rel), "cluster/%s", de->d_name);
			if (!store_policy_dir(key, chk, sizeof(chk)))
				scan_policy(s, &inodes, rel, key);
		}
		closedir(d);
	}
	hmap_free(&inodes);
}

struct store *store_open(const struct store_opts *opts, char *err, size_t errlen)
{
	struct store *s = calloc(1, sizeof(*s));
	int e = 0;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->o = *opts;
	if (!s->o.max_bytes)
		s->o.max_bytes = 1ull << 30;
	if (!s->o.retention_s)
		s->o.retention_s = 7 * 86400;
	if (!s->o.ns_max_bytes)
		s->o.ns_max_bytes = s->o.max_bytes / 4;
	s->o.dir = strdup(opts->dir);
	if (!s->o.dir || (e = mkdirs(s->o.dir))) {
		snprintf(err, errlen, "store directory %s: %s", opts->dir,
			 s->o.dir ? strerror(-e) : "out of memory");
		free((char *)s->o.dir);
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	scan(s);
	/* over the bounds already (smaller ones than the last run's): trim now */
	hmap_for_each(&s->buckets, it)	/* enforce only drops: no bucket is added */
		enforce(s, it->key, UINT64_MAX);
	enforce(s, NULL, UINT64_MAX);
	prune_buckets(s);	/* the loop above is over: no bucket is held now */
	return s;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		entry_free(&s->e[i]);
	free(s->e);
	hmap_for_each(&s->buckets, it)
		free(it->val);
	hmap_free(&s->buckets);
	pthread_mutex_destroy(&s->lock);
	free((char *)s->o.dir);
	free(s);
}

static void clean_node(char *out, size_t len, const char *node)
{
	size_t i = 0;

	for (; node && node[i] && i < len - 1 && i < 200; i++)
		out[i] = (node[i] >= 'a' && node[i] <= 'z') || (node[i] >= '0' && node[i] <= '9') ||
			 node[i] == '.' ? node[i] : '_';
	if (!i)
		out[i++] = '_';
	out[i] = 0;
}

/* Writes buf to dir/name (through a .tmp, synced and renamed when complete). 0 or -errno. */
static int write_file(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[4800];
	int e = mkdirs(dir);

	if (e)
		return e;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return pprof_write_atomic(path, buf, len, 0640);
}

/* A second policy's name for the file first_rel/name: a hard link in its directory. */
static int link_file(struct store *s, const char *first_rel, const char *rel, const char *name)
{
	char dir[4096], from[4800], to[4800];
	int e;

	snprintf(dir, sizeof(dir), "%s/%s", s->o.dir, rel);
	e = mkdirs(dir);
	if (e)
		return e;
	snprintf(from, sizeof(from), "%s/%s/%s", s->o.dir, first_rel, name);
	snprintf(to, sizeof(to), "%s/%s", dir, name);
	return link(from, to) ? -errno : 0;
}

/*
 * Indexes the link rel/name of blob (the first carries its bytes); the file
 * goes when it cannot be indexed. Under the lock. 0 or -ENOMEM.
 */
static int index_link(struct store *s, const char *key, const char *rel, const char *name,
		      uint64_t blob, bool counted, int64_t from_s, int64_t until_s, size_t len)
{
	struct entry ne = { .size = len, .blob = blob, .counted = counted,
			    .from_s = from_s, .until_s = until_s };
	char path[4800];

	ne.key = strdup(key);
	if (asprintf(&ne.rel, "%s/%s", rel, name) < 0)
		ne.rel = NULL;
	if (ne.key && ne.rel && insert(s, &ne) >= 0)
		return 0;
	entry_free(&ne);
	snprintf(path, sizeof(path), "%s/%s/%s", s->o.dir, rel, name);
	unlink(path);
	return -ENOMEM;
}

/*
 * One namespace's share of an upload: written once for keys[first], linked for
 * the later keys of the same namespace (done[] marks them), then that
 * namespace's bounds kept without touching the upload's blobs (ids from keep
 * on). How many policies got it; *ret_err the last failure.
 */
static size_t put_bucket(struct store *s, const char *const *keys, size_t nkeys, size_t first,
			 bool *done, const char *name, uint64_t keep, const struct store_put_info *pi,
			 int *ret_err)
{
	char rel0[700], rel[700], dir[4096], bucket[300];
	size_t stored = 0;
	uint64_t blob;
	int e;

	store_policy_dir(keys[first], rel0, sizeof(rel0));	/* checked by the caller */
	bucket_name(keys[first], bucket, sizeof(bucket));
	snprintf(dir, sizeof(dir), "%s/%s", s->o.dir, rel0);
	e = write_file(dir, name, pi->buf, pi->len);
	pthread_mutex_lock(&s->lock);
	blob = ++s->next_blob;
	if (!e)
		e = index_link(s, keys[first], rel0, name, blob, true, pi->from_s, pi->until_s,
			       pi->len);
	stored += !e;
	/* the links under the lock: retention cannot take the first meanwhile */
	for (size_t j = first + 1; !e && j < nkeys; j++) {
		int le;

		if (done[j] || !in_bucket(keys[j], bucket))
			continue;
		done[j] = true;
		store_policy_dir(keys[j], rel, sizeof(rel));	/* checked by the caller */
		le = link_file(s, rel0, rel, name);
		if (!le)
			le = index_link(s, keys[j], rel, name, blob, false, pi->from_s,
					pi->until_s, pi->len);
		stored += !le;
		if (le) {
			*ret_err = le;
			log_warn("store: cannot link a profile for %s: %s", keys[j], strerror(-le));
		}
	}
	enforce(s, bucket, keep);
	prune_buckets(s);
	pthread_mutex_unlock(&s->lock);
	if (e) {
		*ret_err = e;
		log_warn("store: cannot write a profile of %s: %s", keys[first], strerror(-e));
	}
	return stored;
}

int store_put(struct store *s, const char *const *keys, size_t nkeys, const char *node,
	      int64_t from_s, int64_t until_s, const uint8_t *buf, size_t len, size_t *ret_stored)
{
	const struct store_put_info pi = { .from_s = from_s, .until_s = until_s, .buf = buf,
					   .len = len };
	char name[400], rel[700], nd[256];
	size_t stored = 0;
	uint64_t seq, keep;
	bool *done = NULL;
	int err = -EINVAL;

	*ret_stored = 0;
	if (nkeys && from_s >= 0 && until_s >= from_s && until_s <= 999999999999LL &&
	    !(done = calloc(nkeys, sizeof(*done))))
		err = -ENOMEM;
	if (!done) {
		pthread_mutex_lock(&s->lock);
		s->st.refused++;
		pthread_mutex_unlock(&s->lock);
		return err;
	}
	clean_node(nd, sizeof(nd), node);
	pthread_mutex_lock(&s->lock);
	seq = ++s->seq;
	/* its blobs get the next ids (another upload stored at the same time is
	 * spared as well: never less than this one) */
	keep = s->next_blob + 1;
	pthread_mutex_unlock(&s->lock);
	snprintf(name, sizeof(name), "%012lld-%012lld-%s-%llu.pb.gz", (long long)from_s,
		 (long long)until_s, nd, (unsigned long long)seq);
	for (size_t i = 0; i < nkeys; i++)	/* not Kubernetes names: never on disk */
		done[i] = store_policy_dir(keys[i], rel, sizeof(rel)) != 0;
	for (size_t i = 0; i < nkeys; i++) {
		if (done[i])
			continue;
		done[i] = true;
		stored += put_bucket(s, keys, nkeys, i, done, name, keep, &pi, &err);
	}
	free(done);
	pthread_mutex_lock(&s->lock);
	s->st.stored += stored > 0;
	s->st.refused += stored == 0;
	pthread_mutex_unlock(&s->lock);
	*ret_stored = stored;
	return stored ? 0 : err;
}

/*
 * Takes what ended before cutoff out of the index in one pass (the kept
 * entries slide down in place, in their order: no memmove of the tail per
 * entry) and out of the totals. A blob's links have the same times: they all
 * go. Their names (rel) go into gone, for the caller to remove the files
 * once the lock is released; without gone (out of memory) removed here.
 * Returns how many names went into gone. Under the lock.
 */
static size_t expire_locked(struct store *s, int64_t cutoff, char **gone)
{
	size_t k = 0, ngone = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct entry *e = &s->e[i];

		if (e->until_s >= cutoff) {
			if (k != i)
				s->e[k] = *e;
			k++;
			continue;
		}
		s->st.evicted_age += e->counted;
		unaccount(s, e);
		if (gone) {
			gone[ngone++] = e->rel;	/* the caller's now */
			e->rel = NULL;
		} else {
			remove_file(s, e->rel);
		}
		entry_free(e);
	}
	s->n = k;
	return ngone;
}

/* How many entries ended before cutoff. Under the lock. */
static size_t count_expired(const struct store *s, int64_t cutoff)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += s->e[i].until_s < cutoff;
	return n;
}

void store_expire(struct store *s, int64_t now_s)
{
	const int64_t cutoff = now_s - s->o.retention_s;
	char **gone = NULL;
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = count_expired(s, cutoff);
	if (n) {
		/* the files are removed after the lock (every upload and query waits
		 * for it): one name per expired entry, NULL: removed under it */
		gone = malloc(n * sizeof(*gone));
		n = expire_locked(s, cutoff, gone);
		prune_buckets(s);
	}
	pthread_mutex_unlock(&s->lock);
	/* names are never reused (the seq in them): no upload made one meanwhile */
	for (size_t i = 0; i < n; i++) {
		remove_file(s, gone[i]);
		free(gone[i]);
	}
	free(gone);
}

static uint8_t *read_file(const char *path, size_t max, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	ssize_t r;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || st.st_size <= 0 || (size_t)st.st_size > max ||
	    !(buf = malloc((size_t)st.st_size))) {
		close(fd);
		return NULL;
	}
	r = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (r != st.st_size) {
		free(buf);
		return NULL;
	}
	*ret_len = (size_t)r;
	return buf;
}

int store_query(struct store *s, const char *policy_key, int64_t from_s, int64_t until_s,
		struct pprof_merge *m, unsigned int *ret_bad)
{
	char **paths = NULL;
	size_t n = 0;
	int merged = 0;

	*ret_bad = 0;
	pthread_mutex_lock(&s->lock);
	paths = calloc(s->n + 1, sizeof(char *));
	for (size_t i = 0; paths && i < s->n; i++) {
		const struct entry *e = &s->e[i];

		if (strcmp(e->key, policy_key) || e->until_s < from_s ||
		    (until_s && e->from_s >= until_s))
			continue;
		if (asprintf(&paths[n], "%s/%s", s->o.dir, e->rel) < 0)
			break;
		n++;
	}
	pthread_mutex_unlock(&s->lock);
	if (!paths)
		return -ENOMEM;
	/* read without the lock: a file dropped meanwhile is skipped */
	for (size_t i = 0; i < n; i++) {
		size_t len;
		uint8_t *buf = read_file(paths[i], PPROF_MERGE_MAX_INPUT, &len);
		char err[200];

		if (!buf || pprof_merge_add(m, buf, len, err, sizeof(err))) {
			if (buf)
				log_warn("store: %s: %s", paths[i], err);
			(*ret_bad)++;
		} else {
			merged++;
		}
		free(buf);
		free(paths[i]);
	}
	free(paths);
	return merged;
}

void store_stats(struct store *s, struct store_stats *ret)
{
	pthread_mutex_lock(&s->lock);
	*ret = s->st;
	ret->namespaces = s->buckets.n;
	pthread_mutex_unlock(&s->lock);
}

void store_policy_stats(struct store *s, const char *policy_key, struct store_policy_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		const struct entry *e = &s->e[i];

		if (strcmp(e->key, policy_key))
			continue;
		ret->files++;
		ret->bytes += e->size;
		if (!ret->first_s || e->from_s < ret->first_s)
			ret->first_s = e->from_s;
		if (e->until_s > ret->last_s)
			ret->last_s = e->until_s;
	}
	pthread_mutex_unlock(&s->lock);
}
