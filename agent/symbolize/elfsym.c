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
#include "elfutil.h"
#include "log.h"

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

/* A cache entry: one file, as (dev, ino) or path. */
struct cent {
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

/*
 * The symbol table of type (SHT_SYMTAB, SHT_DYNSYM) and its string table, both
 * within their bounds (elf_strptr reads the whole string table, and
 * decompresses a compressed one to the size its header claims: no linker
 * compresses one, so that is refused). The format allows one of each type: a
 * second one is not read. 0, -ENOENT when there is none, or -errno.
 */
static int symtab_data(Elf *elf, int fd, Elf64_Word type, Elf_Data **ret_d, GElf_Shdr *ret_sh)
{
	GElf_Shdr sh, strsh;
	Elf_Scn *scn = NULL, *strscn;
	Elf_Data *d;
	size_t shnum;
	int err;

	if (elf_getshdrnum(elf, &shnum))
		return -ENOENT;
	while ((scn = elf_nextscn(elf, scn)))
		if (gelf_getshdr(scn, &sh) && sh.sh_type == type)
			break;
	if (!scn || !sh.sh_link || sh.sh_link >= shnum)
		return -ENOENT;
	strscn = elf_getscn(elf, sh.sh_link);
	if (!strscn || !gelf_getshdr(strscn, &strsh) || strsh.sh_type != SHT_STRTAB)
		return -ENOENT;
	if (strsh.sh_flags & SHF_COMPRESSED)
		return -EINVAL;
	err = elfutil_check_range(fd, strsh.sh_offset, strsh.sh_size, STRTAB_MAX_BYTES);
	if (!err)
		err = elfutil_getdata(fd, scn, SYMTAB_MAX_BYTES, &d);
	if (err)
		return err;
	if (d->d_type != ELF_T_SYM)
		return -ENOENT;
	*ret_d = d;
	*ret_sh = sh;
	return 0;
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
	err = symtab_data(elf, fd, type, &d, &sh);
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

/* Where to look for a file's debug file. */
struct where {
	char root[32];			/* "/proc/PID/root" for a process's file, else "" */
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

static void locate(struct where *w, const char *open_path, const char *real_path)
{
	const char *ns = NULL;
	bool under_root = false;
	char host[PATH_MAX];

	memset(w, 0, sizeof(*w));
	if (proc_root(open_path, w->root, sizeof(w->root), &under_root)) {
		if (real_path && real_path[0] == '/')
			ns = real_path;
		else if (under_root)
			ns = open_path + strlen(w->root);
		if (under_root)
			w->host_ok = dir_of(open_path, w->host_dir, sizeof(w->host_dir));
		else if (ns && (size_t)snprintf(host, sizeof(host), "%s%s", w->root, ns) <
				       sizeof(host))
			w->host_ok = dir_of(host, w->host_dir, sizeof(w->host_dir));
	} else {
		ns = real_path && real_path[0] == '/' ? real_path : open_path;
		w->host_ok = dir_of(open_path, w->host_dir, sizeof(w->host_dir));
	}
	if (ns && ns[0] == '/')
		w->ns_ok = dir_of(ns, w->ns_dir, sizeof(w->ns_dir));
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
static Elf *open_debug_file(const struct symcache *c, const char *bid, Elf *elf, int fd,
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
					     i ? w->root : "", c->debug_root, bid,
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
			n = snprintf(path, sizeof(path), "%s%s/%s", c->debug_root, w->ns_dir, link);
		else if (i == 3 && w->ns_ok && w->root[0])
			n = snprintf(path, sizeof(path), "%s%s%s/%s", w->root, c->debug_root,
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
	if (a->len + len + 1 > a->cap) {
		size_t ncap = a->cap ? a->cap : 16384;
		char *ns;

		while (ncap < a->len + len + 1)
			ncap *= 2;
		ns = realloc(a->s, ncap);
		if (!ns)
			goto out;
		a->s = ns;
		a->cap = ncap;
	}
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
static int load_file(struct symcache *c, const char *open_path, const char *real_path,
		     struct elfobj **ret)
{
	struct gather g = { 0 };
	char bid[BUILD_ID_HEX];
	struct elfobj *o = NULL, *shared;
	Elf *elf = NULL, *delf = NULL, *melf = NULL;
	int fd, dfd = -1, err = 0, merr;
	void *mbuf = NULL;
	struct stat st;
	bool symtab;
	long n;

	fd = elfutil_open_file(open_path, &st);
	if (fd < 0)
		return fd;
	elf = elfutil_begin(fd);
	if (!elf) {
		err = -errno;
		goto out;
	}
	elfutil_build_id(elf, fd, bid, sizeof(bid));
	symtab = has_symtab(elf);
	shared = bid[0] ? bid_find(c, bid) : NULL;
	if (shared && (shared->full || !symtab)) {
		shared->refs++;
		c->stats.objects_shared++;
		*ret = shared;
		goto out;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		err = -ENOMEM;
		goto out;
	}
	o->refs = 1;
	memcpy(o->build_id, bid, sizeof(bid));
	read_segments(o, elf);
	n = gather_elf(&g, elf, fd, SHT_SYMTAB);
	if (n >= 0)
		n = gather_elf(&g, elf, fd, SHT_DYNSYM);
	if (n < 0) {
		err = (int)n;
		goto out;
	}
	o->full = symtab;
	if (!symtab) {
		struct where w;

		locate(&w, open_path, real_path);
		delf = open_debug_file(c, bid, elf, fd, &w, &st, &dfd);
		if (delf) {
			n = gather_elf(&g, delf, dfd, SHT_SYMTAB);
			if (n > 0) {
				o->full = true;
				c->stats.debug_files_used++;
			}
		} else if ((melf = elfutil_minidebuginfo(elf, fd, MINIDEBUG_MAX_OUT, &mbuf,
							      &merr))) {
			/* MiniDebugInfo: the local functions .dynsym lacks */
			n = gather_elf(&g, melf, -1, SHT_SYMTAB);
			if (n > 0)
				c->stats.minidebuginfo_used++;
		} else if (merr != -ENOENT) {
			log_debug("%s: unusable .gnu_debugdata: %s", open_path, strerror(-merr));
		}
		if (n < 0) {
			err = (int)n;
			goto out;
		}
	}
	/* a stripped Go binary still has its own function table (and maybe a few dynsyms) */
	if (!o->full && !melf && gather_gopclntab(&g, elf, fd) > 0)
		c->stats.go_pclntab_used++;
	err = build_syms(o, &g);
	if (err)
		goto out;
	bid_insert(c, o);
	c->stats.objects_loaded++;
	c->bytes += o->bytes;
	*ret = o;
	o = NULL;
out:
	obj_free(o);
	free(g.v);
	if (melf)
		elf_end(melf);
	free(mbuf);
	if (delf) {
		elf_end(delf);
		close(dfd);
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return err;
}

/* ---- the cache ---------------------------------------------------------- */

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
	c->debug_root = strdup(opts && opts->debug_root ? opts->debug_root : DEFAULT_DEBUG_ROOT);
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	c->bid_buckets = calloc(c->nbuckets, sizeof(*c->bid_buckets));
	if (!c->debug_root || !c->buckets || !c->bid_buckets) {
		symcache__free(c);
		errno = ENOMEM;
		return NULL;
	}
	/* a trailing '/' would make "<root>//usr/lib" */
	for (size_t n = strlen(c->debug_root); n > 1 && c->debug_root[n - 1] == '/'; n--)
		c->debug_root[n - 1] = '\0';
	c->lru.next = c->lru.prev = &c->lru;
	elf_version(EV_CURRENT);
	return c;
}

static void ent_free(struct symcache *c, struct cent *e)
{
	obj_unref(c, e->obj);
	free(e->path);
	free(e);
}

void symcache__free(struct symcache *c)
{
	if (!c)
		return;
	if (c->lru.next) {
		for (struct cent *e = c->lru.next, *next; e != &c->lru; e = next) {
			next = e->next;
			ent_free(c, e);
		}
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

struct elfobj *symcache__find(struct symcache *c, uint64_t dev, uint64_t ino)
{
	struct cent *e;

	if (!c || (!dev && !ino))
		return NULL;
	e = ent_find(c, NULL, dev, ino, hash_key(NULL, dev, ino));
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
	int err;

	if (!c || !open_path) {
		errno = EINVAL;
		return NULL;
	}
	c->stats.lookups++;
	h = hash_key(open_path, dev, ino);
	e = ent_find(c, open_path, dev, ino, h);
	if (e) {
		lru_unlink(e);
		lru_push_front(c, e);
		if (e->obj)
			return e->obj;
		if (clock_mono_ns() < e->retry_ns) {
			errno = e->err;
			return NULL;
		}
		ent_remove(c, e);	/* time to try again */
	}
	c->stats.misses++;
	if (c->nents >= c->max_objects) {
		ent_remove(c, c->lru.prev);
		c->stats.evictions++;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		errno = ENOMEM;
		return NULL;
	}
	e->dev = dev;
	e->ino = ino;
	e->hash = h;
	if (!dev && !ino) {
		e->path = strdup(open_path);
		if (!e->path) {
			free(e);
			errno = ENOMEM;
			return NULL;
		}
	}
	err = load_file(c, open_path, real_path, &e->obj);
	if (err) {
		e->err = -err;
		e->retry_ns = retryable(-err) ? clock_mono_ns() + RETRY_NS : UINT64_MAX;
		c->stats.objects_failed++;
		/* never tried again: logged once while the entry lives */
		if (err == -EFBIG) {
			c->stats.objects_refused++;
			log_warn("not reading symbols of %s: its headers claim more than our "
				 "bounds, or data over the holes of a sparse file",
				 real_path ? real_path : open_path);
		} else {
			log_debug("cannot read symbols of %s: %s",
				  real_path ? real_path : open_path, strerror(-err));
		}
	}
	e->hnext = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = e;
	lru_push_front(c, e);
	c->nents++;

	if (!e->obj) {
		errno = e->err;
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
