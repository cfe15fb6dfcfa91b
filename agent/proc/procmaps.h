/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_PROCMAPS_H
#define AGENT_PROCMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One line of /proc/PID/maps. path points into the caller's buffer. */
struct maps_entry {
	uint64_t start, end, offset;
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	bool exec;
	const char *path;	/* "" for anonymous mappings; NUL-terminated */
};

/*
 * Parses /proc/PID/maps text in place (newlines become NULs). Calls cb for each
 * well-formed line; malformed lines are skipped and counted. Returns the number
 * of malformed lines, or the first negative value cb returned.
 */
int procmaps__parse(char *text, int (*cb)(const struct maps_entry *e, void *ctx), void *ctx);

/* Reads /proc/<pid>/maps (proc_root: "/proc", tests use a temp dir) into a malloc'd
 * NUL-terminated buffer capped at max_bytes. 0 or -errno (-ENOENT when the process is gone). */
int procmaps__read(const char *proc_root, int pid, size_t max_bytes, char **ret_text);

#endif
