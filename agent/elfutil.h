/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_ELFUTIL_H
#define AGENT_ELFUTIL_H

/* Small libelf helpers shared by the symbolizer, the CFI compiler and the unwinder. */

#include <gelf.h>
#include <libelf.h>
#include <stddef.h>

/*
 * Opens a regular file as ELF (read-only, mmap'd). NULL with errno set
 * (EINVAL: not a regular file or not ELF). Close with elfutil_close.
 */
Elf *elfutil_open(const char *path, int *ret_fd);
void elfutil_close(Elf *elf, int fd);
/* The section called name (NOBITS sections are skipped), or NULL. */
Elf_Scn *elfutil_section(Elf *elf, const char *name, GElf_Shdr *ret_shdr);
/* The GNU build-id in lower-case hex; 0, or -ENOENT when there is none. */
int elfutil_build_id(Elf *elf, char *hex, size_t len);

/*
 * MiniDebugInfo: the xz-compressed ELF file in .gnu_debugdata (a symbol table,
 * sometimes CFI). Returns an Elf over a malloc'd buffer (*ret_buf, free it after
 * elf_end), or NULL (-ENOENT: none; -EINVAL: corrupt; -EFBIG: over max_bytes).
 */
Elf *elfutil_minidebuginfo(Elf *elf, size_t max_bytes, void **ret_buf, int *ret_err);

#endif
