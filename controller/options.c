// SPDX-License-Identifier: Apache-2.0
/* The controller's options (see options.h and --help). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controller.h"
#include "log.h"
#include "options.h"
#include "parse.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: profleet-controller [OPTIONS]\n"
		"Watches ProfilingPolicy, ClusterProfilingPolicy and ClusterProfilingBackend\n"
		"resources and drives the per-node agents over websockets.\n\n"
		"  --kubeconfig PATH        kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)\n"
		"  --context NAME           kubeconfig context (default: current-context)\n"
		"  --listen ADDR:PORT       agents' websocket endpoint (default 0.0.0.0:7470)\n"
		"  --tls-cert PATH, --tls-key PATH\n"
		"                           serve the agents wss:// with this certificate and key (PEM)\n"
		"  --agent-service-account NS:NAME\n"
		"                           the agents' service account (default profleet-system:profleet-agent)\n"
		"  --agent-audience AUD     audience of the agents' tokens (default profleet)\n"
		"  --backend-secret-namespaces NS[,NS...]\n"
		"                           where backends' authSecretRef may point (default: the\n"
		"                           Lease's namespace); the Secret must also be labelled\n"
		"                           profiling.profleet.dev/backend-credentials=true\n"
		"  --max-frequency HZ       the cluster's cap on sampling.frequencyHz (default 250)\n"
		"  --max-policies-per-namespace N\n"
		"                           ProfilingPolicies honoured in one namespace, the oldest\n"
		"                           first; the others get Accepted=False, TooManyPolicies\n"
		"                           (default 32; 0 = no cap)\n"
		"  --reconcile-threads N|auto\n"
		"                           threads that build and encode target sets besides the\n"
		"                           reconcile thread, 0..8 (default auto: the CPUs the\n"
		"                           controller may use, by its affinity and cgroup quota,\n"
		"                           less one, at most 3)\n"
		"  --lease NS/NAME          leader-election Lease (default profleet-system/profleet-controller)\n"
		"  --identity ID            this replica's identity (default $POD_NAME or the host name)\n"
		"  --lease-duration S       seconds (default 15)\n"
		"  --no-leader-election     act as the leader without a Lease (one replica only)\n"
		"  --insecure-trust-agents  accept any agent without a TokenReview (benchmarks only)\n"
		"  --no-agent-address-check accept an agent's token from any address, not only its\n"
		"                           pod's IP (for networks that rewrite pods' source addresses)\n"
		"  --plain-credentials      send backends' Secret credentials to agents over ws://\n"
		"                           too (without it and without --tls-cert they are withheld)\n"
		"  --store-dir PATH         the built-in store, for policies that name no backend\n"
		"                           (default /var/lib/profleet/store)\n"
		"  --no-store               no built-in store: policies without a backend only count samples\n"
		"  --store-max-bytes N      bound of the store: when full, the oldest profiles of the\n"
		"                           namespace holding the most go first (default 1G;\n"
		"                           suffixes K, M, G)\n"
		"  --store-namespace-max-bytes N\n"
		"                           one namespace's share (cluster policies' together: one\n"
		"                           more); over it, its own oldest go (default: a quarter\n"
		"                           of --store-max-bytes)\n"
		"  --store-retention T      profiles older than this go, checked every quarter of it\n"
		"                           (at most every minute; default 7d; suffixes s, m, h, d)\n"
		"  --http-listen ADDR:PORT  the store's HTTP API, /metrics, /healthz and /readyz\n"
		"                           (default 0.0.0.0:7471; 64 connections, 16 per client,\n"
		"                           idle ones closed after 15 s)\n"
		"  --health-listen ADDR:PORT  /healthz and /readyz alone, for the kubelet's probes, so\n"
		"                           that clients of the API cannot starve them (default\n"
		"                           0.0.0.0:7473; 8 connections, 4 per client)\n"
		"  --log-level LEVEL        error, warn, notice, info, debug (default info)\n"
		"  -h, --help, -V, --version\n\n"
		"Every option can also be set in the environment: --max-frequency as\n"
		"PROFLEET_MAX_FREQUENCY, and so on.\n");
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}


static const struct option longopts[] = {
	{ "kubeconfig", required_argument, NULL, 'k' },
	{ "context", required_argument, NULL, 'c' },
	{ "listen", required_argument, NULL, 'l' },
	{ "tls-cert", required_argument, NULL, 'C' },
	{ "tls-key", required_argument, NULL, 'K' },
	{ "agent-service-account", required_argument, NULL, 's' },
	{ "agent-audience", required_argument, NULL, 'a' },
	{ "backend-secret-namespaces", required_argument, NULL, 'b' },
	{ "max-frequency", required_argument, NULL, 'm' },
	{ "lease", required_argument, NULL, 'L' },
	{ "identity", required_argument, NULL, 'i' },
	{ "lease-duration", required_argument, NULL, 'd' },
	{ "no-leader-election", no_argument, NULL, 'N' },
	{ "insecure-trust-agents", no_argument, NULL, 'T' },
	{ "no-agent-address-check", no_argument, NULL, 'A' },
	{ "plain-credentials", no_argument, NULL, 'P' },
	{ "log-level", required_argument, NULL, 'v' },
	{ "store-dir", required_argument, NULL, 'S' },
	{ "no-store", no_argument, NULL, 'n' },
	{ "store-max-bytes", required_argument, NULL, 'B' },
	{ "store-namespace-max-bytes", required_argument, NULL, 'Q' },
	{ "max-policies-per-namespace", required_argument, NULL, 'M' },
	{ "reconcile-threads", required_argument, NULL, 'W' },
	{ "store-retention", required_argument, NULL, 'R' },
	{ "http-listen", required_argument, NULL, 'H' },
	{ "health-listen", required_argument, NULL, 'Z' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ 0 }
};

/* The options that take a value to check after all are read. */
struct raw_options {
	const char *listen, *sa, *lease, *maxhz, *dur, *store_max, *store_ret, *http_listen;
	const char *health_listen, *store_ns_max, *max_ns_pol, *rec_threads;
};

static void defaults(struct ctl_options *o, struct raw_options *raw)
{
	raw->listen = env_or("PROFLEET_LISTEN", "0.0.0.0:7470");
	raw->sa = env_or("PROFLEET_AGENT_SERVICE_ACCOUNT", "profleet-system:profleet-agent");
	raw->lease = env_or("PROFLEET_LEASE", "profleet-system/profleet-controller");
	raw->maxhz = env_or("PROFLEET_MAX_FREQUENCY", "250");
	raw->max_ns_pol = env_or("PROFLEET_MAX_POLICIES_PER_NAMESPACE", "32");
	raw->rec_threads = env_or("PROFLEET_RECONCILE_THREADS", "auto");
	raw->dur = env_or("PROFLEET_LEASE_DURATION", "15");
	raw->store_max = env_or("PROFLEET_STORE_MAX_BYTES", "1G");
	raw->store_ns_max = env_or("PROFLEET_STORE_NAMESPACE_MAX_BYTES", NULL);
	raw->store_ret = env_or("PROFLEET_STORE_RETENTION", "7d");
	raw->http_listen = env_or("PROFLEET_HTTP_LISTEN", "0.0.0.0:7471");
	raw->health_listen = env_or("PROFLEET_HEALTH_LISTEN", "0.0.0.0:7473");
	o->kubeconfig = env_or("PROFLEET_KUBECONFIG", NULL);
	o->context = env_or("PROFLEET_CONTEXT", NULL);
	o->agent_audience = env_or("PROFLEET_AGENT_AUDIENCE", "profleet");
	o->secret_namespaces = env_or("PROFLEET_BACKEND_SECRET_NAMESPACES", NULL);
	o->log_level = env_or("PROFLEET_LOG_LEVEL", NULL);
	o->tls_cert = env_or("PROFLEET_TLS_CERT", NULL);
	o->tls_key = env_or("PROFLEET_TLS_KEY", NULL);
	o->store_dir = env_or("PROFLEET_STORE_DIR", "/var/lib/profleet/store");
	if (gethostname(o->identity_buf, sizeof(o->identity_buf) - 1))
		snprintf(o->identity_buf, sizeof(o->identity_buf), "profleet-controller");
	o->identity = env_or("PROFLEET_IDENTITY", env_or("POD_NAME", o->identity_buf));
}

/* The boolean variables: PROFLEET_NO_STORE=false means what it says. */
static int env_bools(struct ctl_options *o)
{
	static const struct {
		const char *name;
		size_t off;
	} vars[] = {
		{ "PROFLEET_NO_LEADER_ELECTION", offsetof(struct ctl_options, no_leader_election) },
		{ "PROFLEET_INSECURE_TRUST_AGENTS",
		  offsetof(struct ctl_options, insecure_trust_agents) },
		{ "PROFLEET_NO_STORE", offsetof(struct ctl_options, no_store) },
		{ "PROFLEET_NO_AGENT_ADDRESS_CHECK",
		  offsetof(struct ctl_options, no_agent_address_check) },
		{ "PROFLEET_PLAIN_CREDENTIALS", offsetof(struct ctl_options, plain_credentials) },
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i].name);

		if (v && *v && parse_bool(v, (bool *)((char *)o + vars[i].off))) {
			fprintf(stderr, "profleet-controller: %s=%s: want true or false\n",
				vars[i].name, v);
			return -1;
		}
	}
	if (o->no_store)
		o->store_dir = NULL;
	return 0;
}

/* 0, 1 when ch is not one of ours */
static int take_option(int ch, struct ctl_options *o, struct raw_options *raw)
{
	switch (ch) {
	case 'k': o->kubeconfig = optarg; break;
	case 'c': o->context = optarg; break;
	case 'l': raw->listen = optarg; break;
	case 'C': o->tls_cert = optarg; break;
	case 'K': o->tls_key = optarg; break;
	case 's': raw->sa = optarg; break;
	case 'a': o->agent_audience = optarg; break;
	case 'b': o->secret_namespaces = optarg; break;
	case 'm': raw->maxhz = optarg; break;
	case 'M': raw->max_ns_pol = optarg; break;
	case 'W': raw->rec_threads = optarg; break;
	case 'L': raw->lease = optarg; break;
	case 'i': o->identity = optarg; break;
	case 'd': raw->dur = optarg; break;
	case 'N': o->no_leader_election = true; break;
	case 'T': o->insecure_trust_agents = true; break;
	case 'A': o->no_agent_address_check = true; break;
	case 'P': o->plain_credentials = true; break;
	case 'v': o->log_level = optarg; break;
	case 'S': o->store_dir = optarg; break;
	case 'n': o->no_store = true; o->store_dir = NULL; break;
	case 'B': raw->store_max = optarg; break;
	case 'Q': raw->store_ns_max = optarg; break;
	case 'R': raw->store_ret = optarg; break;
	case 'H': raw->http_listen = optarg; break;
	case 'Z': raw->health_listen = optarg; break;
	case 'h': usage(stdout); exit(0);
	case 'V': printf("profleet-controller %s\n", PROFLEET_VERSION); exit(0);
	default: return 1;
	}
	return 0;
}

/* ADDR:PORT, [v6]:PORT or :PORT; the address goes into buf (256 bytes). */
static int host_port(const char *opt, const char *s, char *buf, int *ret_port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;

	if (!colon || (size_t)(colon - s) >= 256 || *end || colon[1] == 0 || port < 0 ||
	    port > 65535) {
		fprintf(stderr, "profleet-controller: --%s %s: want ADDR:PORT\n", opt, s);
		return -1;
	}
	snprintf(buf, 256, "%.*s", (int)(colon - s), s);
	if (buf[0] == '[') {
		memmove(buf, buf + 1, strlen(buf));
		buf[strcspn(buf, "]")] = 0;
	}
	*ret_port = (int)port;
	return 0;
}

/* A number with one of the suffixes (their factors in mul), at least min; -1 when not. */
static double scaled(const char *s, const char *const *suffixes, const double *mul, double min)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || !isfinite(v) || v < 0 || v > 1e15)
		return -1;
	for (int i = 0; suffixes[i]; i++)
		if (!strcmp(end, suffixes[i]))
			return v * mul[i] >= min ? v * mul[i] : -1;
	return -1;
}

/* A size of 64K or more for option opt; -1 (said) when it is not one. */
static double store_size(const char *opt, const char *s)
{
	double v = scaled(s, (const char *const[]){ "", "K", "M", "G", NULL },
			  (const double[]){ 1, 1024.0, 1048576.0, 1073741824.0 }, 65536);

	if (v < 0)
		fprintf(stderr, "profleet-controller: --%s %s: want a size of 64K or more "
			"(suffixes K, M, G)\n", opt, s);
	return v;
}

static int store_options(struct ctl_options *o, const struct raw_options *raw)
{
	double v = store_size("store-max-bytes", raw->store_max);

	if (v < 0)
		return -1;
	o->store_max_bytes = (uint64_t)v;
	v = raw->store_ns_max ? store_size("store-namespace-max-bytes", raw->store_ns_max) :
				(double)(o->store_max_bytes / 4);
	if (v < 0)
		return -1;
	o->store_ns_max_bytes = (uint64_t)v;
	v = scaled(raw->store_ret, (const char *const[]){ "", "s", "m", "h", "d", NULL },
		   (const double[]){ 1, 1, 60, 3600, 86400 }, 1);
	if (v < 0) {
		fprintf(stderr, "profleet-controller: --store-retention %s: want 1s or more "
			"(suffixes s, m, h, d)\n", raw->store_ret);
		return -1;
	}
	o->store_retention_s = (int64_t)v;
	return 0;
}

/* "A<sep>B" copied into buf; *a and *b point into it. */
static int pair(const char *opt, const char *s, char sep, char *buf, size_t len, const char **a,
		const char **b, const char *want)
{
	char *p;

	snprintf(buf, len, "%s", s);
	p = strchr(buf, sep);
	if (!p || p == buf || !p[1]) {
		fprintf(stderr, "profleet-controller: --%s %s: want %s\n", opt, s, want);
		return -1;
	}
	*p = 0;
	*a = buf;
	*b = p + 1;
	return 0;
}

static int int_in(const char *opt, const char *s, int lo, int hi, int *ret)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "profleet-controller: --%s %s: want %d..%d\n", opt, s, lo, hi);
		return -1;
	}
	*ret = (int)v;
	return 0;
}

static int check_files(const struct ctl_options *o)
{
	if (!o->tls_cert != !o->tls_key) {
		fprintf(stderr, "profleet-controller: --tls-cert and --tls-key go together\n");
		return -1;
	}
	for (const char *const *f = (const char *const[]){ o->tls_cert, o->tls_key, NULL }; *f; f++)
		if (access(*f, R_OK)) {
			fprintf(stderr, "profleet-controller: %s: %s\n", *f, strerror(errno));
			return -1;
		}
	return 0;
}

int options_parse(int argc, char **argv, struct ctl_options *o)
{
	struct raw_options raw;
	int ch;

	defaults(o, &raw);
	if (env_bools(o))
		return -1;
	while ((ch = getopt_long(argc, argv, "hV", longopts, NULL)) != -1)
		if (take_option(ch, o, &raw)) {
			fprintf(stderr, "profleet-controller: see --help\n");
			return -1;
		}
	if (optind < argc) {
		fprintf(stderr, "profleet-controller: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (host_port("listen", raw.listen, o->listen_buf, &o->port) ||
	    host_port("http-listen", raw.http_listen, o->http_buf, &o->http_port) ||
	    host_port("health-listen", raw.health_listen, o->health_buf, &o->health_port) ||
	    store_options(o, &raw) ||
	    pair("agent-service-account", raw.sa, ':', o->sa_buf, sizeof(o->sa_buf),
		 &o->agent_sa_ns, &o->agent_sa_name, "NS:NAME") ||
	    pair("lease", raw.lease, '/', o->lease_buf, sizeof(o->lease_buf), &o->lease_ns,
		 &o->lease_name, "NAMESPACE/NAME") ||
	    int_in("max-frequency", raw.maxhz, 1, 1000, &o->max_hz) ||
	    int_in("max-policies-per-namespace", raw.max_ns_pol, 0, 100000, &o->max_ns_policies) ||
	    (strcmp(raw.rec_threads, "auto") ?
		     int_in("reconcile-threads", raw.rec_threads, 0, 8, &o->reconcile_threads) :
		     (o->reconcile_threads = -1, 0)) ||
	    int_in("lease-duration", raw.dur, 2, 3600, &o->lease_duration_s) || check_files(o))
		return -1;
	if (!o->secret_namespaces)	/* the controller's own, the Lease's */
		o->secret_namespaces = o->lease_ns;
	o->listen_addr = !o->listen_buf[0] || !strcmp(o->listen_buf, "0.0.0.0") ? NULL :
										    o->listen_buf;
	o->http_addr = o->http_buf[0] ? o->http_buf : "0.0.0.0";
	o->health_addr = o->health_buf[0] ? o->health_buf : "0.0.0.0";
	if (o->log_level && log_set_level_name(o->log_level)) {
		fprintf(stderr, "profleet-controller: --log-level %s: unknown level\n", o->log_level);
		return -1;
	}
	return 0;
}
