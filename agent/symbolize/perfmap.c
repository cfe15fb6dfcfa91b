// SPDX-License-Identifier: Apache-2.0
/*
 * perf maps (see perfmap.h). A process's map (one image of it) has two parts:
 *
 * - the index: a sorted array of disjoint ranges, each naming a string by its
 *   id (noff[id] is where it starts in names); a lookup is a binary search;
 * - the lines read since the index was built ("aside"), in file order, their
 *   names in an array of their own (anames, aoff): a look never grows the
 *   index's arrays. Line j aside has name id nnoff + j.
 *
 * A look only appends lines aside. A lookup that finds lines aside rebuilds
 * the index: it sorts those k lines, sweeps them into disjoint pieces (each
 * given to the latest line covering it, with a heap by line number), and
 * merges the pieces with the n ranges of the index in one pass, the pieces
 * winning: O(n + k log k). Then the names the new ranges use are copied
 * into a new, compact names array, in id order. Every array the rebuild needs
 * is allocated before anything is done: when one cannot be, the map is left
 * as it was, untouched, and the rebuild is tried again after the next look at
 * its file or the next gc (not at every lookup of one profile's build).
 *
 * Each line merged adds at most two ranges (one, and the two halves of an
 * older range it lies inside): a rebuild's index holds at most n + 2k, for the
 * n + k entries the caps were charged (docs/agent-internals.md: the bound).
 *
 * Memory is counted as allocated (every array's capacity): what a pid's
 * images hold together, and every pid's together, against the caps; a look's
 * buffer and a rebuild's transient arrays are not (docs/agent-internals.md
 * gives the peak).
 */
#include "perfmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "hmap.h"
#include "log.h"
#include "rootfs.h"

#define DEFAULT_ENTRIES (1u << 20)
#define DEFAULT_BYTES (64ull << 20)
#define DEFAULT_READ_MAX (16ull << 20)
#define DEFAULT_RECHECK_NS 1000000000ull
#define DEFAULT_PROCS 65536
#define SHARE 4			/* one process's map holds 1/SHARE of each cap at most */
#define CHUNK (64u << 10)	/* read at once: a line this long or longer is malformed */
#define NAME_KEEP 1024		/* bytes of a name kept: a longer one is cut */
#define STATUS_MAX 8192		/* bytes of /proc/PID/status read for its NSpid */
#define MAX_OLDER 2		/* a pid's images kept besides its newest: an older one is dropped */
#define LOG_EVERY_NS (60 * 1000000000ull)	/* a failed merge: one message a minute at most */

struct range {
	uint64_t start, end;	/* [start, end) */
	uint32_t name;		/* id: noff[name], or aoff[name - nnoff] for a line aside */
	uint32_t seq;		/* a line aside: its number among them (the later wins) */
};

enum pmap_state {
	PM_LIVE,
	PM_GONE,	/* forgotten: its names stay for the profile */
	PM_GONE_SEEN,	/* forgotten before the last perfmaps__gc: freed at the next */
};

/* One image of a process: the newest is the table's, older ones follow it. */
struct pmap {
	int pid;
	enum pmap_state state;	/* only the newest may be PM_LIVE */
	struct pmap *older;	/* the pid's images before this one, forgotten */
	uint64_t dev, ino;	/* the file read */
	uint64_t off;		/* bytes of it consumed (a last line without its newline is not) */
	uint64_t checked_ns;	/* the last look */
	bool skipping;		/* inside a line too long: skipped to its newline */
	bool merge_failed;	/* out of memory: not merged again before the next look or gc */
	struct range *r;	/* the index: nr sorted, disjoint */
	uint32_t *noff;		/* nnoff names: where each starts in names */
	char *names;		/* the index's, NUL-terminated, in id order */
	struct range *aside;	/* naside lines read since it was built, in file order */
	uint32_t *aoff;		/* their names: where each starts in anames */
	char *anames;
	size_t nr, rcap, nnoff, noff_cap, nnames, names_cap;
	size_t naside, aside_cap, aoff_cap, nanames, anames_cap;
};

struct perfmaps {
	char proc_root[128];
	uint32_t max_entries, max_procs;
	uint64_t max_bytes, read_max, recheck_ns;
	struct hmap maps;	/* "pid" -> its newest struct pmap */
	int last_pid;		/* perfmaps__refresh's last, at last_ns */
	uint64_t last_ns;
	uint32_t fail_in;	/* perfmaps__fail_alloc: counted down to 1, then every one fails */
	uint64_t log_ns;	/* the last failed merge logged, and those left out since */
	uint32_t log_more;
	struct perfmaps_stats stats;
};

struct perfmaps *perfmaps__new(const struct perfmaps_opts *opts)
{
	struct perfmaps *pm = calloc(1, sizeof(*pm));
	const struct perfmaps_opts o = opts ? *opts : (struct perfmaps_opts){ 0 };

	if (!pm)
		return NULL;
	snprintf(pm->proc_root, sizeof(pm->proc_root), "%s", o.proc_root ? o.proc_root : "/proc");
	pm->max_entries = o.max_entries ? o.max_entries : DEFAULT_ENTRIES;
	pm->max_procs = o.max_procs ? o.max_procs : DEFAULT_PROCS;
	pm->max_bytes = o.max_bytes ? o.max_bytes : DEFAULT_BYTES;
	if (pm->max_bytes > UINT32_MAX)	/* names are found by 32-bit offsets */
		pm->max_bytes = UINT32_MAX;
	if (!o.read_max)
		pm->read_max = DEFAULT_READ_MAX;
	else	/* at least a chunk: a look then always takes a line or skips a long one */
		pm->read_max = o.read_max > CHUNK ? o.read_max : CHUNK;
	pm->recheck_ns = o.recheck_ns ? o.recheck_ns : DEFAULT_RECHECK_NS;
	pm->last_pid = -1;
	return pm;
}

/* ---- memory -------------------------------------------------------------- */

/* Every allocation of this file, so that a test can fail the nth (perfmaps__fail_alloc). */
static void *pm_realloc(struct perfmaps *pm, void *p, size_t size)
{
	if (pm->fail_in > 1)
		pm->fail_in--;
	else if (pm->fail_in == 1)
		return NULL;
	return realloc(p, size);
}

void perfmaps__fail_alloc(struct perfmaps *pm, uint32_t nth)
{
	pm->fail_in = nth;
}

/* What a map has allocated: what it is charged against the caps. */
static uint64_t pmap_bytes(const struct pmap *m)
{
	return (uint64_t)(m->rcap + m->aside_cap) * sizeof(struct range) +
	       (uint64_t)(m->noff_cap + m->aoff_cap) * sizeof(uint32_t) + m->names_cap +
	       m->anames_cap;
}

static uint64_t pmap_entries(const struct pmap *m)
{
	return m->nr + m->naside;
}

static bool pmap_holds(const struct pmap *m)
{
	return m->nr || m->naside;
}

/*
 * What the pid whose newest image is m holds, every image of it together: one
 * share for all (an exec does not bring a new one).
 */
static uint64_t chain_bytes(const struct pmap *m)
{
	uint64_t n = 0;

	for (; m; m = m->older)
		n += pmap_bytes(m);
	return n;
}

static uint64_t chain_entries(const struct pmap *m)
{
	uint64_t n = 0;

	for (; m; m = m->older)
		n += pmap_entries(m);
	return n;
}

/* Bytes the pid of newest image m may still allocate: its share, and what every map together may. */
static uint64_t bytes_room(const struct perfmaps *pm, const struct pmap *m)
{
	uint64_t mine = chain_bytes(m), share = pm->max_bytes / SHARE;
	uint64_t own = share > mine ? share - mine : 0;
	uint64_t held = pm->stats.bytes_held;
	uint64_t all = pm->max_bytes > held ? pm->max_bytes - held : 0;

	return own < all ? own : all;
}

/*
 * Makes *p (*cap elements of sz bytes) of m, the pid's newest image, hold
 * need: doubled (from first), or less when the caps leave less room. 0,
 * -ENOSPC (no room) or -ENOMEM.
 */
static int grow(struct perfmaps *pm, struct pmap *m, void **p, size_t *cap, size_t need,
		size_t sz, size_t first)
{
	size_t ncap = *cap ? *cap * 2 : first;
	uint64_t room;
	void *np;

	if (need <= *cap)
		return 0;
	room = bytes_room(pm, m) / sz;
	if (need - *cap > room)
		return -ENOSPC;
	if (ncap < need)
		ncap = need;
	if (ncap - *cap > room)
		ncap = *cap + (size_t)room;
	np = pm_realloc(pm, *p, ncap * sz);
	if (!np)
		return -ENOMEM;
	pm->stats.bytes_held += (ncap - *cap) * sz;
	*p = np;
	*cap = ncap;
	return 0;
}

/* Frees the lines aside. */
static void pmap_clear_aside(struct perfmaps *pm, struct pmap *m)
{
	uint64_t bytes = pmap_bytes(m);

	pm->stats.entries_held -= m->naside;
	free(m->aside);
	free(m->aoff);
	free(m->anames);
	m->aside = NULL;
	m->aoff = NULL;
	m->anames = NULL;
	m->naside = m->aside_cap = m->aoff_cap = m->nanames = m->anames_cap = 0;
	pm->stats.bytes_held -= bytes - pmap_bytes(m);
}

/* Frees what the map holds (its identity and place in the table stay). */
static void pmap_clear(struct perfmaps *pm, struct pmap *m)
{
	pmap_clear_aside(pm, m);
	pm->stats.entries_held -= m->nr;
	pm->stats.bytes_held -= pmap_bytes(m);
	free(m->r);
	free(m->noff);
	free(m->names);
	m->r = NULL;
	m->noff = NULL;
	m->names = NULL;
	m->nr = m->rcap = m->nnoff = m->noff_cap = m->nnames = m->names_cap = 0;
}

static void pmap_free(struct perfmaps *pm, struct pmap *m)
{
	pmap_clear(pm, m);
	free(m);
}

void perfmaps__free(struct perfmaps *pm)
{
	if (!pm)
		return;
	hmap_for_each(&pm->maps, it) {
		for (struct pmap *m = it->val, *older; m; m = older) {
			older = m->older;
			pmap_free(pm, m);
		}
	}
	hmap_free(&pm->maps);
	free(pm);
}

/* ---- the table: a pid's images ------------------------------------------ */

/*
 * The table's struct for a pid is always its newest image: a new image takes
 * that struct over (the old one's contents move to a struct of their own,
 * behind it), so that the table is never written but to add or remove a pid.
 */
static struct pmap *pmap_newest(const struct perfmaps *pm, int pid)
{
	char key[16];

	snprintf(key, sizeof(key), "%d", pid);
	return hmap_get(&pm->maps, key);
}

static struct pmap *pmap_add(struct perfmaps *pm, int pid)
{
	struct pmap *m;
	char key[16];

	if (pm->maps.n >= pm->max_procs) {
		pm->stats.processes_full++;
		return NULL;
	}
	m = pm_realloc(pm, NULL, sizeof(*m));
	if (!m)
		return NULL;
	*m = (struct pmap){ .pid = pid, .state = PM_LIVE };
	snprintf(key, sizeof(key), "%d", pid);
	if (hmap_put(&pm->maps, key, m, NULL)) {
		free(m);
		return NULL;
	}
	return m;
}

/*
 * Frees the images of the pid (m its newest) past MAX_OLDER older ones: a
 * process that execs again and again keeps its newest names, not its first.
 */
static void pmap_trim(struct perfmaps *pm, struct pmap *m)
{
	struct pmap **link = &m->older;

	for (int n = 0; *link && n < MAX_OLDER; n++)
		link = &(*link)->older;
	while (*link) {
		struct pmap *o = *link;

		*link = o->older;
		pm->stats.images_dropped++;
		log_debug("perf map of pid %d: an older image dropped (%d kept)", m->pid, MAX_OLDER);
		pmap_free(pm, o);
	}
}

/* The pid's live image, a new one if it has none (never seen, or forgotten since), or NULL. */
static struct pmap *pmap_live(struct perfmaps *pm, int pid)
{
	struct pmap *m = pmap_newest(pm, pid), *old;

	if (!m)
		return pmap_add(pm, pid);
	if (m->state == PM_LIVE)
		return m;
	old = pm_realloc(pm, NULL, sizeof(*old));
	if (!old)
		return NULL;
	*old = *m;
	*m = (struct pmap){ .pid = pid, .state = PM_LIVE, .older = old };
	pmap_trim(pm, m);
	return m;
}

/* The pid's newest image m goes: the next older takes its struct, or the pid leaves the table. */
static void pmap_pop(struct perfmaps *pm, struct pmap *m, struct hmap_entry *e)
{
	struct pmap *older = m->older;
	char key[16];

	pmap_clear(pm, m);
	if (older) {
		*m = *older;
		free(older);
		return;
	}
	if (e) {
		hmap_del_entry(&pm->maps, e);
	} else {
		snprintf(key, sizeof(key), "%d", m->pid);
		hmap_del(&pm->maps, key);
	}
	free(m);
}

/*
 * The pid's newest image m is no longer read: kept (forgotten) for the names
 * the profile needs, or freed if it holds none.
 */
static void pmap_retire(struct perfmaps *pm, struct pmap *m)
{
	if (pm->last_pid == m->pid)
		pm->last_pid = -1;	/* the next refresh starts its new image at once */
	if (pmap_holds(m))
		m->state = PM_GONE;
	else
		pmap_pop(pm, m, NULL);
}

/* ---- the file ------------------------------------------------------------ */

/* The pid process pid sees itself as: the last NSpid of its status; pid without one. */
static int ns_pid(const struct perfmaps *pm, int pid)
{
	char path[160], buf[STATUS_MAX];
	char *p, *end;
	long last = pid;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%d/status", pm->proc_root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pid;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	p = strstr(buf, "\nNSpid:");
	if (!p)
		return pid;
	for (p += 7;; p = end) {
		long v;

		p += strspn(p, " \t");
		if (*p < '0' || *p > '9')
			break;
		v = strtol(p, &end, 10);
		if (v > 0 && v <= INT32_MAX)
			last = v;
	}
	return (int)last;
}

/*
 * Opens process pid's map for reading, its identity and size into *st: only a
 * regular file (-EINVAL for anything else), found inside the process's root.
 * It is looked at through an O_PATH descriptor first: opening a device or a
 * FIFO for reading could do something or block. fd or -errno.
 */
static int map_open(const struct perfmaps *pm, int pid, struct stat *st)
{
	char path[192];
	int root, fd, rfd;

	snprintf(path, sizeof(path), "%s/%d/root", pm->proc_root, pid);
	root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -errno;
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", ns_pid(pm, pid));
	fd = rootfs_openat(root, path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	close(root);
	if (fd < 0)
		return fd;
	if (fstat(fd, st) || !S_ISREG(st->st_mode)) {
		close(fd);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rfd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	rfd = rfd < 0 ? -errno : rfd;
	close(fd);
	return rfd;
}

/* ---- lines --------------------------------------------------------------- */

/* Hex digits (0x or not, 16 at most) into *ret; where they end, or NULL. */
static const char *hex(const char *s, uint64_t *ret)
{
	uint64_t v = 0;
	int n = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (;; s++, n++) {
		char c = (char)(*s | 0x20);
		uint64_t d;

		if (*s >= '0' && *s <= '9')
			d = (uint64_t)(*s - '0');
		else if (c >= 'a' && c <= 'f')
			d = (uint64_t)(c - 'a' + 10);
		else
			break;
		if (n == 16)
			return NULL;
		v = v << 4 | d;
	}
	if (!n)
		return NULL;
	*ret = v;
	return s;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/*
 * "START SIZE name" (line is NUL-terminated at len, may hold other NULs): the
 * range and the name (trailing blanks cut) into the ret_*. 0, 1 for a blank
 * line, or -EINVAL.
 */
static int parse_line(const char *line, size_t len, uint64_t *ret_start, uint64_t *ret_size,
		      const char **ret_name, size_t *ret_len)
{
	const char *s = line, *end = line + len;
	uint64_t start, size;

	while (s < end && blank(*s))
		s++;
	if (s == end)
		return 1;
	s = hex(s, &start);
	if (!s || !blank(*s))
		return -EINVAL;
	while (blank(*s))
		s++;
	s = hex(s, &size);
	if (!s || !blank(*s) || !size || size > UINT64_MAX - start)
		return -EINVAL;
	while (s < end && blank(*s))
		s++;
	while (end > s && blank(end[-1]))
		end--;
	if (s == end)
		return -EINVAL;
	*ret_start = start;
	*ret_size = size;
	*ret_name = s;
	*ret_len = (size_t)(end - s);
	return 0;
}

/* A name as kept: cut at NAME_KEEP (not inside a UTF-8 sequence), control bytes as '?'. */
static void put_name(char *dst, const char *name, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
	dst[len] = '\0';
}

static size_t name_len(const char *name, size_t len)
{
	if (len <= NAME_KEEP)
		return len;
	len = NAME_KEEP;
	while (len && ((unsigned char)name[len] & 0xc0) == 0x80)
		len--;
	return len;
}

/* ---- a look: lines aside -------------------------------------------------- */

/* What one look is reading into. */
struct reader {
	struct perfmaps *pm;
	struct pmap *m;
	uint32_t added;		/* lines put aside */
};

/*
 * Room in m (the pid's newest image) for one more line aside, its name len
 * bytes: 0, or -ENOSPC (the caps, every image of the pid charged, or no memory).
 */
static int pmap_room(struct perfmaps *pm, struct pmap *m, size_t len)
{
	uint32_t share = pm->max_entries / SHARE ? pm->max_entries / SHARE : 1;

	if (pm->stats.entries_held >= pm->max_entries || chain_entries(m) >= share)
		return -ENOSPC;
	if (grow(pm, m, (void **)&m->aside, &m->aside_cap, m->naside + 1, sizeof(*m->aside), 64) ||
	    grow(pm, m, (void **)&m->aoff, &m->aoff_cap, m->naside + 1, sizeof(*m->aoff), 64) ||
	    grow(pm, m, (void **)&m->anames, &m->anames_cap, m->nanames + len + 1, 1, 4096))
		return -ENOSPC;
	return 0;
}

static void take_line(struct reader *rd, const char *line, size_t len)
{
	struct perfmaps *pm = rd->pm;
	struct pmap *m = rd->m;
	uint64_t start, size;
	const char *name;
	size_t nlen;
	int err = parse_line(line, len, &start, &size, &name, &nlen);

	if (err) {
		pm->stats.lines_malformed += err < 0;
		return;
	}
	nlen = name_len(name, nlen);
	if (pmap_room(pm, m, nlen)) {
		pm->stats.entries_dropped++;
		return;
	}
	put_name(m->anames + m->nanames, name, nlen);
	m->aoff[m->naside] = (uint32_t)m->nanames;
	m->aside[m->naside] = (struct range){ .start = start, .end = start + size,
					      .name = (uint32_t)(m->nnoff + m->naside),
					      .seq = (uint32_t)m->naside };
	m->nanames += nlen + 1;
	m->naside++;
	rd->added++;
	pm->stats.entries++;
	pm->stats.entries_held++;
}

/* Takes the whole lines of buf (have bytes); what is left of it is moved to its start. */
static size_t take_lines(struct reader *rd, char *buf, size_t have)
{
	char *p = buf, *end = buf + have, *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		*nl = '\0';
		if (rd->m->skipping)
			rd->m->skipping = false;
		else
			take_line(rd, p, (size_t)(nl - p));
		p = nl + 1;
	}
	rd->m->off += (uint64_t)(p - buf);
	memmove(buf, p, (size_t)(end - p));
	return (size_t)(end - p);
}

/* Reads the file from m->off, read_max bytes at most. Lines taken, or -errno. */
static int pmap_read(struct perfmaps *pm, struct pmap *m, int fd, uint64_t size)
{
	struct reader rd = { .pm = pm, .m = m };
	uint64_t pos = m->off, limit = m->off + pm->read_max;
	char *buf = pm_realloc(pm, NULL, CHUNK);
	size_t have = 0;
	int err = 0;

	if (!buf)
		return -ENOMEM;
	while (pos < limit) {
		size_t want = CHUNK - have;
		ssize_t n;

		if (want > limit - pos)
			want = (size_t)(limit - pos);
		n = pread(fd, buf + have, want, (off_t)pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : 0;
			break;
		}
		pos += (uint64_t)n;
		have = take_lines(&rd, buf, have + (size_t)n);
		if (have == CHUNK) {	/* no newline in a whole chunk */
			pm->stats.lines_malformed += !m->skipping;
			m->skipping = true;
			m->off += have;
			have = 0;
		}
	}
	free(buf);
	if (pos >= limit && size > limit)
		pm->stats.reads_capped++;
	pm->stats.maps_read += rd.added > 0;
	return err ? err : (int)rd.added;
}

/* Whether st is the file m read last, and no shorter than what was consumed of it. */
static bool same_file(const struct pmap *m, const struct stat *st)
{
	return (uint64_t)st->st_dev == m->dev && (uint64_t)st->st_ino == m->ino &&
	       (uint64_t)st->st_size >= m->off;
}

/*
 * The live image m's file is another (a new process with the pid, whose
 * exit was not seen) or shrank: read from the start into a new image, the
 * old one's names kept as a forgotten image's. The image, or NULL.
 *
 * Or m is a new image not read yet (after an exec), its file the one its
 * previous image read, no shorter: the runtime appends to it (CPython opens
 * it O_APPEND), and the lines up to where the old image stopped are the old
 * code's, kept there: read on from that point.
 */
static struct pmap *pmap_restart(struct perfmaps *pm, struct pmap *m, const struct stat *st)
{
	uint64_t checked = m->checked_ns, from = 0;
	bool skipping = false;

	if (m->off || pmap_holds(m)) {
		pm->stats.files_replaced++;
	} else if (m->older && same_file(m->older, st)) {
		from = m->older->off;
		skipping = m->older->skipping;
	}
	if (pmap_holds(m)) {
		pmap_retire(pm, m);
		m = pmap_live(pm, m->pid);	/* the same struct: the newest */
		if (!m)
			return NULL;
	}
	m->checked_ns = checked;
	m->off = from;
	m->skipping = skipping;
	m->dev = (uint64_t)st->st_dev;
	m->ino = (uint64_t)st->st_ino;
	return m;
}

/* Looks at the live image m's file: what was appended, or all of a new one. */
static int pmap_look(struct perfmaps *pm, struct pmap *m)
{
	struct stat st;
	int fd, n = 0;

	m->checked_ns = clock_mono_ns();
	m->merge_failed = false;	/* a failed merge is tried again once after each look */
	fd = map_open(pm, m->pid, &st);
	if (fd == -EINVAL) {
		pm->stats.files_refused++;
		log_debug("perf map of pid %d: not a regular file, refused", m->pid);
	}
	if (fd < 0)
		return fd;
	if (!same_file(m, &st))
		m = pmap_restart(pm, m, &st);
	if (m && (uint64_t)st.st_size > m->off)
		n = pmap_read(pm, m, fd, (uint64_t)st.st_size);
	close(fd);
	return m ? n : -ENOMEM;
}

/* ---- the index ------------------------------------------------------------ */

static int cmp_line(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * The lines aside (sorted by start, then seq) cut into disjoint pieces, in
 * address order, each the latest line's over it. heap holds the lines that
 * began at or before x, the latest on top; one that ended is dropped when it
 * comes on top.
 */
struct sweep {
	const struct range *in;
	size_t n, i;
	uint32_t *heap, hn;
	uint64_t x;		/* where the next piece starts */
};

static void heap_push(struct sweep *s, uint32_t v)
{
	uint32_t *h = s->heap, i = s->hn++;

	for (; i && s->in[h[(i - 1) / 2]].seq < s->in[v].seq; i = (i - 1) / 2)
		h[i] = h[(i - 1) / 2];
	h[i] = v;
}

static void heap_pop(struct sweep *s)
{
	uint32_t *h = s->heap, v = h[--s->hn], i = 0, c;

	for (; (c = 2 * i + 1) < s->hn; i = c) {
		if (c + 1 < s->hn && s->in[h[c + 1]].seq > s->in[h[c]].seq)
			c++;
		if (s->in[h[c]].seq <= s->in[v].seq)
			break;
		h[i] = h[c];
	}
	if (s->hn)
		h[i] = v;
}

/* The next piece into *ret; false after the last. */
static bool sweep_next(struct sweep *s, struct range *ret)
{
	while (s->i < s->n || s->hn) {
		const struct range *top;

		if (!s->hn)
			s->x = s->in[s->i].start;
		while (s->i < s->n && s->in[s->i].start <= s->x)
			heap_push(s, (uint32_t)s->i++);
		while (s->hn && s->in[s->heap[0]].end <= s->x)
			heap_pop(s);
		if (!s->hn)
			continue;
		top = &s->in[s->heap[0]];
		*ret = (struct range){ .start = s->x, .end = top->end, .name = top->name };
		if (s->i < s->n && s->in[s->i].start < top->end)
			ret->end = s->in[s->i].start;
		s->x = ret->end;
		return true;
	}
	return false;
}

/*
 * A rebuild's new arrays, all allocated before it begins: the index (n + 2k
 * ranges, the most it can need), the sweep's heap (k), the names' new ids
 * (one per name), the names and their offsets (no more than there are).
 */
struct build {
	struct range *r;
	uint32_t *heap, *fwd, *noff;
	char *names;
	size_t nr, rcap, nnoff, noff_cap, nnames, names_cap;
	bool overflow;		/* past rcap: cannot be, but nothing is written past it */
};

static int build_alloc(struct perfmaps *pm, const struct pmap *m, struct build *b)
{
	b->rcap = m->nr + 2 * m->naside;
	b->noff_cap = m->nnoff + m->naside;
	b->names_cap = m->nnames + m->nanames;
	b->r = pm_realloc(pm, NULL, b->rcap * sizeof(*b->r));
	b->heap = pm_realloc(pm, NULL, m->naside * sizeof(*b->heap));
	b->fwd = pm_realloc(pm, NULL, b->noff_cap * sizeof(*b->fwd));
	b->noff = pm_realloc(pm, NULL, b->noff_cap * sizeof(*b->noff));
	b->names = pm_realloc(pm, NULL, b->names_cap);
	return b->r && b->heap && b->fwd && b->noff && b->names ? 0 : -ENOMEM;
}

static void build_free(struct build *b)
{
	free(b->r);
	free(b->heap);
	free(b->fwd);
	free(b->noff);
	free(b->names);
}

static void emit(struct build *b, uint64_t start, uint64_t end, uint32_t name)
{
	struct range *last = b->nr ? &b->r[b->nr - 1] : NULL;

	if (last && last->end == start && last->name == name) {
		last->end = end;
		return;
	}
	if (b->nr == b->rcap) {
		b->overflow = true;
		return;
	}
	b->r[b->nr++] = (struct range){ .start = start, .end = end, .name = name };
}

/* m's index and the sweep's pieces into b->r, the pieces winning where they cover. */
static void merge(const struct pmap *m, struct sweep *s, struct build *b)
{
	struct range p;
	bool have = sweep_next(s, &p);
	uint64_t covered = 0;	/* the end of the last piece */

	for (size_t i = 0; i < m->nr; i++) {
		const struct range *r = &m->r[i];
		uint64_t at = r->start > covered ? r->start : covered;	/* r's rest */

		while (have && p.start < r->end) {
			if (p.start > at)
				emit(b, at, p.start, r->name);
			emit(b, p.start, p.end, p.name);
			covered = p.end;
			at = at > p.end ? at : p.end;
			have = sweep_next(s, &p);
		}
		if (at < r->end)
			emit(b, at, r->end, r->name);
	}
	for (; have; have = sweep_next(s, &p))
		emit(b, p.start, p.end, p.name);
}

/* Name id's string in m (the index's or a line's aside), its length with its NUL into *ret_len. */
static const char *name_of(const struct pmap *m, size_t id, size_t *ret_len)
{
	size_t j = id - m->nnoff;

	if (id < m->nnoff) {
		*ret_len = (id + 1 < m->nnoff ? m->noff[id + 1] : m->nnames) - m->noff[id];
		return m->names + m->noff[id];
	}
	*ret_len = (j + 1 < m->naside ? m->aoff[j + 1] : m->nanames) - m->aoff[j];
	return m->anames + m->aoff[j];
}

/* The names b->r uses into b->names, in id order; b->r renamed to their new ids. */
static void compact(const struct pmap *m, struct build *b)
{
	memset(b->fwd, 0xff, b->noff_cap * sizeof(*b->fwd));
	for (size_t i = 0; i < b->nr; i++)
		b->fwd[b->r[i].name] = 0;
	for (size_t id = 0; id < b->noff_cap; id++) {
		size_t len;
		const char *name = name_of(m, id, &len);

		if (b->fwd[id] == UINT32_MAX)	/* covered by later lines */
			continue;
		memcpy(b->names + b->nnames, name, len);
		b->noff[b->nnoff] = (uint32_t)b->nnames;
		b->fwd[id] = (uint32_t)b->nnoff++;
		b->nnames += len;
	}
	for (size_t i = 0; i < b->nr; i++)
		b->r[i].name = b->fwd[b->r[i].name];
}

/* p (*cap elements of sz) cut to its n used; as it was if it cannot be. */
static void *shrink(struct perfmaps *pm, void *p, size_t n, size_t *cap, size_t sz)
{
	void *np;

	if (n == *cap)
		return p;
	if (!n) {
		free(p);
		*cap = 0;
		return NULL;
	}
	np = pm_realloc(pm, p, n * sz);
	if (!np)
		return p;
	*cap = n;
	return np;
}

/* b's index and names replace m's, the lines aside with them. */
static void pmap_install(struct perfmaps *pm, struct pmap *m, struct build *b)
{
	size_t merged = m->naside;

	pmap_clear(pm, m);
	m->r = shrink(pm, b->r, b->nr, &b->rcap, sizeof(*b->r));
	m->nr = b->nr;
	m->rcap = b->rcap;
	m->noff = shrink(pm, b->noff, b->nnoff, &b->noff_cap, sizeof(*b->noff));
	m->nnoff = b->nnoff;
	m->noff_cap = b->noff_cap;
	m->names = shrink(pm, b->names, b->nnames, &b->names_cap, 1);
	m->nnames = b->nnames;
	m->names_cap = b->names_cap;
	free(b->heap);
	free(b->fwd);
	pm->stats.entries_held += pmap_entries(m);
	pm->stats.bytes_held += pmap_bytes(m);
	pm->stats.rebuilds++;
	pm->stats.rebuild_lines += merged;
}

/* Out of memory for a merge: a warning, one a minute at most (the others counted in it). */
static void log_merge_failed(struct perfmaps *pm, const struct pmap *m)
{
	uint64_t now = clock_mono_ns();

	if (pm->log_ns && now - pm->log_ns < LOG_EVERY_NS) {
		pm->log_more++;
		return;
	}
	if (pm->log_more)
		log_warn("perf map of pid %d: out of memory merging %zu lines, its new names "
			 "wait (and %u more failed merges since the last message)", m->pid,
			 m->naside, pm->log_more);
	else
		log_warn("perf map of pid %d: out of memory merging %zu lines, its new names wait",
			 m->pid, m->naside);
	pm->log_ns = now;
	pm->log_more = 0;
}

/*
 * Merges the lines aside into the index. Nothing of m is written before
 * every array is there (but the order of the lines aside, each keeping its
 * seq): on failure m is as it was. 0 or -ENOMEM.
 */
static int pmap_rebuild(struct perfmaps *pm, struct pmap *m)
{
	struct build b = { 0 };
	struct sweep s;

	if (build_alloc(pm, m, &b))
		goto fail;
	qsort(m->aside, m->naside, sizeof(*m->aside), cmp_line);
	s = (struct sweep){ .in = m->aside, .n = m->naside, .heap = b.heap };
	merge(m, &s, &b);
	if (b.overflow)
		goto fail;
	compact(m, &b);
	pmap_install(pm, m, &b);
	return 0;
fail:
	build_free(&b);
	m->merge_failed = true;
	pm->stats.rebuilds_failed++;
	log_merge_failed(pm, m);
	return -ENOMEM;
}

static const struct range *range_find(const struct pmap *m, uint64_t addr)
{
	size_t lo = 0, hi = m->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < m->r[mid].start)
			hi = mid;
		else if (addr >= m->r[mid].end)
			lo = mid + 1;
		else
			return &m->r[mid];
	}
	return NULL;
}

/* ---- the calls ------------------------------------------------------------ */

int perfmaps__load(struct perfmaps *pm, int pid)
{
	struct pmap *m = pmap_live(pm, pid);

	if (!m)
		return pmap_newest(pm, pid) || pm->maps.n < pm->max_procs ? -ENOMEM : -ENOSPC;
	return pmap_look(pm, m);
}

int perfmaps__refresh(struct perfmaps *pm, int pid)
{
	uint64_t now = clock_mono_ns();
	struct pmap *m;

	/* asked at every sample in JIT code: the same process again costs no lookup */
	if (pid == pm->last_pid && now - pm->last_ns < pm->recheck_ns)
		return 0;
	pm->last_pid = pid;
	pm->last_ns = now;
	m = pmap_newest(pm, pid);
	if (m && m->state == PM_LIVE && now - m->checked_ns < pm->recheck_ns)
		return 0;
	return perfmaps__load(pm, pid);
}

int perfmaps__lookup(struct perfmaps *pm, int pid, uint64_t addr, const char **ret_name)
{
	for (struct pmap *m = pmap_newest(pm, pid); m; m = m->older) {
		const struct range *r;

		/* failed: the index as it was, tried again after the next look or gc */
		if (m->naside && !m->merge_failed)
			pmap_rebuild(pm, m);
		r = range_find(m, addr);
		if (r) {
			*ret_name = m->names + m->noff[r->name];	/* an index's id */
			return 0;
		}
	}
	return -ENOENT;
}

void perfmaps__forget_pid(struct perfmaps *pm, int pid)
{
	struct pmap *m = pmap_newest(pm, pid);

	if (!m || m->state != PM_LIVE)
		return;
	pm->stats.processes_forgotten += pmap_holds(m);
	pmap_retire(pm, m);
}

/* One gc of one image: whether it is to be freed now. */
static bool pmap_age(struct perfmaps *pm, struct pmap *m)
{
	char path[160];

	m->merge_failed = false;	/* a failed merge is tried again once after each gc */
	switch (m->state) {
	case PM_LIVE:	/* gone though nobody said so (its exit record was lost)? */
		snprintf(path, sizeof(path), "%s/%d", pm->proc_root, m->pid);
		if (!access(path, F_OK) || errno != ENOENT)
			return false;
		if (!pmap_holds(m))
			return true;
		pm->stats.processes_forgotten++;
		m->state = PM_GONE;
		return false;
	case PM_GONE:
		m->state = PM_GONE_SEEN;
		return false;
	default:
		return true;
	}
}

void perfmaps__gc(struct perfmaps *pm)
{
	hmap_for_each(&pm->maps, it) {
		struct pmap *newest = it->val, *prev = newest, *older;

		for (struct pmap *m = newest->older; m; m = older) {
			older = m->older;
			if (pmap_age(pm, m)) {
				prev->older = older;
				pmap_free(pm, m);
			} else {
				prev = m;
			}
		}
		if (pmap_age(pm, newest))
			pmap_pop(pm, newest, it);
	}
}

void perfmaps__stats(const struct perfmaps *pm, struct perfmaps_stats *ret)
{
	*ret = pm->stats;
}

bool perfmap_anon(const char *path)
{
	return !path[0] || !strcmp(path, "//anon") || !strncmp(path, "[anon:", 6);
}
