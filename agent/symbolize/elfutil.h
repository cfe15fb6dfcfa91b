/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_ELFUTIL_H
#define AGENT_ELFUTIL_H

/*
 * Small libelf helpers shared by the symbolizer, the CFI compiler and the unwinder.
 *
 * A file's own headers size what libelf allocates and reads: elf_begin allocates
 * for every section the header counts, elf_getdata reads sh_size bytes whole.
 * A file may claim gigabytes and hold a few kilobytes, the rest a hole of a
 * sparse file that reads as zeros: 32 KB on disk whose .symtab claims 3 GiB took
 * the agent to 3.1 GiB. So nothing here hands a section to libelf before its size
 * is checked against a budget, against the file's size and against the blocks
 * the file really has (elfutil_check_range), and elfutil_begin bounds the header
 * counts before elf_begin sees them.
 */

#include <gelf.h>
#include <libelf.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define ELFUTIL_MAX_SECTIONS (1u << 16)	/* section headers of one file */
#define ELFUTIL_MAX_PHDRS (1u << 16)	/* program headers of one file */
/* a range this large or larger must not lie over a hole of a sparse file */
#define ELFUTIL_SPARSE_SLACK (1u << 20)

/*
 * Opens a regular file for reading, never blocking (FIFO) nor taking a terminal;
 * a /proc/PID/root/... path is resolved inside that root (rootfs_open). fd or
 * -errno (-EINVAL: not a regular file).
 */
int elfutil_open_file(const char *path, struct stat *ret_st);
/*
 * An ELF handle on fd (read(), not mmap: a file truncated under us must not
 * SIGBUS the agent), once the header's section and program header counts are
 * within bounds. NULL with errno set: EINVAL (no ELF), EFBIG (counts too large).
 */
Elf *elfutil_begin(int fd);
/* elfutil_open_file + elfutil_begin. NULL with errno set. Close with elfutil_close. */
Elf *elfutil_open(const char *path, int *ret_fd);
void elfutil_close(Elf *elf, int fd);

/*
 * Whether [off, off + size) of the file fd may be read: -EFBIG when size is over
 * budget, -EINVAL when the range ends past the end of the file, -EFBIG when it is
 * larger than ELFUTIL_SPARSE_SLACK and lies over a hole (the file has fewer
 * blocks than the range claims bytes, and SEEK_HOLE finds one inside it). fd < 0:
 * an image in memory, which libelf bounds itself: only the budget applies. 0 or
 * -errno. Moves fd's file offset (libelf reads with pread).
 */
int elfutil_check_range(int fd, uint64_t off, uint64_t size, uint64_t budget);
/* elf_getdata of a section after elfutil_check_range of its bytes. 0 or -errno. */
int elfutil_getdata(int fd, Elf_Scn *scn, uint64_t budget, Elf_Data **ret);
/* elf_getdata_rawchunk after elfutil_check_range. 0 or -errno. */
int elfutil_rawchunk(Elf *elf, int fd, uint64_t off, uint64_t size, uint64_t budget,
		     Elf_Type type, Elf_Data **ret);

/*
 * The section called name (NOBITS sections are skipped), or NULL; also NULL when
 * the section name table is over 4 MiB or compressed.
 */
Elf_Scn *elfutil_section(Elf *elf, const char *name, GElf_Shdr *ret_shdr);
/*
 * The symbol table of type (SHT_SYMTAB, SHT_DYNSYM) and its string table, both
 * within their bounds: sym_budget and str_budget bytes (elf_strptr reads the
 * whole string table, and decompresses a compressed one to the size its header
 * claims: no linker compresses one, so that is refused). The format allows one
 * of each type: a second one is not read. 0, -ENOENT when there is none, or -errno.
 */
int elfutil_symtab(Elf *elf, int fd, Elf64_Word type, uint64_t sym_budget, uint64_t str_budget,
		   Elf_Data **ret_d, GElf_Shdr *ret_sh);
/*
 * Calls fn for each symbol of the table of type (elfutil_symtab, budget bytes for
 * the symbols and for their names) with its name, until fn returns non-zero.
 * 0, the first non-zero fn returned, -ENOENT when there is no such table, or -errno.
 */
int elfutil_each_sym(Elf *elf, int fd, Elf64_Word type, uint64_t budget,
		     int (*fn)(void *arg, const char *name, const GElf_Sym *sym), void *arg);
/*
 * Reads len bytes at file vaddr from the PT_LOAD that holds them (bounded by
 * budget); bytes past the segment's file size (.bss) read as zeros, what the
 * loader gives them. 0, -ENOENT (no segment holds them) or -errno.
 */
int elfutil_read_vaddr(Elf *elf, int fd, uint64_t budget, uint64_t vaddr, void *buf, size_t len);
/* The GNU build-id in lower-case hex; 0, or -ENOENT when there is none (1 MiB of notes read). */
int elfutil_build_id(Elf *elf, int fd, char *hex, size_t len);

/*
 * MiniDebugInfo: the xz-compressed ELF file in .gnu_debugdata (a symbol table,
 * sometimes CFI). Returns an Elf over a malloc'd buffer (*ret_buf, free it after
 * elf_end), or NULL (-ENOENT: none; -EINVAL: corrupt; -EFBIG: the section or
 * what it decompresses to over max_bytes).
 */
Elf *elfutil_minidebuginfo(Elf *elf, int fd, size_t max_bytes, void **ret_buf, int *ret_err);

#endif
