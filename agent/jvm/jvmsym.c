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

#define RETRY_NS 1000000000ull		/* a starting VM's heaps, again after */
#define MAX_RETRIES 60			/* ... at most this many times */
#define RECHECK_NS 5000000000ull	/* the pid still the same process (or still no JVM), after */

enum jstate {
	J_NONE,		/* no JVM (or one we cannot read) */
	J_RETRY,	/* a JVM still starting: its tables or code cache not there yet */
	J_READY,
};

struct jproc {
	enum jstate state;
	uint64_t gen;		/* this process image's: its names' keys carry it */
	uint64_t start;		/* the process's start time (/proc/PID/stat), for a reused pid */
	uint64_t checked;	/* when state or start were last checked (CLOCK_MONOTONIC ns) */
	uint64_t used;		/* the last access: the least recently used goes first */
	bool gone;		/* exited: nothing more is read, its names stay */
	bool unsupported;	/* a JVM whose tables lack what we need: not read again */
	bool have_layout;	/* syms, bias and l are read: a retry reads only the heaps */
	int retries;
	struct hs_syms syms;
	uint64_t bias;
	struct hs_layout l;
	struct hs_heaps h;
};

/* A cached jvmsym_frames, its strings on the heap. */
struct jname {
	enum hs_kind kind;
	int n;
	struct {
		char *name, *system_name, *file;
		int line;
	} f[];
};

struct jvmsym {
	pthread_mutex_t lock;
	struct hmap procs;	/* "pid" -> struct jproc */
	struct hmap names;	/* "pid:gen:what:addr:aux" -> struct jname */
	uint64_t next_gen;
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

static void jname_free(struct jname *n)
{
	if (!n)
		return;
	for (int i = 0; i < n->n; i++) {
		free(n->f[i].name);
		free(n->f[i].system_name);
		free(n->f[i].file);
	}
	free(n);
}

static void names_clear(struct jvmsym *js)
{
	hmap_for_each(&js->names, it)
		jname_free(it->val);
	hmap_free(&js->names);
}

void jvmsym_free(struct jvmsym *js)
{
	if (!js)
		return;
	hmap_for_each(&js->procs, it)
		free(it->val);
	hmap_free(&js->procs);
	names_clear(js);
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

/*
 * pid's libjvm.so and its load bias: the mapped file itself (map_files: the
 * path in maps is as our root sees it, which is not the process's when it runs
 * under chroot, and may be "(deleted)" after an upgrade), or the path in its
 * root where map_files cannot be opened. -ENOENT: none mapped.
 */
static int find_libjvm(int pid, char *path, size_t len, char *alt, size_t alt_len, uint64_t *bias)
{
	char line[4608], mpath[4096], maps[64];
	bool found = false;
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%d/maps", pid);
	if (!(f = fopen(maps, "re")))
		return -ENOENT;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, off;
		size_t n;

		if (sscanf(line, "%llx-%llx %*s %llx %*s %*u %4095[^\n]", &lo, &hi, &off, mpath) != 4)
			continue;
		n = strlen(mpath);
		if (n > 10 && !strcmp(mpath + n - 10, " (deleted)"))
			mpath[n -= 10] = 0;
		if (n < 10 || strcmp(mpath + n - 10, "/libjvm.so"))
			continue;
		*bias = lo - off;
		snprintf(path, len, "/proc/%d/map_files/%llx-%llx", pid, lo, hi);
		found = snprintf(alt, alt_len, "/proc/%d/root%s", pid, mpath) < (int)alt_len;
	}
	fclose(f);
	return found ? 0 : -ENOENT;
}

/* The VM's symbols and layout, read once. 0 or -errno (hs_layout_read's). */
static int read_layout(int pid, struct jproc *p)
{
	char path[64], alt[4200];
	int fd, err;
	Elf *elf;

	if (find_libjvm(pid, path, sizeof(path), alt, sizeof(alt), &p->bias))
		return -ENOENT;
	if (!(elf = elfutil_open(path, &fd)) && !(elf = elfutil_open(alt, &fd)))
		return -ENOENT;
	err = hs_elf_syms(elf, fd, &p->syms);
	elfutil_close(elf, fd);
	if (err)
		return -ENOTSUP;	/* a libjvm.so without HotSpot's tables (OpenJ9): not again */
	err = hs_layout_read(peek, &pid, &p->syms, p->bias, &p->l);
	p->have_layout = !err;
	return err;
}

/* What pid is: a JVM to read now, later, or none. Under js->lock (reads of /proc). */
static void probe(struct jvmsym *js, int pid, struct jproc *p)
{
	int err = p->have_layout ? 0 : read_layout(pid, p);

	if (!err)
		err = hs_heaps_read(peek, &pid, &p->l, &p->h);
	p->state = !err ? J_READY : J_NONE;
	if (err == -EAGAIN && p->retries++ < MAX_RETRIES)
		p->state = J_RETRY;
	else if (err == -ENOTSUP || err == -EINVAL || err == -EAGAIN) {
		p->unsupported = true;	/* or never ready: not read again */
		js->stats.unsupported++;
	}
}

/* The least recently used process goes, to keep at most JVMSYM_MAX_PROCS. */
static void evict(struct jvmsym *js)
{
	struct hmap_entry *old = NULL;

	/* processes that run no JVM go before those that do */
	hmap_for_each(&js->procs, it) {
		const struct jproc *p = it->val, *o = old ? old->val : NULL;

		if (!o || (p->state != J_READY && o->state == J_READY) ||
		    ((p->state == J_READY) == (o->state == J_READY) && p->used < o->used))
			old = it;
	}
	if (old)
		free(hmap_del_entry(&js->procs, old));
}

/* pid's entry, made or checked again when due; NULL when out of memory. Under js->lock. */
static struct jproc *proc_of(struct jvmsym *js, int pid)
{
	char key[16];
	struct jproc *p;
	uint64_t now = now_ns(), start;

	snprintf(key, sizeof(key), "%d", pid);
	p = hmap_get(&js->procs, key);
	if (p)
		p->used = now;
	if (p && (p->gone || now - p->checked < (p->state == J_RETRY ? RETRY_NS : RECHECK_NS)))
		return p;
	start = start_time(pid);
	if (p && p->start == start) {
		p->checked = now;
		/* a JVM, or one we cannot read: as it was; one still starting: again; one
		 * that ran none may have exec'd one since (the same pid and start) */
		if (p->state != J_READY && !p->unsupported)
			probe(js, pid, p);
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
	memset(p, 0, sizeof(*p));	/* a new process under this pid: its names are new */
	p->gen = ++js->next_gen;
	p->start = start;
	p->checked = p->used = now;
	probe(js, pid, p);
	return p;
}

/* Frames read now into the cache (all dropped when full). Under js->lock. */
static void name_keep(struct jvmsym *js, const char *key, const struct jvmsym_frames *fr)
{
	struct jname *n;

	if (js->names.n >= JVMSYM_MAX_NAMES) {
		js->stats.names_dropped += js->names.n;
		names_clear(js);
	}
	n = calloc(1, sizeof(*n) + (size_t)fr->n * sizeof(n->f[0]));
	if (!n) {
		js->stats.names_dropped++;	/* read again when asked again */
		return;
	}
	n->kind = fr->kind;
	for (; n->n < fr->n; n->n++) {
		const struct jvmsym_frame *f = &fr->f[n->n];

		n->f[n->n].line = f->line;
		if (!(n->f[n->n].name = strdup(f->name)) ||
		    !(n->f[n->n].system_name = strdup(f->system_name)) ||
		    !(n->f[n->n].file = strdup(f->file))) {
			n->n++;
			jname_free(n);
			js->stats.names_dropped++;
			return;
		}
	}
	if (hmap_put(&js->names, key, n, NULL)) {
		jname_free(n);
		js->stats.names_dropped++;
	}
}

static void names_get(const struct jname *n, struct jvmsym_frames *ret)
{
	ret->kind = n->kind;
	ret->n = n->n;
	for (int i = 0; i < n->n; i++) {
		snprintf(ret->f[i].name, sizeof(ret->f[i].name), "%s", n->f[i].name);
		snprintf(ret->f[i].system_name, sizeof(ret->f[i].system_name), "%s",
			 n->f[i].system_name);
		snprintf(ret->f[i].file, sizeof(ret->f[i].file), "%s", n->f[i].file);
		ret->f[i].line = n->f[i].line;
	}
}

/* One frame of ret from what hotspot.h read, at line. */
static void frame_put(struct jvmsym_frames *ret, const struct hs_frame *f, int line)
{
	struct jvmsym_frame *o = &ret->f[ret->n++];

	hs_frame_name(f, o->name, sizeof(o->name));
	o->system_name[0] = 0;
	if (f->method[0])
		hs_frame_signature(f, o->system_name, sizeof(o->system_name));
	snprintf(o->file, sizeof(o->file), "%s", f->file);
	o->line = line;
}

/*
 * A compiled frame's Java frames: the methods inlined at pc, then its own; its
 * own alone when the scopes cannot be read. Under js->lock.
 */
static void compiled_frames(struct jvmsym *js, int pid, const struct jproc *p,
			    const struct hs_frame *f, uint64_t pc, struct jvmsym_frames *ret)
{
	struct hs_scope sc[HS_MAX_SCOPES];
	struct hs_frame m;
	int cut = 0, n = p->l.scopes == HS_SCOPES_NONE ? -ENOTSUP :
		hs_scopes(peek, &pid, &p->l, f, pc, sc, HS_MAX_SCOPES, &cut);

	if (n <= 0) {
		if (n != -ENOTSUP && n != 0)
			js->stats.scope_errors++;
		frame_put(ret, f, 0);
		return;
	}
	js->stats.inlined_cut += (uint64_t)cut;
	for (int i = 0; i < n; i++) {
		int line = hs_line(peek, &pid, &p->l, sc[i].method, sc[i].bci);

		if (i == n - 1) {
			frame_put(ret, f, line);	/* its own: hs_scopes checked the method */
		} else if (!hs_method(peek, &pid, &p->l, sc[i].method, &m)) {
			frame_put(ret, &m, line);
			js->stats.inlined++;
		} else {
			js->stats.scope_errors++;	/* an inlined method unreadable: left out */
		}
	}
}

/* The VM's frames at addr, read now. Under js->lock. */
static int frames_read(struct jvmsym *js, int pid, const struct jproc *p, uint64_t addr,
		       enum jvmsym_what what, uint32_t aux, struct jvmsym_frames *ret)
{
	struct hs_frame f;
	int err;

	js->stats.lookups++;
	ret->n = 0;
	err = what == JVMSYM_METHOD ? hs_method(peek, &pid, &p->l, addr, &f) :
				      hs_frame_of(peek, &pid, &p->l, &p->h, addr, &f);
	if (err == -EFAULT)
		js->stats.read_errors++;
	if (err)
		return err;
	if (aux && what == JVMSYM_CODE && (uint32_t)f.compile_id != aux) {
		js->stats.recycled++;	/* the sampled nmethod was freed, its space reused */
		return -ESTALE;
	}
	ret->kind = f.kind;
	if (what == JVMSYM_METHOD) {
		int bci = hs_bci(peek, &pid, &p->l, addr, aux);

		frame_put(ret, &f, bci >= 0 ? hs_line(peek, &pid, &p->l, addr, bci) : 0);
	} else if (f.kind == HS_COMPILED && f.method[0]) {
		compiled_frames(js, pid, p, &f, addr, ret);
	} else {
		frame_put(ret, &f, 0);
	}
	for (int i = 0; i < ret->n; i++)
		js->stats.no_line += ret->f[i].line == 0 && ret->f[i].system_name[0];
	return 0;
}

int jvmsym_frames(struct jvmsym *js, int pid, uint64_t addr, enum jvmsym_what what, uint32_t aux,
		  struct jvmsym_frames *ret)
{
	char key[96];
	struct jproc *p;
	struct jname *n;
	int err = -ENOENT;

	ret->n = 0;
	pthread_mutex_lock(&js->lock);
	p = proc_of(js, pid);
	if (!p)
		goto out;
	snprintf(key, sizeof(key), "%d:%" PRIu64 ":%d:%" PRIx64 ":%u", pid, p->gen, (int)what, addr,
		 aux);
	if ((n = hmap_get(&js->names, key))) {
		js->stats.hits++;
		names_get(n, ret);
		err = 0;
		goto out;
	}
	if (p->gone || p->state != J_READY || (err = frames_read(js, pid, p, addr, what, aux, ret)))
		goto out;
	js->stats.named++;
	name_keep(js, key, ret);
out:
	pthread_mutex_unlock(&js->lock);
	return err;
}

int jvmsym_layout(struct jvmsym *js, int pid, struct hs_layout *l, struct hs_heaps *h)
{
	struct jproc *p;
	int err = -ENOENT;

	pthread_mutex_lock(&js->lock);
	p = proc_of(js, pid);
	if (p && !p->gone && p->state == J_READY) {
		*l = p->l;
		*h = p->h;
		err = 0;
	} else if (p && !p->gone && p->state == J_RETRY) {
		err = -EAGAIN;
	}
	pthread_mutex_unlock(&js->lock);
	return err;
}

void jvmsym_exit(struct jvmsym *js, int pid)
{
	char key[16];
	struct jproc *p;

	snprintf(key, sizeof(key), "%d", pid);
	pthread_mutex_lock(&js->lock);
	if ((p = hmap_get(&js->procs, key)))
		p->gone = true;
	pthread_mutex_unlock(&js->lock);
}

void jvmsym_forget_pid(struct jvmsym *js, int pid)
{
	char key[16];

	snprintf(key, sizeof(key), "%d", pid);
	pthread_mutex_lock(&js->lock);
	free(hmap_del(&js->procs, key));	/* its names' generation is never asked for again */
	pthread_mutex_unlock(&js->lock);
}

void jvmsym_stats(struct jvmsym *js, struct jvmsym_stats *ret)
{
	pthread_mutex_lock(&js->lock);
	*ret = js->stats;
	ret->jvms = 0;
	hmap_for_each(&js->procs, it)
		ret->jvms += ((struct jproc *)it->val)->state == J_READY &&
			     !((struct jproc *)it->val)->gone;
	pthread_mutex_unlock(&js->lock);
}
