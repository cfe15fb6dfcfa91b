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

#include "k8s.h"
#include "log.h"
#include "pprof_merge.h"

struct entry {
	char *rel;		/* path under the store directory */
	char *key;		/* policy key */
	uint64_t size;
	int64_t from_s, until_s;
};

struct store {
	struct store_opts o;
	pthread_mutex_t lock;
	struct entry *e;	/* sorted by from_s: the oldest first */
	size_t n, cap;
	uint64_t seq;
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

/* Inserts keeping the order by from_s (equal times: after the others); returns the
 * position, or -ENOMEM. */
static long insert(struct store *s, struct entry *ne)
{
	size_t lo = 0, hi = s->n;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct entry *p = realloc(s->e, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
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
	s->st.files++;
	s->st.bytes += ne->size;
	return (long)lo;
}

/* Removes entry i and its file. Under the lock. */
static void drop(struct store *s, size_t i)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", s->o.dir, s->e[i].rel);
	if (unlink(path) && errno != ENOENT)
		log_warn("store: cannot remove %s: %s", path, strerror(errno));
	s->st.files--;
	s->st.bytes -= s->e[i].size;
	entry_free(&s->e[i]);
	memmove(&s->e[i], &s->e[i + 1], (s->n - i - 1) * sizeof(*s->e));
	s->n--;
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

/* Adds the files of one policy directory to the index (at start). */
static void scan_policy(struct store *s, const char *rel, const char *key)
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
		ne.from_s = from;
		ne.until_s = until;
		ne.size = (uint64_t)st.st_size;
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
					scan_policy(s, rel, key);
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
				scan_policy(s, rel, key);
		}
		closedir(d);
	}
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
	/* over the bound already (a smaller --store-max-bytes): trim now */
	while (s->n && s->st.bytes > s->o.max_bytes) {
		drop(s, 0);
		s->st.evicted_full++;
	}
	return s;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		entry_free(&s->e[i]);
	free(s->e);
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

int store_put(struct store *s, const char *policy_key, const char *node, int64_t from_s,
	      int64_t until_s, const uint8_t *buf, size_t len)
{
	char rel[700], dir[4096], path[4800], tmp[4900], nd[256];
	struct entry ne = { 0 };
	int fd, e;
	ssize_t w;
	uint64_t seq;
	long pos;

	if (store_policy_dir(policy_key, rel, sizeof(rel)) || from_s < 0 || until_s < from_s ||
	    from_s > 999999999999LL || until_s > 999999999999LL) {
		pthread_mutex_lock(&s->lock);
		s->st.refused++;
		pthread_mutex_unlock(&s->lock);
		return -EINVAL;
	}
	clean_node(nd, sizeof(nd), node);
	pthread_mutex_lock(&s->lock);
	seq = ++s->seq;
	pthread_mutex_unlock(&s->lock);
	snprintf(dir, sizeof(dir), "%s/%s", s->o.dir, rel);
	e = mkdirs(dir);
	if (!e) {
		snprintf(path, sizeof(path), "%s/%012lld-%012lld-%s-%llu.pb.gz", dir, (long long)from_s,
			 (long long)until_s, nd, (unsigned long long)seq);
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
		if (fd < 0) {
			e = -errno;
		} else {
			w = write(fd, buf, len);
			if (w != (ssize_t)len)
				e = w < 0 ? -errno : -ENOSPC;
			if (close(fd) && !e)
				e = -errno;
			if (!e && rename(tmp, path))
				e = -errno;
			if (e)
				unlink(tmp);
		}
	}
	pthread_mutex_lock(&s->lock);
	if (e) {
		s->st.refused++;
		pthread_mutex_unlock(&s->lock);
		log_warn("store: cannot write a profile of %s: %s", policy_key, strerror(-e));
		return e;
	}
	ne.from_s = from_s;
	ne.until_s = until_s;
	ne.size = len;
	ne.key = strdup(policy_key);
	if (asprintf(&ne.rel, "%s/%s", rel, strrchr(path, '/') + 1) < 0)
		ne.rel = NULL;
	if (!ne.key || !ne.rel || (pos = insert(s, &ne)) < 0) {
		entry_free(&ne);
		unlink(path);
		s->st.refused++;
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	s->st.stored++;
	/* the oldest go first, but not the one just stored (a late one may be old) */
	while (s->n > 1 && s->st.bytes > s->o.max_bytes) {
		size_t victim = pos == 0 ? 1 : 0;

		drop(s, victim);
		if (victim < (size_t)pos)
			pos--;
		s->st.evicted_full++;
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void store_expire(struct store *s, int64_t now_s)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n;) {
		if (s->e[i].until_s < now_s - s->o.retention_s) {
			drop(s, i);
			s->st.evicted_age++;
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&s->lock);
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
