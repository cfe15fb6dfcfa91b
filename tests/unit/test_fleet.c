// SPDX-License-Identifier: Apache-2.0
/* The controller's pure parts: YAML/JSON, the hash map, selectors, policy
 * validation, resolution of policies x pods, the wire encoding, kubeconfig. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"

#include "fleet.pb-c.h"
#include "auth.h"
#include "controller.h"
#include "fleet_client.h"
#include "hmap.h"
#include "k8s.h"
#include "model.h"
#include "reserved_labels.h"
#include "resolve.h"
#include "yamljson.h"

static cJSON *Y(const char *text)
{
	char err[256];
	cJSON *j = yaml_to_json(text, strlen(text), err, sizeof(err));

	if (!j)
		fail_msg("yaml: %s\n%s", err, text);
	return j;
}

static void test_yaml_scalars(void **state)
{
	cJSON *j = Y("a: 1\nb: \"1\"\nc: true\nd: ~\ne: text\nf: [x, 2.5]\ng: {h: i}\n"
		     "k: &anc {z: 1}\nl: *anc\nm: 0x10\n");

	(void)state;
	assert_true(cJSON_IsNumber(k8s_get(j, "a")));
	assert_string_equal(k8s_str(j, "b"), "1");
	assert_true(cJSON_IsTrue(k8s_get(j, "c")));
	assert_true(cJSON_IsNull(k8s_get(j, "d")));
	assert_string_equal(k8s_str(j, "e"), "text");
	assert_int_equal(cJSON_GetArraySize(k8s_get(j, "f")), 2);
	assert_string_equal(k8s_str(j, "g.h"), "i");
	assert_int_equal(k8s_get(j, "l.z")->valueint, 1);
	assert_string_equal(k8s_str(j, "m"), "0x10");	/* not a YAML 1.2 core int */
	cJSON_Delete(j);
	{
		char err[256];

		assert_null(yaml_to_json("a: [1, 2\n", 9, err, sizeof(err)));
		assert_non_null(strstr(err, "YAML error"));
		assert_null(yaml_to_json("", 0, err, sizeof(err)));
		assert_null(yaml_to_json("? [a]\n: 1\n", 10, err, sizeof(err)));
	}
}

static void test_base64(void **state)
{
	size_t n;
	unsigned char *d = base64_decode("aGVsbG8gd29y\nbGQ=", &n);

	(void)state;
	assert_non_null(d);
	assert_int_equal(n, 11);
	assert_memory_equal(d, "hello world", 11);
	free(d);
	assert_null(base64_decode("a$bc", &n));
	assert_null(base64_decode("abcde", &n));	/* one stray character */
	assert_null(base64_decode("ab=c", &n));	/* data after padding */
}

static void test_hmap(void **state)
{
	struct hmap m = { 0 };
	char key[32];
	void *old;

	(void)state;
	for (long i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "k%ld", i);
		assert_int_equal(hmap_put(&m, key, (void *)(i + 1), NULL), 0);
	}
	assert_int_equal(m.n, 20000);
	for (long i = 0; i < 20000; i += 2) {
		snprintf(key, sizeof(key), "k%ld", i);
		assert_ptr_equal(hmap_del(&m, key), (void *)(i + 1));
	}
	assert_int_equal(m.n, 10000);
	for (long i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "k%ld", i);
		assert_ptr_equal(hmap_get(&m, key), i % 2 ? (void *)(i + 1) : NULL);
	}
	assert_int_equal(hmap_put(&m, "k1", (void *)7, &old), 0);
	assert_ptr_equal(old, (void *)2);
	{
		size_t n = 0;

		hmap_for_each(&m, it)
			n++;
		assert_int_equal(n, 10000);
	}
	/* churn through tombstones without growing forever */
	for (int round = 0; round < 50; round++)
		for (int i = 0; i < 1000; i++) {
			snprintf(key, sizeof(key), "churn%d", i);
			hmap_put(&m, key, (void *)1, NULL);
			hmap_del(&m, key);
		}
	assert_int_equal(m.n, 10000);
	assert_true(m.cap <= 65536);
	hmap_free(&m);
}

static struct labels L(const char *yaml)
{
	cJSON *j = Y(yaml);
	struct labels l;

	assert_int_equal(labels_from_json(j, &l), 0);
	cJSON_Delete(j);
	return l;
}

static void test_selectors(void **state)
{
	static const struct {
		const char *sel;
		bool match;	/* against app=web, tier=front */
	} cases[] = {
		{ "{}", true },
		{ "{matchLabels: {app: web}}", true },
		{ "{matchLabels: {app: db}}", false },
		{ "{matchLabels: {app: web, tier: front}}", true },
		{ "{matchExpressions: [{key: app, operator: In, values: [db, web]}]}", true },
		{ "{matchExpressions: [{key: app, operator: NotIn, values: [web]}]}", false },
		{ "{matchExpressions: [{key: zone, operator: NotIn, values: [a]}]}", true },
		{ "{matchExpressions: [{key: tier, operator: Exists}]}", true },
		{ "{matchExpressions: [{key: zone, operator: Exists}]}", false },
		{ "{matchExpressions: [{key: zone, operator: DoesNotExist}]}", true },
		{ "{matchLabels: {app: web}, matchExpressions: [{key: tier, operator: In, values: [back]}]}", false },
	};
	static const char *const bad[] = {
		"{matchExpressions: [{key: app, operator: Like, values: [x]}]}",
		"{matchExpressions: [{key: app, operator: In}]}",
		"{matchExpressions: [{key: app, operator: Exists, values: [x]}]}",
		"{matchExpressions: [{operator: Exists}]}",
		"{matchLabels: {app: [x]}}",
		"{matchExpressions: {key: app}}",
		"[1]",
	};
	struct labels l = L("{app: web, tier: front}");
	char err[200];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *j = Y(cases[i].sel);
		struct selector s;

		assert_int_equal(selector_parse(j, &s, err, sizeof(err)), 0);
		if (selector_matches(&s, &l) != cases[i].match)
			fail_msg("selector %s: want %d", cases[i].sel, cases[i].match);
		selector_free(&s);
		cJSON_Delete(j);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *j = Y(bad[i]);
		struct selector s;

		err[0] = 0;
		if (selector_parse(j, &s, err, sizeof(err)) != -EINVAL || !err[0])
			fail_msg("selector %s should be refused with a message", bad[i]);
		cJSON_Delete(j);
	}
	labels_free(&l);
}

static struct policy *P(const char *yaml, bool cluster)
{
	cJSON *j = Y(yaml);
	struct policy *p = calloc(1, sizeof(*p));

	assert_int_equal(policy_from_json(j, cluster, 250, p), 0);
	cJSON_Delete(j);
	return p;
}

static void test_policy_validation(void **state)
{
	static const struct {
		const char *spec;
		bool cluster;
		const char *reason;	/* "" = valid */
	} cases[] = {
		{ "{selector: {podSelector: {}}}", false, "" },
		{ "{mode: OnDemand, durationSeconds: 30, selector: {podSelector: {}}}", false, "" },
		{ "{mode: OnDemand, selector: {podSelector: {}}}", false, "InvalidSpec" },
		{ "{mode: Continuous, durationSeconds: 30, selector: {podSelector: {}}}", false, "InvalidSpec" },
		{ "{mode: Sometimes, selector: {podSelector: {}}}", false, "InvalidSpec" },
		{ "{selector: {}}", false, "InvalidSelector" },
		{ "{}", false, "InvalidSelector" },
		{ "{selector: {podSelector: {matchExpressions: [{key: a, operator: Is}]}}}", false, "InvalidSelector" },
		{ "{selector: {podSelector: {}}, sampling: {frequencyHz: 999}}", false, "FrequencyOverCap" },
		{ "{selector: {podSelector: {}}, sampling: {frequencyHz: 0}}", false, "InvalidSpec" },
		{ "{selector: {podSelector: {}}, sampling: {profileTypes: [OffCPU]}}", false, "Unsupported" },
		{ "{selector: {podSelector: {}, namespaceSelector: {}}}", false, "CrossNamespace" },
		{ "{selector: {podSelector: {}, namespaceSelector: {}}}", true, "" },
		{ "{selector: {podSelector: {}, nodeSelector: {matchLabels: {a: b}}}}", true, "" },
		{ "{selector: {podSelector: {}}, export: {backendRefs: [a,b,c,d,e,f,g,h,i]}}", false, "InvalidSpec" },
		/* labels profleet sets itself: a tenant must not pass for another (issue 12) */
		{ "{selector: {podSelector: {}}, labels: {static: {env: prod, namespace: victim}}}", false, "ReservedLabel" },
		{ "{selector: {podSelector: {}}, labels: {static: {namespace: victim}}}", true, "ReservedLabel" },
		{ "{selector: {podSelector: {}}, labels: {static: {service_name: other}}}", false, "ReservedLabel" },
		{ "{selector: {podSelector: {}}, labels: {static: {pod: p, node: n}}}", true, "ReservedLabel" },
		{ "{selector: {podSelector: {}}, labels: {static: {k8s.namespace.name: victim}}}", false, "ReservedLabel" },
		{ "{selector: {podSelector: {}}, labels: {static: {Pod-UID: x}}}", false, "ReservedLabel" },
		{ "{selector: {podSelector: {}}, labels: {static: {__name__: x}}}", true, "ReservedLabel" },
		{ "{selector: {podSelector: {}}, labels: {fromPodLabels: [app, container]}}", false, "ReservedLabel" },
		{ "{selector: {podSelector: {}}, labels: {fromPodLabels: [service.name]}}", true, "ReservedLabel" },
		{ "{selector: {podSelector: {}}, labels: {static: {env: prod, team.name: a, pods: x, nodes_: y},"
		  " fromPodLabels: [app, namespaced, app.kubernetes.io/name]}}", true, "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char yaml[1024];
		struct policy *p;

		snprintf(yaml, sizeof(yaml),
			 "{metadata: {name: p, namespace: ns, generation: 3}, spec: %s}", cases[i].spec);
		p = P(yaml, cases[i].cluster);
		if (strcmp(p->invalid_reason, cases[i].reason))
			fail_msg("%s: reason '%s' (%s), want '%s'", cases[i].spec, p->invalid_reason,
				 p->invalid_message, cases[i].reason);
		if (cases[i].reason[0])
			assert_true(strlen(p->invalid_message) > 10);
		assert_int_equal(p->generation, 3);
		policy_free(p);
		free(p);
	}
	{
		struct policy *p = P("{metadata: {name: x, namespace: ns}, spec: {selector: {podSelector: {}}},"
				     " status: {phase: Running, startTime: '2026-01-02T03:04:05Z', samplesCollected: 42}}",
				     false);

		assert_string_equal(p->key, "ns/x");
		assert_int_equal(p->frequency_hz, 19);
		assert_int_equal(p->srv_phase, PHASE_RUNNING);
		assert_int_equal(p->srv_start, 1767323045);
		assert_int_equal(p->srv_samples, 42);
		policy_free(p);
		free(p);
	}
}

/* The controller's message names the label, for both kinds of policy. */
static void test_reserved_label_messages(void **state)
{
	static const struct {
		const char *labels;
		const char *want;
	} cases[] = {
		{ "{static: {namespace: victim}}", "labels.static: label 'namespace' is reserved" },
		{ "{static: {service_name: x}}", "labels.serviceName" },
		{ "{static: {k8s.namespace.name: victim}}", "'k8s.namespace.name' is reserved: it would pass for 'namespace'" },
		{ "{static: {__name__: x}}", "'__name__' is reserved: keys starting with __" },
		{ "{fromPodLabels: [Node]}", "labels.fromPodLabels: label 'Node' is reserved: it would pass for 'node'" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int cluster = 0; cluster < 2; cluster++) {
			char yaml[512];
			struct policy *p;

			snprintf(yaml, sizeof(yaml), "{metadata: {name: p, namespace: ns}, spec: "
				 "{selector: {podSelector: {}}, labels: %s}}", cases[i].labels);
			p = P(yaml, cluster);
			assert_string_equal(p->invalid_reason, "ReservedLabel");
			if (!strstr(p->invalid_message, cases[i].want))
				fail_msg("%s: message '%s', want '%s'", cases[i].labels,
					 p->invalid_message, cases[i].want);
			policy_free(p);
			free(p);
		}
	}
}

/* common/reserved_labels.c: the one list, its OTel names, and how keys are compared */
static void test_reserved_labels(void **state)
{
	static const char *const agent_sets[] = {	/* agent/fleet/run.c, target_identity */
		"namespace", "pod", "pod_uid", "container", "container_id", "node", "policy",
		"service_name",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(agent_sets) / sizeof(agent_sets[0]); i++)
		assert_string_equal(label_reserved(agent_sets[i]), agent_sets[i]);
	assert_string_equal(label_reserved("deployment"), "deployment");
	assert_string_equal(label_reserved("thread_name"), "thread_name");
	assert_string_equal(label_reserved("k8s.pod.uid"), "pod_uid");
	assert_string_equal(label_reserved("K8S_POD_NAME"), "pod");
	assert_string_equal(label_reserved("service-name"), "service_name");
	assert_string_equal(label_reserved("__anything"), "__");
	assert_string_equal(label_reserved(".-x"), "__");
	assert_null(label_reserved("_x"));
	assert_null(label_reserved("_"));
	assert_null(label_reserved(""));
	assert_null(label_reserved("env"));
	assert_null(label_reserved("pods"));
	assert_null(label_reserved("po"));
	assert_null(label_reserved("app.kubernetes.io/name"));
	assert_null(label_reserved(NULL));
	assert_string_equal(label_otel_key("namespace"), "k8s.namespace.name");
	assert_string_equal(label_otel_key("service_name"), "service.name");
	assert_string_equal(label_otel_key("env"), "env");
}

static const char *src_root(void)
{
	const char *s = getenv("PROFLEET_SRCDIR");

	return s && *s ? s : ".";
}

/* crds/ repeats the exact keys in the policies' schemas: the same list, in the same order. */
static void test_crds_reserve_the_same_labels(void **state)
{
	static const char *const crds[] = { "profilingpolicies.yaml", "clusterprofilingpolicies.yaml" };

	(void)state;
	for (size_t c = 0; c < 2; c++) {
		char path[512], err[256], *text = calloc(1, 1 << 20);
		const cJSON *labels, *any, *en;
		cJSON *j;
		size_t n;
		FILE *f;

		assert_non_null(text);
		snprintf(path, sizeof(path), "%s/crds/%s", src_root(), crds[c]);
		f = fopen(path, "re");
		if (!f)
			fail_msg("%s: cannot read it (set PROFLEET_SRCDIR to the repository)", path);
		n = fread(text, 1, (1 << 20) - 1, f);
		fclose(f);
		j = yaml_to_json(text, n, err, sizeof(err));
		if (!j)
			fail_msg("%s: %s", path, err);
		labels = cJSON_GetArrayItem(k8s_get(j, "spec.versions"), 0);
		labels = k8s_get(labels, "schema.openAPIV3Schema.properties.spec.properties.labels.properties");
		any = k8s_get(labels, "static.not.anyOf");
		en = k8s_get(labels, "fromPodLabels.items.not.enum");
		assert_int_equal(cJSON_GetArraySize(any), (int)nreserved_labels);
		assert_int_equal(cJSON_GetArraySize(en), (int)nreserved_labels);
		for (n = 0; n < nreserved_labels; n++) {
			const cJSON *req = cJSON_GetArrayItem(k8s_get(cJSON_GetArrayItem(any, (int)n),
								      "required"), 0);

			assert_true(cJSON_IsString(req));
			assert_string_equal(req->valuestring, reserved_labels[n].key);
			assert_string_equal(cJSON_GetArrayItem(en, (int)n)->valuestring,
					    reserved_labels[n].key);
		}
		cJSON_Delete(j);
		free(text);
	}
}

static struct pod *POD(const char *ns, const char *name, const char *node, const char *labels,
		       const char *cid1, const char *cid2)
{
	char yaml[2048];
	cJSON *j;
	struct pod *p = calloc(1, sizeof(*p));

	snprintf(yaml, sizeof(yaml),
		 "{metadata: {namespace: %s, name: %s, uid: uid-%s-%s, labels: %s},"
		 " spec: {nodeName: %s, containers: [{name: app}, {name: sidecar}]},"
		 " status: {phase: Running, containerStatuses: ["
		 "{name: app, containerID: 'containerd://%s'}, {name: sidecar, containerID: 'containerd://%s'}]}}",
		 ns, name, ns, name, labels, node, cid1, cid2);
	j = Y(yaml);
	assert_int_equal(pod_from_json(j, p), 0);
	cJSON_Delete(j);
	return p;
}

static char *cid(int n)
{
	static char buf[8][65];
	static int k;
	char *b = buf[k++ % 8];

	snprintf(b, 65, "%064x", n);
	return b;
}

static void test_container_ids(void **state)
{
	char *s;

	(void)state;
	s = container_id_normalize("containerd://ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	assert_string_equal(s, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	free(s);
	assert_null(container_id_normalize("docker://1234"));
	assert_null(container_id_normalize("cri-o://zz23456789abcdef0123456789abcdef0123456789abcdef0123456789ab"));
	assert_null(container_id_normalize(NULL));
}

/* A pod's IPs: status.podIPs when the API server gives them, else status.podIP. */
static void test_pod_ips(void **state)
{
	static const struct {
		const char *status, *want;
	} cases[] = {
		{ "{podIP: 10.0.0.7, podIPs: [{ip: 10.0.0.7}, {ip: 'fd00::7'}]}", "10.0.0.7,fd00::7" },
		{ "{podIP: 10.0.0.7}", "10.0.0.7" },
		{ "{phase: Pending}", NULL },
		{ "{podIPs: [{ip: ''}, {ip: 'a,b'}, {nope: 1}], podIP: 10.0.0.9}", "10.0.0.9" },
		{ "{podIPs: 12}", NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char yaml[512];
		struct pod p;
		cJSON *j;

		snprintf(yaml, sizeof(yaml), "{metadata: {namespace: a, name: b, uid: u}, status: %s}",
			 cases[i].status);
		j = Y(yaml);
		assert_int_equal(pod_from_json(j, &p), 0);
		if (cases[i].want)
			assert_string_equal(p.ips, cases[i].want);
		else
			assert_null(p.ips);
		pod_free(&p);
		cJSON_Delete(j);
	}
}

static const struct node_targets *node(const struct resolve_output *o, const char *n)
{
	return resolve_find_node(o, n);
}

/*
 * --max-policies-per-namespace: the oldest N of a namespace are honoured, the
 * newer ones refused with the count; other namespaces and cluster policies are
 * not affected.
 */
static void test_policy_cap(void **state)
{
	struct pod *pods[] = { POD("shop", "web-1", "node-a", "{app: web}", cid(1), cid(2)) };
	struct policy *pols[] = {
		P("{metadata: {name: c, namespace: shop, creationTimestamp: '2026-01-03T00:00:00Z'},"
		  " spec: {selector: {podSelector: {}}}}", false),
		P("{metadata: {name: a, namespace: shop, creationTimestamp: '2026-01-01T00:00:00Z'},"
		  " spec: {selector: {podSelector: {}}}}", false),
		P("{metadata: {name: wide, creationTimestamp: '2026-01-09T00:00:00Z'},"
		  " spec: {selector: {podSelector: {}}}}", true),
		P("{metadata: {name: b, namespace: shop, creationTimestamp: '2026-01-01T00:00:00Z'},"
		  " spec: {selector: {podSelector: {}}}}", false),
		P("{metadata: {name: z, namespace: other, creationTimestamp: '2026-01-05T00:00:00Z'},"
		  " spec: {selector: {podSelector: {}}}}", false),
	};
	bool active[] = { true, true, true, true, true };
	struct resolve_input in = { .policies = pols, .active = active, .npolicies = 5,
				    .pods = pods, .npods = 1, .max_ns_policies = 2 };
	struct resolve_output out;

	(void)state;
	assert_int_equal(resolve(&in, &out), 0);
	assert_true(out.results[1].accepted);	/* shop/a: oldest */
	assert_true(out.results[3].accepted);	/* shop/b: as old, its name after a's */
	assert_false(out.results[0].accepted);	/* shop/c: the third */
	assert_string_equal(out.results[0].reason, "TooManyPolicies");
	assert_non_null(strstr(out.results[0].message, "namespace shop has 3 ProfilingPolicies"));
	assert_true(out.results[2].accepted);	/* cluster policies: not capped */
	assert_true(out.results[4].accepted);	/* another namespace */
	resolve_output_free(&out);
	/* a finished OnDemand policy holds no place: c is honoured */
	active[1] = false;
	assert_int_equal(resolve(&in, &out), 0);
	assert_true(out.results[0].accepted);
	resolve_output_free(&out);
	active[1] = true;
	/* nor does an invalid one */
	snprintf(pols[3]->invalid_reason, sizeof(pols[3]->invalid_reason), "InvalidSpec");
	assert_int_equal(resolve(&in, &out), 0);
	assert_true(out.results[0].accepted);
	assert_string_equal(out.results[3].reason, "InvalidSpec");
	resolve_output_free(&out);
	pols[3]->invalid_reason[0] = 0;
	in.max_ns_policies = 0;	/* no cap */
	assert_int_equal(resolve(&in, &out), 0);
	assert_true(out.results[0].accepted);
	resolve_output_free(&out);
	for (int i = 0; i < 5; i++) {
		policy_free(pols[i]);
		free(pols[i]);
	}
	pod_free(pods[0]);
	free(pods[0]);
}

/*
 * A version written into an encoded set is that set encoded with the version:
 * sets of many sizes (the length prefix grows from one byte to two and
 * three), versions of every varint length, one replacing another, an empty
 * set; what is not such a message is refused.
 */
static void test_set_version(void **state)
{
	static const uint64_t versions[] = { 0, 1, 127, 128, 16383, 16384, 1764930000123ull,
					     1ull << 63, UINT64_MAX };
	struct pod *pods[40];
	struct policy *pols[] = {
		P("{metadata: {name: all, namespace: shop}, spec: {selector: {podSelector: {}}}}", false),
	};
	bool active[] = { true };
	struct resolve_input in = { .policies = pols, .active = active, .npolicies = 1, .pods = pods };
	static const uint8_t junk[] = { 0x12, 0x00 }, cut[] = { 0x0a, 0x05, 0x08 },
			     short_varint[] = { 0x0a, 0x02, 0x08, 0x80 },
			     long_varint[] = { 0x0a, 0x0c, 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					       0x80, 0x80, 0x80, 0x80, 0x80 };
	size_t l;

	(void)state;
	for (int i = 0; i < 40; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%d", i);
		pods[i] = POD("shop", name, "node-a", "{app: web}", cid(2 * i + 1), cid(2 * i + 2));
	}
	for (int npods = 0; npods <= 40; npods++) {
		struct resolve_output out;
		const struct node_targets *nt;

		in.npods = npods;
		assert_int_equal(resolve(&in, &out), 0);
		nt = resolve_find_node(&out, "node-a");
		for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
			size_t l0, l1, l2, l3, l4;
			uint8_t *b0 = resolve_encode(&in, nt, 0, &l0);
			uint8_t *b1 = resolve_encode(&in, nt, versions[v], &l1);
			uint8_t *b2 = resolve_set_version(b0, l0, versions[v], &l2);
			uint8_t *b3 = resolve_set_version(b1, l1, 7, &l3);
			uint8_t *b4 = resolve_encode(&in, nt, 7, &l4);

			assert_non_null(b2);
			assert_int_equal(l2, l1);
			assert_memory_equal(b2, b1, l1);
			assert_non_null(b3);	/* one version replaces another */
			assert_int_equal(l3, l4);
			assert_memory_equal(b3, b4, l4);
			free(b0);
			free(b1);
			free(b2);
			free(b3);
			free(b4);
		}
		resolve_output_free(&out);
	}
	assert_null(resolve_set_version(junk, sizeof(junk), 9, &l));
	assert_null(resolve_set_version(cut, sizeof(cut), 9, &l));
	assert_null(resolve_set_version(short_varint, sizeof(short_varint), 9, &l));
	assert_null(resolve_set_version(long_varint, sizeof(long_varint), 9, &l));
	assert_null(resolve_set_version(junk, 0, 9, &l));
	for (int i = 0; i < 40; i++) {
		pod_free(pods[i]);
		free(pods[i]);
	}
	policy_free(pols[0]);
	free(pols[0]);
}

static void test_resolve(void **state)
{
	struct pod *pods[] = {
		POD("shop", "web-1", "node-a", "{app: web}", cid(1), cid(2)),
		POD("shop", "web-2", "node-b", "{app: web}", cid(3), cid(4)),
		POD("shop", "db-1", "node-a", "{app: db}", cid(5), cid(6)),
		POD("other", "web-x", "node-a", "{app: web}", cid(7), cid(8)),	/* same labels, other ns */
	};
	struct policy *pols[] = {
		P("{metadata: {name: web, namespace: shop}, spec: {selector: {podSelector: {matchLabels: {app: web}},"
		  " containers: [app]}, sampling: {frequencyHz: 19}, labels: {static: {env: prod}}}}", false),
		P("{metadata: {name: all, namespace: shop}, spec: {selector: {podSelector: {}}, sampling: {frequencyHz: 99}}}",
		  false),
		P("{metadata: {name: bad, namespace: shop}, spec: {mode: OnDemand, selector: {podSelector: {}}}}", false),
		P("{metadata: {name: cl}, spec: {selector: {podSelector: {matchLabels: {app: web}},"
		  " namespaceSelector: {matchLabels: {team: x}}, nodeSelector: {matchLabels: {pool: a}}}}}", true),
		P("{metadata: {name: nb, namespace: shop}, spec: {selector: {podSelector: {}}, export: {backendRefs: [nope]}}}",
		  false),
		P("{metadata: {name: na, namespace: shop}, spec: {selector: {podSelector: {}}, export: {backendRefs: [pyro]}}}",
		  false),
	};
	bool active[] = { true, true, true, true, true, true };
	struct named_labels nss[2] = { 0 }, nodes[2] = { 0 };
	struct hmap nsm = { 0 }, nodem = { 0 }, bem = { 0 };
	struct backend be = { 0 };
	char *allowed[] = { "payments" };
	struct resolve_input in = {
		.policies = pols, .active = active, .npolicies = 6,
		.pods = pods, .npods = 4,
		.namespaces = &nsm, .nodes = &nodem, .backends = &bem,
	};
	struct resolve_output out;
	const struct node_targets *na, *nb;

	(void)state;
	nss[0].name = "other";
	nss[0].labels = L("{team: x}");
	nss[1].name = "shop";
	nss[1].labels = L("{team: y}");
	nodes[0].name = "node-a";
	nodes[0].labels = L("{pool: a}");
	nodes[1].name = "node-b";
	nodes[1].labels = L("{pool: b}");
	be.name = "pyro";
	be.allowed = allowed;
	be.nallowed = 1;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(hmap_put(&nsm, nss[i].name, &nss[i], NULL), 0);
		assert_int_equal(hmap_put(&nodem, nodes[i].name, &nodes[i], NULL), 0);
	}
	assert_int_equal(hmap_put(&bem, be.name, &be, NULL), 0);

	assert_int_equal(resolve(&in, &out), 0);
	/* results */
	assert_true(out.results[0].accepted);
	assert_int_equal(out.results[0].pods, 2);
	assert_int_equal(out.results[0].nodes, 2);
	assert_int_equal(out.results[1].pods, 3);	/* never other/web-x */
	assert_false(out.results[2].accepted);
	assert_string_equal(out.results[2].reason, "InvalidSpec");
	assert_true(out.results[3].accepted);
	assert_int_equal(out.results[3].pods, 1);	/* other/web-x: team=x, node pool=a */
	assert_false(out.results[4].accepted);
	assert_string_equal(out.results[4].reason, "UnknownBackend");
	assert_false(out.results[5].accepted);
	assert_string_equal(out.results[5].reason, "BackendNotAllowed");

	na = node(&out, "node-a");
	nb = node(&out, "node-b");
	assert_non_null(na);
	assert_non_null(nb);
	/* node-a: web-1 app+sidecar (from "all"), db-1 x2, web-x app+sidecar (cl) */
	assert_int_equal(na->n, 6);
	assert_int_equal(nb->n, 2);
	for (int i = 0; i < na->n; i++) {
		const struct rtarget *t = &na->t[i];
		const char *id = t->pod->containers[t->container].id;

		if (!strcmp(id, cid(1))) {	/* web-1 app: "web" 19 Hz and "all" 99 Hz */
			assert_int_equal(t->npolicies, 2);
			assert_int_equal(t->frequency_hz, 99);
		} else if (!strcmp(id, cid(2))) {	/* sidecar: only "all" */
			assert_int_equal(t->npolicies, 1);
		} else if (!strcmp(id, cid(7)) || !strcmp(id, cid(8))) {
			assert_int_equal(t->npolicies, 1);
			assert_string_equal(in.policies[rtarget_policy(t, 0)]->key, "cl");
			assert_int_equal(t->frequency_hz, 19);
		}
		if (i)	/* sorted by container id */
			assert_true(strcmp(na->t[i - 1].pod->containers[na->t[i - 1].container].id, id) < 0);
	}

	/* the encoding decodes back to the same targets */
	{
		size_t len;
		uint8_t *buf = resolve_encode(&in, na, 1234, &len);
		Profleet__Fleet__V1__ControllerMessage *m =
			profleet__fleet__v1__controller_message__unpack(NULL, len, buf);
		bool saw_env = false;

		assert_non_null(m);
		assert_int_equal(m->msg_case, PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__MSG_TARGETS);
		assert_int_equal(m->targets->version, 1234);
		assert_int_equal(m->targets->n_targets, 6);
		for (size_t i = 0; i < m->targets->n_targets; i++) {
			Profleet__Fleet__V1__Target *t = m->targets->targets[i];

			if (strcmp(t->container_id, cid(1)))
				continue;
			assert_string_equal(t->namespace_, "shop");
			assert_string_equal(t->pod_name, "web-1");
			assert_string_equal(t->container_name, "app");
			assert_int_equal(t->frequency_hz, 99);
			assert_int_equal(t->n_policies, 2);
			for (size_t k = 0; k < t->n_labels; k++)
				saw_env |= !strcmp(t->labels[k]->key, "env") &&
					   !strcmp(t->labels[k]->value, "prod");
		}
		assert_true(saw_env);
		profleet__fleet__v1__controller_message__free_unpacked(m, NULL);
		free(buf);
	}
	resolve_output_free(&out);

	/* an inactive (finished OnDemand) policy is resolved for status, not pushed */
	for (int i = 0; i < 6; i++)
		active[i] = false;
	assert_int_equal(resolve(&in, &out), 0);
	assert_int_equal(out.nnodes, 0);
	assert_int_equal(out.results[1].pods, 3);
	resolve_output_free(&out);

	for (int i = 0; i < 4; i++) {
		pod_free(pods[i]);
		free(pods[i]);
	}
	for (int i = 0; i < 6; i++) {
		policy_free(pols[i]);
		free(pols[i]);
	}
	for (int i = 0; i < 2; i++) {
		labels_free(&nss[i].labels);
		labels_free(&nodes[i].labels);
	}
	hmap_free(&nsm);
	hmap_free(&nodem);
	hmap_free(&bem);
}

/* Who a pod belongs to (via its ReplicaSet), and the built-in store as a backend. */
static struct pod *owned_pod(const char *name, const char *owner_kind, const char *owner,
			     const char *cid1)
{
	char yaml[2048];
	cJSON *j;
	struct pod *p = calloc(1, sizeof(*p));

	snprintf(yaml, sizeof(yaml),
		 "{metadata: {namespace: shop, name: %s, uid: uid-%s, labels: {app: x},"
		 " ownerReferences: [{kind: Other, name: nope}, {kind: %s, name: %s, controller: true}]},"
		 " spec: {nodeName: node-a, containers: [{name: app}]},"
		 " status: {phase: Running, containerStatuses: [{name: app, containerID: 'containerd://%s'}]}}",
		 name, name, owner_kind, owner, cid1);
	j = Y(yaml);
	assert_int_equal(pod_from_json(j, p), 0);
	cJSON_Delete(j);
	return p;
}

static void test_workload_and_store(void **state)
{
	struct pod *pods[] = {
		owned_pod("checkout-7d9f-abcde", "ReplicaSet", "checkout-7d9f", cid(11)),
		owned_pod("db-0", "StatefulSet", "db", cid(12)),
		owned_pod("bare-rs-x", "ReplicaSet", "bare-rs", cid(13)),
		POD("shop", "loner", "node-a", "{app: x}", cid(14), cid(15)),
	};
	struct named_labels rs[2];
	struct hmap rsm = { 0 };
	struct policy *pols[] = {
		P("{metadata: {name: all, namespace: shop}, spec: {selector: {podSelector: {}}}}", false),
	};
	bool active[] = { true };
	struct resolve_input in = { .policies = pols, .active = active, .npolicies = 1,
				    .pods = pods, .npods = 4, .replicasets = &rsm, .store = true };
	struct resolve_output out;
	const char *kind, *name;
	cJSON *j;
	size_t len;
	uint8_t *buf;
	Profleet__Fleet__V1__ControllerMessage *m;
	int seen = 0;

	(void)state;
	j = Y("{metadata: {namespace: shop, name: checkout-7d9f,"
	      " ownerReferences: [{kind: Deployment, name: checkout, controller: true}]}}");
	assert_int_equal(replicaset_from_json(j, &rs[1]), 0);
	cJSON_Delete(j);
	j = Y("{metadata: {namespace: shop, name: bare-rs}}");
	assert_int_equal(replicaset_from_json(j, &rs[0]), 0);
	cJSON_Delete(j);
	assert_string_equal(rs[1].name, "shop/checkout-7d9f");
	assert_int_equal(rs[0].labels.n, 0);
	for (int i = 0; i < 2; i++)	/* keyed "ns/name", as the cache keeps them */
		assert_int_equal(hmap_put(&rsm, rs[i].name, &rs[i], NULL), 0);

	assert_true(pod_workload(pods[0], &rsm, &kind, &name));
	assert_string_equal(kind, "deployment");
	assert_string_equal(name, "checkout");
	assert_true(pod_workload(pods[1], &rsm, &kind, &name));
	assert_string_equal(kind, "statefulset");
	assert_string_equal(name, "db");
	assert_true(pod_workload(pods[2], &rsm, &kind, &name));
	assert_string_equal(kind, "replicaset");
	assert_string_equal(name, "bare-rs");
	assert_false(pod_workload(pods[3], &rsm, &kind, &name));
	assert_true(pod_workload(pods[0], NULL, &kind, &name));	/* ReplicaSets unknown */
	assert_string_equal(kind, "replicaset");

	assert_int_equal(resolve(&in, &out), 0);
	buf = resolve_encode(&in, node(&out, "node-a"), 7, &len);
	m = profleet__fleet__v1__controller_message__unpack(NULL, len, buf);
	assert_non_null(m);
	/* a policy without backendRefs goes to the built-in store */
	assert_int_equal(m->targets->n_backends, 1);
	assert_string_equal(m->targets->backends[0]->name, "@store");
	assert_string_equal(m->targets->backends[0]->type, "controller");
	for (size_t i = 0; i < m->targets->n_targets; i++) {
		const Profleet__Fleet__V1__Target *t = m->targets->targets[i];

		assert_int_equal(t->n_backends, 1);
		assert_string_equal(t->backends[0], "@store");
		for (size_t k = 0; k < t->n_labels; k++) {
			if (!strcmp(t->pod_name, "checkout-7d9f-abcde") &&
			    !strcmp(t->labels[k]->key, "deployment") &&
			    !strcmp(t->labels[k]->value, "checkout"))
				seen |= 1;
			if (!strcmp(t->pod_name, "db-0") && !strcmp(t->labels[k]->key, "statefulset"))
				seen |= 2;
		}
	}
	assert_int_equal(seen, 3);
	profleet__fleet__v1__controller_message__free_unpacked(m, NULL);
	free(buf);
	resolve_output_free(&out);
	/* without a store, such a policy has no backend at all */
	in.store = false;
	assert_int_equal(resolve(&in, &out), 0);
	buf = resolve_encode(&in, node(&out, "node-a"), 8, &len);
	m = profleet__fleet__v1__controller_message__unpack(NULL, len, buf);
	assert_non_null(m);
	assert_int_equal(m->targets->n_backends, 0);
	assert_int_equal(m->targets->targets[0]->n_backends, 0);
	profleet__fleet__v1__controller_message__free_unpacked(m, NULL);
	free(buf);
	resolve_output_free(&out);
	for (int i = 0; i < 4; i++) {
		pod_free(pods[i]);
		free(pods[i]);
	}
	policy_free(pols[0]);
	free(pols[0]);
	for (int i = 0; i < 2; i++)
		named_labels_free(&rs[i]);
	hmap_free(&rsm);
}

/* The label of key k in t; fails the test when t has none. */
static const char *target_label(const Profleet__Fleet__V1__Target *t, const char *k)
{
	for (size_t i = 0; i < t->n_labels; i++)
		if (!strcmp(t->labels[i]->key, k))
			return t->labels[i]->value;
	fail_msg("target %s has no label %s", t->pod_name, k);
	return NULL;
}

/* Encoded, decoded, packed again by protobuf-c: the same bytes (field order,
 * proto3's empty strings and zeros left out). Returns the decoded message. */
static Profleet__Fleet__V1__ControllerMessage *encode_decode(const struct resolve_input *in,
							     const struct node_targets *nt,
							     uint64_t version)
{
	Profleet__Fleet__V1__ControllerMessage *m;
	uint8_t *buf, *again;
	size_t len, len2;

	buf = resolve_encode(in, nt, version, &len);
	assert_non_null(buf);
	m = profleet__fleet__v1__controller_message__unpack(NULL, len, buf);
	assert_non_null(m);
	assert_int_equal(m->msg_case, PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__MSG_TARGETS);
	again = malloc(profleet__fleet__v1__controller_message__get_packed_size(m) + 1);
	assert_non_null(again);
	len2 = profleet__fleet__v1__controller_message__pack(m, again);
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, len);
	free(again);
	free(buf);
	return m;
}

/*
 * resolve_encode writes the set with pbw, not protobuf-c: every field in its
 * place (each asserted by value), in the bytes protobuf-c would pack.
 */
static void test_encode_is_canonical(void **state)
{
	struct pod *pods[] = {
		POD("shop", "web-1", "node-a", "{app: web, tier: front, 'app.kubernetes.io/name': shopfront}",
		    cid(21), cid(22)),
		POD("shop", "web-2", "node-a", "{app: web}", cid(23), cid(24)),
		POD("shop", "one", "node-b", "{only: a}", cid(25), cid(26)),
		POD("shop", "two", "node-b", "{only: b}", cid(27), cid(28)),
		POD("shop", "three", "node-b", "{only: c}", cid(29), cid(30)),
	};
	struct policy *pols[] = {
		P("{metadata: {name: web, namespace: shop}, spec: {selector: {podSelector: {matchLabels: {app: web}}},"
		  " sampling: {frequencyHz: 49}, labels: {static: {env: prod, empty: ''}, fromPodLabels: [tier, missing],"
		  " serviceName: shop-web}, export: {backendRefs: [pyro, otel]}}}", false),
		P("{metadata: {name: all, namespace: shop}, spec: {selector: {podSelector: {matchLabels: {app: web}}},"
		  " labels: {static: {env: staging, team: a}}, export: {backendRefs: [otel, gone]}}}", false),
		/* node-b: three targets of one backend each, each another */
		P("{metadata: {name: a, namespace: shop}, spec: {selector: {podSelector: {matchLabels: {only: a}},"
		  " containers: [app]}, export: {backendRefs: [b1]}}}", false),
		P("{metadata: {name: b, namespace: shop}, spec: {selector: {podSelector: {matchLabels: {only: b}},"
		  " containers: [app]}, export: {backendRefs: [b2]}}}", false),
		P("{metadata: {name: c, namespace: shop}, spec: {selector: {podSelector: {matchLabels: {only: c}},"
		  " containers: [app]}, export: {backendRefs: [b3]}}}", false),
	};
	bool active[] = { true, true, true, true, true };
	struct backend be[6] = { 0 };
	const char *names[] = { "pyro", "otel", "gone", "b1", "b2", "b3" };
	struct kv hdr[] = { { "X-Dup", "first" }, { "X-Dup", "second" }, { "X-Empty", "" },
			    { "X-Org", "acme" } };
	char *star[] = { "*" };
	struct hmap bem = { 0 };
	struct resolve_input in = { .policies = pols, .active = active, .npolicies = 5,
				    .pods = pods, .npods = 5, .backends = &bem };
	struct resolve_output out;
	Profleet__Fleet__V1__ControllerMessage *m;
	const Profleet__Fleet__V1__Target *t = NULL;
	const Profleet__Fleet__V1__Backend *pyro;
	uint8_t *buf;
	size_t len;

	(void)state;
	for (int i = 0; i < 6; i++) {
		be[i].name = (char *)names[i];
		be[i].type = "otlp-http";
		be[i].allowed = star;
		be[i].nallowed = 1;
		assert_int_equal(hmap_put(&bem, be[i].name, &be[i], NULL), 0);
	}
	be[0].type = "pyroscope";
	be[0].url = "http://pyro:4040";
	be[0].tenant = "team-a";
	be[0].basic = "u:p";
	be[0].headers = (struct labels){ .n = 4, .kv = hdr };
	be[1].tenant = "";	/* empty: left out */
	be[1].bearer = "tok";
	assert_int_equal(resolve(&in, &out), 0);
	for (int i = 0; i < 5; i++)
		assert_true(out.results[i].accepted);
	hmap_del(&bem, "gone");	/* deleted since the sets were built: its definition is left out */

	m = encode_decode(&in, node(&out, "node-a"), 300);
	assert_int_equal(m->targets->version, 300);
	assert_int_equal(m->targets->n_targets, 4);
	for (size_t i = 0; i < m->targets->n_targets; i++)
		if (!strcmp(m->targets->targets[i]->container_id, cid(21)))
			t = m->targets->targets[i];
	assert_non_null(t);
	assert_string_equal(t->pod_uid, "uid-shop-web-1");
	assert_string_equal(t->namespace_, "shop");
	assert_string_equal(t->pod_name, "web-1");
	assert_string_equal(t->container_name, "app");
	assert_int_equal(t->frequency_hz, 49);
	assert_int_equal(t->n_policies, 2);
	assert_string_equal(t->policies[0], "shop/all");	/* by key */
	assert_string_equal(t->policies[1], "shop/web");
	/* service name first (the one policy with a rule), then the labels in the
	 * policies' key order, the first of a key winning (env=staging), an empty
	 * value kept, a missing pod label left out */
	assert_int_equal(t->n_labels, 5);
	assert_string_equal(t->labels[0]->key, "service_name");
	assert_string_equal(t->labels[0]->value, "shop-web");
	assert_string_equal(target_label(t, "env"), "staging");
	assert_string_equal(target_label(t, "team"), "a");
	assert_string_equal(target_label(t, "empty"), "");
	assert_string_equal(target_label(t, "tier"), "front");
	/* the target names its three backends once each; the set defines the two known */
	assert_int_equal(t->n_backends, 3);
	assert_string_equal(t->backends[0], "otel");
	assert_string_equal(t->backends[1], "gone");
	assert_string_equal(t->backends[2], "pyro");
	assert_int_equal(m->targets->n_backends, 2);
	assert_string_equal(m->targets->backends[0]->name, "otel");
	assert_string_equal(m->targets->backends[0]->type, "otlp-http");
	assert_string_equal(m->targets->backends[0]->tenant_id, "");
	assert_string_equal(m->targets->backends[0]->bearer_token, "tok");
	assert_string_equal(m->targets->backends[0]->basic_auth, "");
	pyro = m->targets->backends[1];
	assert_string_equal(pyro->name, "pyro");
	assert_string_equal(pyro->type, "pyroscope");
	assert_string_equal(pyro->url, "http://pyro:4040");
	assert_string_equal(pyro->tenant_id, "team-a");
	assert_string_equal(pyro->bearer_token, "");
	assert_string_equal(pyro->basic_auth, "u:p");
	/* a header key given twice is written once, the first */
	assert_int_equal(pyro->n_headers, 3);
	assert_string_equal(pyro->headers[0]->key, "X-Dup");
	assert_string_equal(pyro->headers[0]->value, "first");
	assert_string_equal(pyro->headers[1]->key, "X-Empty");
	assert_string_equal(pyro->headers[1]->value, "");
	assert_string_equal(pyro->headers[2]->value, "acme");
	profleet__fleet__v1__controller_message__free_unpacked(m, NULL);

	/* node-b: each target has one backend of its own; the set defines all three */
	m = encode_decode(&in, node(&out, "node-b"), 1);
	assert_int_equal(m->targets->n_targets, 3);
	assert_int_equal(m->targets->n_backends, 3);
	for (size_t i = 0; i < 3; i++) {
		t = m->targets->targets[i];
		assert_int_equal(t->n_backends, 1);
		assert_int_equal(t->n_labels, 0);
		assert_string_equal(m->targets->backends[i]->name, t->backends[0]);
	}
	profleet__fleet__v1__controller_message__free_unpacked(m, NULL);

	/* an empty set: ControllerMessage{targets: {}} */
	buf = resolve_encode(&in, NULL, 0, &len);
	assert_non_null(buf);
	assert_int_equal(len, 2);
	assert_int_equal(buf[0], 0x0a);
	assert_int_equal(buf[1], 0);
	free(buf);

	resolve_output_free(&out);
	for (int i = 0; i < 5; i++) {
		pod_free(pods[i]);
		free(pods[i]);
		policy_free(pols[i]);
		free(pols[i]);
	}
	hmap_free(&bem);
}

static void test_kubeconfig(void **state)
{
	char dir[128], path[512], err[512];
	struct k8s_config cfg;
	FILE *f;

	(void)state;
	assert_int_equal(tmpdir_make(dir, sizeof(dir), "kubeconfig"), 0);
	snprintf(path, sizeof(path), "%s/kc", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: one\n"
		   "clusters:\n- name: c1\n  cluster:\n    server: https://127.0.0.1:6443/\n"
		   "    certificate-authority-data: aGVsbG8=\n"
		   "- name: c2\n  cluster:\n    server: https://10.0.0.1\n    certificate-authority: ca.crt\n"
		   "    insecure-skip-tls-verify: true\n"
		   "users:\n- name: u1\n  user:\n    token: tok\n"
		   "- name: u2\n  user:\n    client-certificate: certs/c.pem\n    client-key: /abs/k.pem\n"
		   "- name: u3\n  user:\n    exec: {command: aws}\n"
		   "contexts:\n- name: one\n  context: {cluster: c1, user: u1, namespace: team}\n"
		   "- name: two\n  context: {cluster: c2, user: u2}\n"
		   "- name: three\n  context: {cluster: c2, user: u3}\n");
	fclose(f);
	assert_int_equal(k8s_config_load(path, NULL, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.server, "https://127.0.0.1:6443");
	assert_string_equal(cfg.namespace, "team");
	assert_string_equal(cfg.token, "tok");
	assert_int_equal(cfg.ca_len, 5);
	assert_memory_equal(cfg.ca_data, "hello", 5);
	k8s_config_free(&cfg);
	assert_int_equal(k8s_config_load(path, "two", &cfg, err, sizeof(err)), 0);
	assert_true(cfg.insecure);
	assert_non_null(strstr(cfg.ca_file, "/ca.crt"));
	assert_true(cfg.ca_file[0] == '/');
	assert_non_null(strstr(cfg.cert_file, "/certs/c.pem"));
	assert_string_equal(cfg.key_file, "/abs/k.pem");
	assert_string_equal(cfg.namespace, "default");
	k8s_config_free(&cfg);
	assert_int_not_equal(k8s_config_load(path, "three", &cfg, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "exec"));
	assert_int_not_equal(k8s_config_load(path, "nope", &cfg, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "not found"));
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_not_equal(k8s_config_load(path, NULL, &cfg, err, sizeof(err)), 0);
	tmpdir_remove(dir);
}

static void test_in_cluster(void **state)
{
	char dir[128], err[256];
	struct k8s_config cfg;

	(void)state;
	assert_int_equal(tmpdir_make(dir, sizeof(dir), "sa"), 0);
	sh("printf 'tok\\n' > %s/token && printf 'ns1\\n' > %s/namespace && : > %s/ca.crt", dir, dir,
	   dir);
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_not_equal(k8s_config_in_cluster(dir, &cfg, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(k8s_config_in_cluster(dir, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.server, "https://10.96.0.1:443");
	assert_string_equal(cfg.namespace, "ns1");
	assert_non_null(strstr(cfg.token_file, "/token"));	/* a file: re-read as it rotates */
	assert_null(cfg.token);
	assert_non_null(strstr(cfg.ca_file, "/ca.crt"));
	k8s_config_free(&cfg);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	assert_int_equal(k8s_config_in_cluster(dir, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.server, "https://[fd00::1]:443");
	k8s_config_free(&cfg);
	unsetenv("KUBERNETES_SERVICE_HOST");
	tmpdir_remove(dir);
}

static void test_times_and_backoff(void **state)
{
	char buf[40];

	(void)state;
	k8s_time_format(1767323045, buf, sizeof(buf));
	assert_string_equal(buf, "2026-01-02T03:04:05Z");
	assert_int_equal(k8s_time_parse("2026-01-02T03:04:05Z"), 1767323045);
	assert_int_equal(k8s_time_parse("2026-01-02T03:04:05.123456Z"), 1767323045);
	assert_int_equal(k8s_time_parse("2026-01-02 03:04:05"), -1);
	assert_int_equal(k8s_time_parse(NULL), -1);
	for (unsigned int a = 0; a < 40; a++) {
		unsigned int ms = k8s_backoff_ms(a, 200, 30000);

		assert_true(ms >= 200 && ms <= 30000);
		if (a == 0)
			assert_true(ms <= 200);
	}
	/* refusals an agent retries soon after, and those it backs off from */
	assert_true(fleet_refusal_passing("not the leader"));
	assert_true(fleet_refusal_passing("token review failed: Couldn't connect to server" FLEET_RETRY_SOON));
	assert_true(fleet_refusal_passing("agent pod kube-system/a not found" FLEET_RETRY_SOON));
	assert_false(fleet_refusal_passing("token not authenticated"));
	assert_false(fleet_refusal_passing("user 'x' is not the agents' service account"));
	assert_false(fleet_refusal_passing("(retry soon) is not at the end"));
	assert_false(fleet_refusal_passing(""));
	assert_false(fleet_refusal_passing(NULL));
	/* the controller's side: which failed reviews may pass */
	assert_true(auth_http_passing(0));	/* no answer */
	assert_true(auth_http_passing(429));
	assert_true(auth_http_passing(503));
	assert_false(auth_http_passing(403));	/* no right to review: for good */
	assert_false(auth_http_passing(401));
	assert_false(auth_http_passing(404));
}

static void test_url(void **state)
{
	char host[64], path[64];
	bool tls;
	int port;

	(void)state;
	assert_int_equal(fleet_parse_url("ws://127.0.0.1:7470", &tls, host, 64, &port, path, 64), 0);
	assert_false(tls);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 7470);
	assert_string_equal(path, "/");
	assert_int_equal(fleet_parse_url("wss://ctl.profleet-system.svc/fleet", &tls, host, 64, &port,
					 path, 64), 0);
	assert_true(tls);
	assert_int_equal(port, 443);
	assert_string_equal(path, "/fleet");
	assert_int_equal(fleet_parse_url("ws://[::1]:80/x", &tls, host, 64, &port, path, 64), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(fleet_parse_url("http://x", &tls, host, 64, &port, path, 64), -EINVAL);
	assert_int_equal(fleet_parse_url("ws://x:99999", &tls, host, 64, &port, path, 64), -EINVAL);
	assert_int_equal(fleet_parse_url("ws://:80", &tls, host, 64, &port, path, 64), -EINVAL);
	assert_int_equal(fleet_parse_url("ws://x:8a/", &tls, host, 64, &port, path, 64), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_scalars),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_hmap),
		cmocka_unit_test(test_selectors),
		cmocka_unit_test(test_policy_validation),
		cmocka_unit_test(test_reserved_label_messages),
		cmocka_unit_test(test_reserved_labels),
		cmocka_unit_test(test_crds_reserve_the_same_labels),
		cmocka_unit_test(test_container_ids),
		cmocka_unit_test(test_pod_ips),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_set_version),
		cmocka_unit_test(test_policy_cap),
		cmocka_unit_test(test_workload_and_store),
		cmocka_unit_test(test_encode_is_canonical),
		cmocka_unit_test(test_kubeconfig),
		cmocka_unit_test(test_in_cluster),
		cmocka_unit_test(test_times_and_backoff),
		cmocka_unit_test(test_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
