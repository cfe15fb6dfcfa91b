// SPDX-License-Identifier: Apache-2.0
#include "elfutil.h"

#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

Elf *elfutil_open(const char *path, int *ret_fd)
{
	struct stat st;
	int fd;
	Elf *elf;

	elf_version(EV_CURRENT);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	/* a directory, a FIFO or /dev/zero is no ELF file, whatever it reads as */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	elf = elf_begin(fd, ELF_C_READ, NULL);	/* read(), not mmap: a file truncated under us must not SIGBUS the agent */
	if (!elf || elf_kind(elf) != ELF_K_ELF || gelf_getclass(elf) == ELFCLASSNONE) {
		elf_end(elf);
		close(fd);
		errno = EINVAL;
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

Elf_Scn *elfutil_section(Elf *elf, const char *want, GElf_Shdr *ret)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (elf_getshdrstrndx(elf, &shstrndx))
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

	while (d && d->d_buf && (off = gelf_getnote(d, off, &nh, &noff, &doff)) > 0) {
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

int elfutil_build_id(Elf *elf, char *hex, size_t len)
{
	Elf_Scn *scn = NULL;
	size_t phnum;

	hex[0] = '\0';
	/* sections first; a file without section headers still has PT_NOTE */
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_NOTE &&
		    note_build_id(elf_getdata(scn, NULL), hex, len) == 0)
			return 0;
	}
	if (elf_getphdrnum(elf, &phnum))
		return -ENOENT;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_NOTE &&
		    note_build_id(elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz,
						       ELF_T_NHDR), hex, len) == 0)
			return 0;
	}
	return -ENOENT;
}

Elf *elfutil_minidebuginfo(Elf *elf, size_t max_bytes, void **ret_buf, int *ret_err)
{
	GElf_Shdr sh;
	Elf_Scn *scn = elfutil_section(elf, ".gnu_debugdata", &sh);
	Elf_Data *d = scn ? elf_getdata(scn, NULL) : NULL;
	size_t cap = 1 << 20, in_pos, out_pos;
	uint8_t *out = NULL, *nb;
	uint64_t memlimit = 256u << 20;
	lzma_ret rc;
	Elf *mini;

	*ret_err = -ENOENT;
	if (!d || !d->d_buf || !d->d_size)
		return NULL;
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
