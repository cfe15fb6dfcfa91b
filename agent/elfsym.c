// SPDX-License-Identifier: Apache-2.0
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
#include <unistd.h>
#include <zlib.h>

#include "demangle.h"
#include "elfutil.h"
#include "log.h"

#define MAX_SEGS 16
#define MAX_SYMS (8u << 20)	/* per object: more is a broken file */

struct sym {
	uint64_t addr, size;
	uint32_t name;		/* offset in names */
	uint8_t rank;		/* 0 global, 1 weak, 2 local: preferred alias first */
};

struct seg {
	uint64_t offset, vaddr, filesz;
};

struct elfobj {
	uint64_t dev, ino;
	char *key_path;		/* when dev/ino are 0 */
	bool failed;
	int err;
	uint64_t last_used;
	char build_id[2 * 64 + 1];
	struct seg segs[MAX_SEGS];
	int nsegs;
	struct sym *syms;
	uint32_t nsyms, cap_syms;
	char *names;
	size_t names_len, names_cap;
};

struct symcache {
	struct elfobj **objs;
	size_t nobjs, max_objects;
	char debug_root[PATH_MAX];
	uint64_t tick;
	struct symcache_stats stats;
};

struct symcache *symcache__new(const struct symcache_opts *opts)
{
	struct symcache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->max_objects = opts && opts->max_objects ? opts->max_objects : 256;
	snprintf(c->debug_root, sizeof(c->debug_root), "%s",
		 opts && opts->debug_root ? opts->debug_root : "/usr/lib/debug");
	c->objs = calloc(c->max_objects, sizeof(*c->objs));
	if (!c->objs) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	elf_version(EV_CURRENT);
	return c;
}

static void obj_free(struct elfobj *o)
{
	if (!o)
		return;
	free(o->syms);
	free(o->names);
	free(o->key_path);
	free(o);
}

void symcache__free(struct symcache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nobjs; i++)
		obj_free(c->objs[i]);
	free(c->objs);
	free(c);
}

static long add_name(struct elfobj *o, const char *s)
{
	size_t len = strlen(s) + 1;

	if (o->names_len + len > o->names_cap) {
		size_t ncap = o->names_cap ? o->names_cap * 2 : 65536;
		char *n;

		while (ncap < o->names_len + len)
			ncap *= 2;
		n = realloc(o->names, ncap);
		if (!n)
			return -ENOMEM;
		o->names = n;
		o->names_cap = ncap;
	}
	memcpy(o->names + o->names_len, s, len);
	o->names_len += len;
	return (long)(o->names_len - len);
}

static int add_sym(struct elfobj *o, uint64_t addr, uint64_t size, const char *name, uint8_t rank)
{
	char *dm = demangle(name), *at = NULL;
	long off;

	/* "memcpy@@GLIBC_2.14": the symbol version is noise in a profile */
	if (!dm && (at = strchr(name, '@')) && at != name) {
		dm = strndup(name, (size_t)(at - name));
	}

	if (o->nsyms >= MAX_SYMS) {
		free(dm);
		return -E2BIG;
	}
	if (o->nsyms == o->cap_syms) {
		uint32_t ncap = o->cap_syms ? o->cap_syms * 2 : 1024;
		struct sym *ns = realloc(o->syms, ncap * sizeof(*ns));

		if (!ns) {
			free(dm);
			return -ENOMEM;
		}
		o->syms = ns;
		o->cap_syms = ncap;
	}
	off = add_name(o, dm ? dm : name);
	free(dm);
	if (off < 0 || off > UINT32_MAX)
		return -ENOMEM;
	o->syms[o->nsyms++] = (struct sym){ addr, size, (uint32_t)off, rank };
	return 0;
}

/* Reads the symbols of every SHT_SYMTAB (want_symtab) or SHT_DYNSYM section. Returns count. */
static long read_symbols(struct elfobj *o, Elf *elf, Elf64_Word type)
{
	Elf_Scn *scn = NULL;
	size_t shnum;
	long count = 0;

	if (elf_getshdrnum(elf, &shnum))
		return -EINVAL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || !sh.sh_entsize)
			continue;
		if (sh.sh_link >= shnum)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data || !data->d_buf)
			continue;
		n = data->d_size / sh.sh_entsize;
		for (size_t i = 0; i < n; i++) {
			GElf_Sym s;
			const char *name;
			int st;

			if (!gelf_getsym(data, (int)i, &s))
				break;
			st = GELF_ST_TYPE(s.st_info);
			if ((st != STT_FUNC && st != STT_GNU_IFUNC) || s.st_shndx == SHN_UNDEF ||
			    !s.st_value)
				continue;
			name = elf_strptr(elf, sh.sh_link, s.st_name);	/* bounds-checked */
			if (!name || !*name)
				continue;
			if (add_sym(o, s.st_value, s.st_size, name,
				    GELF_ST_BIND(s.st_info) == STB_GLOBAL ? 0 :
				    GELF_ST_BIND(s.st_info) == STB_WEAK	  ? 1 : 2))
				return -ENOMEM;
			count++;
		}
	}
	return count;
}

static int read_segments(struct elfobj *o, Elf *elf)
{
	size_t phnum;

	if (elf_getphdrnum(elf, &phnum))
		return -EINVAL;
	for (size_t i = 0; i < phnum && o->nsegs < MAX_SEGS; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD)
			o->segs[o->nsegs++] = (struct seg){ ph.p_offset, ph.p_vaddr, ph.p_filesz };
	}
	return 0;
}

static Elf_Data *section_data(Elf *elf, const char *want)
{
	GElf_Shdr sh;
	Elf_Scn *scn = elfutil_section(elf, want, &sh);

	return scn ? elf_getdata(scn, NULL) : NULL;
}

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

static uint32_t file_crc32(const char *path)
{
	unsigned char buf[65536];
	uLong crc = crc32(0L, Z_NULL, 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crc = crc32(crc, buf, (uInt)n);
	close(fd);
	return (uint32_t)crc;
}

/* .gnu_debuglink: file name, NUL, padding to 4, CRC32 of the debug file. */
static int read_debuglink(Elf *elf, char *name, size_t len, uint32_t *ret_crc)
{
	Elf_Data *d = section_data(elf, ".gnu_debuglink");
	size_t nlen, crc_off;

	if (!d)
		return -ENOENT;
	if (!d->d_buf || d->d_size < 6)
		return -EINVAL;
	nlen = strnlen(d->d_buf, d->d_size);
	crc_off = (nlen + 4) & ~(size_t)3;
	if (nlen == 0 || nlen >= len || crc_off + 4 > d->d_size)
		return -EINVAL;
	memcpy(name, d->d_buf, nlen + 1);
	memcpy(ret_crc, (char *)d->d_buf + crc_off, 4);
	return 0;
}

/* Finds the separate debug file: by build-id, then by .gnu_debuglink. */
static int find_debug_file(const struct symcache *c, const struct elfobj *o, Elf *elf,
			   const char *real_path, char *out, size_t len)
{
	char link[256], dir[PATH_MAX];
	uint32_t crc;
	char *slash;

	if (o->build_id[0] && strlen(o->build_id) > 2) {
		snprintf(out, len, "%s/.build-id/%.2s/%s.debug", c->debug_root, o->build_id,
			 o->build_id + 2);
		if (access(out, R_OK) == 0)
			return 0;
	}
	if (read_debuglink(elf, link, sizeof(link), &crc) || strchr(link, '/'))
		return -ENOENT;
	snprintf(dir, sizeof(dir), "%s", real_path);
	slash = strrchr(dir, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	for (int i = 0; i < 3; i++) {
		if (i == 0)
			snprintf(out, len, "%s/%s", dir, link);
		else if (i == 1)
			snprintf(out, len, "%s/.debug/%s", dir, link);
		else
			snprintf(out, len, "%s%s/%s", c->debug_root, dir, link);
		if (!strcmp(out, real_path) || access(out, R_OK))
			continue;
		if (file_crc32(out) == crc)
			return 0;
	}
	return -ENOENT;
}

static uint64_t rd(const uint8_t *p, size_t n)
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
 */
static long read_gopclntab(struct elfobj *o, Elf *elf)
{
	Elf_Data *d = section_data(elf, ".gopclntab");
	const uint8_t *b;
	uint64_t nfunc, text, names, ftab;
	size_t len, ps;
	uint32_t magic;
	long count = 0;

	if (!d || !d->d_buf || d->d_size < 8 + 8 * 8)
		return -ENOENT;
	b = d->d_buf;
	len = d->d_size;
	magic = (uint32_t)rd(b, 4);
	ps = b[7];
	if ((magic != 0xfffffff0 && magic != 0xfffffff1) || b[4] || b[5] || (ps != 4 && ps != 8) ||
	    8 + 8 * ps > len)
		return -ENOTSUP;
	nfunc = rd(b + 8, ps);
	text = rd(b + 8 + 2 * ps, ps);
	names = rd(b + 8 + 3 * ps, ps);
	ftab = rd(b + 8 + 7 * ps, ps);
	if (names >= len || ftab >= len || nfunc > MAX_SYMS || (len - ftab) / 8 < nfunc + 1)
		return -EINVAL;
	for (uint64_t i = 0; i < nfunc; i++) {
		const uint8_t *e = b + ftab + 8 * i;
		uint64_t entry = rd(e, 4), next = rd(e + 8, 4), foff = rd(e + 4, 4);
		uint64_t name_off;
		const char *name;

		if (foff > len - ftab || len - ftab - foff < 8)
			continue;
		name_off = rd(b + ftab + foff + 4, 4);
		if (name_off >= len - names)
			continue;
		name = (const char *)b + names + name_off;
		if (!memchr(name, '\0', len - names - name_off) || !*name)
			continue;
		if (add_sym(o, text + entry, next > entry ? next - entry : 0, name, 0))
			return -ENOMEM;
		count++;
	}
	return count;
}

static int cmp_sym(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	return (x->size < y->size) - (x->size > y->size);	/* sized first */
}

static void sort_syms(struct elfobj *o)
{
	uint32_t w = 0;

	if (!o->nsyms)
		return;
	qsort(o->syms, o->nsyms, sizeof(*o->syms), cmp_sym);
	/* one symbol per address: the preferred alias */
	for (uint32_t i = 0; i < o->nsyms; i++)
		if (!w || o->syms[w - 1].addr != o->syms[i].addr)
			o->syms[w++] = o->syms[i];
	o->nsyms = w;
}

static int load(struct symcache *c, struct elfobj *o, const char *open_path, const char *real_path)
{
	char dbg[PATH_MAX];
	int fd = -1, dfd = -1, err = 0;
	Elf *elf, *delf = NULL;
	long n;

	elf = elfutil_open(open_path, &fd);
	if (!elf)
		return -errno;
	elfutil_build_id(elf, o->build_id, sizeof(o->build_id));
	err = read_segments(o, elf);
	if (err)
		goto out;
	if (!has_symtab(elf) &&
	    find_debug_file(c, o, elf, real_path ? real_path : open_path, dbg, sizeof(dbg)) == 0) {
		delf = elfutil_open(dbg, &dfd);
		if (delf && has_symtab(delf)) {
			n = read_symbols(o, delf, SHT_SYMTAB);
			if (n > 0)
				c->stats.debug_files_used++;
		}
	}
	/* MiniDebugInfo: the functions .dynsym lacks, in an xz'd ELF inside the file */
	if (!has_symtab(elf) && !o->nsyms) {
		void *buf = NULL;
		int merr;
		Elf *mini = elfutil_minidebuginfo(elf, 64u << 20, &buf, &merr);

		if (mini && read_symbols(o, mini, SHT_SYMTAB) > 0)
			c->stats.minidebuginfo_used++;
		elf_end(mini);
		free(buf);
	}
	n = read_symbols(o, elf, SHT_SYMTAB);
	if (n >= 0)
		n = read_symbols(o, elf, SHT_DYNSYM);
	if (n < 0) {
		err = (int)n;
		goto out;
	}
	/* a stripped Go binary still has its own function table */
	if (!o->nsyms && read_gopclntab(o, elf) > 0)
		c->stats.go_pclntab_used++;
	sort_syms(o);
out:
	elfutil_close(delf, dfd);
	elfutil_close(elf, fd);
	return err;
}

static struct elfobj *find(struct symcache *c, const char *path, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < c->nobjs; i++) {
		struct elfobj *o = c->objs[i];

		if (dev || ino) {
			if (o->dev == dev && o->ino == ino && !o->key_path)
				return o;
		} else if (o->key_path && !strcmp(o->key_path, path)) {
			return o;
		}
	}
	return NULL;
}

static void evict_one(struct symcache *c)
{
	size_t victim = 0;

	for (size_t i = 1; i < c->nobjs; i++)
		if (c->objs[i]->last_used < c->objs[victim]->last_used)
			victim = i;
	obj_free(c->objs[victim]);
	c->objs[victim] = c->objs[--c->nobjs];
	c->stats.evictions++;
}

struct elfobj *symcache__get(struct symcache *c, const char *open_path, const char *real_path,
			     uint64_t dev, uint64_t ino)
{
	struct elfobj *o = find(c, open_path, dev, ino);
	int err;

	if (o) {
		o->last_used = ++c->tick;
		if (o->failed) {
			errno = o->err;
			return NULL;
		}
		return o;
	}
	if (c->nobjs == c->max_objects)
		evict_one(c);
	o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->dev = dev;
	o->ino = ino;
	if (!dev && !ino) {
		o->key_path = strdup(open_path);
		if (!o->key_path) {
			free(o);
			return NULL;
		}
	}
	o->last_used = ++c->tick;
	err = load(c, o, open_path, real_path);
	if (err) {
		/* remember the failure, keep nothing else */
		free(o->syms);
		free(o->names);
		o->syms = NULL;
		o->names = NULL;
		o->nsyms = 0;
		o->failed = true;
		o->err = -err;
		c->stats.objects_failed++;
		log_debug("cannot read symbols of %s: %s", real_path ? real_path : open_path,
			  strerror(-err));
	} else {
		c->stats.objects_loaded++;
	}
	c->objs[c->nobjs++] = o;
	if (o->failed) {
		errno = o->err;
		return NULL;
	}
	return o;
}

const char *elfobj__build_id(const struct elfobj *o)
{
	return o->build_id;
}

size_t elfobj__nsyms(const struct elfobj *o)
{
	return o->nsyms;
}

int elfobj__offset_to_vaddr(const struct elfobj *o, uint64_t off, uint64_t *ret_vaddr)
{
	for (int i = 0; i < o->nsegs; i++) {
		const struct seg *s = &o->segs[i];

		if (off >= s->offset && off < s->offset + s->filesz) {
			*ret_vaddr = off - s->offset + s->vaddr;
			return 0;
		}
	}
	return -ENOENT;
}

int elfobj__symbolize(const struct elfobj *o, uint64_t vaddr, const char **ret_name,
		      uint64_t *ret_sym_off)
{
	uint32_t lo = 0, hi = o->nsyms;
	const struct sym *s;

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
	/* a sized symbol covers only its size; an unsized one reaches the next symbol */
	if (s->size && vaddr >= s->addr + s->size)
		return -ENOENT;
	*ret_name = o->names + s->name;
	if (ret_sym_off)
		*ret_sym_off = vaddr - s->addr;
	return 0;
}

void symcache__stats(const struct symcache *c, struct symcache_stats *ret)
{
	*ret = c->stats;
}
