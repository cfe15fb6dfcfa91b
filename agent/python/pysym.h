/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_PYSYM_H
#define AGENT_PYSYM_H

/*
 * Names of Python frames: a code object's qualified name, file and first line,
 * read from the process's memory (process_vm_readv), and the line of an
 * instruction from its line table (3.8/3.9 co_lnotab, 3.10 co_linetable, 3.11+
 * the location table). Cached by (pid, code object address); a process's
 * entries go when it ends or execs. Thread-safe.
 */

#include <stddef.h>
#include <stdint.h>

struct pysym;

struct pysym_frame {
	char name[256];		/* "Class.method" (3.11+), "function" before */
	char file[512];
	int line;		/* of the instruction; the first line when unknown */
};

struct pysym_stats {
	uint64_t lookups, hits, reads, read_errors, evictions;
	uint64_t entries;
};

/* A cache of at most max_entries code objects (0: a default). */
struct pysym *pysym_new(size_t max_entries);
void pysym_free(struct pysym *ps);
/* Process pid runs CPython 3.minor (the unwinder saw its interpreter). */
void pysym_set_pid(struct pysym *ps, int pid, int minor);
/* The process ended: nothing more is read from it; what was read stays for its
 * profile, until its pid is given to another CPython process. */
void pysym_forget_pid(struct pysym *ps, int pid);
/*
 * The frame of code object code at instruction instr (code units, PY_NO_INSTR
 * when unknown) in process pid, copied into ret. 0, or -ENOENT (no
 * CPython known for pid), -EFAULT (unreadable: the process is gone, or the
 * address is not a code object).
 */
int pysym_lookup(struct pysym *ps, int pid, uint64_t code, uint32_t instr,
		 struct pysym_frame *ret);
void pysym_stats(struct pysym *ps, struct pysym_stats *ret);
/*
 * f's name with its module, as the file names it: "module.Class.method" for
 * Class.method in .../module.py (the file's base name, not the dotted path
 * of its package, and not "__main__" for the main script), the package for
 * .../package/__init__.py, X for "<frozen X>"; the bare name when the file
 * names no module ("<string>"). Cut to fit buf (len > 0): sizeof(f->file) +
 * sizeof(f->name) + 1 never cuts.
 */
void pysym_qualified(const struct pysym_frame *f, char *buf, size_t len);

/*
 * The line of instruction instr (code units) from a line table of CPython
 * 3.minor starting at first_line; first_line when the table says nothing.
 * Exposed for tests.
 */
int pysym_line(int minor, const uint8_t *table, size_t len, int first_line, uint32_t instr);

#endif
