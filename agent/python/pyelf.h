/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_PYELF_H
#define AGENT_PYELF_H

/*
 * CPython found in an ELF file (a python3.X executable with the interpreter
 * built in, or a libpython3.X.so): its version, where its evaluation loop is,
 * where the pthread key of its thread states lives, and the layout of its
 * frames and code objects, for the BPF Python walker and the symbolizer.
 *
 * Everything comes from the file's dynamic symbols and data: the version from
 * Py_Version (3.11+) or the file name, the key's address from the code of
 * PyGILState_GetThisThreadState (which loads it), the instructions' offset in a
 * code object from PyCode_Type's tp_basicsize. Per-version offsets (verified
 * against CPython 3.8-3.14 builds) fill in what the file does not say.
 */

#include <libelf.h>
#include <stdint.h>

#include "oncpu.h"

#define PYELF_MAX_RANGES 4

struct py_elf {
	int major, minor;
	/*
	 * The evaluation loop's code, file vaddrs: _PyEval_EvalFrameDefault, then
	 * the parts the compiler moved out of it (.cold, with no symbol in a stripped
	 * file: 3.14's loop runs mostly there), found as the CFI ranges its jumps land in.
	 */
	struct { uint64_t start, end; } ranges[PYELF_MAX_RANGES];
	int nranges;
	/* py_proc with file vaddrs in tss_key_addr and code_type: add the load bias */
	struct py_proc layout;
};

/* The CPython minor versions whose layout is known. */
#define PYELF_MIN_MINOR 8
#define PYELF_MAX_MINOR 14

/*
 * Whether the file (its name: name, for the version before 3.11) holds CPython.
 * 0, -ENOENT (not CPython), -ENOTSUP (a version or build we do not know: the
 * walker stays off for it), or another -errno.
 */
int pyelf_read(Elf *elf, int fd, const char *name, struct py_elf *ret);

/*
 * The address a thread-state key loader loads (x86_64 code of
 * PyGILState_GetThisThreadState, at vaddr pc): the key's int, or 0 when the
 * code is not one of the known shapes. Exposed for tests.
 */
uint64_t pyelf_key_from_code(const uint8_t *code, size_t len, uint64_t pc);

#endif
