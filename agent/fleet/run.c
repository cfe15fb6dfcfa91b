// SPDX-License-Identifier: Apache-2.0
/*
 * `profleet-agent run`: the per-node agent of a fleet. Takes target sets from
 * the controller, finds each targeted container's cgroup, fills the BPF targets
 * map (cgroup id -> sampling rate), samples at the highest rate asked for and
 * subsamples slower targets in the kernel, reports acks and counters back.
 * Keeps profiling with the last target set while the controller is away.
 */
#include "clock.h"
#include "run.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "aggregate.h"
#include "cgroups.h"
#include "cli.h"
#include "elfsym.h"
#include "export.h"
#include "httpd.h"
#include "k8s.h"
#include "metrics.h"
#include "fleet_client.h"
#include "hmap.h"
#include "ksyms.h"
#include "labels.h"
#include "log.h"
#include "pipeline.h"
#include "procs.h"
#include "perfmap.h"
#include "jvmsym.h"
#include "pysym.h"
#include "v8sym.h"
#include "profile.h"
#include "record.h"
#include "sampler.h"
#include "unwinder.h"

#define RESCAN_EVERY_S 1.0
/* the stacks all targets of a node hold between two exports */
#define TARGETS_AGG_BYTES (64ull << 20)
/* targets of one node at once: their index is 16 bits of the samples' reference */
#define MAX_TARGETS 65535
#define COUNTERS_EVERY_S 2.0
#define STATE_EVERY_S 1.0
#define MAX_V1_PIDS 4096

/* One targeted container. */
struct target {
	char container_id[72];
	char pod_uid[40];
	char *ns, *pod, *container;
	uint32_t hz;
	uint32_t sample_every;
	int npolicies;
	uint64_t **policy_counts;	/* into run.policy_samples */
	char **policy_names;
	uint64_t cgroup_id;	/* 0 until found */
	char cgroup_path[512];
	uint64_t samples;
	/* export: this container's own profile, its labels and backends */
	struct agg *agg;	/* NULL when no backend takes its profiles */
	uint64_t agg_samples;	/* samples in agg this interval */
	int64_t agg_from_ns;	/* agg began after the interval did (its route changed); 0: with it */
	struct label_set labels;	/* identity first: see target_identity */
	char *service;		/* service_name, once known */
	char **backends;
	int nbackends;
	int first_pid;		/* for OTEL_SERVICE_NAME */
};

struct run {
	struct run_config cfg;
	struct sampler *s;
	struct procs *procs;
	struct symcache *sc;
	struct pysym *pysym;	/* names of Python frames */
	struct perfmaps *perfmaps;	/* names of JIT code */
	struct jvmsym *jvmsym;		/* names of HotSpot code */
	struct v8sym *v8sym;		/* names of JavaScript functions */
	struct agg *agg;
	struct unwinder *unw;	/* the pipeline's */
	struct pipeline pl;
	struct fleet_client *fc;
	struct cg_mounts mounts;
	bool v2;
	struct target *t;
	int nt;
	struct target **by_cgid;	/* sorted by cgroup_id, found targets only */
	int nby;
	uint64_t version;
	int base_hz;
	uint32_t found, missing;
	size_t v1_pids;			/* cgroup v1: processes in the kernel's filter */
	uint64_t labels_dropped;	/* a target's label named like an identity one (or twice) */
	uint64_t execs_followed;	/* targeted processes whose tables loaded from their exec */
	struct agg_budget agg_budget;	/* every target's aggregate together (a full one drops, counted) */
	uint64_t agg_dropped;		/* samples a full aggregate could not take */
	uint64_t v1_pids_dropped;	/* taken out of it: exited, moved or untargeted */
	uint64_t v1_pids_truncated;	/* scans of a cgroup with more processes than we read */
	struct hmap policy_samples;	/* policy -> uint64_t*, cumulative since start */
	uint64_t samples, untargeted, started_unix;
	struct {
		double scan, counters, state, interval;	/* clock_mono_s() of the last of each */
	} last;
	uint64_t last_sent_samples;
	bool counters_sent_once;
	struct hmap exporters;	/* backend name -> struct exporter (fleet backends) */
	struct exporter *cli_exporters[CLI_MAX_EXPORTS];	/* --export: every target */
	int ncli_exporters;
	int64_t interval_start_ns;
	uint64_t exported, export_failures;
	uint64_t last_sent_export_sig;
	/* what /metrics and /readyz answer: rebuilt by the main loop every second */
	struct httpd *http;
	pthread_mutex_t http_lock;
	char *metrics;
	size_t metrics_len;
	bool ready;
	char not_ready[160];
	double last_tick;	/* mono seconds of the main loop's last pass (/healthz) */	/* what the exporters looked like at the last counters */
};

static void target_free(struct target *t)
{
	free(t->ns);
	free(t->pod);
	free(t->container);
	for (int i = 0; i < t->npolicies; i++)
		free(t->policy_names[i]);
	free(t->policy_names);
	free(t->policy_counts);
	agg__free(t->agg);
	label_set_free(&t->labels);
	free(t->service);
	for (int i = 0; i < t->nbackends; i++)
		free(t->backends[i]);
	free(t->backends);
	memset(t, 0, sizeof(*t));	/* the slot may be filled again */
}

static int cmp_by_cgid(const void *a, const void *b)
{
	uint64_t x = (*(struct target *const *)a)->cgroup_id, y = (*(struct target *const *)b)->cgroup_id;

	return x < y ? -1 : x > y;
}

static struct target *find_by_cgid(struct run *r, uint64_t id)
{
	int lo = 0, hi = r->nby - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		uint64_t v = r->by_cgid[mid]->cgroup_id;

		if (v == id)
			return r->by_cgid[mid];
		if (v < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/*
 * The reference a target's samples carry (target_cfg.policy_bits): the target
 * set's version in the high half, the target's index + 1 in the low half, so
 * that a sample queued before a new set is not credited to another target.
 */
static uint32_t target_ref(const struct run *r, int i)
{
	return (uint32_t)(r->version & 0xffff) << 16 | (uint32_t)(i + 1);
}

static struct target *target_by_ref(struct run *r, uint32_t ref)
{
	uint32_t i = ref & 0xffff;

	if (ref >> 16 != (uint32_t)(r->version & 0xffff) || !i || i > (uint32_t)r->nt)
		return NULL;
	return &r->t[i - 1];
}

/* The period of the sampling rate in force (before the first target set: the cap's). */
static int64_t period_ns(const struct run *r)
{
	return 1000000000LL / (r->base_hz > 0 ? r->base_hz : r->cfg.max_frequency);
}

/* The pipeline's question at an exec: is this process one of a target's? */
static bool wanted(void *ctx, int pid)
{
	struct run *r = ctx;
	bool yes = r->v2 ? sampler__exec_targeted(r->s, pid) : sampler__pid_targeted(r->s, pid);

	r->execs_followed += yes;
	return yes;
}

/* The pipeline's consumer: attribution to a target, after the unwinder saw the sample. */
static int consume(void *ctx, const struct sample_event *e)
{
	struct run *r = ctx;
	/* v1: by the reference the pids map gave the sample (children followed in the
	 * kernel carry their parent's) */
	struct target *t = r->v2 ? find_by_cgid(r, e->cgroup_id) : target_by_ref(r, e->policy_bits);

	r->samples++;
	if (!t) {
		/* a child of a v1 target (followed in the kernel), or a cgroup that was just
		 * untargeted: profiled, but not attributed to a policy */
		r->untargeted++;
	} else {
		t->samples++;
		for (int i = 0; i < t->npolicies; i++)
			(*t->policy_counts[i])++;
		if (t->agg) {
			if (agg__add(t->agg, e, period_ns(r)))
				r->agg_dropped++;	/* its table or the node's budget is full */
			t->agg_samples++;
			if (!t->first_pid)
				t->first_pid = (int)e->pid;
		}
	}
	if (r->agg)	/* the whole node's profile, kept only for --output */
		agg__add(r->agg, e, period_ns(r));
	return 0;
}

/* ---- cgroups -> BPF maps --------------------------------------------------- */

struct scan_ctx {
	struct run *r;
	uint32_t found;
};

static int on_container(void *ctx, const struct cg_container *c)
{
	struct scan_ctx *x = ctx;
	struct run *r = x->r;

	for (int i = 0; i < r->nt; i++) {
		struct target *t = &r->t[i];

		if (strcmp(t->container_id, c->container_id))
			continue;
		if (t->pod_uid[0] && strcmp(t->pod_uid, c->pod_uid))
			continue;	/* same id in another pod: not ours */
		t->cgroup_id = c->v2 ? c->cgroup_id : 0;
		snprintf(t->cgroup_path, sizeof(t->cgroup_path), "%s", c->path);
	}
	return 0;
}

/*
 * cgroup v1: the pids filter gets exactly the processes of the found targets'
 * cgroups (children forked since are added by the kernel and show up here at
 * the next scan); the exited, the moved and recycled pids go.
 */
static void sync_v1_pids(struct run *r)
{
	struct sampler_pid *want = malloc(PROFLEET_MAX_PIDS * sizeof(*want));
	uint32_t *before = NULL;
	size_t n = 0, nbefore = 0, dropped = 0;
	int err;

	if (!want || sampler__pids_snapshot(r->s, &before, &nbefore)) {
		log_warn("out of memory: the cgroup v1 process filter is not updated");
		free(want);
		return;
	}
	for (int i = 0; i < r->nt && n < PROFLEET_MAX_PIDS; i++) {
		const struct target *t = &r->t[i];
		int pids[MAX_V1_PIDS], np;

		if (!t->cgroup_path[0])
			continue;
		np = cg_read_procs(t->cgroup_path, pids, MAX_V1_PIDS);
		if (np == MAX_V1_PIDS && !r->v1_pids_truncated++)
			log_warn("%s: more than %d processes; those past them are not targeted",
				 t->cgroup_path, MAX_V1_PIDS);
		for (int j = 0; j < np && n < PROFLEET_MAX_PIDS; j++)
			want[n++] = (struct sampler_pid){ .pid = (uint32_t)pids[j],
				.cfg = { .sample_every = t->sample_every, .policy_bits = target_ref(r, i) } };
	}
	err = sampler__sync_pids(r->s, want, n, before, nbefore, &dropped);
	if (err)
		log_warn("cannot update the process filter: %s", strerror(-err));
	r->v1_pids = n;
	r->v1_pids_dropped += dropped;
	free(before);
	free(want);
}

/* Finds the targets' cgroups and programs the kernel filter. */
static void sync_cgroups(struct run *r, bool log_changes)
{
	struct scan_ctx x = { .r = r };
	uint32_t found = 0, missing = 0;
	struct target **by;
	int nby = 0;

	for (int i = 0; i < r->nt; i++) {
		r->t[i].cgroup_path[0] = 0;
		r->t[i].cgroup_id = 0;
	}
	if (r->nt) {
		int n = cg_walk(r->v2 ? r->mounts.v2 : r->mounts.v1, r->v2, on_container, &x);

		if (n < 0)
			log_warn("cannot walk cgroups under %s: %s", r->v2 ? r->mounts.v2 : r->mounts.v1,
				 strerror(-n));
	}
	by = calloc((size_t)r->nt + 1, sizeof(*by));
	for (int i = 0; i < r->nt; i++) {
		struct target *t = &r->t[i];
		struct target_cfg tc = { .sample_every = t->sample_every, .policy_bits = target_ref(r, i) };

		if (!t->cgroup_path[0]) {
			missing++;
			continue;
		}
		found++;
		if (!r->v2)
			continue;
		if (sampler__set_target(r->s, t->cgroup_id, &tc))
			log_warn("cannot target cgroup %s", t->cgroup_path);
		if (by)
			by[nby++] = t;
	}
	if (!r->v2)
		sync_v1_pids(r);
	if (by)
		qsort(by, (size_t)nby, sizeof(*by), cmp_by_cgid);
	free(r->by_cgid);
	r->by_cgid = by;
	r->nby = nby;
	if (log_changes || found != r->found || missing != r->missing)
		log_info("targets: %u container(s) found, %u not (yet) on this node", found, missing);
	r->found = found;
	r->missing = missing;
}

/* Before a new set: the cgroup filter is emptied (v1's pids are synced after it). */
static void untarget_all(struct run *r)
{
	for (int i = 0; i < r->nt; i++)
		if (r->t[i].cgroup_id)
			sampler__del_target(r->s, r->t[i].cgroup_id);
}

static uint64_t *policy_counter(struct run *r, const char *name)
{
	uint64_t *v = hmap_get(&r->policy_samples, name);

	if (v)
		return v;
	v = calloc(1, sizeof(*v));
	if (!v || hmap_put(&r->policy_samples, name, v, NULL)) {
		free(v);
		return NULL;
	}
	return v;
}

/* ---- export: each target's own profile, to its backends ------------------------- */

struct fbackend {		/* a fleet backend's exporter and the strings it points to */
	struct exporter *e;
	char *url, *tenant, *bearer, *basic;
	char *sig;		/* everything it was made from: a change makes a new one */
	char *hdr[EXPORT_MAX_HEADERS];
	int nhdr;
};

static void fbackend_free(struct fbackend *b)
{
	exporter_free(b->e);
	free(b->url);
	free(b->tenant);
	free(b->sig);
	k8s_free_secret(b->bearer);
	k8s_free_secret(b->basic);
	for (int i = 0; i < b->nhdr; i++)
		free(b->hdr[i]);
	free(b);
}

/* The built-in store's transport: the agent's own connection to the controller. */
static int run_upload(void *ctx, const struct export_route *route, const uint8_t *buf, size_t len,
		      int64_t from_s, int64_t until_s, char *err, size_t errlen)
{
	struct run *r = ctx;

	if (!r->fc) {
		snprintf(err, errlen, "no controller");
		return -EPERM;
	}
	return fleet_client_upload(r->fc, route->policies, route->npolicies, buf, len, from_s,
				   until_s, 60000, err, errlen);
}

/* Creates exporters for backends not seen before (a changed URL: a new one). */
static void sync_backends(struct run *r, const Profleet__Fleet__V1__TargetSet *set)
{
	for (size_t i = 0; i < set->n_backends; i++) {
		const Profleet__Fleet__V1__Backend *in = set->backends[i];
		struct fbackend *b = in->name ? hmap_get(&r->exporters, in->name) : NULL, *old = NULL;
		struct export_target t;
		struct export_auth a = { 0 };
		char spec[2300], msg[300];

		char *sig = NULL;
		size_t sl = 0;
		FILE *sf;

		if (!in->name || !in->type || !in->url)
			continue;
		/* what the exporter is made of; unchanged: keep it (and its queue) */
		sf = open_memstream(&sig, &sl);
		if (!sf)
			continue;
		fprintf(sf, "%s\n%s\n%s\n%s\n%s\n", in->type, in->url,
			in->tenant_id ? in->tenant_id : "", in->bearer_token ? in->bearer_token : "",
			in->basic_auth ? in->basic_auth : "");
		for (size_t k = 0; k < in->n_headers; k++)
			fprintf(sf, "%s: %s\n", in->headers[k]->key, in->headers[k]->value);
		fclose(sf);
		if (b && b->sig && !strcmp(b->sig, sig)) {
			free(sig);
			continue;
		}
		snprintf(spec, sizeof(spec), "%s=%s", in->type, in->url);
		b = calloc(1, sizeof(*b));
		if (b)
			b->sig = sig;
		else
			free(sig);
		if (b && !strcmp(in->type, "controller") && (b->url = strdup(in->url))) {
			t.kind = EXPORT_CONTROLLER;	/* the built-in store */
			t.url = "store";
		} else if (!b || !(b->url = strdup(in->url)) ||
			   export_parse_target(spec, &t, msg, sizeof(msg))) {
			log_warn("backend %s: %s", in->name, b ? msg : "out of memory");
			if (b)
				fbackend_free(b);
			continue;
		} else {
			t.url = b->url;
		}
		if (in->tenant_id && *in->tenant_id)
			a.tenant = b->tenant = strdup(in->tenant_id);
		if (in->bearer_token && *in->bearer_token)
			a.bearer = b->bearer = strdup(in->bearer_token);
		if (in->basic_auth && *in->basic_auth)
			a.basic = b->basic = strdup(in->basic_auth);
		for (size_t k = 0; k < in->n_headers && b->nhdr < EXPORT_MAX_HEADERS; k++)
			if (asprintf(&b->hdr[b->nhdr], "%s: %s", in->headers[k]->key,
				     in->headers[k]->value) > 0)
				a.headers[a.nheaders++] = b->hdr[b->nhdr++];
		b->e = exporter_new(&t, &a, &(struct exporter_opts){ .upload = run_upload,
								     .upload_ctx = r },
				    msg, sizeof(msg));
		if (!b->e) {
			log_warn("backend %s: %s", in->name, msg);
			fbackend_free(b);
			continue;
		}
		if (!hmap_put(&r->exporters, in->name, b, (void **)&old)) {
			log_info("backend %s: %s", in->name, exporter_describe(b->e));
			if (old)
				fbackend_free(old);
		} else {
			fbackend_free(b);
		}
	}
}

/* OTEL_SERVICE_NAME from a process's environment (malloc'd), or NULL. */
static char *env_service_name(int pid)
{
	char path[64], buf[65536];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
		if (!strncmp(buf + i, "OTEL_SERVICE_NAME=", 18) && buf[i + 18])
			return strdup(buf + i + 18);
	return NULL;
}

/* Sends a target's profile of this interval to its backends (and every --export). */
static void export_target(struct run *r, struct target *t, const struct ksyms *ks, int64_t from_ns,
			  int64_t until_ns)
{
	struct profile *prof;
	char fallback[300];

	if (!t->agg || !t->agg_samples)
		return;
	if (t->agg_from_ns > from_ns)	/* collected since then only */
		from_ns = t->agg_from_ns;
	t->agg_from_ns = 0;
	if (!t->service && t->first_pid)
		t->service = env_service_name(t->first_pid);	/* after the controller's rules */
	snprintf(fallback, sizeof(fallback), "%s/%s", t->ns, t->container);
	prof = profile__new();
	if (prof) {
		prof->period_nanos = period_ns(r);
		prof->time_nanos = from_ns;
		prof->duration_nanos = until_ns - from_ns;
	}
	if (!prof || agg__build(t->agg, ks, prof)) {
		log_warn("export: cannot build the profile of %s/%s", t->ns, t->pod);
		r->export_failures++;
	} else {
		/* the store keeps it under the target's policies (those that use it) */
		const struct export_route route = { (const char *const *)t->policy_names,
						    (size_t)t->npolicies };

		for (int i = 0; i < t->nbackends; i++) {
			struct fbackend *b = hmap_get(&r->exporters, t->backends[i]);

			if (!b) {
				r->export_failures++;	/* defined nowhere: counted, logged once per set */
				continue;
			}
			if (exporter_submit_routed(b->e, prof, t->service ? t->service : fallback,
						   t->labels.v, t->labels.n, from_ns / 1000000000,
						   until_ns / 1000000000, r->base_hz, &route) == 0)
				r->exported++;
			else
				r->export_failures++;
		}
		for (int i = 0; i < r->ncli_exporters; i++)
			if (exporter_submit(r->cli_exporters[i], prof, t->service ? t->service : fallback,
					    t->labels.v, t->labels.n, from_ns / 1000000000,
					    until_ns / 1000000000, r->base_hz) == 0)
				r->exported++;
			else
				r->export_failures++;
	}
	profile__free(prof);
	agg__reset(t->agg);
	t->agg_samples = 0;
}

/* "ns/a,ns/b": the policies that select the target, of any length; NULL if none. */
static char *policies_value(const Profleet__Fleet__V1__Target *in)
{
	char *v = NULL;
	size_t len;
	FILE *o;

	if (!in->n_policies || !(o = open_memstream(&v, &len)))
		return NULL;
	for (size_t i = 0; i < in->n_policies; i++)
		fprintf(o, "%s%s", i ? "," : "", in->policies[i]);
	if (fclose(o)) {
		free(v);
		return NULL;
	}
	return v;
}

/*
 * Fills a target's labels and backends from the controller's Target. The
 * identity labels come first and win: a policy's static label named namespace,
 * pod, node, ... (or a second service_name) is dropped, so that a tenant cannot
 * pass for another in a backend they share.
 */
static void target_identity(struct run *r, struct target *t, const Profleet__Fleet__V1__Target *in)
{
	const char *fixed[][2] = {
		{ "namespace", t->ns }, { "pod", t->pod }, { "pod_uid", t->pod_uid },
		{ "container", t->container }, { "container_id", t->container_id },
		{ "node", r->cfg.node_name }, { "policy", NULL },
	};
	size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	char *pols = policies_value(in);

	fixed[nfixed - 1][1] = pols;
	if (label_set_init(&t->labels, (int)(nfixed + in->n_labels))) {
		free(pols);
		return;
	}
	for (size_t i = 0; i < nfixed; i++)
		if (fixed[i][1])
			label_set_put(&t->labels, fixed[i][0], fixed[i][1]);
	free(pols);
	for (size_t i = 0; i < in->n_labels; i++) {
		const char *k = in->labels[i]->key, *v = in->labels[i]->value;

		if (!k || !v)
			continue;
		if (!label_set_put_foreign(&t->labels, k, v))
			r->labels_dropped++;
		else if (!strcmp(k, "service_name")) {
			free(t->service);
			t->service = strdup(v);
		}
	}
	t->backends = calloc(in->n_backends + 1, sizeof(char *));
	for (size_t i = 0; t->backends && i < in->n_backends; i++)
		t->backends[t->nbackends++] = strdup(in->backends[i]);
}

/* A target of the set into t; -EINVAL for one without a container or a rate, -ENOMEM. */
static int target_from(struct run *r, const Profleet__Fleet__V1__Target *in, struct target *t)
{
	uint32_t hz = in->frequency_hz;

	if (!in->container_id || strlen(in->container_id) >= sizeof(t->container_id) || !hz)
		return -EINVAL;
	snprintf(t->container_id, sizeof(t->container_id), "%s", in->container_id);
	snprintf(t->pod_uid, sizeof(t->pod_uid), "%s", in->pod_uid ? in->pod_uid : "");
	t->ns = strdup(in->namespace_ ? in->namespace_ : "");
	t->pod = strdup(in->pod_name ? in->pod_name : "");
	t->container = strdup(in->container_name ? in->container_name : "");
	t->hz = hz > (uint32_t)r->cfg.max_frequency ? (uint32_t)r->cfg.max_frequency : hz;
	t->policy_names = calloc(in->n_policies + 1, sizeof(char *));
	t->policy_counts = calloc(in->n_policies + 1, sizeof(uint64_t *));
	if (!t->ns || !t->pod || !t->container || !t->policy_names || !t->policy_counts) {
		log_warn("out of memory: target %s left out", in->container_id);
		target_free(t);
		return -ENOMEM;
	}
	for (size_t k = 0; k < in->n_policies; k++) {
		uint64_t *c = in->policies[k] ? policy_counter(r, in->policies[k]) : NULL;
		char *name = c ? strdup(in->policies[k]) : NULL;

		if (!name)
			continue;	/* its samples still count for the target */
		t->policy_names[t->npolicies] = name;
		t->policy_counts[t->npolicies++] = c;
	}
	return 0;
}

static bool same_names(char *const *a, int na, char *const *b, int nb)
{
	if (na != nb)
		return false;
	for (int i = 0; i < na; i++)
		if (strcmp(a[i] ? a[i] : "", b[i] ? b[i] : ""))
			return false;
	return true;
}

static bool same_labels(const struct label_set *a, const struct label_set *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->v[i].key, b->v[i].key) || strcmp(a->v[i].value, b->v[i].value))
			return false;
	return true;
}

/* Its samples are exported under the same policies and labels, to the same backends. */
static bool same_route(const struct target *a, const struct target *b)
{
	return same_names(a->policy_names, a->npolicies, b->policy_names, b->npolicies) &&
	       same_names(a->backends, a->nbackends, b->backends, b->nbackends) &&
	       same_labels(&a->labels, &b->labels);
}

static void apply_set(struct run *r, Profleet__Fleet__V1__TargetSet *set)
{
	struct target *nt = calloc(set->n_targets + 1, sizeof(*nt));
	int n = 0, base = 0;

	if (!nt) {
		log_error("out of memory applying target set v%" PRIu64, set->version);
		return;
	}
	for (size_t i = 0; i < set->n_targets && n < MAX_TARGETS; i++) {
		if (target_from(r, set->targets[i], &nt[n]))
			continue;
		if ((int)nt[n].hz > base)
			base = (int)nt[n].hz;
		n++;
	}
	if (set->n_targets > MAX_TARGETS)
		log_warn("target set v%" PRIu64 ": %zu targets, the first %d are taken", set->version,
			 set->n_targets, MAX_TARGETS);
	/* the perf rate is the fastest target's; slower ones keep one sample in N */
	for (int i = 0; i < n; i++)
		nt[i].sample_every = (uint32_t)((base + (int)nt[i].hz / 2) / (int)nt[i].hz);
	{
		struct agg_opts ao = { .max_stacks = 1u << 16, .max_bytes = 32u << 20, .pysym = r->pysym,
				       .perfmaps = r->perfmaps, .jvmsym = r->jvmsym, .v8sym = r->v8sym,
				       .budget = &r->agg_budget,
				       .kernel_addresses = r->cfg.kernel_addresses };
		struct ksyms *ks = NULL;
		size_t k = 0;

		for (int i = 0; i < n; i++) {
			while (k < set->n_targets && (!set->targets[k]->container_id ||
			       strcmp(set->targets[k]->container_id, nt[i].container_id)))
				k++;
			if (k < set->n_targets)
				target_identity(r, &nt[i], set->targets[k]);
			k = 0;
			/* a container still targeted keeps its interval's samples, unless
			 * they go elsewhere now (an OnDemand policy over while another
			 * goes on): then they go out below, where they were collected for */
			for (int j = 0; j < r->nt; j++)
				if (!strcmp(r->t[j].container_id, nt[i].container_id) && r->t[j].agg &&
				    same_route(&r->t[j], &nt[i])) {
					nt[i].agg = r->t[j].agg;
					nt[i].agg_samples = r->t[j].agg_samples;
					nt[i].first_pid = r->t[j].first_pid;
					nt[i].agg_from_ns = r->t[j].agg_from_ns;
					r->t[j].agg = NULL;
					break;
				}
		}
		/* a container no longer targeted, or routed elsewhere: what it
		 * collected goes out now */
		for (int j = 0; j < r->nt; j++)
			if (r->t[j].agg && r->t[j].agg_samples) {
				if (!ks)
					ks = r->cfg.kernel_stacks ? ksyms__load(NULL) : NULL;
				export_target(r, &r->t[j], ks, r->interval_start_ns, clock_real_ns());
			}
		ksyms__free(ks);
		/* the backends changed only now: what went out above went where it was
		 * collected for */
		sync_backends(r, set);
		for (int i = 0; i < n; i++)
			if (!nt[i].agg && (nt[i].nbackends || r->ncli_exporters)) {
				nt[i].agg = agg__new(&ao, r->procs, r->sc);
				nt[i].agg_from_ns = r->nt ? clock_real_ns() : 0;
			}
	}
	untarget_all(r);
	for (int i = 0; i < r->nt; i++)
		target_free(&r->t[i]);
	free(r->t);
	r->t = nt;
	r->nt = n;
	r->version = set->version;
	sync_cgroups(r, true);
	if (base != r->base_hz) {
		int err = sampler__set_frequency(r->s, base);

		if (err)
			log_warn("cannot set the sampling frequency to %d Hz: %s", base, strerror(-err));
		r->base_hz = base;
	}
	log_notice("target set v%" PRIu64 ": %d container(s), sampling at %d Hz", set->version, n,
		   base);
}

/* ---- reporting ------------------------------------------------------------ */

static void send_counters(struct run *r, bool force)
{
	Profleet__Fleet__V1__Counters c = PROFLEET__FLEET__V1__COUNTERS__INIT;
	Profleet__Fleet__V1__PolicyCount *pcs = NULL, **pp = NULL;
	Profleet__Fleet__V1__ExporterCount *exs = NULL, **exp = NULL;
	static char errs[64][160];
	struct sampler_stats ss;
	uint64_t sig = 0;
	int n = 0, nex;

	/* how the exports go, per backend */
	nex = 0;
	hmap_for_each(&r->exporters, it)
		nex++;
	exs = calloc((size_t)nex + 1, sizeof(*exs));
	exp = calloc((size_t)nex + 1, sizeof(*exp));
	nex = 0;
	hmap_for_each(&r->exporters, it) {
		struct exporter_stats es;

		if (!exs || !exp)
			break;
		exporter_stats(((struct fbackend *)it->val)->e, &es);
		profleet__fleet__v1__exporter_count__init(&exs[nex]);
		exs[nex].backend = it->key;
		exs[nex].sent = es.sent;
		exs[nex].dropped = es.dropped_full + es.dropped_rejected;
		exs[nex].retries = es.retries;
		exs[nex].last_success_unix = es.last_success_unix;
		exs[nex].last_failure_unix = es.last_failure_unix;
		exs[nex].queued = (uint32_t)es.queued;
		snprintf(errs[nex % 64], sizeof(errs[0]), "%s", es.last_error);
		exs[nex].last_error = errs[nex % 64];
		sig += es.sent * 3 + exs[nex].dropped * 5 + es.retries * 7;
		exp[nex] = &exs[nex];
		if (++nex == 64)
			break;
	}
	/* an idle agent sends nothing: the controller's CPU stays idle too */
	if (!force && r->counters_sent_once && r->samples == r->last_sent_samples &&
	    sig == r->last_sent_export_sig)
		goto out;
	sampler__stats(r->s, &ss);
	pcs = calloc(r->policy_samples.n + 1, sizeof(*pcs));
	pp = calloc(r->policy_samples.n + 1, sizeof(*pp));
	if (!pcs || !pp)
		goto out;
	hmap_for_each(&r->policy_samples, it) {
		profleet__fleet__v1__policy_count__init(&pcs[n]);
		pcs[n].policy = it->key;
		pcs[n].samples = *(uint64_t *)it->val;
		for (int i = 0; i < r->nt; i++)
			for (int k = 0; k < r->t[i].npolicies; k++)
				if (!strcmp(r->t[i].policy_names[k], it->key) && r->t[i].cgroup_path[0])
					pcs[n].pods++;
		pp[n] = &pcs[n];
		n++;
	}
	c.samples = r->samples;
	c.dropped = ss.counters[CNT_RINGBUF_FULL];
	c.errors = ss.counters[CNT_USTACK_FAULT] + ss.counters[CNT_KSTACK_FAULT];
	c.started_unix = r->started_unix;
	c.n_policies = (size_t)n;
	c.policies = pp;
	if (exs && exp) {
		c.n_exporters = (size_t)nex;
		c.exporters = exp;
	}
	fleet_client_counters(r->fc, &c);
	r->last_sent_samples = r->samples;
	r->last_sent_export_sig = sig;
	r->counters_sent_once = true;
out:
	free(pcs);
	free(pp);
	free(exs);
	free(exp);
}

/* ---- /metrics, /healthz, /readyz --------------------------------------------- */

static const char *const cnt_names[][2] = {	/* sampler counter -> metric, reason */
	{ "drop", "ringbuf_full" }, { "unwind", "kstack_fault" }, { "unwind", "ustack_fault" },
	{ "unwind", "ustack_empty" }, { "unwind", "kstack_truncated" },
	{ "unwind", "ustack_truncated" }, { "drop", "pids_map_full" },
	{ "unwind", "table_not_loaded" }, { "unwind", "no_mapping" }, { "unwind", "read_fault" },
	{ "unwind", "too_deep" }, { "unwind", "unsupported_cfa" },
	{ "unwind", "tail_call_budget" }, { "unwind", "walker_missing" },
	{ "unwind", "chain_not_entered" }, { "unwind", "user_regs_unknown" },
	{ "python", "no_process" }, { "python", "no_thread_state" }, { "python", "read_fault" },
	{ "python", "bad_code" }, { "jvm", "no_process" }, { "jvm", "no_blob" },
	{ "jvm", "bad_frame" }, { "v8", "bad_frame" },
};
static const int cnt_ids[] = {
	CNT_RINGBUF_FULL, CNT_KSTACK_FAULT, CNT_USTACK_FAULT, CNT_USTACK_EMPTY, CNT_KSTACK_TRUNCATED,
	CNT_USTACK_TRUNCATED, CNT_PIDS_FULL, CNT_UNWIND_TABLE_NOT_LOADED, CNT_UNWIND_NO_MAPPING,
	CNT_UNWIND_READ_FAULT, CNT_UNWIND_DEPTH, CNT_UNWIND_UNSUPPORTED,
	CNT_UNWIND_BUDGET, CNT_WALKER_MISSING, CNT_TAIL_CALL_FAILED, CNT_USER_REGS_UNKNOWN,
	CNT_PY_NO_PROC, CNT_PY_NO_THREAD, CNT_PY_READ_FAULT, CNT_PY_BAD_CODE,
	CNT_JVM_NO_PROC, CNT_JVM_NO_BLOB, CNT_JVM_BAD_FRAME, CNT_V8_BAD_FRAME,
};

/* One counter family of the sampler's counters of one kind (cnt_names), by reason. */
static void metrics_reasons(struct metrics *m, const struct sampler_stats *ss, const char *kind,
			    const char *family, const char *help)
{
	metrics_family(m, family, "counter", help);
	for (size_t i = 0; i < sizeof(cnt_ids) / sizeof(cnt_ids[0]); i++)
		if (!strcmp(cnt_names[i][0], kind))
			metrics_value(m, family, (const char *[]){ "reason", cnt_names[i][1], NULL },
				      (double)ss->counters[cnt_ids[i]]);
}

/* What happened to the kernel's timer events and the samples: taken, dropped, unwound. */
static void metrics_samples(struct run *r, struct metrics *m, const struct sampler_stats *ss)
{
	metrics_family(m, "profleet_agent_samples_total", "counter",
		       "Samples taken of targeted containers.");
	metrics_value(m, "profleet_agent_samples_total", NULL, (double)r->samples);
	metrics_family(m, "profleet_agent_kernel_events_total", "counter",
		       "Timer events the BPF program saw, by what became of them.");
	metrics_value(m, "profleet_agent_kernel_events_total",
		      (const char *[]){ "outcome", "sent", NULL }, (double)ss->counters[CNT_SENT]);
	metrics_value(m, "profleet_agent_kernel_events_total",
		      (const char *[]){ "outcome", "idle", NULL }, (double)ss->counters[CNT_IDLE]);
	metrics_value(m, "profleet_agent_kernel_events_total",
		      (const char *[]){ "outcome", "not_targeted", NULL },
		      (double)ss->counters[CNT_FILTERED]);
	metrics_value(m, "profleet_agent_kernel_events_total",
		      (const char *[]){ "outcome", "subsampled", NULL },
		      (double)ss->counters[CNT_SUBSAMPLED]);
	metrics_reasons(m, ss, "drop", "profleet_agent_samples_dropped_total",
			"Samples lost, by reason.");
	metrics_value(m, "profleet_agent_samples_dropped_total",
		      (const char *[]){ "reason", "unattributed", NULL }, (double)r->untargeted);
	metrics_value(m, "profleet_agent_samples_dropped_total",
		      (const char *[]){ "reason", "aggregate_full", NULL }, (double)r->agg_dropped);
	metrics_family(m, "profleet_agent_task_records_lost_total", "counter",
		       "perf mmap/exec/fork/exit records the kernel could not queue (gone processes "
		       "are found by a sweep at each interval).");
	metrics_value(m, "profleet_agent_task_records_lost_total", NULL, (double)ss->task_lost);
	metrics_family(m, "profleet_agent_drain_gap_seconds_max", "gauge",
		       "The longest time the sample ring buffer went undrained since the start "
		       "(it holds a second of samples at the full rate).");
	metrics_value(m, "profleet_agent_drain_gap_seconds_max", NULL,
		      (double)ss->drain_gap_ns_max / 1e9);
	metrics_reasons(m, ss, "unwind", "profleet_agent_unwind_failures_total",
			"Stack walks that stopped early or failed, by reason.");
	metrics_family(m, "profleet_agent_python_frames_total", "counter",
		       "Python frames the CPython walker put in samples.");
	metrics_value(m, "profleet_agent_python_frames_total", NULL,
		      (double)ss->counters[CNT_PY_FRAMES]);
	metrics_reasons(m, ss, "python", "profleet_agent_python_walk_failures_total",
			"CPython walks that found no frames or stopped early, by reason.");
	metrics_family(m, "profleet_agent_jvm_frames_total", "counter",
		       "JVM frames the HotSpot walker put in samples.");
	metrics_value(m, "profleet_agent_jvm_frames_total", NULL,
		      (double)ss->counters[CNT_JVM_FRAMES]);
	metrics_reasons(m, ss, "jvm", "profleet_agent_jvm_walk_failures_total",
			"HotSpot walks that stopped early, by reason.");
	metrics_single(m, "profleet_agent_v8_frames_total", "counter",
		       "JavaScript frames the V8 walker put in samples.",
		       (double)ss->counters[CNT_V8_FRAMES]);
	metrics_reasons(m, ss, "v8", "profleet_agent_v8_walk_failures_total",
			"Frames of code without unwind tables in V8 processes that were not V8's "
			"(kept as native frames), by reason.");
}

/* What the perf maps (/tmp/perf-PID.map) named JIT code with, and what they dropped. */
static void metrics_perfmaps(struct run *r, struct metrics *m)
{
	static const char *const fam = "profleet_agent_perf_map_events_total";
	struct perfmaps_stats s;

	perfmaps__stats(r->perfmaps, &s);
	{
		const struct {
			const char *event;
			uint64_t v;
		} ev[] = {
			{ "map_read", s.maps_read },
			{ "entry", s.entries },
			{ "entry_dropped", s.entries_dropped },
			{ "line_malformed", s.lines_malformed },
			{ "file_refused", s.files_refused },
			{ "read_capped", s.reads_capped },
			{ "file_replaced", s.files_replaced },
			{ "process_forgotten", s.processes_forgotten },
			{ "process_full", s.processes_full },
			{ "image_dropped", s.images_dropped },
			{ "rebuild", s.rebuilds },
			{ "rebuild_line", s.rebuild_lines },
			{ "rebuild_failed", s.rebuilds_failed },
		};

		metrics_family(m, fam, "counter",
			       "Processes' perf maps read for JIT code names: lines taken, "
			       "dropped at the caps or malformed, files refused, index rebuilds, ...");
		for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
			metrics_value(m, fam, (const char *[]){ "event", ev[i].event, NULL },
				      (double)ev[i].v);
	}
	metrics_family(m, "profleet_agent_perf_map_held", "gauge",
		       "JIT code names held from perf maps: entries (ranges, lines not merged "
		       "yet), and bytes allocated for them and their names.");
	metrics_value(m, "profleet_agent_perf_map_held",
		      (const char *[]){ "kind", "entries", NULL }, (double)s.entries_held);
	metrics_value(m, "profleet_agent_perf_map_held",
		      (const char *[]){ "kind", "bytes", NULL }, (double)s.bytes_held);
}

/* What the JVMs' code caches named (agent/jvm), and what could not be read. */
static void metrics_jvm(struct run *r, struct metrics *m)
{
	static const char *const fam = "profleet_agent_jvm_lookups_total";
	struct jvmsym_stats s;

	jvmsym_stats(r->jvmsym, &s);
	metrics_family(m, fam, "counter",
		       "Code addresses looked up in HotSpot JVMs' code caches, by result: named, "
		       "unreadable (a blob freed under us, a process gone), not a blob.");
	metrics_value(m, fam, (const char *[]){ "result", "named", NULL }, (double)s.named);
	metrics_value(m, fam, (const char *[]){ "result", "read_error", NULL },
		      (double)s.read_errors);
	metrics_value(m, fam, (const char *[]){ "result", "recycled", NULL }, (double)s.recycled);
	metrics_value(m, fam, (const char *[]){ "result", "not_found", NULL },
		      s.lookups >= s.named + s.read_errors + s.recycled ?
			      (double)(s.lookups - s.named - s.read_errors - s.recycled) : 0);
	metrics_single(m, "profleet_agent_jvm_inlined_frames_total", "counter",
		       "Frames of methods inlined into compiled JVM frames, named.",
		       (double)s.inlined);
	metrics_single(m, "profleet_agent_jvm_scope_errors_total", "counter",
		       "Compiled JVM frames whose inlined methods (all, or one) could not be read.",
		       (double)s.scope_errors);
	metrics_single(m, "profleet_agent_jvm_inlined_cut_total", "counter",
		       "Inlined JVM frames left out: more than 16 methods at one pc.",
		       (double)s.inlined_cut);
	metrics_single(m, "profleet_agent_jvm_no_line_total", "counter",
		       "Java frames named without a source line (no debug information at the pc).",
		       (double)s.no_line);
	metrics_single(m, "profleet_agent_jvm_names_dropped_total", "counter",
		       "JVM frame names dropped because the cache was full (read again if asked).",
		       (double)s.names_dropped);
	metrics_single(m, "profleet_agent_jvm_processes", "gauge",
		       "Processes known to run a HotSpot JVM whose code cache is read.", (double)s.jvms);
	metrics_single(m, "profleet_agent_jvm_unsupported_total", "counter",
		       "JVMs whose exported tables lack a structure the symbolizer needs.",
		       (double)s.unsupported);
}

/* What V8 processes' heaps named (agent/v8), and what could not be read. */
static void metrics_v8(struct run *r, struct metrics *m)
{
	static const char *const fam = "profleet_agent_v8_lookups_total";
	struct v8sym_stats s;

	v8sym_stats(r->v8sym, &s);
	metrics_family(m, fam, "counter",
		       "JavaScript functions looked up in V8 processes' heaps, by result: from the "
		       "cache, read, unreadable (a process gone, not a function).");
	metrics_value(m, fam, (const char *[]){ "result", "cached", NULL }, (double)s.hits);
	metrics_value(m, fam, (const char *[]){ "result", "read", NULL }, (double)s.reads);
	metrics_value(m, fam, (const char *[]){ "result", "read_error", NULL },
		      (double)s.read_errors);
	metrics_single(m, "profleet_agent_v8_no_line_total", "counter",
		       "JavaScript frames named without a source line (no positions, no script).",
		       (double)s.no_line);
	metrics_single(m, "profleet_agent_v8_names_dropped_total", "counter",
		       "JavaScript functions or scripts read but not kept: the cache was full.",
		       (double)s.dropped);
	metrics_single(m, "profleet_agent_v8_cache_bytes", "gauge",
		       "Bytes of names, position tables and line ends held for JavaScript frames.",
		       (double)s.bytes);
}

static void metrics_kernel(struct metrics *m, const struct sampler_stats *ss)
{
	metrics_family(m, "profleet_agent_bpf_info", "gauge",
		       "The kernel and the BPF variant loaded; degraded=1 when the kernel refused the "
		       "table-driven unwinder and frame pointers alone walk user stacks.");
	metrics_value(m, "profleet_agent_bpf_info",
		      (const char *[]){ "kernel", ss->kernel.release, "unwinder",
					ss->kernel.dwarf ? "dwarf" : "fp", "degraded",
					ss->kernel.degraded[0] ? "1" : "0", NULL }, 1);
	metrics_family(m, "profleet_agent_bpf_verified_instructions", "gauge",
		       "Instructions the verifier processed, summed over the programs (0 before 5.16).");
	metrics_value(m, "profleet_agent_bpf_verified_instructions", NULL,
		      (double)ss->kernel.verified_total);
}

/* Targets, what the agent tracks, the sampling rate. */
static void metrics_targets(struct run *r, struct metrics *m)
{
	int found = 0;

	for (int i = 0; i < r->nt; i++)
		found += r->t[i].cgroup_path[0] != 0;
	metrics_family(m, "profleet_agent_targets", "gauge",
		       "Containers targeted, by whether their cgroup was found.");
	metrics_value(m, "profleet_agent_targets", (const char *[]){ "cgroup", "found", NULL }, found);
	metrics_value(m, "profleet_agent_targets", (const char *[]){ "cgroup", "missing", NULL },
		      r->nt - found);
	{
		struct procs_stats ps;

		procs__stats(r->procs, &ps);
		metrics_family(m, "profleet_agent_tracked", "gauge",
			       "Processes and file mappings the agent holds for symbolization.");
		metrics_value(m, "profleet_agent_tracked", (const char *[]){ "kind", "processes", NULL },
			      (double)ps.procs_live);
		metrics_value(m, "profleet_agent_tracked", (const char *[]){ "kind", "mappings", NULL },
			      (double)ps.mappings_live);
	}
	metrics_family(m, "profleet_agent_sampling_frequency_hz", "gauge", "The kernel's sampling rate.");
	metrics_value(m, "profleet_agent_sampling_frequency_hz", NULL, r->base_hz);
}

static void metrics_backends(struct run *r, struct metrics *m, const struct fleet_client_stats *fs)
{
	metrics_family(m, "profleet_agent_websocket_connected", "gauge",
		       "1 while connected to the controller.");
	metrics_value(m, "profleet_agent_websocket_connected", NULL, fs->connected);
	metrics_family(m, "profleet_agent_websocket_events_total", "counter",
		       "Connection events with the controller.");
	metrics_value(m, "profleet_agent_websocket_events_total",
		      (const char *[]){ "event", "connect", NULL }, (double)fs->connects);
	metrics_value(m, "profleet_agent_websocket_events_total",
		      (const char *[]){ "event", "disconnect", NULL }, (double)fs->disconnects);
	metrics_value(m, "profleet_agent_websocket_events_total",
		      (const char *[]){ "event", "refusal", NULL }, (double)fs->refusals);
	metrics_value(m, "profleet_agent_websocket_events_total",
		      (const char *[]){ "event", "bad_frame", NULL }, (double)fs->bad_frames);
	{	/* per backend: read once, written as two families */
		static const char *const res[] = { "sent", "retry", "dropped_queue_full",
						   "dropped_rejected" };
		struct exporter_stats es[64];
		const char *names[64];
		int nb = 0;

		hmap_for_each(&r->exporters, it) {
			if (nb == 64)
				break;
			names[nb] = it->key;
			exporter_stats(((struct fbackend *)it->val)->e, &es[nb++]);
		}
		metrics_family(m, "profleet_agent_exports_total", "counter",
			       "Profiles handed to backends, by backend and result.");
		for (int i = 0; i < nb; i++) {
			uint64_t v[4] = { es[i].sent, es[i].retries, es[i].dropped_full,
					  es[i].dropped_rejected };

			for (int k = 0; k < 4; k++)
				metrics_value(m, "profleet_agent_exports_total",
					      (const char *[]){ "backend", names[i], "result", res[k],
								NULL }, (double)v[k]);
		}
		metrics_family(m, "profleet_agent_export_queue_depth", "gauge",
			       "Profiles waiting to be sent, by backend.");
		for (int i = 0; i < nb; i++)
			metrics_value(m, "profleet_agent_export_queue_depth",
				      (const char *[]){ "backend", names[i], NULL }, (double)es[i].queued);
	}
}

static void update_metrics(struct run *r)
{
	struct fleet_client_stats fs;
	struct sampler_stats ss;
	struct metrics m;
	char *text;
	size_t len;

	if (!r->http || metrics_begin(&m))
		return;
	fleet_client_stats(r->fc, &fs);
	sampler__stats(r->s, &ss);
	metrics_samples(r, &m, &ss);
	metrics_perfmaps(r, &m);
	metrics_jvm(r, &m);
	metrics_v8(r, &m);
	metrics_kernel(&m, &ss);
	metrics_targets(r, &m);
	metrics_backends(r, &m, &fs);
	text = metrics_end(&m, &len);
	pthread_mutex_lock(&r->http_lock);
	free(r->metrics);
	r->metrics = text;
	r->metrics_len = text ? len : 0;
	/* ready: sampling, and holding a target set from the controller */
	r->ready = r->version > 0;
	snprintf(r->not_ready, sizeof(r->not_ready), "%s",
		 r->version ? "" : fs.last_refusal[0] ? fs.last_refusal :
		 fs.connected ? "waiting for the first target set" : "not connected to the controller");
	r->last_tick = clock_mono_s();
	pthread_mutex_unlock(&r->http_lock);
}

static void http_handler(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	struct run *r = ctx;

	pthread_mutex_lock(&r->http_lock);
	if (!strcmp(req->url, "/healthz")) {
		if (clock_mono_s() - r->last_tick <= 10)
			httpd_text(resp, 200, "ok");
		else
			httpd_text(resp, 503, "the main loop has not run for %.0f s",
				   clock_mono_s() - r->last_tick);
	} else if (!strcmp(req->url, "/readyz")) {
		if (r->ready)
			httpd_text(resp, 200, "ready");
		else
			httpd_text(resp, 503, "not ready: %s", r->not_ready);
	} else if (!strcmp(req->url, "/metrics") && r->metrics) {
		resp->body = malloc(r->metrics_len + 1);
		if (resp->body) {
			memcpy(resp->body, r->metrics, r->metrics_len);
			resp->len = r->metrics_len;
			resp->type = METRICS_CONTENT_TYPE;
		}
	} else {
		httpd_text(resp, 404, "not found: %s (try /metrics, /healthz, /readyz)", req->url);
	}
	pthread_mutex_unlock(&r->http_lock);
}

/* The state file: what the agent tracks and holds. */
static void state_tracked(struct run *r, cJSON *o)
{
	struct procs_stats ps;

	procs__stats(r->procs, &ps);
	cJSON_AddNumberToObject(o, "processesTracked", (double)ps.procs_live);
	cJSON_AddNumberToObject(o, "mappingsTracked", (double)ps.mappings_live);
	cJSON_AddNumberToObject(o, "mappingsFreed", (double)ps.mappings_freed);
	cJSON_AddNumberToObject(o, "v1Pids", (double)r->v1_pids);
	cJSON_AddNumberToObject(o, "v1PidsDropped", (double)r->v1_pids_dropped);
	cJSON_AddNumberToObject(o, "labelsDropped", (double)r->labels_dropped);
	cJSON_AddNumberToObject(o, "execsFollowed", (double)r->execs_followed);
	cJSON_AddNumberToObject(o, "droppedAggregateFull", (double)r->agg_dropped);
	cJSON_AddNumberToObject(o, "aggregateBytes", (double)r->agg_budget.used);
	if (r->unw) {
		struct unwinder_stats us;

		unwinder__stats(r->unw, &us);
		cJSON_AddNumberToObject(o, "unwindTables", (double)us.tables_live);
		cJSON_AddNumberToObject(o, "unwindTablesIdle", (double)us.tables_idle);
		cJSON_AddNumberToObject(o, "unwindTablesPending", (double)us.tables_pending);
		cJSON_AddNumberToObject(o, "unwindRows", (double)us.rows_live);
		cJSON_AddNumberToObject(o, "unwindPids", (double)us.pids);
		cJSON_AddNumberToObject(o, "unwindLoadMsTotal", (double)us.load_ns_total / 1e6);
		cJSON_AddNumberToObject(o, "unwindTablesFailed", (double)us.tables_failed);
		cJSON_AddNumberToObject(o, "unwindFailuresReused", (double)us.failures_reused);
	}
}

static void state_exporters(struct run *r, cJSON *o)
{
	cJSON *ex = cJSON_AddObjectToObject(o, "exporters");

	hmap_for_each(&r->exporters, it) {
		struct exporter_stats es;
		cJSON *j = cJSON_CreateObject();

		exporter_stats(((struct fbackend *)it->val)->e, &es);
		cJSON_AddNumberToObject(j, "sent", (double)es.sent);
		cJSON_AddNumberToObject(j, "retries", (double)es.retries);
		cJSON_AddNumberToObject(j, "droppedFull", (double)es.dropped_full);
		cJSON_AddNumberToObject(j, "droppedRejected", (double)es.dropped_rejected);
		cJSON_AddNumberToObject(j, "queued", (double)es.queued);
		cJSON_AddStringToObject(j, "lastError", es.last_error);
		cJSON_AddItemToObject(ex, it->key, j);
	}
}

static void state_targets(struct run *r, cJSON *o)
{
	cJSON *arr;

	arr = cJSON_AddArrayToObject(o, "targets");
	for (int i = 0; i < r->nt; i++) {
		struct target *t = &r->t[i];
		cJSON *j = cJSON_CreateObject(), *pl;

		cJSON_AddStringToObject(j, "namespace", t->ns);
		cJSON_AddStringToObject(j, "pod", t->pod);
		cJSON_AddStringToObject(j, "container", t->container);
		cJSON_AddStringToObject(j, "containerID", t->container_id);
		cJSON_AddStringToObject(j, "cgroup", t->cgroup_path);
		cJSON_AddNumberToObject(j, "cgroupID", (double)t->cgroup_id);
		cJSON_AddNumberToObject(j, "frequencyHz", t->hz);
		cJSON_AddNumberToObject(j, "sampleEvery", t->sample_every);
		cJSON_AddNumberToObject(j, "samples", (double)t->samples);
		pl = cJSON_AddArrayToObject(j, "policies");
		for (int k = 0; k < t->npolicies; k++)
			cJSON_AddItemToArray(pl, cJSON_CreateString(t->policy_names[k]));
		cJSON_AddItemToArray(arr, j);
	}
}

static void write_state(struct run *r)
{
	struct fleet_client_stats fs;
	struct sampler_stats ss;
	cJSON *o = cJSON_CreateObject(), *pol;
	char tmp[4200], *s;
	FILE *f;

	if (!o)
		return;
	fleet_client_stats(r->fc, &fs);
	sampler__stats(r->s, &ss);
	cJSON_AddStringToObject(o, "node", r->cfg.node_name);
	cJSON_AddBoolToObject(o, "connected", fs.connected);
	cJSON_AddNumberToObject(o, "connects", (double)fs.connects);
	cJSON_AddNumberToObject(o, "refusals", (double)fs.refusals);
	cJSON_AddStringToObject(o, "lastRefusal", fs.last_refusal);
	cJSON_AddNumberToObject(o, "version", (double)r->version);
	cJSON_AddNumberToObject(o, "frequencyHz", r->base_hz);
	cJSON_AddBoolToObject(o, "cgroupV2", r->v2);
	cJSON_AddNumberToObject(o, "samples", (double)r->samples);
	cJSON_AddNumberToObject(o, "samplesUnattributed", (double)r->untargeted);
	cJSON_AddNumberToObject(o, "kernelSeen", (double)ss.counters[CNT_SAMPLES]);
	cJSON_AddNumberToObject(o, "kernelFiltered", (double)ss.counters[CNT_FILTERED]);
	cJSON_AddNumberToObject(o, "kernelSubsampled", (double)ss.counters[CNT_SUBSAMPLED]);
	cJSON_AddNumberToObject(o, "dropped", (double)ss.counters[CNT_RINGBUF_FULL]);
	cJSON_AddNumberToObject(o, "taskRecordsLost", (double)ss.task_lost);
	cJSON_AddNumberToObject(o, "profilesExported", (double)r->exported);
	cJSON_AddNumberToObject(o, "exportFailures", (double)r->export_failures);
	state_tracked(r, o);
	state_exporters(r, o);
	state_targets(r, o);
	pol = cJSON_AddObjectToObject(o, "policySamples");
	hmap_for_each(&r->policy_samples, it)
		cJSON_AddNumberToObject(pol, it->key, (double)*(uint64_t *)it->val);
	s = cJSON_Print(o);
	cJSON_Delete(o);
	if (!s)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", r->cfg.state_file);
	f = fopen(tmp, "we");
	if (f) {
		fputs(s, f);
		fputc('\n', f);
		if (!fclose(f))
			rename(tmp, r->cfg.state_file);
	}
	free(s);
}

/* Writes the whole node's profile of the interval to every --output. */
static void write_outputs(struct run *r, const struct ksyms *ks, int64_t start_ns, double secs)
{
	struct profile *prof = profile__new();
	int err;

	if (!prof) {
		log_warn("out of memory: the interval's --output profile is lost");
		return;
	}
	prof->period_nanos = period_ns(r);
	prof->time_nanos = start_ns;
	prof->duration_nanos = (int64_t)(secs * 1e9);
	err = agg__build(r->agg, ks, prof);
	if (err)
		log_warn("cannot build the interval's profile: %s", strerror(-err));
	for (int i = 0; !err && i < r->cfg.noutputs; i++) {
		err = record_write_output(prof, &r->cfg.outputs[i]);
		if (err)
			log_warn("cannot write %s: %s", r->cfg.outputs[i].path, strerror(-err));
	}
	profile__free(prof);
}

/* Sends each target's profile of the interval, writes --output, starts a new interval. */
static void flush_interval(struct run *r, int64_t start_ns, double secs)
{
	struct ksyms *ks = NULL;
	bool any = r->agg != NULL;

	for (int i = 0; i < r->nt; i++)
		any |= r->t[i].agg && r->t[i].agg_samples;
	if (any && r->cfg.kernel_stacks)
		ks = ksyms__load(NULL);
	for (int i = 0; i < r->nt; i++)
		export_target(r, &r->t[i], ks, start_ns, start_ns + (int64_t)(secs * 1e9));
	if (r->agg) {
		write_outputs(r, ks, start_ns, secs);
		agg__reset(r->agg);
	}
	ksyms__free(ks);
	/* every aggregate is empty: mappings of processes gone may now be freed */
	if (r->unw)
		unwinder__sweep(r->unw);
	if (procs__gc(r->procs))
		log_warn("out of memory freeing the mappings of exited processes");
	perfmaps__gc(r->perfmaps);
	v8sym_gc(r->v8sym);
	symcache__trim(r->sc);
	malloc_trim(0);	/* what the interval freed goes back to the system */
}

/* Finds the cgroup hierarchies and decides v2 or v1. 0 or -1 (logged). */
static int run_cgroups(struct run *r)
{
	const struct run_config *cfg = &r->cfg;
	int err = cg_mounts_read(cfg->mountinfo ? cfg->mountinfo : "/proc/self/mountinfo",
				 &r->mounts);

	if (cfg->cgroup_root) {
		snprintf(r->mounts.v2, sizeof(r->mounts.v2), "%s", cfg->cgroup_root);
		err = 0;
	}
	if (err || (!r->mounts.v2[0] && !r->mounts.v1[0])) {
		log_error("no cgroup hierarchy found (mountinfo): cannot map pods to processes");
		return -1;
	}
	if (cfg->cgroup_mode == 1 && !r->mounts.v1[0]) {
		log_error("--cgroup-mode v1: no cgroup v1 hierarchy is mounted");
		return -1;
	}
	if (cfg->cgroup_mode == 2 && !r->mounts.v2[0]) {
		log_error("--cgroup-mode v2: no cgroup v2 hierarchy is mounted");
		return -1;
	}
	r->v2 = r->mounts.v2[0] != 0 && cfg->cgroup_mode != 1;
	log_info("cgroups: %s %s", r->v2 ? "v2 at" : "v1 only, processes of",
		 r->v2 ? r->mounts.v2 : r->mounts.v1);
	return 0;
}

/* procs, symbols, the --output aggregate, the sampler and the pipeline, --export. 0 or -1. */
static int run_open(struct run *r)
{
	const struct run_config *cfg = &r->cfg;
	struct sampler_opts so = {
		.frequency = cfg->max_frequency,
		.filter = FILTER_CGROUPS,
		.kernel_stacks = cfg->kernel_stacks,
		.user_stacks = true,
		.follow_children = true,
		.pids_fallback = !r->v2,
		.dwarf_unwind = cfg->dwarf_unwind,
		.unwind_rows = cfg->unwind_rows,
		.allow_degraded = true,
		.python = cfg->dwarf_unwind && cfg->python,
		.jvm = cfg->dwarf_unwind,
		.v8 = cfg->dwarf_unwind && cfg->nodejs,
		.start_disabled = true,
	};

	r->procs = procs__new(NULL);
	r->sc = symcache__new(NULL);
	r->pysym = pysym_new(0);
	r->perfmaps = perfmaps__new(NULL);
	r->jvmsym = jvmsym_new();
	r->v8sym = v8sym_new(0);
	if (!r->procs || !r->sc || !r->pysym || !r->perfmaps || !r->jvmsym || !r->v8sym)
		return -1;
	if (cfg->noutputs) {	/* the whole node's profile is kept only to be written */
		r->agg = agg__new(&(struct agg_opts){ .kernel_addresses = cfg->kernel_addresses,
						      .pysym = r->pysym, .perfmaps = r->perfmaps,
						      .jvmsym = r->jvmsym, .v8sym = r->v8sym },
				  r->procs, r->sc);
		if (!r->agg)
			return -1;
	}
	r->pl = (struct pipeline){ .procs = r->procs, .pysym = r->pysym, .perfmaps = r->perfmaps,
				   .jvmsym = r->jvmsym, .v8sym = r->v8sym,
				   .table_cache_dir = cfg->table_cache, .consume = consume,
				   .wanted = wanted, .ctx = r };
	pipeline_bind(&r->pl, &so);
	r->s = sampler__new(&so);
	if (!r->s || pipeline_start_unwinder(&r->pl, r->s))
		return -1;
	r->unw = r->pl.unw;
	for (int i = 0; i < cfg->nexports; i++) {
		char msg[300];

		r->cli_exporters[r->ncli_exporters] = exporter_new(&cfg->exports[i], NULL, NULL, msg,
								    sizeof(msg));
		if (!r->cli_exporters[r->ncli_exporters]) {
			log_error("%s", msg);
			return -1;
		}
		r->ncli_exporters++;
	}
	return 0;
}

static int run_serve_http(struct run *r)
{
	char herr[300];

	if (!r->cfg.http_listen)
		return 0;
	r->last_tick = clock_mono_s();
	r->http = httpd_start(r->cfg.http_listen, NULL, http_handler, r, herr, sizeof(herr));
	if (!r->http) {
		log_error("--http-listen %s", herr);
		return -1;
	}
	update_metrics(r);
	log_notice("metrics and health on http://%s (port %d)", r->cfg.http_listen,
		   httpd_port(r->http));
	return 0;
}

static bool policy_used(const struct run *r, const char *name)
{
	for (int i = 0; i < r->nt; i++)
		for (int k = 0; k < r->t[i].npolicies; k++)
			if (!strcmp(r->t[i].policy_names[k], name))
				return true;
	return false;
}

/* Policies no target uses any more: their last count went out with the set's counters. */
static void prune_policies(struct run *r)
{
	hmap_for_each(&r->policy_samples, it)
		if (!policy_used(r, it->key))
			free(hmap_del_entry(&r->policy_samples, it));
}

/* Backends the set no longer names, once they have delivered what they hold. */
static void prune_backends(struct run *r, const Profleet__Fleet__V1__TargetSet *set)
{
	hmap_for_each(&r->exporters, it) {
		struct exporter_stats es;
		bool named = false;

		for (size_t i = 0; i < set->n_backends && !named; i++)
			named = set->backends[i]->name && !strcmp(set->backends[i]->name, it->key);
		exporter_stats(((struct fbackend *)it->val)->e, &es);
		if (named || es.queued)
			continue;
		log_info("backend %s: no longer used", it->key);
		fbackend_free(hmap_del_entry(&r->exporters, it));
	}
}

/* A target set from the controller, if one came; else a rescan when one is due. */
static void run_targets(struct run *r, double now)
{
	Profleet__Fleet__V1__TargetSet *set = fleet_client_take_targets(r->fc);

	if (set && set->version == r->version && r->version) {
		/* the same set again (a reconnect): nothing to change */
		fleet_client_ack(r->fc, set->version, r->found, r->missing);
	} else if (set) {
		apply_set(r, set);
		fleet_client_ack(r->fc, set->version, r->found, r->missing);
		fleet_client_set_have(r->fc, set->version);
		r->last.scan = now;
		send_counters(r, true);
		r->last.counters = now;
		prune_policies(r);
		prune_backends(r, set);
	} else if (now - r->last.scan >= RESCAN_EVERY_S && (r->missing || !r->v2)) {
		uint32_t before = r->found;

		sync_cgroups(r, false);
		r->last.scan = now;
		if (r->found != before)	/* tell the controller: status shows it */
			fleet_client_ack(r->fc, r->version, r->found, r->missing);
	}
	if (set)
		profleet__fleet__v1__target_set__free_unpacked(set, NULL);
}

/* What is due after a poll: targets, counters, state and metrics, the interval's end. */
static void run_tick(struct run *r)
{
	double now = clock_mono_s();

	run_targets(r, now);
	if (now - r->last.counters >= COUNTERS_EVERY_S) {
		send_counters(r, false);
		r->last.counters = now;
	}
	if ((r->cfg.state_file || r->http) && now - r->last.state >= STATE_EVERY_S) {
		if (r->cfg.state_file)
			write_state(r);
		update_metrics(r);
		r->last.state = now;
	}
	if (now - r->last.interval >= r->cfg.interval) {
		flush_interval(r, r->interval_start_ns, now - r->last.interval);
		r->last.interval = now;
		r->interval_start_ns = clock_real_ns();
	}
}

/* At exit: the last interval goes out, and what was collected is delivered (10 s each). */
static void run_finish(struct run *r)
{
	sampler__stop(r->s);
	sampler__drain(r->s);
	flush_interval(r, r->interval_start_ns, clock_mono_s() - r->last.interval);
	hmap_for_each(&r->exporters, it) {
		struct fbackend *b = it->val;
		unsigned int left = exporter_drain(b->e, 10000);

		if (left)
			log_warn("export %s: %u profile(s) not delivered at exit", exporter_describe(b->e),
				 left);
	}
	for (int i = 0; i < r->ncli_exporters; i++)
		if (exporter_drain(r->cli_exporters[i], 10000))
			log_warn("export %s: profiles not delivered at exit",
				 exporter_describe(r->cli_exporters[i]));
	if (r->cfg.state_file)
		write_state(r);
}

static void run_close(struct run *r)
{
	httpd_stop(r->http);
	free(r->metrics);
	/* the controller-store exporters use the fleet client: they go first */
	hmap_for_each(&r->exporters, it)
		fbackend_free(it->val);
	hmap_free(&r->exporters);
	fleet_client_stop(r->fc);
	for (int i = 0; i < r->nt; i++)
		target_free(&r->t[i]);
	free(r->t);
	free(r->by_cgid);
	hmap_for_each(&r->policy_samples, it)
		free(it->val);
	hmap_free(&r->policy_samples);
	for (int i = 0; i < r->ncli_exporters; i++)
		exporter_free(r->cli_exporters[i]);
	pipeline_free(&r->pl);	/* its unwinder uses the sampler's maps */
	sampler__free(r->s);
	agg__free(r->agg);
	symcache__free(r->sc);
	pysym_free(r->pysym);
	perfmaps__free(r->perfmaps);
	jvmsym_free(r->jvmsym);
	v8sym_free(r->v8sym);
	procs__free(r->procs);
}

int run_main(const struct run_config *cfg)
{
	struct fleet_client_opts fo = {
		.url = cfg->controller,
		.node_name = cfg->node_name,
		.token_file = cfg->token_file,
		.ca_file = cfg->ca_file,
	};
	struct run r = { .cfg = *cfg, .agg_budget = { .max = TARGETS_AGG_BYTES } };
	int ret = 1, err;

	cli_catch_stop_signals();
	srandom((unsigned int)(time(NULL) ^ getpid()));
	r.started_unix = (uint64_t)time(NULL);
	/* big temporaries (a table's compile, a symbol file) are mapped and given back,
	 * not left in the heap where they would keep the agent's RSS at its peak */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	/* the worker threads (tables, symbols, exports) share one arena: each thread's
	 * own would keep its peak of small blocks */
	mallopt(M_ARENA_MAX, 2);
	pthread_mutex_init(&r.http_lock, NULL);
	if (run_cgroups(&r))
		return 1;
	if (run_open(&r))
		goto out;
	r.fc = fleet_client_start(&fo);
	if (!r.fc || run_serve_http(&r))
		goto out;
	log_notice("agent for node %s: controller %s", cfg->node_name, cfg->controller);
	r.last.interval = clock_mono_s();
	r.interval_start_ns = clock_real_ns();
	ret = 0;
	while (!cli_stop_requested) {
		err = sampler__poll(r.s, 100);
		if (err < 0 && err != -EINTR) {
			log_error("polling samples: %s", strerror(-err));
			ret = 1;
			break;
		}
		run_tick(&r);
	}
	log_notice("stopping");
	run_finish(&r);
out:
	if (ret && !r.s)
		log_error("the agent could not start");
	run_close(&r);
	return ret;
}

/* ---- command line --------------------------------------------------------- */

void run_print_help(FILE *out)
{
	fprintf(out,
		"Usage: profleet-agent run --controller URL --node-name NAME [OPTIONS]\n"
		"Profiles the containers the controller targets on this node.\n\n"
		"  --controller URL     ws://HOST:PORT or wss://HOST:PORT of profleet-controller\n"
		"                       (PROFLEET_CONTROLLER)\n"
		"  --node-name NAME     this node's name (PROFLEET_NODE_NAME, else NODE_NAME)\n"
		"  --token-file PATH    service-account token presented to the controller\n"
		"                       (PROFLEET_TOKEN_FILE, default\n"
		"                       /var/run/secrets/profleet/token)\n"
		"  --ca-file PATH       CA bundle for wss:// (PROFLEET_CA_FILE)\n"
		"  --max-frequency HZ   cap on any target's rate, 1..1000 (PROFLEET_MAX_FREQUENCY, 250)\n"
		"  -o, --output PATH    write each interval's profile here (.pb.gz, .svg, .txt);\n"
		"                       repeatable (PROFLEET_OUTPUT)\n"
		"  --interval S         profile interval in seconds (PROFLEET_INTERVAL, 60)\n"
		"  --export KIND=URL    also send every target's profile there: otlp-http=URL,\n"
		"                       pyroscope=URL or dir=PATH; repeatable (PROFLEET_EXPORT). The policies'\n"
		"                       ClusterProfilingBackends are used in any case.\n"
		"  --state-file PATH    JSON with targets, cgroups and counts, rewritten every second\n"
		"                       (PROFLEET_STATE_FILE)\n"
		"  --http-listen ADDR:PORT  serve /metrics (Prometheus), /healthz and /readyz on\n"
		"                       this IPv4 or IPv6 address (the chart: the pod's IP); :PORT\n"
		"                       is 127.0.0.1. At most 8 connections per client, idle ones\n"
		"                       closed after 15 s (PROFLEET_HTTP_LISTEN; default: none)\n"
		"  --cgroup-root PATH   cgroup v2 mount to search (PROFLEET_CGROUP_ROOT; default from\n"
		"                       /proc/self/mountinfo)\n"
		"  --cgroup-mode MODE   auto (v2 when mounted), v2, or v1: find containers in a v1\n"
		"                       hierarchy and target their processes (PROFLEET_CGROUP_MODE)\n"
		"  --kernel-stacks on|off (PROFLEET_KERNEL_STACKS, on)\n"
		"  --kernel-addresses on|off keep kernel frames' addresses in the profiles; off: a\n"
		"                       kernel frame is its function at address 0, and the profiles\n"
		"                       do not reveal where the kernel is (PROFLEET_KERNEL_ADDRESSES,\n"
		"                       off)\n"
		"  --unwinder dwarf|fp  (PROFLEET_UNWINDER, dwarf)\n"
		"  --python on|off      name CPython's functions: its frames walked in the kernel,\n"
		"                       read from the interpreter; with --unwinder dwarf\n"
		"                       (PROFLEET_PYTHON, on)\n"
		"  --nodejs on|off      name Node.js's JavaScript functions: V8's frames walked in\n"
		"                       the kernel, read from the process; with --unwinder dwarf\n"
		"                       (PROFLEET_NODEJS, on)\n"
		"  --unwind-rows N      rows of the kernel's unwind table array, 16 bytes each\n"
		"                       (PROFLEET_UNWIND_ROWS, 1048576)\n"
		"  --table-cache DIR    keep compiled unwind tables in DIR, by build id, for restarts\n"
		"                       and the next container of an image (PROFLEET_TABLE_CACHE;\n"
		"                       default: none)\n"
		"  --log PATH, --log-level LEVEL   as for record\n"
		"  -h, --help\n");
}

static const char *envv(char **envp, const char *name)
{
	size_t n = strlen(name);

	for (char **e = envp; e && *e; e++)
		if (!strncmp(*e, name, n) && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static int bad_value(FILE *err, const char *opt, const char *v, const char *want)
{
	fprintf(err, "profleet-agent run: --%s %s: want %s\n", opt, v, want);
	return -1;
}

/* A whole decimal number in [lo, hi]: 0, else -1. */
static int parse_long(const char *v, long lo, long hi, long *ret)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (!*v || *end || errno || n < lo || n > hi)
		return -1;
	*ret = n;
	return 0;
}

static int add_export(struct run_config *c, const char *v, FILE *err)
{
	char msg[300];

	if (c->nexports == CLI_MAX_EXPORTS) {
		fprintf(err, "profleet-agent run: at most %d --export\n", CLI_MAX_EXPORTS);
		return -1;
	}
	if (export_parse_target(v, &c->exports[c->nexports], msg, sizeof(msg))) {
		fprintf(err, "profleet-agent run: %s\n", msg);
		return -1;
	}
	c->nexports++;
	return 0;
}

static int add_output(struct run_config *c, const char *v, FILE *err)
{
	if (c->noutputs == CLI_MAX_OUTPUTS) {
		fprintf(err, "profleet-agent run: at most %d --output\n", CLI_MAX_OUTPUTS);
		return -1;
	}
	c->outputs[c->noutputs].path = v;
	c->outputs[c->noutputs].format = cli_format_from_path(v);
	c->noutputs++;
	return 0;
}

/* The options that take a value to check. */
static int set_checked_opt(struct run_config *c, int ch, const char *v, FILE *err)
{
	long n;
	char *end;
	double d;

	switch (ch) {
	case 'M':
		c->cgroup_mode = !strcmp(v, "auto") ? 0 : !strcmp(v, "v1") ? 1 :
				 !strcmp(v, "v2") ? 2 : -1;
		return c->cgroup_mode < 0 ? bad_value(err, "cgroup-mode", v, "auto, v1 or v2") : 0;
	case 'm':
		if (parse_long(v, 1, 1000, &n))
			return bad_value(err, "max-frequency", v, "1..1000");
		c->max_frequency = (int)n;
		return 0;
	case 'i':
		d = strtod(v, &end);
		if (*end || !(d >= 1 && d <= 86400))
			return bad_value(err, "interval", v, "1..86400 seconds");
		c->interval = d;
		return 0;
	case 'k':
		return cli_parse_bool(v, &c->kernel_stacks) ?
			       bad_value(err, "kernel-stacks", v, "on or off") : 0;
	case 'K':
		return cli_parse_bool(v, &c->kernel_addresses) ?
			       bad_value(err, "kernel-addresses", v, "on or off") : 0;
	case 'P':
		return cli_parse_bool(v, &c->python) ? bad_value(err, "python", v, "on or off") : 0;
	case 'J':
		return cli_parse_bool(v, &c->nodejs) ? bad_value(err, "nodejs", v, "on or off") : 0;
	case 'u':
		if (strcmp(v, "dwarf") && strcmp(v, "fp"))
			return bad_value(err, "unwinder", v, "dwarf or fp");
		c->dwarf_unwind = !strcmp(v, "dwarf");
		return 0;
	case 'r':
		if (parse_long(v, 1024, INT_MAX, &n)) {
			fprintf(err, "profleet-agent run: --unwind-rows %s: want 1024..%d\n", v,
				INT_MAX);
			return -1;
		}
		c->unwind_rows = (uint32_t)n;
		return 0;
	case 'x':
		return add_export(c, v, err);
	case 'o':
		return add_output(c, v, err);
	}
	return 0;
}

static int set_opt(struct run_config *c, int ch, const char *v, FILE *err)
{
	switch (ch) {
	case 'c': c->controller = v; break;
	case 'T': c->table_cache = *v ? v : NULL; break;
	case 'n': c->node_name = v; break;
	case 't': c->token_file = v; break;
	case 'a': c->ca_file = v; break;
	case 's': c->state_file = v; break;
	case 'H': c->http_listen = v; break;
	case 'g': c->cgroup_root = v; break;
	case 'L': c->log_target = v; break;
	case 'l': c->log_level = v; break;
	default: return set_checked_opt(c, ch, v, err);
	}
	return 0;
}

enum cli_result run_parse(int argc, char **argv, char **envp, struct run_config *c, FILE *out,
			  FILE *err)
{
	static const struct option longopts[] = {
		{ "controller", required_argument, NULL, 'c' },
		{ "node-name", required_argument, NULL, 'n' },
		{ "token-file", required_argument, NULL, 't' },
		{ "ca-file", required_argument, NULL, 'a' },
		{ "max-frequency", required_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "export", required_argument, NULL, 'x' },
		{ "interval", required_argument, NULL, 'i' },
		{ "state-file", required_argument, NULL, 's' },
		{ "http-listen", required_argument, NULL, 'H' },
		{ "cgroup-root", required_argument, NULL, 'g' },
		{ "cgroup-mode", required_argument, NULL, 'M' },
		{ "kernel-stacks", required_argument, NULL, 'k' },
		{ "kernel-addresses", required_argument, NULL, 'K' },
		{ "unwinder", required_argument, NULL, 'u' },
		{ "python", required_argument, NULL, 'P' },
		{ "nodejs", required_argument, NULL, 'J' },
		{ "unwind-rows", required_argument, NULL, 'r' },
		{ "table-cache", required_argument, NULL, 'T' },
		{ "log", required_argument, NULL, 'L' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	static const struct { const char *env; int ch; } envs[] = {
		{ "PROFLEET_CONTROLLER", 'c' }, { "NODE_NAME", 'n' }, { "PROFLEET_NODE_NAME", 'n' },
		{ "PROFLEET_TOKEN_FILE", 't' }, { "PROFLEET_CA_FILE", 'a' },
		{ "PROFLEET_MAX_FREQUENCY", 'm' }, { "PROFLEET_OUTPUT", 'o' }, { "PROFLEET_EXPORT", 'x' },
		{ "PROFLEET_INTERVAL", 'i' }, { "PROFLEET_STATE_FILE", 's' },
		{ "PROFLEET_HTTP_LISTEN", 'H' },
		{ "PROFLEET_CGROUP_ROOT", 'g' }, { "PROFLEET_CGROUP_MODE", 'M' },
		{ "PROFLEET_KERNEL_STACKS", 'k' }, { "PROFLEET_KERNEL_ADDRESSES", 'K' },
		{ "PROFLEET_UNWINDER", 'u' }, { "PROFLEET_PYTHON", 'P' }, { "PROFLEET_NODEJS", 'J' },
		{ "PROFLEET_UNWIND_ROWS", 'r' },
		{ "PROFLEET_TABLE_CACHE", 'T' },
		{ "PROFLEET_LOG", 'L' }, { "PROFLEET_LOG_LEVEL", 'l' },
	};
	int ch;

	memset(c, 0, sizeof(*c));
	c->token_file = "/var/run/secrets/profleet/token";
	c->max_frequency = 250;
	c->interval = 60;
	c->kernel_stacks = true;
	c->dwarf_unwind = true;
	c->python = true;
	c->nodejs = true;
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		const char *v = envv(envp, envs[i].env);

		if (v && *v && set_opt(c, envs[i].ch, v, err))
			return CLI_USAGE_ERROR;
	}
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":ho:", longopts, NULL)) != -1) {
		if (ch == 'h') {
			run_print_help(out);
			return CLI_EXIT_OK;
		}
		if (ch == '?' || ch == ':') {
			fprintf(err, "profleet-agent run: %s '%s' (see --help)\n",
				ch == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
			return CLI_USAGE_ERROR;
		}
		if (set_opt(c, ch, optarg, err))
			return CLI_USAGE_ERROR;
	}
	if (optind < argc) {
		fprintf(err, "profleet-agent run: unexpected argument '%s'\n", argv[optind]);
		return CLI_USAGE_ERROR;
	}
	if (!c->controller || !c->node_name || !*c->node_name) {
		fprintf(err, "profleet-agent run: --controller and --node-name are required\n");
		return CLI_USAGE_ERROR;
	}
	return CLI_OK;
}
