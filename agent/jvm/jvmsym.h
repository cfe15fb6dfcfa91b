/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_JVMSYM_H
#define AGENT_JVMSYM_H

/*
 * Names of code in HotSpot JVMs' code caches, read from the processes' memory
 * (process_vm_readv) with the layout of hotspot.h: compiled Java methods and
 * interpreted frames' methods as "pkg.Class.method" with their signature, source
 * file and line, the methods a compiled frame inlined as frames of their own, the
 * interpreter and stubs by their blob's name. A process is found to
 * be a JVM by its libjvm.so mapping (the file read in the process's own root for
 * its exported symbols); its layout is read once, its code heaps again while the
 * VM is still starting (at most once a second, for a minute).
 *
 * Names are cached by (process, address): asked for when a stack is first seen
 * (the process alive, the code where it was), they are there when the profile is
 * built, after the process exited. Bounded: JVMSYM_MAX_PROCS processes (the least
 * recently used forgotten first) and JVMSYM_MAX_NAMES names (all dropped when
 * full, counted). Thread-safe.
 */

#include <stddef.h>
#include <stdint.h>

#include "hotspot.h"

#define JVMSYM_MAX_PROCS 1024
#define JVMSYM_MAX_NAMES 32768

struct jvmsym;

/* What an address is: code (compiled, a stub, the interpreter) or a Method*. */
enum jvmsym_what {
	JVMSYM_CODE = 0,
	JVMSYM_METHOD = 1,
};

struct jvmsym_stats {
	uint64_t lookups;	/* addresses asked for in processes that run a JVM, not cached */
	uint64_t hits;		/* ... found in the cache */
	uint64_t named;		/* ... read and named */
	uint64_t read_errors;	/* a blob or method unreadable (freed under us, a process gone) */
	uint64_t recycled;	/* a compiled frame whose code was another compile's by then */
	uint64_t inlined;	/* frames of methods inlined into a compiled frame, named */
	uint64_t inlined_cut;	/* ... left out: deeper than JVMSYM_MAX_FRAMES */
	uint64_t scope_errors;	/* compiled frames whose inlined methods (or one) could not be read */
	uint64_t no_line;	/* Java frames named without a line (no debug information there) */
	uint64_t unsupported;	/* JVMs whose tables lack what the symbolizer needs */
	uint64_t names_dropped;	/* names dropped because the cache was full */
	uint64_t jvms;		/* processes known to run a JVM now */
};

struct jvmsym *jvmsym_new(void);
void jvmsym_free(struct jvmsym *js);
#define JVMSYM_MAX_FRAMES HS_MAX_SCOPES

/* One Java frame, or a stub named "[jvm] BLOB"; a string longer than its field is cut. */
struct jvmsym_frame {
	char name[384];		/* "pkg.Class.method" */
	char system_name[640];	/* "pkg.Class.method(signature)"; "" when the same as name */
	char file[128];		/* "Class.java"; "" when the class names none */
	int line;		/* > 0; 0 when unknown */
};

/* The frames one sampled frame stands for: methods inlined into it first. */
struct jvmsym_frames {
	int n;
	enum hs_kind kind;
	struct jvmsym_frame f[JVMSYM_MAX_FRAMES];
};

/*
 * The frames at address addr (what) of process pid. aux: for code, the compile
 * id that was sampled (0 when unknown); for a Method*, the low 30 bits of the
 * frame's bytecode pointer (0 when unknown). 0; -ENOENT: pid runs no JVM we can
 * read, or addr is not in its code cache; -EFAULT: not readable now (counted);
 * -ESTALE: the code at addr is no longer the compile aux says it was (counted).
 * A compiled frame whose inlined methods cannot be read is its own method alone.
 */
int jvmsym_frames(struct jvmsym *js, int pid, uint64_t addr, enum jvmsym_what what, uint32_t aux,
		  struct jvmsym_frames *ret);
/*
 * pid's VM layout and code heaps, for the BPF walker: 0; -EAGAIN while the VM is
 * starting (ask again later); -ENOENT: pid runs no JVM we can read.
 */
int jvmsym_layout(struct jvmsym *js, int pid, struct hs_layout *l, struct hs_heaps *h);
/* The process exited: nothing more is read from it; its names stay for its profile. */
void jvmsym_exit(struct jvmsym *js, int pid);
/* pid is another image (exec) or another process (fork): what was known of it goes. */
void jvmsym_forget_pid(struct jvmsym *js, int pid);
void jvmsym_stats(struct jvmsym *js, struct jvmsym_stats *ret);

#endif
