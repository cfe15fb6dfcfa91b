// SPDX-License-Identifier: Apache-2.0
/* ctl.lock and how long it is held, and the API-calling threads' start (see controller.h). */
#include <errno.h>
#include <stdlib.h>

#include "controller.h"

/* The hold that ends now; the holder's fields, so under the lock. */
static void held(struct ctl *c)
{
	static const int64_t bounds_ns[CTL_HOLD_BUCKETS - 1] = { 10000, 100000, 1000000, 10000000,
								  100000000 };
	int64_t d = mono_ns() - c->lock_t0_ns;
	int b = 0;

	while (b < CTL_HOLD_BUCKETS - 1 && d > bounds_ns[b])
		b++;
	c->hold_buckets[b]++;
	c->hold_count++;
	c->hold_sum_s += (double)d / 1e9;
}

void ctl_lock(struct ctl *c)
{
	pthread_mutex_lock(&c->lock);
	c->lock_t0_ns = mono_ns();
}

void ctl_unlock(struct ctl *c)
{
	held(c);
	pthread_mutex_unlock(&c->lock);
}

int ctl_wait(struct ctl *c, pthread_cond_t *cond, const struct timespec *deadline)
{
	int err;

	held(c);	/* the wait does not hold it */
	err = deadline ? pthread_cond_timedwait(cond, &c->lock, deadline) :
			 pthread_cond_wait(cond, &c->lock);
	c->lock_t0_ns = mono_ns();
	return err;
}

int ctl_worker_start(struct ctl *c, size_t size, long timeout_ms, void *(*fn)(void *),
		     void (*setup)(struct ctl_worker *w), pthread_t *ret)
{
	struct ctl_worker *w = calloc(1, size);
	int err;

	if (!w || !(w->kc = k8s_client_new(&c->kcfg))) {
		free(w);
		return ENOMEM;
	}
	w->c = c;
	if (timeout_ms)
		k8s_client_set_timeout(w->kc, timeout_ms);
	if (setup)
		setup(w);
	err = pthread_create(ret, NULL, fn, w);
	if (err)
		ctl_worker_free(w);
	return err;
}

void ctl_worker_free(struct ctl_worker *w)
{
	k8s_client_free(w->kc);
	free(w);
}
