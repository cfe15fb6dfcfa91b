// SPDX-License-Identifier: Apache-2.0
/*
 * fleetsim: many simulated agents against one profleet-controller, for
 * bench/fleet.sh. Creates Pods spread over N fake nodes through the API
 * server, opens N agent websockets (the controller runs with
 * --insecure-trust-agents: TokenReview is not what is measured), then applies
 * policy changes and measures how long each takes to reach every agent.
 *
 *   fleetsim --kubeconfig KC --url ws://127.0.0.1:PORT --controller-pid PID
 *            [--agents 500] [--pods 5000] [--rounds 10] [--namespace NS]
 *            [--policies 1] [--churn 0] [--churn-window 2000] [--full-decode]
 *
 * --policies N: N-1 more policies, each selecting a tenth of the pods, that do
 * not change. --churn R: during the rounds, R pods a second are created (and
 * marked running) and, once --churn-window of them live, as many deleted.
 * --full-decode: each set decoded whole, as a real agent does (see scan_set).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <ev.h>
#include <libwebsockets.h>

#include "fleet.pb-c.h"
#include "fleet_client.h"
#include "k8s.h"
#include "log.h"

/*
 * The agents' sockets are served by SIM_LOOPS threads, each with its own lws
 * context and epoll loop, the agents dealt out among them. 5000 agents stand
 * for 5000 nodes, each reading its set on its own CPU: on one thread they
 * queued behind one another, the last set read about 250 ms after the
 * controller had sent it (measured at 5000 agents), a wait no real fleet has.
 */
#define SIM_LOOPS 2

struct sim_loop {
	struct lws_context *ctx;
	struct ev_loop *loop;	/* the agents' epoll loop, as the controller's */
	pthread_t thread;
	bool running;		/* thread started */
	unsigned int seed;	/* its reconnects' jitter (rand_r) */
};

struct sim_agent {
	lws_sorted_usec_list_t sul;	/* first: the reconnect timer gets it */
	struct sim_loop *l;	/* the thread serving its socket */
	int idx;
	struct lws *wsi;
	bool connected, hello_sent, ack_due;
	uint64_t version;	/* last set received */
	uint32_t freq;		/* frequency of its first target in that set */
	double freq_at;		/* when a set with that frequency first came */
	uint32_t ntargets;
	double recv_at;
	uint8_t *rx;
	size_t rx_len;
};

static struct {
	struct k8s_config kcfg;
	const char *url, *ns;
	int nagents, npods, rounds, ctl_pid, npolicies, churn, churn_window;
	int churning;		/* __atomic: read by the churn threads */
	uint64_t churn_created, churn_deleted;	/* under lock */
	struct sim_agent *agents;
	struct sim_loop loops[SIM_LOOPS];
	char host[256], path[256];
	int port;
	bool tls;
	bool full_decode;	/* every set decoded whole (protobuf-c), not only scanned */
	pthread_mutex_t lock;
	int stop;		/* __atomic: read by the loops' threads */
	int connected;		/* under lock */
	uint64_t reconnects;	/* under lock: closed or refused connections tried again, as agents do */
} S;

static void agent_connect(struct sim_agent *a);

static bool stopping(void)
{
	return __atomic_load_n(&S.stop, __ATOMIC_ACQUIRE);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- what an agent reads of its set ------------------------------------------------ */

/*
 * A real agent decodes its whole set, on its own node. Here one process stands
 * for every agent, on the controller's machine: decoding 5000 sets of 30
 * targets with protobuf-c took 95 ms of CPU a round (35 MB at 5000 agents and
 * 150k pods), taken from the controller being measured. So a simulated agent
 * reads, from the wire format, only what it checks: the set's version, how
 * many targets it has and the first one's frequency (--full-decode: all of it,
 * with protobuf-c). Anything else (a refusal, or bytes the scan finds
 * malformed) goes to protobuf-c; the targets past the first are only counted.
 */
struct set_view {
	uint64_t version;
	uint32_t ntargets, freq;
};

static bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t c = *(*p)++;

		*v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return true;
	}
	return false;
}

/* The next field of [*p, end): its number in *num and its wire type returned
 * (0: a varint, in *v; 2: bytes, *body and *blen), or -1 (malformed, field 0,
 * or a fixed-width type, which the fleet protocol does not use). */
static int wire_field(const uint8_t **p, const uint8_t *end, uint32_t *num, uint64_t *v,
		      const uint8_t **body, size_t *blen)
{
	uint64_t key;

	*body = NULL;
	*blen = 0;
	if (!wire_varint(p, end, &key) || !(key >> 3) || (key >> 3) > UINT32_MAX)
		return -1;
	*num = (uint32_t)(key >> 3);
	switch (key & 7) {
	case 0:
		return wire_varint(p, end, v) ? 0 : -1;
	case 2:
		if (!wire_varint(p, end, v) || *v > (uint64_t)(end - *p))
			return -1;
		*body = *p;
		*blen = (size_t)*v;
		*p += *v;
		return 2;
	default:
		return -1;
	}
}

/* The first target's frequency (Target.frequency_hz, field 6, a varint). */
static bool scan_target(const uint8_t *q, size_t len, uint32_t *freq)
{
	const uint8_t *qend = q + len, *x;
	size_t xl;
	uint32_t num;
	uint64_t v;

	while (q < qend) {
		int type = wire_field(&q, qend, &num, &v, &x, &xl);

		if (type < 0 || (num == 6 && type != 0))
			return false;
		if (num == 6)
			*freq = (uint32_t)v;
	}
	return true;
}

/* A ControllerMessage holding a TargetSet: true with its view. The targets past
 * the first are counted, not read. */
static bool scan_set(const uint8_t *b, size_t len, struct set_view *sv)
{
	const uint8_t *p = b, *end = b + len, *set, *tb;
	size_t slen, tlen;
	uint32_t num;
	uint64_t v;

	memset(sv, 0, sizeof(*sv));
	/* ControllerMessage.targets (field 1, bytes), alone */
	if (wire_field(&p, end, &num, &v, &set, &slen) != 2 || num != 1 || p != end)
		return false;
	for (p = set, end = set + slen; p < end;) {
		int type = wire_field(&p, end, &num, &v, &tb, &tlen);

		if (type < 0 || (num == 1 && type != 0) || (num == 2 && type != 2))
			return false;	/* version: a varint; targets: bytes */
		if (num == 1)
			sv->version = v;
		else if (num == 2 && sv->ntargets++ == 0 && !scan_target(tb, tlen, &sv->freq))
			return false;
	}
	return true;
}

/* A set came: noted, and its ack due. */
static void got_set(struct lws *wsi, struct sim_agent *a, const struct set_view *sv)
{
	pthread_mutex_lock(&S.lock);
	a->version = sv->version;
	a->ntargets = sv->ntargets;
	if (sv->freq != a->freq)
		a->freq_at = now_s();
	a->freq = sv->freq;
	a->recv_at = now_s();
	pthread_mutex_unlock(&S.lock);
	a->ack_due = true;
	lws_callback_on_writable(wsi);
}

/* A closed agent connects again after 0.25-0.5 s, as profleet-agent run does. */
static void reconnect_cb(lws_sorted_usec_list_t *sul)
{
	agent_connect((struct sim_agent *)sul);
}

/* ---- the API side ------------------------------------------------------------- */

static int must(struct k8s_client *c, const char *method, const char *path, const char *ctype,
		const char *body, long want1, long want2)
{
	struct k8s_response r;
	int ret = 0;

	for (int attempt = 0; attempt < 5; attempt++) {
		if (!k8s_request(c, method, path, ctype, body, &r) &&
		    (r.status == want1 || r.status == want2)) {
			k8s_response_free(&r);
			return 0;
		}
		if (attempt == 4) {
			fprintf(stderr, "fleetsim: %s %s: HTTP %ld %s\n", method, path, r.status,
				k8s_response_message(&r));
			ret = -1;
		}
		k8s_response_free(&r);
		usleep(200000);
	}
	return ret;
}

struct maker {
	int from, to;
	int err;
};

/* One pod made and marked running (it matches the bench policy), or -1. */
static int pod_up(struct k8s_client *c, const char *name, int i)
{
	char path[512], body[2048];

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods", S.ns);
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
		 "\"labels\":{\"app\":\"a%d\",\"bench\":\"yes\"}},\"spec\":{\"nodeName\":"
		 "\"sim-node-%d\",\"automountServiceAccountToken\":false,"
		 "\"containers\":[{\"name\":\"app\",\"image\":\"x\"}]}}",
		 name, i % 10, i % S.nagents);
	if (must(c, "POST", path, NULL, body, 201, 409))
		return -1;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s/status", S.ns, name);
	snprintf(body, sizeof(body),
		 "{\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"name\":\"app\","
		 "\"containerID\":\"containerd://%064x\",\"ready\":true,\"restartCount\":0,"
		 "\"image\":\"x\",\"imageID\":\"\",\"state\":{\"running\":{}}}]}}",
		 i + 1);
	return must(c, "PATCH", path, "application/merge-patch+json", body, 200, 200);
}

static void *make_pods(void *arg)
{
	struct maker *m = arg;
	struct k8s_client *c = k8s_client_new(&S.kcfg);
	char name[64];

	for (int i = m->from; c && i < m->to && !m->err; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		m->err = pod_up(c, name, i) ? 1 : 0;
	}
	m->err |= !c;
	k8s_client_free(c);
	return NULL;
}

struct churner {
	int id;
	pthread_t thread;
};

/* One of 4 threads: churn/4 pods a second up, as many down once its window is full. */
static void *churn_main(void *arg)
{
	struct churner *ch = arg;
	struct k8s_client *c = k8s_client_new(&S.kcfg);
	int window = S.churn_window / 4, made = 0;
	double start = now_s(), every = 4.0 / S.churn;

	while (c && __atomic_load_n(&S.churning, __ATOMIC_ACQUIRE)) {
		char name[64], path[512];
		double due = start + made * every;

		if (now_s() < due)
			usleep((useconds_t)((due - now_s()) * 1e6));
		snprintf(name, sizeof(name), "c%d-%d", ch->id, made);
		if (pod_up(c, name, 1000000 + ch->id * 100000 + made % 100000))
			break;
		made++;
		pthread_mutex_lock(&S.lock);
		S.churn_created++;
		pthread_mutex_unlock(&S.lock);
		if (made <= window)
			continue;
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/c%d-%d?gracePeriodSeconds=0",
			 S.ns, ch->id, made - window - 1);
		if (must(c, "DELETE", path, NULL, NULL, 200, 404))
			break;
		pthread_mutex_lock(&S.lock);
		S.churn_deleted++;
		pthread_mutex_unlock(&S.lock);
	}
	k8s_client_free(c);
	return NULL;
}

/* The policies besides "bench" that do not change, each selecting a tenth of the pods. */
static int make_policies(struct k8s_client *c)
{
	char path[512], body[2048];

	snprintf(path, sizeof(path),
		 "/apis/profiling.profleet.dev/v1alpha1/namespaces/%s/profilingpolicies", S.ns);
	for (int k = 1; k < S.npolicies; k++) {
		snprintf(body, sizeof(body),
			 "{\"apiVersion\":\"profiling.profleet.dev/v1alpha1\",\"kind\":\"ProfilingPolicy\","
			 "\"metadata\":{\"name\":\"extra-%d\",\"namespace\":\"%s\"},"
			 "\"spec\":{\"selector\":{\"podSelector\":{\"matchLabels\":{\"app\":\"a%d\"}}},"
			 "\"sampling\":{\"frequencyHz\":%d}}}",
			 k, S.ns, k % 10, 5 + k % 5);
		if (must(c, "POST", path, NULL, body, 201, 409))
			return -1;
	}
	return 0;
}

/* ---- the agents ---------------------------------------------------------------- */

static int send_msg(struct lws *wsi, const Profleet__Fleet__V1__AgentMessage *m)
{
	size_t len = profleet__fleet__v1__agent_message__get_packed_size(m);
	uint8_t *buf = malloc(LWS_PRE + len + 1);
	int n;

	if (!buf)
		return -1;
	profleet__fleet__v1__agent_message__pack(m, buf + LWS_PRE);
	n = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_BINARY);
	free(buf);
	return n < (int)len ? -1 : 0;
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct sim_agent *a = user;

	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
		struct sim_loop *l = lws_context_user(lws_get_context(wsi));

		if (stopping() && l && l->loop)
			ev_break(l->loop, EVBREAK_ALL);
		break;
	}
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		a->connected = true;
		pthread_mutex_lock(&S.lock);
		S.connected++;
		pthread_mutex_unlock(&S.lock);
		lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE: {
		Profleet__Fleet__V1__AgentMessage m = PROFLEET__FLEET__V1__AGENT_MESSAGE__INIT;

		if (!a->hello_sent) {
			Profleet__Fleet__V1__Hello h = PROFLEET__FLEET__V1__HELLO__INIT;
			char node[64];

			snprintf(node, sizeof(node), "sim-node-%d", a->idx);
			h.protocol = 1;
			h.node_name = node;
			h.token = (char *)"bench";
			m.msg_case = PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_HELLO;
			m.hello = &h;
			a->hello_sent = true;
			return send_msg(wsi, &m);
		}
		if (a->ack_due) {
			Profleet__Fleet__V1__Ack ack = PROFLEET__FLEET__V1__ACK__INIT;

			ack.version = a->version;
			ack.containers_found = a->ntargets;
			m.msg_case = PROFLEET__FLEET__V1__AGENT_MESSAGE__MSG_ACK;
			m.ack = &ack;
			a->ack_due = false;
			return send_msg(wsi, &m);
		}
		break;
	}
	case LWS_CALLBACK_CLIENT_RECEIVE: {
		Profleet__Fleet__V1__ControllerMessage *m;
		uint8_t *p = realloc(a->rx, a->rx_len + len + 1);
		struct set_view sv;

		if (!p)
			return -1;
		a->rx = p;
		memcpy(a->rx + a->rx_len, in, len);
		a->rx_len += len;
		if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
			break;
		if (!S.full_decode && scan_set(a->rx, a->rx_len, &sv)) {
			a->rx_len = 0;
			got_set(wsi, a, &sv);
			break;
		}
		m = profleet__fleet__v1__controller_message__unpack(NULL, a->rx_len, a->rx);
		a->rx_len = 0;
		if (!m)
			break;
		if (m->msg_case == PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__MSG_TARGETS) {
			sv.version = m->targets->version;
			sv.ntargets = (uint32_t)m->targets->n_targets;
			sv.freq = m->targets->n_targets ? m->targets->targets[0]->frequency_hz : 0;
			got_set(wsi, a, &sv);
		} else if (m->msg_case == PROFLEET__FLEET__V1__CONTROLLER_MESSAGE__MSG_REFUSAL) {
			fprintf(stderr, "fleetsim: agent %d refused: %s\n", a->idx, m->refusal->reason);
		}
		profleet__fleet__v1__controller_message__free_unpacked(m, NULL);
		break;
	}
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (a && a->connected) {
			pthread_mutex_lock(&S.lock);
			S.connected--;
			pthread_mutex_unlock(&S.lock);
		}
		if (a) {
			a->connected = false;
			a->hello_sent = false;
			a->wsi = NULL;
			free(a->rx);
			a->rx = NULL;
			a->rx_len = 0;
			if (!stopping()) {
				pthread_mutex_lock(&S.lock);
				S.reconnects++;
				pthread_mutex_unlock(&S.lock);
				lws_sul_schedule(a->l->ctx, 0, &a->sul, reconnect_cb,
						 (lws_usec_t)(250000 + rand_r(&a->l->seed) % 250000));
			}
		}
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{ "profleet.fleet.v1", cb, 0, 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void agent_connect(struct sim_agent *a)
{
	struct lws_client_connect_info ci;

	memset(&ci, 0, sizeof(ci));
	ci.context = a->l->ctx;
	ci.address = S.host;
	ci.port = S.port;
	ci.path = S.path;
	ci.host = S.host;
	ci.origin = S.host;
	ci.protocol = "profleet.fleet.v1";
	ci.userdata = a;
	ci.pwsi = &a->wsi;
	if (!lws_client_connect_via_info(&ci) && !stopping())	/* failed at once: later */
		lws_sul_schedule(a->l->ctx, 0, &a->sul, reconnect_cb, (lws_usec_t)500000);
}

static void *service_main(void *arg)
{
	struct sim_loop *l = arg;

	if (l->loop) {
		ev_run(l->loop, 0);
		return NULL;
	}
	while (!stopping())
		lws_service(l->ctx, 0);
	return NULL;
}

/* One loop's context: on a libev epoll loop, else (libev's plugin missing) lws's poll. */
static int loop_start(struct sim_loop *l, struct lws_context_creation_info *info)
{
	info->user = l;
	l->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOSIGMASK);
	if (l->loop) {
		void *loops[1] = { l->loop };

		info->options |= LWS_SERVER_OPTION_LIBEV;
		info->foreign_loops = loops;
		l->ctx = lws_create_context(info);
		info->options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
		info->foreign_loops = NULL;
		if (!l->ctx) {
			ev_loop_destroy(l->loop);
			l->loop = NULL;
		}
	}
	if (!l->ctx)
		l->ctx = lws_create_context(info);
	return l->ctx ? 0 : -1;
}

/* Every loop told to stop, then their threads joined, then their contexts destroyed. */
static void loops_stop(void)
{
	__atomic_store_n(&S.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < SIM_LOOPS; i++)
		if (S.loops[i].ctx)
			lws_cancel_service(S.loops[i].ctx);
	for (int i = 0; i < SIM_LOOPS; i++)
		if (S.loops[i].running)
			pthread_join(S.loops[i].thread, NULL);
	for (int i = 0; i < SIM_LOOPS; i++) {
		struct sim_loop *l = &S.loops[i];

		if (l->ctx)
			lws_context_destroy(l->ctx);
		if (l->loop)
			ev_loop_destroy(l->loop);
		memset(l, 0, sizeof(*l));
	}
}

/* ---- measuring ------------------------------------------------------------------ */

static int read_proc(int pid, unsigned long long *ret_ticks, long *ret_rss_kb, long *ret_hwm_kb)
{
	char path[64], line[512];
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f || !fgets(line, sizeof(line), f)) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	/* fields 14 and 15 after the ")" of the comm */
	if (sscanf(strrchr(line, ')') + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		   &ut, &st) != 2)
		return -1;
	*ret_ticks = ut + st;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "VmRSS: %ld", ret_rss_kb);
		sscanf(line, "VmHWM: %ld", ret_hwm_kb);
	}
	fclose(f);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static bool all_have_freq(uint32_t freq, int want_targets_min)
{
	bool all = true;

	pthread_mutex_lock(&S.lock);
	for (int i = 0; i < S.nagents && all; i++)
		all = S.agents[i].freq == freq && (int)S.agents[i].ntargets >= want_targets_min;
	pthread_mutex_unlock(&S.lock);
	return all;
}

/* The soft descriptor limit raised to what every agent needs, no further: lws sizes
 * its tables by it (16 bytes a descriptor, zeroed), and a hard limit may be 2^30. */
static int raise_nofile(rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		perror("fleetsim: getrlimit");
		return -1;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		fprintf(stderr, "fleetsim: %d agents need %llu descriptors; the limit is %llu\n",
			S.nagents, (unsigned long long)need, (unsigned long long)rl.rlim_max);
		return -1;
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl)) {
		perror("fleetsim: setrlimit");
		return -1;
	}
	return 0;
}

/* The machine's busy and total ticks (every CPU), from /proc/stat. */
static void read_machine(unsigned long long *ret_busy, unsigned long long *ret_total)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "re");

	*ret_busy = *ret_total = 0;
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) == 8) {
		for (int i = 0; i < 8; i++)
			*ret_total += v[i];
		*ret_busy = *ret_total - v[3] - v[4];	/* not idle, not iowait */
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "url", required_argument, NULL, 'u' },
		{ "agents", required_argument, NULL, 'a' },
		{ "pods", required_argument, NULL, 'p' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "controller-pid", required_argument, NULL, 'c' },
		{ "policies", required_argument, NULL, 'P' },
		{ "churn", required_argument, NULL, 'C' },
		{ "churn-window", required_argument, NULL, 'W' },
		{ "full-decode", no_argument, NULL, 'F' },
		{ 0 }
	};
	const char *kubeconfig = NULL;
	struct lws_context_creation_info info;
	struct k8s_client *kc;
	pthread_t makers[4];
	struct maker mk[4];
	struct churner churners[4];
	double t0, *lat;
	int ch, nlat = 0, per_node_min;
	uint64_t reconnects = 0;
	unsigned long long ticks0 = 0, ticks1 = 0, self0 = 0, self1 = 0, busy0, busy1, total0,
			   total1;
	long rss = 0, hwm = 0, unused;
	char err[512], path[512], body[2048];
	long hz = sysconf(_SC_CLK_TCK);

	S.nagents = 500;
	S.npods = 5000;
	S.rounds = 10;
	S.ns = "fleetsim";
	S.npolicies = 1;
	S.churn_window = 2000;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'k': kubeconfig = optarg; break;
		case 'u': S.url = optarg; break;
		case 'a': S.nagents = atoi(optarg); break;
		case 'p': S.npods = atoi(optarg); break;
		case 'r': S.rounds = atoi(optarg); break;
		case 'n': S.ns = optarg; break;
		case 'c': S.ctl_pid = atoi(optarg); break;
		case 'P': S.npolicies = atoi(optarg); break;
		case 'C': S.churn = atoi(optarg); break;
		case 'W': S.churn_window = atoi(optarg); break;
		case 'F': S.full_decode = true; break;
		default: return 2;
		}
	}
	if (!S.url || !S.ctl_pid || S.nagents < 1 || S.npods < S.nagents || S.rounds < 1) {
		fprintf(stderr, "usage: fleetsim --kubeconfig KC --url ws://H:P --controller-pid PID "
				"[--agents N] [--pods M>=N] [--rounds R]\n");
		return 2;
	}
	log_set_level(LOG_LVL_WARN);
	if (k8s_config_load(kubeconfig, NULL, &S.kcfg, err, sizeof(err))) {
		fprintf(stderr, "fleetsim: %s\n", err);
		return 2;
	}
	if (fleet_parse_url(S.url, &S.tls, S.host, sizeof(S.host), &S.port, S.path, sizeof(S.path)))
		return 2;
	pthread_mutex_init(&S.lock, NULL);
	kc = k8s_client_new(&S.kcfg);
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", S.ns);
	if (must(kc, "POST", "/api/v1/namespaces", NULL, body, 201, 409))
		return 1;

	/* pods, from 4 threads */
	t0 = now_s();
	for (int i = 0; i < 4; i++) {
		mk[i].from = S.npods * i / 4;
		mk[i].to = S.npods * (i + 1) / 4;
		mk[i].err = 0;
		pthread_create(&makers[i], NULL, make_pods, &mk[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(makers[i], NULL);
		if (mk[i].err)
			return 1;
	}
	printf("fleetsim: %d pods created and marked running in %.1f s\n", S.npods, now_s() - t0);
	if (make_policies(kc))
		return 1;

	/* agents */
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	/* no fd_limit_per_thread: with it lws 4.1 looks each event's socket up by a
	 * linear search of all of them (wsi_from_fd: 8% of the machine's CPU at
	 * 5000 agents, more than the controller's reconcile); sized from the
	 * descriptor limit instead, the lookup is an index */
	if (raise_nofile((rlim_t)S.nagents + 256))
		return 1;
	lws_set_log_level(LLL_ERR, NULL);
	/* epoll loops: lws's own polls all the agents' sockets at each turn, which
	 * would make the simulated agents, not the controller, the bottleneck */
	S.agents = calloc((size_t)S.nagents, sizeof(*S.agents));
	for (int i = 0; i < SIM_LOOPS && S.agents; i++) {
		S.loops[i].seed = (unsigned int)i + 1;
		if (loop_start(&S.loops[i], &info) ||
		    (i && !S.loops[i].loop != !S.loops[0].loop)) {	/* one kind of loop */
			fprintf(stderr, "fleetsim: the agents' loop %d did not start (or not as "
				"loop 0: epoll and poll)\n", i);
			loops_stop();
			return 1;
		}
	}
	if (!S.agents)
		return 1;
	printf("fleetsim: the simulated agents' sockets on %s, %d threads\n",
	       S.loops[0].loop ? "epoll (libev)" : "poll", SIM_LOOPS);
	/* each loop a block of agents: neighbours in S.agents share a thread */
	for (int i = 0; i < S.nagents; i++) {
		S.agents[i].idx = i;
		S.agents[i].l = &S.loops[(long)i * SIM_LOOPS / S.nagents];
		agent_connect(&S.agents[i]);
	}
	for (int i = 0; i < SIM_LOOPS; i++) {
		if (pthread_create(&S.loops[i].thread, NULL, service_main, &S.loops[i])) {
			loops_stop();
			return 1;
		}
		S.loops[i].running = true;
	}
	per_node_min = S.npods / S.nagents;
	/* everyone connected and holding the initial (empty) set */
	t0 = now_s();
	for (;;) {
		int c, got = 0;

		pthread_mutex_lock(&S.lock);
		c = S.connected;
		reconnects = S.reconnects;
		for (int i = 0; i < S.nagents; i++)
			got += S.agents[i].version != 0;
		pthread_mutex_unlock(&S.lock);
		if (c == S.nagents && got == S.nagents)
			break;
		if (now_s() - t0 > 60) {
			fprintf(stderr, "fleetsim: only %d of %d agents connected, %d got a set\n", c,
				S.nagents, got);
			return 1;
		}
		usleep(20000);
	}
	printf("fleetsim: %d agents connected in %.2f s (%llu connections tried again)\n",
	       S.nagents, now_s() - t0, (unsigned long long)reconnects);

	/* an idle fleet: the controller should not spend CPU */
	sleep(1);
	read_proc(S.ctl_pid, &ticks0, &rss, &hwm);
	sleep(5);
	read_proc(S.ctl_pid, &ticks1, &rss, &hwm);
	printf("fleetsim: idle controller CPU: %.2f%% of a core over 5 s (RSS %.1f MiB)\n",
	       100.0 * (double)(ticks1 - ticks0) / (double)hz / 5.0, rss / 1024.0);
	fflush(stdout);	/* the rounds start: what watches the run (a profiler) may start too */

	/* rounds: change the policy, wait until every agent holds the new frequency */
	lat = calloc((size_t)S.nagents * (size_t)S.rounds, sizeof(double));
	__atomic_store_n(&S.churning, S.churn > 0, __ATOMIC_RELEASE);
	for (int i = 0; i < 4 && S.churning; i++) {
		churners[i].id = i;
		pthread_create(&churners[i].thread, NULL, churn_main, &churners[i]);
	}
	if (S.churning) {	/* churn under way before the first change: pods deleted too */
		double w0 = now_s(), limit = 2.0 * S.churn_window / S.churn + 30;
		bool deleting = false;

		sleep(2);
		while (!deleting && now_s() - w0 < limit) {
			pthread_mutex_lock(&S.lock);
			deleting = S.churn_deleted > 0;
			pthread_mutex_unlock(&S.lock);
			if (!deleting)
				usleep(100000);
		}
		if (!deleting) {	/* the churners failed, or the machine is far too slow */
			pthread_mutex_lock(&S.lock);
			fprintf(stderr, "fleetsim: churn: no pod deleted in %.0f s (%llu created)\n",
				limit, (unsigned long long)S.churn_created);
			pthread_mutex_unlock(&S.lock);
			return 1;
		}
		printf("fleetsim: churn: creations and deletions under way after %.0f s (a window of %d pods)\n",
		       now_s() - w0, S.churn_window);
	}
	read_proc(S.ctl_pid, &ticks0, &rss, &hwm);
	read_proc(getpid(), &self0, &unused, &unused);
	read_machine(&busy0, &total0);
	{
		double busy_start = now_s();
		uint64_t created0, deleted0;

		pthread_mutex_lock(&S.lock);
		created0 = S.churn_created;
		deleted0 = S.churn_deleted;
		pthread_mutex_unlock(&S.lock);

		for (int r = 0; r < S.rounds; r++) {
			uint32_t freq = 10 + (uint32_t)r;
			const char *method = r ? "PATCH" : "POST";

			snprintf(path, sizeof(path),
				 "/apis/profiling.profleet.dev/v1alpha1/namespaces/%s/profilingpolicies%s",
				 S.ns, r ? "/bench" : "");
			/* later rounds: a merge patch of the frequency, which no status write
			 * by the controller can make conflict (a PUT's resourceVersion could) */
			if (r)
				snprintf(body, sizeof(body), "{\"spec\":{\"sampling\":{\"frequencyHz\":%u}}}",
					 freq);
			else
				snprintf(body, sizeof(body),
					 "{\"apiVersion\":\"profiling.profleet.dev/v1alpha1\","
					 "\"kind\":\"ProfilingPolicy\","
					 "\"metadata\":{\"name\":\"bench\",\"namespace\":\"%s\"},"
					 "\"spec\":{\"selector\":{\"podSelector\":{\"matchLabels\":"
					 "{\"bench\":\"yes\"}}},\"sampling\":{\"frequencyHz\":%u}}}",
					 S.ns, freq);
			t0 = now_s();
			if (must(kc, method, path, r ? "application/merge-patch+json" : NULL, body,
				 r ? 200 : 201, 200))
				return 1;
			while (!all_have_freq(freq, per_node_min)) {
				if (now_s() - t0 > 60) {
					fprintf(stderr, "fleetsim: round %d: not every agent got %u Hz in 60 s\n",
						r, freq);
					return 1;
				}
				usleep(2000);
			}
			pthread_mutex_lock(&S.lock);
			{
				double lo = 1e9, hi = 0;

				for (int i = 0; i < S.nagents; i++) {
					double l = S.agents[i].freq_at - t0;

					lat[nlat++] = l;
					lo = l < lo ? l : lo;
					hi = l > hi ? l : hi;
				}
				/* the first agent's wait is the API server's and the
				 * controller's; first to last is the fan-out's */
				printf("fleetsim: round %d: first agent %.0f ms, last %.0f ms\n", r,
				       lo * 1e3, hi * 1e3);
			}
			pthread_mutex_unlock(&S.lock);
			usleep(300000);
		}
		read_proc(S.ctl_pid, &ticks1, &rss, &hwm);
		read_proc(getpid(), &self1, &unused, &unused);
		read_machine(&busy1, &total1);
		if (S.churning) {
			double d = now_s() - busy_start;

			pthread_mutex_lock(&S.lock);
			printf("fleetsim: churn during the rounds: %.0f pods created and %.0f deleted "
			       "a second (%d policies)\n", (double)(S.churn_created - created0) / d,
			       (double)(S.churn_deleted - deleted0) / d, S.npolicies);
			pthread_mutex_unlock(&S.lock);
			__atomic_store_n(&S.churning, 0, __ATOMIC_RELEASE);
			for (int i = 0; i < 4; i++)
				pthread_join(churners[i].thread, NULL);
		}
		qsort(lat, (size_t)nlat, sizeof(double), cmp_double);
		printf("fleetsim: policy change -> every agent holds it: p50 %.0f ms, p99 %.0f ms, "
		       "max %.0f ms (%d rounds x %d agents)\n",
		       lat[nlat / 2] * 1e3, lat[(int)(nlat * 0.99)] * 1e3, lat[nlat - 1] * 1e3, S.rounds,
		       S.nagents);
		printf("fleetsim: controller CPU during the rounds: %.1f%% of a core; RSS %.1f MiB, "
		       "peak %.1f MiB\n",
		       100.0 * (double)(ticks1 - ticks0) / (double)hz / (now_s() - busy_start),
		       rss / 1024.0, hwm / 1024.0);
		if (total1 > total0) {	/* where the machine's CPU went */
			double secs = now_s() - busy_start;
			long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

			printf("fleetsim: the machine during the rounds: %.0f%% of its %ld CPUs busy; "
			       "of a core: the controller %.0f%%, this simulator (the agents, %s, "
			       "and the churn's requests) %.0f%%, the rest (API server, etcd, ...) "
			       "%.0f%%\n",
			       100.0 * (double)(busy1 - busy0) / (double)(total1 - total0), ncpu,
			       100.0 * (double)(ticks1 - ticks0) / (double)hz / secs,
			       S.full_decode ? "sets decoded whole" : "sets scanned",
			       100.0 * (double)(self1 - self0) / (double)hz / secs,
			       100.0 * ((double)(busy1 - busy0) - (double)(ticks1 - ticks0) -
					(double)(self1 - self0)) / (double)hz / secs);
		}
		printf("RESULT p99_ms=%.0f rss_mib=%.1f hwm_mib=%.1f decode=%s\n",
		       lat[(int)(nlat * 0.99)] * 1e3, rss / 1024.0, hwm / 1024.0,
		       S.full_decode ? "full" : "scan");
	}
	loops_stop();
	k8s_client_free(kc);
	free(lat);
	return 0;
}
