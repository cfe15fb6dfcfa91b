// SPDX-License-Identifier: Apache-2.0
/*
 * A policy's status (phase, conditions, counts, an OnDemand policy's result)
 * and the Events of its transitions. Pure: the reconcile thread gathers the
 * input and sends what comes out.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s.h"
#include "log.h"
#include "status.h"
#include "store.h"


struct policy_rt *policy_rt_new(const struct policy *p)
{
	struct policy_rt *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return NULL;
	snprintf(rt->uid, sizeof(rt->uid), "%s", p->uid ? p->uid : "");
	/* a controller restart continues where the status says the policy is */
	rt->start = p->srv_start;
	rt->completion = p->srv_completion;
	rt->ev_phase = -1;
	return rt;
}

void policy_rt_free(struct policy_rt *rt)
{
	if (!rt)
		return;
	free(rt->last_status);
	free(rt);
}

void status_write_free(struct status_write *w)
{
	if (!w)
		return;
	free(w->path);
	free(w->body);
	free(w->policy);
	free(w->uid);
	free(w);
}

static const char *old_transition(const struct policy *p, const char *type, const char *status)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, p->srv_conditions) {
		const char *t = k8s_str(c, "type"), *s = k8s_str(c, "status");

		if (t && s && !strcmp(t, type) && !strcmp(s, status))
			return k8s_str(c, "lastTransitionTime");
	}
	return NULL;
}

static void add_cond(cJSON *arr, const struct policy *p, const char *type, bool status,
		     const char *reason, const char *msg, const char *now)
{
	cJSON *c = cJSON_CreateObject();
	const char *st = status ? "True" : "False", *ltt = old_transition(p, type, st);

	cJSON_AddStringToObject(c, "type", type);
	cJSON_AddStringToObject(c, "status", st);
	cJSON_AddStringToObject(c, "reason", reason);
	cJSON_AddStringToObject(c, "message", msg);
	cJSON_AddStringToObject(c, "lastTransitionTime", ltt ? ltt : now);
	cJSON_AddNumberToObject(c, "observedGeneration", (double)p->generation);
	cJSON_AddItemToArray(arr, c);
}

/* A core/v1 Event about a policy, to POST. */
static struct status_write *event_write(const struct policy *p, const char *type, const char *reason,
					const char *msg, const char *now, const char *identity)
{
	struct status_write *w = calloc(1, sizeof(*w));
	cJSON *e = cJSON_CreateObject(), *md, *io, *src;
	const char *ns = p->cluster ? "default" : p->ns;
	char gen[300];

	if (!w || !e) {
		free(w);
		cJSON_Delete(e);
		return NULL;
	}
	cJSON_AddStringToObject(e, "apiVersion", "v1");
	cJSON_AddStringToObject(e, "kind", "Event");
	md = cJSON_AddObjectToObject(e, "metadata");
	snprintf(gen, sizeof(gen), "%s.", p->name);
	cJSON_AddStringToObject(md, "generateName", gen);
	cJSON_AddStringToObject(md, "namespace", ns);
	io = cJSON_AddObjectToObject(e, "involvedObject");
	cJSON_AddStringToObject(io, "apiVersion", "profiling.profleet.dev/v1alpha1");
	cJSON_AddStringToObject(io, "kind", p->cluster ? "ClusterProfilingPolicy" : "ProfilingPolicy");
	cJSON_AddStringToObject(io, "name", p->name);
	if (!p->cluster)
		cJSON_AddStringToObject(io, "namespace", p->ns);
	if (p->uid)
		cJSON_AddStringToObject(io, "uid", p->uid);
	cJSON_AddStringToObject(e, "type", type);
	cJSON_AddStringToObject(e, "reason", reason);
	cJSON_AddStringToObject(e, "message", msg);
	cJSON_AddStringToObject(e, "firstTimestamp", now);
	cJSON_AddStringToObject(e, "lastTimestamp", now);
	cJSON_AddNumberToObject(e, "count", 1);
	src = cJSON_AddObjectToObject(e, "source");
	cJSON_AddStringToObject(src, "component", "profleet-controller");
	cJSON_AddStringToObject(e, "reportingComponent", "profleet-controller");
	cJSON_AddStringToObject(e, "reportingInstance", identity);
	w->method = "POST";
	w->body = cJSON_PrintUnformatted(e);
	cJSON_Delete(e);
	if (asprintf(&w->path, "/api/v1/namespaces/%s/events", ns) < 0)
		w->path = NULL;
	if (!w->body || !w->path) {
		free(w->body);
		free(w->path);
		free(w);
		return NULL;
	}
	log_kv(LOG_LVL_INFO, LOG_KV("policy", p->key, "reason", reason), "event: %s", msg);
	return w;
}

/*
 * Events when a policy's profiling starts, completes or fails, and when its
 * exports start or stop failing. The first pass after a (re)start takes the
 * phase the server holds, so a restarted controller does not repeat them.
 */
static void policy_events(const struct status_input *in, struct policy_rt *rt,
			  enum policy_phase phase, const char *now, struct status_write **events)
{
	const struct policy *p = in->p;
	const struct policy_result *r = in->r;
	const struct export_summary *ex = &in->ex;
	struct status_write *w = NULL;
	char msg[512];

	if (rt->ev_phase < 0)
		rt->ev_phase = (int)p->srv_phase;
	if ((int)phase != rt->ev_phase) {
		if (phase == PHASE_RUNNING) {
			snprintf(msg, sizeof(msg), "profiling %d pod(s) on %d node(s) at %d Hz", r->pods,
				 r->nodes, p->frequency_hz);
			w = event_write(p, "Normal", "Started", msg, now, in->identity);
		} else if (phase == PHASE_COMPLETED) {
			snprintf(msg, sizeof(msg), "profiled for %llds", (long long)p->duration_s);
			w = event_write(p, "Normal", "Completed", msg, now, in->identity);
		} else if (phase == PHASE_FAILED) {
			snprintf(msg, sizeof(msg), "%s: %s", r->reason, r->message);
			w = event_write(p, "Warning", "Failed", msg, now, in->identity);
		}
		rt->ev_phase = (int)phase;
	}
	if (w) {
		w->next = *events;
		*events = w;
		w = NULL;
	}
	if (ex->failing[0] && !rt->ev_degraded)
		w = event_write(p, "Warning", "ExportFailing", ex->failing, now, in->identity);
	else if (!ex->failing[0] && rt->ev_degraded)
		w = event_write(p, "Normal", "ExportRecovered", "exports succeed again", now,
				in->identity);
	rt->ev_degraded = ex->failing[0] != 0;
	if (w) {
		w->next = *events;
		*events = w;
	}
}


/* The result of a completed OnDemand policy: where its profiles are. */
static void ondemand_result(const struct status_input *in, cJSON *st, char *msg, size_t msglen)
{
	const struct policy *p = in->p;
	cJSON *res = cJSON_AddObjectToObject(st, "result");

	cJSON_AddNumberToObject(res, "samples", (double)in->samples);
	if (!p->nbackends && in->store) {
		/* where the store serves it (the controller's HTTP API) */
		struct store_policy_stats ps;
		char loc[700];

		store_policy_stats(in->store, p->key, &ps);
		snprintf(loc, sizeof(loc), "/api/v1/%s%s%s/%s/profile",
			 p->cluster ? "" : "namespaces/", p->cluster ? "" : p->ns,
			 p->cluster ? "clusterprofilingpolicies" : "/profilingpolicies", p->name);
		cJSON_AddStringToObject(res, "location", loc);
		snprintf(loc + strlen(loc) - strlen("profile"), 40, "flamegraph.svg");
		cJSON_AddStringToObject(res, "flameGraph", loc);
		cJSON_AddNumberToObject(res, "profiles", (double)ps.files);
		snprintf(msg + strlen(msg), msglen - strlen(msg), "; %llu profile(s) in the built-in store",
			 (unsigned long long)ps.files);
	} else if (p->nbackends) {
		snprintf(msg + strlen(msg), msglen - strlen(msg), "; profiles went to %s%s",
			 p->backends[0], p->nbackends > 1 ? " and others" : "");
	}
	cJSON_AddStringToObject(res, "message", msg);
}

/* Ready, for an accepted policy; returns its phase. */
static enum policy_phase ready_cond(const struct status_input *in, struct policy_rt *rt,
				    cJSON *conds, const char *now)
{
	const struct policy *p = in->p;
	const struct policy_result *r = in->r;
	char msg[256];

	if (p->mode == MODE_ONDEMAND && rt->completion)
		return PHASE_COMPLETED;
	if (!r->pods) {
		snprintf(msg, sizeof(msg), "no running pod matches the selector%s",
			 r->waiting ? " yet" : "");
		add_cond(conds, p, "Ready", false, "NoTargets", msg, now);
		return rt->start ? PHASE_RUNNING : PHASE_PENDING;
	}
	if (in->acked == in->nodes) {
		snprintf(msg, sizeof(msg), "agents on %d node(s) profile %d pod(s)", in->nodes, r->pods);
		add_cond(conds, p, "Ready", true, "AgentsProfiling", msg, now);
		if (!rt->start)
			rt->start = in->now;
		return PHASE_RUNNING;
	}
	snprintf(msg, sizeof(msg), "%d of %d node(s) have applied the targets", in->acked, in->nodes);
	add_cond(conds, p, "Ready", false, "WaitingForAgents", msg, now);
	return rt->start ? PHASE_RUNNING : PHASE_PENDING;
}

/* The conditions of an accepted policy (and its result once completed); returns its phase. */
static enum policy_phase accepted_conds(const struct status_input *in, struct policy_rt *rt,
					cJSON *st, cJSON *conds, const char *now,
					bool *ret_completed)
{
	const struct policy *p = in->p;
	enum policy_phase phase;
	char msg[256];

	add_cond(conds, p, "Accepted", true, "Valid", "the policy is valid", now);
	if (p->mode == MODE_ONDEMAND && rt->start && !rt->completion &&
	    in->now >= rt->start + p->duration_s) {
		rt->completion = in->now;
		*ret_completed = true;	/* resolve again: its sampling stops */
		log_kv(LOG_LVL_INFO, LOG_KV("policy", p->key), "completed after %llds",
		       (long long)p->duration_s);
	}
	phase = ready_cond(in, rt, conds, now);
	if (p->mode == MODE_ONDEMAND && rt->start)
		rt->ends_at = rt->start + p->duration_s;
	if (p->mode == MODE_ONDEMAND && phase == PHASE_COMPLETED) {
		snprintf(msg, sizeof(msg), "profiled for %llds", (long long)p->duration_s);
		add_cond(conds, p, "Ready", false, "Completed", msg, now);
		add_cond(conds, p, "Succeeded", true, "DurationElapsed", msg, now);
		ondemand_result(in, st, msg, sizeof(msg));
	} else if (p->mode == MODE_ONDEMAND) {
		add_cond(conds, p, "Succeeded", false, "InProgress", "not finished yet", now);
	}
	if (phase != PHASE_COMPLETED && in->nodes > in->connected) {
		snprintf(msg, sizeof(msg), "%d of %d targeted node(s) have no agent connected",
			 in->nodes - in->connected, in->nodes);
		add_cond(conds, p, "Degraded", true, "AgentsMissing", msg, now);
	} else if (in->ex.failing[0]) {
		add_cond(conds, p, "Degraded", true, "ExportFailing", in->ex.failing, now);
	} else {
		add_cond(conds, p, "Degraded", false, "AsExpected", "nothing is degraded", now);
	}
	return phase;
}

static void add_time(cJSON *st, const char *name, int64_t t)
{
	char buf[40];

	if (!t)
		return;
	k8s_time_format(t, buf, sizeof(buf));
	cJSON_AddStringToObject(st, name, buf);
}

/* The status object's body (malloc'd JSON), and its phase. */
static char *status_body(const struct status_input *in, struct policy_rt *rt, const char *now,
			 enum policy_phase *ret_phase, bool *ret_completed)
{
	const struct policy *p = in->p;
	const struct policy_result *r = in->r;
	cJSON *body = cJSON_CreateObject(), *st, *conds;
	enum policy_phase phase;
	char *s;

	if (!body)
		return NULL;
	st = cJSON_AddObjectToObject(body, "status");
	cJSON_AddNumberToObject(st, "observedGeneration", (double)p->generation);
	conds = cJSON_CreateArray();
	if (!r->accepted) {
		phase = PHASE_FAILED;
		add_cond(conds, p, "Accepted", false, r->reason, r->message, now);
		add_cond(conds, p, "Ready", false, "NotAccepted", "the policy is not accepted", now);
	} else {
		phase = accepted_conds(in, rt, st, conds, now, ret_completed);
	}
	cJSON_AddItemToObject(st, "conditions", conds);
	cJSON_AddStringToObject(st, "phase", phase_name(phase));
	cJSON_AddNumberToObject(st, "targetedNodes", r->accepted ? in->nodes : 0);
	cJSON_AddNumberToObject(st, "targetedPods", r->accepted ? r->pods : 0);
	cJSON_AddNumberToObject(st, "samplesCollected", (double)in->samples);
	if (r->accepted)
		add_time(st, "lastExportTime", in->ex.last_success);
	if (r->accepted && in->ex.dropped)
		cJSON_AddNumberToObject(st, "profilesDropped", (double)in->ex.dropped);
	add_time(st, "startTime", rt->start);
	add_time(st, "completionTime", rt->completion);
	s = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	*ret_phase = phase;
	return s;
}

/* The same text but for its digits (counts, times). */
static bool same_words(const char *a, const char *b)
{
	for (;;) {
		while (isdigit((unsigned char)*a))
			a++;
		while (isdigit((unsigned char)*b))
			b++;
		if (*a != *b)
			return false;
		if (!*a)
			return true;
		a++;
		b++;
	}
}

struct status_write *policy_status(const struct status_input *in, struct policy_rt *rt,
				   struct status_write **events, bool *ret_completed)
{
	const struct policy *p = in->p;
	enum policy_phase phase;
	struct status_write *w;
	char now[40], key[600], *s;

	*ret_completed = false;
	rt->ends_at = 0;	/* set again below while an OnDemand policy runs */
	if (!rt->completion && p->srv_completion)	/* completed by another leader */
		rt->completion = p->srv_completion;
	k8s_time_format(in->now, now, sizeof(now));
	s = status_body(in, rt, now, &phase, ret_completed);
	if (!s)
		return NULL;
	policy_events(in, rt, phase, now, events);
	/* unchanged, and lastTransitionTime keeps it stable: nothing to write */
	if (rt->last_status && !strcmp(s, rt->last_status) &&
	    in->now - rt->last_write < STATUS_REWRITE_S) {
		free(s);
		return NULL;
	}
	/* only numbers moved, and it was just written: written later, as it is then */
	if (rt->last_status && in->now - rt->last_write < STATUS_NUMBERS_GAP_S &&
	    same_words(s, rt->last_status)) {
		rt->retry_at = rt->last_write + STATUS_NUMBERS_GAP_S;
		free(s);
		return NULL;
	}
	policy_cache_key(key, sizeof(key), p->key);
	w = calloc(1, sizeof(*w));
	if (!w || !(w->policy = strdup(key)) || !(w->uid = strdup(p->uid ? p->uid : "")) ||
	    (p->cluster ? asprintf(&w->path, GROUP_PATH "/clusterprofilingpolicies/%s/status",
				   p->name) :
			  asprintf(&w->path, GROUP_PATH "/namespaces/%s/profilingpolicies/%s/status",
				   p->ns, p->name)) < 0) {
		if (w) {
			free(w->policy);
			free(w->uid);
		}
		free(w);
		free(s);
		return NULL;
	}
	free(rt->last_status);
	rt->last_status = strdup(s);
	rt->last_write = in->now;
	w->method = "PATCH";
	w->body = s;
	return w;
}
