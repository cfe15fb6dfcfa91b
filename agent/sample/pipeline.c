// SPDX-License-Identifier: Apache-2.0
#include "pipeline.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "perfmap.h"
#include "jvmsym.h"
#include "v8sym.h"
#include "procs.h"
#include "table_cache.h"
#include "unwinder.h"

/*
 * A process not followed yet that is wanted (run: one of a target's) is
 * followed from now on: its tables load as its image is mapped. Asked at its
 * exec and again at each mmap, since the kernel may note the exec (run's
 * tracepoint) only after user space read the exec record. At its exec it is
 * asked even when followed already (a sample of it came before the exec): the
 * kernel's note is taken and the exec counted; the unwinder re-reads its
 * mappings anyway (unwinder__on_task). Such a process not found wanted at its
 * exec is asked again at its first mmaps (exec_pending): its note may come
 * after user space read the exec record.
 */
static int exec_pending_find(const struct pipeline *pl, int pid)
{
	for (int i = 0; i < PIPELINE_EXEC_PENDING; i++)
		if (pl->exec_pending[i].pid == pid && pl->exec_pending[i].tries > 0)
			return i;
	return -1;
}

static void follow_if_wanted(struct pipeline *pl, int pid, bool at_exec)
{
	int pending = at_exec ? -1 : exec_pending_find(pl, pid);
	bool knows, yes;

	if (!pl->unw || !pl->wanted)
		return;
	knows = unwinder__knows(pl->unw, pid);
	if (knows && !at_exec && pending < 0)
		return;
	yes = pl->wanted(pl->ctx, pid);
	if (pending >= 0)	/* asked again: a few times at most */
		pl->exec_pending[pending].tries = yes ? 0 : pl->exec_pending[pending].tries - 1;
	if (at_exec && !yes) {	/* a known process whose exec the kernel may note later */
		pl->exec_pending[pl->exec_next].pid = pid;
		pl->exec_pending[pl->exec_next].tries = PIPELINE_EXEC_TRIES;
		pl->exec_next = (pl->exec_next + 1) % PIPELINE_EXEC_PENDING;
	}
	if (yes && !knows)
		unwinder__sync_pid(pl->unw, pid, false);
}

static void on_task(void *ctx, const struct task_record *t)
{
	struct pipeline *pl = ctx;
	int i;

	switch (t->ev) {
	case TASK_MMAP:
		procs__on_mmap(pl->procs, t->pid, t->addr, t->len, t->pgoff, t->maj, t->min, t->ino,
			       t->str, t->time);
		follow_if_wanted(pl, t->pid, false);
		break;
	case TASK_EXEC:
		procs__on_exec(pl->procs, t->pid, t->str, t->time);
		/* its JIT's names were the old image's: kept for what it collected */
		if (pl->perfmaps)
			perfmaps__forget_pid(pl->perfmaps, t->pid);
		if (pl->jvmsym)	/* another image: its code cache, if any, is new */
			jvmsym_forget_pid(pl->jvmsym, t->pid);
		if (pl->v8sym)	/* its heap too */
			v8sym_forget_pid(pl->v8sym, t->pid);
		follow_if_wanted(pl, t->pid, true);	/* its mmaps follow */
		break;
	case TASK_FORK:
		procs__on_fork(pl->procs, t->pid, t->ppid, t->time);
		if (pl->jvmsym)	/* a new process under this pid */
			jvmsym_forget_pid(pl->jvmsym, t->pid);
		if (pl->v8sym)
			v8sym_forget_pid(pl->v8sym, t->pid);
		break;
	case TASK_EXIT:
		procs__on_exit(pl->procs, t->pid);
		if (pl->perfmaps)
			perfmaps__forget_pid(pl->perfmaps, t->pid);
		if (pl->jvmsym)	/* its names stay for what it collected */
			jvmsym_exit(pl->jvmsym, t->pid);
		if ((i = exec_pending_find(pl, t->pid)) >= 0)
			pl->exec_pending[i].tries = 0;
		break;
	}
	unwinder__on_task(pl->unw, t->ev, t->pid, t->ppid);
}

static void on_tasks_drained(void *ctx)
{
	struct pipeline *pl = ctx;

	if (pl->unw)
		unwinder__sync_dirty(pl->unw);
}

static int on_sample(void *ctx, const struct sample_event *e)
{
	struct pipeline *pl = ctx;

	unwinder__on_sample(pl->unw, (int)e->pid, e->flags, procs__alive(pl->procs, (int)e->pid));
	return pl->consume(pl->ctx, e);
}

void pipeline_bind(struct pipeline *pl, struct sampler_opts *so)
{
	so->on_sample = on_sample;
	so->on_task = on_task;
	so->on_tasks_drained = on_tasks_drained;
	so->ctx = pl;
}

int pipeline_start_unwinder(struct pipeline *pl, struct sampler *s)
{
	struct unwinder_opts uo = { 0 };
	int mfd, rfd;
	uint32_t cap;

	if (!sampler__kernel(s)->dwarf)
		return 0;
	if (pl->table_cache_dir) {
		pl->cache = table_cache_open(pl->table_cache_dir, 0);
		if (!pl->cache)
			log_warn("unwind table cache %s: %s: tables are compiled at every start",
				 pl->table_cache_dir, strerror(errno));
	}
	uo.cache = pl->cache;
	uo.py_procs_fd = sampler__py_procs_fd(s);
	uo.python = uo.py_procs_fd >= 0;
	uo.pysym = pl->pysym;
	uo.jvm_procs_fd = sampler__jvm_procs_fd(s);
	uo.jvmsym = pl->jvmsym;
	uo.v8_procs_fd = sampler__v8_procs_fd(s);
	uo.v8 = uo.v8_procs_fd >= 0;
	uo.v8sym = pl->v8sym;
	sampler__unwind_fds(s, &mfd, &rfd, &cap);
	pl->unw = unwinder__new(mfd, rfd, cap, pl->procs, &uo);
	if (!pl->unw)
		return -ENOMEM;
	/* a table built by the unwinder's worker is placed at the drain it wakes */
	return sampler__watch_fd(s, unwinder__wake_fd(pl->unw));
}

void pipeline_free(struct pipeline *pl)
{
	unwinder__free(pl->unw);
	table_cache_close(pl->cache);
	pl->unw = NULL;
	pl->cache = NULL;
}
