// SPDX-License-Identifier: Apache-2.0
#include "clock.h"
#include "unwinder.h"
#include "sampler.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <arpa/inet.h>
#include <endian.h>

#include "elfutil.h"
#include "jvmsym.h"
#include "grow.h"
#include "log.h"
#include "procs.h"
#include "pyelf.h"
#include "v8elf.h"
#include "v8sym.h"
#include "pysym.h"
#include "table_cache.h"
#include "unwind.h"
#include "unwind_table.h"
#include "workq.h"

/* between two forced re-syncs of one process */
#define RESYNC_NS (1000ull * 1000 * 1000)
/* tables handed to the worker at once (each holds its file open): more wait their turn */
#define BUILDS_MAX 64
#define RETRY_NS (60ull * 1000000000)	/* a failed table, built again */

struct seg {
	uint64_t offset, vaddr, filesz;
};

struct table_job;

struct table {
	bool used;
	struct table_job *pending;	/* its build, handed to the worker: never evicted */
	bool failed;		/* no CFI, unreadable or no room: remembered, no rows */
	uint64_t retry_at;	/* failed: built again past this (CLOCK_MONOTONIC ns) */
	uint32_t want_rows;	/* failed for room: the rows it needs */
	char key[96];		/* "b:<build-id>", or "i:<dev>:<ino>" without one */
	char ino_key[48];	/* "i:<dev>:<ino>" of the file it was first loaded from */
	uint32_t refs;		/* processes mapping it */
	uint64_t idle_since;	/* refs fell to 0 at this tick: kept until its rows are needed */
	uint32_t first_row, nrows;	/* its slice of unwind_rows */
	struct seg segs[8];	/* executable PT_LOADs, to turn file offsets into vaddrs */
	int nsegs;
	bool has_py;		/* the file holds a CPython we know: py */
	struct py_elf py;
	bool has_v8;		/* the file holds a V8 we know: v8 */
	struct v8_elf v8;
};

struct pid_entry {
	struct pid_entry *next;
	int pid;
	bool dirty;		/* mappings changed since the last sync */
	bool deferred;		/* a table was not asked for (the worker had max_builds) */
	uint64_t last_sync_ns;
	struct mapping_key *keys;	/* LPM keys we inserted */
	uint32_t nkeys, cap;
	uint32_t *tables;		/* table ids referenced (one per mapping range) */
	uint32_t ntables, cap_tables;
	bool py;			/* its py_procs entry is ours */
	bool py_seen;			/* its CPython was found at the last sync */
	bool jvm;			/* its jvm_procs entry is ours */
	bool jvm_seen;			/* it maps a libjvm.so (the last sync) */
	uint64_t jvm_retry_ns;		/* a JVM still starting: synced again from then on; 0 none */
	bool v8;			/* its v8_procs entry is ours */
	bool v8_seen;			/* it maps a file with V8 (the last sync) */
};

/* free slices of unwind_rows, sorted by start, never adjacent */
struct range {
	uint32_t start, len;
};

struct unwinder {
	int lpm_fd, rows_fd;
	/* unwind_rows can be mapped (BPF_F_MMAPABLE): a table's slice is mapped,
	 * written in place and unmapped (the map's memory is not held in our RSS);
	 * else rows go through map updates */
	bool rows_mappable;
	size_t row_stride;
	struct range *free;
	uint32_t nfree, cap_free;
	struct procs *procs;
	struct unwinder_opts opts;
	struct table tables[UNWIND_MAX_TABLES];
	struct pid_entry *pids[1024];
	uint64_t idle_tick;	/* orders idle tables, oldest first out */
	struct workq *builder;	/* compiles (or reads from the cache) off the drain thread */
	struct unwinder_stats stats;
};

/*
 * A table to build, handed to the worker with what it needs (the file open
 * while its process lived) and nothing of the unwinder's; the rows come back
 * in it.
 */
struct table_job {
	struct workq_item item;
	uint32_t id;			/* the table's slot, pending until the job is taken */
	int fd;
	char build_id[80];
	char debug_path[512];		/* "" when there is no separate debug file */
	char name[256];			/* the file, for the log */
	uint32_t max_rows;
	struct table_cache *cache;	/* NULL = none; used by the worker only */
	int err;
	struct unwind_row *rows;	/* malloc'd */
	uint32_t nrows;
	uint64_t ns;
};

/* First fit: returns the start of a slice of n rows, or -ENOSPC. */
static int64_t rows_alloc(struct unwinder *u, uint32_t n)
{
	for (uint32_t i = 0; i < u->nfree; i++) {
		struct range *r = &u->free[i];
		uint32_t start = r->start;

		if (r->len < n)
			continue;
		r->start += n;
		r->len -= n;
		if (!r->len) {
			memmove(r, r + 1, (u->nfree - i - 1) * sizeof(*r));
			u->nfree--;
		}
		return start;
	}
	return -ENOSPC;
}

static void rows_release(struct unwinder *u, uint32_t start, uint32_t n)
{
	uint32_t i = 0;

	while (i < u->nfree && u->free[i].start < start)
		i++;
	/* merge with the previous and/or the next free slice */
	if (i > 0 && u->free[i - 1].start + u->free[i - 1].len == start) {
		u->free[i - 1].len += n;
		if (i < u->nfree && start + n == u->free[i].start) {
			u->free[i - 1].len += u->free[i].len;
			memmove(&u->free[i], &u->free[i + 1], (u->nfree - i - 1) * sizeof(*u->free));
			u->nfree--;
		}
		return;
	}
	if (i < u->nfree && start + n == u->free[i].start) {
		u->free[i].start = start;
		u->free[i].len += n;
		return;
	}
	if (u->nfree == u->cap_free) {
		uint32_t ncap = u->cap_free ? u->cap_free * 2 : 64;
		struct range *nr = realloc(u->free, ncap * sizeof(*nr));

		if (!nr)
			return;	/* the slice is lost until restart; counted as live */
		u->free = nr;
		u->cap_free = ncap;
	}
	memmove(&u->free[i + 1], &u->free[i], (u->nfree - i) * sizeof(*u->free));
	u->free[i] = (struct range){ start, n };
	u->nfree++;
}

/* Whether unwind_rows can be mapped (an array's elements are value_size rounded up to 8 apart). */
static void rows_probe_map(struct unwinder *u)
{
	long page = sysconf(_SC_PAGESIZE);
	void *mem = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, u->rows_fd, 0);

	u->row_stride = (sizeof(struct unwind_row) + 7) & ~(size_t)7;
	if (mem == MAP_FAILED) {
		log_debug("unwind_rows cannot be mapped (%s): rows go through map updates",
			  strerror(errno));
		return;
	}
	munmap(mem, (size_t)page);
	u->rows_mappable = true;
}

/* Writes rows [first, first + n) through a mapping of just their pages. */
static int rows_write_mapped(struct unwinder *u, uint32_t first, const struct unwind_row *rows,
			     uint32_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t from = (size_t)first * u->row_stride, to = (size_t)(first + n) * u->row_stride;
	size_t off = from & ~(page - 1), len = ((to - off) + page - 1) & ~(page - 1);
	uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, u->rows_fd, (off_t)off);

	if (mem == MAP_FAILED)
		return -errno;
	for (uint32_t i = 0; i < n; i++)
		memcpy(mem + (from - off) + (size_t)i * u->row_stride, &rows[i], sizeof(rows[i]));
	munmap(mem, len);
	return 0;
}

struct unwinder *unwinder__new(int exe_mappings_fd, int rows_fd, uint32_t rows_cap,
			       struct procs *procs, const struct unwinder_opts *opts)
{
	struct unwinder *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	elf_version(EV_CURRENT);
	u->lpm_fd = exe_mappings_fd;
	u->rows_fd = rows_fd;
	u->free = malloc(sizeof(*u->free));
	if (!u->free) {
		free(u);
		return NULL;
	}
	u->free[0] = (struct range){ 0, rows_cap };
	u->nfree = u->cap_free = 1;
	u->procs = procs;
	if (opts)
		u->opts = *opts;
	if (!u->opts.max_rows_per_table)
		u->opts.max_rows_per_table = 4u << 20;
	if (!u->opts.max_builds)
		u->opts.max_builds = BUILDS_MAX;
	if (!u->opts.retry_ns)
		u->opts.retry_ns = RETRY_NS;
	rows_probe_map(u);
	/* one result waiting at most, and no build meanwhile: a big table's rows are
	 * ten MiB, and its build needs twice that again */
	u->builder = workq_new("unwind-tables", 1);
	if (!u->builder) {
		free(u->free);
		free(u);
		return NULL;
	}
	/* a new process's frames wait for its tables; names wait for the export */
	workq_set_urgent(u->builder);
	return u;
}

static struct pid_entry **pid_slot(struct unwinder *u, int pid)
{
	struct pid_entry **pp = &u->pids[(uint32_t)pid % 1024];

	while (*pp && (*pp)->pid != pid)
		pp = &(*pp)->next;
	return pp;
}

/* Gives a table's rows back and forgets it. */
static void table_drop(struct unwinder *u, struct table *t)
{
	if (!t->failed) {
		rows_release(u, t->first_row, t->nrows);
		u->stats.tables_evicted++;
		u->stats.tables_live--;
		u->stats.rows_live -= t->nrows;
		u->stats.bytes_live -= (uint64_t)t->nrows * sizeof(struct unwind_row);
	}
	if (t->idle_since)
		u->stats.tables_idle--;
	memset(t, 0, sizeof(*t));
}

static void job_free(struct workq_item *it);

/*
 * The last process mapping a table went: the table stays, idle, with its rows,
 * so that the next process of the same binary (a churn of short processes, a
 * restarted container) finds it; idle tables go when their rows or slot are
 * needed (table_evict_idle). A failed table stays too (only its slot), so that
 * the next process of the file does not build it again before its retry time
 * (a 900k-row library refused for room would otherwise be rebuilt for every
 * process that maps it). One whose build the worker has not started is
 * forgotten: the worker's time goes to the tables of processes that live.
 */
static void table_unref(struct unwinder *u, uint32_t id)
{
	struct table *t = &u->tables[id];

	if (!t->used || !t->refs || --t->refs)
		return;
	if (t->pending && workq_cancel(u->builder, &t->pending->item)) {
		job_free(&t->pending->item);
		u->stats.tables_pending--;
		u->stats.tables_cancelled++;
		memset(t, 0, sizeof(*t));
		return;
	}
	/* a failed table no lookup can find any more (unnamed for its retry, or
	 * known by inode alone, which idle tables are not found by) is forgotten */
	if (t->failed && (!t->key[0] || !strncmp(t->key, "i:", 2))) {
		memset(t, 0, sizeof(*t));
		return;
	}
	t->idle_since = ++u->idle_tick;
	u->stats.tables_idle++;
}

static void table_ref(struct unwinder *u, struct table *t)
{
	if (!t->refs++ && t->idle_since) {
		t->idle_since = 0;
		u->stats.tables_idle--;
	}
}

/*
 * Drops the oldest idle table (not one being built); false when there is none.
 * For rows (for_rows), only tables that hold some: a failed one would free
 * nothing and its failure would be forgotten.
 */
static bool table_evict_idle(struct unwinder *u, bool for_rows)
{
	struct table *oldest = NULL;

	for (int i = 0; i < UNWIND_MAX_TABLES; i++) {
		struct table *t = &u->tables[i];

		if (t->used && t->idle_since && !t->pending && !(for_rows && t->failed) &&
		    (!oldest || t->idle_since < oldest->idle_since))
			oldest = t;
	}
	if (!oldest)
		return false;
	table_drop(u, oldest);
	return true;
}

/* The process no longer runs the CPython it did: its py_procs entry and names go. */
static void py_drop(struct unwinder *u, struct pid_entry *pe)
{
	__u32 pid = (__u32)pe->pid;

	if (!pe->py)
		return;
	bpf_map_delete_elem(u->opts.py_procs_fd, &pid);
	if (u->opts.pysym)
		pysym_forget_pid(u->opts.pysym, pe->pid);
	pe->py = false;
	u->stats.py_procs--;
}

/* The process no longer runs the JVM it did: its jvm_procs entry goes. */
static void jvm_drop(struct unwinder *u, struct pid_entry *pe)
{
	__u32 pid = (__u32)pe->pid;

	if (!pe->jvm)
		return;
	bpf_map_delete_elem(u->opts.jvm_procs_fd, &pid);
	pe->jvm = false;
	u->stats.jvm_procs--;
}

/* The process no longer runs the V8 it did: its v8_procs entry goes. */
static void v8_drop(struct unwinder *u, struct pid_entry *pe)
{
	__u32 pid = (__u32)pe->pid;

	if (!pe->v8)
		return;
	bpf_map_delete_elem(u->opts.v8_procs_fd, &pid);
	if (u->opts.v8sym)
		v8sym_forget_pid(u->opts.v8sym, pe->pid);
	pe->v8 = false;
	u->stats.v8_procs--;
}

static void pid_drop_entries(struct unwinder *u, struct pid_entry *pe)
{
	for (uint32_t i = 0; i < pe->nkeys; i++)
		bpf_map_delete_elem(u->lpm_fd, &pe->keys[i]);
	u->stats.lpm_entries -= pe->nkeys;
	pe->nkeys = 0;
	for (uint32_t i = 0; i < pe->ntables; i++)
		table_unref(u, pe->tables[i]);
	pe->ntables = 0;
	py_drop(u, pe);
	jvm_drop(u, pe);
	v8_drop(u, pe);
}

void unwinder__forget_pid(struct unwinder *u, int pid)
{
	struct pid_entry **pp = pid_slot(u, pid), *pe = *pp;

	if (!pe)
		return;
	log_debug("unwind: pid %d forgotten", pid);
	pid_drop_entries(u, pe);
	*pp = pe->next;
	free(pe->keys);
	free(pe->tables);
	free(pe);
	u->stats.pids--;
}

static void job_free(struct workq_item *it)
{
	struct table_job *j = (struct table_job *)it;

	if (j->fd >= 0)
		close(j->fd);
	free(j->rows);
	free(j);
}

void unwinder__free(struct unwinder *u)
{
	if (!u)
		return;
	/* first: builds not started are cancelled through the live queue */
	for (int i = 0; i < 1024; i++)
		while (u->pids[i])
			unwinder__forget_pid(u, u->pids[i]->pid);
	workq_free(u->builder, job_free);	/* the running one, the done ones */
	free(u->free);
	free(u);
}

/* Reads the build-id and the executable PT_LOAD segments of the open file fd. */
static int read_elf_ids(int fd, char *build_id, size_t bid_len, struct seg *segs, int *nsegs)
{
	int err = 0;
	size_t phnum;
	Elf *elf = elfutil_begin(fd);

	build_id[0] = '\0';
	*nsegs = 0;
	if (!elf)
		return -errno;
	if (elf_getphdrnum(elf, &phnum)) {
		err = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X) &&
		    *nsegs < 8)
			segs[(*nsegs)++] = (struct seg){ ph.p_offset, ph.p_vaddr, ph.p_filesz };
	}
	elfutil_build_id(elf, fd, build_id, bid_len);
	if (!*nsegs)
		err = -ENOEXEC;
out:
	elf_end(elf);
	return err;
}

static bool rows_could_fit(const struct unwinder *u, uint32_t n);

static int find_table(struct unwinder *u, const char *key)
{
	bool by_ino = !strncmp(key, "i:", 2);

	for (int i = 0; i < UNWIND_MAX_TABLES; i++) {
		const struct table *t = &u->tables[i];

		if (!t->used || (strcmp(t->key, key) && strcmp(t->ino_key, key)))
			continue;
		/* an idle table's file may be gone and its inode given to another file:
		 * by (dev, ino) only a table some process still maps is the same file */
		if (by_ino && t->idle_since)
			continue;
		if (t->failed && !t->pending && clock_mono_ns() >= t->retry_at &&
		    t->want_rows && !rows_could_fit(u, t->want_rows)) {
			/* refused for room, and there is still none: no build for nothing */
			u->tables[i].retry_at = clock_mono_ns() + u->opts.retry_ns;
		} else if (t->failed && !t->pending && clock_mono_ns() >= t->retry_at) {
			/* its time has come: built again, in a new slot; processes that
			 * hold the failed one keep it, unnamed, until they go */
			if (!t->refs) {
				table_drop(u, &u->tables[i]);
			} else {
				u->tables[i].key[0] = 0;
				u->tables[i].ino_key[0] = 0;
			}
			return -ENOENT;
		}
		u->stats.failures_reused += t->failed;
		return i;
	}
	return -ENOENT;
}

static int free_slot(struct unwinder *u)
{
	do {
		for (int i = 0; i < UNWIND_MAX_TABLES; i++)
			if (!u->tables[i].used)
				return i;
	} while (table_evict_idle(u, false));
	return -ENOSPC;
}

/* The separate debug file of a build id, if there is one, into buf. */
static const char *debug_file(const struct unwinder *u, const char *build_id, char *buf,
			      size_t len)
{
	if (!build_id || strlen(build_id) <= 2)
		return NULL;
	snprintf(buf, len, "%s/.build-id/%.2s/%s.debug",
		 u->opts.debug_root ? u->opts.debug_root : "/usr/lib/debug", build_id, build_id + 2);
	return access(buf, R_OK) == 0 ? buf : NULL;
}

/*
 * On the worker: the rows of one file, from the on-disk cache by build id, else
 * compiled (and then cached).
 */
static void job_build(struct workq_item *it)
{
	struct table_job *j = (struct table_job *)it;
	uint32_t flags = j->debug_path[0] ? TABLE_CACHE_F_DEBUG_FILE : 0;
	bool cacheable = j->cache && j->build_id[0];
	struct unwind_table *ut = NULL;
	uint64_t t0 = clock_mono_ns();
	char path[32];

	if (cacheable &&
	    table_cache_get(j->cache, j->build_id, flags, j->max_rows, &j->rows, &j->nrows) == 0)
		goto out;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", j->fd);
	j->err = unwind_table__build(path, j->debug_path[0] ? j->debug_path : NULL, j->max_rows,
				     &ut);
	if (!j->err && !ut->nrows)
		j->err = -ENOENT;
	if (!j->err) {
		if (cacheable)
			table_cache_put(j->cache, j->build_id, flags, j->max_rows, ut->rows,
					ut->nrows);
		j->rows = ut->rows;
		j->nrows = ut->nrows;
		ut->rows = NULL;
	}
	unwind_table__free(ut);
out:
	close(j->fd);
	j->fd = -1;
	j->ns = clock_mono_ns() - t0;
}

/* Copies n rows into unwind_rows from index first. 0 or -errno. */
static int rows_upload(struct unwinder *u, uint32_t first, const struct unwind_row *rows, uint32_t n)
{
	uint32_t *keys;
	__u32 count = n;
	int err = 0;

	/* rows_alloc keeps [first, first + n) inside the array */
	if (u->rows_mappable && rows_write_mapped(u, first, rows, n) == 0)
		return 0;
	keys = malloc(n * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		keys[i] = first + i;
	if (bpf_map_update_batch(u->rows_fd, keys, rows, &count, NULL) || count != n) {
		/* kernels without batch ops on arrays: one by one */
		for (uint32_t i = 0; i < n && !err; i++)
			if (bpf_map_update_elem(u->rows_fd, &keys[i], &rows[i], BPF_ANY))
				err = -errno;
	}
	free(keys);
	return err;
}

/* Hands the build of table id (the open file fd, ours from here) to the worker. 0 or -errno. */
static int table_submit(struct unwinder *u, uint32_t id, int fd, const char *name,
			const char *build_id)
{
	struct table_job *j = calloc(1, sizeof(*j));

	if (!j) {
		close(fd);
		return -ENOMEM;
	}
	j->fd = fd;
	j->item.work = job_build;
	j->id = id;
	snprintf(j->build_id, sizeof(j->build_id), "%s", build_id);
	if (!debug_file(u, build_id, j->debug_path, sizeof(j->debug_path)))
		j->debug_path[0] = '\0';
	snprintf(j->name, sizeof(j->name), "%s", name);
	j->max_rows = u->opts.max_rows_per_table;
	j->cache = u->opts.cache;
	u->tables[id].pending = j;
	u->stats.tables_pending++;
	workq_submit(u->builder, &j->item);
	return 0;
}

static void table_failed(struct unwinder *u, struct table *t, int err, const char *name)
{
	/* no CFI, corrupt CFI, too many rows: the same bytes (the same build id)
	 * will say the same; anything else (no room, memory, I/O) may pass later */
	bool final = !strncmp(t->key, "b:", 2) &&
		     (err == -ENOENT || err == -EINVAL || err == -EFBIG);

	t->failed = true;
	t->retry_at = final ? UINT64_MAX : clock_mono_ns() + u->opts.retry_ns;
	if (err == -ENOENT)
		u->stats.no_cfi++;
	else
		u->stats.tables_failed++;
	log_info("no unwind table for %s: %s", name, strerror(-err));
}

/* A failed table nobody maps and no lookup would find (no build id): counted, then gone. */
static void table_failed_drop(struct unwinder *u, struct table *t, int err, const char *name)
{
	table_failed(u, t, err, name);
	table_drop(u, t);
}

static int cmp_range_start(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Whether n rows could be had in one piece: free slices and the slices of
 * idle tables (which eviction would free) that touch make runs; the longest
 * must hold n. Tables in use between them split the runs.
 */
static bool rows_could_fit(const struct unwinder *u, uint32_t n)
{
	struct range *r = malloc((u->nfree + UNWIND_MAX_TABLES) * sizeof(*r));
	uint64_t run = 0, best = 0, end = 0;
	uint32_t k = 0;

	if (!r)
		return false;
	for (uint32_t i = 0; i < u->nfree; i++)
		r[k++] = u->free[i];
	for (int i = 0; i < UNWIND_MAX_TABLES; i++) {
		const struct table *t = &u->tables[i];

		if (t->used && t->idle_since && !t->pending && !t->failed && t->nrows)
			r[k++] = (struct range){ t->first_row, t->nrows };
	}
	qsort(r, k, sizeof(*r), cmp_range_start);
	for (uint32_t i = 0; i < k; i++) {
		run = i && r[i].start == end ? run + r[i].len : r[i].len;
		end = (uint64_t)r[i].start + r[i].len;
		if (run > best)
			best = run;
	}
	free(r);
	return best >= n;
}

/* Copies a built table's rows into a free slice of unwind_rows. 0 or -errno. */
static int table_place(struct unwinder *u, struct table *t, const struct table_job *j)
{
	int64_t first = -ENOSPC;
	int err;

	/* a table that cannot fit does not empty the idle pool first */
	if (rows_could_fit(u, j->nrows))
		while ((first = rows_alloc(u, j->nrows)) < 0 && table_evict_idle(u, true))
			;
	if (first < 0) {
		log_warn("unwind_rows is full: no table for %s (%u rows); raise --unwind-rows",
			 j->name, j->nrows);
		return (int)first;
	}
	err = rows_upload(u, (uint32_t)first, j->rows, j->nrows);
	if (err) {
		rows_release(u, (uint32_t)first, j->nrows);
		return err;
	}
	t->first_row = (uint32_t)first;
	t->nrows = j->nrows;
	u->stats.tables_loaded++;
	u->stats.tables_live++;
	u->stats.rows_live += j->nrows;
	u->stats.bytes_live += (uint64_t)j->nrows * sizeof(struct unwind_row);
	if (u->stats.bytes_live > u->stats.bytes_peak)
		u->stats.bytes_peak = u->stats.bytes_live;
	u->stats.load_ns_total += j->ns;
	if (j->ns > u->stats.load_ns_max)
		u->stats.load_ns_max = j->ns;
	log_info("unwind table for %s: %u rows, %.1f ms", j->name, j->nrows, j->ns / 1e6);
	return 0;
}

/* A process holding table id is synced again: its blocks in the table get their entries. */
static void mark_users_dirty(struct unwinder *u, uint32_t id)
{
	for (int i = 0; i < 1024; i++)
		for (struct pid_entry *pe = u->pids[i]; pe; pe = pe->next)
			for (uint32_t k = 0; k < pe->ntables && !pe->dirty; k++)
				pe->dirty = pe->tables[k] == id;
}

/* Whether a process waits for tables the worker has or will have. */
static bool pid_waits(const struct unwinder *u, const struct pid_entry *pe)
{
	if (pe->deferred)
		return true;
	for (uint32_t k = 0; k < pe->ntables; k++)
		if (u->tables[pe->tables[k]].pending)
			return true;
	return false;
}

/* Places the tables the worker finished; how many. */
static int collect(struct unwinder *u)
{
	struct workq_item *it;
	int n = 0;

	while ((it = workq_take(u->builder))) {
		struct table_job *j = (struct table_job *)it;
		struct table *t = &u->tables[j->id];
		int err = j->err ? j->err : table_place(u, t, j);

		t->pending = NULL;
		u->stats.tables_pending--;
		t->want_rows = err == -ENOSPC ? j->nrows : 0;
		if (err && !t->refs && strncmp(t->key, "b:", 2))
			table_failed_drop(u, t, err, j->name);	/* unmapped, and never found again */
		else if (err)
			table_failed(u, t, err, j->name);	/* kept, idle if unmapped */
		else
			mark_users_dirty(u, j->id);
		job_free(it);
		n++;
	}
	return n;
}

/* A file named like CPython's: what the Python walker needs of it, into t. */
static void py_detect(struct unwinder *u, struct table *t, int fd, const char *path)
{
	const char *base = strrchr(path, '/');
	Elf *elf;
	int err;

	if (!strstr(base ? base + 1 : path, "python"))
		return;
	elf = elfutil_begin(fd);
	if (!elf)
		return;
	err = pyelf_read(elf, fd, path, &t->py);
	elf_end(elf);
	t->has_py = err == 0;
	if (err == -ENOTSUP) {
		u->stats.py_unsupported++;
		log_warn("python: %s: a CPython version or build we cannot walk: its Python "
			 "frames are not named", path);
	} else if (!err) {
		log_info("python: %s: CPython 3.%d, evaluation loop at 0x%" PRIx64 "-0x%" PRIx64
			 " (and %d part(s) out of it)", path, t->py.minor, t->py.ranges[0].start,
			 t->py.ranges[0].end, t->py.nranges - 1);
	}
}

/* A file named like Node's (node, nodejs, node20, libnode.so.N): its V8's layout, into t. */
static void v8_detect(struct unwinder *u, struct table *t, int fd, const char *path)
{
	const char *base = strrchr(path, '/');
	Elf *elf;
	int err;

	base = base ? base + 1 : path;
	if (strncmp(base, "node", 4) && strncmp(base, "libnode", 7))
		return;
	elf = elfutil_begin(fd);
	if (!elf)
		return;
	err = v8elf_read(elf, fd, &t->v8);
	elf_end(elf);
	t->has_v8 = err == 0;
	if (err == -ENOTSUP) {
		u->stats.v8_unsupported++;
		log_warn("v8: %s: a V8 build we cannot walk (its v8dbg constants lack what the "
			 "walker needs): its JavaScript frames are not named", path);
	} else if (!err) {
		log_info("v8: %s: V8 frames walked (layout generation %d; JSFunction types %u-%u; "
			 "lines %s; inlining %s)", path, (int)t->v8.gen, t->v8.proc.first_fn_type,
			 t->v8.proc.last_fn_type,
			 t->v8.bytecode_positions != V8ELF_NONE ? "yes" : "no",
			 t->v8.code_type != V8ELF_NONE ? "yes" : "no");
	}
}

/*
 * Returns the table id for the file of mapping m, or -errno. A table not built
 * yet is handed to the worker: its id is returned at once, pending.
 */
static int table_for(struct unwinder *u, const struct mapping *m, int pid)
{
	char path[4200], bid[80], key[96];
	struct seg segs[8];
	int nsegs, id, err, fd;
	struct stat st;

	if (procs__mapping_path(m, pid, true, path, sizeof(path)))
		return -ENOENT;
	/* cheap identity first: the same (dev, ino) seen before */
	snprintf(key, sizeof(key), "i:%" PRIu64 ":%" PRIu64, m->dev, m->ino);
	id = find_table(u, key);
	if (id >= 0)
		return id;
	/* the worker is full: not even the file is opened (asked again when it has room) */
	if (workq_outstanding(u->builder) >= u->opts.max_builds) {
		u->stats.builds_deferred++;
		return -EAGAIN;
	}
	/* the build id, and later the rows, from one open file: never two files */
	fd = elfutil_open_file(path, &st);
	if (fd < 0)
		return fd;
	err = read_elf_ids(fd, bid, sizeof(bid), segs, &nsegs);
	if (!err && bid[0]) {
		snprintf(key, sizeof(key), "b:%s", bid);
		id = find_table(u, key);
	}
	if (!err && id < 0 && (id = free_slot(u)) < 0)
		err = id;
	if (err || u->tables[id].used) {	/* failed, or found by its build id */
		close(fd);
		return err ? err : id;
	}
	u->tables[id] = (struct table){ .used = true, .nsegs = nsegs };
	if (u->opts.python)
		py_detect(u, &u->tables[id], fd, m->path);
	if (u->opts.v8)
		v8_detect(u, &u->tables[id], fd, m->path);
	snprintf(u->tables[id].key, sizeof(u->tables[id].key), "%s", key);
	snprintf(u->tables[id].ino_key, sizeof(u->tables[id].ino_key), "i:%" PRIu64 ":%" PRIu64,
		 m->dev, m->ino);
	memcpy(u->tables[id].segs, segs, sizeof(segs));
	err = table_submit(u, (uint32_t)id, fd, m->path, bid);
	if (err)
		table_failed(u, &u->tables[id], err, m->path);
	return id;
}

static int pid_add_key(struct pid_entry *pe, const struct mapping_key *k)
{
	if (grow_array((void **)&pe->keys, &pe->cap, pe->nkeys + 1, sizeof(*pe->keys), 64))
		return -ENOMEM;
	pe->keys[pe->nkeys++] = *k;
	return 0;
}

static int pid_add_table(struct pid_entry *pe, uint32_t id)
{
	if (grow_array((void **)&pe->tables, &pe->cap_tables, pe->ntables + 1,
		       sizeof(*pe->tables), 16))
		return -ENOMEM;
	pe->tables[pe->ntables++] = id;
	return 0;
}

struct sync_ctx {
	struct unwinder *u;
	struct pid_entry *pe;
};

/* [start, end) of pid as aligned power-of-two blocks: one LPM key each. 0 or -ENOMEM. */
static int add_keys(struct unwinder *u, struct pid_entry *pe, const struct mapping_info *info,
		    uint64_t start, uint64_t end)
{
	while (start < end) {
		struct mapping_key k;
		unsigned bits = start ? (unsigned)__builtin_ctzll(start) : 63;

		while (bits > 0 && start + (1ull << bits) > end)
			bits--;
		k.prefixlen = 32 + 64 - bits;
		k.pid_be = htonl((uint32_t)pe->pid);
		k.addr_be = htobe64(start);
		if (bpf_map_update_elem(u->lpm_fd, &k, info, BPF_ANY)) {
			u->stats.lpm_failed++;
			return 0;
		}
		u->stats.lpm_entries++;
		if (pid_add_key(pe, &k))
			return -ENOMEM;
		start += 1ull << bits;
	}
	return 0;
}

/*
 * The part of CPython's evaluation loop in [start, end) gets keys of its own,
 * longer than the mapping's, that name the Python walker; the process's
 * py_procs entry says where its thread states and frames are.
 */
static int py_install(struct unwinder *u, struct pid_entry *pe, const struct table *t,
		      const struct mapping_info *info, uint64_t start, uint64_t end)
{
	struct mapping_info pi = *info;
	struct py_proc pp = t->py.layout;
	__u32 pid = (__u32)pe->pid;
	bool here = false;

	for (int i = 0; i < t->py.nranges; i++)
		here |= t->py.ranges[i].start + info->bias < end &&
			t->py.ranges[i].end + info->bias > start;
	if (!here)
		return 0;	/* the loop is in another range of the mapping */
	pp.tss_key_addr += info->bias;
	pp.code_type += info->bias;
	if (bpf_map_update_elem(u->opts.py_procs_fd, &pid, &pp, BPF_ANY)) {
		u->stats.py_failed++;
		return 0;	/* its Python frames stay unnamed: counted */
	}
	if (!pe->py)
		u->stats.py_procs++;
	pe->py = pe->py_seen = true;
	if (u->opts.pysym)
		pysym_set_pid(u->opts.pysym, pe->pid, t->py.minor);
	pi.walker = WALKER_PYTHON;
	for (int i = 0; i < t->py.nranges; i++) {
		uint64_t lo = t->py.ranges[i].start + info->bias, hi = t->py.ranges[i].end + info->bias;

		lo = lo > start ? lo : start;
		hi = hi < end ? hi : end;
		if (lo < hi && add_keys(u, pe, &pi, lo, hi))
			return -ENOMEM;
	}
	return 0;
}

/*
 * A JVM's code heaps get keys that name the JVM walker, and its jvm_procs entry
 * the heaps and the blob layout, read from the VM's own tables (jvmsym). A VM
 * still starting is looked at again at the next sync.
 */
static int jvm_install(struct unwinder *u, struct pid_entry *pe)
{
	struct mapping_info info = { .walker = WALKER_JVM };
	struct jvm_proc jp = { 0 };
	struct hs_layout l;
	struct hs_heaps h;
	__u32 pid = (__u32)pe->pid;
	int err = jvmsym_layout(u->opts.jvmsym, pe->pid, &l, &h);

	/* still starting: again in a second (jvmsym gives up after a minute) */
	pe->jvm_retry_ns = err == -EAGAIN ? clock_mono_ns() + 1000000000ull : 0;
	if (err) {
		jvm_drop(u, pe);	/* none (any more) */
		return 0;
	}
	for (int i = 0; i < h.n && i < JVM_MAX_HEAPS; i++) {
		jp.lo[i] = h.h[i].lo;
		jp.hi[i] = h.h[i].hi;
		jp.segmap[i] = h.h[i].segmap;
		jp.shift[i] = (__u8)h.h[i].shift;
		jp.nheaps++;
	}
	jp.code_offsets = (__u8)l.cb_code_offsets;
	jp.heapblock = (__u16)l.heapblock_size;
	jp.cb_name = (__u16)l.cb_name;
	jp.cb_code_begin = (__u16)l.cb_code_begin;
	jp.cb_code_end = (__u16)l.cb_code_end;
	jp.cb_frame_size = (__u16)l.cb_frame_size;
	jp.nm_compile_id = (__u16)l.nm_compile_id;
	jp.cb_frame_complete = (__u16)l.cb_frame_complete;
	jp.frame_complete_size = (__u8)l.cb_frame_complete_size;
	jp.hb_used = l.hb_has_used && l.hb_used < 0xff ? (__u8)l.hb_used : 0xff;
	if (bpf_map_update_elem(u->opts.jvm_procs_fd, &pid, &jp, BPF_ANY)) {
		u->stats.jvm_failed++;
		return 0;	/* its Java frames stay where the native walk found them */
	}
	if (!pe->jvm)
		u->stats.jvm_procs++;
	pe->jvm = true;
	for (int i = 0; i < jp.nheaps; i++)
		if (add_keys(u, pe, &info, jp.lo[i], jp.hi[i]))
			return -ENOMEM;
	return 0;
}

/*
 * A process that maps a V8 gets its v8_procs entry, once per sync: the V8
 * walker then takes its frames in code without unwind tables.
 */
static void v8_install(struct unwinder *u, struct pid_entry *pe, const struct table *t)
{
	__u32 pid = (__u32)pe->pid;

	if (pe->v8_seen)
		return;
	pe->v8_seen = true;
	if (bpf_map_update_elem(u->opts.v8_procs_fd, &pid, &t->v8.proc, BPF_ANY)) {
		u->stats.v8_failed++;
		return;	/* its JavaScript frames stay native ones: counted */
	}
	if (!pe->v8)
		u->stats.v8_procs++;
	pe->v8 = true;
	if (u->opts.v8sym)
		v8sym_set_pid(u->opts.v8sym, pe->pid, &t->v8);
}

/* A HotSpot VM's library, as maps names it (" (deleted)" once a package upgrade replaced it). */
static bool is_libjvm(const char *path)
{
	size_t n = strlen(path);

	if (n > 10 && !strcmp(path + n - 10, " (deleted)"))
		n -= 10;
	return n >= 10 && !strncmp(path + n - 10, "/libjvm.so", 10);
}

static int add_range(const struct mapping *m, uint64_t start, uint64_t end, void *arg)
{
	struct sync_ctx *c = arg;
	struct unwinder *u = c->u;
	struct mapping_info info;
	struct table *t;
	const struct seg *sg = NULL;
	int id = table_for(u, m, c->pe->pid);

	c->pe->jvm_seen |= is_libjvm(m->path);
	c->pe->deferred |= id == -EAGAIN;
	if (id < 0)
		return 0;	/* no table: the BPF side uses frame pointers there */
	t = &u->tables[id];
	if (pid_add_table(c->pe, (uint32_t)id))
		return -ENOMEM;
	table_ref(u, t);	/* only once the process's list holds it: never a lost reference */
	if (t->has_v8)	/* its code without a table is V8's to walk, loaded or not */
		v8_install(u, c->pe, t);
	if (t->failed || t->pending)
		return 0;	/* pending: its entries come at the sync after it is built */
	/* the executable segment that holds this mapping's file offset */
	for (int i = 0; i < t->nsegs; i++) {
		if (m->pgoff + (start - m->start) >= t->segs[i].offset &&
		    m->pgoff + (start - m->start) < t->segs[i].offset + t->segs[i].filesz + 4096) {
			sg = &t->segs[i];
			break;
		}
	}
	if (!sg)
		return 0;
	info = (struct mapping_info){
		.first_row = t->first_row,
		.nrows = t->nrows,
		/* vaddr = addr - start + pgoff - p_offset + p_vaddr */
		.bias = m->start - m->pgoff + sg->offset - sg->vaddr,
	};
	if (add_keys(u, c->pe, &info, start, end))
		return -ENOMEM;
	return t->has_py ? py_install(u, c->pe, t, &info, start, end) : 0;
}

static bool has_key(const struct pid_entry *pe, const struct mapping_key *k)
{
	for (uint32_t i = 0; i < pe->nkeys; i++)
		if (!memcmp(&pe->keys[i], k, sizeof(*k)))
			return true;
	return false;
}

static int sync_entry(struct unwinder *u, struct pid_entry *pe)
{
	struct pid_entry old = *pe;
	struct sync_ctx c = { .u = u, .pe = pe };
	int err;

	/*
	 * Add the new entries and references first, then drop the old ones, so
	 * that a table both lists share is never evicted and loaded again.
	 */
	pe->keys = NULL;
	pe->nkeys = pe->cap = 0;
	pe->tables = NULL;
	pe->ntables = pe->cap_tables = 0;
	pe->last_sync_ns = clock_mono_ns();
	pe->dirty = false;
	pe->deferred = false;
	u->stats.pid_syncs++;
	pe->py_seen = false;
	pe->jvm_seen = false;
	pe->v8_seen = false;
	err = procs__foreach_range(u->procs, pe->pid, add_range, &c);
	if (pe->py && !pe->py_seen)	/* it exec'd out of Python, or its table went */
		py_drop(u, pe);
	if (pe->v8 && !pe->v8_seen)	/* it exec'd out of Node */
		v8_drop(u, pe);
	if (!pe->jvm_seen)
		pe->jvm_retry_ns = 0;
	if (!err && pe->jvm_seen && u->opts.jvmsym && u->opts.jvm_procs_fd >= 0)
		err = jvm_install(u, pe);
	else if (pe->jvm && !pe->jvm_seen)	/* it exec'd out of the JVM */
		jvm_drop(u, pe);
	for (uint32_t i = 0; i < old.nkeys; i++) {
		if (!has_key(pe, &old.keys[i])) {
			bpf_map_delete_elem(u->lpm_fd, &old.keys[i]);
		}
	}
	/* entries both had were counted twice by add_range */
	u->stats.lpm_entries -= old.nkeys;
	for (uint32_t i = 0; i < old.ntables; i++)
		table_unref(u, old.tables[i]);
	log_debug("unwind: pid %d synced: %u address blocks, %u mappings (was %u/%u)", pe->pid,
		  pe->nkeys, pe->ntables, old.nkeys, old.ntables);
	free(old.keys);
	free(old.tables);
	return err == -ENOENT ? 0 : err;
}

int unwinder__sync_pid(struct unwinder *u, int pid, bool force)
{
	struct pid_entry **pp = pid_slot(u, pid), *pe = *pp;

	if (pe && !pe->dirty && (!force || clock_mono_ns() - pe->last_sync_ns < RESYNC_NS))
		return 0;
	if (!pe) {
		pe = calloc(1, sizeof(*pe));
		if (!pe)
			return -ENOMEM;
		pe->pid = pid;
		*pp = pe;
		u->stats.pids++;
	} else if (force) {
		procs__refresh(u->procs, pid);
	}
	return sync_entry(u, pe);
}

bool unwinder__knows(struct unwinder *u, int pid)
{
	return *pid_slot(u, pid) != NULL;
}

void unwinder__mark_dirty(struct unwinder *u, int pid)
{
	struct pid_entry *pe = *pid_slot(u, pid);

	if (pe)
		pe->dirty = true;
}

int unwinder__sync_dirty(struct unwinder *u)
{
	bool room;
	int n = 0;

	collect(u);
	/* processes whose builds waited, once half the worker's room is free */
	room = workq_outstanding(u->builder) <= u->opts.max_builds / 2;
	for (int i = 0; i < 1024; i++)
		for (struct pid_entry *pe = u->pids[i]; pe; pe = pe->next)
			if ((pe->dirty || (pe->deferred && room) ||
			     (pe->jvm_retry_ns && clock_mono_ns() >= pe->jvm_retry_ns)) &&
			    sync_entry(u, pe) == 0)
				n++;
	return n;
}

int unwinder__sweep(struct unwinder *u)
{
	int n = 0;

	for (int i = 0; i < 1024; i++) {
		struct pid_entry *pe = u->pids[i], *next;

		for (; pe; pe = next) {
			next = pe->next;
			if (kill(pe->pid, 0) && errno == ESRCH) {
				unwinder__forget_pid(u, pe->pid);
				n++;
			}
		}
	}
	u->stats.pids_vanished += (uint64_t)n;
	return n;
}

static bool any_deferred(const struct unwinder *u)
{
	for (int i = 0; i < 1024; i++)
		for (const struct pid_entry *pe = u->pids[i]; pe; pe = pe->next)
			if (pe->deferred)
				return true;
	return false;
}

bool unwinder__settle(struct unwinder *u, int timeout_ms)
{
	uint64_t until = clock_mono_ns() + (uint64_t)timeout_ms * 1000000, now;

	/*
	 * The worker waits while a result is untaken: take them as they come;
	 * the syncs they wake may hand over the builds that waited for room.
	 */
	for (;;) {
		now = clock_mono_ns();
		workq_wait_idle(u->builder, now < until ? (int)((until - now) / 1000000) : 0);
		unwinder__sync_dirty(u);	/* places what was built first */
		if (!workq_outstanding(u->builder) && !any_deferred(u))
			return true;
		if (now >= until)
			return false;
	}
}

int unwinder__wake_fd(const struct unwinder *u)
{
	return workq_fd(u->builder);
}

void unwinder__stats(const struct unwinder *u, struct unwinder_stats *ret)
{
	*ret = u->stats;
}

void unwinder__on_sample(struct unwinder *u, int pid, uint32_t sample_flags, bool alive)
{
	struct pid_entry *pe;

	if (!u || !alive)
		return;
	pe = *pid_slot(u, pid);
	if (!pe)
		unwinder__sync_pid(u, pid, false);
	/* a frame had no table: a library mapped since, unless its table is on its way */
	else if ((sample_flags & SAMPLE_F_NEED_TABLES) && !pid_waits(u, pe))
		unwinder__sync_pid(u, pid, true);
}

void unwinder__on_task(struct unwinder *u, int ev, int pid, int ppid)
{
	if (!u)
		return;
	switch (ev) {
	case TASK_FORK:
		/* the child of a followed process maps the same files: reuse the tables now */
		if (unwinder__knows(u, ppid))
			unwinder__sync_pid(u, pid, false);
		break;
	case TASK_EXEC:
		/* a Python process's code objects were its old image's: its names are
		 * kept for what it collected and dropped when the new image is synced */
		if (*pid_slot(u, pid) && (*pid_slot(u, pid))->py && u->opts.pysym)
			pysym_forget_pid(u->opts.pysym, pid);
		unwinder__mark_dirty(u, pid);
		break;
	case TASK_MMAP:
		unwinder__mark_dirty(u, pid);
		break;
	case TASK_EXIT:
		unwinder__forget_pid(u, pid);
		break;
	}
}
