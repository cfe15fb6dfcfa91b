/* SPDX-License-Identifier: Apache-2.0 */
#ifndef AGENT_ROOTFS_H
#define AGENT_ROOTFS_H

/*
 * Opening a file inside another process's root file system (/proc/PID/root) the
 * way that process would: every symlink, absolute or climbing with "..", is
 * resolved against that root, never against ours. A plain open() of
 * "/proc/PID/root/usr/lib/debug/x" follows a symlink "x -> /etc/shadow" to the
 * host's /etc/shadow; a container must not be able to point the agent there.
 * /proc/PID/map_files/ links are another matter: they lead to the mapped file
 * itself, and are opened as they are.
 */

/*
 * path inside the directory root_fd, as if root_fd were "/": "..", absolute
 * symlinks and magic links (/proc/self/root) cannot leave it. flags as for
 * open(2) (no O_CREAT). fd or -errno.
 */
int rootfs_openat(int root_fd, const char *path, int flags);
/* The same without openat2(2): what rootfs_openat falls back to (exposed for tests). */
int rootfs_openat_walk(int root_fd, const char *path, int flags);
/*
 * Opens "/proc/<pid>/root/<rest>" with rest resolved inside that root; any other
 * path as open(2) does. fd or -errno. "/proc/self/fd/<n>/<rest>" is confined the
 * same way to the directory our descriptor n holds: a process's root pinned
 * (opened O_PATH) while it lived, so that its files can still be read, and only
 * inside it, after it exits.
 */
int rootfs_open(const char *path, int flags);
/* access(path, R_OK), with a /proc/<pid>/root path resolved as rootfs_open does. 0 or -errno. */
int rootfs_readable(const char *path);

#endif
