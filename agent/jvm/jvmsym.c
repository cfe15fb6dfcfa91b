// SPDX-License-Identifier: Apache-2.0
/* Names of HotSpot code, per process; see jvmsym.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "elfutil.h"
#include "hmap.h"
#include "jvmsym.h"

#define RETRY_NS 1000000000ull		/* a starting VM's tables, again after */
#define RECHECK_NS 5000000000ull	/* the pid still the same process (or still no JVM), after */

enum jstate {
	J_NONE,		/* no JVM (or one we cannot read): not asked again */
	J_RETRY,	/* a JVM still starting: its tables or code cache not there yet */
	J_READY,
};

struct jproc {
	enum jstate state;
	uint64_t start;		/* the process's start time (/proc/PID/stat), for a reused pid */
	uint64_t checked;	/* when state or start were last checked (CLOCK_MONOTONIC ns) */
	uint64_t used;		/* the last lookup: the least recently used goes first */
	bool unsupported;	/* J_NONE for a JVM whose tables lack what we need */
	struct hs_layout l;
	struct hs_heaps h;
};

struct jvmsym {
	pthread_mutex_t lock;
	struct hmap procs;	/* "pid" -> struct jproc */
	struct jvmsym_stats stats;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int peek(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };

	return process_vm_readv(*(int *)ctx, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

struct jvmsym *jvmsym_new(void)
{
	struct jvmsym *js = calloc(1, sizeof(*js));

	if (js)
		pthread_mutex_init(&js->lock, NULL);
	return js;
}

void jvmsym_free(struct jvmsym *js)
{
	if (!js)
		return;
	hmap_for_each(&js->procs, it)
		free(it->val);
	hmap_free(&js->procs);
	pthread_mutex_destroy(&js->lock);
	free(js);
}

/* Field 22 of /proc/PID/stat (after the command, which may hold spaces); 0 if gone. */
static uint64_t start_time(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "re")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	if (!(p = strrchr(buf, ')')))
		return 0;
	/* ") S ppid ..." : state is field 3, starttime field 22 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
		   "%*d %*d %llu", &v) != 1)
		return 0;
	return v;
}

/* The path of pid's libjvm.so (in its root) and its load bias; -ENOENT: none mapped. */
static int find_libjvm(int pid, char *path, size_t len, uint64_t *bias)
{
	char line[4608], mpath[4096], maps[64];
	bool found = false;
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%d/maps", pid);
	if (!(f = fopen(maps, "re")))
		return -ENOENT;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long lo, off;
		size_t n;

		if (sscanf(line, "%llx-%*x %*s %llx %*s %*u %4095[^\n]", &lo, &off, mpath) != 3)
			continue;
		n = strlen(mpath);
		if (n < 10 || strcmp(mpath + n - 10, "/libjvm.so"))
			continue;
		*bias = lo - off;
		found = snprintf(path, len, "/proc/%d/root%s", pid, mpath) < (int)len;
	}
	fclose(f);
	return found ? 0 : -ENOENT;
}

/* What pid is: a JVM to read now, later, or none. Under js->lock (reads of /proc). */
static void probe(struct jvmsym *js, int pid, struct jproc *p)
{
	char path[4200];
	struct hs_syms syms;
	uint64_t bias;
	int fd, err;
	Elf *elf;

	p->state = J_NONE;
	if (find_libjvm(pid, path, sizeof(path), &bias))
		return;
	if (!(elf = elfutil_open(path, &fd)))
		return;
	err = hs_elf_syms(elf, fd, &syms);
	elfutil_close(elf, fd);
	if (err)
		return;
	err = hs_layout_read(peek, &pid, &syms, bias, &p->l);
	if (!err)
		err = hs_heaps_read(peek, &pid, &p->l, &p->h);
	if (!err)
		p->state = J_READY;
	else if (err == -EAGAIN)
		p->state = J_RETRY;
	else if (err == -ENOTSUP || err == -EINVAL) {
		p->unsupported = true;
		js->stats.unsupported++;
	}
}

/* The least recently used process goes, to keep at most JVMSYM_MAX_PROCS. */
static void evict(struct jvmsym *js)
{
	struct hmap_entry *old = NULL;

	hmap_for_each(&js->procs, it)
		if (!old || ((struct jproc *)it->val)->used < ((struct jproc *)old->val)->used)
			old = it;
	if (old)
		free(hmap_del_entry(&js->procs, old));
}

/* pid's entry, made or checked again when due. Under js->lock. */
static struct jproc *proc_of(struct jvmsym *js, int pid)
{
	char key[16];
	struct jproc *p;
	uint64_t now = now_ns(), start;

	snprintf(key, sizeof(key), "%d", pid);
	p = hmap_get(&js->procs, key);
	if (p && now - p->checked < (p->state == J_RETRY ? RETRY_NS : RECHECK_NS))
		return p;
	start = start_time(pid);
	/* the same process, known to run a JVM, or one we cannot read: as it was (one
	 * that ran none may have exec'd a JVM since, under the same pid and start) */
	if (p && p->start == start && (p->state == J_READY || p->unsupported)) {
		p->checked = now;
		return p;
	}
	if (!p) {
		if (js->procs.n >= JVMSYM_MAX_PROCS)
			evict(js);
		if (!(p = calloc(1, sizeof(*p))) || hmap_put(&js->procs, key, p, NULL)) {
			free(p);
			return NULL;
		}
	}
	memset(p, 0, sizeof(*p));
	p->start = start;
	p->checked = now;
	probe(js, pid, p);
	return p;
}

int jvmsym_lookup(struct jvmsym *js, int pid, uint64_t pc, struct hs_frame *ret)
{
	struct jproc *p;
	int err = -ENOENT;

	pthread_mutex_lock(&js->lock);
	p = proc_of(js, pid);
	if (p && p->state == J_READY) {
		p->used = now_ns();
		js->stats.lookups++;
		err = hs_frame_of(peek, &pid, &p->l, &p->h, pc, ret);
		if (!err)
			js->stats.named++;
		else if (err == -EFAULT)
			js->stats.read_errors++;
	}
	pthread_mutex_unlock(&js->lock);
	return err;
}

void jvmsym_forget_pid(struct jvmsym *js, int pid)
{
	char key[16];

	snprintf(key, sizeof(key), "%d", pid);
	pthread_mutex_lock(&js->lock);
	free(hmap_del(&js->procs, key));
	pthread_mutex_unlock(&js->lock);
}

void jvmsym_stats(struct jvmsym *js, struct jvmsym_stats *ret)
{
	pthread_mutex_lock(&js->lock);
	*ret = js->stats;
	ret->jvms = 0;
	hmap_for_each(&js->procs, it)
		ret->jvms += ((struct jproc *)it->val)->state == J_READY;
	pthread_mutex_unlock(&js->lock);
}
