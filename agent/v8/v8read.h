/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_V8READ_H
#define AGENT_V8READ_H

/*
 * Reading a V8 process's heap from outside (process_vm_readv), for v8sym.c and
 * v8code.c: tagged words, Smis, an object's fields and instance type.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "v8elf.h"

/* What one lookup reads: a process's memory with its layout. */
struct reader {
	int pid;
	const struct v8_elf *l;
};

static inline int v8_peek(int pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };

	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

/* A tagged pointer to a heap object (tag 01 on x86_64). */
static inline bool v8_heap_object(uint64_t v)
{
	return (v & 3) == 1 && v > 4096;
}

static inline bool v8_is_smi(uint64_t v)
{
	return !(v & 1);
}

static inline int64_t v8_smi(const struct reader *r, uint64_t v)
{
	return (int64_t)v >> r->l->proc.smi_shift;
}

/* A tagged field of the object at tagged obj. */
static inline int v8_field(const struct reader *r, uint64_t obj, uint16_t off, uint64_t *v)
{
	if (!v8_heap_object(obj) || off == V8ELF_NONE)
		return -EFAULT;
	return v8_peek(r->pid, obj - 1 + off, v, 8);
}

/* The instance type of the heap object obj; -1 when it is not one. */
static inline int v8_type_of(const struct reader *r, uint64_t obj)
{
	uint64_t map;
	uint16_t t;

	if (v8_field(r, obj, r->l->proc.map, &map) || !v8_heap_object(map) ||
	    v8_peek(r->pid, map - 1 + r->l->proc.map_instance_type, &t, 2))
		return -1;
	return t;
}

#endif
