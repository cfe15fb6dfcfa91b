// SPDX-License-Identifier: Apache-2.0
#include "aggregate.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "elfsym.h"
#include "jvmsym.h"
#include "ksyms.h"
#include "log.h"
#include "perfmap.h"
#include "procs.h"
#include "profile.h"
#include "pysym.h"
#include "v8sym.h"

struct stack {
	struct stack *next;
	uint64_t hash;
	int64_t count;
	int64_t cpu_ns;		/* sum of the CPU time each sample stands for */
	uint32_t pid, tid;
	char comm[PROFLEET_COMM_LEN], pcomm[PROFLEET_COMM_LEN];
	uint16_t nk, nu;
	bool walkers;		/* some user frame is an interpreter's: aux and kinds follow */
	/*
	 * nk kernel addresses, nu user addresses (a Python frame's is its code
	 * object), then nu mapping ids (u32); with walkers, nu walker values (u32:
	 * a Python frame's instruction) and nu walker kinds (u8, enum walker)
	 */
	uint64_t frames[];
};

struct agg {
	struct agg_budget *budget;	/* shared with other aggregates; NULL = none */
	struct procs *procs;
	struct symcache *sc;
	struct pysym *pysym;
	struct perfmaps *perfmaps;	/* names of JIT code (agg_opts.perfmaps) */
	struct jvmsym *jvmsym;		/* names of HotSpot code (agg_opts.jvmsym) */
	struct v8sym *v8sym;		/* names of JavaScript functions (agg_opts.v8sym) */
	struct stack **buckets;
	uint32_t nbuckets;
	uint32_t max_stacks;
	uint64_t max_bytes, bytes;
	uint8_t *touched;	/* mapping ids whose file we already opened */
	uint32_t ntouched;
	bool kernel_addresses;	/* agg_opts.kernel_addresses */
	struct agg_stats stats;
};

static size_t stack_size(uint32_t nk, uint32_t nu, bool walkers)
{
	return sizeof(struct stack) + (nk + nu) * sizeof(uint64_t) + nu * sizeof(uint32_t) +
	       (walkers ? nu * (sizeof(uint32_t) + 1) : 0);
}

static uint32_t *stack_ids(struct stack *s)
{
	return (uint32_t *)(s->frames + s->nk + s->nu);
}

static uint32_t *stack_aux(struct stack *s)
{
	return stack_ids(s) + s->nu;
}

static uint8_t *stack_kinds(struct stack *s)
{
	return (uint8_t *)(stack_aux(s) + s->nu);
}

struct agg *agg__new(const struct agg_opts *opts, struct procs *procs, struct symcache *sc)
{
	struct agg *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->procs = procs;
	a->sc = sc;
	a->max_stacks = opts && opts->max_stacks ? opts->max_stacks : 1u << 20;
	a->max_bytes = opts && opts->max_bytes ? opts->max_bytes : 256ull << 20;
	a->budget = opts ? opts->budget : NULL;
	a->kernel_addresses = opts && opts->kernel_addresses;
	a->pysym = opts ? opts->pysym : NULL;
	a->perfmaps = opts ? opts->perfmaps : NULL;
	a->jvmsym = opts ? opts->jvmsym : NULL;
	a->v8sym = opts ? opts->v8sym : NULL;
	a->nbuckets = 4096;
	a->buckets = calloc(a->nbuckets, sizeof(*a->buckets));
	if (!a->buckets) {
		free(a);
		errno = ENOMEM;
		return NULL;
	}
	return a;
}

void agg__reset(struct agg *a)
{
	for (uint32_t i = 0; i < a->nbuckets; i++) {
		struct stack *s = a->buckets[i], *next;

		for (; s; s = next) {
			next = s->next;
			free(s);
		}
		a->buckets[i] = NULL;
	}
	if (a->budget)
		a->budget->used -= a->bytes;
	a->bytes = 0;
	a->stats.stacks = 0;
	/* mapping ids may be given to other mappings once no aggregate holds them */
	if (a->touched)
		memset(a->touched, 0, a->ntouched);
}

void agg__free(struct agg *a)
{
	if (!a)
		return;
	agg__reset(a);
	free(a->buckets);
	free(a->touched);
	free(a);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

static int rehash(struct agg *a)
{
	uint32_t n = a->nbuckets * 2;
	struct stack **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < a->nbuckets; i++) {
		struct stack *s = a->buckets[i], *next;

		for (; s; s = next) {
			next = s->next;
			s->next = b[s->hash & (n - 1)];
			b[s->hash & (n - 1)] = s;
		}
	}
	free(a->buckets);
	a->buckets = b;
	a->nbuckets = n;
	return 0;
}


static struct elfobj *mapping_obj(struct agg *a, const struct mapping *m)
{
	char path[4200];

	if (!m || !a->sc)
		return NULL;
	/* no path to the file any more (its process is gone): what was read while it lived */
	if (procs__mapping_path(m, m->pid, procs__alive(a->procs, m->pid), path, sizeof(path)))
		return symcache__find(a->sc, m->dev, m->ino);
	return symcache__get(a->sc, path, m->path, m->dev, m->ino);
}

#define TOUCHED_JIT 2	/* in touched: anonymous memory, named from its process's perf map */

/*
 * Opens a mapping's file the first time a sample (of process pid) lands in
 * it, while its process lives. JIT code (anonymous memory) has no file: the
 * sample's process's perf map is looked at instead, at every sample there, at
 * most once a second per process (perfmaps__refresh; a process not seen yet
 * at once), so that code compiled since is named even if the process ends
 * before the profile is built. One mapping id can stand for several
 * processes' anonymous memory at one address (forked children): the map of
 * the process that mapped it last is looked at too, for code inherited
 * across a fork that the child's own map does not name (jit_name).
 */
static void touch_mapping(struct agg *a, uint32_t id, int pid)
{
	const struct mapping *m;
	char path[4200];

	if (id >= a->ntouched) {
		uint32_t n = a->ntouched ? a->ntouched : 1024;
		uint8_t *t;

		while (n <= id)
			n *= 2;
		t = realloc(a->touched, n);
		if (!t)
			return;
		memset(t + a->ntouched, 0, n - a->ntouched);
		a->touched = t;
		a->ntouched = n;
	}
	if (a->touched[id] == 1)
		return;
	m = procs__mapping(a->procs, id);
	if (m && a->perfmaps && perfmap_anon(m->path)) {
		a->touched[id] = TOUCHED_JIT;
		perfmaps__refresh(a->perfmaps, pid);
		if (m->pid != pid)
			perfmaps__refresh(a->perfmaps, m->pid);
		return;
	}
	a->touched[id] = 1;
	/* opened now, read on the symbol cache's loader thread: not on the drain; when
	 * the loader has too many already, asked again at the mapping's next sample */
	if (m && a->sc && procs__mapping_path(m, m->pid, true, path, sizeof(path)) == 0 &&
	    symcache__prefetch(a->sc, path, m->path, m->dev, m->ino) == -EAGAIN)
		a->touched[id] = 0;
}

/* A sample's stack as it is counted: frames, the mapping of each user frame, a hash. */
struct skey {
	uint64_t frames[PROFLEET_MAX_STACK * 2];	/* kernel, then user */
	uint32_t ids[PROFLEET_MAX_STACK];		/* the user frames' mappings */
	uint32_t aux[PROFLEET_MAX_STACK];		/* the user frames' walker values */
	uint8_t kinds[PROFLEET_MAX_STACK];		/* the user frames' walkers */
	bool walkers;					/* some kind is not WALKER_NATIVE */
	uint32_t nk, nu;
	uint64_t hash;
};

/*
 * Who names a user frame: its walker's symbolizer, or (WALKER_NATIVE) its
 * mapping. V8's typed frames (entry, exit, stubs) are code like any other.
 */
static uint8_t walked_kind(uint8_t kind, uint32_t aux)
{
	if (kind == WALKER_PYTHON || kind == WALKER_JVM)
		return kind;
	if (kind == WALKER_V8 && aux >> V8_KIND_SHIFT != V8_STUB)
		return kind;
	return WALKER_NATIVE;
}

/* Counts the sample's stack errors, resolves its user frames, hashes the key. */
static void sample_key(struct agg *a, const struct sample_event *e, struct skey *k)
{
	uint64_t h = 0;

	if (e->kstack_status == STACK_ERR_FAULT)
		a->stats.kstack_errors++;
	if (e->ustack_status == STACK_ERR_FAULT)
		a->stats.ustack_errors++;
	if (e->ustack_status == STACK_TRUNCATED)
		a->stats.ustack_truncated++;
	k->nk = e->kstack_len <= 0 ? 0 : e->kstack_len > PROFLEET_MAX_STACK ?
			PROFLEET_MAX_STACK : (uint32_t)e->kstack_len;
	k->nu = e->ustack_len <= 0 ? 0 : e->ustack_len > PROFLEET_MAX_STACK ?
			PROFLEET_MAX_STACK : (uint32_t)e->ustack_len;
	memcpy(k->frames, e->kstack, k->nk * sizeof(uint64_t));
	memcpy(k->frames + k->nk, e->ustack, k->nu * sizeof(uint64_t));
	k->walkers = false;
	for (uint32_t i = 0; i < k->nu; i++) {
		k->kinds[i] = walked_kind(e->ukind[i], e->uaux[i]);
		k->aux[i] = k->kinds[i] == WALKER_NATIVE ? 0 : e->uaux[i];
		if (k->kinds[i] != WALKER_NATIVE) {	/* no mapping: named by its walker's symbolizer */
			k->ids[i] = PROCS_NO_MAPPING;
			k->walkers = true;
			continue;
		}
		if (procs__resolve(a->procs, (int)e->pid, e->ustack[i], &k->ids[i])) {
			k->ids[i] = PROCS_NO_MAPPING;
			if (a->stats.frames_unmapped++ < 20)
				log_debug("pid %u: no mapping for user frame %u at 0x%" PRIx64, e->pid, i,
					  (uint64_t)e->ustack[i]);
		} else {
			touch_mapping(a, k->ids[i], (int)e->pid);
		}
	}
	h = mix(mix(h, e->pid), e->tid);
	h = mix(h, k->nk | (uint64_t)k->nu << 16);
	for (uint32_t i = 0; i < k->nk + k->nu; i++)
		h = mix(h, k->frames[i]);
	for (uint32_t i = 0; i < k->nu; i++)
		h = mix(h, k->ids[i]);
	for (uint32_t i = 0; k->walkers && i < k->nu; i++)
		h = mix(h, k->aux[i] | (uint64_t)k->kinds[i] << 32);
	for (size_t i = 0; i < sizeof(e->comm); i++)
		h = mix(h, (uint64_t)(unsigned char)e->comm[i] | (uint64_t)(unsigned char)e->pcomm[i] << 8);
	k->hash = h;
}

static struct stack *stack_find(const struct agg *a, const struct sample_event *e,
				const struct skey *k)
{
	for (struct stack *s = a->buckets[k->hash & (a->nbuckets - 1)]; s; s = s->next) {
		if (s->hash == k->hash && s->pid == e->pid && s->tid == e->tid && s->nk == k->nk &&
		    s->nu == k->nu &&
		    !memcmp(s->frames, k->frames, (k->nk + k->nu) * sizeof(uint64_t)) &&
		    !memcmp(stack_ids(s), k->ids, k->nu * sizeof(uint32_t)) &&
		    s->walkers == k->walkers &&
		    (!k->walkers || (!memcmp(stack_aux(s), k->aux, k->nu * sizeof(uint32_t)) &&
				     !memcmp(stack_kinds(s), k->kinds, k->nu))) &&
		    !strncmp(s->comm, e->comm, sizeof(s->comm)) &&
		    !strncmp(s->pcomm, e->pcomm, sizeof(s->pcomm)))
			return s;
	}
	return NULL;
}

/* The frames of a frame the JVM walker put in a sample (its uaux says what ustack is). */
static int jvm_frames(struct agg *a, int pid, uint64_t addr, uint32_t aux,
		      struct jvmsym_frames *ret)
{
	uint32_t kind = aux >> JVM_KIND_SHIFT;

	return jvmsym_frames(a->jvmsym, pid, addr,
			     kind == JVM_INTERPRETED ? JVMSYM_METHOD : JVMSYM_CODE,
			     kind == JVM_STUB ? 0 : aux & JVM_VALUE_MASK, ret);
}

/*
 * A new stack's JVM frames are named while their process lives and their code
 * is where it was (the names are cached): frames the JVM walker took, and
 * native frames in anonymous memory, which may be a JVM's code cache.
 */
static void jvm_prefetch(struct agg *a, struct stack *s)
{
	const uint8_t *kinds = s->walkers ? stack_kinds(s) : NULL;
	const uint32_t *ids = stack_ids(s);
	struct jvmsym_frames fr;

	for (uint32_t i = 0; i < s->nu; i++) {
		const struct mapping *m;

		if (kinds && kinds[i] == WALKER_JVM) {
			a->stats.frames_jvm++;
			if (a->jvmsym)
				jvm_frames(a, (int)s->pid, s->frames[s->nk + i], stack_aux(s)[i],
					   &fr);
		} else if (a->jvmsym && (!kinds || kinds[i] == WALKER_NATIVE) &&
			   ids[i] != PROCS_NO_MAPPING && (m = procs__mapping(a->procs, ids[i])) &&
			   perfmap_anon(m->path)) {
			jvmsym_frames(a->jvmsym, (int)s->pid, s->frames[s->nk + i], JVMSYM_CODE, 0,
				      &fr);
		}
	}
}

/*
 * A new stack's Python and JavaScript frames are read while their process
 * lives (the names are cached).
 */
static void walked_prefetch(struct agg *a, struct stack *s)
{
	const uint8_t *kinds = stack_kinds(s);
	struct pysym_frame f;
	struct v8sym_frames *v = a->v8sym ? malloc(sizeof(*v)) : NULL;

	for (uint32_t i = 0; i < s->nu; i++) {
		if (kinds[i] == WALKER_PYTHON) {
			a->stats.frames_python++;
			if (a->pysym)
				pysym_lookup(a->pysym, (int)s->pid, s->frames[s->nk + i],
					     stack_aux(s)[i], &f);
		} else if (kinds[i] == WALKER_V8) {
			a->stats.frames_v8++;
			if (v)
				v8sym_frames(a->v8sym, (int)s->pid, s->frames[s->nk + i],
					     stack_aux(s)[i], true, v);
		}
	}
	free(v);
}

/* A new stack of one sample, within the aggregate's bounds and the shared budget. 0 or -errno. */
static int stack_add(struct agg *a, const struct sample_event *e, const struct skey *k,
		     int64_t w)
{
	size_t sz = stack_size(k->nk, k->nu, k->walkers);
	uint32_t b = k->hash & (a->nbuckets - 1);
	struct stack *s;

	if (a->stats.stacks >= a->max_stacks || a->bytes + sz > a->max_bytes ||
	    (a->budget && a->budget->used + sz > a->budget->max)) {
		a->stats.dropped_full++;
		return -ENOSPC;
	}
	s = malloc(sz);
	if (!s) {
		a->stats.dropped_full++;
		return -ENOMEM;
	}
	s->hash = k->hash;
	s->count = 1;
	s->cpu_ns = w;
	s->pid = e->pid;
	s->tid = e->tid;
	memcpy(s->comm, e->comm, sizeof(s->comm));
	memcpy(s->pcomm, e->pcomm, sizeof(s->pcomm));
	s->comm[sizeof(s->comm) - 1] = s->pcomm[sizeof(s->pcomm) - 1] = '\0';
	s->nk = (uint16_t)k->nk;
	s->nu = (uint16_t)k->nu;
	memcpy(s->frames, k->frames, (k->nk + k->nu) * sizeof(uint64_t));
	memcpy(stack_ids(s), k->ids, k->nu * sizeof(uint32_t));
	s->walkers = k->walkers;
	if (s->walkers) {
		memcpy(stack_aux(s), k->aux, k->nu * sizeof(uint32_t));
		memcpy(stack_kinds(s), k->kinds, k->nu);
		walked_prefetch(a, s);
	}
	jvm_prefetch(a, s);
	s->next = a->buckets[b];
	a->buckets[b] = s;
	a->bytes += sz;
	if (a->budget)
		a->budget->used += sz;
	a->stats.stacks++;
	if (a->stats.stacks > (uint64_t)a->nbuckets * 2)
		rehash(a);
	return 0;
}

int agg__add(struct agg *a, const struct sample_event *e, int64_t period_ns)
{
	int64_t w = (int64_t)(e->weight ? e->weight : 1) * period_ns;
	struct skey k;
	struct stack *s;

	a->stats.samples++;
	sample_key(a, e, &k);
	s = stack_find(a, e, &k);
	if (!s)
		return stack_add(a, e, &k, w);
	s->count++;
	s->cpu_ns += w;
	return 0;
}

void agg__stats(const struct agg *a, struct agg_stats *ret)
{
	*ret = a->stats;
}

/* ---- building the profile ---------------------------------------------- */

struct loc_key {
	uint64_t addr;
	uint32_t id;		/* mapping id, PROCS_NO_MAPPING, KERNEL_ID, KSYM_ID or PYTHON_ID */
	uint32_t leaf;		/* PYTHON_ID: the instruction */
	uint32_t pid;		/* PYTHON_ID: whose code object addr is; JIT code: whose; else 0 */
};

/* a kernel frame at its address (agg_opts.kernel_addresses) */
#define KERNEL_ID (UINT32_MAX - 1)
/*
 * A kernel frame by its function: addr is the symbol's start, which only keys
 * the table and is never written out; leaf 1 and addr 0 for "no symbol".
 * Every address in one function makes one location, two functions never share one.
 */
#define KSYM_ID (UINT32_MAX - 2)
/* A Python frame: addr is its code object in process pid, leaf its instruction. */
#define PYTHON_ID (UINT32_MAX - 3)
#define JVM_ID (UINT32_MAX - 4)	/* addr: a pc or a Method*, leaf: its uaux */
#define V8_ID (UINT32_MAX - 5)	/* addr: a SharedFunctionInfo, leaf: its uaux */

struct build {
	struct agg *a;
	const struct ksyms *ks;
	struct profile *p;
	struct loc_key *keys;	/* open addressing; index + 1 in vals, 0 = empty */
	uint32_t *vals;
	uint8_t *counts;	/* the key's locations: vals - 1 and the next counts - 1 (JVM inlining) */
	uint32_t nslots, nused;
	uint32_t *map_index;	/* procs mapping id -> profile mapping index + 1 */
	uint32_t nmap_index;
};

static uint64_t loc_hash(const struct loc_key *k)
{
	return mix(mix(mix(mix(0, k->addr), k->id), k->leaf), k->pid);
}

static int loc_grow(struct build *b)
{
	uint32_t n = b->nslots ? b->nslots * 2 : 4096;
	struct loc_key *keys = calloc(n, sizeof(*keys));
	uint32_t *vals = calloc(n, sizeof(*vals));
	uint8_t *counts = calloc(n, sizeof(*counts));

	if (!keys || !vals || !counts) {
		free(keys);
		free(vals);
		free(counts);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < b->nslots; i++) {
		uint32_t j;

		if (!b->vals[i])
			continue;
		for (j = loc_hash(&b->keys[i]) & (n - 1); vals[j]; j = (j + 1) & (n - 1))
			;
		keys[j] = b->keys[i];
		vals[j] = b->vals[i];
		counts[j] = b->counts[i];
	}
	free(b->keys);
	free(b->vals);
	free(b->counts);
	b->keys = keys;
	b->vals = vals;
	b->counts = counts;
	b->nslots = n;
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static int profile_mapping(struct build *b, uint32_t id)
{
	const struct mapping *m = procs__mapping(b->a->procs, id);
	struct prof_mapping pm;
	struct elfobj *obj;
	int idx;

	if (id < b->nmap_index && b->map_index[id])
		return (int)b->map_index[id] - 1;
	obj = perfmap_anon(m->path) ? NULL : mapping_obj(b->a, m);	/* JIT code: no file */
	pm = (struct prof_mapping){
		.start = m->start, .limit = m->end, .offset = m->pgoff,
		.file = m->path[0] ? m->path : "[anon]",
		.build_id = obj ? elfobj__build_id(obj) : "",
	};
	idx = profile__add_mapping(b->p, &pm);
	if (idx >= 0 && id < b->nmap_index)
		b->map_index[id] = (uint32_t)idx + 1;
	return idx;
}

/* The key of a kernel frame: its address, or its function when addresses are stripped. */
static struct loc_key kernel_key(const struct build *b, uint64_t addr, bool leaf)
{
	uint64_t look = leaf ? addr : addr - 1;	/* return address -> call site */
	const struct ksym *sym;

	if (b->a->kernel_addresses)
		return (struct loc_key){ .addr = addr, .id = KERNEL_ID, .leaf = leaf };
	sym = b->ks ? ksyms__find(b->ks, look) : NULL;
	return (struct loc_key){ .addr = sym ? sym->addr : 0, .id = KSYM_ID, .leaf = !sym };
}

static void kernel_location(struct build *b, const struct loc_key *k, struct prof_location *l,
			    char *name, size_t len)
{
	const struct ksym *sym = NULL;

	l->frame = PROF_FRAME_KERNEL;
	if (k->id == KSYM_ID) {
		l->address = 0;
		if (!k->leaf)
			sym = ksyms__find(b->ks, k->addr);
	} else if (b->ks) {
		sym = ksyms__find(b->ks, k->leaf ? k->addr : k->addr - 1);
	}
	if (sym) {
		l->function = sym->name;
		return;
	}
	if (k->id == KSYM_ID)
		snprintf(name, len, "[kernel]");
	else
		snprintf(name, len, "[kernel]+0x%" PRIx64, k->addr);
	l->function = name;
	b->a->stats.frames_unsymbolized++;
}

/*
 * A frame in anonymous memory, JIT-compiled code: named by its process's perf
 * map (k->pid, the sample's: the location is its process's alone), else by
 * the map of the process that mapped it last (m->pid: code a child inherited
 * across a fork, at the same address), else "[jit]+0x<offset in the mapping>".
 */
static const char *jit_name(struct agg *a, const struct mapping *m, const struct loc_key *k,
			    char *buf, size_t len)
{
	uint64_t look = k->leaf ? k->addr : k->addr - 1;	/* return address -> call site */
	const char *fn;

	if (a->perfmaps && (!perfmaps__lookup(a->perfmaps, (int)k->pid, look, &fn) ||
			    ((int)k->pid != m->pid &&
			     !perfmaps__lookup(a->perfmaps, m->pid, look, &fn))))
		return fn;	/* borrowed: the location copies it */
	snprintf(buf, len, "[jit]+0x%" PRIx64, k->addr - m->start);
	a->stats.frames_unsymbolized++;
	return buf;
}

/*
 * The Java frames of one sampled frame as consecutive locations, innermost
 * (inlined) first: the first's index, their count in *n.
 */
static int jvm_add_frames(struct build *b, const struct jvmsym_frames *fr, uint64_t address,
			  uint32_t *n)
{
	int first = -1;

	for (int i = 0; i < fr->n; i++) {
		const struct jvmsym_frame *f = &fr->f[i];
		struct prof_location l = {
			.address = address, .mapping = PROFILE_NO_MAPPING, .frame = PROF_FRAME_JVM,
			.function = f->name, .system_name = f->system_name[0] ? f->system_name : NULL,
			.file = f->file[0] ? f->file : NULL, .line = f->line,
		};
		int idx = profile__add_location(b->p, &l);

		if (idx < 0)
			return idx;
		if (first < 0)
			first = idx;
	}
	*n = (uint32_t)fr->n;
	return first;
}

/*
 * A frame in anonymous memory that is a JVM's code (the native walker's):
 * compiled Java methods with those they inlined, the rest by their blob
 * ("[jvm] Interpreter"). -ENOENT: not a JVM's code.
 */
static int jvm_location(struct build *b, const struct mapping *m, const struct loc_key *k,
			uint32_t *n)
{
	int pid = k->pid ? (int)k->pid : m->pid;
	struct jvmsym_frames fr;

	/* the raw address: a return address is what the VM's tables know, and it
	 * lies in the calling blob (a call is never a blob's last instruction) */
	if (!b->a->jvmsym || jvmsym_frames(b->a->jvmsym, pid, k->addr, JVMSYM_CODE, 0, &fr) ||
	    !fr.n)
		return -ENOENT;
	return jvm_add_frames(b, &fr, k->addr, n);
}

/*
 * A frame in a mapped file: its ELF symbol, else "file+0x<file offset>" (of
 * the call, for a return address).
 */
static const char *file_name(struct agg *a, const struct mapping *m, const struct loc_key *k,
			     char *buf, size_t len)
{
	uint64_t look = k->leaf ? k->addr : k->addr - 1;	/* return address -> call site */
	uint64_t off = look - m->start + m->pgoff, vaddr, sym_off;
	struct elfobj *obj = mapping_obj(a, m);
	const char *fn;

	if (obj && elfobj__offset_to_vaddr(obj, off, &vaddr) == 0 &&
	    elfobj__symbolize(obj, vaddr, &fn, &sym_off) == 0)
		return fn;
	snprintf(buf, len, "%s+0x%" PRIx64, base_name(m->path), k->leaf ? off : off + 1);
	a->stats.frames_unsymbolized++;
	return buf;
}

/*
 * A frame the HotSpot walker put in the sample: compiled code and stubs by their
 * pc (with the methods inlined there), interpreted frames by their Method*;
 * "[jvm]+0x..." when that cannot be read (the blob or method went since).
 */
static int jvm_walked_location(struct build *b, const struct loc_key *k, uint32_t *n)
{
	uint64_t address = k->leaf >> JVM_KIND_SHIFT == JVM_INTERPRETED ? 0 : k->addr;
	struct prof_location l = { .address = address, .mapping = PROFILE_NO_MAPPING,
				   .frame = PROF_FRAME_JVM };
	struct jvmsym_frames fr;
	char name[64];

	if (b->a->jvmsym && !jvm_frames(b->a, (int)k->pid, k->addr, k->leaf, &fr) && fr.n)
		return jvm_add_frames(b, &fr, address, n);	/* a Method*'s address is no code */
	snprintf(name, sizeof(name), "[jvm]+0x%" PRIx64, k->addr);
	b->a->stats.frames_unsymbolized++;
	l.function = name;
	return profile__add_location(b->p, &l);
}

/*
 * A frame the V8 walker put in the sample as consecutive locations, innermost
 * (inlined into optimized code) first, each its function, script, line and
 * column; "[v8js]+0x<SharedFunctionInfo>" when it cannot be read. *n: how many.
 */
static int v8_location(struct build *b, const struct loc_key *k, uint32_t *n)
{
	struct prof_location l = { .mapping = PROFILE_NO_MAPPING, .frame = PROF_FRAME_V8 };
	struct v8sym_frames *fr = malloc(sizeof(*fr));
	char name[64];
	int first = -1;

	if (fr && b->a->v8sym &&
	    !v8sym_frames(b->a->v8sym, (int)k->pid, k->addr, k->leaf, false, fr)) {
		for (int i = 0; i < fr->n; i++) {
			int idx;

			l.function = fr->f[i].name;
			l.file = fr->f[i].file[0] ? fr->f[i].file : NULL;
			l.line = fr->f[i].line;
			l.column = fr->f[i].column;
			idx = profile__add_location(b->p, &l);
			if (idx < 0) {
				free(fr);
				return idx;
			}
			if (first < 0)
				first = idx;
		}
		*n = (uint32_t)fr->n;
		free(fr);
		return first;
	}
	free(fr);
	snprintf(name, sizeof(name), "[v8js]+0x%" PRIx64, k->addr);
	b->a->stats.frames_unsymbolized++;
	l.function = name;
	return profile__add_location(b->p, &l);
}

/* The location(s) of k: the first's index; *n their count (more than 1: JVM inlining). */
static int make_location(struct build *b, const struct loc_key *k, uint32_t *n)
{
	struct prof_location l = { .address = k->addr, .mapping = PROFILE_NO_MAPPING };
	char name[600];

	if (k->id == PYTHON_ID) {
		struct pysym_frame f;
		char qual[sizeof(f.file) + sizeof(f.name) + 1];	/* module.name, uncut */

		l.address = 0;
		l.frame = PROF_FRAME_PYTHON;
		if (b->a->pysym && !pysym_lookup(b->a->pysym, (int)k->pid, k->addr, k->leaf, &f)) {
			l.function = f.name;
			l.file = f.file;
			l.line = f.line;
			pysym_qualified(&f, qual, sizeof(qual));
			l.system_name = qual;
			return profile__add_location(b->p, &l);
		}
		snprintf(name, sizeof(name), "[python]+0x%" PRIx64, k->addr);
		l.function = name;
		b->a->stats.frames_unsymbolized++;
	} else if (k->id == JVM_ID) {
		return jvm_walked_location(b, k, n);
	} else if (k->id == V8_ID) {
		return v8_location(b, k, n);
	} else if (k->id == KERNEL_ID || k->id == KSYM_ID) {
		kernel_location(b, k, &l, name, sizeof(name));
	} else if (k->id == PROCS_NO_MAPPING || !procs__mapping(b->a->procs, k->id)) {
		/* (a freed id: procs__gc ran while this aggregate held it, a bug) */
		snprintf(name, sizeof(name), "[unknown]+0x%" PRIx64, k->addr);
		l.function = name;
		b->a->stats.frames_unsymbolized++;
	} else {
		const struct mapping *m = procs__mapping(b->a->procs, k->id);
		int midx;

		if (perfmap_anon(m->path) && (midx = jvm_location(b, m, k, n)) != -ENOENT)
			return midx;
		if ((midx = profile_mapping(b, k->id)) < 0)
			return midx;
		l.mapping = (uint32_t)midx;
		if (perfmap_anon(m->path))
			l.function = jit_name(b->a, m, k, name, sizeof(name));
		else
			l.function = file_name(b->a, m, k, name, sizeof(name));
	}
	return profile__add_location(b->p, &l);
}

/* k's first location's index; *n: how many (consecutive) it has. */
static int location_of(struct build *b, struct loc_key k, uint32_t *n)
{
	uint32_t j;
	int idx;

	if ((b->nused + 1) * 2 > b->nslots && loc_grow(b))
		return -ENOMEM;
	for (j = loc_hash(&k) & (b->nslots - 1); b->vals[j]; j = (j + 1) & (b->nslots - 1)) {
		const struct loc_key *o = &b->keys[j];

		if (o->addr == k.addr && o->id == k.id && o->leaf == k.leaf && o->pid == k.pid) {
			*n = b->counts[j];
			return (int)b->vals[j] - 1;
		}
	}
	*n = 1;
	idx = make_location(b, &k, n);
	if (idx < 0)
		return idx;
	b->keys[j] = k;
	b->vals[j] = (uint32_t)idx + 1;
	b->counts[j] = (uint8_t)*n;	/* JVMSYM_MAX_FRAMES, V8SYM_MAX_FRAMES at most */
	b->nused++;
	return idx;
}

/*
 * The key of a native user frame of process pid: its address in its mapping;
 * in JIT code named from perf maps, the process's too (one mapping id can
 * stand for several processes' anonymous memory, each with its own code).
 */
static struct loc_key user_key(const struct build *b, uint64_t addr, uint32_t id, bool leaf,
			       uint32_t pid)
{
	const struct mapping *m = b->a->perfmaps || b->a->jvmsym ?
					  procs__mapping(b->a->procs, id) : NULL;

	return (struct loc_key){ .addr = addr, .id = id, .leaf = leaf,
				 .pid = m && perfmap_anon(m->path) ? pid : 0 };
}

/* The location key id of a walker's frames. */
static uint32_t walked_id(uint8_t kind)
{
	return kind == WALKER_JVM ? JVM_ID : kind == WALKER_V8 ? V8_ID : PYTHON_ID;
}

static int add_stack(struct build *b, struct stack *s)
{
	uint32_t locs[PROFLEET_MAX_STACK * 3], n = 0, cnt;
	const uint32_t *ids = stack_ids(s);
	struct prof_label labels[4] = {
		{ .key = "pid", .num = s->pid },
		{ .key = "thread", .num = s->tid },
		{ .key = "comm", .str = s->pcomm[0] ? s->pcomm : s->comm },
		{ .key = "thread_name", .str = s->comm },
	};
	int idx;

	for (uint32_t i = 0; i < s->nk; i++) {
		idx = location_of(b, kernel_key(b, s->frames[i], i == 0), &cnt);
		if (idx < 0)
			return idx;
		locs[n++] = (uint32_t)idx;
	}
	for (uint32_t i = 0, native = 0; i < s->nu; i++) {
		if (s->walkers && stack_kinds(s)[i] != WALKER_NATIVE)
			idx = location_of(b, (struct loc_key){ .addr = s->frames[s->nk + i],
							       .id = walked_id(stack_kinds(s)[i]),
							       .leaf = stack_aux(s)[i],
							       .pid = s->pid }, &cnt);
		else	/* the first native frame is the interrupted pc, even under Python frames */
			idx = location_of(b, user_key(b, s->frames[s->nk + i], ids[i],
						      native++ == 0, s->pid), &cnt);
		if (idx < 0)
			return idx;
		/* a JVM or V8 frame's inlined functions may make the stack longer than locs */
		for (uint32_t c = 0; c < cnt; c++) {
			if (n == sizeof(locs) / sizeof(locs[0])) {
				b->a->stats.frames_cut += cnt - c;
				break;
			}
			locs[n++] = (uint32_t)idx + c;
		}
	}
	idx = profile__add_sample(b->p, locs, n, s->count, labels, 4);
	if (idx < 0)
		return idx;
	b->p->samples[idx].cpu_ns = s->cpu_ns;
	return 0;
}

int agg__build(struct agg *a, const struct ksyms *ks, struct profile *out)
{
	struct build b = { .a = a, .ks = ks, .p = out };
	int err = 0;

	b.nmap_index = procs__nmappings(a->procs);
	b.map_index = calloc(b.nmap_index + 1, sizeof(*b.map_index));
	if (!b.map_index)
		return -ENOMEM;
	a->stats.frames_unsymbolized = 0;
	a->stats.frames_cut = 0;
	for (uint32_t i = 0; i < a->nbuckets && !err; i++)
		for (struct stack *s = a->buckets[i]; s && !err; s = s->next)
			err = add_stack(&b, s);
	free(b.map_index);
	free(b.keys);
	free(b.vals);
	free(b.counts);
	return err;
}
