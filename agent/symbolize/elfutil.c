// SPDX-License-Identifier: Apache-2.0
#include "elfutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "rootfs.h"

#define SHSTRTAB_MAX (4u << 20)	/* section names: a few hundred bytes in real files */
#define NOTES_MAX (1u << 20)	/* notes read per file, all of them together */
#define XZ_MEMLIMIT (256u << 20)	/* liblzma's own allocations for .gnu_debugdata */

int elfutil_open_file(const char *path, struct stat *ret_st)
{
	int fd = rootfs_open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	int err;

	if (fd < 0)
		return fd;
	if (fstat(fd, ret_st)) {
		err = -errno;
		close(fd);
		return err;
	}
	/* a directory, a FIFO or /dev/zero is no ELF file, whatever it reads as */
	if (!S_ISREG(ret_st->st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* An n-byte field of a header in the file's byte order. */
static uint64_t field(const unsigned char *p, size_t n, bool msb)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[msb ? n - 1 - i : i] << (8 * i);
	return v;
}

#define FIELD(buf, type, member, msb) \
	field((buf) + offsetof(type, member), sizeof(((type *)0)->member), msb)

/* len bytes at off of the file fd, or (fd < 0) of the image img of img_len bytes. */
static bool read_at(int fd, const void *img, size_t img_len, uint64_t off, void *buf, size_t len)
{
	if (fd >= 0)
		return off <= INT64_MAX && pread(fd, buf, len, (off_t)off) == (ssize_t)len;
	if (off > img_len || len > img_len - off)
		return false;
	memcpy(buf, (const char *)img + off, len);
	return true;
}

/*
 * The section and program header counts, as elf_begin or elf_memory will take
 * them: with extended numbering (e_shnum 0, e_phnum PN_XNUM) from section 0. An
 * extended count of 20 million in a 20 KB sparse file took elf_begin to 4 GiB.
 * 0 when they are within bounds or when libelf will refuse the header anyway;
 * -EFBIG.
 */
static int check_counts(int fd, const void *img, size_t img_len)
{
	unsigned char h[sizeof(Elf64_Ehdr)], s0[sizeof(Elf64_Shdr)];
	uint64_t shoff, nsec, nph;
	bool is64, msb;

	if (!read_at(fd, img, img_len, 0, h, sizeof(Elf32_Ehdr)) || memcmp(h, ELFMAG, SELFMAG) ||
	    (h[EI_CLASS] != ELFCLASS32 && h[EI_CLASS] != ELFCLASS64) ||
	    (h[EI_DATA] != ELFDATA2LSB && h[EI_DATA] != ELFDATA2MSB))
		return 0;
	is64 = h[EI_CLASS] == ELFCLASS64;
	msb = h[EI_DATA] == ELFDATA2MSB;
	if (is64 && !read_at(fd, img, img_len, 0, h, sizeof(Elf64_Ehdr)))
		return 0;
	shoff = is64 ? FIELD(h, Elf64_Ehdr, e_shoff, msb) : FIELD(h, Elf32_Ehdr, e_shoff, msb);
	nsec = is64 ? FIELD(h, Elf64_Ehdr, e_shnum, msb) : FIELD(h, Elf32_Ehdr, e_shnum, msb);
	nph = is64 ? FIELD(h, Elf64_Ehdr, e_phnum, msb) : FIELD(h, Elf32_Ehdr, e_phnum, msb);
	if (shoff && (nsec == 0 || nph == PN_XNUM)) {
		if (!read_at(fd, img, img_len, shoff, s0,
			     is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)))
			return 0;
		if (nsec == 0)
			nsec = is64 ? FIELD(s0, Elf64_Shdr, sh_size, msb)
				    : FIELD(s0, Elf32_Shdr, sh_size, msb);
		if (nph == PN_XNUM)
			nph = is64 ? FIELD(s0, Elf64_Shdr, sh_info, msb)
				   : FIELD(s0, Elf32_Shdr, sh_info, msb);
	}
	if (nsec <= ELFUTIL_MAX_SECTIONS && nph <= ELFUTIL_MAX_PHDRS)
		return 0;
	log_debug("ELF header claims %" PRIu64 " sections, %" PRIu64 " program headers: refused",
		  nsec, nph);
	return -EFBIG;
}

Elf *elfutil_begin(int fd)
{
	int err = check_counts(fd, NULL, 0);
	GElf_Ehdr eh;
	Elf *elf;

	if (err) {
		errno = -err;
		return NULL;
	}
	elf_version(EV_CURRENT);
	/* read(), not mmap: a file truncated under us must not SIGBUS the agent */
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || gelf_getclass(elf) == ELFCLASSNONE ||
	    !gelf_getehdr(elf, &eh)) {
		elf_end(elf);
		errno = EINVAL;
		return NULL;
	}
	return elf;
}

Elf *elfutil_open(const char *path, int *ret_fd)
{
	struct stat st;
	int fd = elfutil_open_file(path, &st), err;
	Elf *elf;

	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	elf = elfutil_begin(fd);
	if (!elf) {
		err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	*ret_fd = fd;
	return elf;
}

void elfutil_close(Elf *elf, int fd)
{
	elf_end(elf);
	if (fd >= 0)
		close(fd);
}

/* ---- bounded reads ------------------------------------------------------ */

int elfutil_check_range(int fd, uint64_t off, uint64_t size, uint64_t budget)
{
	struct stat st;
	off_t hole;

	if (size > budget) {
		log_debug("ELF range %#" PRIx64 "+%#" PRIx64 ": over its budget of %" PRIu64
			  " bytes, refused", off, size, budget);
		return -EFBIG;
	}
	if (fd < 0)
		return 0;
	if (fstat(fd, &st))
		return -errno;
	if (off > (uint64_t)st.st_size || size > (uint64_t)st.st_size - off) {
		log_debug("ELF range %#" PRIx64 "+%#" PRIx64 ": past the end of the file (%" PRIu64
			  " bytes), refused", off, size, (uint64_t)st.st_size);
		return -EINVAL;
	}
	/* more bytes than the file has blocks: holes, or a file system that compresses */
	if (size <= ELFUTIL_SPARSE_SLACK || (uint64_t)st.st_blocks * 512 >= size)
		return 0;
	hole = lseek(fd, (off_t)off, SEEK_HOLE);
	if (hole >= 0 && (uint64_t)hole >= off + size)
		return 0;	/* all data (compressed, then) */
	/* a hole inside, or no SEEK_HOLE here: the blocks are all we know */
	log_debug("ELF range %#" PRIx64 "+%#" PRIx64 ": over a hole (the file has %" PRIu64
		  " bytes of blocks), refused", off, size, (uint64_t)st.st_blocks * 512);
	return -EFBIG;
}

int elfutil_getdata(int fd, Elf_Scn *scn, uint64_t budget, Elf_Data **ret)
{
	GElf_Shdr sh;
	Elf_Data *d;
	int err;

	if (!gelf_getshdr(scn, &sh))
		return -EINVAL;
	if (sh.sh_type != SHT_NOBITS) {
		err = elfutil_check_range(fd, sh.sh_offset, sh.sh_size, budget);
		if (err)
			return err;
	}
	d = elf_getdata(scn, NULL);
	if (!d || !d->d_buf)
		return -ENOENT;
	*ret = d;
	return 0;
}

int elfutil_rawchunk(Elf *elf, int fd, uint64_t off, uint64_t size, uint64_t budget,
		     Elf_Type type, Elf_Data **ret)
{
	int err = elfutil_check_range(fd, off, size, budget);
	Elf_Data *d;

	if (err)
		return err;
	if (off > INT64_MAX)
		return -EINVAL;
	d = elf_getdata_rawchunk(elf, (int64_t)off, size, type);
	if (!d || !d->d_buf)
		return -EINVAL;
	*ret = d;
	return 0;
}

/* ---- sections ----------------------------------------------------------- */

Elf_Scn *elfutil_section(Elf *elf, const char *want, GElf_Shdr *ret)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL, *names;
	GElf_Shdr nsh;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return NULL;
	/* elf_strptr reads the whole name table (decompressing it to any size it claims) */
	names = elf_getscn(elf, shstrndx);
	if (!names || !gelf_getshdr(names, &nsh) || nsh.sh_size > SHSTRTAB_MAX ||
	    (nsh.sh_flags & SHF_COMPRESSED))
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;

		if (!gelf_getshdr(scn, ret) || ret->sh_type == SHT_NOBITS)
			continue;
		name = elf_strptr(elf, shstrndx, ret->sh_name);	/* bounds-checked */
		if (name && !strcmp(name, want))
			return scn;
	}
	return NULL;
}

/* Looks through one block of notes. */
static int note_build_id(Elf_Data *d, char *hex, size_t len)
{
	size_t off = 0, noff, doff;
	GElf_Nhdr nh;

	while ((off = gelf_getnote(d, off, &nh, &noff, &doff)) > 0) {
		const unsigned char *b;

		if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
		    memcmp((char *)d->d_buf + noff, "GNU", 4) || !nh.n_descsz ||
		    nh.n_descsz * 2 + 1 > len)
			continue;
		b = (const unsigned char *)d->d_buf + doff;
		for (size_t k = 0; k < nh.n_descsz; k++)
			snprintf(hex + 2 * k, 3, "%02x", b[k]);
		return 0;
	}
	return -ENOENT;
}

int elfutil_build_id(Elf *elf, int fd, char *hex, size_t len)
{
	uint64_t left = NOTES_MAX;	/* a file may hold any number of notes */
	Elf_Scn *scn = NULL;
	size_t phnum;
	Elf_Data *d;

	hex[0] = '\0';
	/* sections first; a file without section headers still has PT_NOTE */
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE ||
		    elfutil_getdata(fd, scn, left, &d))
			continue;
		left -= sh.sh_size;
		if (note_build_id(d, hex, len) == 0)
			return 0;
	}
	if (elf_getphdrnum(elf, &phnum))
		return -ENOENT;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE ||
		    elfutil_rawchunk(elf, fd, ph.p_offset, ph.p_filesz, left, ELF_T_NHDR, &d))
			continue;
		left -= ph.p_filesz;
		if (note_build_id(d, hex, len) == 0)
			return 0;
	}
	return -ENOENT;
}

Elf *elfutil_minidebuginfo(Elf *elf, int fd, size_t max_bytes, void **ret_buf, int *ret_err)
{
	GElf_Shdr sh;
	Elf_Scn *scn = elfutil_section(elf, ".gnu_debugdata", &sh);
	size_t cap = 1 << 20, in_pos, out_pos;
	uint8_t *out = NULL, *nb;
	uint64_t memlimit = XZ_MEMLIMIT;
	Elf_Data *d;
	lzma_ret rc;
	Elf *mini;

	*ret_err = scn ? elfutil_getdata(fd, scn, max_bytes, &d) : -ENOENT;
	if (*ret_err)
		return NULL;
	if (!d->d_size) {
		*ret_err = -ENOENT;
		return NULL;
	}
	/* grow the output until the whole stream fits, up to max_bytes */
	for (;;) {
		nb = realloc(out, cap);
		if (!nb) {
			*ret_err = -ENOMEM;
			goto fail;
		}
		out = nb;
		in_pos = out_pos = 0;
		rc = lzma_stream_buffer_decode(&memlimit, 0, NULL, d->d_buf, &in_pos, d->d_size,
					       out, &out_pos, cap);
		if (rc == LZMA_OK)
			break;
		if (rc != LZMA_BUF_ERROR || cap >= max_bytes) {
			*ret_err = rc == LZMA_BUF_ERROR ? -EFBIG : -EINVAL;
			goto fail;
		}
		cap = cap * 4 > max_bytes ? max_bytes : cap * 4;
	}
	/* what it decompressed to is a file from outside too */
	*ret_err = check_counts(-1, out, out_pos);
	if (*ret_err)
		goto fail;
	mini = elf_memory((char *)out, out_pos);
	if (!mini || elf_kind(mini) != ELF_K_ELF) {
		elf_end(mini);
		*ret_err = -EINVAL;
		goto fail;
	}
	*ret_buf = out;
	*ret_err = 0;
	return mini;
fail:
	free(out);
	return NULL;
}

int elfutil_symtab(Elf *elf, int fd, Elf64_Word type, uint64_t sym_budget, uint64_t str_budget,
		   Elf_Data **ret_d, GElf_Shdr *ret_sh)
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
	err = elfutil_check_range(fd, strsh.sh_offset, strsh.sh_size, str_budget);
	if (!err)
		err = elfutil_getdata(fd, scn, sym_budget, &d);
	if (err)
		return err;
	if (d->d_type != ELF_T_SYM)
		return -ENOENT;
	*ret_d = d;
	*ret_sh = sh;
	return 0;
}

int elfutil_each_sym(Elf *elf, int fd, Elf64_Word type, uint64_t budget,
		     int (*fn)(void *arg, const char *name, const GElf_Sym *sym), void *arg)
{
	GElf_Shdr sh;
	Elf_Data *d;
	size_t n;
	int err = elfutil_symtab(elf, fd, type, budget, budget, &d, &sh);

	if (err)
		return err;
	if (!sh.sh_entsize)
		return -ENOENT;
	n = sh.sh_size / sh.sh_entsize;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym sym;
		const char *name;

		if (!gelf_getsym(d, (int)i, &sym))
			break;
		name = elf_strptr(elf, sh.sh_link, sym.st_name);
		if (name && (err = fn(arg, name, &sym)))
			return err;
	}
	return 0;
}

int elfutil_read_vaddr(Elf *elf, int fd, uint64_t budget, uint64_t vaddr, void *buf, size_t len)
{
	size_t nph;

	if (elf_getphdrnum(elf, &nph))
		return -EINVAL;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		Elf_Data *d;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || vaddr < ph.p_vaddr ||
		    len > ph.p_memsz || vaddr - ph.p_vaddr > ph.p_memsz - len)
			continue;
		if (vaddr - ph.p_vaddr >= ph.p_filesz) {	/* .bss */
			memset(buf, 0, len);
			return 0;
		}
		if (len > ph.p_filesz || vaddr - ph.p_vaddr > ph.p_filesz - len)
			return -EINVAL;	/* across the end of the file's bytes */
		if (elfutil_rawchunk(elf, fd, ph.p_offset + (vaddr - ph.p_vaddr), len, budget,
				     ELF_T_BYTE, &d) || d->d_size < len)
			return -EIO;
		memcpy(buf, d->d_buf, len);
		return 0;
	}
	return -ENOENT;
}
