/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_JVMSYM_H
#define AGENT_JVMSYM_H

/*
 * Names of code in HotSpot JVMs' code caches, read from the processes' memory
 * (process_vm_readv) with the layout of hotspot.h: compiled Java methods as
 * "pkg.Class.method", the interpreter and stubs by their blob's name. A process
 * is found to be a JVM by its libjvm.so mapping (the file read in the process's
 * own root for its exported symbols); its layout and heaps are read once, again
 * while the VM is still starting. Bounded: at most JVMSYM_MAX_PROCS processes
 * known at once, the oldest forgotten first. Thread-safe.
 */

#include <stdint.h>

#include "hotspot.h"

#define JVMSYM_MAX_PROCS 1024

struct jvmsym;

struct jvmsym_stats {
	uint64_t lookups;	/* addresses asked for in processes that run a JVM */
	uint64_t named;		/* ... that were named */
	uint64_t read_errors;	/* a blob or method unreadable (freed under us, a process gone) */
	uint64_t unsupported;	/* JVMs whose tables lack what the symbolizer needs */
	uint64_t jvms;		/* processes known to run a JVM now */
};

struct jvmsym *jvmsym_new(void);
void jvmsym_free(struct jvmsym *js);
/*
 * What code address pc of process pid is. 0 with ret filled; -ENOENT: pid runs no
 * JVM we can read, or pc is not in its code cache; -EFAULT: in its code cache
 * but not readable now (counted).
 */
int jvmsym_lookup(struct jvmsym *js, int pid, uint64_t pc, struct hs_frame *ret);
/* The process ended or exec'd: what was known of pid goes. */
void jvmsym_forget_pid(struct jvmsym *js, int pid);
void jvmsym_stats(struct jvmsym *js, struct jvmsym_stats *ret);

#endif
