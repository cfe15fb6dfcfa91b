// SPDX-License-Identifier: Apache-2.0
/* ctl.lock and how long it is held (see controller.h). */
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
