// SPDX-License-Identifier: Apache-2.0
#include "clock.h"
#include "procs.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "log.h"
#include "grow.h"
#include "procmaps.h"
#include "rootfs.h"

#define MAPS_MAX_BYTES (16u << 20)
/* a process whose lookups miss is re-read at most this often */
#define REREAD_NS (500ull * 1000 * 1000)

struct pmap {
	uint64_t start, end;
	uint64_t time;		/* when it was mapped (or read from /proc) */
	uint32_t id;
};

struct proc {
	struct proc *hnext;
	int pid;
	bool alive;
	bool dead_seen;		/* already dead at the last procs__gc: forgotten at the next */
	bool known;		/* maps came from /proc or from records since its fork/exec */
	uint64_t exec_time;	/* of the newest exec seen */
	uint64_t last_read_ns;
	uint64_t last_used;
	struct pmap *maps;
	uint32_t nmaps, cap;
};

struct procs {
	char proc_root[128];
	uint32_t max_procs, max_mappings;
	struct proc **buckets;
	uint32_t nbuckets, nprocs;
	uint64_t tick;
	/* ids below nmappings; a freed slot has a NULL path and its id is in free_ids */
	struct mapping *mappings;
	uint32_t nmappings, cap_mappings, nlive;
	uint32_t *free_ids;
	uint32_t nfree, cap_free;
	uint32_t *mhash;	/* open addressing over live mapping ids (+1; 0 = empty) */
	uint32_t nmhash;
	struct procs_stats stats;
};

struct procs *procs__new(const struct procs_opts *opts)
{
	struct procs *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	snprintf(p->proc_root, sizeof(p->proc_root), "%s",
		 opts && opts->proc_root ? opts->proc_root : "/proc");
	p->max_procs = opts && opts->max_procs ? opts->max_procs : 32768;
	p->max_mappings = opts && opts->max_mappings ? opts->max_mappings : 1u << 20;
	p->nbuckets = 4096;
	p->buckets = calloc(p->nbuckets, sizeof(*p->buckets));
	if (!p->buckets) {
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

static void proc_free(struct proc *pr)
{
	free(pr->maps);
	free(pr);
}

void procs__free(struct procs *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->nbuckets; i++) {
		struct proc *pr = p->buckets[i], *next;

		for (; pr; pr = next) {
			next = pr->hnext;
			proc_free(pr);
		}
	}
	for (uint32_t i = 0; i < p->nmappings; i++)
		free((char *)p->mappings[i].path);
	free(p->mappings);
	free(p->free_ids);
	free(p->mhash);
	free(p->buckets);
	free(p);
}

static struct proc *proc_find(struct procs *p, int pid)
{
	struct proc *pr;

	for (pr = p->buckets[(uint32_t)pid % p->nbuckets]; pr; pr = pr->hnext)
		if (pr->pid == pid)
			return pr;
	return NULL;
}

/* Frees about an eighth of the table: processes that exited first, then the least used. */
static void evict(struct procs *p)
{
	uint32_t want = p->max_procs / 8 + 1;

	for (int pass = 0; pass < 2 && want; pass++) {
		uint64_t cutoff = p->tick - (p->tick / 2);

		for (uint32_t i = 0; i < p->nbuckets && want; i++) {
			struct proc **pp = &p->buckets[i];

			while (*pp && want) {
				struct proc *pr = *pp;

				if ((pass == 0 && !pr->alive) || (pass == 1 && pr->last_used <= cutoff)) {
					*pp = pr->hnext;
					proc_free(pr);
					p->nprocs--;
					p->stats.procs_evicted++;
					want--;
				} else {
					pp = &pr->hnext;
				}
			}
		}
	}
}

static struct proc *proc_get(struct procs *p, int pid)
{
	struct proc *pr = proc_find(p, pid);
	uint32_t b;

	if (pr)
		return pr;
	if (p->nprocs >= p->max_procs)
		evict(p);
	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return NULL;
	pr->pid = pid;
	pr->alive = true;
	b = (uint32_t)pid % p->nbuckets;
	pr->hnext = p->buckets[b];
	p->buckets[b] = pr;
	p->nprocs++;
	p->stats.procs++;
	return pr;
}

static uint64_t mapping_hash(uint64_t start, uint64_t end, uint64_t pgoff, uint64_t dev,
			     uint64_t ino, const char *path)
{
	uint64_t h = start * 0x9e3779b97f4a7c15ull;

	h ^= end + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= pgoff + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= dev + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	h ^= ino + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	while (*path)
		h = (h ^ (unsigned char)*path++) * 1099511628211ull;
	return h;
}

/* A new index of the live mappings, n slots (a power of two). */
/* Indexes the live mappings into t (n zeroed slots, a power of two), which becomes the index. */
static void mhash_fill(struct procs *p, uint32_t *t, uint32_t n)
{
	for (uint32_t id = 0; id < p->nmappings; id++) {
		const struct mapping *m = &p->mappings[id];
		uint32_t j;

		if (!m->path)
			continue;
		j = mapping_hash(m->start, m->end, m->pgoff, m->dev, m->ino, m->path) & (n - 1);

		while (t[j])
			j = (j + 1) & (n - 1);
		t[j] = id + 1;
	}
	free(p->mhash);
	p->mhash = t;
	p->nmhash = n;
}

static int mhash_rebuild(struct procs *p, uint32_t n)
{
	uint32_t *t = calloc(n, sizeof(*t));

	if (!t)
		return -ENOMEM;
	mhash_fill(p, t, n);
	return 0;
}

static int mhash_grow(struct procs *p)
{
	return mhash_rebuild(p, p->nmhash ? p->nmhash * 2 : 1024);
}

/* A slot for a new mapping: a freed one, else the next; -ENOMEM. */
static int64_t mapping_slot(struct procs *p)
{
	if (p->nfree)
		return p->free_ids[--p->nfree];
	if (grow_array((void **)&p->mappings, &p->cap_mappings, p->nmappings + 1,
		       sizeof(*p->mappings), 1024))
		return -ENOMEM;
	return p->nmappings++;
}

/* Returns the id of an identical mapping, adding it if new; -ENOSPC when the table is full. */
static int64_t mapping_intern(struct procs *p, int pid, uint64_t start, uint64_t end,
			      uint64_t pgoff, uint64_t dev, uint64_t ino, const char *path)
{
	struct mapping *m;
	uint32_t j;
	int64_t id;
	char *copy;

	if ((p->nmappings + 1) * 2 > p->nmhash && mhash_grow(p))
		return -ENOMEM;
	j = mapping_hash(start, end, pgoff, dev, ino, path) & (p->nmhash - 1);
	for (; p->mhash[j]; j = (j + 1) & (p->nmhash - 1)) {
		m = &p->mappings[p->mhash[j] - 1];
		if (m->start == start && m->end == end && m->pgoff == pgoff && m->dev == dev &&
		    m->ino == ino && !strcmp(m->path, path)) {
			m->pid = pid;	/* the newest process to map it: the likeliest alive */
			return p->mhash[j] - 1;
		}
	}
	if (p->nlive >= p->max_mappings) {
		p->stats.mappings_full++;
		return -ENOSPC;
	}
	copy = strdup(path);
	id = copy ? mapping_slot(p) : -ENOMEM;
	if (id < 0) {
		free(copy);
		return -ENOMEM;
	}
	m = &p->mappings[id];
	*m = (struct mapping){ .start = start, .end = end, .pgoff = pgoff, .dev = dev,
			       .ino = ino, .path = copy, .pid = pid };
	p->mhash[j] = (uint32_t)id + 1;
	p->nlive++;
	p->stats.mappings++;
	return id;
}

/* Puts [start, end) -> id into the process's sorted range list, cutting whatever it overlaps. */
static int proc_insert(struct proc *pr, uint64_t start, uint64_t end, uint32_t id, uint64_t time)
{
	uint32_t i, w = 0, n = pr->nmaps;
	struct pmap tail = { 0 };
	bool split = false;

	for (i = 0; i < n; i++) {
		struct pmap m = pr->maps[i];

		if (m.end <= start || m.start >= end) {
			pr->maps[w++] = m;
			continue;
		}
		if (m.start < start && m.end > end) {	/* new range punches a hole */
			tail = (struct pmap){ end, m.end, m.time, m.id };
			split = true;
			m.end = start;
			pr->maps[w++] = m;
		} else if (m.start < start) {
			m.end = start;
			pr->maps[w++] = m;
		} else if (m.end > end) {
			m.start = end;
			pr->maps[w++] = m;
		}
		/* fully covered: dropped */
	}
	pr->nmaps = w;
	if (grow_array((void **)&pr->maps, &pr->cap, pr->nmaps + 2, sizeof(*pr->maps), 32))
		return -ENOMEM;
	for (i = pr->nmaps; i > 0 && pr->maps[i - 1].start > start; i--)
		pr->maps[i] = pr->maps[i - 1];
	pr->maps[i] = (struct pmap){ start, end, time, id };
	pr->nmaps++;
	if (split) {
		for (i = pr->nmaps; i > 0 && pr->maps[i - 1].start > tail.start; i--)
			pr->maps[i] = pr->maps[i - 1];
		pr->maps[i] = tail;
		pr->nmaps++;
	}
	return 0;
}

static int add_range(struct procs *p, struct proc *pr, uint64_t start, uint64_t end,
		     uint64_t pgoff, uint64_t dev, uint64_t ino, const char *path, uint64_t time)
{
	int64_t id = mapping_intern(p, pr->pid, start, end, pgoff, dev, ino, path);

	if (id < 0)
		return (int)id;
	return proc_insert(pr, start, end, (uint32_t)id, time);
}

void procs__on_mmap(struct procs *p, int pid, uint64_t start, uint64_t len, uint64_t pgoff,
		    uint32_t maj, uint32_t min, uint64_t ino, const char *path, uint64_t time)
{
	struct proc *pr = proc_find(p, pid);

	/* Processes we have not met yet are read from /proc when first sampled. */
	if (!pr || !len || start + len < start)
		return;
	if (time && time < pr->exec_time)
		return;	/* the old image's, reported late by another CPU */
	log_debug("procs: pid %d mmap %" PRIx64 "-%" PRIx64 " %s at %" PRIu64, pid, start, start + len,
		  path ? path : "", time);
	add_range(p, pr, start, start + len, pgoff, makedev(maj, min), ino, path ? path : "", time);
}

void procs__on_exec(struct procs *p, int pid, const char *comm, uint64_t time)
{
	struct proc *pr = proc_get(p, pid);
	uint32_t w = 0;

	(void)comm;
	if (!pr || (time && time < pr->exec_time))
		return;
	/* a new address space: drop what was mapped before; its own mmap records follow */
	for (uint32_t i = 0; i < pr->nmaps; i++)
		if (time && pr->maps[i].time > time)
			pr->maps[w++] = pr->maps[i];
	log_debug("procs: pid %d exec at %" PRIu64 ", %u of %u ranges kept", pid, time, w, pr->nmaps);
	pr->nmaps = w;
	pr->exec_time = time;
	pr->known = true;
	pr->alive = true;
	pr->dead_seen = false;
}

/* Whether the process has records of its own newer than time (its exec, its mmaps). */
static bool newer_than(const struct proc *pr, uint64_t time)
{
	if (pr->exec_time > time)
		return true;
	for (uint32_t i = 0; i < pr->nmaps; i++)
		if (pr->maps[i].time > time)
			return true;
	return false;
}

void procs__on_fork(struct procs *p, int pid, int ppid, uint64_t time)
{
	struct proc *parent = proc_find(p, ppid), *child;

	if (pid == ppid)
		return;
	child = proc_get(p, pid);
	if (!child)
		return;
	child->alive = true;
	child->dead_seen = false;
	/* its exec or mmaps came first (read from another CPU's buffer): they are its own */
	if (time && newer_than(child, time))
		return;
	/* else what the pid holds is an earlier process's of that pid */
	child->exec_time = 0;
	child->nmaps = 0;
	child->known = false;
	/* re-find: proc_get may have evicted */
	parent = proc_find(p, ppid);
	if (parent && parent->known && parent->nmaps) {
		struct pmap *copy = malloc(parent->nmaps * sizeof(*copy));

		if (!copy)
			return;
		memcpy(copy, parent->maps, parent->nmaps * sizeof(*copy));
		free(child->maps);
		child->maps = copy;
		child->nmaps = child->cap = parent->nmaps;
		child->known = true;
	}
}

void procs__on_exit(struct procs *p, int pid)
{
	struct proc *pr = proc_find(p, pid);

	if (pr)
		pr->alive = false;
}

struct load_ctx {
	struct procs *p;
	struct proc *pr;
};

static int load_entry(const struct maps_entry *e, void *arg)
{
	struct load_ctx *c = arg;

	if (!e->exec)
		return 0;
	return add_range(c->p, c->pr, e->start, e->end, e->offset, makedev(e->dev_major, e->dev_minor),
			 e->ino, e->path, c->pr->last_read_ns);
}

static int load_from_proc(struct procs *p, struct proc *pr)
{
	struct load_ctx c = { p, pr };
	char *text = NULL;
	int err;

	pr->last_read_ns = clock_mono_ns();
	err = procmaps__read(p->proc_root, pr->pid, MAPS_MAX_BYTES, &text);
	if (err) {
		p->stats.maps_read_failed++;
		if (err == -ENOENT || err == -ESRCH)
			pr->alive = false;
		return err;
	}
	p->stats.maps_read++;
	log_debug("procs: read /proc/%d/maps (had %u ranges)", pr->pid, pr->nmaps);
	pr->nmaps = 0;	/* /proc is the truth for a live process */
	err = procmaps__parse(text, load_entry, &c);
	free(text);
	if (err < 0)
		return err;
	pr->known = true;
	return 0;
}

static int lookup(const struct proc *pr, uint64_t addr, uint32_t *ret_id)
{
	uint32_t lo = 0, hi = pr->nmaps;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (addr < pr->maps[mid].start)
			hi = mid;
		else if (addr >= pr->maps[mid].end)
			lo = mid + 1;
		else {
			*ret_id = pr->maps[mid].id;
			return 0;
		}
	}
	return -ENOENT;
}

int procs__resolve(struct procs *p, int pid, uint64_t addr, uint32_t *ret_id)
{
	struct proc *pr = proc_get(p, pid);

	if (!pr)
		return -ENOMEM;
	pr->last_used = ++p->tick;
	if (!pr->known)
		load_from_proc(p, pr);
	if (lookup(pr, addr, ret_id) == 0)
		return 0;
	if (pr->alive && clock_mono_ns() - pr->last_read_ns > REREAD_NS && load_from_proc(p, pr) == 0 &&
	    lookup(pr, addr, ret_id) == 0)
		return 0;
	p->stats.resolve_misses++;
	return -ENOENT;
}

const struct mapping *procs__mapping(const struct procs *p, uint32_t id)
{
	return id < p->nmappings && p->mappings[id].path ? &p->mappings[id] : NULL;
}

uint32_t procs__nmappings(const struct procs *p)
{
	return p->nmappings;
}

bool procs__alive(const struct procs *p, int pid)
{
	const struct proc *pr = proc_find((struct procs *)p, pid);

	return pr && pr->alive;
}

void procs__stats(const struct procs *p, struct procs_stats *ret)
{
	*ret = p->stats;
	ret->procs_live = p->nprocs;
	ret->mappings_live = p->nlive;
}

/* Forgets processes that were already dead at the previous call. */
static void gc_procs(struct procs *p)
{
	for (uint32_t i = 0; i < p->nbuckets; i++) {
		struct proc **pp = &p->buckets[i];

		while (*pp) {
			struct proc *pr = *pp;

			if (!pr->alive && pr->dead_seen) {
				*pp = pr->hnext;
				proc_free(pr);
				p->nprocs--;
				p->stats.procs_freed++;
				continue;
			}
			pr->dead_seen = !pr->alive;
			pp = &pr->hnext;
		}
	}
}

/* Frees the mappings no process holds; their ids go back to the free list. */
static int gc_mappings(struct procs *p)
{
	uint8_t *held = calloc(p->nmappings ? p->nmappings : 1, 1);
	/* everything that can fail first: nothing is freed unless the new index exists */
	uint32_t *index = p->nmhash ? calloc(p->nmhash, sizeof(*index)) : NULL;
	uint32_t freed = 0;

	if (!held || (p->nmhash && !index) ||
	    grow_array((void **)&p->free_ids, &p->cap_free, p->nmappings, sizeof(*p->free_ids), 64)) {
		free(held);
		free(index);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < p->nbuckets; i++)
		for (const struct proc *pr = p->buckets[i]; pr; pr = pr->hnext)
			for (uint32_t k = 0; k < pr->nmaps; k++)
				held[pr->maps[k].id] = 1;
	for (uint32_t id = 0; id < p->nmappings; id++) {
		struct mapping *m = &p->mappings[id];

		if (held[id] || !m->path)
			continue;
		free((char *)m->path);
		m->path = NULL;
		p->free_ids[p->nfree++] = id;
		freed++;
	}
	free(held);
	p->nlive -= freed;
	p->stats.mappings_freed += freed;
	if (index)
		mhash_fill(p, index, p->nmhash);
	return 0;
}

/* A process whose exit record was lost (PERF_RECORD_LOST) would stay alive for ever. */
static void mark_vanished(struct procs *p)
{
	for (uint32_t i = 0; i < p->nbuckets; i++)
		for (struct proc *pr = p->buckets[i]; pr; pr = pr->hnext)
			if (pr->alive && kill(pr->pid, 0) && errno == ESRCH) {
				pr->alive = false;
				p->stats.procs_vanished++;
			}
}

int procs__gc(struct procs *p)
{
	mark_vanished(p);
	gc_procs(p);
	return gc_mappings(p);
}

int procs__foreach_range(struct procs *p, int pid,
			 int (*cb)(const struct mapping *m, uint64_t start, uint64_t end, void *ctx),
			 void *ctx)
{
	struct proc *pr = proc_get(p, pid);
	int err;

	if (!pr)
		return -ENOMEM;
	if (!pr->known && load_from_proc(p, pr))
		return -ENOENT;
	for (uint32_t i = 0; i < pr->nmaps; i++) {
		err = cb(&p->mappings[pr->maps[i].id], pr->maps[i].start, pr->maps[i].end, ctx);
		if (err)
			return err;
	}
	return 0;
}

int procs__refresh(struct procs *p, int pid)
{
	struct proc *pr = proc_get(p, pid);

	if (!pr)
		return -ENOMEM;
	if (!pr->alive || clock_mono_ns() - pr->last_read_ns < REREAD_NS)
		return 0;
	return load_from_proc(p, pr);
}

int procs__mapping_path(const struct mapping *m, int pid, bool alive, char *buf, size_t len)
{
	struct stat sb;

	if (m->path[0] != '/')
		return -ENOENT;
	if (alive) {
		/* the mapped file itself, even deleted or in another mount namespace */
		snprintf(buf, len, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start, m->end);
		if (access(buf, R_OK) == 0)
			return 0;
		/* resolved inside the process's root, as elfutil_open will */
		snprintf(buf, len, "/proc/%d/root%s", pid, m->path);
		if (rootfs_readable(buf) == 0)
			return 0;
	}
	/* the host's file of that name, only if it is the very file that was mapped;
	 * never one under /proc, whose names (our own descriptors, other processes'
	 * roots) mean something else to us than to the process */
	if (!strncmp(m->path, "/proc/", 6) || stat(m->path, &sb) ||
	    (uint64_t)sb.st_ino != m->ino || (uint64_t)sb.st_dev != m->dev)
		return -ENOENT;
	snprintf(buf, len, "%s", m->path);
	return 0;
}
