// SPDX-License-Identifier: Apache-2.0
#include "table_cache.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"

#define MAGIC "PFUT"
/* bump when struct unwind_row or the header changes */
#define FORMAT (1u << 16 | (uint32_t)sizeof(struct unwind_row))
#define HEADER_SIZE 32
#define MAX_BID 80
#define SUFFIX ".tbl"

struct header {
	char magic[4];
	uint32_t format, nrows, flags, max_rows, crc;
	uint64_t compiler;	/* of the agent that compiled the rows (TABLE_CACHE_COMPILER) */
};
_Static_assert(sizeof(struct header) == HEADER_SIZE, "table cache header");

struct table_cache {
	char dir[512];
	uint64_t max_bytes;
	struct table_cache_stats st;
};

struct table_cache *table_cache_open(const char *dir, uint64_t max_bytes)
{
	struct table_cache *c;

	if (strlen(dir) >= sizeof(c->dir) - MAX_BID - 16) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	c->max_bytes = max_bytes ? max_bytes : 256ull << 20;
	return c;
}

void table_cache_close(struct table_cache *c)
{
	free(c);
}

/* The counters are atomic: the unwinder's worker thread counts, its owner reads. */
void table_cache_stats(const struct table_cache *c, struct table_cache_stats *ret)
{
	const uint64_t *from = (const uint64_t *)&c->st;
	uint64_t *to = (uint64_t *)ret;

	_Static_assert(sizeof(c->st) % sizeof(uint64_t) == 0, "counters only");
	for (size_t i = 0; i < sizeof(c->st) / sizeof(uint64_t); i++)
		to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
}

/* dir/bid.tbl for a build id of hex digits only (no path of the file's making). */
static int path_of(const struct table_cache *c, const char *bid, char *buf, size_t len)
{
	size_t n = strlen(bid);

	if (!n || n > MAX_BID || strspn(bid, "0123456789abcdef") != n)
		return -EINVAL;
	snprintf(buf, len, "%s/%s" SUFFIX, c->dir, bid);
	return 0;
}

static uint32_t rows_crc(const struct unwind_row *rows, uint32_t nrows)
{
	return (uint32_t)crc32(0, (const Bytef *)rows, (uInt)(nrows * sizeof(*rows)));
}

/*
 * The checks a file must pass before its rows reach the kernel: -ESTALE for
 * one another agent (version or options) wrote, which is only replaced;
 * -EBADMSG for a damaged one.
 */
static int check(const struct header *h, uint64_t size, uint32_t flags, uint32_t max_rows)
{
	if (memcmp(h->magic, MAGIC, 4))
		return -EBADMSG;
	if (le32toh(h->format) != FORMAT || le64toh(h->compiler) != TABLE_CACHE_COMPILER ||
	    le32toh(h->flags) != flags || le32toh(h->max_rows) != max_rows)
		return -ESTALE;
	if (!h->nrows || le32toh(h->nrows) > max_rows ||
	    size != HEADER_SIZE + (uint64_t)le32toh(h->nrows) * sizeof(struct unwind_row))
		return -EBADMSG;
	return 0;
}

static bool sorted(const struct unwind_row *rows, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++)
		if (rows[i].pc <= rows[i - 1].pc)
			return false;
	return true;
}

static int read_rows(int fd, uint32_t flags, uint32_t max_rows, struct unwind_row **ret,
		     uint32_t *ret_n)
{
	struct header h;
	struct stat sb;
	struct unwind_row *rows;
	size_t len;

	int err;

	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -EBADMSG;
	err = check(&h, (uint64_t)sb.st_size, flags, max_rows);
	if (err)
		return err;
	len = (size_t)le32toh(h.nrows) * sizeof(*rows);
	rows = malloc(len);
	if (!rows)
		return -ENOMEM;
	if (pread(fd, rows, len, HEADER_SIZE) != (ssize_t)len ||
	    rows_crc(rows, le32toh(h.nrows)) != le32toh(h.crc) || !sorted(rows, le32toh(h.nrows))) {
		free(rows);
		return -EBADMSG;
	}
	*ret = rows;
	*ret_n = le32toh(h.nrows);
	return 0;
}

int table_cache_get(struct table_cache *c, const char *bid, uint32_t flags, uint32_t max_rows,
		    struct unwind_row **rows, uint32_t *nrows)
{
	char path[sizeof(c->dir) + MAX_BID + 8];
	int fd, err = path_of(c, bid, path, sizeof(path));

	if (err)
		return err;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		__atomic_fetch_add(&c->st.misses, 1, __ATOMIC_RELAXED);
		return -ENOENT;
	}
	err = read_rows(fd, flags, max_rows, rows, nrows);
	close(fd);
	if (err == -ESTALE) {	/* another agent's: a miss, this one's replaces it */
		__atomic_fetch_add(&c->st.misses, 1, __ATOMIC_RELAXED);
		return -ENOENT;
	}
	if (err == -EBADMSG) {
		log_warn("unwind table cache: %s fails its checks: removed", path);
		unlink(path);
		__atomic_fetch_add(&c->st.rejected, 1, __ATOMIC_RELAXED);
	} else if (!err) {
		utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW);	/* recently used */
		__atomic_fetch_add(&c->st.hits, 1, __ATOMIC_RELAXED);
	}
	return err;
}

struct entry {
	char name[MAX_BID + 8];
	uint64_t bytes;
	struct timespec mtime;
};

static int by_age(const void *a, const void *b)
{
	const struct timespec *x = &((const struct entry *)a)->mtime;
	const struct timespec *y = &((const struct entry *)b)->mtime;

	if (x->tv_sec != y->tv_sec)
		return x->tv_sec < y->tv_sec ? -1 : 1;
	return x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec;
}

/* Removes the oldest tables until the directory is within its budget. */
static void keep_budget(struct table_cache *c)
{
	struct entry *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0;
	struct dirent *d;
	DIR *dir = opendir(c->dir);

	if (!dir)
		return;
	while ((d = readdir(dir))) {
		size_t l = strlen(d->d_name);
		struct stat sb;

		/* what a writer that died left behind */
		if (l > 4 && !strcmp(d->d_name + l - 4, ".tmp") &&
		    !fstatat(dirfd(dir), d->d_name, &sb, AT_SYMLINK_NOFOLLOW) &&
		    sb.st_mtime + 60 < time(NULL)) {
			unlinkat(dirfd(dir), d->d_name, 0);
			continue;
		}
		if (l <= strlen(SUFFIX) || l >= sizeof(v->name) ||
		    strcmp(d->d_name + l - strlen(SUFFIX), SUFFIX) ||
		    fstatat(dirfd(dir), d->d_name, &sb, AT_SYMLINK_NOFOLLOW) || !S_ISREG(sb.st_mode))
			continue;
		if (n == cap) {
			struct entry *nv = realloc(v, (cap = cap * 2 + 64) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		snprintf(v[n].name, sizeof(v[n].name), "%s", d->d_name);
		v[n].bytes = (uint64_t)sb.st_size;
		v[n].mtime = sb.st_mtim;
		total += v[n++].bytes;
	}
	qsort(v, n, sizeof(*v), by_age);
	for (size_t i = 0; i < n && total > c->max_bytes; i++)
		if (unlinkat(dirfd(dir), v[i].name, 0) == 0) {
			total -= v[i].bytes;
			__atomic_fetch_add(&c->st.evicted, 1, __ATOMIC_RELAXED);
		}
	__atomic_store_n(&c->st.bytes, total, __ATOMIC_RELAXED);
	closedir(dir);
	free(v);
}

int table_cache_put(struct table_cache *c, const char *bid, uint32_t flags, uint32_t max_rows,
		    const struct unwind_row *rows, uint32_t nrows)
{
	char path[sizeof(c->dir) + MAX_BID + 8], tmp[sizeof(path) + 16];
	struct header h = { .magic = MAGIC, .format = htole32(FORMAT), .nrows = htole32(nrows),
			    .flags = htole32(flags), .max_rows = htole32(max_rows),
			    .crc = htole32(rows_crc(rows, nrows)),
			    .compiler = htole64(TABLE_CACHE_COMPILER) };
	size_t len = (size_t)nrows * sizeof(*rows);
	int fd, err = path_of(c, bid, path, sizeof(path));

	if (err)
		return err;
	if (!nrows || nrows > max_rows || (uint64_t)len + HEADER_SIZE > c->max_bytes)
		return -EFBIG;
	/* a unique name: agents of several containers may share the directory */
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX.tmp", path);
	fd = mkostemps(tmp, 4, O_CLOEXEC);
	if (fd < 0) {
		__atomic_fetch_add(&c->st.write_failed, 1, __ATOMIC_RELAXED);
		return -errno;
	}
	if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) || write(fd, rows, len) != (ssize_t)len ||
	    fsync(fd))
		err = errno ? -errno : -EIO;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		__atomic_fetch_add(&c->st.write_failed, 1, __ATOMIC_RELAXED);
		return err;
	}
	__atomic_fetch_add(&c->st.written, 1, __ATOMIC_RELAXED);
	keep_budget(c);
	return 0;
}
