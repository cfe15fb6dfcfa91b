// SPDX-License-Identifier: Apache-2.0
/*
 * The ELF symbolizer. Loading one object:
 *   1. the file is opened (regular files only, never blocking on a FIFO; a path
 *      under /proc/PID/root resolved inside that root) and handed to libelf once
 *      its header counts are bounded (elfutil_begin);
 *   2. its PT_LOAD headers are kept to turn file offsets into virtual addresses;
 *   3. function symbols are gathered from .symtab and .dynsym; a file without
 *      .symtab also gets those of its separate debug file (build-id, then
 *      .gnu_debuglink) or else of its MiniDebugInfo; a stripped Go binary those of
 *      its .gopclntab;
 *   4. they are sorted by address, one per address (the preferred alias), and only
 *      then are their names demangled and copied, into one arena per object.
 * Until step 4 a gathered name points into the string table of a file that is
 * still open: dropped aliases cost nothing.
 *
 * Bounds on what a file can make us spend: MAX_SYMS symbols, MAX_NAME bytes per
 * name, MAX_NAMES_BYTES per object, MINIDEBUG_MAX_OUT for a decompressed
 * .gnu_debugdata. A file over a bound is rejected (E2BIG) or its name truncated.
 * Before a section is read at all, its size is checked against a budget (the
 * *_MAX_BYTES below), the file's size and the blocks it really has
 * (elfutil_check_range): a sparse file cannot make us read gigabytes of its
 * holes. Such a file is refused (EFBIG), logged and counted once.
 */
#include "clock.h"
#include "elfsym.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "demangle.h"
#include "grow.h"
#include "elfutil.h"
#include "log.h"
#include "workq.h"

#define DEFAULT_MAX_OBJECTS 256
#define DEFAULT_MAX_BYTES ((size_t)32 << 20)
#define MAX_OBJECTS_LIMIT (1u << 20)
#define DEFAULT_DEBUG_ROOT "/usr/lib/debug"
#define MAX_SEGS 32
#define MAX_SYMS (8u << 20)		/* per object: more is a broken file */
#define MAX_NAME 4096			/* longer names are truncated */
#define MAX_NAMES_BYTES (256u << 20)	/* per object */
#define MINIDEBUG_MAX_OUT (64u << 20)	/* .gnu_debugdata, compressed and decompressed */
#define SYMTAB_MAX_BYTES ((uint64_t)MAX_SYMS * sizeof(Elf64_Sym))	/* one symbol table */
#define STRTAB_MAX_BYTES (256u << 20)	/* its string table */
#define GOPCLNTAB_MAX_BYTES (256u << 20)
#define DEBUGLINK_MAX_BYTES 4096	/* a file name of 255 bytes and a CRC */
#define DEBUG_CRC_MAX_BYTES (4ull << 30)	/* a .gnu_debuglink file read whole for its CRC */
#define RETRY_NS (10ull * 1000000000ull)	/* a file that could not be opened */
#define LOADS_MAX 32		/* files pinned for the loader: past it, not prefetched */
#define LOAD_WAIT_MS 2000	/* an owner asking for a file being loaded waits this long */
#define BUILD_ID_HEX (2 * 64 + 1)

#define SYM_SIZE_MAX 0x7fffffffu

/*
 * A symbol of st_size 0 (hand-written asm, _init) reaches the next symbol, but
 * not past the end of its section: else the PLT would be "_init".
 */
struct sym {
	uint64_t addr;
	uint32_t size : 31;	/* clamped to SYM_SIZE_MAX; unsized: to the section end, 0 unknown */
	uint32_t unsized : 1;
	uint32_t name;		/* offset in names */
};

struct seg {
	uint64_t offset, vaddr, filesz;
};

struct elfobj {
	unsigned refs;		/* cache entries using it: files with its build-id */
	bool full;		/* symbols from a .symtab: no better ones for this build-id */
	uint32_t bid_hash;
	struct elfobj *bid_next;	/* build-id index */
	char build_id[BUILD_ID_HEX];
	uint32_t nsegs, nsyms;
	struct seg segs[MAX_SEGS];
	struct sym *syms;
	char *names;
	size_t bytes;		/* what it holds, for the cache's budget */
};

struct sym_job;

/* A cache entry: one file, as (dev, ino) or path. */
struct cent {
	struct sym_job *job;	/* being loaded by the loader thread: obj and err not set yet */
	bool gone;		/* failed as its path was gone: another path is tried at once */
	bool waited_out;	/* an owner waited LOAD_WAIT_MS for its load in vain: no more waits */
	uint32_t path_hash;	/* of the path last tried */
	uint64_t dev, ino;
	char *path;		/* the key when dev and ino are 0 */
	uint32_t hash;
	struct elfobj *obj;	/* NULL: the file failed to load */
	int err;		/* why, as errno */
	uint64_t retry_ns;	/* when a failed file may be tried again */
	struct cent *hnext;	/* hash chain */
	struct cent *prev, *next;	/* LRU list, most recently used first */
};

struct symcache {
	size_t max_objects, nents, nbuckets;	/* nbuckets: a power of two */
	size_t bytes, max_bytes;	/* held by the loaded objects; the budget */
	char *debug_root;
	struct cent **buckets;
	struct elfobj **bid_buckets;
	struct cent lru;	/* list head */
	struct symcache_stats stats;
	struct workq *loader;	/* reads the files symcache__prefetch pinned */
};


/* ---- hashing ------------------------------------------------------------ */

static uint32_t hash_bytes(const void *p, size_t n, uint32_t h)
{
	const unsigned char *b = p;

	/* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static uint32_t hash_key(const char *path, uint64_t dev, uint64_t ino)
{
	uint32_t h = 2166136261u;

	if (dev || ino) {
		h = hash_bytes(&dev, sizeof(dev), h);
		return hash_bytes(&ino, sizeof(ino), h);
	}
	return hash_bytes(path, strlen(path), h);
}

/* ---- objects ------------------------------------------------------------ */

static void obj_free(struct elfobj *o)
{
	if (!o)
		return;
	free(o->syms);
	free(o->names);
	free(o);
}

static struct elfobj *bid_find(const struct symcache *c, const char *bid)
{
	uint32_t h = hash_bytes(bid, strlen(bid), 2166136261u);
	struct elfobj *best = NULL;

	for (struct elfobj *o = c->bid_buckets[h & (c->nbuckets - 1)]; o; o = o->bid_next) {
		if (o->bid_hash != h || strcmp(o->build_id, bid))
			continue;
		if (o->full)
			return o;
		if (!best)
			best = o;
	}
	return best;
}

static void bid_insert(struct symcache *c, struct elfobj *o)
{
	struct elfobj **head;

	if (!o->build_id[0])
		return;
	o->bid_hash = hash_bytes(o->build_id, strlen(o->build_id), 2166136261u);
	head = &c->bid_buckets[o->bid_hash & (c->nbuckets - 1)];
	o->bid_next = *head;
	*head = o;
}

static void obj_unref(struct symcache *c, struct elfobj *o)
{
	if (!o || --o->refs)
		return;
	c->bytes -= o->bytes;
	if (o->build_id[0]) {
		struct elfobj **pp = &c->bid_buckets[o->bid_hash & (c->nbuckets - 1)];

		while (*pp && *pp != o)
			pp = &(*pp)->bid_next;
		if (*pp)
			*pp = o->bid_next;
	}
	obj_free(o);
}

/* ---- files -------------------------------------------------------------- */

static bool has_symtab(Elf *elf)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB && sh.sh_size)
			return true;
	}
	return false;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* ---- gathering symbols -------------------------------------------------- */

struct rawsym {
	uint64_t addr, size;	/* unsized: size is the distance to the section end, or 0 */
	const char *name;	/* in a string table that stays open until the object is built */
	uint8_t rank;		/* 0 global, 1 weak, 2 local: preferred aliases sort first */
	bool unsized;
};

struct gather {
	struct rawsym *v;
	size_t n, cap;
};

static int gather_add(struct gather *g, uint64_t addr, uint64_t size, bool unsized,
		      const char *name, uint8_t rank)
{
	if (g->n >= MAX_SYMS)
		return -E2BIG;
	if (g->n == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 1024;
		struct rawsym *nv = realloc(g->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		g->v = nv;
		g->cap = ncap;
	}
	g->v[g->n++] = (struct rawsym){
		.addr = addr, .size = size, .name = name, .rank = rank, .unsized = unsized
	};
	return 0;
}

/* Functions, and untyped symbols with a size in an executable section (hand-written asm). */
static bool want_sym(Elf *elf, const GElf_Sym *s)
{
	int type = GELF_ST_TYPE(s->st_info);
	GElf_Shdr sh;
	Elf_Scn *scn;

	if (s->st_shndx == SHN_UNDEF || !s->st_value)
		return false;
	if (type == STT_FUNC || type == STT_GNU_IFUNC)
		return true;
	if (type != STT_NOTYPE || !s->st_size || s->st_shndx >= SHN_LORESERVE)
		return false;
	scn = elf_getscn(elf, s->st_shndx);	/* NULL when out of range */
	return scn && gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_EXECINSTR);
}

/* For a symbol without a size: how far its section reaches past it; 0 unknown. */
static uint64_t to_section_end(Elf *elf, const GElf_Sym *s)
{
	Elf_Scn *scn = s->st_shndx < SHN_LORESERVE ? elf_getscn(elf, s->st_shndx) : NULL;
	GElf_Shdr sh;

	if (!scn || !gelf_getshdr(scn, &sh) || s->st_value < sh.sh_addr ||
	    s->st_value - sh.sh_addr >= sh.sh_size)
		return 0;
	return sh.sh_size - (s->st_value - sh.sh_addr);
}

static uint8_t sym_rank(const GElf_Sym *s)
{
	switch (GELF_ST_BIND(s->st_info)) {
	case STB_GLOBAL:
	case STB_GNU_UNIQUE:
		return 0;
	case STB_WEAK:
		return 1;
	default:
		return 2;
	}
}

/* Gathers the wanted symbols of the symbol table of type. Count or -errno. */
static long gather_elf(struct gather *g, Elf *elf, int fd, Elf64_Word type)
{
	size_t entsz = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT), n;
	long count = 0;
	GElf_Shdr sh;
	Elf_Data *d;
	int err;

	if (!entsz)
		return 0;
	err = elfutil_symtab(elf, fd, type, SYMTAB_MAX_BYTES, STRTAB_MAX_BYTES, &d, &sh);
	if (err)
		return err == -ENOENT ? 0 : err;
	n = d->d_size / entsz;
	if (n > INT_MAX)
		n = INT_MAX;
	for (size_t i = 1; i < n; i++) {	/* entry 0 is always the null symbol */
		const char *name;
		GElf_Sym s;

		if (!gelf_getsym(d, (int)i, &s))
			break;
		if (!want_sym(elf, &s))
			continue;
		/* elf_strptr checks that sh_link is a string table holding the offset */
		name = elf_strptr(elf, sh.sh_link, s.st_name);
		if (!name || !*name)
			continue;
		if (s.st_size)
			err = gather_add(g, s.st_value, s.st_size, false, name, sym_rank(&s));
		else
			err = gather_add(g, s.st_value, to_section_end(elf, &s), true, name,
					 sym_rank(&s));
		if (err)
			return err;
		count++;
	}
	return count;
}

static uint64_t rd_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/*
 * Go keeps its function table in .gopclntab even when the binary is stripped
 * (-ldflags=-s): the runtime needs it for its own tracebacks. Layout of Go 1.18
 * and later (magic 0xfffffff0 / 0xfffffff1): a header of 8 pointer-sized words
 * after 8 bytes (nfunc, nfiles, textStart, funcname, cu, filetab, pctab, pcln
 * offsets), then at pcln offset nfunc+1 pairs (entry offset, _func offset),
 * each _func starting with (entry offset, name offset into funcname).
 * Count or -errno.
 */
static long gather_gopclntab(struct gather *g, Elf *elf, int fd)
{
	GElf_Shdr sh, tsh;
	Elf_Scn *scn = elfutil_section(elf, ".gopclntab", &sh);
	uint64_t nfunc, text, names, ftab;
	const uint8_t *b;
	size_t len, ps;
	uint32_t magic;
	long count = 0;
	Elf_Data *d;

	/* where a PIE keeps it: it holds relocated words */
	if (!scn)
		scn = elfutil_section(elf, ".data.rel.ro.gopclntab", &sh);
	if (!scn || elfutil_getdata(fd, scn, GOPCLNTAB_MAX_BYTES, &d) || d->d_size < 16)
		return -ENOENT;
	b = d->d_buf;
	len = d->d_size;
	magic = (uint32_t)rd_le(b, 4);
	ps = b[7];
	if ((magic != 0xfffffff0 && magic != 0xfffffff1) || b[4] || b[5] || (ps != 4 && ps != 8) ||
	    8 + 8 * ps > len)
		return -ENOTSUP;
	nfunc = rd_le(b + 8, ps);
	text = rd_le(b + 8 + 2 * ps, ps);
	names = rd_le(b + 8 + 3 * ps, ps);
	ftab = rd_le(b + 8 + 7 * ps, ps);
	if (names >= len || ftab >= len || nfunc > MAX_SYMS || (len - ftab) / 8 < nfunc + 1)
		return -EINVAL;
	/* a PIE's textStart is filled in by a relocation: 0 in the file */
	if (!text && elfutil_section(elf, ".text", &tsh))
		text = tsh.sh_addr;
	for (uint64_t i = 0; i < nfunc; i++) {
		const uint8_t *e = b + ftab + 8 * i;
		uint64_t entry = rd_le(e, 4), foff = rd_le(e + 4, 4), next = rd_le(e + 8, 4);
		uint64_t name_off;
		const char *name;
		int err;

		if (foff > len - ftab || len - ftab - foff < 8)
			continue;
		name_off = rd_le(b + ftab + foff + 4, 4);
		if (name_off >= len - names)
			continue;
		name = (const char *)b + names + name_off;
		if (!*name || !memchr(name, '\0', len - names - name_off))
			continue;
		err = gather_add(g, text + entry, next > entry ? next - entry : 0, next <= entry,
				 name, 0);
		if (err)
			return err;
		count++;
	}
	return count;
}

/* ---- separate debug files ----------------------------------------------- */

/*
 * A file to load, pinned while its process lived: the file open, and its
 * process's root open (O_PATH) for the debug files inside it, so that loading
 * can wait (on the loader's thread) and still find them once the process is
 * gone. What the loader needs, and nothing of the cache's.
 */
struct pinned {
	int fd;				/* the file */
	struct stat st;
	int root_fd;			/* the process's root, or -1 */
	char root[32];			/* "/proc/self/fd/<root_fd>" (rootfs.h), or "" */
	char host_path[PATH_MAX];	/* the file by a name we can open, "" if none */
	char ns_path[PATH_MAX];		/* the file as its process names it, "" if unknown */
	char name[PATH_MAX];		/* for the log */
};

/* Where to look for a file's debug file. */
struct where {
	const char *root;		/* the pinned root for a process's file, else "" */
	char host_dir[PATH_MAX];	/* the file's directory, as we can open it */
	char ns_dir[PATH_MAX];		/* the same, as the process names it */
	bool host_ok, ns_ok;
};

/* "/proc/PID/root/..." or "/proc/PID/map_files/...": sets root to "/proc/PID/root". */
static bool proc_root(const char *path, char *root, size_t len, bool *ret_under_root)
{
	const char *p;
	size_t digits;

	if (strncmp(path, "/proc/", 6))
		return false;
	p = path + 6;
	digits = strspn(p, "0123456789");
	if (!digits || digits > 10)
		return false;
	p += digits;
	if (!strncmp(p, "/root/", 6))
		*ret_under_root = true;
	else if (!strncmp(p, "/map_files/", 11))
		*ret_under_root = false;
	else
		return false;
	snprintf(root, len, "%.*sroot", (int)(p + 1 - path), path);
	return true;
}

/* dirname into out ("" for "/x"); false when path has no '/' or does not fit. */
static bool dir_of(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash)
		return false;
	n = (size_t)(slash - path);
	if (n >= len)
		return false;
	memcpy(out, path, n);
	out[n] = '\0';
	return true;
}

static void unpin(struct pinned *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->root_fd >= 0)
		close(p->root_fd);
	p->fd = p->root_fd = -1;
}

/*
 * Opens the file at open_path, and the root of its process when it is one's
 * (/proc/PID/root/... or /proc/PID/map_files/...). real_path: the name the
 * process gave it (may be NULL). 0 or -errno.
 */
static int pin(struct pinned *p, const char *open_path, const char *real_path)
{
	char proc[32];
	bool under_root = false;
	const char *ns = real_path && real_path[0] == '/' ? real_path : NULL;

	p->root_fd = -1;
	p->root[0] = p->host_path[0] = p->ns_path[0] = '\0';
	snprintf(p->name, sizeof(p->name), "%s", real_path ? real_path : open_path);
	p->fd = elfutil_open_file(open_path, &p->st);
	if (p->fd < 0)
		return p->fd;
	if (!proc_root(open_path, proc, sizeof(proc), &under_root)) {
		snprintf(p->host_path, sizeof(p->host_path), "%s", open_path);
		snprintf(p->ns_path, sizeof(p->ns_path), "%s", ns ? ns : open_path);
		return 0;
	}
	if (!ns && under_root)
		ns = open_path + strlen(proc);
	if (ns)
		snprintf(p->ns_path, sizeof(p->ns_path), "%s", ns);
	p->root_fd = open(proc, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (p->root_fd < 0)
		return 0;	/* gone already: no debug file from inside it */
	snprintf(p->root, sizeof(p->root), "/proc/self/fd/%d", p->root_fd);
	if ((under_root || ns) &&
	    (size_t)snprintf(p->host_path, sizeof(p->host_path), "%s%s", p->root,
			     under_root ? open_path + strlen(proc) : ns) >= sizeof(p->host_path))
		p->host_path[0] = '\0';
	return 0;
}

static void locate(struct where *w, const struct pinned *p)
{
	memset(w, 0, sizeof(*w));
	w->root = p->root;
	if (p->host_path[0])
		w->host_ok = dir_of(p->host_path, w->host_dir, sizeof(w->host_dir));
	if (p->ns_path[0] == '/')
		w->ns_ok = dir_of(p->ns_path, w->ns_dir, sizeof(w->ns_dir));
}

/* .gnu_debuglink: file name, NUL, padding to 4, CRC32 of the debug file. */
static int read_debuglink(Elf *elf, int fd, char *name, size_t len, uint32_t *ret_crc)
{
	GElf_Shdr sh;
	Elf_Scn *scn = elfutil_section(elf, ".gnu_debuglink", &sh);
	size_t nlen, crc_off;
	const unsigned char *b;
	const char *ident;
	Elf_Data *d;

	if (!scn || elfutil_getdata(fd, scn, DEBUGLINK_MAX_BYTES, &d) || d->d_size < 6)
		return -ENOENT;
	nlen = strnlen(d->d_buf, d->d_size);
	crc_off = (nlen + 4) & ~(size_t)3;
	if (nlen == 0 || nlen >= len || crc_off > d->d_size || d->d_size - crc_off < 4)
		return -EINVAL;
	memcpy(name, d->d_buf, nlen + 1);
	b = (const unsigned char *)d->d_buf + crc_off;
	/* the CRC is stored in the file's byte order */
	ident = elf_getident(elf, NULL);
	if (ident && ident[EI_DATA] == ELFDATA2MSB)
		*ret_crc = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	else
		*ret_crc = (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[1] << 8 | b[0];
	return 0;
}

/* The CRC32 of a whole file, of DEBUG_CRC_MAX_BYTES at most and not sparse. 0 or -errno. */
static int fd_crc32(int fd, uint32_t *ret)
{
	unsigned char buf[65536];
	uLong crc = crc32(0L, Z_NULL, 0);
	struct stat st;
	off_t off = 0;
	ssize_t n = 0;
	int err;

	if (fstat(fd, &st))
		return -errno;
	err = elfutil_check_range(fd, 0, (uint64_t)st.st_size, DEBUG_CRC_MAX_BYTES);
	if (err)
		return err;
	/* the size checked, not what a growing file holds by the time we get there */
	while (off < st.st_size) {
		size_t want = sizeof(buf);

		if (st.st_size - off < (off_t)want)
			want = (size_t)(st.st_size - off);
		n = pread(fd, buf, want, off);
		if (n <= 0)
			break;
		crc = crc32(crc, buf, (uInt)n);
		off += n;
	}
	if (n < 0)
		return -errno;
	*ret = (uint32_t)crc;
	return 0;
}

/* Opens a candidate debug file: an ELF with a .symtab, not the file itself. */
static Elf *open_debug_candidate(const char *path, const struct stat *self, int *ret_fd,
				 uint32_t *want_crc)
{
	struct stat st;
	uint32_t crc;
	int fd = elfutil_open_file(path, &st);
	Elf *elf = NULL;

	if (fd < 0)
		return NULL;
	if (same_file(&st, self))
		goto fail;
	if (want_crc && (fd_crc32(fd, &crc) || crc != *want_crc)) {
		log_debug("%s: CRC does not match the .gnu_debuglink, not used", path);
		goto fail;
	}
	elf = elfutil_begin(fd);
	if (!elf || !has_symtab(elf))
		goto fail;
	*ret_fd = fd;
	return elf;
fail:
	if (elf)
		elf_end(elf);
	close(fd);
	return NULL;
}

/* The separate debug file: by build-id, then by .gnu_debuglink. NULL when none. */
static Elf *open_debug_file(const char *debug_root, const char *bid, Elf *elf, int fd,
			    const struct where *w, const struct stat *self, int *ret_fd)
{
	char path[PATH_MAX], link[256];
	uint32_t crc;
	Elf *delf;

	if (strlen(bid) > 2) {
		for (int i = 0; i < 2; i++) {
			char dbid[BUILD_ID_HEX];

			if (i == 1 && !w->root[0])
				break;
			/* the host's debug files first, then the container's */
			if ((size_t)snprintf(path, sizeof(path), "%s%s/.build-id/%.2s/%s.debug",
					     i ? w->root : "", debug_root, bid,
					     bid + 2) >= sizeof(path))
				continue;
			delf = open_debug_candidate(path, self, ret_fd, NULL);
			if (!delf)
				continue;
			/* a stale link would give another build's addresses */
			if (elfutil_build_id(delf, *ret_fd, dbid, sizeof(dbid)) == 0 &&
			    !strcmp(dbid, bid))
				return delf;
			log_debug("%s: build-id differs, not used", path);
			elf_end(delf);
			close(*ret_fd);
		}
	}
	if (read_debuglink(elf, fd, link, sizeof(link), &crc) || strchr(link, '/') ||
	    !strcmp(link, ".") || !strcmp(link, ".."))
		return NULL;
	for (int i = 0; i < 4; i++) {
		int n;

		if (i == 0 && w->host_ok)
			n = snprintf(path, sizeof(path), "%s/%s", w->host_dir, link);
		else if (i == 1 && w->host_ok)
			n = snprintf(path, sizeof(path), "%s/.debug/%s", w->host_dir, link);
		else if (i == 2 && w->ns_ok)
			n = snprintf(path, sizeof(path), "%s%s/%s", debug_root, w->ns_dir, link);
		else if (i == 3 && w->ns_ok && w->root[0])
			n = snprintf(path, sizeof(path), "%s%s%s/%s", w->root, debug_root,
				     w->ns_dir, link);
		else
			continue;
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		delf = open_debug_candidate(path, self, ret_fd, &crc);
		if (delf)
			return delf;
	}
	return NULL;
}

/* ---- building an object ------------------------------------------------- */

static unsigned leading_underscores(const char *s)
{
	unsigned n = 0;

	while (s[n] == '_')
		n++;
	return n;
}

/* By address; at one address global before weak before local, "malloc" before "__libc_malloc". */
static int cmp_raw(const void *a, const void *b)
{
	const struct rawsym *x = a, *y = b;
	unsigned ux, uy;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	ux = leading_underscores(x->name);
	uy = leading_underscores(y->name);
	if (ux != uy)
		return ux < uy ? -1 : 1;
	return strcmp(x->name, y->name);
}

struct arena {
	char *s;
	size_t len, cap;
};

/* Stores a name, demangled, without its symbol version ("memcpy@@GLIBC_2.14"). Offset or -errno. */
static long arena_add_name(struct arena *a, const char *raw)
{
	size_t rlen = strnlen(raw, MAX_NAME + 1), len;
	const char *at = rlen > 1 ? memchr(raw + 1, '@', rlen - 1) : NULL;
	char *tmp = NULL, *dm = NULL;
	bool cut = !at && rlen > MAX_NAME;
	long off = -ENOMEM;
	const char *s;

	if (at || cut) {
		rlen = at ? (size_t)(at - raw) : MAX_NAME;
		tmp = strndup(raw, rlen);
		if (!tmp)
			goto out;
		raw = tmp;
	}
	dm = cut ? NULL : demangle(raw);
	s = dm ? dm : raw;
	len = dm ? strnlen(dm, MAX_NAME + 1) : rlen;
	if (len > MAX_NAME) {
		cut = true;
		len = MAX_NAME;
	}
	if (a->len + len + 1 > MAX_NAMES_BYTES) {
		off = -E2BIG;
		goto out;
	}
	if (grow_bytes(&a->s, &a->cap, a->len + len + 1, 16384))
		goto out;
	memcpy(a->s + a->len, s, len);
	if (cut)
		memcpy(a->s + a->len + len - 3, "...", 3);
	a->s[a->len + len] = '\0';
	off = (long)a->len;
	a->len += len + 1;
out:
	free(dm);
	free(tmp);
	return off;
}

/* Sorts the gathered symbols, keeps one per address, copies their names. 0 or -errno. */
static int build_syms(struct elfobj *o, struct gather *g)
{
	struct arena a = { 0 };
	size_t nuniq = 0, k = 0;

	if (!g->n)
		return 0;
	qsort(g->v, g->n, sizeof(*g->v), cmp_raw);
	for (size_t i = 0; i < g->n; i++)
		if (!i || g->v[i].addr != g->v[i - 1].addr)
			nuniq++;
	o->syms = malloc(nuniq * sizeof(*o->syms));
	if (!o->syms)
		return -ENOMEM;
	for (size_t i = 0; i < g->n;) {
		uint64_t size = 0;
		bool unsized = true;
		size_t j = i;
		long off;

		/* aliases: the first one's name, the largest size (a real one if any has it) */
		for (; j < g->n && g->v[j].addr == g->v[i].addr; j++) {
			const struct rawsym *r = &g->v[j];

			if (!r->unsized && unsized) {
				unsized = false;
				size = r->size;
			} else if (r->unsized == unsized && r->size > size) {
				size = r->size;
			}
		}
		off = arena_add_name(&a, g->v[i].name);
		if (off < 0) {
			free(a.s);
			return (int)off;
		}
		o->syms[k++] = (struct sym){
			.addr = g->v[i].addr,
			.size = size > SYM_SIZE_MAX ? SYM_SIZE_MAX : (uint32_t)size,
			.unsized = unsized,
			.name = (uint32_t)off,
		};
		i = j;
	}
	o->nsyms = (uint32_t)k;
	/* give back what the doubling left over */
	o->names = realloc(a.s, a.len) ?: a.s;
	o->bytes = sizeof(*o) + (size_t)k * sizeof(*o->syms) + a.len;
	return 0;
}

static void read_segments(struct elfobj *o, Elf *elf)
{
	size_t phnum;

	if (elf_getphdrnum(elf, &phnum))
		return;
	for (size_t i = 0; i < phnum && i <= INT_MAX && o->nsegs < MAX_SEGS; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD && ph.p_filesz)
			o->segs[o->nsegs++] = (struct seg){ ph.p_offset, ph.p_vaddr, ph.p_filesz };
	}
}

/*
 * Opens and reads one file into *ret: a new object, or the loaded one with the same
 * build-id (unless this file has a .symtab and that one had to do without). 0 or -errno.
 */
/* What loading one file made, for the cache's owner to apply. */
struct loaded {
	struct elfobj *obj;
	int err;
	bool debug_file, minidebuginfo, go_pclntab;	/* where its symbols came from */
};

/* Build id and whether the file has a .symtab. 0 or -errno. */
static int peek(const struct pinned *p, char *bid, size_t len, bool *ret_symtab)
{
	Elf *elf = elfutil_begin(p->fd);

	if (!elf)
		return -errno;
	elfutil_build_id(elf, p->fd, bid, len);
	*ret_symtab = has_symtab(elf);
	elf_end(elf);
	return 0;
}

/* Files opened for their symbols: open until the names are copied (build_syms). */
struct extra {
	Elf *delf, *melf;
	int dfd;
	void *mbuf;
};

static void extra_close(struct extra *x)
{
	if (x->melf)
		elf_end(x->melf);
	free(x->mbuf);
	if (x->delf) {
		elf_end(x->delf);
		close(x->dfd);
	}
}

/* The symbols of a file without a .symtab: from its debug file, else its MiniDebugInfo. */
static long gather_elsewhere(struct gather *g, const char *debug_root, const struct pinned *p,
			     Elf *elf, struct elfobj *o, struct loaded *r, struct extra *x)
{
	struct where w;
	int merr;
	long n = 0;

	locate(&w, p);
	x->delf = open_debug_file(debug_root, o->build_id, elf, p->fd, &w, &p->st, &x->dfd);
	if (x->delf) {
		n = gather_elf(g, x->delf, x->dfd, SHT_SYMTAB);
		if (n > 0)
			o->full = r->debug_file = true;
	} else if ((x->melf = elfutil_minidebuginfo(elf, p->fd, MINIDEBUG_MAX_OUT, &x->mbuf,
						     &merr))) {
		/* MiniDebugInfo: the local functions .dynsym lacks */
		n = gather_elf(g, x->melf, -1, SHT_SYMTAB);
		if (n > 0)
			r->minidebuginfo = true;
	} else if (merr != -ENOENT) {
		log_debug("%s: unusable .gnu_debugdata: %s", p->name, strerror(-merr));
	}
	return n;
}

/*
 * Loads the symbols of a pinned file into r. Touches nothing but p and r: it
 * runs on the cache's loader thread (or the owner's, for symcache__get).
 */
static void load_pinned(const char *debug_root, const struct pinned *p, struct loaded *r)
{
	struct extra x = { .dfd = -1 };
	struct gather g = { 0 };
	struct elfobj *o;
	Elf *elf = elfutil_begin(p->fd);
	long n;

	if (!elf) {
		r->err = -errno;
		return;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		r->err = -ENOMEM;
		goto out;
	}
	o->refs = 1;
	elfutil_build_id(elf, p->fd, o->build_id, sizeof(o->build_id));
	read_segments(o, elf);
	o->full = has_symtab(elf);
	n = gather_elf(&g, elf, p->fd, SHT_SYMTAB);
	if (n >= 0)
		n = gather_elf(&g, elf, p->fd, SHT_DYNSYM);
	if (n >= 0 && !o->full)
		n = gather_elsewhere(&g, debug_root, p, elf, o, r, &x);
	/* a stripped Go binary still has its own function table (and maybe a few dynsyms) */
	if (n >= 0 && !o->full && !x.melf && gather_gopclntab(&g, elf, p->fd) > 0)
		r->go_pclntab = true;
	r->err = n < 0 ? (int)n : build_syms(o, &g);
	if (!r->err) {
		r->obj = o;
		o = NULL;
	}
out:
	obj_free(o);
	free(g.v);
	extra_close(&x);
	elf_end(elf);
}

/* ---- the cache ---------------------------------------------------------- */

/* A file pinned by symcache__prefetch, loaded on the loader thread. */
struct sym_job {
	struct workq_item item;
	struct cent *ent;	/* the owner's; NULL once the entry went (the result is dropped) */
	const char *debug_root;	/* the cache's, never changed */
	struct pinned pin;
	struct loaded res;
};

static void job_load(struct workq_item *it)
{
	struct sym_job *j = (struct sym_job *)it;

	load_pinned(j->debug_root, &j->pin, &j->res);
	unpin(&j->pin);
}

static void job_free(struct sym_job *j)
{
	unpin(&j->pin);
	obj_free(j->res.obj);
	free(j);
}

/* symcache__free: a job the loader gives back is its entry's no more. */
static void job_release(struct workq_item *it)
{
	struct sym_job *j = (struct sym_job *)it;

	if (j->ent)
		j->ent->job = NULL;
	job_free(j);
}

struct symcache *symcache__new(const struct symcache_opts *opts)
{
	struct symcache *c = calloc(1, sizeof(*c));
	size_t max;

	if (!c)
		return NULL;
	max = opts && opts->max_objects ? opts->max_objects : DEFAULT_MAX_OBJECTS;
	c->max_objects = max > MAX_OBJECTS_LIMIT ? MAX_OBJECTS_LIMIT : max;
	c->max_bytes = opts && opts->max_bytes ? opts->max_bytes : DEFAULT_MAX_BYTES;
	c->nbuckets = 16;
	while (c->nbuckets < c->max_objects)
		c->nbuckets *= 2;
	c->lru.next = c->lru.prev = &c->lru;
	c->debug_root = strdup(opts && opts->debug_root ? opts->debug_root : DEFAULT_DEBUG_ROOT);
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	c->bid_buckets = calloc(c->nbuckets, sizeof(*c->bid_buckets));
	/* results wait for the owner's next call; never more than LOADS_MAX, so the
	 * loader never waits for room */
	c->loader = workq_new("symbols", LOADS_MAX);
	if (!c->debug_root || !c->buckets || !c->bid_buckets || !c->loader) {
		symcache__free(c);
		errno = ENOMEM;
		return NULL;
	}
	/* a trailing '/' would make "<root>//usr/lib" */
	for (size_t n = strlen(c->debug_root); n > 1 && c->debug_root[n - 1] == '/'; n--)
		c->debug_root[n - 1] = '\0';
	elf_version(EV_CURRENT);
	return c;
}

static void ent_free(struct symcache *c, struct cent *e)
{
	if (e->job) {
		if (workq_cancel(c->loader, &e->job->item))
			job_free(e->job);
		else
			e->job->ent = NULL;	/* loading: dropped when it comes back */
	}
	obj_unref(c, e->obj);
	free(e->path);
	free(e);
}

void symcache__free(struct symcache *c)
{
	if (!c)
		return;
	workq_free(c->loader, job_release);
	for (struct cent *e = c->lru.next, *next; e != &c->lru; e = next) {
		next = e->next;
		ent_free(c, e);
	}
	free(c->buckets);
	free(c->bid_buckets);
	free(c->debug_root);
	free(c);
}

static struct cent *ent_find(const struct symcache *c, const char *path, uint64_t dev,
			     uint64_t ino, uint32_t h)
{
	for (struct cent *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->hnext) {
		if (e->hash != h || e->dev != dev || e->ino != ino)
			continue;
		if (!(dev || ino) && strcmp(e->path, path))
			continue;
		return e;
	}
	return NULL;
}

static void lru_unlink(struct cent *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_push_front(struct symcache *c, struct cent *e)
{
	e->next = c->lru.next;
	e->prev = &c->lru;
	c->lru.next->prev = e;
	c->lru.next = e;
}

static void ent_remove(struct symcache *c, struct cent *e)
{
	struct cent **pp = &c->buckets[e->hash & (c->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(e);
	c->nents--;
	ent_free(c, e);
}

static bool retryable(int err)
{
	switch (err) {
	case ENOENT:	/* the process is gone: another path may come */
	case ESRCH:
	case EACCES:
	case EPERM:
	case EMFILE:
	case ENFILE:
	case ENOMEM:
	case EINTR:
	case EAGAIN:
	case EIO:
		return true;
	default:
		return false;	/* no ELF file, or a broken one: it will not get better */
	}
}

/* A new entry, most recently used (the least recently used one makes room). */
static struct cent *ent_new(struct symcache *c, const char *path, uint64_t dev, uint64_t ino,
			    uint32_t h)
{
	struct cent *e;

	if (c->nents >= c->max_objects) {
		ent_remove(c, c->lru.prev);
		c->stats.evictions++;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->dev = dev;
	e->ino = ino;
	e->hash = h;
	if (!dev && !ino) {
		e->path = strdup(path);
		if (!e->path) {
			free(e);
			return NULL;
		}
	}
	e->hnext = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = e;
	lru_push_front(c, e);
	c->nents++;
	return e;
}

/* Serves e with a loaded object of the file's build id, if one does: true. */
static bool ent_share(struct symcache *c, struct cent *e, const char *bid, bool symtab)
{
	struct elfobj *shared = bid[0] ? bid_find(c, bid) : NULL;

	if (!shared || !(shared->full || !symtab))
		return false;
	shared->refs++;
	c->stats.objects_shared++;
	e->obj = shared;
	return true;
}

/* Applies a load's result to its entry (on the owner's thread). */
static void ent_loaded(struct symcache *c, struct cent *e, struct loaded *r, const char *name)
{
	if (r->obj) {
		/* another file of the same build id may have come in meanwhile */
		if (ent_share(c, e, r->obj->build_id, r->obj->full)) {
			obj_free(r->obj);
			r->obj = NULL;
			return;
		}
		bid_insert(c, r->obj);
		c->stats.objects_loaded++;
		c->stats.debug_files_used += r->debug_file;
		c->stats.minidebuginfo_used += r->minidebuginfo;
		c->stats.go_pclntab_used += r->go_pclntab;
		c->bytes += r->obj->bytes;
		e->obj = r->obj;
		r->obj = NULL;
		return;
	}
	e->err = -r->err;
	e->retry_ns = retryable(-r->err) ? clock_mono_ns() + RETRY_NS : UINT64_MAX;
	/*
	 * The file or its process was gone (ENOENT, ESRCH): that path is, maybe not
	 * the file. Another path to the same file (the same dev, ino: one entry),
	 * such as the next process's, is tried at once: else one child that exited
	 * before its file was opened would leave every later one unnamed for 10 s.
	 */
	e->gone = r->err == -ENOENT || r->err == -ESRCH;
	c->stats.objects_failed++;
	/* never tried again: logged once while the entry lives */
	if (r->err == -EFBIG) {
		c->stats.objects_refused++;
		log_warn("not reading symbols of %s: its headers claim more than our bounds, or "
			 "data over the holes of a sparse file", name);
	} else {
		log_debug("cannot read symbols of %s: %s", name, strerror(-r->err));
	}
}

/* Applies what the loader finished. */
static void collect(struct symcache *c)
{
	struct workq_item *it;

	while ((it = workq_take(c->loader))) {
		struct sym_job *j = (struct sym_job *)it;

		if (j->ent) {
			j->ent->job = NULL;
			ent_loaded(c, j->ent, &j->res, j->pin.name);
		}
		job_free(j);
	}
}

/*
 * An entry being loaded is asked for: waits for its load (only), for at most
 * LOAD_WAIT_MS (a read that hangs, on a stuck mount, must not hang the owner).
 * false when it is still loading.
 */
static bool ent_wait(struct symcache *c, struct cent *e)
{
	/* a load that hangs (a stuck mount) costs its wait once, not once per frame */
	if (!e->waited_out && !workq_wait_item(c->loader, &e->job->item, LOAD_WAIT_MS)) {
		c->stats.load_waits_timed_out++;
		e->waited_out = true;
	}
	collect(c);
	return !e->job;
}

/*
 * Pins the file of e, and loads it now (job NULL) or hands it to the loader.
 * A file whose build id is loaded already is served at once.
 */
static void ent_load(struct symcache *c, struct cent *e, const char *open_path,
		     const char *real_path, struct sym_job *job)
{
	struct sym_job local = { 0 }, *j = job ? job : &local;
	char bid[BUILD_ID_HEX];
	bool symtab = false;

	e->path_hash = hash_bytes(open_path, strlen(open_path), 2166136261u);
	j->res.err = pin(&j->pin, open_path, real_path);
	if (!j->res.err && peek(&j->pin, bid, sizeof(bid), &symtab) == 0 &&
	    ent_share(c, e, bid, symtab)) {
		if (job)
			job_free(job);
		else
			unpin(&local.pin);
		return;
	}
	if (!j->res.err && job) {
		j->item.work = job_load;
		j->ent = e;
		j->debug_root = c->debug_root;
		e->job = j;
		workq_submit(c->loader, &j->item);
		return;
	}
	if (!j->res.err)
		load_pinned(c->debug_root, &j->pin, &j->res);
	ent_loaded(c, e, &j->res, j->pin.name);
	if (job)
		job_free(job);
	else
		unpin(&local.pin);
}

/* Whether a failed entry is to be served as it is to a caller with open_path. */
static bool failed_for(const struct cent *e, const char *open_path)
{
	if (e->gone && e->path_hash != hash_bytes(open_path, strlen(open_path), 2166136261u))
		return false;
	return clock_mono_ns() < e->retry_ns;
}

/* The entry of a file, when it is one to use (loaded, or failed and not to retry yet). */
static struct cent *ent_lookup(struct symcache *c, const char *path, uint64_t dev, uint64_t ino,
			       uint32_t h)
{
	struct cent *e = ent_find(c, path, dev, ino, h);

	if (!e)
		return NULL;
	lru_unlink(e);
	lru_push_front(c, e);
	if (e->job && !ent_wait(c, e))
		return e;	/* still loading */
	if (e->obj || failed_for(e, path))
		return e;
	ent_remove(c, e);	/* time to try again */
	return NULL;
}

int symcache__prefetch(struct symcache *c, const char *open_path, const char *real_path,
		       uint64_t dev, uint64_t ino)
{
	uint32_t h = hash_key(open_path, dev, ino);
	struct sym_job *j;
	struct cent *e;

	collect(c);
	e = ent_find(c, open_path, dev, ino, h);
	if (e && (e->job || e->obj || failed_for(e, open_path)))
		return 0;	/* loaded, on its way, or failed lately */
	if (workq_outstanding(c->loader) >= LOADS_MAX) {
		c->stats.prefetches_dropped++;	/* read when asked for, if it is still there */
		return -EAGAIN;
	}
	c->stats.lookups++;
	c->stats.misses++;
	if (e)
		ent_remove(c, e);
	e = ent_new(c, open_path, dev, ino, h);
	j = calloc(1, sizeof(*j));
	if (!e || !j) {
		free(j);
		return -ENOMEM;
	}
	j->pin.fd = j->pin.root_fd = -1;
	ent_load(c, e, open_path, real_path, j);
	return 0;
}

struct elfobj *symcache__find(struct symcache *c, uint64_t dev, uint64_t ino)
{
	struct cent *e;

	if (!c || (!dev && !ino))
		return NULL;
	e = ent_find(c, NULL, dev, ino, hash_key(NULL, dev, ino));
	if (e && e->job && !ent_wait(c, e))
		return NULL;
	if (!e || !e->obj)
		return NULL;
	lru_unlink(e);
	lru_push_front(c, e);
	return e->obj;
}

struct elfobj *symcache__get(struct symcache *c, const char *open_path, const char *real_path,
			     uint64_t dev, uint64_t ino)
{
	struct cent *e;
	uint32_t h;

	if (!c || !open_path) {
		errno = EINVAL;
		return NULL;
	}
	c->stats.lookups++;
	h = hash_key(open_path, dev, ino);
	e = ent_lookup(c, open_path, dev, ino, h);
	if (!e) {
		c->stats.misses++;
		e = ent_new(c, open_path, dev, ino, h);
		if (!e) {
			errno = ENOMEM;
			return NULL;
		}
		ent_load(c, e, open_path, real_path, NULL);
	}
	if (!e->obj) {
		errno = e->job ? EAGAIN : e->err;
		return NULL;
	}
	return e->obj;
}

void symcache__trim(struct symcache *c)
{
	/* the least recently used go first, until the budget holds (or one is left) */
	while (c->bytes > c->max_bytes && c->nents > 1) {
		ent_remove(c, c->lru.prev);
		c->stats.evictions++;
	}
}

void symcache__stats(const struct symcache *c, struct symcache_stats *ret)
{
	*ret = c->stats;
	ret->bytes = c->bytes;
}

/* ---- lookups ------------------------------------------------------------ */

const char *elfobj__build_id(const struct elfobj *o)
{
	return o ? o->build_id : "";
}

size_t elfobj__nsyms(const struct elfobj *o)
{
	return o ? o->nsyms : 0;
}

int elfobj__offset_to_vaddr(const struct elfobj *o, uint64_t off, uint64_t *ret_vaddr)
{
	if (!o)
		return -EINVAL;
	for (uint32_t i = 0; i < o->nsegs; i++) {
		const struct seg *s = &o->segs[i];

		if (off >= s->offset && off - s->offset < s->filesz) {
			*ret_vaddr = off - s->offset + s->vaddr;
			return 0;
		}
	}
	return -ENOENT;
}

/* Whether s covers vaddr, for vaddr >= s->addr. */
static bool covers(const struct sym *s, uint64_t vaddr)
{
	return vaddr - s->addr < s->size;
}

int elfobj__symbolize(const struct elfobj *o, uint64_t vaddr, const char **ret_name,
		      uint64_t *ret_sym_off)
{
	const struct sym *s = NULL;
	uint32_t lo = 0, hi;

	if (!o)
		return -EINVAL;
	hi = o->nsyms;
	/* the first symbol above vaddr: the candidate is the one before it */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (o->syms[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -ENOENT;
	s = &o->syms[lo - 1];
	if (s->unsized) {
		/* it reaches the next symbol, which is above vaddr, but not past its section */
		if (s->size && !covers(s, vaddr))
			return -ENOENT;
	} else if (!covers(s, vaddr)) {
		/* past its end: a larger function just below may enclose it (asm) */
		s = NULL;
		for (uint32_t k = 2; k <= 4 && k <= lo && !s; k++)
			if (!o->syms[lo - k].unsized && covers(&o->syms[lo - k], vaddr))
				s = &o->syms[lo - k];
		if (!s)
			return -ENOENT;
	}
	*ret_name = o->names + s->name;
	if (ret_sym_off)
		*ret_sym_off = vaddr - s->addr;
	return 0;
}
