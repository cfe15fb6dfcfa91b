// SPDX-License-Identifier: Apache-2.0
/*
 * The controller's target sets kept up to date (controller/targets.c) against
 * the full pass it replaced (resolve() of every policy against every pod, then
 * every node's set encoded), in the same run, on bench/fleet.sh's shape: pods
 * spread over nodes, one "bench" policy selecting them all and more policies
 * selecting a tenth each. Prints the time of each and their ratio for:
 *   - a policy change that touches every node (the bench policy's frequency),
 *   - that policy deleted, and created again (every pod matched against it),
 *   - a policy change that touches a tenth of the nodes' pods,
 *   - a burst of pod changes (what 200 pods a second bring in one 200 ms pass),
 * and the memory the kept state takes per pod. Numbers, never pass/fail.
 *
 *   targetsbench [NODES [PODS [POLICIES]]]     (default 5000 150000 50)
 * TARGETSBENCH_REPEAT=N: that many more every-node changes before the one timed
 * (to profile them: perf record -g build/bench/targetsbench);
 * TARGETSBENCH_CREATE_REPEAT=N: as many more deletions and creations of the
 * policy selecting every pod before the ones timed.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmap.h"
#include "model.h"
#include "resolve.h"
#include "targets.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t heap_used(void)
{
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;	/* large tables are mmapped apart */
}

static struct pod *make_pod(int i, int nodes, int gen)
{
	char json[1024];
	struct pod *p = calloc(1, sizeof(*p));
	cJSON *j;

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"pod-%d\",\"namespace\":\"fleet\",\"uid\":\"%08x-0000-4000-8000-000000000000\","
		 "\"labels\":{\"app\":\"a%d\",\"bench\":\"yes\"}},"
		 "\"spec\":{\"nodeName\":\"sim-node-%d\",\"containers\":[{\"name\":\"app\"}]},"
		 "\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"app\","
		 "\"containerID\":\"containerd://%064x\"}]}}",
		 i, i, i % 10, i % nodes, i + 1 + gen * 1000000);
	j = cJSON_Parse(json);
	if (!j || !p || pod_from_json(j, p)) {
		fprintf(stderr, "targetsbench: cannot make pod %d\n", i);
		exit(1);
	}
	cJSON_Delete(j);
	return p;
}

static struct policy *make_policy(int k, int hz, int gen)
{
	char json[1024];
	struct policy *p = calloc(1, sizeof(*p));
	cJSON *j;

	if (k == 0)
		snprintf(json, sizeof(json),
			 "{\"metadata\":{\"name\":\"bench\",\"namespace\":\"fleet\",\"uid\":\"u0\",\"generation\":%d},"
			 "\"spec\":{\"selector\":{\"podSelector\":{\"matchLabels\":{\"bench\":\"yes\"}}},"
			 "\"sampling\":{\"frequencyHz\":%d}}}", gen, hz);
	else
		snprintf(json, sizeof(json),
			 "{\"metadata\":{\"name\":\"extra-%d\",\"namespace\":\"fleet\",\"uid\":\"u%d\",\"generation\":%d},"
			 "\"spec\":{\"selector\":{\"podSelector\":{\"matchLabels\":{\"app\":\"a%d\"}}},"
			 "\"sampling\":{\"frequencyHz\":%d}}}", k, k, gen, k % 10, hz);
	j = cJSON_Parse(json);
	if (!j || !p || policy_from_json(j, false, 1000, p)) {
		fprintf(stderr, "targetsbench: cannot make policy %d\n", k);
		exit(1);
	}
	cJSON_Delete(j);
	return p;
}

static void replace(struct hmap *m, const char *key, void *v, bool pod)
{
	void *old = NULL;

	hmap_put(m, key, v, &old);
	if (!old)
		return;
	if (pod)
		pod_free(old);
	else
		policy_free(old);
	free(old);
}

/* The pass this replaced: every policy against every pod, every node's set encoded. */
static double full_pass(const struct hmap *pods, const struct hmap *policies)
{
	struct resolve_input in = { .store = true };
	struct resolve_output out;
	double t0 = now_s();
	int k = 0;

	in.policies = calloc(policies->n + 1, sizeof(*in.policies));
	in.active = calloc(policies->n + 1, sizeof(bool));
	in.pods = calloc(pods->n + 1, sizeof(*in.pods));
	hmap_for_each(policies, it) {
		in.active[k] = true;
		in.policies[k++] = it->val;
	}
	in.npolicies = k;
	k = 0;
	hmap_for_each(pods, it)
		in.pods[k++] = it->val;
	in.npods = k;
	if (resolve(&in, &out) == 0) {
		for (int i = 0; i < out.nnodes; i++) {
			size_t len;

			free(resolve_encode(&in, &out.nodes[i], 0, &len));
		}
		resolve_output_free(&out);
	}
	free(in.policies);
	free(in.active);
	free(in.pods);
	return now_s() - t0;
}

/* the last sync_once's share spent encoding */
static double encode_s;

/* One sync, with the sets it built encoded as the reconciler does. */
static double sync_once(struct targets *t, const struct targets_view *v, struct targets_work *w,
			int *ret_nodes)
{
	struct targets_node *tn;
	double t0 = now_s(), t1;
	int n = 0;

	if (targets_sync(t, v, w, &tn, &n)) {
		fprintf(stderr, "targetsbench: sync failed\n");
		exit(1);
	}
	t1 = now_s();
	for (int i = 0; i < n; i++) {
		size_t len;

		free(resolve_encode(targets_input(t), &tn[i].nt, 0, &len));
	}
	encode_s = now_s() - t1;
	targets_nodes_free(tn, n);
	*ret_nodes = n;
	return now_s() - t0;
}

static void line(const char *what, double kept, int nodes, double full)
{
	printf("  %-44s kept %8.1f ms (%5d nodes built, %5.1f%% encoding)   full pass %8.1f ms"
	       "   full/kept %7.1f\n", what, kept * 1000, nodes, kept > 0 ? 100 * encode_s / kept : 0,
	       full * 1000, kept > 0 ? full / kept : 0);
}

int main(int argc, char **argv)
{
	int nodes = argc > 1 ? atoi(argv[1]) : 5000, npods = argc > 2 ? atoi(argv[2]) : 150000;
	int npol = argc > 3 ? atoi(argv[3]) : 50, built, gen = 1;
	struct hmap pods = { 0 }, policies = { 0 };
	struct targets_work w = { .all = true };
	struct targets_view v = { .pods = &pods, .policies = &policies, .store = true };
	struct targets *t = targets_new();
	size_t h0, h1;
	double kept, full;
	char key[128];

	if (nodes < 1 || npods < 1 || npol < 1 || !t)
		return 2;
	printf("targetsbench: %d nodes, %d pods, %d policies (1 selecting every pod, "
	       "the others a tenth each)\n", nodes, npods, npol);
	for (int i = 0; i < npods; i++) {
		struct pod *p = make_pod(i, nodes, 0);

		hmap_put(&pods, p->uid, p, NULL);
	}
	for (int k = 0; k < npol; k++) {
		struct policy *p = make_policy(k, 19, 1);

		snprintf(key, sizeof(key), "P:%s", p->key);
		hmap_put(&policies, key, p, NULL);
	}
	h0 = heap_used();
	kept = sync_once(t, &v, &w, &built);
	h1 = heap_used();
	line("first sync (everything)", kept, built, full_pass(&pods, &policies));
	printf("  kept state: %.0f bytes per pod\n", (double)(h1 - h0) / npods);

	/* the bench policy's frequency: every node's set changes (TARGETSBENCH_REPEAT
	 * more times first, e.g. under perf record) */
	for (int r = getenv("TARGETSBENCH_REPEAT") ? atoi(getenv("TARGETSBENCH_REPEAT")) : 0;
	     r > 0; r--) {
		replace(&policies, "P:fleet/bench", make_policy(0, 20 + r % 9, ++gen), false);
		sync_once(t, &v, &w, &built);
	}
	gen++;
	replace(&policies, "P:fleet/bench", make_policy(0, 29, gen), false);
	kept = sync_once(t, &v, &w, &built);
	line("policy change touching every node", kept, built, full = full_pass(&pods, &policies));

	/* the bench policy deleted, then created again (bench/fleet.sh's first round):
	 * every pod leaves it, then every pod is matched against it */
	for (int r = getenv("TARGETSBENCH_CREATE_REPEAT") ? atoi(getenv("TARGETSBENCH_CREATE_REPEAT")) : 0;
	     r > 0; r--) {
		struct policy *gone = hmap_del(&policies, "P:fleet/bench");

		policy_free(gone);
		free(gone);
		sync_once(t, &v, &w, &built);
		replace(&policies, "P:fleet/bench", make_policy(0, 20 + r % 9, ++gen), false);
		sync_once(t, &v, &w, &built);
	}
	{
		struct policy *gone = hmap_del(&policies, "P:fleet/bench");

		policy_free(gone);
		free(gone);
	}
	kept = sync_once(t, &v, &w, &built);
	line("policy selecting every pod deleted", kept, built, full_pass(&pods, &policies));
	replace(&policies, "P:fleet/bench", make_policy(0, 29, ++gen), false);
	kept = sync_once(t, &v, &w, &built);
	line("policy selecting every pod created", kept, built, full);

	/* a policy selecting a tenth of the pods */
	replace(&policies, "P:fleet/extra-1", make_policy(1, 23, gen), false);
	kept = sync_once(t, &v, &w, &built);
	line("policy change touching a tenth of the pods", kept, built, full);

	/* 40 pods made again (new containers) and 40 gone: one 200 ms pass at 200/s churn */
	for (int i = 0; i < 40; i++) {
		struct pod *p = make_pod(i, nodes, 1);
		char uid[64];

		snprintf(uid, sizeof(uid), "%s", p->uid);
		replace(&pods, uid, p, true);
		hmap_put(&w.pods, uid, (void *)1, NULL);
		snprintf(uid, sizeof(uid), "%08x-0000-4000-8000-000000000000", 1000 + i);
		p = hmap_del(&pods, uid);
		if (p) {
			pod_free(p);
			free(p);
		}
		hmap_put(&w.pods, uid, (void *)1, NULL);
	}
	kept = sync_once(t, &v, &w, &built);
	line("80 pod changes", kept, built, full_pass(&pods, &policies));

	kept = sync_once(t, &v, &w, &built);
	line("nothing changed", kept, built, full);
	targets_free(t);
	hmap_for_each(&pods, it) {
		pod_free(it->val);
		free(it->val);
	}
	hmap_for_each(&policies, it) {
		policy_free(it->val);
		free(it->val);
	}
	hmap_free(&pods);
	hmap_free(&policies);
	return 0;
}
