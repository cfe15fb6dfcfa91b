/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_KSYMS_H
#define AGENT_KSYMS_H

#include <stdint.h>

struct ksym {
	uint64_t addr;
	const char *name;
	const char *module;	/* NULL for vmlinux */
};

struct ksyms;

/*
 * Loads kernel text symbols from a kallsyms file (NULL = /proc/kallsyms).
 * NULL with errno set on failure; EPERM when every address reads as zero
 * (kptr_restrict hides them from us).
 */
struct ksyms *ksyms__load(const char *path);
void ksyms__free(struct ksyms *k);
/* The symbol with the greatest address <= addr, or NULL. */
const struct ksym *ksyms__find(const struct ksyms *k, uint64_t addr);
uint32_t ksyms__count(const struct ksyms *k);

#endif
